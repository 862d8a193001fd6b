/**
 * JSON payloads: the one encoder and the one object parser that every
 * message with a JSON body uses (File-TCP's OFFER, ACCEPT, END and DONE, the
 * audio stream format of both transports).
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The UTF-8 bytes of `value` as JSON. */
export function jsonBytes(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/**
 * Parses a JSON object. Returns the object, or a string saying why the
 * bytes are not one (stream decoders throw it, datagram decoders reject).
 */
export function parseJsonObject(bytes: Uint8Array): Record<string, unknown> | string {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    return "is not valid JSON";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "is not a JSON object";
  }
  return value as Record<string, unknown>;
}

/** Whether `v` is a whole number from 0 to 2^53-1. */
export function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * The one description of an audio stream that a server sends first, over
 * either transport: the Audio-TCP HELLO frame and the Audio-UDP FORMAT
 * datagram carry the same JSON, `{rate, channels, block, streamId,
 * format: "s16le"}`, plus `mtu` over UDP.
 *
 * @module
 */
import { type AudioSpec, validateSpec } from "./spec.ts";
import { jsonBytes, parseJsonObject } from "../wire/json.ts";

/** What a server announces about its stream. */
export interface StreamFormat extends AudioSpec {
  /** Random id of this capture; a new id means the server restarted. */
  streamId: number;
  /** Sample format; always 16-bit signed little-endian. */
  format: "s16le";
}

/** The JSON body of a stream description. */
export function encodeStreamFormat(f: StreamFormat & { mtu?: number }): Uint8Array {
  return jsonBytes(f);
}

/**
 * Parses a stream description. Returns the format with any extra numeric
 * fields the transport reads (`mtu`), or a string saying why it is unusable.
 */
export function parseStreamFormat(
  bytes: Uint8Array,
): (StreamFormat & { fields: Record<string, unknown> }) | string {
  const o = parseJsonObject(bytes);
  if (typeof o === "string") return o;
  if (o.format !== "s16le") return "has an unknown sample format";
  if (typeof o.streamId !== "number" || !Number.isInteger(o.streamId)) return "has no stream id";
  let spec: AudioSpec;
  try {
    spec = validateSpec({
      rate: o.rate as number,
      channels: o.channels as number,
      block: o.block as number,
    });
  } catch (err) {
    return `is unusable: ${(err as Error).message}`;
  }
  return { ...spec, streamId: o.streamId, format: "s16le", fields: o };
}

/** Whether two specs describe the same audio (rate, channels, block). */
export function sameSpec(a: AudioSpec, b: AudioSpec): boolean {
  return a.rate === b.rate && a.channels === b.channels && a.block === b.block;
}

/**
 * The one description of an audio stream that a server sends first, over
 * either transport: the Audio-TCP HELLO frame and the Audio-UDP FORMAT
 * datagram carry the same JSON, `{rate, channels, block, streamId,
 * format: "s16le", protocol}`, plus `mtu` over UDP. `protocol` is the
 * audio protocol's version: 2 answers clock sync requests; a description
 * without it is version 1.
 *
 * @module
 */
import { type AudioSpec, validateSpec } from "./spec.ts";
import { jsonBytes, parseJsonObject } from "../../wire/json.ts";

/** What a server announces about its stream. */
export interface StreamFormat extends AudioSpec {
  /** Random id of this capture; a new id means the server restarted. */
  streamId: number;
  /** Sample format; always 16-bit signed little-endian. */
  format: "s16le";
  /** The audio protocol's version (1 when absent; 2 answers clock sync). */
  protocol?: number;
}

/**
 * The audio protocol version this code speaks: 2 adds clock sync, 3 a
 * block MD5 that covers the block's header (`block_digest.ts`).
 */
export const AUDIO_PROTOCOL = 3;

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
  const protocol = o.protocol ?? 1;
  if (typeof protocol !== "number" || !Number.isInteger(protocol) || protocol < 1) {
    return "has an unusable protocol version";
  }
  return { ...spec, streamId: o.streamId, format: "s16le", protocol, fields: o };
}

/** Whether two specs describe the same audio (rate, channels, block). */
export function sameSpec(a: AudioSpec, b: AudioSpec): boolean {
  return a.rate === b.rate && a.channels === b.channels && a.block === b.block;
}

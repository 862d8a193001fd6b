/**
 * The audio format every audio tool shares: 16-bit signed little-endian PCM
 * at a rate, a channel count and a block size in frames. Defaults are the
 * original project's: 44100 Hz, mono, 512-frame blocks.
 *
 * @module
 */
import { UsageError } from "../../errors.ts";

/** Format of an audio stream. */
export interface AudioSpec {
  /** Sample rate in Hz. */
  rate: number;
  /** Channels (interleaved). */
  channels: number;
  /** Frames per block. */
  block: number;
}

/** Bytes per sample (16-bit PCM). */
export const SAMPLE_BYTES = 2;

/** The original project's format. */
export const DEFAULT_SPEC: AudioSpec = { rate: 44100, channels: 1, block: 512 };

/** Bytes in one block. */
export function blockBytes(spec: AudioSpec): number {
  return spec.block * spec.channels * SAMPLE_BYTES;
}

/** Duration of one block in milliseconds. */
export function blockMs(spec: AudioSpec): number {
  return (spec.block / spec.rate) * 1000;
}

/** Checks a spec's ranges; throws {@link UsageError} naming the bad value. */
export function validateSpec(spec: AudioSpec): AudioSpec {
  if (!Number.isInteger(spec.rate) || spec.rate < 8000 || spec.rate > 192000) {
    throw new UsageError(`Sample rate ${spec.rate} is not supported; use 8000 to 192000 Hz`);
  }
  if (!Number.isInteger(spec.channels) || spec.channels < 1 || spec.channels > 8) {
    throw new UsageError(`Channel count ${spec.channels} is not supported; use 1 to 8`);
  }
  if (!Number.isInteger(spec.block) || spec.block < 16 || spec.block > 16384) {
    throw new UsageError(`Block size ${spec.block} is not supported; use 16 to 16384 frames`);
  }
  return spec;
}

/** "44100 Hz, 1 ch, 512-frame blocks". */
export function describeSpec(s: AudioSpec): string {
  return `${s.rate} Hz, ${s.channels} ch, ${s.block}-frame blocks`;
}

/**
 * The audio format every audio tool shares: 16-bit signed little-endian PCM
 * at a rate, a channel count and a block size in frames. Defaults are the
 * original project's: 44100 Hz, mono, 512-frame blocks.
 *
 * @module
 */
import { UserError } from "./errors.ts";
import type { FlagSpec } from "./cli.ts";

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

/** Checks a spec's ranges; throws {@link UserError} naming the bad value. */
export function validateSpec(spec: AudioSpec): AudioSpec {
  if (!Number.isInteger(spec.rate) || spec.rate < 8000 || spec.rate > 192000) {
    throw new UserError(`Sample rate ${spec.rate} is not supported; use 8000 to 192000 Hz`, 2);
  }
  if (!Number.isInteger(spec.channels) || spec.channels < 1 || spec.channels > 8) {
    throw new UserError(`Channel count ${spec.channels} is not supported; use 1 to 8`, 2);
  }
  if (!Number.isInteger(spec.block) || spec.block < 16 || spec.block > 16384) {
    throw new UserError(`Block size ${spec.block} is not supported; use 16 to 16384 frames`, 2);
  }
  return spec;
}

/** The `--rate`, `--channels` and `--block` flags, with a tool's default block. */
export function audioFlags(
  block: number = DEFAULT_SPEC.block,
): { rate: FlagSpec; channels: FlagSpec; block: FlagSpec } {
  return {
    rate: {
      type: "string",
      default: String(DEFAULT_SPEC.rate),
      value: "HZ",
      help: "sample rate",
    } as FlagSpec,
    channels: {
      type: "string",
      default: String(DEFAULT_SPEC.channels),
      value: "N",
      help: "channels",
    } as FlagSpec,
    block: {
      type: "string",
      default: String(block),
      value: "FRAMES",
      help: "frames per block",
    } as FlagSpec,
  };
}

/** Reads the audio flags into a validated spec. */
export function specFromFlags(flags: { rate: string; channels: string; block: string }): AudioSpec {
  const num = (name: string, text: string) => {
    if (!/^\d+$/.test(text)) {
      throw new UserError(`--${name} ${JSON.stringify(text)} is not a whole number`, 2);
    }
    return Number(text);
  };
  return validateSpec({
    rate: num("rate", flags.rate),
    channels: num("channels", flags.channels),
    block: num("block", flags.block),
  });
}

/** "44100 Hz, 1 ch, 512-frame blocks". */
export function describeSpec(s: AudioSpec): string {
  return `${s.rate} Hz, ${s.channels} ch, ${s.block}-frame blocks`;
}

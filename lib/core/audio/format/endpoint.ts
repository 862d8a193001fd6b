/**
 * The one way every tool names where audio comes from and goes to
 * (`--input SPEC`, `--output SPEC`). Parsing only; `audio_io.ts` opens them.
 *
 * | SPEC | meaning |
 * | --- | --- |
 * | `default` | the default PortAudio device |
 * | `3` | PortAudio device 3 |
 * | `USB` | the PortAudio device whose name contains "USB" |
 * | `tone` or `tone:880` | a sine tone (440 Hz by default); input only |
 * | `x.wav` | a 16-bit PCM WAV file, paced at real time as an input |
 * | `null` | discards; output only |
 *
 * @module
 */
import { UsageError, UserError } from "../../errors.ts";

/** A parsed endpoint. */
export type AudioEndpoint =
  | { kind: "device"; selector: "default" | number | string }
  | { kind: "tone"; hz: number }
  | { kind: "wav"; path: string }
  | { kind: "null" };

/** Parses an endpoint SPEC for `direction`; throws {@link UsageError} if invalid. */
export function parseEndpoint(spec: string, direction: "input" | "output"): AudioEndpoint {
  const text = spec.trim();
  if (text === "") {
    throw new UsageError(`--${direction} needs a value; try --${direction} default`);
  }
  if (/\.wav$/i.test(text)) return { kind: "wav", path: text };
  if (text === "null") {
    if (direction === "input") {
      throw new UsageError("--input null is not a source; use tone or a WAV file");
    }
    return { kind: "null" };
  }
  const tone = /^tone(?::(\d+(?:\.\d+)?))?$/.exec(text);
  if (tone) {
    if (direction === "output") {
      throw new UsageError("--output tone is not a sink; use default, a WAV file or null");
    }
    const hz = tone[1] === undefined ? 440 : Number(tone[1]);
    if (!(hz > 0 && hz < 20000)) {
      throw new UsageError(`Tone frequency ${tone[1]} Hz is outside 1 to 19999 Hz`);
    }
    return { kind: "tone", hz };
  }
  if (text === "default") return { kind: "device", selector: "default" };
  if (/^\d+$/.test(text)) return { kind: "device", selector: Number(text) };
  return { kind: "device", selector: text };
}

/** What a device list entry needs for matching. */
export interface NamedDevice {
  /** Global device index. */
  index: number;
  /** Device name. */
  name: string;
  /** Most input channels (0: not an input). */
  maxInputChannels: number;
  /** Most output channels (0: not an output). */
  maxOutputChannels: number;
}

/**
 * Picks the device a selector names among `devices` for `direction`, or
 * throws {@link UserError} saying why none fits. `defaultIndex` is used for
 * "default".
 */
export function selectDevice(
  selector: "default" | number | string,
  direction: "input" | "output",
  devices: NamedDevice[],
  defaultIndex: number,
): number {
  const usable = (d: NamedDevice) =>
    direction === "input" ? d.maxInputChannels > 0 : d.maxOutputChannels > 0;
  const hint = "; run `deno task devices` to list them";
  if (selector === "default") {
    if (defaultIndex < 0) throw new UserError(`There is no default ${direction} device${hint}`);
    return defaultIndex;
  }
  if (typeof selector === "number") {
    const d = devices.find((d) => d.index === selector);
    if (!d) throw new UserError(`There is no audio device ${selector}${hint}`);
    if (!usable(d)) {
      throw new UserError(`Device ${selector} (${d.name}) has no ${direction}s${hint}`);
    }
    return selector;
  }
  const needle = selector.toLowerCase();
  const matches = devices.filter((d) => usable(d) && d.name.toLowerCase().includes(needle));
  const exact = matches.filter((d) => d.name.toLowerCase() === needle);
  if (exact.length === 1) return exact[0].index;
  if (matches.length === 1) return matches[0].index;
  if (matches.length === 0) {
    throw new UserError(`No ${direction} device matches ${JSON.stringify(selector)}${hint}`);
  }
  throw new UserError(
    `${JSON.stringify(selector)} matches several ${direction} devices (` +
      matches.map((d) => `${d.index}: ${d.name}`).join(", ") + "); use the index",
  );
}

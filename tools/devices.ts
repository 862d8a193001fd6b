/**
 * `deno task devices`: lists PortAudio's host APIs and devices with index,
 * name, channels, default rate and latency, marking the defaults.
 *
 * @module
 */
import { parseFlags, runMain } from "../lib/cli/flags.ts";
import { PortAudio } from "../native/mod.ts";

/** The device listing as text (what the tool prints). */
export function listDevices(pa: PortAudio): string {
  const apis = pa.hostApis();
  const devices = pa.devices();
  const defIn = pa.defaultInputDevice();
  const defOut = pa.defaultOutputDevice();
  const lines = [`${pa.versionText}`, "", "Host APIs:"];
  for (const a of apis) lines.push(`  ${a.index}  ${a.name} (${a.deviceCount} devices)`);
  lines.push("", "Devices (* default input, > default output):");
  lines.push("  mark index  in  out   rate  latency in/out  host API  name");
  for (const d of devices) {
    const mark = (d.index === defIn ? "*" : " ") + (d.index === defOut ? ">" : " ");
    const ms = (s: number) => `${(s * 1000).toFixed(1)}`;
    lines.push(
      `  ${mark}  ${String(d.index).padStart(5)} ${String(d.maxInputChannels).padStart(3)} ` +
        `${String(d.maxOutputChannels).padStart(4)} ${String(d.defaultSampleRate).padStart(6)} ` +
        `${
          (ms(d.defaultLowInputLatency) + "/" + ms(d.defaultLowOutputLatency) + " ms").padStart(15)
        }` +
        `  ${(apis[d.hostApi]?.name ?? "?").padEnd(8)}  ${d.name}`,
    );
  }
  if (devices.length === 0) lines.push("  (no devices)");
  return lines.join("\n");
}

if (import.meta.main) {
  runMain(async () => {
    parseFlags(Deno.args, {}, {
      usage: "deno task devices",
      summary: "List PortAudio host APIs and audio devices.",
    });
    using pa = PortAudio.open();
    console.log(listDevices(pa));
    await Promise.resolve();
  });
}

/**
 * Finds and loads the system PortAudio. `PORTAUDIO_PATH` overrides the
 * search; when nothing loads, a {@link PortAudioLoadError} names the fix.
 *
 * @module
 */
import { PortAudioLoadError } from "./errors.ts";
import { type PortAudioSymbols, SYMBOLS } from "./symbols.ts";

/** Environment variable that names the library file to load. */
export const PATH_VARIABLE = "PORTAUDIO_PATH";

/** Library names tried in order on each platform. */
export function candidates(os: typeof Deno.build.os = Deno.build.os): string[] {
  switch (os) {
    case "windows":
      return ["portaudio.dll", "portaudio_x64.dll", "libportaudio-2.dll"];
    case "darwin":
      return [
        "libportaudio.2.dylib",
        "libportaudio.dylib",
        "/opt/homebrew/lib/libportaudio.2.dylib",
        "/usr/local/lib/libportaudio.2.dylib",
      ];
    default:
      return ["libportaudio.so.2", "libportaudio.so"];
  }
}

/** How to install PortAudio on this platform. */
export function installHint(os: typeof Deno.build.os = Deno.build.os): string {
  switch (os) {
    case "windows":
      return "put portaudio.dll beside the program or on PATH";
    case "darwin":
      return "brew install portaudio";
    default:
      return "apt-get install libportaudio2";
  }
}

let loaded: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

/**
 * Loads PortAudio once and returns its symbols. Throws
 * {@link PortAudioLoadError} with a one-line fix when it cannot.
 */
export function loadPortAudio(): PortAudioSymbols {
  if (loaded) return loaded.symbols;
  let override: string | undefined;
  try {
    override = Deno.env.get(PATH_VARIABLE);
  } catch {
    override = undefined; // No env permission: search the usual names.
  }
  const names = override ? [override] : candidates();
  let lastError = "";
  for (const name of names) {
    try {
      loaded = Deno.dlopen(name, SYMBOLS);
      return loaded.symbols;
    } catch (err) {
      if (err instanceof Deno.errors.NotCapable) {
        throw new PortAudioLoadError(
          "Deno needs --allow-ffi to load PortAudio (the deno.json tasks grant it)",
        );
      }
      lastError = err instanceof Error ? err.message.split("\n")[0] : String(err);
    }
  }
  if (override) {
    throw new PortAudioLoadError(
      `Could not load PortAudio from ${PATH_VARIABLE}=${override} (${lastError}); ` +
        `fix the path or unset ${PATH_VARIABLE}`,
    );
  }
  throw new PortAudioLoadError(
    `PortAudio is not installed (tried ${names.join(", ")}); ${installHint()}, ` +
      `or set ${PATH_VARIABLE} to the library file`,
  );
}

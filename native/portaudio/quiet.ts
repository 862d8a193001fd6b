/**
 * ALSA and JACK print pages of probing messages on stderr while PortAudio
 * initialises ("cannot find card '0'", "jack server is not running"…),
 * which drown a tool's own one-line output. On Linux and macOS this points
 * file descriptor 2 at /dev/null around such calls, through libc's `dup`
 * and `dup2`. Set `PORTAUDIO_DEBUG=1` to see the messages.
 *
 * @module
 */

const LIBC = {
  dup: { parameters: ["i32"], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

let libc: Deno.DynamicLibrary<typeof LIBC>["symbols"] | null | undefined;

function load(): typeof libc {
  if (libc !== undefined) return libc;
  libc = null;
  try {
    if (Deno.env.get("PORTAUDIO_DEBUG")) return libc;
  } catch {
    // No env permission: stay quiet.
  }
  const names = Deno.build.os === "darwin"
    ? ["libSystem.B.dylib"]
    : Deno.build.os === "windows"
    ? []
    : ["libc.so.6", "libc.so"];
  for (const name of names) {
    try {
      libc = Deno.dlopen(name, LIBC).symbols;
      break;
    } catch {
      // Try the next.
    }
  }
  return libc;
}

const O_WRONLY = 1;

/** Points fd 2 at /dev/null; returns a function that restores it. */
function silence(): () => void {
  const c = load();
  if (!c) return () => {};
  const devnull = c.open(new TextEncoder().encode("/dev/null\0"), O_WRONLY);
  if (devnull < 0) return () => {};
  const saved = c.dup(2);
  c.dup2(devnull, 2);
  c.close(devnull);
  return () => {
    c.dup2(saved, 2);
    c.close(saved);
  };
}

/** Runs `fn` with stderr sent to /dev/null; restores it however `fn` ends. */
export function quietlySync<T>(fn: () => T): T {
  const restore = silence();
  try {
    return fn();
  } finally {
    restore();
  }
}

/** Async form of {@link quietlySync}. */
export async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const restore = silence();
  try {
    return await fn();
  } finally {
    restore();
  }
}

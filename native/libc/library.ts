/**
 * Finds and loads the system libc (glibc on Linux). `LIBC_PATH` overrides
 * the search; when nothing loads, a {@link LibcLoadError} names the fix.
 *
 * @module
 */
import { LibcLoadError } from "./errors.ts";
import { type LibcSymbols, SYMBOLS } from "./symbols.ts";

/** Environment variable that names the library file to load. */
export const LIBC_PATH_VARIABLE = "LIBC_PATH";

let loaded: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

/**
 * Loads libc once and returns its symbols. Linux only (the calls are
 * Linux's); throws {@link LibcLoadError} with a one-line fix when it cannot.
 */
export function loadLibc(): LibcSymbols {
  if (loaded) return loaded.symbols;
  if (Deno.build.os !== "linux") {
    throw new LibcLoadError(
      `This needs Linux (openat2 and the *at calls); ${Deno.build.os} is not supported`,
    );
  }
  // Read only if granted: asking would prompt on a terminal.
  const granted =
    Deno.permissions.querySync({ name: "env", variable: LIBC_PATH_VARIABLE }).state === "granted";
  const override = granted ? Deno.env.get(LIBC_PATH_VARIABLE) : undefined;
  const name = override ?? "libc.so.6";
  try {
    loaded = Deno.dlopen(name, SYMBOLS);
    return loaded.symbols;
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) {
      throw new LibcLoadError("Deno needs --allow-ffi to load libc (the deno.json tasks grant it)");
    }
    const why = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new LibcLoadError(
      override
        ? `Could not load libc from ${LIBC_PATH_VARIABLE}=${override} (${why}); ` +
          `fix the path or unset ${LIBC_PATH_VARIABLE}`
        : `Could not load glibc 2.33 or later as ${name} (${why}); ` +
          `set ${LIBC_PATH_VARIABLE} to the library file`,
    );
  }
}

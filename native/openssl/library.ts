/**
 * Finds and loads the system libcrypto (OpenSSL 3). `LIBCRYPTO_PATH`
 * overrides the search; when nothing loads, a {@link LibcryptoLoadError}
 * names the fix.
 *
 * @module
 */
import { LibcryptoLoadError } from "./errors.ts";
import { type LibcryptoSymbols, SYMBOLS } from "./symbols.ts";

/** Environment variable that names the library file to load. */
export const LIBCRYPTO_PATH_VARIABLE = "LIBCRYPTO_PATH";

/** Library names tried in order on each platform. */
export function libcryptoCandidates(os: typeof Deno.build.os = Deno.build.os): string[] {
  switch (os) {
    case "windows":
      return ["libcrypto-3-x64.dll", "libcrypto-3.dll"];
    case "darwin":
      return [
        "libcrypto.3.dylib",
        "/opt/homebrew/opt/openssl@3/lib/libcrypto.3.dylib",
        "/usr/local/opt/openssl@3/lib/libcrypto.3.dylib",
      ];
    default:
      return ["libcrypto.so.3"];
  }
}

let loaded: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

/**
 * Loads libcrypto once and returns its symbols. Throws
 * {@link LibcryptoLoadError} with a one-line fix when it cannot.
 */
export function loadLibcrypto(): LibcryptoSymbols {
  if (loaded) return loaded.symbols;
  // Read only if granted: asking would prompt on a terminal.
  const granted =
    Deno.permissions.querySync({ name: "env", variable: LIBCRYPTO_PATH_VARIABLE }).state ===
      "granted";
  const override = granted ? Deno.env.get(LIBCRYPTO_PATH_VARIABLE) : undefined;
  const names = override ? [override] : libcryptoCandidates();
  let lastError = "";
  for (const name of names) {
    try {
      const lib = Deno.dlopen(name, SYMBOLS);
      // OpenSSL 3.x only: the EVP calls below follow its API.
      if (lib.symbols.OpenSSL_version_num() >> 28n !== 3n) {
        lib.close();
        lastError = "not OpenSSL 3";
        continue;
      }
      loaded = lib;
      return lib.symbols;
    } catch (err) {
      if (err instanceof Deno.errors.NotCapable) {
        throw new LibcryptoLoadError(
          "Deno needs --allow-ffi to load libcrypto (the deno.json tasks grant it)",
        );
      }
      lastError = err instanceof Error ? err.message.split("\n")[0] : String(err);
    }
  }
  if (override) {
    throw new LibcryptoLoadError(
      `Could not load libcrypto from ${LIBCRYPTO_PATH_VARIABLE}=${override} (${lastError}); ` +
        `fix the path or unset ${LIBCRYPTO_PATH_VARIABLE}`,
    );
  }
  throw new LibcryptoLoadError(
    `OpenSSL 3's libcrypto is not installed (tried ${names.join(", ")}: ${lastError}); ` +
      `apt-get install libssl3, or set ${LIBCRYPTO_PATH_VARIABLE} to the library file`,
  );
}

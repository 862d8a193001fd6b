/**
 * The shared code as the tools take it: `--code PHRASE`, else the
 * environment variable `SOCKETS_CODE`; `--code new` has the server draw
 * one. A server listening beyond loopback always has one: drawn and
 * printed when not given.
 *
 * @module
 */
import { grantedEnv } from "../io/env.ts";
import { UsageError } from "../core/errors.ts";
import {
  CODE_RANDOM_BYTES,
  generateCode,
  MIN_CODE_LENGTH,
  normalizeCode,
} from "../core/crypto/code.ts";
import { isLoopback } from "../core/crypto/admission.ts";

export { isLoopback };

/** A fresh code, drawn from the system's random source. */
export function newCode(): string {
  return generateCode(crypto.getRandomValues(new Uint8Array(CODE_RANDOM_BYTES)));
}

/**
 * The code a tool runs with, or undefined for none. `flag` is `--code`'s
 * value ("" when absent). `server`: the listening host, for a server
 * (which then draws a code when it listens beyond loopback). Says on
 * stderr when a code on the command line can be seen by other users, and
 * on stdout (`code: PHRASE`) when it drew one.
 */
export function resolveCode(flag: string, server?: { host: string }): string | undefined {
  let code: string | undefined;
  if (flag !== "") {
    if (flag === "new" && server) {
      code = newCode();
      console.log(`code: ${code}`);
    } else {
      code = flag;
      console.error(
        "warning: a code given with --code can be seen by other users of this machine " +
          "(in the process list); SOCKETS_CODE keeps it out of sight",
      );
    }
  } else {
    // Read only where the task grants it (the file and audio tasks do).
    code = grantedEnv("SOCKETS_CODE") || undefined;
  }
  if (code === undefined && server && !isLoopback(server.host)) {
    code = newCode();
    console.log(`code: ${code} (listening beyond loopback needs one; give it to your clients)`);
  }
  if (code !== undefined && normalizeCode(code).length < MIN_CODE_LENGTH) {
    throw new UsageError(`A code needs at least ${MIN_CODE_LENGTH} letters or digits`);
  }
  return code;
}

/** The `--code` flag both file tools and audio tools take. */
export const CODE_FLAG = {
  type: "string",
  default: "",
  value: "PHRASE",
  help: "shared code (else SOCKETS_CODE); a server's `new` draws one",
} as const;

/**
 * Runs `attempt` with `code`. When a server answers that it needs a code
 * and the user gave none, asks for it on a terminal (once, with the
 * typed code kept out of the process list) and runs `attempt` again.
 */
export async function withCodePrompt<T>(
  code: string | undefined,
  attempt: (code: string | undefined) => Promise<T>,
): Promise<T> {
  try {
    return await attempt(code);
  } catch (err) {
    const needs = err instanceof Error && /needs a code/.test(err.message);
    if (!needs || code !== undefined || !Deno.stdin.isTerminal()) throw err;
    const asked = prompt("This server needs a code. Code:")?.trim();
    if (!asked) throw err;
    return await attempt(asked);
  }
}

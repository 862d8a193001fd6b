/**
 * Paths the user typed, resolved where the user typed them.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";

/**
 * Resolves a path the user typed against the directory they ran the command
 * from. `deno task` runs tools from the project directory and keeps the
 * user's in INIT_CWD.
 */
export function resolveUserPath(path: string): string {
  if (isAbsolute(path)) return path;
  let base: string | undefined;
  try {
    base = Deno.env.get("INIT_CWD");
  } catch {
    base = undefined;
  }
  return resolve(base ?? Deno.cwd(), path);
}

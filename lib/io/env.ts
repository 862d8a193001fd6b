/**
 * Environment variables read only where Deno grants them: asking for one
 * that is not granted would prompt on a terminal, and a tool's optional
 * setting should never stop to ask.
 *
 * @module
 */

/** The value of `variable`, or undefined when it is unset or not granted. */
export function grantedEnv(variable: string): string | undefined {
  const state = Deno.permissions.querySync({ name: "env", variable }).state;
  return state === "granted" ? Deno.env.get(variable) : undefined;
}

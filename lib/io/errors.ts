/**
 * Translates what the runtime throws (Deno's errors, PortAudio's) into one
 * line a user can act on. The cores' own errors already are such lines.
 *
 * @module
 */
import { UserError } from "../core/errors.ts";
import { LibcError, PortAudioError, PortAudioLoadError } from "../../native/mod.ts";

/**
 * Turns any thrown value into a one-line message a user can act on. Known
 * Deno errors are translated; anything else keeps its own message.
 *
 * @param err The thrown value.
 * @param context What was being done, e.g. "Could not connect to 127.0.0.1:4545".
 */
export function describeError(err: unknown, context?: string): string {
  const prefix = context ? `${context}: ` : "";
  if (err instanceof UserError) return err.message;
  if (err instanceof PortAudioError || err instanceof PortAudioLoadError) return err.message;
  if (err instanceof LibcError) {
    if (err.code === "ENOSPC" || err.code === "EDQUOT") {
      return `${prefix}no space left on the device`;
    }
    if (err.code === "EACCES" || err.code === "EPERM") return `${prefix}permission denied`;
  }
  if (err instanceof Deno.errors.ConnectionRefused) {
    return `${prefix}connection refused (is the server running?)`;
  }
  if (err instanceof Deno.errors.AddrInUse) {
    return `${prefix}the address is already in use`;
  }
  if (err instanceof Deno.errors.NotFound) return `${prefix}not found`;
  if (err instanceof Deno.errors.PermissionDenied) {
    return `${prefix}permission denied`;
  }
  if (err instanceof Deno.errors.NotCapable) {
    return `${prefix}Deno permission missing (${firstLine(err)})`;
  }
  if (err instanceof Deno.errors.ConnectionReset) {
    return `${prefix}the connection was reset by the peer`;
  }
  if (err instanceof Deno.errors.TimedOut) return `${prefix}timed out`;
  if (err instanceof Deno.errors.AddrNotAvailable) {
    return `${prefix}the address is not available on this machine`;
  }
  if (err instanceof Deno.errors.BrokenPipe) {
    return `${prefix}the peer closed the connection`;
  }
  if (err instanceof Error) {
    if (/No space left/i.test(err.message)) {
      return `${prefix}no space left on the device`;
    }
    if (/failed to lookup address|Name or service not known/i.test(err.message)) {
      return `${prefix}unknown host`;
    }
    return `${prefix}${firstLine(err)}`;
  }
  return `${prefix}${String(err)}`;
}

/**
 * The error for a file that could not be opened or read: `WHAT PATH does
 * not exist` when it is missing, else what went wrong, naming the path.
 */
export function readError(err: unknown, path: string, what = "File"): UserError {
  if (err instanceof Deno.errors.NotFound) return new UserError(`${what} ${path} does not exist`);
  return new UserError(describeError(err, `Cannot read ${path}`));
}

function firstLine(err: Error): string {
  return err.message.split("\n")[0];
}

/**
 * Closes a socket, listener or file, ignoring the error it throws when it
 * is already closed. The one place that swallows close errors.
 */
export function closeQuietly(resource: { close(): unknown } | undefined | null): void {
  try {
    resource?.close();
  } catch {
    // Already closed.
  }
}

/**
 * The error classes every tool shares. A {@link UserError} is something the
 * user can act on: the tools print its message on one line and exit with its
 * code, never with a stack trace.
 *
 * @module
 */

/** An error whose message is fit to show a user as it is. */
export class UserError extends Error {
  /** The process exit code a tool should use for this error. */
  readonly exitCode: number;

  /**
   * Creates an error with a message fit to show as it is.
   *
   * @param message One sentence in sentence case naming what failed and why.
   * @param exitCode Exit code for the process (default 1).
   */
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "UserError";
    this.exitCode = exitCode;
  }
}

/** A peer sent bytes that break the protocol (bad magic, impossible length…). */
export class ProtocolError extends UserError {
  /** Creates a protocol error naming what the peer got wrong. */
  constructor(message: string) {
    super(message, 1);
    this.name = "ProtocolError";
  }
}

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

function firstLine(err: Error): string {
  return err.message.split("\n")[0];
}

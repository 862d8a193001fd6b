/**
 * The error classes the cores throw. The policy, in one place:
 *
 * - A **stream decoder** (frames over TCP) throws {@link ProtocolError}: a
 *   byte stream that breaks once cannot be trusted past that point, so the
 *   session ends.
 * - A **datagram decoder** returns a reason for rejecting (never throws):
 *   one bad datagram says nothing about the next, so it is counted and the
 *   session goes on.
 * - A core never carries an exit code. {@link UserError} means "the message
 *   is fit to show as it is"; {@link UsageError} means the user gave a bad
 *   value. The CLI shell (`lib/cli`) prints one line and picks the exit code
 *   (2 for usage, 1 otherwise); `lib/io` translates Deno's and PortAudio's
 *   errors into such lines.
 *
 * @module
 */

/** An error whose message is fit to show a user as it is. */
export class UserError extends Error {
  /**
   * Creates an error with a message fit to show as it is.
   *
   * @param message One sentence in sentence case naming what failed and why.
   */
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}

/** A value the user gave (a flag, an endpoint, a format) is not usable. */
export class UsageError extends UserError {
  /** Creates a usage error naming the bad value and what would be good. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A peer sent bytes that break the protocol (bad magic, impossible length…). */
export class ProtocolError extends UserError {
  /** Creates a protocol error naming what the peer got wrong. */
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

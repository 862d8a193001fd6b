/**
 * One transport for a framed protocol's frames, plain or sealed, with no
 * I/O: a tool wraps each frame it sends and unwraps the bytes it reads,
 * and never asks which of the two it runs on (a session with a code is
 * sealed by its {@link SecureStream}, one without passes frames through).
 *
 * @module
 */
import { UserError } from "../errors.ts";
import { SecureStream } from "./secure_stream.ts";

/** Frames in, bytes out and back. */
export interface FrameTransport {
  /** The bytes to write for one frame. */
  wrap(frame: Uint8Array): Uint8Array;
  /** The frames (opened) in bytes just read; a plain transport's are the bytes themselves. */
  unwrap(bytes: Uint8Array): Uint8Array[];
}

/** Options of {@link frameTransport}. */
export interface FrameTransportOptions {
  /**
   * A server without a code: a client whose first bytes start a
   * handshake is told this server has none (a {@link UserError}).
   */
  refuseCode?: boolean;
}

/**
 * The transport of a session: sealed by `secure` when it proved a code,
 * else plain.
 */
export function frameTransport(
  secure: SecureStream | undefined,
  options: FrameTransportOptions = {},
): FrameTransport {
  if (secure) {
    return {
      wrap: (frame) => secure.seal(frame),
      unwrap: (bytes) => secure.receive(bytes).flatMap((e) => e.type === "data" ? [e.bytes] : []),
    };
  }
  let first = options.refuseCode ?? false;
  return {
    wrap: (frame) => frame,
    unwrap: (bytes) => {
      // A coded client's first frame at this plain server: said so.
      if (first && SecureStream.isStart(bytes)) {
        throw new UserError("A client sent a code to this server, which has none");
      }
      first = false;
      return [bytes];
    },
  };
}

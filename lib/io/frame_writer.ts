/**
 * Writes frames to a connection in order, one write at a time, sealing
 * each when the session is encrypted. Small frames (offers, ends, small
 * files' data) are gathered and written together: a write each would cost
 * ten thousand small files a trip through the runtime each. A large frame
 * is written from the caller's buffer while the caller fills another.
 *
 * @module
 */
import { sealedLength, type SecureStream } from "../core/crypto/secure_stream.ts";
import { writeAll, type Writer } from "./streams.ts";

/** Bytes of small frames gathered before they are written together. */
export const GATHER_BYTES = 256 * 1024;

/** An in-order, gathering frame writer: see the module's note. */
export class FrameWriter {
  #conn: Writer;
  #secure: SecureStream | undefined;
  #pending: Promise<void> = Promise.resolve();
  #failure: unknown;
  /** Two gathering buffers, used in turn: one is filled while the other's bytes are written. */
  #gather = [0, 1].map(() => new Uint8Array(GATHER_BYTES));
  #turn = 0;
  #gathered = 0;
  /** Each write waits for the one before, so one sealing buffer serves. */
  #sealed: Uint8Array | undefined;

  /** A writer to `conn` of frames up to `maxFrame` bytes, sealed by `secure` when set. */
  constructor(conn: Writer, secure: SecureStream | undefined, maxFrame: number) {
    this.#conn = conn;
    this.#secure = secure;
    this.#sealed = secure && new Uint8Array(sealedLength(maxFrame));
  }

  /** The first write that failed, if one did. */
  get failure(): unknown {
    return this.#failure;
  }

  /** Waits for the write under way; a failure is kept in {@link failure}, not thrown. */
  settle(): Promise<void> {
    return this.#pending.catch((err) => {
      this.#failure ??= err;
    });
  }

  /** Writes what was gathered. Throws the first write's failure. */
  async flush(): Promise<void> {
    if (this.#gathered === 0) return;
    const bytes = this.#gather[this.#turn].subarray(0, this.#gathered);
    this.#turn ^= 1;
    this.#gathered = 0;
    await this.settle();
    if (this.#failure) throw this.#failure;
    this.#pending = writeAll(this.#conn, bytes);
  }

  /**
   * Writes `frame` after those before it: a small one (or any not `big`)
   * is copied and gathered; a big one is written from its buffer, which
   * the caller must not touch until the next {@link settle}.
   */
  async write(frame: Uint8Array, big: boolean): Promise<void> {
    const secure = this.#secure;
    if (!big || frame.length < GATHER_BYTES / 4) {
      // Copied: `frame` may be a buffer that is read into again.
      const b = secure ? secure.seal(frame) : frame;
      if (this.#gathered + b.length > GATHER_BYTES) await this.flush();
      this.#gather[this.#turn].set(b, this.#gathered);
      this.#gathered += b.length;
      return;
    }
    await this.flush();
    await this.settle();
    if (this.#failure) throw this.#failure;
    this.#pending = writeAll(this.#conn, secure ? secure.seal(frame, this.#sealed!) : frame);
  }
}

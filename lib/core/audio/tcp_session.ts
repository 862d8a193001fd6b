/**
 * The Audio-TCP listener's session core: bytes from the server in, the
 * stream's hello and its blocks out. The first frame must be a HELLO; after
 * it, only BLOCKs of the announced size. No I/O.
 *
 * @module
 */
import { ProtocolError } from "../errors.ts";
import { FrameDecoder } from "../wire/frame.ts";
import {
  AUDIO_CLIENT_LIMITS,
  AudioMsg,
  decodeBlock,
  decodeHello,
  type Hello,
  type ReceivedBlock,
} from "./tcp_frames.ts";

/** What the server's bytes mean. */
export type AudioTcpEvent =
  | { type: "hello"; hello: Hello }
  | { type: "block"; block: ReceivedBlock };

/** One connection to an Audio-TCP server, as the listener sees it. */
export class AudioTcpReceiver {
  /** Bytes received, headers included. */
  bytes = 0;
  #decoder = new FrameDecoder(AUDIO_CLIENT_LIMITS);
  #hello: Hello | undefined;

  /** The stream's hello, once received. */
  get hello(): Hello | undefined {
    return this.#hello;
  }

  /** Takes bytes from the server; throws {@link ProtocolError} on anything out of place. */
  receive(bytes: Uint8Array): AudioTcpEvent[] {
    this.bytes += bytes.length;
    this.#decoder.push(bytes);
    const out: AudioTcpEvent[] = [];
    for (let f = this.#decoder.next(); f !== null; f = this.#decoder.next()) {
      if (!this.#hello) {
        if (f.type !== AudioMsg.HELLO) throw new ProtocolError("it sent no hello");
        this.#hello = decodeHello(f.payload);
        out.push({ type: "hello", hello: this.#hello });
      } else if (f.type === AudioMsg.BLOCK) {
        out.push({ type: "block", block: decodeBlock(f.payload, this.#hello) });
      } else {
        throw new ProtocolError(`Unexpected frame type ${f.type}`);
      }
    }
    return out;
  }

  /** Call when the server closed the connection; throws if a frame was cut short. */
  closed(): void {
    this.#decoder.finish();
  }
}

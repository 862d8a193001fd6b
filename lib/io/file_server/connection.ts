/**
 * The file server's shell for one connection: it reads, unseals, hands the
 * bytes to the connection's core ({@link ServerLink}), gives each piece to
 * its transfer's {@link Session}, and writes what they answer. What the
 * bytes mean, which transfer they belong to and what a connection may
 * hold are the core's.
 *
 * @module
 */
import {
  DATA_PREFIX,
  encodeError,
  encodeStream,
  MAX_CHUNK_SIZE,
  STREAM_OFFSET,
} from "../../core/file/messages.ts";
import { FileReceiver, WholeFileMismatch } from "../../core/file/receiver.ts";
import { CodeSentToPlain, ServerLink, SINGLE } from "../../core/file/server_link.ts";
import { FolderBudget } from "../../core/file/disk_policy.ts";
import type { SecureStream } from "../../core/crypto/secure_stream.ts";
import { concatBytes, HEADER_LENGTH } from "../../core/wire/frame.ts";
import { readChunks } from "../conn.ts";
import { describeError } from "../errors.ts";
import { writeAll } from "../streams.ts";
import { acceptCoded } from "../secure_conn.ts";
import { clientMessage, TreePlacer } from "../file_store/mod.ts";
import { Session } from "./session.ts";
import type { Settings, TransferRecord } from "./settings.ts";

/** What the code's keys and confirmations are bound to. */
const FILE_CONTEXT = "file-tcp";
/** A coded connection has this long to complete the handshake, ms. */
const HANDSHAKE_MS = 5000;
/** Bytes gathered for the client before they are written without waiting for the read's end. */
const OUTBOX_BYTES = 256 * 1024;

/**
 * Serves one client connection from `host`. A connection that opens with a
 * STREAM frame carries many transfers at once (a folder, or several
 * files), each on its own stream with its own session; one that opens
 * with an OFFER carries one. A failed transfer ends with an ERROR on its
 * stream and the others go on. Never throws; reports each transfer.
 */
export function serveConnection(
  conn: Deno.Conn,
  s: Settings,
  host: string,
  report: (rec: TransferRecord) => void,
): Promise<void> {
  return new ConnectionShell(conn, s, host, report).run();
}

/** One connection's shell: its core, its sessions, and what it writes. */
class ConnectionShell {
  #conn: Deno.Conn;
  #s: Settings;
  #host: string;
  #report: (rec: TransferRecord) => void;
  #link = new ServerLink();
  #sessions = new Map<number, Session>();
  #place: TreePlacer;
  /** With a code, the handshake comes first and every frame is sealed. */
  #secure: SecureStream | undefined;
  /**
   * What goes to the client is gathered while one read's frames are taken
   * and written once after them: ten thousand small files answered with a
   * write each would cost a trip through the runtime each.
   */
  #outbox: Uint8Array[] = [];
  #outBytes = 0;
  /** One write at a time, in order: files stored in the background flush too. */
  #flushing: Promise<void> = Promise.resolve();
  /** Files being stored while the connection goes on. */
  #storing = new Set<Promise<void>>();

  constructor(
    conn: Deno.Conn,
    s: Settings,
    host: string,
    report: (rec: TransferRecord) => void,
  ) {
    this.#conn = conn;
    this.#s = s;
    this.#host = host;
    this.#report = report;
    this.#place = new TreePlacer(s.root, new FolderBudget(s.maxFolders));
  }

  /** Serves the connection to its end; never throws. */
  async run(): Promise<void> {
    let handshakeFailed = false;
    try {
      if (this.#s.code !== undefined) {
        handshakeFailed = true; // until it succeeds: the client was told why
        if (await this.#handshake()) return await this.#flush();
        handshakeFailed = false;
      }
      if (await this.#readAll()) return await this.#flush();
      for (const id of this.#link.finish()) {
        const session = this.#sessions.get(id)!;
        this.#sessions.delete(id);
        try {
          session.core.closed();
        } catch (err) {
          await this.#end(session, err, false);
        }
      }
    } catch (err) {
      // The connection failed: every transfer still open ends with it.
      if (handshakeFailed) return this.#reportConnection(err); // acceptCoded told the client why
      await this.#fail(err);
    } finally {
      await Promise.allSettled([...this.#storing]);
      await this.#flush().catch(() => {});
      await this.#s.digests.flush();
    }
  }

  /** The code's handshake and the frames that came with it; true once a one-transfer connection ended. */
  async #handshake(): Promise<boolean> {
    const s = this.#s;
    const coded = await acceptCoded(this.#conn, this.#host, s.guesses, {
      code: s.code!,
      context: FILE_CONTEXT,
      maxInner: STREAM_OFFSET + HEADER_LENGTH + DATA_PREFIX + MAX_CHUNK_SIZE,
      timeoutMs: HANDSHAKE_MS,
    }, (message) => encodeError(message)).finally(() => s.gate.leave(this.#host));
    this.#secure = coded.secure;
    for (const inner of coded.early) {
      if (await this.#take(inner)) return true;
    }
    await this.#flush();
    return false;
  }

  /** Reads the connection to its end; true once a one-transfer connection ended. */
  async #readAll(): Promise<boolean> {
    for await (
      const bytes of readChunks(this.#conn, {
        idleMs: this.#s.idleMs,
        progress: () => this.#link.progress,
        readSize: 1024 * 1024,
      })
    ) {
      if (this.#secure) {
        for (const e of this.#secure.receive(bytes)) {
          if (e.type === "data" && await this.#take(e.bytes)) return true;
        }
      } else if (await this.#take(bytes)) return true;
      await this.#flush();
    }
    return false;
  }

  /** Takes one read's worth of the client's bytes; true once a one-transfer connection ended. */
  async #take(bytes: Uint8Array): Promise<boolean> {
    const link = this.#link;
    link.push(bytes);
    for (let piece = link.next(); piece; piece = link.next()) {
      const { id } = piece;
      let session = this.#sessions.get(id);
      if (piece.opens) {
        const send = id === SINGLE
          ? (b: Uint8Array) => this.#write(b)
          : (b: Uint8Array) => this.#write(encodeStream(id, b));
        session = new Session(this.#s, this.#host, this.#place, send);
        this.#sessions.set(id, session);
      }
      // Progress is the transfers' whole messages, not link frames.
      const before = session!.core.frames;
      const outcome = await this.#feed(id, session!, piece.bytes);
      link.fed(id, session!.core.buffered, session!.core.frames - before, outcome);
      if (outcome === "open") continue;
      this.#sessions.delete(id);
      if (id === SINGLE) return true; // one transfer: the connection ends with it
    }
    return false;
  }

  /**
   * Gives a transfer's bytes to its session: whether it is still open, is
   * being stored (reported when stored), or ended (reported).
   */
  async #feed(
    id: number,
    session: Session,
    bytes: Uint8Array,
  ): Promise<"open" | "storing" | "ended"> {
    let finished = false;
    try {
      finished = await session.act(session.core.receive(bytes, performance.now()));
    } catch (err) {
      await this.#end(session, err);
      return "ended";
    }
    if (!finished) return "open";
    if (!session.finishing) {
      await this.#end(session);
      return "ended";
    }
    const task: Promise<void> = session.finishing
      .then(() => this.#end(session), (err) => this.#end(session, err))
      .then(() => this.#flush())
      .catch(() => {})
      .finally(() => {
        this.#storing.delete(task);
        this.#link.stored(id);
      });
    this.#storing.add(task);
    if (id === SINGLE) await task; // one transfer: the connection ends with it
    return "storing";
  }

  /**
   * Ends a session and reports it: stored, or failed with `err` (told to
   * the client on its stream when `tell`; not when the connection itself
   * ended). A partial left is saved for a resume.
   */
  async #end(session: Session, err?: unknown, tell = true): Promise<void> {
    if (err !== undefined) {
      if (err instanceof WholeFileMismatch) await session.partial?.discard();
      session.rec.error = describeError(err);
      if (tell) {
        await session.send(encodeError(clientMessage(err, this.#s.dir))).catch(() => {});
      }
    }
    Object.assign(session.rec, session.core.counters);
    await session.partial?.abandon().catch(() => {});
    this.#report(session.rec);
  }

  /** The connection failed: the client is told why, and every transfer still open ends with it. */
  async #fail(err: unknown): Promise<void> {
    const told = err instanceof CodeSentToPlain ? err.toClient : clientMessage(err, this.#s.dir);
    await this.#write(encodeError(told)).then(() => this.#flush()).catch(() => {});
    const open: Session[] = [];
    for (const id of this.#link.open) {
      const session = this.#sessions.get(id);
      if (session) open.push(session);
    }
    if (open.length === 0) this.#reportConnection(err);
    for (const session of open) await this.#end(session, err, false);
  }

  /** Reports a connection that failed with no transfer open. */
  #reportConnection(err: unknown): void {
    this.#report({ name: "", ...new FileReceiver().counters, error: describeError(err) });
  }

  #flush(): Promise<void> {
    if (this.#outbox.length === 0) return this.#flushing;
    const parts = this.#outbox;
    this.#outbox = [];
    this.#outBytes = 0;
    const bytes = parts.length === 1 ? parts[0] : concatBytes(parts);
    return this.#flushing = this.#flushing.catch(() => {}).then(() => writeAll(this.#conn, bytes));
  }

  #write(bytes: Uint8Array): Promise<void> {
    const b = this.#secure ? this.#secure.seal(bytes) : bytes;
    this.#outbox.push(b);
    this.#outBytes += b.length;
    return this.#outBytes >= OUTBOX_BYTES ? this.#flush() : Promise.resolve();
  }
}

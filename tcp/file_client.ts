/**
 * File-TCP client: sends files to a file server in MD5-checked chunks,
 * resends any chunk the server asks for again, resumes a cut transfer (with
 * the token the server gave when it started), and exits 0 only once the
 * server has confirmed the whole file's MD5.
 *
 * With `--update`, a file the server already stores with the same size and
 * MD5 is not sent again, and one that changed replaces the stored copy.
 *
 * Run: `deno task file-client [--host 127.0.0.1] [--port 4545] [--resume TOKEN] [--update] [FILE ...]`
 *
 * @module
 */
import { basename } from "node:path";
import { UsageError, UserError } from "../lib/core/errors.ts";
import {
  chooseChunkSize,
  type Done,
  encodeError,
  FILE_PORT,
  isResumeToken,
} from "../lib/core/file/messages.ts";
import { DATA_OFFSET, FileSender } from "../lib/core/file/sender.ts";
import { formatBytes, formatRate } from "../lib/core/report/format.ts";
import { readChunks } from "../lib/io/conn.ts";
import { closeQuietly, describeError } from "../lib/io/errors.ts";
import { connectTo } from "../lib/io/net.ts";
import { readFullSync, writeAll } from "../lib/io/streams.ts";
import { Md5Stream } from "../lib/core/wire/md5.ts";
import { connectCoded } from "../lib/io/secure_conn.ts";
import { sealedLength } from "../lib/core/crypto/secure_stream.ts";
import { useNativeCrypto } from "../lib/io/native_crypto.ts";
import { CODE_FLAG, resolveCode, withCodePrompt } from "../lib/cli/code.ts";
import { ProgressReporter } from "../lib/cli/progress.ts";
import {
  HOST_FLAG,
  parseFlags,
  parsePort,
  parseSizeFlag,
  portFlag,
  runMain,
} from "../lib/cli/flags.ts";
import { resolveUserPath } from "../lib/io/paths.ts";

/** Options of {@link sendFile}. */
export interface SendOptions {
  /** Server address (default 127.0.0.1). */
  host?: string;
  /** Server port. */
  port: number;
  /** Path of the file to send. */
  path: string;
  /** Name to send (default: the path's base name). */
  name?: string;
  /** Chunk size in bytes (grown automatically for very large files). */
  chunkSize?: number;
  /** Show progress on stderr. */
  progress?: boolean;
  /** Called after each chunk is handed to the socket (for tests). */
  onChunk?: (index: number, sent: number) => void;
  /** The token of this file's cut transfer: the server resumes it. */
  resume?: string;
  /** Called with the server's resume token once it accepts the offer. */
  onToken?: (token: string) => void;
  /** The server's code: the session is then authenticated and encrypted. */
  code?: string;
  /**
   * Skip the file if the server already stores it with the same size and
   * MD5; otherwise replace the stored copy (`--update`). The file is read
   * once more first, for its MD5.
   */
  update?: boolean;
}

/**
 * A transfer that failed after the server accepted it: running again with
 * {@link token} resumes it, sending only what the server does not hold.
 */
export class TransferCut extends UserError {
  /** The token that resumes the transfer. */
  readonly token: string;

  /** The failure's message, with how to resume added. */
  constructor(message: string, token: string) {
    super(`${message}; to resume, run again with --resume ${token}`);
    this.name = "TransferCut";
    this.token = token;
  }
}

/** What {@link sendFile} reports. */
export interface SendResult {
  /** Name sent. */
  name: string;
  /** File size. */
  bytes: number;
  /** Seconds from connecting to the server's confirmation. */
  seconds: number;
  /** Whole-file MD5 (hexadecimal), confirmed by the server. */
  md5: string;
  /** Name the server stored it under. */
  storedAs: string;
  /** Chunks in the file. */
  chunks: number;
  /** Chunks sent with data, the first time. */
  chunksSent: number;
  /** Chunks the server already held (resumed), sent as digests only. */
  chunksSkipped: number;
  /** Chunks sent again because the server's MD5 check failed. */
  chunksResent: number;
  /** The server already stored the file (`--update`): nothing was sent. */
  upToDate: boolean;
}

/** Opens `path` for reading, with errors a user can act on. */
async function openInput(path: string): Promise<{ file: Deno.FsFile; size: number }> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new UserError(`File ${path} does not exist`);
    throw new UserError(describeError(err, `Cannot read ${path}`));
  }
  if (info.isDirectory) throw new UserError(`${path} is a directory, not a file`);
  if (!info.isFile) throw new UserError(`${path} is not a regular file`);
  try {
    return { file: await Deno.open(path, { read: true }), size: info.size };
  } catch (err) {
    throw new UserError(describeError(err, `Cannot read ${path}`));
  }
}

/** The whole file's MD5 (hexadecimal), read from the start; the file is left at its start. */
async function fileMd5(file: Deno.FsFile, path: string): Promise<string> {
  const h = new Md5Stream();
  const buf = new Uint8Array(1024 * 1024);
  try {
    for (let n = await file.read(buf); n !== null; n = await file.read(buf)) {
      h.update(buf.subarray(0, n));
    }
    await file.seek(0, Deno.SeekMode.Start);
  } catch (err) {
    throw new UserError(describeError(err, `Cannot read ${path}`));
  }
  return h.hex();
}

/** Sends one file. Throws {@link UserError} on any failure. */
export async function sendFile(options: SendOptions): Promise<SendResult> {
  const host = options.host ?? "127.0.0.1";
  useNativeCrypto();
  const { file, size } = await openInput(options.path);
  const name = options.name ?? basename(options.path);
  const chunkSize = chooseChunkSize(size, options.chunkSize);
  const update = options.update ? await fileMd5(file, options.path) : undefined;
  const sender = new FileSender({ name, size, chunkSize, resume: options.resume, update });
  const chunks = sender.chunks;
  let conn: Deno.TcpConn | undefined;
  // What the server said when it failed the transfer, if it did: a write
  // that fails because the server hung up is explained by this message.
  let failure: unknown;
  let reader: Promise<void> | undefined;
  let explain = (err: unknown): Promise<unknown> => Promise.resolve(err);
  // Writes a frame of the file protocol: sealed when there is a code.
  let send = (bytes: Uint8Array) => writeAll(conn!, bytes);
  // Once accepted, a failure says how to resume (unless the file was stored).
  const resumable = (err: unknown) =>
    sender.token && sender.phase !== "done" && !(err instanceof TransferCut)
      ? new TransferCut(describeError(err), sender.token)
      : err;
  try {
    const start = performance.now();
    conn = await connectTo(host, options.port);
    // Small frames (the offer, the end) must not wait on a delayed ACK.
    conn.setNoDelay(true);
    const c = conn;
    // With a code: the handshake first (nothing of the file moves before
    // both sides have confirmed it), then every frame sealed.
    const coded = options.code === undefined
      ? undefined
      : await connectCoded(c, { code: options.code, context: "file-tcp", maxInner: 128 * 1024 });
    const secure = coded?.secure;
    send = (bytes: Uint8Array) => writeAll(c, secure ? secure.seal(bytes) : bytes);

    // The server's side of the session: ACCEPT, NACKs to resend, then DONE.
    const accepted = Promise.withResolvers<void>();
    let wake: (() => void) | undefined;
    let done: Done | undefined;
    const take = (bytes: Uint8Array) => {
      for (const e of sender.receive(bytes)) {
        if (e.type === "accepted") {
          options.onToken?.(e.token);
          accepted.resolve();
        } else if (e.type === "done") {
          done = e.done;
          accepted.resolve(); // an update the server already had: done at once
        }
      }
    };
    await send(sender.offerFrame());
    reader = (async () => {
      for (const f of coded?.early ?? []) take(f);
      for await (const bytes of readChunks(c)) {
        if (!secure) take(bytes);
        else for (const e of secure.receive(bytes)) if (e.type === "data") take(e.bytes);
        wake?.();
        if (done) return;
      }
      sender.closed();
    })().catch((err) => {
      failure = err;
    }).finally(() => {
      accepted.resolve();
      wake?.();
    });
    await accepted.promise;

    const progress = options.progress ? new ProgressReporter(name, size) : undefined;
    const check = () => {
      if (failure) throw failure;
    };
    check();
    // The reasons a transfer fails, explained: the server's own word first.
    explain = async (err: unknown) => {
      if (err === failure) return err;
      if (reader && !(err instanceof UserError)) {
        let timer;
        await Promise.race([reader, new Promise((r) => timer = setTimeout(r, 2000))]);
        clearTimeout(timer);
        if (failure) return failure;
      }
      if (conn && err instanceof UserError) {
        await send(encodeError(err.message)).catch(() => {});
      }
      return err;
    };
    // Two frame buffers: the next chunk is read into one while the other is
    // being written to the socket. The core hashes each chunk as it first
    // goes out; a NACK sends it back to that chunk (it says which is next).
    const buffers = [0, 1].map(() => new Uint8Array(DATA_OFFSET + chunkSize));
    // With a code, each frame is sealed into a buffer of its own, reused
    // the same way (a new buffer per frame costs page faults and zeroing).
    const sealed = secure
      ? [0, 1].map(() => new Uint8Array(sealedLength(DATA_OFFSET + chunkSize)))
      : [];
    const sendChunk = (frame: Uint8Array, turn: number) =>
      writeAll(c, secure ? secure.seal(frame, sealed[turn & 1]) : frame);
    let pending: Promise<void> = Promise.resolve();
    let position = 0; // the file offset the next sequential read starts at
    let sent = 0;
    let turn = 0;
    let ended = false;
    while (!done) {
      check();
      const i = sender.next;
      if (i === null) {
        await pending;
        if (!ended) {
          ended = true;
          await send(sender.endFrame());
          continue;
        }
        const woken = Promise.withResolvers<void>();
        wake = woken.resolve;
        if (sender.next === null && !done && !failure) await woken.promise;
        wake = undefined;
        continue;
      }
      const frame = buffers[turn++ & 1];
      const offset = i * chunkSize;
      const len = Math.min(chunkSize, size - offset);
      if (position !== offset) file.seekSync(offset, Deno.SeekMode.Start);
      const data = frame.subarray(DATA_OFFSET, DATA_OFFSET + len);
      if (readFullSync(file, data) !== len) {
        throw new UserError(`${options.path} shrank while it was being sent`);
      }
      position = offset + len;
      await pending;
      check();
      // A NACK that came while waiting moved the next chunk back.
      if (sender.next !== i) continue;
      pending = sendChunk(sender.chunkFrame(i, frame, len), turn);
      if (offset + len > sent) {
        sent = offset + len;
        options.onChunk?.(i, sent);
        progress?.update(sent);
      }
    }
    await pending;
    const localMd5 = sender.md5!;
    await reader;
    check();
    progress?.finish();
    return {
      name,
      bytes: size,
      seconds: (performance.now() - start) / 1000,
      md5: localMd5,
      storedAs: done.storedAs,
      chunks,
      ...sender.counters,
      upToDate: done.upToDate === true,
    };
  } catch (err) {
    throw resumable(await explain(err));
  } finally {
    file.close();
    closeQuietly(conn);
  }
}

/** One summary line for a sent file. */
export function summarize(r: SendResult): string {
  if (r.upToDate) {
    return `${r.name}: up to date as ${r.storedAs} (${formatBytes(r.bytes)}, MD5 ${r.md5}), ` +
      `0 bytes sent`;
  }
  const resumed = r.chunksSkipped > 0
    ? `, resumed (${r.chunksSkipped} chunks already on server)`
    : "";
  const resent = r.chunksResent > 0 ? `, ${r.chunksResent} chunks resent after MD5 failures` : "";
  return `${r.name}: ${r.bytes} bytes (${formatBytes(r.bytes)}) in ${r.seconds.toFixed(2)} s, ` +
    `${formatRate(r.bytes, r.seconds)}, MD5 ${r.md5}, stored as ${r.storedAs}${resumed}${resent}`;
}

const FLAGS = {
  host: HOST_FLAG,
  port: portFlag(FILE_PORT),
  "chunk-size": { type: "string", default: "64K", value: "SIZE", help: "chunk size, 1K to 1M" },
  resume: {
    type: "string",
    default: "",
    value: "TOKEN",
    help: "resume a cut transfer of FILE with the token it printed",
  },
  code: CODE_FLAG,
  update: {
    type: "boolean",
    default: false,
    help: "skip files the server stores unchanged; replace the ones that changed",
  },
} as const;

async function main(): Promise<number> {
  const { flags, positionals } = parseFlags(Deno.args, FLAGS, {
    usage: "deno task file-client",
    summary: "Send files to a file server with an MD5 check on every chunk.",
    positionals: "[FILE ...] (default chamber.mp4)",
  });
  const port = parsePort(flags.port);
  const chunkSize = parseSizeFlag("chunk-size", flags["chunk-size"]);
  if (chunkSize < 1024 || chunkSize > 1024 * 1024) {
    throw new UsageError("--chunk-size must be from 1K to 1M");
  }
  const files = positionals.length > 0
    ? positionals.map(resolveUserPath)
    : [new URL("../chamber.mp4", import.meta.url).pathname];
  const resume = flags.resume || undefined;
  if (resume !== undefined && !isResumeToken(resume)) {
    throw new UsageError(`--resume ${JSON.stringify(resume)} is not a token this tool printed`);
  }
  if (resume !== undefined && files.length !== 1) {
    throw new UsageError("--resume resumes one file; name just that FILE");
  }
  let code = resolveCode(flags.code);
  let upToDate = 0;
  let bytesSent = 0;
  for (const path of files) {
    const r = await withCodePrompt(code, (c) => {
      code = c; // a code asked for once serves every FILE
      return sendFile({
        host: flags.host,
        port,
        path,
        chunkSize,
        progress: true,
        resume,
        code: c,
        update: flags.update,
        // On a terminal, said before any data moves, so that a transfer
        // interrupted by hand can resume; every failure says it too.
        onToken: Deno.stderr.isTerminal()
          ? (token) =>
            console.error(
              `${basename(path)}: if this transfer is cut, resume with --resume ${token}`,
            )
          : undefined,
      });
    });
    console.log(summarize(r));
    if (r.upToDate) upToDate++;
    else bytesSent += r.bytes;
  }
  if (flags.update) {
    console.log(
      `${bytesSent === 0 ? "0 bytes" : formatBytes(bytesSent)} sent, ` +
        `${upToDate} ${upToDate === 1 ? "file" : "files"} up to date`,
    );
  }
  return 0;
}

if (import.meta.main) runMain(main);

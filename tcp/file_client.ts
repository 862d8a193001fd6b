/**
 * File-TCP client: sends files to a file server in MD5-checked chunks,
 * resends any chunk the server asks for again, resumes a cut transfer, and
 * exits 0 only once the server has confirmed the whole file's MD5.
 *
 * Run: `deno task file-client [--host 127.0.0.1] [--port 4545] [FILE ...]`
 *
 * @module
 */
import { basename } from "node:path";
import { describeError, ProtocolError, UserError } from "../lib/errors.ts";
import {
  chooseChunkSize,
  chunkCount,
  CLIENT_LIMITS,
  DATA_PREFIX,
  decodeAccept,
  decodeDone,
  decodeError,
  decodeNack,
  type Done,
  encodeCheck,
  encodeError,
  encodeJson,
  fillDataFrame,
  MsgType,
} from "../lib/file_protocol.ts";
import { HEADER_LENGTH } from "../lib/frame.ts";
import { readFrames } from "../lib/framed_conn.ts";
import { connectTo } from "../lib/net.ts";
import { readAt, readFullSync, writeAll } from "../lib/io.ts";
import { md5, Md5Stream } from "../lib/md5.ts";
import { formatBytes, formatRate } from "../lib/format.ts";
import { ProgressReporter } from "../lib/progress.ts";
import {
  HOST_FLAG,
  parseFlags,
  parsePort,
  parseSizeFlag,
  portFlag,
  resolveUserPath,
  runMain,
} from "../lib/cli.ts";
import { FILE_PORT } from "./file_server.ts";

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

/** Sends one file. Throws {@link UserError} on any failure. */
export async function sendFile(options: SendOptions): Promise<SendResult> {
  const host = options.host ?? "127.0.0.1";
  const { file, size } = await openInput(options.path);
  const name = options.name ?? basename(options.path);
  const chunkSize = chooseChunkSize(size, options.chunkSize);
  const chunks = chunkCount(size, chunkSize);
  let conn: Deno.TcpConn | undefined;
  // What the server said when it failed the transfer, if it did: a write
  // that fails because the server hung up is explained by this message.
  let failure: unknown;
  let reader: Promise<void> | undefined;
  let retryFile: Deno.FsFile | undefined;
  try {
    const start = performance.now();
    conn = await connectTo(host, options.port);
    const c = conn;
    await writeAll(c, encodeJson(MsgType.OFFER, { name, size, chunkSize }));
    const frames = readFrames(c, CLIENT_LIMITS);
    const first = await frames.next();
    if (first.done) throw new UserError("Server closed the connection without answering");
    if (first.value.type === MsgType.ERROR) {
      throw new UserError(`Server refused ${name}: ${decodeError(first.value.payload)}`);
    }
    if (first.value.type !== MsgType.ACCEPT) {
      throw new ProtocolError(`Expected the server's accept, got frame type ${first.value.type}`);
    }
    const { held } = decodeAccept(first.value.payload, chunks);

    // Everything the server says from now on: NACKs to resend, then DONE.
    const nacks: number[] = [];
    let wake: (() => void) | undefined;
    let done: Done | undefined;
    reader = (async () => {
      for await (const f of frames) {
        if (f.type === MsgType.NACK) nacks.push(decodeNack(f.payload));
        else if (f.type === MsgType.DONE) done = decodeDone(f.payload);
        else if (f.type === MsgType.ERROR) {
          throw new UserError(`Server failed the transfer: ${decodeError(f.payload)}`);
        } else throw new ProtocolError(`Unexpected frame type ${f.type} from the server`);
        wake?.();
        if (done) return;
      }
      throw new UserError("Server closed the connection before confirming the file");
    })().catch((err) => {
      failure = err;
    }).finally(() => wake?.());

    const progress = options.progress ? new ProgressReporter(name, size) : undefined;
    const result = {
      chunksSent: 0,
      chunksSkipped: 0,
      chunksResent: 0,
    };
    const check = () => {
      if (failure) throw failure;
    };
    const resend = async () => {
      while (nacks.length > 0) {
        const i = nacks.shift()!;
        if (i >= chunks) {
          throw new ProtocolError(`Server asked for chunk ${i}, which does not exist`);
        }
        retryFile ??= await Deno.open(options.path, { read: true });
        const data = await readAt(
          retryFile,
          i * chunkSize,
          Math.min(chunkSize, size - i * chunkSize),
        );
        const frame = new Uint8Array(HEADER_LENGTH + DATA_PREFIX + data.length);
        frame.set(data, HEADER_LENGTH + DATA_PREFIX);
        await writeAll(c, fillDataFrame(frame, i, md5(data), data.length));
        result.chunksResent++;
      }
    };

    // Two frame buffers: the file is read and hashed into one while the other
    // is being written to the socket.
    const whole = new Md5Stream();
    const buffers = [0, 1].map(() => new Uint8Array(HEADER_LENGTH + DATA_PREFIX + chunkSize));
    let pending: Promise<void> = Promise.resolve();
    let range = 0;
    let sent = 0;
    for (let i = 0; i < chunks; i++) {
      check();
      const frame = buffers[i & 1];
      const len = Math.min(chunkSize, size - i * chunkSize);
      const data = frame.subarray(HEADER_LENGTH + DATA_PREFIX, HEADER_LENGTH + DATA_PREFIX + len);
      if (readFullSync(file, data) !== len) {
        throw new UserError(`${options.path} shrank while it was being sent`);
      }
      whole.update(data);
      const digest = md5(data);
      while (range < held.length && held[range][1] <= i) range++;
      const isHeld = range < held.length && held[range][0] <= i;
      await pending;
      if (nacks.length > 0) await resend();
      if (isHeld) {
        pending = writeAll(c, encodeCheck(i, digest));
        result.chunksSkipped++;
      } else {
        pending = writeAll(c, fillDataFrame(frame, i, digest, len));
        result.chunksSent++;
      }
      sent += len;
      options.onChunk?.(i, sent);
      progress?.update(sent);
    }
    await pending;
    const localMd5 = whole.hex();
    await writeAll(c, encodeJson(MsgType.END, { md5: localMd5 }));
    while (!done) {
      check();
      if (nacks.length > 0) {
        await resend();
        continue;
      }
      const woken = Promise.withResolvers<void>();
      wake = woken.resolve;
      if (nacks.length === 0 && !done && !failure) await woken.promise;
      wake = undefined;
    }
    await reader;
    check();
    progress?.finish();
    if (done.md5 !== localMd5) {
      throw new UserError(`Server stored MD5 ${done.md5}, but the file's MD5 is ${localMd5}`);
    }
    return {
      name,
      bytes: size,
      seconds: (performance.now() - start) / 1000,
      md5: localMd5,
      storedAs: done.storedAs,
      chunks,
      ...result,
    };
  } catch (err) {
    if (err === failure) throw err;
    if (reader && !(err instanceof UserError)) {
      let timer;
      await Promise.race([reader, new Promise((r) => timer = setTimeout(r, 2000))]);
      clearTimeout(timer);
      if (failure) throw failure;
    }
    if (conn && err instanceof UserError) {
      await writeAll(conn, encodeError(err.message)).catch(() => {});
    }
    throw err;
  } finally {
    file.close();
    retryFile?.close();
    try {
      conn?.close();
    } catch {
      // Already closed.
    }
  }
}

/** One summary line for a sent file. */
export function summarize(r: SendResult): string {
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
    throw new UserError("--chunk-size must be from 1K to 1M", 2);
  }
  const files = positionals.length > 0
    ? positionals.map(resolveUserPath)
    : [new URL("../chamber.mp4", import.meta.url).pathname];
  for (const path of files) {
    const r = await sendFile({
      host: flags.host,
      port,
      path,
      chunkSize,
      progress: true,
    });
    console.log(summarize(r));
  }
  return 0;
}

if (import.meta.main) runMain(main);

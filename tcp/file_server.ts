/**
 * File-TCP server: receives files from any number of clients at once, checks
 * the MD5 of every chunk, asks again for chunks that fail, and stores a file
 * as `DIR/received-NAME` only once its whole-file MD5 matches.
 *
 * Run: `deno task file-server [--host 127.0.0.1] [--port 4545] [--dir DIR]`
 *
 * @module
 */
import { FILE_PORT } from "../lib/core/file/messages.ts";
import { DEFAULT_MAX_FOLDERS } from "../lib/core/file/disk_policy.ts";
import {
  HOST_FLAG,
  onShutdown,
  parseCount,
  parseFlags,
  parsePort,
  parseSecondsFlag,
  parseSizeFlag,
  portFlag,
  runMain,
} from "../lib/cli/flags.ts";
import { resolveUserPath } from "../lib/io/paths.ts";
import { CODE_FLAG, resolveCode } from "../lib/cli/code.ts";
import { useNativeCrypto } from "../lib/io/native_crypto.ts";
import { startFileServer } from "../lib/cli/file_server.ts";

export { FILE_PORT };
export {
  type FileServer,
  type FileServerOptions,
  KEPT_FAILURES,
  MAX_RECORDS,
  startFileServer,
  type TransferRecord,
} from "../lib/cli/file_server.ts";

const FLAGS = {
  host: HOST_FLAG,
  port: portFlag(FILE_PORT),
  dir: { type: "string", default: ".", value: "DIR", help: "directory to store files in" },
  "max-size": { type: "string", default: "64G", value: "SIZE", help: "largest file accepted" },
  overwrite: {
    type: "boolean",
    default: false,
    help: "replace an existing received-NAME (else keep both: received-NAME-1…)",
  },
  "keep-partial": {
    type: "string",
    default: "7",
    value: "DAYS",
    help: "remove partial transfers not resumed for this long",
  },
  "idle-timeout": {
    type: "string",
    default: "30",
    value: "SECONDS",
    help: "close connections that send no whole message for this long",
  },
  "max-folders": {
    type: "string",
    default: String(DEFAULT_MAX_FOLDERS),
    value: "N",
    help: "folders one connection may make; entries past it fail",
  },
  "max-partials": {
    type: "string",
    default: "64",
    value: "N",
    help: "partial transfers kept for resume (8 a host); the oldest unused go first",
  },
  fsync: {
    type: "boolean",
    default: false,
    help: "put each file on the disk before confirming it (slower: a sync a file)",
  },
  code: CODE_FLAG,
} as const;

async function main(): Promise<void> {
  const { flags } = parseFlags(Deno.args, FLAGS, {
    usage: "deno task file-server",
    summary: "Receive files over TCP with an MD5 check on every chunk.",
  });
  const dir = resolveUserPath(flags.dir);
  const code = resolveCode(flags.code, { host: flags.host });
  const server = await startFileServer({
    code,
    host: flags.host,
    port: parsePort(flags.port),
    dir,
    maxSize: parseSizeFlag("max-size", flags["max-size"]),
    overwrite: flags.overwrite,
    fsync: flags.fsync,
    idleMs: parseSecondsFlag("idle-timeout", flags["idle-timeout"]) * 1000,
    keepPartialMs: parseSecondsFlag("keep-partial", flags["keep-partial"], "days") * 86_400_000,
    maxPartials: parseCount("max-partials", flags["max-partials"]),
    maxFolders: parseCount("max-folders", flags["max-folders"]),
  });
  console.log(
    `file server listening on ${server.addr.hostname}:${server.addr.port}, storing in ${dir}` +
      (code ? ", clients need the code" : ""),
  );
  console.log(`MD5 and ChaCha20-Poly1305 from ${useNativeCrypto()}`);
  const stopped = Promise.withResolvers<void>();
  onShutdown(() => stopped.resolve());
  await stopped.promise;
  console.log("stopping: partial transfers are kept for resume");
  await server.close();
}

if (import.meta.main) runMain(main);

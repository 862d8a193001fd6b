/**
 * File-TCP client: sends files to a file server in MD5-checked chunks,
 * resends any chunk the server asks for again, resumes a cut transfer (with
 * the token the server gave when it started), and exits 0 only once the
 * server has confirmed the whole file's MD5.
 *
 * With `--update`, a file the server already stores with the same content
 * is not sent again (the client proves it holds that content: see
 * `lib/core/file/proof.ts`), one that changed replaces the stored copy,
 * and one whose transfer was cut resumes.
 *
 * This entry point parses the flags and prints; the connection's shell is
 * `lib/cli/file_client_shell.ts`, its core `lib/core/file/client_link.ts`.
 *
 * Run: `deno task file-client [--host 127.0.0.1] [--port 4545] [--resume TOKEN] [--update] [FILE ...]`
 *
 * @module
 */
import { UsageError } from "../lib/core/errors.ts";
import { FILE_PORT } from "../lib/core/file/messages.ts";
import { isResumeToken } from "../lib/core/file/decode_messages.ts";
import { formatBytes } from "../lib/core/report/format.ts";
import { describeError } from "../lib/io/errors.ts";
import { CODE_FLAG, resolveCode, withCodePrompt } from "../lib/cli/code.ts";
import { onInterrupt, resumeCommand } from "../lib/cli/resume.ts";
import {
  HOST_FLAG,
  parseFlags,
  parsePort,
  parseSecondsFlag,
  parseSizeFlag,
  portFlag,
  runMain,
} from "../lib/cli/flags.ts";
import { resolveUserPath } from "../lib/io/paths.ts";
import { checkSources, type Entry, type Source, walkEntries } from "./file_tree.ts";
import {
  CLIENT_TIMEOUT_MS,
  type EntryResult,
  sendEntries,
  type SendSummary,
} from "../lib/cli/file_client_shell.ts";
import {
  displayName,
  failureLine,
  folderLine,
  type FolderTally,
  summarize,
  tally,
} from "../lib/cli/file_client_report.ts";

export {
  CLIENT_TIMEOUT_MS,
  type EntryResult,
  sendEntries,
  type SendEntriesOptions,
  sendFile,
  type SendOptions,
  type SendResult,
  type SendSummary,
  TransferCut,
} from "../lib/cli/file_client_shell.ts";
export {
  displayName,
  failureLine,
  folderLine,
  type FolderTally,
  summarize,
  tally,
} from "../lib/cli/file_client_report.ts";

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
    help: "skip files the server stores unchanged; replace the ones that changed " +
      "(and resume a folder's cut file)",
  },
  "follow-links": {
    type: "boolean",
    default: false,
    help: "send what symbolic links inside folders point to (else skip them)",
  },
  timeout: {
    type: "string",
    default: String(CLIENT_TIMEOUT_MS / 1000),
    value: "SECONDS",
    help: "give up on a server that answers nothing and takes nothing for this long",
  },
} as const;

/** The command line, checked: what to send and how. */
async function parseArgs() {
  const { flags, positionals } = parseFlags(Deno.args, FLAGS, {
    usage: "deno task file-client",
    summary: "Send files and folders to a file server with an MD5 check on every chunk.",
    positionals: "[FILE|FOLDER ...] (default chamber.mp4)",
  });
  const port = parsePort(flags.port);
  const chunkSize = parseSizeFlag("chunk-size", flags["chunk-size"]);
  if (chunkSize < 1024 || chunkSize > 1024 * 1024) {
    throw new UsageError("--chunk-size must be from 1K to 1M");
  }
  const paths = positionals.length > 0
    ? positionals.map(resolveUserPath)
    : [new URL("../chamber.mp4", import.meta.url).pathname];
  const resume = flags.resume || undefined;
  if (resume !== undefined && !isResumeToken(resume)) {
    throw new UsageError(`--resume ${JSON.stringify(resume)} is not a token this tool printed`);
  }
  const sources = await checkSources(paths);
  if (resume !== undefined && (sources.length !== 1 || sources[0].folder)) {
    throw new UsageError("--resume resumes one file; name just that FILE");
  }
  const folders = sources.filter((s) => s.folder).map((s) => s.name);
  const twice = folders.find((name, i) => folders.indexOf(name) !== i);
  if (twice !== undefined) {
    throw new UsageError(`Two folders are named ${twice}; send them one at a time`);
  }
  return { flags, port, chunkSize, resume, sources, folders };
}

/**
 * On a terminal a first walk counts what will move, for the progress
 * bar's share and ETA, and names it; elsewhere progress says what moved (a
 * walk of a large folder is not free). Neither walk keeps the entries.
 */
async function progressLabel(
  sources: Source[],
  followLinks: boolean,
): Promise<{ label: string; total?: number }> {
  if (!Deno.stderr.isTerminal()) {
    return { label: sources.length === 1 ? sources[0].name : "sent" };
  }
  let total = 0;
  let count = 0;
  let first = "";
  for await (const e of walkEntries(sources, { followLinks })) {
    total += e.size;
    if (count++ === 0) first = e.name;
  }
  return { label: count === 1 ? first : `${count} files`, total };
}

/** What the run printed and counted, entry by entry. */
interface Printed {
  /** Whether a transfer was cut after the server accepted it (it resumes by --update). */
  cut: boolean;
  tallies: Map<string, FolderTally>;
  upToDate: number;
  sentBytes: number;
  failed: number;
  /** Failures said as "the same reason" rather than each on its own line. */
  same: number;
}

/** Prints each entry as it ends; counts what the closing lines say. */
function printer(): { printed: Printed; onResult: (r: EntryResult) => void } {
  const printed: Printed = {
    cut: false,
    tallies: new Map(),
    upToDate: 0,
    sentBytes: 0,
    failed: 0,
    same: 0,
  };
  // A failure shared by many entries (the connection's) is said once.
  let lastError: string | undefined;
  const onResult = (r: EntryResult) => {
    if (r.entry.parts) {
      const t = printed.tallies.get(r.entry.name) ??
        { files: 0, bytes: 0, upToDate: 0, resumed: 0, emptyFolders: 0, failed: 0 };
      tally(t, r);
      printed.tallies.set(r.entry.name, t);
    }
    if (r.ok) {
      if (r.result.upToDate) printed.upToDate++;
      else if (!r.entry.kind) printed.sentBytes += r.result.bytesSent;
      // A folder's files are summed up in its line, but for those that
      // resumed or needed chunks again.
      if (!r.entry.parts || r.result.chunksSkipped > 0 || r.result.chunksResent > 0) {
        console.log(summarize(r.result));
      }
      return;
    }
    printed.failed++;
    // A named file's line says how to resume it (its token); a
    // folder's entries are resumed by the command said at the end.
    if (r.token && r.entry.parts) printed.cut = true;
    // The same reason again (the connection's, or a server refusing
    // every entry, a full disk) is counted, not repeated: the reason
    // apart from the entry's own name.
    let why = describeError(r.error).split(displayName(r.entry)).join("");
    if (r.entry.source) why = why.split(r.entry.source).join("");
    if (why === lastError) printed.same++;
    else {
      lastError = why;
      console.error(`error: ${failureLine(r)}`);
    }
  };
  return { printed, onResult };
}

/** On a terminal, said before any data moves, so that a transfer interrupted by hand can resume. */
function tokenLine(entry: Entry, token: string): void {
  if (!entry.parts) {
    console.error(`${entry.name}: if this transfer is cut, resume with --resume ${token}`);
  }
}

/** The closing lines: failures, how to resume, each folder, and what --update saved. */
function closing(
  p: Printed,
  summary: SendSummary,
  folders: string[],
  seconds: number,
  update: boolean,
): number {
  if (p.same > 0) console.error(`error: ${p.same} more failed, for the same reason`);
  if (summary.stopped !== undefined) {
    p.failed++;
    p.cut = true;
    console.error(
      `error: stopped after ${summary.entries} entries: ${describeError(summary.stopped)}`,
    );
  }
  if (p.cut) console.error(`to resume, run: ${resumeCommand("file-client", Deno.args)}`);
  for (const name of folders) {
    const t = p.tallies.get(name);
    if (t) console.log(folderLine(name, t, seconds));
    else if (summary.stopped === undefined) console.error(`${name}: empty folder, nothing sent`);
  }
  if (update) {
    console.log(
      `${p.sentBytes === 0 ? "0 bytes" : formatBytes(p.sentBytes)} sent, ` +
        `${p.upToDate} ${p.upToDate === 1 ? "file" : "files"} up to date`,
    );
  }
  return p.failed === 0 ? 0 : 1;
}

async function main(): Promise<number> {
  const { flags, port, chunkSize, resume, sources, folders } = await parseArgs();
  const followLinks = flags["follow-links"];
  const { label, total } = await progressLabel(sources, followLinks);
  // Said once each, as the sending walk finds them.
  const onSkip = (line: string) => console.error(`skipped ${line}`);
  const onCollision = (line: string) => console.error(`warning: ${line}`);
  let code = resolveCode(flags.code);
  const start = performance.now();
  // From here on a Ctrl-C says how to resume (the same command with --update).
  const quiet = onInterrupt(resumeCommand("file-client", Deno.args));
  const { printed, onResult } = printer();
  const summary = await withCodePrompt(code, (c) => {
    code = c;
    return sendEntries(walkEntries(sources, { followLinks, onSkip, onCollision }), {
      host: flags.host,
      port,
      timeoutMs: parseSecondsFlag("timeout", flags.timeout) * 1000,
      chunkSize,
      progress: label,
      total,
      resume,
      code: c,
      update: flags.update,
      // Every failure says how to resume too.
      onToken: Deno.stderr.isTerminal() ? tokenLine : undefined,
      onResult,
    });
  });
  quiet();
  const seconds = (performance.now() - start) / 1000;
  return closing(printed, summary, folders, seconds, flags.update);
}

if (import.meta.main) runMain(main);

/**
 * Starting this project's server tools as child processes, the way tests
 * and benches need them: with given permissions and environment, optionally
 * inside a network namespace, waiting for the `listening on HOST:PORT` line
 * every server prints. Stdout is read all along, so the pipe never fills.
 *
 * @module
 */
import { join } from "node:path";
// Imported, not read: the benches that use this run with no permissions.
import config from "../../deno.json" with { type: "json" };
import { UserError } from "../../lib/core/errors.ts";

/** The repository root. */
export const REPO_ROOT: string = new URL("../..", import.meta.url).pathname;

/** Options of {@link startServerTool}. */
export interface ToolOptions {
  /** Deno permission flags (default: every permission). */
  permissions?: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /**
   * Run under Debian's `faketime` with this spec, as if on a machine with
   * its own clock: `-0.3s` (behind), `+2s` (ahead), `+0 x1.003` (0.3% fast).
   */
  faketime?: string;
  /** Where the tool's stderr goes (default: inherited). */
  stderr?: "inherit" | "null" | "piped";
}

/** A server tool running as a child process. */
export interface ToolProcess extends AsyncDisposable {
  /** The child process. */
  readonly child: Deno.ChildProcess;
  /** The port it said it listens on. */
  readonly port: number;
  /** Everything it printed on stdout so far. */
  readonly output: () => string;
  /** Stops it with SIGTERM; resolves with all it printed. Idempotent. */
  stop(): Promise<string>;
}

/** The command that runs a project script with Deno. */
export function toolCommand(
  script: string,
  args: string[],
  options: ToolOptions = {},
): Deno.Command {
  const deno = [
    Deno.execPath(),
    "run",
    ...(options.permissions ?? ["-A"]),
    join(REPO_ROOT, script),
  ];
  const [cmd, ...rest] = options.netns
    ? ["ip", "netns", "exec", options.netns, ...deno, ...args]
    : [...deno, ...args];
  // libfaketime preloaded, as the `faketime` command does; not through that
  // command, which forks and would not pass a SIGTERM on to the tool.
  const clock: Record<string, string> = options.faketime
    ? { LD_PRELOAD: fakeTimeLibrary(), FAKETIME: options.faketime, FAKETIME_NO_CACHE: "1" }
    : {};
  return new Deno.Command(cmd, {
    args: rest,
    env: { ...options.env, ...clock },
    stdin: "null",
    stdout: "piped",
    stderr: options.stderr ?? "inherit",
  });
}

/** Where Debian's libfaketime is; throws if it is not installed. */
export function fakeTimeLibrary(): string {
  for (const arch of ["x86_64-linux-gnu", "aarch64-linux-gnu"]) {
    const path = `/usr/lib/${arch}/faketime/libfaketime.so.1`;
    try {
      Deno.statSync(path);
      return path;
    } catch {
      // Not this one.
    }
  }
  throw new UserError("libfaketime is not installed (apt-get install faketime)");
}

/** Starts a server tool and waits until it prints `listening on HOST:PORT`. */
export async function startServerTool(
  script: string,
  args: string[],
  options: ToolOptions = {},
): Promise<ToolProcess> {
  const child = toolCommand(script, args, options).spawn();
  let text = "";
  const listening = Promise.withResolvers<number>();
  const reading = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      const m = /listening on \S+:(\d+)/.exec(text);
      if (m) listening.resolve(Number(m[1]));
    }
    listening.reject(new UserError(`${script} exited before listening: ${text.trim()}`));
  })();
  let port: number;
  try {
    port = await listening.promise;
  } catch (err) {
    await child.status;
    throw err;
  }
  let stopping: Promise<string> | undefined;
  const stop = () =>
    stopping ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await child.status;
      await reading.catch(() => {});
      return text;
    })();
  return {
    child,
    port,
    output: () => text,
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}

/** Whether a command is on the PATH (for tests and benches that need one). */
export async function commandExists(name: string): Promise<boolean> {
  const r = await new Deno.Command("sh", {
    args: ["-c", 'command -v "$1"', "sh", name],
    stdout: "null",
    stderr: "null",
  }).output();
  return r.code === 0;
}

/**
 * Whether to ignore a test that needs something this machine may lack.
 * `missing` says what is missing (or `null`: nothing is). Outside CI the
 * test is ignored, with the reason printed; under CI (`CI=true`, which
 * `.ci/run` sets) it is never ignored: it runs and fails saying what is
 * missing, so a CI machine that lost a package cannot pass by skipping.
 */
export function ignoreUnless(missing: string | null, what: string): boolean {
  if (missing === null || Deno.env.get("CI") === "true") return false;
  console.log(`ignored (${what}): ${missing}`);
  return true;
}

/** Throws when `missing` names something a test needs (under CI, where it was not ignored). */
export function requireHere(missing: string | null): void {
  if (missing !== null) throw new Error(`Cannot run under CI: ${missing}`);
}

/**
 * A deno.json task's flags (its V8 flags and permissions): what comes
 * between `deno run` and the script, so that tests and benches run a tool
 * exactly as its task does.
 */
function taskFlags(task: keyof typeof config.tasks): string[] {
  const words = config.tasks[task].split(" ");
  const script = words.findIndex((w) => w.endsWith(".ts"));
  if (words[0] !== "deno" || words[1] !== "run" || script < 0) {
    throw new Error(`deno.json task ${task} is not "deno run FLAGS SCRIPT"`);
  }
  return words.slice(2, script);
}

/** The file server task's flags and permissions (deno.json), for tests and benches that run it. */
export const FILE_SERVER_PERMS: string[] = taskFlags("file-server");
/** The file client task's flags and permissions. */
export const FILE_CLIENT_PERMS: string[] = taskFlags("file-client");

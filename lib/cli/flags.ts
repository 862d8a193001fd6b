/**
 * What every command-line tool shares: flag parsing with one usage format,
 * the common flags (`--host`, `--port`), paths relative to where the user
 * ran the command, and a `runMain` that turns any failure into one line on
 * stderr and a non-zero exit, never a stack trace.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { UsageError } from "../core/errors.ts";
import { describeError } from "../io/errors.ts";
import { parseSize } from "../core/report/format.ts";

/** One flag of a tool. */
export interface FlagSpec {
  /** `string` takes a value; `boolean` is a switch. */
  type: "string" | "boolean";
  /** Value when the flag is absent. */
  default?: string | boolean;
  /** One-line description for `--help`. */
  help: string;
  /** Placeholder for the value in `--help`, e.g. `PORT`. */
  value?: string;
}

/** The flags of a tool, by long name. */
export type FlagSpecs = Record<string, FlagSpec>;

/** Parsed flags by long name: a string flag without a default reads as "". */
export type Flags<S extends FlagSpecs> = {
  [K in keyof S]: S[K]["type"] extends "boolean" ? boolean : string;
};

/** The `--host` flag: servers and clients default to loopback. */
export const HOST_FLAG: FlagSpec = {
  type: "string",
  default: "127.0.0.1",
  value: "HOST",
  help: "address to bind or connect to",
};

/** A `--port` flag with the tool's default port. */
export function portFlag(port: number): FlagSpec {
  return { type: "string", default: String(port), value: "PORT", help: "TCP/UDP port" };
}

/** Description of a tool for `--help`. */
export interface ToolInfo {
  /** The command, e.g. `deno task file-server`. */
  usage: string;
  /** One sentence on what it does. */
  summary: string;
  /** Placeholder for positional arguments, if the tool takes them. */
  positionals?: string;
}

/**
 * Parses `args` against `specs`. Prints help and exits 0 on `--help` or `-h`;
 * throws {@link UsageError} on an unknown flag or missing value.
 */
export function parseFlags<S extends FlagSpecs>(
  args: string[],
  specs: S,
  info: ToolInfo,
): { flags: Flags<S>; positionals: string[] } {
  const options: Record<
    string,
    { type: "string" | "boolean"; default?: string | boolean; short?: string }
  > = {
    help: { type: "boolean", default: false, short: "h" },
  };
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = {
      type: spec.type,
      default: spec.default ?? (spec.type === "string" ? "" : false),
    };
  }
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options,
      allowPositionals: info.positionals !== undefined,
      strict: true,
    });
  } catch (err) {
    const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new UsageError(`${msg.replace(/\.$/, "")}. Try --help`);
  }
  if (parsed.values.help) {
    console.log(helpText(specs, info));
    Deno.exit(0);
  }
  return { flags: parsed.values as Flags<S>, positionals: parsed.positionals };
}

/** The `--help` text of a tool. */
export function helpText(specs: FlagSpecs, info: ToolInfo): string {
  const lines = [
    `Usage: ${info.usage} [OPTIONS]${info.positionals ? ` ${info.positionals}` : ""}`,
    "",
    info.summary,
    "",
    "Options:",
  ];
  for (const [name, spec] of Object.entries(specs)) {
    const flag = spec.type === "string" ? `--${name} ${spec.value ?? "VALUE"}` : `--${name}`;
    const def = spec.default !== undefined && spec.default !== false && spec.default !== ""
      ? ` (default ${spec.default})`
      : "";
    lines.push(`  ${flag.padEnd(24)} ${spec.help}${def}`);
  }
  lines.push(`  ${"-h, --help".padEnd(24)} show this help`);
  return lines.join("\n");
}

/** Parses a port number (1 to 65535; 0 asks the system for a free port). */
export function parsePort(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) {
    throw new UsageError(`Port ${JSON.stringify(text)} is not a number from 0 to 65535`);
  }
  return n;
}

/** Parses a size flag such as `10G`; throws a {@link UsageError} naming the flag. */
export function parseSizeFlag(flag: string, text: string): number {
  const n = parseSize(text);
  if (n === null) {
    throw new UsageError(`--${flag} ${JSON.stringify(text)} is not a size like 512M or 2G`);
  }
  return n;
}

/** Parses a whole number of at least 1 for `flag`. */
export function parseCount(flag: string, text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`--${flag} ${JSON.stringify(text)} is not a whole number of at least 1`);
  }
  return Number(text);
}

/** Parses a positive number for `flag`, in `unit` (for the message). */
export function parseSecondsFlag(flag: string, text: string, unit = "seconds"): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || text.trim() === "") {
    throw new UsageError(`--${flag} ${JSON.stringify(text)} is not a positive number of ${unit}`);
  }
  return n;
}

/**
 * Runs a tool's main function. Any failure prints `error: MESSAGE` on one
 * line and exits non-zero: 2 for a {@link UsageError} (a bad flag or value),
 * else 1.
 */
export function runMain(main: () => Promise<void | number>): void {
  const fail = (err: unknown) => {
    console.error(`error: ${describeError(err)}`);
    Deno.exit(err instanceof UsageError ? 2 : 1);
  };
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    fail(e.reason);
  });
  main().then((code) => Deno.exit(code ?? 0), fail);
}

/**
 * Calls `stop` on the first Ctrl-C or SIGTERM; a second one exits at once.
 * Returns a function that removes the handlers.
 */
export function onShutdown(stop: () => void | Promise<void>): () => void {
  let stopping = false;
  const handler = () => {
    if (stopping) Deno.exit(130);
    stopping = true;
    void stop();
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, handler);
  return () => {
    for (const s of signals) Deno.removeSignalListener(s, handler);
  };
}

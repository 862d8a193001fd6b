/**
 * How a cut or interrupted run of a sending tool says how to resume: the
 * same command with `--update`, in one line, on a terminal or not.
 *
 * @module
 */

/**
 * The command that resumes whatever a run of `deno task TASK` with `args`
 * left cut: the same command with `--update`, quoted for a POSIX shell.
 */
export function resumeCommand(task: string, args: readonly string[]): string {
  const all = args.includes("--update") ? args : ["--update", ...args];
  const quote = (a: string) => /^[\w./=:@%+,-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`;
  return ["deno", "task", task, ...all.map(quote)].join(" ");
}

/**
 * On Ctrl-C (or SIGTERM): one line on stderr, `interrupted; to resume,
 * run: COMMAND`, then exit 130. Returns a function that removes the handlers.
 */
export function onInterrupt(command: string): () => void {
  const handler = () => {
    // A progress bar on the line is ended first.
    const lead = Deno.stderr.isTerminal() ? "\n" : "";
    console.error(`${lead}interrupted; to resume, run: ${command}`);
    Deno.exit(130);
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, handler);
  return () => {
    for (const s of signals) Deno.removeSignalListener(s, handler);
  };
}

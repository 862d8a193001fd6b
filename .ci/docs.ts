/**
 * The docs check, run on every run of `.ci/run` (reads files only:
 * `deno run --allow-read .ci/docs.ts`).
 *
 * - README.md has at most 300 lines, and none over 100 characters but
 *   table rows and lines with a URL.
 * - README.md's task table names every task of `deno.json`, each with a
 *   link to its page under `docs/`, and that page exists.
 * - Every flag a tool defines appears in the OPTIONS section of its page
 *   (as `--name`), and so does `--help`; every option the page lists
 *   (a `` - `--name`` item) is one the tool defines, so a removed flag
 *   does not stay documented.
 * - Every relative link in README.md and `docs/*.md` names a file that
 *   exists.
 *
 * A tool's flags are read from its source, never by running it: the
 * object given to `parseFlags(Deno.args, FLAGS, …)` is followed through
 * constants, spreads (`...CLIENT_FLAGS`, `...serverFlags(512)`) and
 * imports, and its keys are the flags. Anything it cannot follow fails
 * the check, so a new way of declaring flags is noticed, not skipped.
 * `--list` prints each task's flags as read so.
 *
 * @module
 */
import { dirname, join, normalize, relative } from "node:path";

const ROOT = normalize(join(dirname(new URL(import.meta.url).pathname), ".."));
const MAX_README_LINES = 300;
const MAX_LINE = 100;
/** Tasks that run a program with no flags at all (every other tool parses its flags). */
const NO_FLAGS = new Set(["demo"]);

// ---------------------------------------------------------------------------
// A small scanner for TypeScript source: enough to find balanced brackets
// and top-level commas while skipping strings, templates and comments.

/** Index just past the string, template or comment starting at `i`, or `i`. */
function skipNonCode(src: string, i: number): number {
  const c = src[i];
  if (c === "/" && src[i + 1] === "/") {
    const end = src.indexOf("\n", i);
    return end < 0 ? src.length : end;
  }
  if (c === "/" && src[i + 1] === "*") {
    const end = src.indexOf("*/", i + 2);
    return end < 0 ? src.length : end + 2;
  }
  if (c === '"' || c === "'") {
    let j = i + 1;
    while (j < src.length && src[j] !== c) j += src[j] === "\\" ? 2 : 1;
    return j + 1;
  }
  if (c === "`") {
    let j = i + 1;
    while (j < src.length && src[j] !== "`") {
      if (src[j] === "\\") j += 2;
      else if (src[j] === "$" && src[j + 1] === "{") j = matchClose(src, j + 1) + 1;
      else j++;
    }
    return j + 1;
  }
  return i;
}

const OPEN: Record<string, string> = { "(": ")", "[": "]", "{": "}" };

/** Index of the bracket that closes the one at `open`. */
function matchClose(src: string, open: number): number {
  const stack: string[] = [];
  for (let i = open; i < src.length;) {
    const skipped = skipNonCode(src, i);
    if (skipped !== i) {
      i = skipped;
      continue;
    }
    const c = src[i];
    if (OPEN[c]) stack.push(OPEN[c]);
    else if (c === ")" || c === "]" || c === "}") {
      if (stack.pop() !== c) throw new Error(`unbalanced ${c} at ${lineOf(src, i)}`);
      if (stack.length === 0) return i;
    }
    i++;
  }
  throw new Error(`unclosed bracket at ${lineOf(src, open)}`);
}

/**
 * Splits `src` at commas (or `stop` characters) outside any bracket; with
 * `firstOnly`, stops at the first (the rest of a file may hold what this
 * scanner does not read, such as regular expressions).
 */
function splitTop(src: string, stop = ",", firstOnly = false): string[] {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < src.length;) {
    const skipped = skipNonCode(src, i);
    if (skipped !== i) {
      i = skipped;
      continue;
    }
    const c = src[i];
    if (OPEN[c]) {
      i = matchClose(src, i) + 1;
      continue;
    }
    if (stop.includes(c)) {
      if (firstOnly) return [src.slice(0, i).trim()];
      parts.push(src.slice(start, i));
      start = i + 1;
    }
    i++;
  }
  parts.push(src.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

function lineOf(src: string, i: number): string {
  return `line ${src.slice(0, i).split("\n").length}`;
}

// ---------------------------------------------------------------------------
// Following a flag object through a module and its imports.

const sources = new Map<string, string>();
function read(path: string): string {
  let text = sources.get(path);
  if (text === undefined) {
    text = Deno.readTextFileSync(join(ROOT, path));
    sources.set(path, text);
  }
  return text;
}

/** Where `name` is imported from in `file`, as a repository path. */
function importedFrom(file: string, name: string): { file: string; name: string } | undefined {
  const src = read(file);
  for (const m of src.matchAll(/import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*["']([^"']+)["']/g)) {
    for (const item of m[1].split(",")) {
      const [orig, alias] = item.replace(/^\s*type\s+/, "").trim().split(/\s+as\s+/);
      if ((alias ?? orig) === name && m[2].startsWith(".")) {
        return { file: relative(ROOT, normalize(join(ROOT, dirname(file), m[2]))), name: orig };
      }
    }
  }
  // Re-exports: `export { A } from "./x.ts"` or `export * from "./x.ts"`.
  for (const m of src.matchAll(/export\s*\{([^}]*)\}\s*from\s*["']([^"']+)["']/g)) {
    for (const item of m[1].split(",")) {
      const [orig, alias] = item.replace(/^\s*type\s+/, "").trim().split(/\s+as\s+/);
      if ((alias ?? orig) === name) {
        return { file: relative(ROOT, normalize(join(ROOT, dirname(file), m[2]))), name: orig };
      }
    }
  }
  return undefined;
}

/** The expression a `const name = …` in `file` is set to, or undefined. */
function constValue(file: string, name: string): string | undefined {
  const src = read(file);
  const m = new RegExp(`(?:^|\\n)\\s*(?:export\\s+)?const\\s+${name}\\b[^=]*=`).exec(src);
  if (!m) return undefined;
  const start = m.index + m[0].length;
  // The expression ends at the first top-level `;` (or at the end of file).
  const rest = src.slice(start);
  return splitTop(rest, ";", true)[0];
}

/** The expression `function name(…) { … return EXPR; }` in `file` returns. */
function functionReturn(file: string, name: string): string | undefined {
  const src = read(file);
  const m = new RegExp(`(?:^|\\n)\\s*(?:export\\s+)?function\\s+${name}\\s*[(<]`).exec(src);
  if (!m) return undefined;
  let i = src.indexOf("(", m.index + m[0].length - 1);
  i = matchClose(src, i) + 1;
  // Skip a return type: an object type is skipped whole, then on to the body.
  while (/\s/.test(src[i])) i++;
  if (src[i] === ":") {
    i++;
    while (/\s/.test(src[i])) i++;
    if (src[i] === "{") i = matchClose(src, i) + 1;
  }
  const body = src.indexOf("{", i);
  return returned(src.slice(body, matchClose(src, body) + 1));
}

/** The expression a block `{ … return EXPR; }` returns at its top level. */
function returned(block: string): string | undefined {
  const statements = splitTop(block.slice(1, -1), ";");
  const ret = statements.find((s) => /^return\b/.test(s));
  return ret?.replace(/^return\s*/, "");
}

/** The body of an arrow function `(…) => EXPR` or `x => { return EXPR; }`, if `e` is one. */
function arrowBody(e: string): string | undefined {
  let rest: string;
  if (e.startsWith("(")) rest = e.slice(matchClose(e, 0) + 1);
  else {
    const one = /^[A-Za-z_$][\w$]*(?=\s*=>)/.exec(e);
    if (!one) return undefined;
    rest = e.slice(one[0].length);
  }
  const arrow = rest.indexOf("=>");
  if (arrow < 0 || !/^\s*(:[^]*)?$/.test(rest.slice(0, arrow))) return undefined;
  const body = rest.slice(arrow + 2).trim();
  if (body.startsWith("{") && matchClose(body, 0) === body.length - 1) return returned(body);
  return body;
}

/** The flag names an expression in `file` stands for. */
function flagKeys(file: string, expr: string, depth = 0): string[] {
  if (depth > 20) throw new Error(`${file}: flags nest too deep at ${expr.slice(0, 40)}`);
  // Type assertions after the value (`as const`, `satisfies Record<string, FlagSpec>`) go.
  let e = expr.trim();
  const tail = /\s+(?:as|satisfies)\s+[\w.<>[\],|'"\s]+$/;
  while (tail.test(e)) e = e.replace(tail, "").trim();
  const arrow = arrowBody(e);
  if (arrow !== undefined) return flagKeys(file, arrow, depth + 1);
  if (e.startsWith("(") && matchClose(e, 0) === e.length - 1) e = e.slice(1, -1).trim();
  if (e.startsWith("{") && matchClose(e, 0) === e.length - 1) {
    const keys: string[] = [];
    for (const entry of splitTop(e.slice(1, -1))) {
      if (entry.startsWith("...")) keys.push(...flagKeys(file, entry.slice(3), depth + 1));
      else {
        const key = /^(?:"([^"]+)"|'([^']+)'|([A-Za-z_$][\w$]*))\s*(?::|$)/.exec(entry);
        if (!key) throw new Error(`${file}: cannot read the flag entry ${entry.slice(0, 40)}`);
        keys.push(key[1] ?? key[2] ?? key[3]);
      }
    }
    return keys;
  }
  const call = /^([A-Za-z_$][\w$]*)\s*\(/.exec(e);
  if (call && matchClose(e, call[0].length - 1) === e.length - 1) {
    return resolve(file, call[1], (f, n) => functionReturn(f, n) ?? constValue(f, n), depth);
  }
  if (/^[A-Za-z_$][\w$]*$/.test(e)) return resolve(file, e, constValue, depth);
  throw new Error(`${file}: cannot follow the flags in ${e.slice(0, 60)}`);
}

/** Follows `name` to its definition (here or through imports) and reads its keys. */
function resolve(
  file: string,
  name: string,
  definition: (file: string, name: string) => string | undefined,
  depth: number,
): string[] {
  const here = definition(file, name);
  if (here !== undefined) return flagKeys(file, here, depth + 1);
  const from = importedFrom(file, name);
  if (!from) throw new Error(`${file}: cannot find where ${name} is defined`);
  return resolve(from.file, from.name, definition, depth + 1);
}

/** The flags a tool's entry point defines (and `help`, which every tool has). */
function toolFlags(entry: string): string[] {
  const src = read(entry);
  const flags = new Set<string>();
  let found = false;
  for (const m of src.matchAll(/\bparseFlags\s*\(/g)) {
    const open = m.index + m[0].length - 1;
    const args = splitTop(src.slice(open + 1, matchClose(src, open)));
    if (args.length < 2) continue;
    found = true;
    for (const k of flagKeys(entry, args[1])) flags.add(k);
  }
  if (!found) {
    throw new Error("no parseFlags(Deno.args, FLAGS, …) call in it to read its flags from");
  }
  flags.add("help");
  return [...flags];
}

// ---------------------------------------------------------------------------
// The pages.

/** The task table of README.md: task name to the page its row links to. */
function taskPages(readme: string): Map<string, string> {
  const pages = new Map<string, string>();
  for (const line of readme.split("\n")) {
    if (!line.startsWith("|")) continue;
    const cells = line.split("|").map((c) => c.trim());
    const task = /^\[?`(?:deno task )?([\w-]+)`/.exec(cells[1] ?? "");
    const link = /\]\((docs\/[\w.-]+\.md)(?:#[\w-]*)?\)/.exec(line);
    if (task && link) pages.set(task[1], link[1]);
  }
  return pages;
}

/** The OPTIONS section of a page (to the next `## ` heading). */
function optionsSection(page: string): string | undefined {
  const m = /^## OPTIONS\s*$/m.exec(page);
  if (!m) return undefined;
  const rest = page.slice(m.index + m[0].length);
  const next = /^## /m.exec(rest);
  return next ? rest.slice(0, next.index) : rest;
}

/** Within OPTIONS, the `### …` part that names `task`, if the page has parts. */
function partFor(options: string, task: string): string {
  const parts = options.split(/^(?=### )/m);
  const mine = parts.find((p) => new RegExp(`^### .*\\b${task}\\b`).test(p));
  return mine ?? options;
}

/** The entry point a task runs (its last `.ts` argument), if any. */
function entryOf(command: string): string | undefined {
  const m = /\s([\w./-]+\.ts)\s*$/.exec(command.trim() + " ");
  return m?.[1];
}

if (Deno.args.includes("--list")) {
  // `--list`: each task's flags, as this check reads them (to write a page).
  for (const [task, command] of Object.entries(JSON.parse(read("deno.json")).tasks)) {
    const entry = entryOf(command as string);
    if (entry && /^deno run\b/.test(command as string) && !NO_FLAGS.has(task)) {
      console.log(`${task} (${entry}): ${toolFlags(entry).map((f) => `--${f}`).join(" ")}`);
    }
  }
  Deno.exit(0);
}

const problems: string[] = [];
const readme = read("README.md");
const lines = readme.replace(/\n$/, "").split("\n");
if (lines.length > MAX_README_LINES) {
  problems.push(`README.md: ${lines.length} lines, more than ${MAX_README_LINES}`);
}
lines.forEach((line, i) => {
  if (line.length > MAX_LINE && !line.startsWith("|") && !/https?:\/\//.test(line)) {
    problems.push(`README.md:${i + 1}: ${line.length} characters, more than ${MAX_LINE}`);
  }
});

const tasks: Record<string, string> = JSON.parse(read("deno.json")).tasks;
const pages = taskPages(readme);
/** Flags each page's OPTIONS may list, across the tasks it documents. */
const pageFlags = new Map<string, Set<string>>();
for (const [task, command] of Object.entries(tasks)) {
  const page = pages.get(task);
  if (!page) {
    problems.push(`README.md: the task table has no row for ${task} with a link to docs/`);
    continue;
  }
  let text: string;
  try {
    text = read(page);
  } catch {
    problems.push(`README.md: ${task} links to ${page}, which does not exist`);
    continue;
  }
  const entry = entryOf(command);
  if (!entry || !/^deno run\b/.test(command) || NO_FLAGS.has(task)) continue;
  let flags: string[];
  try {
    flags = toolFlags(entry);
  } catch (err) {
    problems.push(`${entry}: cannot enumerate its flags: ${(err as Error).message}`);
    continue;
  }
  const known = pageFlags.get(page) ?? new Set();
  pageFlags.set(page, known);
  const options = optionsSection(text);
  if (options === undefined) {
    problems.push(`${page}: no "## OPTIONS" section for ${task}'s flags`);
    continue;
  }
  const part = partFor(options, task);
  for (const flag of flags) {
    known.add(flag);
    if (!new RegExp(`--${flag}(?![\\w-])`).test(part)) {
      problems.push(`${page}: ${task}'s flag --${flag} (${entry}) is not in its OPTIONS`);
    }
  }
}
for (const [page, known] of pageFlags) {
  const options = optionsSection(read(page)) ?? "";
  for (const m of options.matchAll(/^- `--([\w-]+)/gm)) {
    if (!known.has(m[1])) problems.push(`${page}: lists --${m[1]}, which no tool of it defines`);
  }
}

// Relative links in README.md and docs/ name files that exist.
const docs = [...Deno.readDirSync(join(ROOT, "docs"))]
  .filter((e) => e.isFile && e.name.endsWith(".md"))
  .map((e) => `docs/${e.name}`);
for (const file of ["README.md", ...docs]) {
  for (const m of read(file).matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1].split("#")[0];
    if (target === "" || /^[a-z]+:/.test(target)) continue;
    const path = normalize(join(ROOT, dirname(file), target));
    try {
      Deno.statSync(path);
    } catch {
      problems.push(`${file}: the link ${m[1]} names no file`);
    }
  }
}

if (problems.length > 0) {
  console.error(problems.join("\n"));
  console.error(`docs: ${problems.length} ${problems.length === 1 ? "problem" : "problems"}`);
  Deno.exit(1);
}
console.log(
  `docs: ok (README ${lines.length} lines; ${pageFlags.size} pages document every flag of ` +
    `${Object.keys(tasks).length} tasks)`,
);

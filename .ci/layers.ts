/**
 * The layer rules, checked on every run of `.ci/run` (reads files only:
 * `deno run --allow-read .ci/layers.ts`).
 *
 * ```text
 * tests/ ─▶ bench/ ─▶ demo.ts ─▶ tcp/ udp/ tools/ ─▶ lib/cli ─▶ lib/io ─▶ lib/core
 *                                                                  └──▶ native/
 * ```
 *
 * - Each unit imports only the units to its right (and itself); tests'
 *   helpers (`tests/support/`) may be used by `bench/` too, never by
 *   product code, and may import `deno.json` (its tasks' flags).
 * - Entry-point folders (`tcp/`, `udp/`, `tools/`) do not import each other.
 * - Nothing under `lib/core/` touches I/O: no `Deno.`, timers, clocks or
 *   randomness, no `node:` modules but `node:crypto` hashing.
 * - `native/` (the FFI binding) imports nothing of ours.
 *
 * @module
 */
import { dirname, join, normalize, relative } from "node:path";

const ROOT = normalize(join(dirname(new URL(import.meta.url).pathname), ".."));

/** Which unit a repository path belongs to. */
function unitOf(path: string): string {
  if (path.startsWith("lib/core/")) return "lib/core";
  if (path.startsWith("lib/io/")) return "lib/io";
  if (path.startsWith("lib/cli/")) return "lib/cli";
  if (path === "lib/mod.ts") return "lib";
  if (path.startsWith("tests/support/")) return "tests/support";
  const top = path.split("/")[0];
  return top.endsWith(".ts") ? top : top;
}

/** The product: what every tool is built of. */
const PRODUCT = ["lib/core", "lib/io", "lib/cli", "native", "tcp", "udp", "tools", "lib"];

/** What each unit may import, besides itself. */
const ALLOWED: Record<string, string[]> = {
  "lib/core": [],
  "native": [],
  "lib/io": ["lib/core", "native"],
  "lib/cli": ["lib/core", "lib/io", "native"],
  "lib": ["lib/core", "lib/io", "lib/cli"],
  "tcp": ["lib/core", "lib/io", "lib/cli", "native"],
  "udp": ["lib/core", "lib/io", "lib/cli", "native"],
  "tools": ["lib/core", "lib/io", "lib/cli", "native"],
  "demo.ts": PRODUCT,
  // deno.json: the tasks' flags, to run a tool as its task does.
  "tests/support": [...PRODUCT, "deno.json"],
  "bench": [...PRODUCT, "tests/support"],
  "tests": [...PRODUCT, "tests/support", "bench", "demo.ts"],
  ".ci": [],
};

const CORE_FORBIDDEN: [RegExp, string][] = [
  [/\bDeno\./, "Deno."],
  [/\bsetTimeout\b|\bsetInterval\b/, "a timer"],
  [/\bperformance\.now\b|\bDate\.now\b|\bnew Date\(\)/, "a clock"],
  [/\bMath\.random\b|getRandomValues|randomUUID/, "randomness"],
  [/from "node:(?!crypto")/, "a node: module other than node:crypto"],
  [/\bfetch\(/, "fetch"],
];

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith(".") && e.name !== ".ci") continue;
    if (e.name === "node_modules") continue;
    const p = join(dir, e.name);
    if (e.isDirectory) yield* walk(p);
    else if (e.isFile && p.endsWith(".ts")) yield p;
  }
}

const problems: string[] = [];
const edges = new Map<string, Set<string>>();
const importRe =
  /(?:^|\n)\s*(?:import|export)[^"';]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;
for await (const abs of walk(ROOT)) {
  const path = relative(ROOT, abs);
  const unit = unitOf(path);
  const text = await Deno.readTextFile(abs);
  if (unit === "lib/core") {
    const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
    for (const [re, what] of CORE_FORBIDDEN) {
      if (re.test(code)) problems.push(`${path}: lib/core must not use ${what}`);
    }
  }
  for (const m of text.matchAll(importRe)) {
    const spec = m[1] ?? m[2];
    if (!spec.startsWith(".")) continue;
    const target = relative(ROOT, normalize(join(dirname(abs), spec)));
    const to = unitOf(target);
    if (to === unit) continue;
    if (!edges.has(unit)) edges.set(unit, new Set());
    edges.get(unit)!.add(to);
    const allowed = ALLOWED[unit];
    if (!allowed) problems.push(`${path}: unknown layer ${unit}`);
    else if (!allowed.includes(to)) problems.push(`${path}: ${unit} must not import ${target}`);
  }
}

// No cycles between units, whatever the table above says.
const state = new Map<string, "visiting" | "done">();
const visit = (u: string, trail: string[]): void => {
  if (state.get(u) === "done") return;
  if (state.get(u) === "visiting") {
    problems.push(`import cycle: ${[...trail.slice(trail.indexOf(u)), u].join(" -> ")}`);
    return;
  }
  state.set(u, "visiting");
  for (const v of edges.get(u) ?? []) visit(v, [...trail, u]);
  state.set(u, "done");
};
for (const u of edges.keys()) visit(u, []);

if (problems.length > 0) {
  console.error(problems.join("\n"));
  console.error(`layers: ${problems.length} problems`);
  Deno.exit(1);
}
console.log(`layers: ok (${[...edges.keys()].length} units, imports run one way)`);

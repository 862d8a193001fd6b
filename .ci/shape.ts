/**
 * The shape rules for product code, checked on every run of `.ci/run`
 * (`deno run --allow-read --allow-env .ci/shape.ts`):
 *
 * - no file over 500 lines;
 * - no function (declaration, method, arrow, constructor, accessor) over
 *   80 lines, counted from its first line to its last;
 * - entry points (`tcp/`, `udp/`, `tools/`) declare no classes and make no
 *   socket calls of their own (`Deno.listen`, `Deno.connect`, …);
 * - nothing outside `lib/core/` decodes protocol messages (imports a
 *   `FrameDecoder` or a `decode…` function from `lib/core`);
 * - no import cycles between modules.
 *
 * Product code is `lib/`, `native/`, `tcp/`, `udp/` and `tools/`. Today's
 * offenders are listed in `.ci/shape_allow.json` with their size: a listed
 * offender may shrink, never grow, and one that no longer offends must be
 * taken off the list, so the list only gets shorter (`--record` wrote it
 * once, from the code as it stood).
 *
 * @module
 */
import ts from "npm:typescript@5.9.3";
import { dirname, join, normalize, relative } from "node:path";

const ROOT = normalize(join(dirname(new URL(import.meta.url).pathname), ".."));
const PRODUCT = ["lib/", "native/", "tcp/", "udp/", "tools/"];
const ENTRY = ["tcp/", "udp/", "tools/"];
const MAX_FILE_LINES = 500;
const MAX_FUNCTION_LINES = 80;
const SOCKET_CALLS = /\bDeno\.(listen|connect|listenDatagram|listenTls|connectTls)\b/;

/** The offenders allowed today, by kind; sizes where a size applies. */
interface Allowed {
  files: Record<string, number>;
  functions: Record<string, number>;
  classes: string[];
  sockets: string[];
  decoders: string[];
  cycles: string[];
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith(".") || e.name === "node_modules") continue;
    const p = join(dir, e.name);
    if (e.isDirectory) yield* walk(p);
    else if (e.isFile && p.endsWith(".ts")) yield p;
  }
}

/** A readable name for a function-like node: `Class.method`, `outer>inner`. */
function nameOf(node: ts.Node, sf: ts.SourceFile): string {
  const n = node as ts.FunctionLikeDeclaration;
  if (ts.isConstructorDeclaration(node)) return "constructor";
  if (n.name) return n.name.getText(sf);
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent)) return parent.name.getText(sf);
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText(sf);
  if (parent && ts.isPropertyDeclaration(parent)) return parent.name.getText(sf);
  return "(anonymous)";
}

/** Every function's qualified name and length in lines, in one file. */
function functionLengths(sf: ts.SourceFile): Map<string, number> {
  const out = new Map<string, number>();
  const visit = (node: ts.Node, trail: string[]): void => {
    let next = trail;
    if (ts.isClassDeclaration(node) && node.name) next = [...trail, node.name.text];
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const name = [...trail, nameOf(node, sf)].join(">").replace(
        />(?=[^>]*$)/,
        (m) => trail.length > 0 && ts.isClassLike(node.parent) ? "." : m,
      );
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      let key = name;
      for (let i = 2; out.has(key); i++) key = `${name}#${i}`;
      out.set(key, end - start + 1);
      next = [...trail, nameOf(node, sf)];
    }
    ts.forEachChild(node, (child) => visit(child, next));
  };
  visit(sf, []);
  return out;
}

/** Relative imports of a file, resolved to repository paths. */
function importsOf(sf: ts.SourceFile, path: string): { target: string; names: string[] }[] {
  const out: { target: string; names: string[] }[] = [];
  for (const st of sf.statements) {
    if (!ts.isImportDeclaration(st) && !ts.isExportDeclaration(st)) continue;
    const spec = st.moduleSpecifier;
    if (!spec || !ts.isStringLiteral(spec) || !spec.text.startsWith(".")) continue;
    const target = relative(ROOT, normalize(join(ROOT, dirname(path), spec.text)));
    const names: string[] = [];
    if (ts.isImportDeclaration(st)) {
      const b = st.importClause?.namedBindings;
      if (b && ts.isNamedImports(b)) { for (const e of b.elements) names.push(e.name.text); }
      if (st.importClause?.isTypeOnly) names.length = 0;
    }
    out.push({ target, names });
  }
  return out;
}

/** The cycles in the module graph, each named by its sorted members. */
function cycles(graph: Map<string, string[]>): string[] {
  const found = new Set<string>();
  const state = new Map<string, "visiting" | "done">();
  const visit = (u: string, trail: string[]): void => {
    if (state.get(u) === "done") return;
    if (state.get(u) === "visiting") {
      found.add(trail.slice(trail.indexOf(u)).sort().join(" <-> "));
      return;
    }
    state.set(u, "visiting");
    for (const v of graph.get(u) ?? []) if (graph.has(v)) visit(v, [...trail, u]);
    state.set(u, "done");
  };
  for (const u of graph.keys()) visit(u, []);
  return [...found];
}

const allowed: Allowed = JSON.parse(
  await Deno.readTextFile(join(ROOT, ".ci/shape_allow.json")),
);
const seen: Allowed = {
  files: {},
  functions: {},
  classes: [],
  sockets: [],
  decoders: [],
  cycles: [],
};
const graph = new Map<string, string[]>();

for (const dir of PRODUCT) {
  for await (const abs of walk(join(ROOT, dir))) {
    const path = relative(ROOT, abs);
    const text = await Deno.readTextFile(abs);
    const sf = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
    const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
    if (lines > MAX_FILE_LINES) seen.files[path] = lines;
    for (const [name, n] of functionLengths(sf)) {
      if (n > MAX_FUNCTION_LINES) seen.functions[`${path}:${name}`] = n;
    }
    const imports = importsOf(sf, path);
    graph.set(path, imports.map((i) => i.target));
    if (ENTRY.some((e) => path.startsWith(e))) {
      if (sf.statements.some((s) => ts.isClassDeclaration(s))) seen.classes.push(path);
      if (SOCKET_CALLS.test(text)) seen.sockets.push(path);
    }
    if (!path.startsWith("lib/core/")) {
      const decodes = imports.some((i) =>
        i.target.startsWith("lib/core/") &&
        i.names.some((n) => n === "FrameDecoder" || /^decode[A-Z]/.test(n))
      );
      if (decodes) seen.decoders.push(path);
    }
  }
}
seen.cycles = cycles(graph);

const problems: string[] = [];
const sized = (kind: "files" | "functions", limit: number, what: string): void => {
  for (const [key, n] of Object.entries(seen[kind])) {
    const was = allowed[kind][key];
    if (was === undefined) problems.push(`${key}: ${what} has ${n} lines (at most ${limit})`);
    else if (n > was) problems.push(`${key}: ${what} grew from ${was} to ${n} lines`);
  }
  for (const key of Object.keys(allowed[kind])) {
    if (!(key in seen[kind])) problems.push(`${key}: no longer too long; take it off the list`);
  }
};
sized("files", MAX_FILE_LINES, "file");
sized("functions", MAX_FUNCTION_LINES, "function");
const listed = (kind: "classes" | "sockets" | "decoders" | "cycles", what: string): void => {
  for (const key of seen[kind]) if (!allowed[kind].includes(key)) problems.push(`${key}: ${what}`);
  for (const key of allowed[kind]) {
    if (!seen[kind].includes(key)) problems.push(`${key}: fixed (${kind}); take it off the list`);
  }
};
listed("classes", "an entry point declares a class; move it to lib/");
listed("sockets", "an entry point calls a socket API itself; use lib/io");
listed("decoders", "decodes protocol messages outside lib/core; move it into a core");
listed("cycles", "import cycle");

if (Deno.args.includes("--record")) {
  // Only to start the list; after that, the list may only shrink by hand.
  await Deno.writeTextFile(
    join(ROOT, ".ci/shape_allow.json"),
    JSON.stringify(seen, null, 2) + "\n",
  );
  Deno.exit(0);
}
if (problems.length > 0) {
  console.error(problems.join("\n"));
  console.error(`shape: ${problems.length} problems (see .ci/shape.ts)`);
  Deno.exit(1);
}
const offenders = Object.keys(allowed.files).length + Object.keys(allowed.functions).length +
  allowed.classes.length + allowed.sockets.length + allowed.decoders.length +
  allowed.cycles.length;
console.log(`shape: ok (${offenders} offenders from before still listed)`);

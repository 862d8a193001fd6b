/**
 * The library's public face, one layer at a time: `core` (no I/O), `io`
 * (shells around the cores), `cli` (the tools' command-line shell). Import a
 * layer's `mod.ts` directly to take only what you need.
 *
 * @module
 */
export * as core from "./core/mod.ts";
export * as io from "./io/mod.ts";
export * as cli from "./cli/mod.ts";

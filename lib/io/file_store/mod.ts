/**
 * Where the file server keeps what it receives, in the pieces it is: the
 * disk primitives (`disk.ts`), partial transfers (`partials.ts`,
 * `partial_file.ts`), the digest book of `--update` (`digest_book.ts`),
 * where a folder's entries go (`placement.ts`) and the storing of packs
 * on a worker thread (`packs.ts`, `store_worker.ts`).
 *
 * @module
 */
export * from "./disk.ts";
export * from "./partials.ts";
export * from "./partial_file.ts";
export * from "./digest_book.ts";
export * from "./placement.ts";
export * from "./packs.ts";

/**
 * The toolkit's library: I/O-free protocol cores (framing, the file
 * transfer state) and the small shared pieces every tool uses (flags,
 * errors, formatting, MD5).
 *
 * @module
 */
export * from "./errors.ts";
export * from "./md5.ts";
export * from "./frame.ts";
export * from "./file_protocol.ts";
export * from "./transfer_state.ts";
export * from "./names.ts";
export * from "./format.ts";
export * from "./cli.ts";
export * from "./io.ts";
export * from "./framed_conn.ts";
export * from "./progress.ts";
export * from "./net.ts";

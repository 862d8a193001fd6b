/**
 * The toolkit's library: the I/O-free protocol cores (framing, the file
 * transfer state, Audio-TCP and Audio-UDP messages, reassembly, the jitter
 * buffer, concealment, the impairment model, reports) and the shared pieces
 * every tool uses (flags, errors, formatting, MD5, sockets, audio sources
 * and sinks).
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
export * from "./audio_spec.ts";
export * from "./audio_endpoint.ts";
export * from "./audio_io.ts";
export * from "./audio_protocol.ts";
export * from "./audio_client.ts";
export * from "./audio_tool.ts";
export * from "./conceal.ts";
export * from "./stream_report.ts";
export * from "./udp_protocol.ts";
export * from "./reassembly.ts";
export * from "./jitter_buffer.ts";
export * from "./impairment.ts";
export * from "./compare.ts";
export * from "./wav.ts";
export * from "./tone.ts";
export * from "./tool_process.ts";

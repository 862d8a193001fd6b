/**
 * The toolkit's library: the I/O-free protocol cores (framing, the file
 * transfer state, Audio-TCP and Audio-UDP messages, reassembly, the jitter
 * buffer, concealment, the impairment model, reports) and the shared pieces
 * every tool uses (flags, errors, formatting, MD5, sockets, audio sources
 * and sinks).
 *
 * @module
 */
export * from "./core/errors.ts";
export * from "./core/wire/md5.ts";
export * from "./core/wire/frame.ts";
export * from "./core/file/messages.ts";
export * from "./core/file/transfer_state.ts";
export * from "./core/file/names.ts";
export * from "./core/report/format.ts";
export * from "./cli/flags.ts";
export * from "./io/streams.ts";
export * from "./io/framed_conn.ts";
export * from "./cli/progress.ts";
export * from "./io/net.ts";
export * from "./core/audio/spec.ts";
export * from "./core/audio/endpoint.ts";
export * from "./io/audio_io.ts";
export * from "./core/audio/tcp_frames.ts";
export * from "./io/playout.ts";
export * from "./cli/audio_shell.ts";
export * from "./core/audio/conceal.ts";
export * from "./core/report/stream_report.ts";
export * from "./core/audio/udp_datagrams.ts";
export * from "./core/audio/reassembly.ts";
export * from "./core/audio/jitter_buffer.ts";
export * from "./core/wire/impairment.ts";
export * from "./core/report/compare.ts";
export * from "./core/audio/wav.ts";
export * from "./core/audio/tone.ts";
export * from "../tests/support/tool_process.ts";

/**
 * The thin shells the tools share: sockets, files, the clock, audio
 * devices and the play-out side.
 *
 * @module
 */
export {
  type AudioBlock,
  type AudioSink,
  type AudioSource,
  openSink,
  openSource,
} from "./audio_io.ts";
export { type Capture, newStreamId, startCapture } from "./capture.ts";
export { now } from "./clock.ts";
export { ContainedRoot, type FileStat, type RootOpenOptions } from "./contained_root.ts";
export { readChunks, type ReadChunksOptions } from "./conn.ts";
export { grantedEnv } from "./env.ts";
export { closeQuietly, describeError, readError } from "./errors.ts";
export { OPENSSL_CRYPTO, useNativeCrypto } from "./native_crypto.ts";
export {
  connectTo,
  listenTcp,
  listenUdp,
  openUdpClientSocket,
  resolveUdpServer,
  sameAddress,
} from "./net.ts";
export { resolveUserPath } from "./paths.ts";
export {
  FormatChangedError,
  keepsTimeline,
  MAX_DRIFT_PPM,
  Playout,
  type PlayoutOptions,
} from "./playout.ts";
export { acceptCoded, type CodedConn, type CodedOptions, connectCoded } from "./secure_conn.ts";
export { readAt, type Reader, readFull, readFullSync, writeAll, type Writer } from "./streams.ts";
export {
  type Admitted,
  closeOnce,
  startTcpShell,
  startUdpShell,
  type TcpShell,
  type TcpShellOptions,
  type UdpShell,
  type UdpShellOptions,
} from "./server_shell.ts";
export { startUdpRelay, type UdpRelay, type UdpRelayOptions } from "./udp_relay.ts";

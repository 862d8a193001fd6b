/**
 * The command-line shell: flags, `runMain`, progress, and the shells of
 * the audio tools.
 *
 * @module
 */
export {
  AUDIO_PORT,
  audioFlags,
  type AudioServer,
  CLIENT_FLAGS,
  runClientTool,
  runServerTool,
  serverFlags,
  specFromFlags,
} from "./audio_shell.ts";
export { CODE_FLAG, isLoopback, newCode, resolveCode, withCodePrompt } from "./code.ts";
export { onInterrupt, resumeCommand } from "./resume.ts";
export {
  type Flags,
  type FlagSpec,
  type FlagSpecs,
  helpText,
  HOST_FLAG,
  onShutdown,
  parseCount,
  parseFlags,
  parsePort,
  parseSecondsFlag,
  parseSizeFlag,
  portFlag,
  runMain,
  type ToolInfo,
} from "./flags.ts";
export { ProgressReporter, renderProgress } from "./progress.ts";
export {
  type AudioTcpServer,
  type AudioTcpServerOptions,
  type AudioTcpServerStats,
  startAudioTcpServer,
} from "./audio_tcp_server.ts";
export {
  type AudioUdpServer,
  type AudioUdpServerOptions,
  startAudioUdpServer,
} from "./audio_udp_server.ts";
export {
  AUDIO_TCP_TIMEOUT_MS,
  type AudioTcpClientOptions,
  runAudioTcpClient,
} from "./audio_tcp_client.ts";
export { type AudioUdpClientOptions, runAudioUdpClient } from "./audio_udp_client.ts";

/**
 * The TCP tools as a library: File-TCP's server and sender, Audio-TCP's
 * server and client. Each runs on the session cores in `lib/core`.
 *
 * @module
 */
export {
  FILE_PORT,
  type FileServer,
  type FileServerOptions,
  startFileServer,
  type TransferRecord,
} from "./file_server.ts";
export { sendFile, type SendOptions, type SendResult, summarize } from "./file_client.ts";
export {
  type AudioTcpServer,
  type AudioTcpServerOptions,
  type AudioTcpServerStats,
  startAudioTcpServer,
} from "./audio_server.ts";
export { type AudioTcpClientOptions, runAudioTcpClient } from "./audio_client.ts";

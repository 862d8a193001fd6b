/**
 * The TCP tools as a library: File-TCP's server and sender (files and
 * folders, many transfers on one connection), Audio-TCP's
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
export {
  displayName,
  type EntryResult,
  failureLine,
  folderLine,
  type FolderTally,
  sendEntries,
  type SendEntriesOptions,
  sendFile,
  type SendOptions,
  type SendResult,
  type SendSummary,
  summarize,
  tally,
} from "./file_client.ts";
export {
  checkSources,
  type Entry,
  type Source,
  walkEntries,
  type WalkOptions,
} from "./file_tree.ts";
export {
  type AudioTcpServer,
  type AudioTcpServerOptions,
  type AudioTcpServerStats,
  startAudioTcpServer,
} from "./audio_server.ts";
export { type AudioTcpClientOptions, runAudioTcpClient } from "./audio_client.ts";

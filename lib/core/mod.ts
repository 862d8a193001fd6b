/**
 * The I/O-free cores: framing, messages, session cores, reassembly, jitter
 * buffer, reports. Nothing here touches a socket, a file, a timer or a clock;
 * time is passed in.
 *
 * @module
 */
export { type BlockContext, blockDigest } from "./audio/format/block_digest.ts";
export { Broadcaster, type StreamBlock } from "./audio/stages/broadcaster.ts";
export {
  ListenerSession,
  type ListenerSessionOptions,
  SYNC_BURST,
  SYNC_PER_SECOND,
} from "./audio/tcp/server.ts";
export {
  type ClockEstimate,
  ClockSync,
  type ClockSyncOptions,
  decodeSyncReply,
  MAX_HELD_BLOCKS,
  SYNC_REPLY_LENGTH,
  SyncedTimeline,
  type SyncReply,
  writeSyncReply,
} from "./audio/stages/clock_sync.ts";
export { Concealer } from "./audio/stages/conceal.ts";
export {
  type AudioEndpoint,
  type NamedDevice,
  parseEndpoint,
  selectDevice,
} from "./audio/format/endpoint.ts";
export {
  type BlockCheck,
  decodeRepair,
  DEFAULT_FEC,
  describeFec,
  encodeRepair,
  type FecBlock,
  type FecChoice,
  type FecCounters,
  FecDecoder,
  FecEncoder,
  type FecPlan,
  groupStart,
  newFecCounters,
  parseFec,
  planFec,
  REPAIR_HEADER,
  type RepairFragment,
} from "./audio/stages/fec.ts";
export {
  addCheck,
  CHECK_LENGTH,
  DATAGRAM_CHECK,
  stripCheck,
} from "./audio/stages/datagram_check.ts";
export { crc32c, CRC32C_LENGTH } from "./wire/crc32c.ts";
export {
  type AutoTarget,
  CALM_MS,
  type JitterBlock,
  JitterBuffer,
  type JitterCounters,
  type JitterOptions,
  newOrderCounters,
  newTargetCounters,
  type OrderCounters,
  type PlayoutDecision,
  type TargetCounters,
} from "./audio/stages/jitter_buffer.ts";
export { RateMatcher, type RateMatchOptions, stretch } from "./audio/stages/rate_match.ts";
export {
  type AssembledBlock,
  newReassemblyCounters,
  Reassembler,
  type ReassemblyCounters,
} from "./audio/stages/reassembly.ts";
export { before } from "./audio/stages/sequence.ts";
export {
  type ArrivedBlock,
  MAX_FILL_BLOCKS,
  MAX_JUMP_BLOCKS,
  SequenceTracker,
} from "./audio/stages/sequence_tracker.ts";
export {
  type AudioSpec,
  blockBytes,
  blockMs,
  DEFAULT_SPEC,
  describeSpec,
  SAMPLE_BYTES,
  validateSpec,
} from "./audio/format/spec.ts";
export {
  AUDIO_PROTOCOL,
  encodeStreamFormat,
  parseStreamFormat,
  sameSpec,
  type StreamFormat,
} from "./audio/format/stream_format.ts";
export {
  AUDIO_CLIENT_LIMITS,
  AUDIO_SERVER_LIMITS,
  AudioMsg,
  BLOCK_PREFIX,
  decodeBlock,
  decodeHello,
  decodeSyncReplyFrame,
  decodeSyncRequest,
  encodeBlock,
  encodeHello,
  encodeSyncReplyFrame,
  encodeSyncRequest,
  type Hello,
  MAX_SERVER_FRAME,
  type ReceivedBlock,
  SYNC_REQUEST_LENGTH,
} from "./audio/tcp/frames.ts";
export { type AudioTcpEvent, AudioTcpReceiver } from "./audio/tcp/client.ts";
export { estimateFrequency, rmsLevel, ToneGenerator } from "./audio/format/tone.ts";
export {
  COOKIE_LENGTH,
  CookieJar,
  DATA_HEADER,
  datagramType,
  decodeCookie,
  decodeFormat,
  decodeFragment,
  decodeSubscribe,
  decodeSync,
  encodeChallenge,
  encodeFormat,
  encodeFull,
  encodeSubscribe,
  encodeSync,
  type FecParams,
  fecProblem,
  type Fragment,
  fragmentBlock,
  fragmentCount,
  fragmentSize,
  fragmentsOf,
  isRejected,
  MAX_FEC_BLOCKS,
  MAX_FRAGMENTS,
  MAX_MTU,
  MIN_MTU,
  newDatagram,
  piecesFit,
  pieceSize,
  type Rejected,
  SUBSCRIBE_LENGTH,
  type SubscribeOptions,
  UDP_MAGIC,
  UDP_VERSION,
  type UdpFormat,
  UdpMsg,
} from "./audio/udp/datagrams.ts";
export {
  ListenerTable,
  type ListenerTableOptions,
  type UdpServerStats,
} from "./audio/udp/server.ts";
export {
  bareDatagram,
  ClientHandshake,
  DATA_TAG,
  openData,
  openRepair,
  sealData,
  sealRepair,
  SecureUdpMsg,
  ServerHandshake,
} from "./audio/udp/secure.ts";
export {
  AUTO_MAX_MS,
  type SubscriberEvent,
  type SubscriberOptions,
  UdpSubscriber,
} from "./audio/udp/client.ts";
export {
  encodeWavHeader,
  parseWavHeader,
  WAV_HEADER_LENGTH,
  type WavInfo,
} from "./audio/format/wav.ts";
export {
  openAt,
  Opener,
  sealAt,
  Sealer,
  type SessionKeys,
  sessionKeys,
  TAG_LENGTH,
} from "./crypto/channel.ts";
export {
  CODE_BITS,
  CODE_RANDOM_BYTES,
  CODE_WORDS,
  codeExchange,
  codeScalar,
  generateCode,
  MIN_CODE_LENGTH,
  normalizeCode,
} from "./crypto/code.ts";
export {
  GLOBAL_PER_SECOND,
  GuessLimiter,
  HOST_BURST,
  HOST_EVERY_MS,
  NETWORK_BURST,
  NETWORK_EVERY_MS,
} from "./crypto/guess_limiter.ts";
export {
  HandshakeGate,
  HANDSHAKES_PER_ADDRESS,
  HANDSHAKES_PER_NETWORK,
  isLoopback,
  networkOf,
  requireCodeBeyondLoopback,
} from "./crypto/admission.ts";
export { Admission, type AdmissionOptions, type Refusal } from "./crypto/server_admission.ts";
export {
  type FrameTransport,
  frameTransport,
  type FrameTransportOptions,
} from "./crypto/frame_transport.ts";
export {
  checkMtu,
  planCut,
  type UdpCut,
  UdpFanout,
  type UdpFanoutOptions,
} from "./audio/udp/fanout.ts";
export { type FragmentFate, RelayCore, type RelayCoreOptions } from "./audio/udp/relay.ts";
export {
  type CryptoProvider,
  cryptoProvider,
  type KeyedAead,
  type Md5State,
  NODE_CRYPTO,
  setCryptoProvider,
} from "./crypto/provider.ts";
export {
  CodeMismatch,
  CodeRequired,
  sealedLength,
  type SecureEvent,
  SecureMsg,
  SecureStream,
  type SecureStreamOptions,
  Tampered,
} from "./crypto/secure_stream.ts";
export {
  CONFIRM_LENGTH,
  confirmationsMatch,
  ORDER,
  scalarFromBytes,
  SHARE_LENGTH,
  Spake2,
  type Spake2Keys,
  type Spake2Role,
} from "./crypto/spake2.ts";
export { ProtocolError, UsageError, UserError } from "./errors.ts";
export {
  type Accept,
  chooseChunkSize,
  CHUNK_CHECK,
  chunkCount,
  type ChunkRef,
  CLIENT_LIMITS,
  CLIENT_LINK_LIMITS,
  DATA_PREFIX,
  decodeChunk,
  decodeError,
  decodeNack,
  decodeStream,
  DEFAULT_CHUNK_SIZE,
  type Done,
  encodeCheck,
  encodeError,
  encodeJson,
  encodeNack,
  encodeStream,
  type End,
  FILE_PORT,
  fillDataFrame,
  fillStreamFrame,
  isMode,
  isPathList,
  MAX_CHUNK_RETRIES,
  MAX_CHUNK_SIZE,
  MAX_CHUNKS,
  MAX_DONE_BYTES,
  MAX_HELD_RANGES,
  MAX_OFFER_BYTES,
  MAX_OPEN_STREAMS,
  MAX_PACK_BYTES,
  MAX_PATH_BYTES,
  MAX_PATH_DEPTH,
  MIN_CHUNK_SIZE,
  MsgType,
  type Offer,
  SERVER_LIMITS,
  SERVER_LINK_LIMITS,
  STREAM_OFFSET,
  STREAM_PREFIX,
  type StreamBytes,
} from "./file/messages.ts";
export {
  decodeAccept,
  decodeChallenge,
  decodeDone,
  decodeEnd,
  decodeOffer,
  decodeProof,
  isResumeToken,
} from "./file/decode_messages.ts";
export {
  decodePack,
  encodePack,
  MAX_PACK_FILES,
  PACK_FILE_BYTES,
  type PackFile,
} from "./file/pack.ts";
export {
  MAX_BASE_BYTES,
  MAX_COMPONENT_BYTES,
  receivedName,
  safeBaseName,
  safeRelativePath,
} from "./file/names.ts";
export {
  CHECKPOINT_MS,
  FileReceiver,
  RECEIVER_TRANSITIONS,
  type ReceiverCounters,
  type ReceiverEvent,
  type ReceiverPhase,
  WholeFileMismatch,
} from "./file/receiver.ts";
export { MAX_CONNECTION_HELD, StreamBudget } from "./file/stream_budget.ts";
export { type LinkPiece, LinkSplitter } from "./file/link_splitter.ts";
export {
  DATA_OFFSET,
  FileSender,
  type SenderCounters,
  type SenderEvent,
  type SenderPhase,
} from "./file/sender.ts";
export {
  PROOF_BURST,
  PROOF_EVERY_MS,
  ProofLimiter,
  proofOf,
  SALT_BYTES,
  sameProof,
} from "./file/proof.ts";
export { type ChunkOutcome, PAGE_CHUNKS, TransferState } from "./file/transfer_state.ts";
export {
  DEFAULT_MAX_FOLDERS,
  FolderBudget,
  OFFERED_MODE_MASK,
  storedMode,
} from "./file/disk_policy.ts";
export { formatBytes, formatDuration, formatRate, parseSize } from "./report/format.ts";
export {
  clockText,
  LatencyHistogram,
  type LatencySummary,
  statusLine,
  type StreamReport,
  type StreamReportFields,
  StreamStats,
  summaryText,
} from "./report/stream_report.ts";
export {
  concatBytes,
  encodeFrame,
  type Frame,
  FRAME_MAGIC,
  FRAME_VERSION,
  FrameDecoder,
  type FrameLimits,
  HEADER_LENGTH,
  writeHeader,
} from "./wire/frame.ts";
export {
  type Delivery,
  type Fate,
  Impairment,
  type ImpairmentConfig,
  type ImpairmentCounters,
  parseProbability,
} from "./wire/impairment.ts";
export { isCount, jsonBytes, parseJsonObject } from "./wire/json.ts";
export {
  bytesEqual,
  md5,
  MD5_LENGTH,
  Md5Stream,
  PrefixMd5,
  type PrefixTrial,
  toHex,
} from "./crypto/md5.ts";
export { GF_POLY, gfExp, gfInv, gfMul, ReedSolomon } from "./wire/reed_solomon.ts";
export { printable, UNSAFE_CHARS } from "./wire/text.ts";

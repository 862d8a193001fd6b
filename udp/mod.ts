/**
 * The UDP tools as a library: Audio-UDP's server and client, and the
 * impairment relay. Each runs on the session cores in `lib/core`.
 *
 * @module
 */
export {
  type AudioUdpServer,
  type AudioUdpServerOptions,
  checkMtu,
  startAudioUdpServer,
  type UdpServerStats,
} from "./audio_server.ts";
export { type AudioUdpClientOptions, runAudioUdpClient } from "./audio_client.ts";
export {
  type FragmentFate,
  type RelayCoreOptions,
  startUdpRelay,
  type UdpRelay,
  type UdpRelayOptions,
} from "./relay.ts";

/** Synthetic WebRTC peers (node-datachannel) for driving a mediasoup worker in tests and benchmarks. */
export { Publisher, DEFAULT_SIMULCAST } from './publisher.js';
export type { PublisherOptions, PublisherStats, PublishedStreamStats, VideoLayerSpec } from './publisher.js';
export { Subscriber, subscriberRtpCapabilities } from './subscriber.js';
export type {
  ConsumerDescription,
  SubscriberOptions,
  SubscriberStats,
  ReceivedStreamStats,
} from './subscriber.js';
export type { RemoteTransportParams, RemoteSctpParams } from './sdp.js';
export { DataPeer } from './dataPeer.js';
export type { DataPeerOptions, DataStreamSpec, DataStreamStats } from './dataPeer.js';
export { SdpError } from './sdp.js';
export { PeerLinkError, closeAllPeers } from './link.js';
export type { LinkOptions } from './link.js';
export { MediaScheduler, sharedScheduler } from './scheduler.js';
export { DelayHistogram, percentilesOf } from './histogram.js';
export type { Percentiles } from './histogram.js';

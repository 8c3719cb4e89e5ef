import type { types } from 'mediasoup';
import type { MediaScheduler, Publisher, RemoteTransportParams, Subscriber } from '../peer/index.js';

/**
 * A system under test. The harness drives every target the same way: open a session (one
 * consultation), join its participants, then ask each participant's signalling for transports,
 * producers and consumers, exactly as a mediasoup-client front end would. Adding a target means
 * implementing this interface and registering it in targets/index.ts.
 */
export interface Target {
  readonly name: string;
  start(options: TargetStartOptions): Promise<void>;
  openSession(index: number): Promise<SessionHandles>;
  /** Processes whose CPU and memory count as "the server": never the load generator itself. */
  serverPids(): ServerPids;
  stop(): Promise<void>;
  /**
   * For targets that negotiate SDP themselves (Janus) instead of taking mediasoup parameters: opens
   * one whole consultation (both participants publishing and subscribing to each other) with the
   * harness's peers. When present, the harness uses it instead of openSession().
   */
  openPeerSession?(index: number, context: PeerSessionContext): Promise<PeerSession>;
}

export interface PeerSessionContext {
  scheduler: MediaScheduler;
  joinTimeoutMs: number;
}

/** One participant of a PeerSession; times are performance.now() values. */
export interface PeerParticipant {
  startedAt: number;
  /** The target let it in. */
  joinedAt: number;
  /** The last signalling answer it needed has arrived. */
  signalledAt?: number;
  /** Publishing (media started) when returned. */
  publisher: Publisher;
  /** Subscribed to the other participant when returned. */
  subscriber?: Subscriber;
}

export interface PeerSession {
  participants: PeerParticipant[];
  /** Leaves the target's side (the harness closes the peers). */
  close(): Promise<void>;
}

export interface TargetStartOptions {
  /** mediasoup workers to run (0 = the target's default). */
  workers: number;
  /** Upper bound of concurrent sessions the run may open (to size port ranges and the like). */
  maxSessions: number;
  /** Diagnostics for the operator, one line each; never secrets. */
  log: (line: string) => void;
}

export interface ServerPids {
  server?: number;
  workers: number[];
}

export interface SessionHandles {
  /** Joins participant `index` (0 = practitioner, 1 = patient) and returns its signalling channel. */
  join(index: number): Promise<ParticipantSignalling>;
  close(): Promise<void>;
}

export interface TransportInfo extends RemoteTransportParams {
  id: string;
}

export interface ConsumerInfo {
  id: string;
  producerId: string;
  kind: types.MediaKind;
  rtpParameters: types.RtpParameters;
  /** When true the harness resumes the consumer once its subscriber is connected. */
  paused?: boolean;
}

/** One participant's control channel to the server, mediasoup-client shaped. */
export interface ParticipantSignalling {
  createTransport(direction: 'send' | 'recv'): Promise<TransportInfo>;
  connectTransport(transportId: string, dtlsParameters: types.DtlsParameters): Promise<void>;
  produce(transportId: string, kind: types.MediaKind, rtpParameters: types.RtpParameters): Promise<string>;
  consume(
    transportId: string,
    producerId: string,
    rtpCapabilities: types.RtpCapabilities,
  ): Promise<ConsumerInfo>;
  resumeConsumer(consumerId: string): Promise<void>;
}

export class TargetError extends Error {
  override readonly name = 'TargetError';
}

import type { types } from 'mediasoup';
import {
  DEFAULT_SIMULCAST,
  DelayHistogram,
  Publisher,
  Subscriber,
  subscriberRtpCapabilities,
} from '../peer/index.js';
import type { MediaScheduler } from '../peer/index.js';
import type {
  ParticipantSignalling,
  PeerParticipant,
  SessionHandles,
  Target,
  TransportInfo,
} from './target.js';
import { TargetError } from './target.js';

/** Join phases of one participant, in milliseconds from the start of its join. */
export interface JoinTimes {
  /** The target let the participant in: join answer (and, for a waiting-room patient, consent and admission). */
  joinedMs: number;
  /** Every signalling answer needed to send and receive has arrived. */
  signallingMs: number;
  /** Both of its PeerConnections are connected (ICE + DTLS-SRTP). */
  connectedMs: number;
  /** The first RTP packet from the other participant arrived (any kind). */
  firstRtpMs: number;
  /** The first video packet arrived (absent in an audio-only load). */
  firstVideoMs?: number;
}

/** First-video times of the joins that had video (none in an audio-only load). */
export function firstVideoTimes(joins: readonly JoinTimes[]): number[] {
  return joins.flatMap((j) => (j.firstVideoMs !== undefined ? [j.firstVideoMs] : []));
}

interface Participant extends PeerParticipant {
  signalling: ParticipantSignalling;
  recvTransport: TransportInfo;
  producers: { kind: types.MediaKind; id: string }[];
  subscriber?: Subscriber;
}

export interface SessionRun {
  index: number;
  handles: Pick<SessionHandles, 'close'>;
  participants: PeerParticipant[];
  joins: JoinTimes[];
}

export interface TrafficTotals {
  sentPackets: number;
  sentBytes: number;
  receivedPackets: number;
  receivedBytes: number;
  expectedPackets: number;
  lostPackets: number;
  sendFailures: number;
  pacerDrops: number;
}

export interface ConsultOptions {
  target: Target;
  scheduler: MediaScheduler;
  /** Maximum sessions joining at the same time. */
  joinConcurrency: number;
  /** Per-phase timeout while joining. */
  joinTimeoutMs: number;
  /** Publish audio only (no video m-section): an audio consultation, or the phone fallback's load. */
  audioOnly?: boolean;
  log: (line: string) => void;
}

const PARTICIPANTS = 2;

/**
 * Scenario `consult`: one-to-one consultations. Each participant publishes audio and three-layer
 * VP8 simulcast and consumes the other's audio and video (top layer), as a browser would.
 */
export class ConsultLoad {
  readonly sessions: SessionRun[] = [];
  joinFailures = 0;
  readonly errors: string[] = [];
  private opened = 0;

  constructor(private readonly options: ConsultOptions) {}

  /** Opens sessions until `total` are running (failed ones are counted, not retried). */
  async growTo(total: number, onProgress?: (joined: number, wanted: number) => void): Promise<void> {
    const queue: number[] = [];
    for (let i = this.opened; i < total; i++) queue.push(i);
    this.opened = Math.max(this.opened, total);
    const runners = Array.from({ length: Math.min(this.options.joinConcurrency, queue.length) }, async () => {
      for (let index = queue.shift(); index !== undefined; index = queue.shift()) {
        try {
          this.sessions.push(await this.openSession(index));
        } catch (error) {
          this.joinFailures++;
          this.noteError(error);
        }
        onProgress?.(this.sessions.length, total - this.joinFailures);
      }
    });
    await Promise.all(runners);
  }

  joinTimes(): JoinTimes[] {
    return this.sessions.flatMap((s) => s.joins);
  }

  totals(): TrafficTotals {
    const t: TrafficTotals = {
      sentPackets: 0,
      sentBytes: 0,
      receivedPackets: 0,
      receivedBytes: 0,
      expectedPackets: 0,
      lostPackets: 0,
      sendFailures: 0,
      pacerDrops: 0,
    };
    for (const session of this.sessions) {
      for (const p of session.participants) {
        const sent = p.publisher.stats();
        t.sentPackets += sent.packets;
        t.sentBytes += sent.bytes;
        t.sendFailures += sent.sendFailures;
        t.pacerDrops += sent.pacerDrops;
        const received = p.subscriber?.stats();
        if (!received) continue;
        t.receivedPackets += received.packets;
        t.receivedBytes += received.bytes;
        t.expectedPackets += received.expected;
        t.lostPackets += received.lost;
      }
    }
    return t;
  }

  resetDelays(): void {
    for (const session of this.sessions) for (const p of session.participants) p.subscriber?.resetDelay();
  }

  delays(): DelayHistogram {
    const all = new DelayHistogram();
    for (const session of this.sessions) {
      for (const p of session.participants) if (p.subscriber) all.merge(p.subscriber.stats().delay);
    }
    return all;
  }

  /** Received video streams, and those whose last keyframe was the top layer's (by its width). */
  videoLayers(): { streams: number; topLayer: number } {
    const topWidth = DEFAULT_SIMULCAST[DEFAULT_SIMULCAST.length - 1]!.width;
    let streams = 0;
    let topLayer = 0;
    for (const session of this.sessions) {
      for (const p of session.participants) {
        for (const s of p.subscriber?.stats().streams ?? []) {
          if (s.kind !== 'video') continue;
          streams++;
          if (s.lastKeyframeWidth === topWidth) topLayer++;
        }
      }
    }
    return { streams, topLayer };
  }

  async close(): Promise<void> {
    const sessions = this.sessions.splice(0);
    for (const session of sessions) for (const p of session.participants) p.publisher.stopMedia();
    await Promise.all(sessions.map((session) => this.closeSession(session)));
  }

  async closeSession(session: SessionRun): Promise<void> {
    for (const p of session.participants) {
      p.publisher.stopMedia();
      p.subscriber?.close();
      p.publisher.close();
    }
    try {
      await session.handles.close();
    } catch (error) {
      this.noteError(error);
    }
  }

  noteError(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    // Bounded: a run with thousands of identical failures keeps the first few.
    if (this.errors.length < 20) this.errors.push(message);
  }

  /**
   * Opens one session outside the measured set (join storms): the caller closes it with
   * `closeSession`. Throws when a participant fails to join.
   */
  async openSession(index: number): Promise<SessionRun> {
    const { target, scheduler } = this.options;
    if (target.openPeerSession) return this.openPeerSession(target, index);
    const handles = await target.openSession(index);
    const participants: Participant[] = [];
    try {
      // Both participants join and publish at the same time, then each consumes the other.
      const joined = await Promise.allSettled(
        Array.from({ length: PARTICIPANTS }, (_, p) => this.joinAndPublish(handles, index, p, scheduler)),
      );
      for (const r of joined) if (r.status === 'fulfilled') participants.push(r.value);
      const failed = joined.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      await Promise.all(
        participants.map((p, i) =>
          this.subscribe(p, participants[(i + 1) % PARTICIPANTS]!, index, i, scheduler),
        ),
      );
      const joins = await Promise.all(participants.map((p) => this.waitJoined(p)));
      return { index, handles, participants, joins };
    } catch (error) {
      for (const p of participants) {
        p.subscriber?.close();
        p.publisher.close();
      }
      await handles.close().catch(() => undefined);
      throw error;
    }
  }

  /** A target that negotiates SDP itself runs the joins; the harness waits for media as usual. */
  private async openPeerSession(target: Target, index: number): Promise<SessionRun> {
    const { scheduler, joinTimeoutMs } = this.options;
    if (this.options.audioOnly)
      throw new TargetError(`an audio-only load is not implemented for the ${target.name} target`);
    const session = await target.openPeerSession!(index, { scheduler, joinTimeoutMs });
    try {
      const joins = await Promise.all(session.participants.map((p) => this.waitJoined(p)));
      return { index, handles: session, participants: session.participants, joins };
    } catch (error) {
      for (const p of session.participants) {
        p.subscriber?.close();
        p.publisher.close();
      }
      await session.close().catch(() => undefined);
      throw error;
    }
  }

  private async joinAndPublish(
    handles: SessionHandles,
    session: number,
    index: number,
    scheduler: MediaScheduler,
  ): Promise<Participant> {
    const startedAt = performance.now();
    const signalling = await handles.join(index);
    const joinedAt = performance.now();
    const [sendTransport, recvTransport] = await Promise.all([
      signalling.createTransport('send'),
      signalling.createTransport('recv'),
    ]);
    const publisher = new Publisher({
      name: `s${session}p${index}-pub`,
      scheduler,
      ...(this.options.audioOnly ? { video: false as const } : {}),
    });
    try {
      await signalling.connectTransport(sendTransport.id, publisher.dtlsParameters);
      publisher.connect(sendTransport);
      const producers: Participant['producers'] = [];
      for (const [kind, rtpParameters] of [
        ['audio', publisher.audioRtpParameters],
        ['video', publisher.videoRtpParameters],
      ] as const) {
        if (!rtpParameters) continue;
        producers.push({ kind, id: await signalling.produce(sendTransport.id, kind, rtpParameters) });
      }
      publisher.startMedia();
      return { signalling, startedAt, joinedAt, publisher, recvTransport, producers };
    } catch (error) {
      publisher.close();
      throw error;
    }
  }

  private async subscribe(
    self: Participant,
    other: Participant,
    session: number,
    index: number,
    scheduler: MediaScheduler,
  ): Promise<void> {
    const rtpCapabilities = subscriberRtpCapabilities();
    const consumers = [];
    for (const producer of other.producers) {
      consumers.push(await self.signalling.consume(self.recvTransport.id, producer.id, rtpCapabilities));
    }
    const subscriber = new Subscriber({ name: `s${session}p${index}-sub`, scheduler, consumers });
    self.subscriber = subscriber;
    await self.signalling.connectTransport(self.recvTransport.id, subscriber.dtlsParameters);
    subscriber.connect(self.recvTransport);
    const paused = consumers.filter((c) => c.paused);
    if (paused.length > 0) {
      await subscriber.waitConnected(this.options.joinTimeoutMs);
      await Promise.all(paused.map((c) => self.signalling.resumeConsumer(c.id)));
    }
    self.signalledAt = performance.now();
  }

  private async waitJoined(p: PeerParticipant): Promise<JoinTimes> {
    const timeout = this.options.joinTimeoutMs;
    await Promise.all([p.publisher.waitConnected(timeout), p.subscriber!.waitConnected(timeout)]);
    const connectedAt = Math.max(p.publisher.connectedAt!, p.subscriber!.connectedAt!);
    const firstRtpAt = await p.subscriber!.waitForMedia(undefined, timeout);
    const firstVideoAt = this.options.audioOnly
      ? undefined
      : await p.subscriber!.waitForMedia('video', timeout);
    return {
      joinedMs: p.joinedAt - p.startedAt,
      signallingMs: (p.signalledAt ?? p.joinedAt) - p.startedAt,
      connectedMs: connectedAt - p.startedAt,
      firstRtpMs: firstRtpAt - p.startedAt,
      ...(firstVideoAt !== undefined ? { firstVideoMs: firstVideoAt - p.startedAt } : {}),
    };
  }
}

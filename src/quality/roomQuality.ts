import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { MediaSource } from '../protocol/messages.js';
import type { Room } from '../rooms/room.js';
import type { Participant } from '../rooms/participant.js';
import { isThirdParty, permits } from '../protocol/permissions.js';
import {
  KeyframeLimiter,
  QualityTracker,
  ReceiverPolicy,
  UplinkPolicy,
  buildLadder,
  examinationRung,
  networkScore,
  renderCapLayer,
  type LayerRung,
  type MeasuredStream,
  type MediaMode,
  type NetworkMeasures,
  type ReceiverDecision,
  type VideoConsumerView,
} from './policy.js';

export type QualityIncident = 'network-poor';

export interface QualityControlDeps {
  log: Logger;
  metrics: Metrics;
  /** A participant's network stayed poor: the consultation journal records a technical incident. */
  onIncident?: (roomId: string, participantId: string, kind: QualityIncident) => void;
}

export interface RoomQualityEvents {
  incident: [roomId: string, participantId: string, kind: QualityIncident];
  /** A receiver's media mode changed (also notified to it as `mediaModeChanged`). */
  modeChanged: [participantId: string, mode: MediaMode];
}

/** mediasoup priorities (1..255): the practitioner's and the patient's videos get bitrate first. */
/** The worker's own bandwidth sharing follows the same order: examination video, main, others. */
const EXAMINATION_PRIORITY = 255;
const MAIN_PRIORITY = 200;
const OTHER_PRIORITY = 1;
/** A bandwidth estimate older than this many sampling intervals is ignored. */
const STALE_ESTIMATE_INTERVALS = 10;
/** An unchanged qualityUpdate is still pushed after this many report intervals (a heartbeat). */
const REPORT_HEARTBEAT_INTERVALS = 5;

interface ParticipantState {
  receiver: ReceiverPolicy;
  uplink: UplinkPolicy;
  tracker: QualityTracker;
  /** Video consumers this controller paused (the client's own pauses are left alone). */
  pausedByQuality: Set<string>;
  measures: NetworkMeasures;
  /** Loss on what the participant sends, for the publish advice. */
  uplinkLoss: number | null;
  lastAdvice: number | undefined;
  /** The sender is advised to send fewer layers than it has: its recovery needs fresh stats. */
  uplinkLimited: boolean;
  /** When the stats (RTT, loss, jitter, layer bitrates) were last fetched; 0 = never. */
  statsAt: number;
  /** The last score computed (5 until one is). */
  score: number;
  lastReportAt: number;
  lastReported: QualityUpdate | undefined;
  advisedProducer: string | undefined;
}

interface QualityUpdate {
  participantId: string;
  score: number;
  rttMs: number | null;
  lossRatio: number | null;
  jitterMs: number | null;
  availableKbps: number | null;
  suggestPhoneFallback: boolean;
}

/**
 * Decides for one room's participants every `sampleIntervalMs`: the bandwidth estimate comes from
 * the worker's 'bwe' trace events at no request cost; round-trip time, loss, jitter and layer
 * bitrates need a stats request per transport (a representative consumer on the receiving side,
 * the camera producer on the sending side), made every `statsIntervalMs`, or every round while a
 * participant's link looks weak. Applies the policy and acts on mediasoup: preferred layers,
 * priorities, pause/resume, keyframe requests, and notifications (`qualityUpdate`,
 * `mediaModeChanged`, `publishLayersAdvice`).
 */
export class RoomQuality extends EventEmitter<RoomQualityEvents> {
  private readonly states = new Map<string, ParticipantState>();
  private readonly estimates = new Map<string, { kbps: number; at: number }>();
  private readonly traced = new WeakSet<types.Transport>();
  private readonly hooked = new WeakSet<types.Consumer>();
  /** Measured ladders of simulcast producers, refreshed when their owner is sampled. */
  private readonly ladders = new Map<string, LayerRung[]>();
  private readonly keyframes: KeyframeLimiter;
  private readonly log: Logger;
  private started = false;
  private busy = false;
  private closed = false;

  constructor(
    readonly room: Room,
    private readonly config: Config['quality'],
    private readonly deps: QualityControlDeps,
  ) {
    super();
    this.keyframes = new KeyframeLimiter(config.keyframeMinIntervalMs);
    this.log = deps.log.child({ module: 'quality', room: room.id });
  }

  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    sharedClock(this.config.sampleIntervalMs).add(this);
  }

  /** Stops sampling; idempotent. Also happens by itself once the room is closed. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    sharedClock(this.config.sampleIntervalMs).delete(this);
    for (const state of this.states.values()) this.forgetState(state);
    this.states.clear();
  }

  /** The media mode the policy holds for a participant (for tests and diagnostics). */
  modeOf(participantId: string): MediaMode | undefined {
    return this.states.get(participantId)?.receiver.mode;
  }

  /** One sampling round; rounds never overlap. */
  async tick(): Promise<void> {
    if (this.closed || this.busy) return;
    if (this.room.closed) return this.close();
    this.busy = true;
    const started = performance.now();
    try {
      const participants = this.room.activeParticipants().filter((p) => p.mayExchangeMedia);
      this.prune(participants);
      const sampledAt = Date.now();
      await Promise.all(participants.map((p) => this.measure(p, sampledAt)));
      if (this.closed || this.room.closed) return;
      const now = Date.now();
      for (const participant of participants) this.decide(participant, now);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'quality sampling failed');
    } finally {
      this.busy = false;
      this.deps.metrics.qualitySampleSeconds.observe((performance.now() - started) / 1000);
    }
  }

  // -----------------------------------------------------------------------------------------------
  // Measuring

  private stateOf(participant: Participant): ParticipantState {
    let state = this.states.get(participant.id);
    if (!state) {
      state = {
        receiver: new ReceiverPolicy(this.config),
        uplink: new UplinkPolicy(this.config),
        tracker: new QualityTracker(this.config),
        pausedByQuality: new Set(),
        measures: { rttMs: null, lossRatio: null, jitterMs: null, availableKbps: null },
        uplinkLoss: null,
        lastAdvice: undefined,
        uplinkLimited: false,
        statsAt: 0,
        score: 5,
        lastReportAt: 0,
        lastReported: undefined,
        advisedProducer: undefined,
      };
      this.states.set(participant.id, state);
    }
    return state;
  }

  private prune(participants: Participant[]): void {
    const present = new Set(participants.map((p) => p.id));
    for (const [id, state] of this.states) {
      if (!present.has(id)) {
        this.forgetState(state);
        this.states.delete(id);
      }
    }
    const producers = new Set(participants.flatMap((p) => [...p.producers.keys()]));
    for (const id of this.ladders.keys()) {
      if (!producers.has(id)) {
        this.ladders.delete(id);
        this.keyframes.forget(id);
      }
    }
    const transports = new Set(participants.flatMap((p) => [...p.transports.keys()]));
    for (const id of this.estimates.keys()) if (!transports.has(id)) this.estimates.delete(id);
  }

  private forgetState(state: ParticipantState): void {
    if (state.receiver.mode === 'audio-only') this.deps.metrics.qualityAudioOnlyReceivers.dec();
  }

  private async measure(participant: Participant, now: number): Promise<void> {
    const state = this.stateOf(participant);
    const recv = participant.recvTransport();
    if (recv) this.traceBandwidth(recv);
    const estimate = recv ? this.estimates.get(recv.id) : undefined;
    const fresh = estimate && now - estimate.at <= this.config.sampleIntervalMs * STALE_ESTIMATE_INTERVALS;
    const availableKbps = fresh && estimate ? estimate.kbps : null;
    if (now - state.statsAt < this.config.statsIntervalMs && !this.weak(state)) {
      state.measures = { ...state.measures, availableKbps };
      return;
    }
    state.statsAt = now;
    const [down, up] = await Promise.all([
      this.measureDownlink(participant),
      this.measureUplink(participant),
      this.measureExamination(participant),
    ]);
    state.measures = {
      rttMs: down.rttMs ?? up.rttMs,
      lossRatio: maxOrNull(down.lossRatio, up.lossRatio),
      jitterMs: up.jitterMs,
      availableKbps,
    };
    state.uplinkLoss = up.lossRatio;
  }

  /**
   * A link that is anything but excellent, or a sender kept below its layers, is measured every
   * round so that the publish advice and the score follow it closely; a clean one is not.
   */
  private weak(state: ParticipantState): boolean {
    return state.score < 5 || state.uplinkLimited || (state.uplinkLoss ?? 0) >= this.config.uplinkLossUp;
  }

  /** The worker reports its send-side bandwidth estimate about once a second: no request needed. */
  private traceBandwidth(transport: types.WebRtcTransport): void {
    if (this.traced.has(transport)) return;
    this.traced.add(transport);
    transport.on('trace', (trace) => {
      if (trace.type !== 'bwe' || trace.direction !== 'out') return;
      const bps = (trace.info as { availableBitrate?: unknown }).availableBitrate;
      if (typeof bps === 'number' && Number.isFinite(bps) && bps >= 0)
        this.estimates.set(transport.id, { kbps: bps / 1000, at: Date.now() });
    });
    transport.enableTraceEvent(['bwe']).catch(() => undefined);
  }

  /** Round-trip time and loss from the receiver's reports on one of its streams (audio first). */
  private async measureDownlink(
    participant: Participant,
  ): Promise<{ rttMs: number | null; lossRatio: number | null }> {
    const consumers = [...participant.consumers.values()].filter((c) => !c.closed && !c.paused);
    const probe = consumers.find((c) => c.kind === 'audio') ?? consumers[0];
    if (!probe) return { rttMs: null, lossRatio: null };
    const stats = await probe.getStats().catch(() => []);
    const outbound = stats.find((s) => s.type === 'outbound-rtp');
    if (!outbound) return { rttMs: null, lossRatio: null };
    return {
      rttMs:
        typeof outbound.roundTripTime === 'number' && outbound.roundTripTime > 0
          ? outbound.roundTripTime
          : null,
      lossRatio: typeof outbound.fractionLost === 'number' ? outbound.fractionLost / 256 : null,
    };
  }

  /** Jitter and loss of what the participant sends (camera first), and its measured layer bitrates. */
  private async measureUplink(
    participant: Participant,
  ): Promise<{ rttMs: number | null; lossRatio: number | null; jitterMs: number | null }> {
    const producers = [...participant.producers.values()].filter((p) => !p.closed && !p.paused);
    const probe =
      producers.find((p) => p.kind === 'video' && sourceOf(p) === 'camera') ??
      producers.find((p) => p.kind === 'video') ??
      producers[0];
    if (!probe) return { rttMs: null, lossRatio: null, jitterMs: null };
    const stats = await probe.getStats().catch(() => []);
    const clockRate = probe.rtpParameters.codecs[0]?.clockRate ?? 90000;
    const encodings = probe.rtpParameters.encodings ?? [];
    let jitter: number | null = null;
    let loss: number | null = null;
    let rtt: number | null = null;
    const measured: MeasuredStream[] = [];
    for (const stat of stats) {
      if (stat.type !== 'inbound-rtp') continue;
      if (stat.bitrate > 0) {
        jitter = Math.max(jitter ?? 0, (stat.jitter / clockRate) * 1000);
        loss = Math.max(loss ?? 0, stat.fractionLost / 256);
      }
      if (typeof stat.roundTripTime === 'number' && stat.roundTripTime > 0) rtt = stat.roundTripTime;
      const spatial = encodings.findIndex(
        (e) => (e.rid !== undefined && e.rid === stat.rid) || (e.ssrc !== undefined && e.ssrc === stat.ssrc),
      );
      if (spatial >= 0)
        measured.push({
          spatial,
          bitrate: stat.bitrate,
          bitrateByLayer: readBitrateByLayer(stat.bitrateByLayer),
        });
    }
    if (probe.kind === 'video' && encodings.length > 1)
      this.ladders.set(probe.id, buildLadder(encodings.length, measured, this.config.layerKbps));
    return { rttMs: rtt, lossRatio: loss, jitterMs: jitter };
  }

  /** What each examination video of the participant really costs: its one encoding's measured bitrate. */
  private async measureExamination(participant: Participant): Promise<void> {
    const examinations = [...participant.producers.values()].filter(
      (p) => !p.closed && !p.paused && p.kind === 'video' && sourceOf(p) === 'examination-video',
    );
    await Promise.all(
      examinations.map(async (producer) => {
        const stats = await producer.getStats().catch(() => []);
        let bps = 0;
        for (const stat of stats) if (stat.type === 'inbound-rtp') bps += stat.bitrate;
        // Nothing measured (yet, or any more): costed by its ceiling in viewOf().
        if (bps > 0) this.ladders.set(producer.id, [examinationRung(bps, ceilingOf(producer))]);
        else this.ladders.delete(producer.id);
      }),
    );
  }

  // -----------------------------------------------------------------------------------------------
  // Deciding and acting

  private decide(participant: Participant, now: number): void {
    const state = this.stateOf(participant);
    const videos = [...participant.consumers.values()].filter((c) => c.kind === 'video' && !c.closed);
    for (const consumer of videos) this.hook(participant, consumer);
    const views = videos.map((c) => this.viewOf(participant, c));
    const audioStreams = [...participant.consumers.values()].filter(
      (c) => c.kind === 'audio' && !c.closed,
    ).length;
    const wasAudioOnly = state.receiver.mode === 'audio-only';
    const decision = state.receiver.update({
      at: now,
      availableKbps: state.measures.availableKbps,
      audioStreams,
      video: views,
    });
    this.apply(participant, state, videos, decision, now);
    const isAudioOnly = state.receiver.mode === 'audio-only';
    if (isAudioOnly !== wasAudioOnly) this.deps.metrics.qualityAudioOnlyReceivers.inc(isAudioOnly ? 1 : -1);
    if (state.receiver.mode === 'audio-only') {
      // New consumers, or ones the client resumed, stay paused while only audio fits.
      for (const consumer of videos)
        if (sourceOf(consumer) !== 'examination-video') this.pauseForQuality(state, consumer);
    }
    this.adviseSender(participant, state, now);
    this.report(participant, state, views, audioStreams, now);
  }

  private viewOf(receiver: Participant, consumer: types.Consumer): VideoConsumerView {
    const owner = this.room.participants.get(ownerOf(consumer));
    const main =
      owner !== undefined &&
      !isThirdParty(owner.role) &&
      (sourceOf(consumer) === 'camera' || sourceOf(consumer) === 'screen');
    const render = receiver.renderSizes.get(consumer.id);
    const examination = sourceOf(consumer) === 'examination-video';
    const producer = owner?.producers.get(consumer.producerId);
    const ladder =
      this.ladders.get(consumer.producerId) ??
      (examination
        ? [examinationRung(undefined, producer ? ceilingOf(producer) : undefined)]
        : buildLadder(consumer.type === 'simple' ? 1 : spatialLayersOf(consumer), [], this.config.layerKbps));
    const costGuessed = examination && !this.ladders.has(consumer.producerId);
    return {
      id: consumer.id,
      producerId: consumer.producerId,
      main,
      examination,
      costGuessed,
      render,
      ladder,
    };
  }

  /** First sight of a video consumer: its priority, and watchers for client resumes and layer changes. */
  private hook(receiver: Participant, consumer: types.Consumer): void {
    if (this.hooked.has(consumer)) return;
    this.hooked.add(consumer);
    const owner = this.room.participants.get(ownerOf(consumer));
    const main = owner !== undefined && !isThirdParty(owner.role);
    const priority =
      sourceOf(consumer) === 'examination-video'
        ? EXAMINATION_PRIORITY
        : main
          ? MAIN_PRIORITY
          : OTHER_PRIORITY;
    consumer.setPriority(priority).catch(() => undefined);
    consumer.observer.on('resume', () => {
      const state = this.states.get(receiver.id);
      if (this.closed || !state) return;
      // Resumed by the client while this controller holds it paused: paused again.
      const examination = sourceOf(consumer) === 'examination-video';
      if (examination ? state.receiver.pausedExamination(consumer.id) : state.receiver.mode === 'audio-only')
        this.pauseForQuality(state, consumer);
    });
    consumer.observer.on('layerschange', (layers) => {
      this.deps.metrics.layerForwardedChanges.inc({ spatial: layers ? String(layers.spatialLayer) : 'none' });
    });
  }

  private pauseForQuality(state: ParticipantState, consumer: types.Consumer): void {
    if (consumer.closed || consumer.paused) return;
    state.pausedByQuality.add(consumer.id);
    consumer.pause().catch(() => undefined);
  }

  private apply(
    participant: Participant,
    state: ParticipantState,
    videos: types.Consumer[],
    decision: ReceiverDecision,
    now: number,
  ): void {
    const byId = new Map(videos.map((c) => [c.id, c]));
    for (const id of decision.pause) {
      const consumer = byId.get(id);
      if (consumer) this.pauseForQuality(state, consumer);
    }
    for (const id of decision.resume) {
      const consumer = byId.get(id);
      if (!consumer || !state.pausedByQuality.delete(id)) continue;
      consumer.resume().catch(() => undefined);
      this.requestKeyFrame(consumer, now);
    }
    for (const id of state.pausedByQuality) if (!byId.has(id)) state.pausedByQuality.delete(id);
    for (const change of decision.layers) {
      const consumer = byId.get(change.consumerId);
      if (!consumer || consumer.type === 'simple') continue;
      // Never above what the client itself asked for (setConsumerPreferredLayers).
      const cap = participant.layerCaps.get(consumer.id);
      const spatialLayer = cap ? Math.min(change.rung.spatial, cap.spatialLayer) : change.rung.spatial;
      const temporal =
        cap?.temporalLayer !== undefined && spatialLayer === cap.spatialLayer
          ? Math.min(change.rung.temporal ?? cap.temporalLayer, cap.temporalLayer)
          : change.rung.temporal;
      consumer
        .setPreferredLayers({ spatialLayer, ...(temporal !== undefined ? { temporalLayer: temporal } : {}) })
        .catch(() => undefined);
      if (change.cause !== 'initial')
        this.deps.metrics.layerChanges.inc({ direction: change.direction, cause: change.cause });
      if (change.direction === 'up' && change.cause !== 'initial') this.requestKeyFrame(consumer, now);
    }
    if (decision.mode) {
      const { mode, reason } = decision.mode;
      this.deps.metrics.qualityModeChanges.inc({ mode, reason });
      this.log.info(
        {
          participant: participant.id,
          mode,
          reason,
          availableKbps: roundOrNull(state.measures.availableKbps),
        },
        'media mode changed',
      );
      participant.link?.notify('mediaModeChanged', { mode, reason });
      this.emit('modeChanged', participant.id, mode);
    }
  }

  private requestKeyFrame(consumer: types.Consumer, now: number): void {
    if (!this.keyframes.allow(consumer.producerId, now)) {
      this.deps.metrics.layerKeyframeRequests.inc({ outcome: 'suppressed' });
      return;
    }
    this.deps.metrics.layerKeyframeRequests.inc({ outcome: 'sent' });
    consumer.requestKeyFrame().catch(() => undefined);
  }

  /** A weak uplink: ask the sender to send fewer simulcast layers (and more once it recovers). */
  private adviseSender(participant: Participant, state: ParticipantState, now: number): void {
    const camera = [...participant.producers.values()].find(
      (p) => !p.closed && p.kind === 'video' && (p.rtpParameters.encodings?.length ?? 0) > 1,
    );
    if (!camera) return;
    if (state.advisedProducer !== camera.id) {
      state.advisedProducer = camera.id;
      state.uplink = new UplinkPolicy(this.config);
    }
    const advice = state.uplink.update({
      at: now,
      lossRatio: state.uplinkLoss,
      jitterMs: state.measures.jitterMs,
      spatialLayers: camera.rtpParameters.encodings?.length ?? 1,
    });
    if (advice === undefined) return;
    const direction = advice < (state.lastAdvice ?? Number.POSITIVE_INFINITY) ? 'down' : 'up';
    state.lastAdvice = advice;
    state.uplinkLimited = advice < (camera.rtpParameters.encodings?.length ?? 1) - 1;
    this.deps.metrics.qualityPublishAdvice.inc({ direction });
    this.log.info({ participant: participant.id, maxSpatialLayer: advice }, 'publish layers advice');
    participant.link?.notify('publishLayersAdvice', { producerId: camera.id, maxSpatialLayer: advice });
  }

  /** Scores the participant's network; pushes it to itself and to the practitioners. */
  private report(
    participant: Participant,
    state: ParticipantState,
    views: VideoConsumerView[],
    audioStreams: number,
    now: number,
  ): void {
    const m = state.measures;
    if (m.availableKbps === null && m.rttMs === null && m.lossRatio === null && m.jitterMs === null) return;
    let lowest = 0;
    let wanted = 0;
    for (const view of views) {
      const spatialLayers = 1 + Math.max(0, ...view.ladder.map((r) => r.spatial));
      const cap = renderCapLayer(view.render, this.config.layerHeights, spatialLayers);
      lowest += view.ladder[0]?.kbps ?? 0;
      wanted += Math.max(0, ...view.ladder.filter((r) => r.spatial <= cap).map((r) => r.kbps));
    }
    const score = networkScore(
      m,
      { audioKbps: audioStreams * this.config.audioKbps, lowestVideoKbps: lowest, wantedKbps: wanted },
      this.config,
    );
    state.score = score;
    const verdict = state.tracker.update(now, score);
    if (verdict.incident) {
      this.deps.metrics.qualityIncidents.inc({ kind: 'network-poor' });
      this.log.warn({ participant: participant.id, score }, 'network quality poor: incident');
      this.deps.onIncident?.(this.room.id, participant.id, 'network-poor');
      this.emit('incident', this.room.id, participant.id, 'network-poor');
    }
    const update: QualityUpdate = {
      participantId: participant.id,
      score,
      rttMs: roundOrNull(m.rttMs),
      lossRatio: m.lossRatio === null ? null : Math.round(m.lossRatio * 1000) / 1000,
      jitterMs: roundOrNull(m.jitterMs),
      availableKbps: roundOrNull(m.availableKbps),
      suggestPhoneFallback: verdict.suggestPhoneFallback,
    };
    const last = state.lastReported;
    const sinceReport = now - state.lastReportAt;
    const urgent = last !== undefined && last.suggestPhoneFallback !== verdict.suggestPhoneFallback;
    // A changed score goes out at the next report interval; the figures alone at the heartbeat.
    const due =
      sinceReport >= this.config.reportIntervalMs &&
      (last === undefined ||
        last.score !== update.score ||
        sinceReport >= this.config.reportIntervalMs * REPORT_HEARTBEAT_INTERVALS);
    if (!due && !urgent) return;
    state.lastReportAt = now;
    state.lastReported = update;
    this.deps.metrics.qualityScores.observe(score);
    participant.link?.notify('qualityUpdate', update);
    for (const other of this.room.participants.values()) {
      if (other !== participant && permits(other.role, other.state, 'monitorQuality'))
        other.link?.notify('qualityUpdate', update);
    }
  }
}

/**
 * Attaches bandwidth adaptation and network quality reporting to a new room (wired to the
 * registry's `roomCreated`). Returns undefined when `quality.enabled` is false.
 */
export function attachQualityControl(
  room: Room,
  config: Config['quality'],
  deps: QualityControlDeps,
): RoomQuality | undefined {
  if (!config.enabled) return undefined;
  const control = new RoomQuality(room, config, deps);
  control.start();
  return control;
}

function ownerOf(consumer: types.Consumer): string {
  return (consumer.appData as { participantId?: string }).participantId ?? '';
}

function sourceOf(entity: types.Consumer | types.Producer): MediaSource | undefined {
  return (entity.appData as { source?: MediaSource }).source;
}

/** The bitrate ceiling (bit/s) the sender put on a producer's first encoding, if any. */
function ceilingOf(producer: types.Producer): number | undefined {
  return producer.rtpParameters.encodings?.[0]?.maxBitrate;
}

/** Spatial layers a simulcast consumer offers, from its scalability mode (e.g. 'S3T3'). */
function spatialLayersOf(consumer: types.Consumer): number {
  const mode = consumer.rtpParameters.encodings?.[0]?.scalabilityMode ?? '';
  const match = /^[LS](\d+)T\d+/.exec(mode);
  return match ? Math.min(4, Math.max(1, Number(match[1]))) : 1;
}

function readBitrateByLayer(value: unknown): Record<string, number> | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const out: Record<string, number> = {};
  for (const [key, bps] of Object.entries(value as Record<string, unknown>)) {
    if (typeof bps === 'number' && Number.isFinite(bps) && /^\d\.\d$/.test(key)) out[key] = bps;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function maxOrNull(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

function roundOrNull(value: number | null): number | null {
  return value === null ? null : Math.round(value);
}

/**
 * One timer per sampling interval for every room of the process: a round for all rooms in one
 * wake-up, rather than a timer (and a wake-up) per room.
 */
class SamplingClock {
  private readonly members = new Set<RoomQuality>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly intervalMs: number) {}

  add(member: RoomQuality): void {
    this.members.add(member);
    if (!this.timer) {
      this.timer = setInterval(() => {
        for (const room of this.members) void room.tick();
      }, this.intervalMs);
      this.timer.unref();
    }
  }

  delete(member: RoomQuality): void {
    this.members.delete(member);
    if (this.members.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

const clocks = new Map<number, SamplingClock>();

function sharedClock(intervalMs: number): SamplingClock {
  let clock = clocks.get(intervalMs);
  if (!clock) {
    clock = new SamplingClock(intervalMs);
    clocks.set(intervalMs, clock);
  }
  return clock;
}

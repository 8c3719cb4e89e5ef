import type { Config } from '../config/schema.js';

/**
 * The bandwidth-adaptation policy: pure functions and small state machines over time-stamped
 * samples. Nothing here touches mediasoup, timers or sockets, so recorded traces replay exactly
 * (tests/quality). The controller (roomQuality.ts) feeds samples and carries out the decisions.
 */
export type QualityThresholds = Config['quality'];

export type MediaMode = 'full' | 'reduced' | 'audio-only';
export type ModeReason = 'bandwidth' | 'recovered' | 'render-size' | 'priority';

/** One step of a video ladder: a spatial layer at a temporal layer, and what it costs. */
export interface LayerRung {
  spatial: number;
  /** Undefined when the temporal structure is unknown: the consumer then takes the highest. */
  temporal: number | undefined;
  kbps: number;
}

/** A simulcast stream's measured bitrates, as mediasoup's producer stats give them. */
export interface MeasuredStream {
  spatial: number;
  /** bits/s by "0.t" (cumulative up to temporal layer t), or undefined without temporal layers. */
  bitrateByLayer: Record<string, number> | undefined;
  bitrate: number;
}

/**
 * The ladder of a simulcast producer, cheapest first. Measured bitrates win; a layer not
 * measured yet costs its nominal bitrate. Costs never decrease along the ladder.
 */
export function buildLadder(
  spatialLayers: number,
  measured: readonly MeasuredStream[],
  nominalKbps: readonly number[],
): LayerRung[] {
  const rungs: LayerRung[] = [];
  for (let spatial = 0; spatial < Math.max(1, spatialLayers); spatial++) {
    const nominal = nominalKbps[Math.min(spatial, nominalKbps.length - 1)] ?? 0;
    const stream = measured.find((m) => m.spatial === spatial);
    const byLayer = stream?.bitrateByLayer;
    const temporal = byLayer
      ? Object.keys(byLayer)
          .map((key) => Number(key.split('.')[1]))
          .filter((t) => Number.isInteger(t) && t >= 0 && t < 8)
          .sort((a, b) => a - b)
      : [];
    if (stream && stream.bitrate > 0 && temporal.length > 1) {
      for (const t of temporal) {
        const bps = byLayer?.[`0.${t}`] ?? 0;
        if (bps > 0) rungs.push({ spatial, temporal: t, kbps: bps / 1000 });
      }
    } else {
      const kbps = stream && stream.bitrate > 0 ? stream.bitrate / 1000 : nominal;
      rungs.push({ spatial, temporal: undefined, kbps });
    }
  }
  for (let i = 1; i < rungs.length; i++) {
    const rung = rungs[i]!;
    rung.kbps = Math.max(rung.kbps, rungs[i - 1]!.kbps);
  }
  return rungs;
}

/** The examination video's bitrate ceiling when its producer names none (docs/devices.md). */
export const EXAMINATION_VIDEO_CEILING_KBPS = 4000;

/**
 * The examination video's one rung: its single full-resolution encoding, costing what the worker
 * measures it at, or its ceiling until measured (a lower guess would hand the camera bandwidth the
 * examination video then takes back). Never the camera ladder's lowest layer: it has no lower layer.
 */
export function examinationRung(measuredBps: number | undefined, ceilingBps: number | undefined): LayerRung {
  const kbps =
    measuredBps !== undefined && measuredBps > 0
      ? measuredBps / 1000
      : ceilingBps !== undefined && ceilingBps > 0
        ? ceilingBps / 1000
        : EXAMINATION_VIDEO_CEILING_KBPS;
  return { spatial: 0, temporal: undefined, kbps };
}

/**
 * The highest spatial layer worth sending to a tile of this size: the smallest layer whose
 * height covers the tile (a 160 px thumbnail gets the lowest one). Undefined size: no cap.
 */
export function renderCapLayer(
  render: { width: number; height: number } | undefined,
  layerHeights: readonly number[],
  spatialLayers: number,
): number {
  const top = Math.max(0, spatialLayers - 1);
  if (!render) return top;
  // A 16:9 picture fills the tile's width or its height, whichever binds first.
  const needed = Math.max(render.height, (render.width * 9) / 16);
  // A layer slightly smaller than the tile still looks sharp once scaled.
  const slack = 0.85;
  for (let spatial = 0; spatial < top; spatial++) {
    const height = layerHeights[Math.min(spatial, layerHeights.length - 1)] ?? 0;
    if (height >= needed * slack) return spatial;
  }
  return top;
}

export interface VideoConsumerView {
  id: string;
  producerId: string;
  /** The practitioner's or the patient's camera or screen: served before a third party's. */
  main: boolean;
  /**
   * An examination camera (docs/devices.md): served first and at its best rung before any other
   * video gets even its lowest, so that the camera layers drop before it.
   */
  examination?: boolean;
  /**
   * An examination video costed by its ceiling, not measured yet: counted at that cost, never
   * paused on that guess (while a new link's estimate ramps up it would be paused at every join).
   */
  costGuessed?: boolean;
  render: { width: number; height: number } | undefined;
  ladder: readonly LayerRung[];
}

/** What a receiver looks like at one instant. */
export interface ReceiverSample {
  at: number;
  /** The SFU's estimate of what it can send to this receiver (kbit/s); null while unknown. */
  availableKbps: number | null;
  audioStreams: number;
  video: readonly VideoConsumerView[];
}

export interface LayerChange {
  consumerId: string;
  rung: LayerRung;
  direction: 'up' | 'down';
  cause: 'bandwidth' | 'render-size' | 'initial';
}

export interface ReceiverDecision {
  layers: LayerChange[];
  /** Video consumers to pause (entering audio only) or resume (leaving it). */
  pause: string[];
  resume: string[];
  mode: { mode: MediaMode; reason: ModeReason } | undefined;
}

interface ConsumerState {
  rung: number;
  downSince: number | undefined;
  upSince: number | undefined;
}

/**
 * Rung index each consumer can have within `budgetKbps` (each rung costing kbps x factor); -1: none.
 * An examination video in `flowing` that fits no rung still takes its cost: it has no lower layer
 * and keeps flowing until the policy pauses it.
 */
export function allocate(
  consumers: readonly VideoConsumerView[],
  caps: ReadonlyMap<string, number>,
  budgetKbps: number,
  factor: number,
  flowing: ReadonlySet<string> = new Set(),
): Map<string, number> {
  const result = new Map<string, number>();
  let left = budgetKbps;
  // Examination video first, as high as the budget and its cap allow.
  for (const consumer of consumers.filter((c) => c.examination)) {
    const cap = caps.get(consumer.id) ?? consumer.ladder.length - 1;
    let best = -1;
    for (let i = 0; i <= cap && i < consumer.ladder.length; i++)
      if (consumer.ladder[i]!.kbps * factor <= left) best = i;
    result.set(consumer.id, best);
    if (best >= 0) left -= consumer.ladder[best]!.kbps * factor;
    else if (flowing.has(consumer.id)) left -= (consumer.ladder[0]?.kbps ?? 0) * factor;
  }
  const order = prioritised(consumers.filter((c) => !c.examination));
  // Then everyone's lowest rung, main videos first; then upgrades, main videos first.
  for (const consumer of order) {
    const lowest = consumer.ladder[0];
    if (lowest && lowest.kbps * factor <= left) {
      result.set(consumer.id, 0);
      left -= lowest.kbps * factor;
    } else result.set(consumer.id, -1);
  }
  for (const consumer of order) {
    const current = result.get(consumer.id) ?? -1;
    if (current < 0) continue;
    const cap = caps.get(consumer.id) ?? consumer.ladder.length - 1;
    const spent = consumer.ladder[current]!.kbps * factor;
    let best = current;
    for (let i = current + 1; i <= cap && i < consumer.ladder.length; i++) {
      if (consumer.ladder[i]!.kbps * factor - spent <= left) best = i;
    }
    left -= consumer.ladder[best]!.kbps * factor - spent;
    result.set(consumer.id, best);
  }
  return result;
}

function prioritised(consumers: readonly VideoConsumerView[]): VideoConsumerView[] {
  return [...consumers].sort((a, b) => Number(b.main) - Number(a.main) || (a.id < b.id ? -1 : 1));
}

/** The highest rung whose spatial layer the render size allows. */
function capRung(consumer: VideoConsumerView, thresholds: QualityThresholds): number {
  const spatialLayers = 1 + Math.max(0, ...consumer.ladder.map((r) => r.spatial));
  const capLayer = renderCapLayer(consumer.render, thresholds.layerHeights, spatialLayers);
  let cap = 0;
  consumer.ladder.forEach((rung, i) => {
    if (rung.spatial <= capLayer) cap = i;
  });
  return cap;
}

/**
 * One receiver's layers and media mode, with hysteresis: going down needs the condition for
 * `downDwellMs`, going up needs `upHeadroom` over the cost for `upDwellMs`, and video comes back
 * from audio only after `audioOnlyUpDwellMs`.
 */
export class ReceiverPolicy {
  private modeNow: MediaMode = 'full';
  private reasonNow: ModeReason = 'recovered';
  private readonly consumers = new Map<string, ConsumerState>();
  private audioOnlySince: number | undefined;
  private videoBackSince: number | undefined;
  /** When video last came back from audio only, and the current back-off of the up dwell. */
  private videoBackAt: number | undefined;
  private backoff = 1;
  /** Examination videos paused because they do not fit beside the audio (they have no lower layer). */
  private readonly examinationPaused = new Set<string>();
  /** Since when an examination video has stopped (or started again) fitting. */
  private readonly examinationSince = new Map<string, number>();

  constructor(private readonly thresholds: QualityThresholds) {}

  get mode(): MediaMode {
    return this.modeNow;
  }

  /**
   * True for an examination video this policy paused: it has no lower layer, so it is paused on
   * its own when it does not fit beside the audio, whatever the mode. Audio-only mode (the camera's
   * and the screen's) never pauses it.
   */
  pausedExamination(consumerId: string): boolean {
    return this.examinationPaused.has(consumerId);
  }

  /** The rung index currently chosen for a consumer. */
  rungOf(consumerId: string): number | undefined {
    return this.consumers.get(consumerId)?.rung;
  }

  update(sample: ReceiverSample): ReceiverDecision {
    const t = this.thresholds;
    const decision: ReceiverDecision = { layers: [], pause: [], resume: [], mode: undefined };
    const present = new Set(sample.video.map((v) => v.id));
    for (const id of this.consumers.keys()) if (!present.has(id)) this.consumers.delete(id);
    for (const id of this.examinationPaused) if (!present.has(id)) this.examinationPaused.delete(id);
    for (const id of this.examinationSince.keys()) if (!present.has(id)) this.examinationSince.delete(id);

    const caps = new Map(sample.video.map((v) => [v.id, capRung(v, t)]));
    const budget =
      sample.availableKbps === null
        ? Number.POSITIVE_INFINITY
        : sample.availableKbps - sample.audioStreams * t.audioKbps;
    const flowing = new Set(
      sample.video.filter((v) => v.examination && !this.examinationPaused.has(v.id)).map((v) => v.id),
    );
    const hold = allocate(sample.video, caps, budget, 1, flowing);
    const up = allocate(sample.video, caps, budget, t.upHeadroom, flowing);
    this.updateExaminations(sample, hold, decision);
    // Audio-only mode is the camera's and the screen's: an examination video pauses on its own.
    const first = prioritised(sample.video.filter((v) => !v.examination))[0];

    if (first) {
      const previous = this.modeNow;
      if (previous !== 'audio-only') {
        // The most important video cannot even get its lowest layer: audio alone must get through.
        if ((hold.get(first.id) ?? -1) < 0) {
          this.audioOnlySince ??= sample.at;
          if (sample.at - this.audioOnlySince >= t.downDwellMs) {
            this.enterAudioOnly(sample, decision);
            return decision;
          }
        } else this.audioOnlySince = undefined;
      } else {
        if ((up.get(first.id) ?? -1) >= 0) {
          this.videoBackSince ??= sample.at;
          if (sample.at - this.videoBackSince < t.audioOnlyUpDwellMs * this.backoff) return decision;
          this.leaveAudioOnly(sample, decision);
        } else {
          this.videoBackSince = undefined;
          // Consumers created meanwhile must stay paused too.
          for (const v of sample.video) {
            if (!this.consumers.has(v.id)) this.consumers.set(v.id, newState(0));
          }
          return decision;
        }
      }
    }

    for (const consumer of sample.video) {
      const cap = caps.get(consumer.id) ?? 0;
      const held = Math.max(0, Math.min(hold.get(consumer.id) ?? 0, cap));
      const wanted = Math.max(0, Math.min(up.get(consumer.id) ?? 0, cap));
      const state = this.consumers.get(consumer.id);
      if (!state) {
        // A new consumer starts where the bandwidth says it can be, without waiting.
        this.consumers.set(consumer.id, newState(held));
        decision.layers.push(change(consumer, held, 'up', 'initial'));
        continue;
      }
      if (state.rung > cap) {
        // The tile shrank: no reason to wait.
        this.setRung(consumer, state, cap, 'down', 'render-size', decision);
        continue;
      }
      if (held < state.rung) {
        state.upSince = undefined;
        state.downSince ??= sample.at;
        if (sample.at - state.downSince >= t.downDwellMs)
          this.setRung(consumer, state, held, 'down', 'bandwidth', decision);
      } else if (wanted > state.rung) {
        state.downSince = undefined;
        state.upSince ??= sample.at;
        if (sample.at - state.upSince >= t.upDwellMs)
          this.setRung(consumer, state, wanted, 'up', 'bandwidth', decision);
      } else {
        state.downSince = undefined;
        state.upSince = undefined;
      }
    }
    this.updateMode(sample, caps, decision);
    return decision;
  }

  private enterAudioOnly(sample: ReceiverSample, decision: ReceiverDecision): void {
    // Video that came back and failed again soon: wait longer next time (up to 8x), so a link
    // that cannot really carry video does not flap between modes.
    const window = this.thresholds.audioOnlyUpDwellMs * 4 * this.backoff;
    if (this.videoBackAt !== undefined && sample.at - this.videoBackAt < window)
      this.backoff = Math.min(8, this.backoff * 2);
    else this.backoff = 1;
    this.modeNow = 'audio-only';
    this.reasonNow = 'bandwidth';
    this.audioOnlySince = undefined;
    this.videoBackSince = undefined;
    decision.pause.push(...sample.video.filter((v) => !v.examination).map((v) => v.id));
    for (const v of sample.video) {
      const state = this.consumers.get(v.id) ?? newState(0);
      state.downSince = undefined;
      state.upSince = undefined;
      this.consumers.set(v.id, state);
    }
    decision.mode = { mode: 'audio-only', reason: 'bandwidth' };
  }

  /**
   * An examination video is the last video to go: measured, it pauses after `audioOnlyUpDwellMs`
   * without room for it beside the audio (an estimate behind a bottleneck dips for a few seconds
   * each time the camera steps down), and resumes after `upDwellMs` with room again. Its room
   * comes before the camera's.
   */
  private updateExaminations(
    sample: ReceiverSample,
    hold: ReadonlyMap<string, number>,
    decision: ReceiverDecision,
  ): void {
    for (const v of sample.video) {
      if (!v.examination) continue;
      const paused = this.examinationPaused.has(v.id);
      // Paused, it sends nothing that would raise the estimate: room at cost x 1 brings it back.
      const changing = paused ? (hold.get(v.id) ?? -1) >= 0 : !v.costGuessed && (hold.get(v.id) ?? -1) < 0;
      if (!changing) {
        this.examinationSince.delete(v.id);
        continue;
      }
      const since = this.examinationSince.get(v.id) ?? sample.at;
      this.examinationSince.set(v.id, since);
      if (sample.at - since < (paused ? this.thresholds.upDwellMs : this.thresholds.audioOnlyUpDwellMs))
        continue;
      this.examinationSince.delete(v.id);
      if (paused) {
        this.examinationPaused.delete(v.id);
        decision.resume.push(v.id);
      } else {
        this.examinationPaused.add(v.id);
        decision.pause.push(v.id);
      }
    }
  }

  private leaveAudioOnly(sample: ReceiverSample, decision: ReceiverDecision): void {
    this.videoBackSince = undefined;
    this.videoBackAt = sample.at;
    decision.resume.push(...sample.video.filter((v) => !v.examination).map((v) => v.id));
    for (const consumer of sample.video) {
      // Back at the lowest layer whatever the estimate says: after a pause the estimate comes from
      // short probes, which a shallow bottleneck buffer lets through faster than it drains.
      // Higher layers follow through the usual up dwell.
      const state = newState(0);
      this.consumers.set(consumer.id, state);
      this.setRung(consumer, state, 0, 'up', 'bandwidth', decision, true);
    }
    // Marks the mode as changing; updateMode() says to what.
    this.modeNow = 'reduced';
    decision.mode = { mode: 'reduced', reason: 'recovered' };
  }

  private setRung(
    consumer: VideoConsumerView,
    state: ConsumerState,
    rung: number,
    direction: 'up' | 'down',
    cause: LayerChange['cause'],
    decision: ReceiverDecision,
    always = false,
  ): void {
    state.downSince = undefined;
    state.upSince = undefined;
    if (rung === state.rung && !always) return;
    state.rung = rung;
    decision.layers.push(change(consumer, rung, direction, cause));
  }

  private updateMode(sample: ReceiverSample, caps: Map<string, number>, decision: ReceiverDecision): void {
    const reduced = sample.video.filter((v) => (this.consumers.get(v.id)?.rung ?? 0) < (caps.get(v.id) ?? 0));
    let next: { mode: MediaMode; reason: ModeReason };
    if (reduced.length === 0) next = { mode: 'full', reason: 'recovered' };
    else if (reduced.every((v) => !v.main)) next = { mode: 'reduced', reason: 'priority' };
    else next = { mode: 'reduced', reason: 'bandwidth' };
    const leavingAudioOnly = decision.mode?.reason === 'recovered';
    // 'reduced' for priority and 'reduced' for bandwidth tell the receiver different things.
    if (next.mode !== this.modeNow || next.reason !== this.reasonNow || leavingAudioOnly) {
      this.modeNow = next.mode;
      this.reasonNow = next.reason;
      decision.mode = leavingAudioOnly ? { mode: next.mode, reason: 'recovered' } : next;
    }
  }
}

function newState(rung: number): ConsumerState {
  return { rung, downSince: undefined, upSince: undefined };
}

function change(
  consumer: VideoConsumerView,
  rung: number,
  direction: 'up' | 'down',
  cause: LayerChange['cause'],
): LayerChange {
  const step = consumer.ladder[Math.min(rung, consumer.ladder.length - 1)] ?? {
    spatial: 0,
    temporal: undefined,
    kbps: 0,
  };
  return { consumerId: consumer.id, rung: step, direction, cause };
}

// -------------------------------------------------------------------------------------------------
// Sender side

export interface UplinkSample {
  at: number;
  /** Loss the SFU sees on what this participant sends (0..1); null while unknown. */
  lossRatio: number | null;
  jitterMs: number | null;
  spatialLayers: number;
}

/**
 * Advises a sender with a weak uplink to send fewer simulcast layers: one layer less after
 * `downDwellMs` of loss or jitter, one more after `audioOnlyUpDwellMs` of a clean uplink.
 */
export class UplinkPolicy {
  private advised: number | undefined;
  private weakSince: number | undefined;
  private cleanSince: number | undefined;

  constructor(private readonly thresholds: QualityThresholds) {}

  /** The new advice when it changes: the highest spatial layer to send. */
  update(sample: UplinkSample): number | undefined {
    const t = this.thresholds;
    const top = Math.max(0, sample.spatialLayers - 1);
    const current = Math.min(this.advised ?? top, top);
    const loss = sample.lossRatio ?? 0;
    const jitter = sample.jitterMs ?? 0;
    const weak = loss > t.uplinkLossDown || jitter > t.uplinkJitterDownMs;
    const clean = loss < t.uplinkLossUp && jitter < t.uplinkJitterDownMs / 2;
    if (weak) {
      this.cleanSince = undefined;
      this.weakSince ??= sample.at;
      if (sample.at - this.weakSince >= t.downDwellMs && current > 0) {
        this.weakSince = sample.at;
        this.advised = current - 1;
        return this.advised;
      }
    } else if (clean && this.advised !== undefined && current < top) {
      this.weakSince = undefined;
      this.cleanSince ??= sample.at;
      if (sample.at - this.cleanSince >= t.audioOnlyUpDwellMs) {
        this.cleanSince = sample.at;
        this.advised = current + 1;
        return this.advised;
      }
    } else {
      this.weakSince = undefined;
      this.cleanSince = undefined;
    }
    return undefined;
  }
}

// -------------------------------------------------------------------------------------------------
// Network quality

export interface NetworkMeasures {
  rttMs: number | null;
  lossRatio: number | null;
  jitterMs: number | null;
  availableKbps: number | null;
}

/** What the participant's bandwidth has to carry, to score it. */
export interface BandwidthNeeds {
  audioKbps: number;
  /** The lowest video rung it receives (0 when it receives no video). */
  lowestVideoKbps: number;
  /** Everything its render sizes ask for. */
  wantedKbps: number;
}

function band(value: number | null, limits: readonly number[]): number {
  if (value === null || !Number.isFinite(value)) return 5;
  for (let i = 0; i < 5; i++) if (value < (limits[i] ?? Number.POSITIVE_INFINITY)) return 5 - i;
  return 0;
}

/**
 * Network quality 0 (unusable) to 5 (excellent): the worst of round-trip time, loss, jitter and
 * bandwidth (what the estimate can carry of what this participant wants to receive).
 */
export function networkScore(m: NetworkMeasures, needs: BandwidthNeeds, t: QualityThresholds): number {
  let bandwidth = 5;
  if (m.availableKbps !== null) {
    const kbps = m.availableKbps;
    if (kbps >= needs.wantedKbps + needs.audioKbps) bandwidth = 5;
    else if (kbps >= (needs.wantedKbps + needs.lowestVideoKbps) / 2 + needs.audioKbps) bandwidth = 4;
    else if (kbps >= needs.lowestVideoKbps + needs.audioKbps) bandwidth = needs.lowestVideoKbps > 0 ? 3 : 5;
    else if (kbps >= needs.audioKbps) bandwidth = 2;
    else if (kbps >= needs.audioKbps / 2) bandwidth = 1;
    else bandwidth = 0;
  }
  return Math.min(
    band(m.rttMs, t.scoreRttMs),
    band(m.lossRatio, t.scoreLossRatio),
    band(m.jitterMs, t.scoreJitterMs),
    bandwidth,
  );
}

export interface QualityVerdict {
  suggestPhoneFallback: boolean;
  /** True exactly once per poor period: record a 'network-poor' incident. */
  incident: boolean;
}

/**
 * Turns scores into a sustained verdict: `poorForMs` at or below `poorScore` suggests the phone
 * fallback (and is one incident); `recoveredForMs` above it clears the suggestion.
 */
export class QualityTracker {
  private poorSince: number | undefined;
  private goodSince: number | undefined;
  private suggesting = false;

  constructor(private readonly thresholds: QualityThresholds) {}

  get suggestPhoneFallback(): boolean {
    return this.suggesting;
  }

  update(at: number, score: number): QualityVerdict {
    const t = this.thresholds;
    let incident = false;
    if (score <= t.poorScore) {
      this.goodSince = undefined;
      this.poorSince ??= at;
      if (!this.suggesting && at - this.poorSince >= t.poorForMs) {
        this.suggesting = true;
        incident = true;
      }
    } else {
      this.poorSince = undefined;
      this.goodSince ??= at;
      if (this.suggesting && at - this.goodSince >= t.recoveredForMs) this.suggesting = false;
    }
    return { suggestPhoneFallback: this.suggesting, incident };
  }
}

/** At most one keyframe request per sender stream per `intervalMs`, whatever the number of receivers. */
export class KeyframeLimiter {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly intervalMs: number,
    private readonly maxEntries = 4096,
  ) {}

  allow(producerId: string, at: number): boolean {
    const last = this.last.get(producerId);
    if (last !== undefined && at - last < this.intervalMs) return false;
    this.last.delete(producerId);
    if (this.last.size >= this.maxEntries) {
      const oldest = this.last.keys().next().value;
      if (oldest !== undefined) this.last.delete(oldest);
    }
    this.last.set(producerId, at);
    return true;
  }

  forget(producerId: string): void {
    this.last.delete(producerId);
  }
}

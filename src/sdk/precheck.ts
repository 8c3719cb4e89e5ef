import type { Device, types as ms } from 'mediasoup-client';
import type { MediaSource, NotificationData, PrecheckResult } from '../protocol/messages.js';
import type { EndToEndEncryption } from './e2ee/endToEndEncryption.js';
import { TeleconsultError } from './errors.js';
import type { Locale } from './messages.js';
import { preferredVideoCodec, simulcastEncodings } from './publishing.js';
import type { Session } from './session.js';
import type {
  CameraOptions,
  MediaKind,
  MicrophoneOptions,
  PrecheckOptions,
  PrecheckReport,
  RemoteTrack,
} from './types.js';

const DEFAULT_DURATION_MS = 5_000;
const MIN_DURATION_MS = 1_000;
const MAX_DURATION_MS = 30_000;

/** What the pre-call check needs from the room it runs in. */
export interface PrecheckHost {
  readonly session: Session;
  readonly device: Device;
  readonly locale: Locale;
  readonly e2ee: EndToEndEncryption | undefined;
  selfId(): string;
  /** Whether the participant still waits (the check is for waiting participants only). */
  isWaiting(): boolean;
  /** ICE servers and peer connection settings shared with the room's own transports. */
  transportSettings(): Partial<ms.TransportOptions>;
  /** Signals `connect` and `produce` of a transport to the server, as for the room's transports. */
  wireTransport(transport: ms.Transport): void;
  /** The live track already captured for a publication of `source` (the queued camera...), if any. */
  publishedTrack(source: MediaSource): MediaStreamTrack | undefined;
  capture(kind: MediaKind, options: CameraOptions | MicrophoneOptions): Promise<MediaStreamTrack>;
}

/** A track looped back by the server during the check. */
class LoopbackTrack implements RemoteTrack {
  readonly muted = false;
  readonly layers = undefined;

  constructor(
    readonly consumer: ms.Consumer,
    readonly participantId: string,
    readonly source: MediaSource,
  ) {}

  get id(): string {
    return this.consumer.id;
  }
  get producerId(): string {
    return this.consumer.producerId;
  }
  get kind(): MediaKind {
    return this.consumer.kind;
  }
  get track(): MediaStreamTrack {
    return this.consumer.track;
  }
}

interface ActiveRun {
  onTrack: ((track: RemoteTrack) => void) | undefined;
  tracks: LoopbackTrack[];
  producers: ms.Producer[];
  /** Tracks the check opened itself (and so stops). */
  ownTracks: MediaStreamTrack[];
  aborted: boolean;
  wake: () => void;
}

/**
 * The pre-call check of a waiting participant: its camera and microphone go to the server on a
 * pre-call send transport and come straight back on a pre-call receive transport (the server
 * forwards them to no one else), so the patient sees its camera as the practitioner will, and
 * the SDK measures round trip, loss and upload from WebRTC statistics. The two transports are
 * kept for further runs until admission, when the server closes them.
 */
export class PrecheckLoop {
  private send: ms.Transport | undefined;
  private recv: ms.Transport | undefined;
  private ready: Promise<void> | undefined;
  private run: ActiveRun | undefined;
  /** Bumped when the transports are dropped, so that a creation still in flight is discarded. */
  private generation = 0;
  /** Consumers being set up, so that a repeated announcement (resume) is not consumed twice. */
  private readonly pending = new Set<string>();

  constructor(private readonly host: PrecheckHost) {}

  get running(): boolean {
    return this.run !== undefined;
  }

  async start(options: PrecheckOptions): Promise<PrecheckReport> {
    if (this.run) throw this.error('INVALID_STATE', 'a pre-call check is already running');
    if (!this.host.isWaiting())
      throw this.error('INVALID_STATE', 'the pre-call check is for the waiting room');
    const durationMs = Math.min(
      MAX_DURATION_MS,
      Math.max(
        MIN_DURATION_MS,
        Number.isFinite(options.durationMs) ? Number(options.durationMs) : DEFAULT_DURATION_MS,
      ),
    );
    const run: ActiveRun = {
      onTrack: options.onTrack,
      tracks: [],
      producers: [],
      ownTracks: [],
      aborted: false,
      wake: () => undefined,
    };
    this.run = run;
    const startedAt = Date.now();
    const cameraOptions = options.camera === undefined || options.camera === true ? {} : options.camera;
    const microphoneOptions =
      options.microphone === undefined || options.microphone === true ? {} : options.microphone;
    try {
      try {
        await this.ensureTransports();
        if (cameraOptions) await this.produce(run, 'camera', cameraOptions);
        if (microphoneOptions) await this.produce(run, 'microphone', microphoneOptions);
      } catch (err) {
        // Admission (or leaving) during the set-up ends the check without a result; anything else fails it.
        if (!run.aborted) throw err;
      }
      await this.sleep(run, durationMs);
      const measured = await this.measure(Date.now() - startedAt);
      const result: PrecheckResult = {
        rttMs: measured.rttMs,
        lossRatio: measured.lossRatio,
        uploadKbps: measured.uploadKbps,
        // Judged on what came back through the server, not on what the browser captured.
        camera:
          cameraOptions !== false &&
          (this.host.e2ee ? measured.videoPackets > 0 : measured.framesDecoded > 0),
        microphone: microphoneOptions !== false && measured.audioPackets > 0,
      };
      const completed = !run.aborted;
      let reported = false;
      if (completed && options.report !== false && this.host.isWaiting()) {
        await this.host.session.request('reportPrecheck', result);
        reported = true;
      }
      return {
        ...result,
        completed,
        reported,
        framesDecoded: measured.framesDecoded,
        audioPacketsReceived: measured.audioPackets,
        tracks: [...run.tracks],
      };
    } finally {
      await this.finish(run);
    }
  }

  /** A consumer the server created for this participant: only the pre-call loopback is one. */
  async onConsumerAdded(data: NotificationData<'consumerAdded'>): Promise<void> {
    const run = this.run;
    if (!run || run.aborted || this.pending.has(data.consumerId)) return;
    if (run.tracks.some((t) => t.id === data.consumerId)) return;
    this.pending.add(data.consumerId);
    try {
      await this.ready;
      const transport = this.recv;
      if (!transport || transport.closed || run !== this.run || run.aborted) return;
      const consumer = await transport.consume({
        id: data.consumerId,
        producerId: data.producerId,
        kind: data.kind,
        rtpParameters: data.rtpParameters as unknown as ms.RtpParameters,
        appData: { participantId: data.participantId, source: data.source, precheck: true },
        ...(this.host.e2ee
          ? { onRtpReceiver: this.host.e2ee.receiverHook(data.kind, data.rtpParameters, data.participantId) }
          : {}),
      });
      if (run !== this.run || run.aborted) {
        consumer.close();
        return;
      }
      const track = new LoopbackTrack(consumer, data.participantId, data.source);
      run.tracks.push(track);
      run.onTrack?.(track);
      await this.host.session.request('resumeConsumer', { consumerId: consumer.id });
    } finally {
      this.pending.delete(data.consumerId);
    }
  }

  onConsumerClosed(consumerId: string): void {
    this.run?.tracks.find((t) => t.id === consumerId)?.consumer.close();
  }

  /**
   * After a resume: consumers the server lists that the check does not have are set up; if the
   * server lost the pre-call transports, they are dropped (a later run creates new ones).
   */
  async reconcile(
    transportIds: readonly string[],
    consumers: NotificationData<'consumerAdded'>[],
  ): Promise<void> {
    const alive = new Set(transportIds);
    const lost = [this.send, this.recv].some((t) => t !== undefined && !alive.has(t.id));
    if (lost) return this.abort();
    for (const transport of [this.send, this.recv]) {
      if (!transport || transport.closed) continue;
      const { iceParameters } = await this.host.session.request('restartIce', { transportId: transport.id });
      if (!transport.closed)
        await transport.restartIce({ iceParameters: iceParameters as unknown as ms.IceParameters });
    }
    const selfId = this.host.selfId();
    for (const data of consumers) if (data.participantId === selfId) await this.onConsumerAdded(data);
  }

  /** Ends any run early and forgets the transports (admission, media reset, leaving). */
  abort(): void {
    const run = this.run;
    if (run) {
      run.aborted = true;
      run.wake();
    }
    this.generation++;
    this.send?.close();
    this.recv?.close();
    this.send = undefined;
    this.recv = undefined;
    this.ready = undefined;
  }

  private ensureTransports(): Promise<void> {
    if (!this.ready) {
      const ready = this.createTransports();
      this.ready = ready;
      ready.catch(() => {
        if (this.ready === ready) this.ready = undefined;
      });
    }
    return this.ready;
  }

  private async createTransports(): Promise<void> {
    const { session, device } = this.host;
    const settings = this.host.transportSettings();
    const generation = this.generation;
    const dropped = () => generation !== this.generation;
    // Receive first: the server loops each producer back as soon as both exist.
    const recvParams = await session.request('createTransport', { direction: 'recv', precheck: true });
    if (dropped()) throw this.error('INVALID_STATE', 'pre-call check ended');
    const recv = device.createRecvTransport({ ...transportOptions(recvParams), ...settings });
    this.host.wireTransport(recv);
    this.recv = recv;
    const sendParams = await session.request('createTransport', { direction: 'send', precheck: true });
    if (dropped()) throw this.error('INVALID_STATE', 'pre-call check ended');
    const send = device.createSendTransport({ ...transportOptions(sendParams), ...settings });
    this.host.wireTransport(send);
    this.send = send;
  }

  private async produce(
    run: ActiveRun,
    source: 'camera' | 'microphone',
    options: CameraOptions | MicrophoneOptions,
  ): Promise<void> {
    const kind: MediaKind = source === 'camera' ? 'video' : 'audio';
    let track = options.track ?? this.host.publishedTrack(source);
    if (!track || track.readyState !== 'live') {
      track = await this.host.capture(kind, options);
      run.ownTracks.push(track);
    }
    if (run.aborted || !this.send || this.send.closed) return;
    const camera = options as CameraOptions;
    const codec = kind === 'video' ? preferredVideoCodec(this.host.device) : undefined;
    const encodings =
      kind === 'video'
        ? (camera.encodings ?? (camera.simulcast === false ? undefined : simulcastEncodings()))
        : undefined;
    const producer = await this.send.produce({
      track,
      ...(encodings ? { encodings } : {}),
      ...(codec ? { codec } : {}),
      stopTracks: false, // a queued publication's track must survive the check
      appData: { source },
      ...(this.host.e2ee ? { onRtpSender: this.host.e2ee.senderHook(kind, codec?.mimeType) } : {}),
    });
    run.producers.push(producer);
    if (run.aborted) producer.close();
  }

  private sleep(run: ActiveRun, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      run.wake = () => {
        clearTimeout(timer);
        resolve();
      };
      if (run.aborted) run.wake();
    });
  }

  private async measure(elapsedMs: number): Promise<Measurement> {
    const [sendStats, recvStats] = await Promise.all([
      this.send && !this.send.closed ? this.send.getStats().catch(() => undefined) : undefined,
      this.recv && !this.recv.closed ? this.recv.getStats().catch(() => undefined) : undefined,
    ]);
    return summarise(statsList(sendStats), statsList(recvStats), elapsedMs);
  }

  private async finish(run: ActiveRun): Promise<void> {
    if (this.run === run) this.run = undefined;
    for (const track of run.tracks) track.consumer.close();
    for (const producer of run.producers) {
      if (producer.closed) continue;
      producer.close();
      // The server keeps pre-call transports until admission: close the producers so nothing loops on.
      if (this.host.isWaiting())
        await this.host.session.request('closeProducer', { producerId: producer.id }).catch(() => undefined);
    }
    for (const track of run.ownTracks) track.stop();
  }

  private error(code: TeleconsultError['code'], detail?: string): TeleconsultError {
    return new TeleconsultError(code, this.host.locale, detail);
  }
}

/** One entry of an RTCStatsReport, with the fields the measurement reads. */
interface StatsEntry {
  id?: string;
  type?: string;
  kind?: string;
  state?: string;
  nominated?: boolean;
  selectedCandidatePairId?: string;
  currentRoundTripTime?: number;
  roundTripTime?: number;
  availableOutgoingBitrate?: number;
  packetsLost?: number;
  packetsReceived?: number;
  framesDecoded?: number;
  bytesSent?: number;
}

interface Measurement {
  rttMs: number;
  lossRatio: number;
  uploadKbps: number;
  framesDecoded: number;
  videoPackets: number;
  audioPackets: number;
}

function statsList(report: RTCStatsReport | undefined): StatsEntry[] {
  const list: StatsEntry[] = [];
  report?.forEach((entry: StatsEntry) => list.push(entry));
  return list;
}

/**
 * Round trip from the send connection's selected ICE candidate pair (else the RTCP round trip);
 * loss over the looped-back streams (uplink and downlink together); upload from the sender's
 * bandwidth estimate, else from the bytes actually sent.
 */
export function summarise(send: StatsEntry[], recv: StatsEntry[], elapsedMs: number): Measurement {
  const pair = selectedPair(send) ?? selectedPair(recv);
  const remoteRtt = send.find((s) => s.type === 'remote-inbound-rtp' && typeof s.roundTripTime === 'number');
  const rttSeconds = pair?.currentRoundTripTime ?? remoteRtt?.roundTripTime ?? 0;
  let lost = 0;
  let received = 0;
  let framesDecoded = 0;
  let videoPackets = 0;
  let audioPackets = 0;
  for (const s of recv) {
    if (s.type !== 'inbound-rtp') continue;
    lost += Math.max(0, s.packetsLost ?? 0);
    received += s.packetsReceived ?? 0;
    if (s.kind === 'video') {
      framesDecoded += s.framesDecoded ?? 0;
      videoPackets += s.packetsReceived ?? 0;
    } else if (s.kind === 'audio') audioPackets += s.packetsReceived ?? 0;
  }
  const bytesSent = send
    .filter((s) => s.type === 'outbound-rtp')
    .reduce((sum, s) => sum + (s.bytesSent ?? 0), 0);
  const sentKbps = elapsedMs > 0 ? (bytesSent * 8) / elapsedMs : 0;
  const estimateKbps = (selectedPair(send)?.availableOutgoingBitrate ?? 0) / 1000;
  const clamp = (value: number, max: number) =>
    Math.min(max, Math.max(0, Number.isFinite(value) ? value : 0));
  return {
    rttMs: Math.round(clamp(rttSeconds * 1000, 60_000) * 10) / 10,
    lossRatio: clamp(received + lost > 0 ? lost / (received + lost) : 0, 1),
    uploadKbps: Math.round(clamp(estimateKbps > 0 ? estimateKbps : sentKbps, 1_000_000)),
    framesDecoded,
    videoPackets,
    audioPackets,
  };
}

function selectedPair(stats: StatsEntry[]): StatsEntry | undefined {
  const transport = stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
  const byId = transport && stats.find((s) => s.id === transport.selectedCandidatePairId);
  return byId ?? stats.find((s) => s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded');
}

function transportOptions(params: {
  id: string;
  iceParameters: Record<string, unknown>;
  iceCandidates: Record<string, unknown>[];
  dtlsParameters: Record<string, unknown>;
}): ms.TransportOptions {
  return {
    id: params.id,
    iceParameters: params.iceParameters as unknown as ms.IceParameters,
    iceCandidates: params.iceCandidates as unknown as ms.IceCandidate[],
    dtlsParameters: params.dtlsParameters as unknown as ms.DtlsParameters,
  };
}

import type { Device, types as ms } from 'mediasoup-client';
import type {
  AdmissionState,
  MediaSource,
  NotificationData,
  NotificationName,
  ParticipantInfo,
  WaitingEntry,
} from '../protocol/messages.js';
import type { EndToEndEncryption } from './e2ee/endToEndEncryption.js';
import { TypedEmitter } from './emitter.js';
import { TeleconsultError, fromMediaError, isTeleconsultError } from './errors.js';
import type { Locale } from './messages.js';
import {
  EXAMINATION_VIDEO_PROFILE,
  STETHOSCOPE_PROFILE,
  cameraConstraints,
  examinationVideoConstraints,
  examinationVideoEncodings,
  microphoneConstraints,
  preferredVideoCodec,
  simulcastEncodings,
  stethoscopeConstraints,
  stethoscopeEncodings,
  type DeviceProfile,
} from './publishing.js';
import { VitalSignsReader, VitalSignsSender } from './vitalSigns.js';
import { VITAL_SIGNS_LABEL, VITAL_SIGNS_PROTOCOL } from '../protocol/vitalSignRules.js';
import type { DeviceSource, DeviceType } from '../protocol/devices.js';
import { PrecheckLoop } from './precheck.js';
import { permits, roleMay } from '../protocol/permissions.js';
import type { ConnectionState, JoinResult, ResumeResult, Session } from './session.js';
import type { AnyNotification } from './signallingSocket.js';
import type {
  CameraOptions,
  ConsentPurpose,
  ConsentText,
  DataSender,
  DeviceSourceRequestOptions,
  ExaminationStill,
  ExaminationVideoOptions,
  GiveConsentOptions,
  StethoscopeOptions,
  VitalSignsChannel,
  LocalTrack,
  MediaKind,
  MicrophoneOptions,
  PrecheckOptions,
  PrecheckReport,
  PublishOptions,
  RemoteTrack,
  MediaMode,
  RoomEvents,
  RoomInfo,
  RoomStats,
} from './types.js';

/** Admission states in which the server lets a participant send and receive media. */
const MEDIA_STATES: ReadonlySet<AdmissionState> = new Set(['admitted']);
/** Admission states of a participant in the waiting room. */
const WAITING_STATES: ReadonlySet<AdmissionState> = new Set(['invited', 'waiting', 'consented']);
/** Longest practitioner note kept from a notification (the protocol caps it at 280). */
const MAX_NOTE_LENGTH = 280;
/** Data messages above this size are dropped rather than handed to the application. */
const MAX_DATA_MESSAGE_BYTES = 64 * 1024;
/** At most one ICE restart per transport in this window, so a dead network does not cause a storm. */
const ICE_RESTART_MIN_INTERVAL_MS = 5_000;
/** Longest the publications wait for the subscriptions announced before them (see receiveFirst). */
const RECEIVE_FIRST_MAX_WAIT_MS = 1_000;

export interface RoomSettings {
  locale: Locale;
  iceServers: RTCIceServer[] | undefined;
  iceTransportPolicy: RTCIceTransportPolicy | undefined;
  /** End-to-end encryption, when the participant joined with it (see src/sdk/e2ee). */
  e2ee?: EndToEndEncryption | undefined;
  /** Connect the media transports while waiting (ConnectOptions.connectAhead); off unless set. */
  connectAhead?: boolean;
}

/** A local track and the state of its publication (seen by the application as `LocalTrack`). */
class LocalPublication implements LocalTrack {
  state: LocalTrack['state'] = 'queued';
  muted = false;
  producer: ms.Producer | undefined;

  constructor(
    readonly source: MediaSource,
    readonly kind: MediaKind,
    readonly track: MediaStreamTrack,
    readonly encodings: ms.RtpEncodingParameters[] | undefined,
    readonly codec: ms.RtpCodecCapability | undefined,
    /** The SDK opened this track (camera, microphone) and stops it when done. */
    readonly ownsTrack: boolean,
    /** A connected device: its type (for the server's journal) and its publish profile. */
    readonly device?: { deviceType: DeviceType; profile: DeviceProfile },
  ) {}

  get producerId(): string | undefined {
    return this.producer?.id;
  }
}

/** An open data channel; its producer is replaced when media is rebuilt. */
interface DataChannelEntry {
  readonly label: string;
  readonly protocol: string;
  /** A device's vital-signs channel. */
  readonly deviceType?: DeviceType;
  producer: ms.DataProducer | undefined;
  closed: boolean;
}

/** A received track (seen by the application as `RemoteTrack`). */
class RemoteSubscription implements RemoteTrack {
  muted: boolean;
  layers: RemoteTrack['layers'];
  /** The server acknowledged `resumeConsumer`: RTP flows (a resume re-sends it otherwise). */
  resumed = false;

  constructor(
    readonly consumer: ms.Consumer,
    readonly participantId: string,
    readonly source: MediaSource,
    producerPaused: boolean,
  ) {
    this.muted = producerPaused;
  }

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

/**
 * A joined consultation: participants, admission, publishing and receiving media, surviving
 * network drops (resume + ICE restart) and media worker loss (transports recreated, tracks
 * republished). Obtain one with `connect()`.
 */
export class Room extends TypedEmitter<RoomEvents> {
  readonly info: RoomInfo;
  private selfInfo: ParticipantInfo;
  private readonly others = new Map<string, ParticipantInfo>();
  private readonly local = new Map<MediaSource, LocalPublication>();
  private readonly remote = new Map<string, RemoteSubscription>();
  private readonly dataConsumers = new Map<string, ms.DataConsumer>();
  private readonly dataChannels = new Set<DataChannelEntry>();
  private readonly pendingSubscriptions = new Map<string, Array<(track: RemoteTrack) => void>>();
  private readonly lastIceRestart = new Map<string, number>();
  private sendTransport: ms.Transport | undefined;
  private recvTransport: ms.Transport | undefined;
  /** The warm-up data channel that connected the transports ahead of admission (connectAhead). */
  private warmUp: ms.DataProducer | undefined;
  private mediaReady: Promise<void> | undefined;
  private mediaGeneration = 0;
  private roomClosedEmitted = false;
  private finished = false;
  private mediaModeNow: MediaMode = 'full';
  private waitingEntries: WaitingEntry[] = [];
  private heldNote: string | undefined;
  private readonly consentsGiven = new Set<ConsentPurpose>();
  /**
   * Consumer announcements being set up, so that one listed again on resume is not consumed twice;
   * each promise resolves once its consumer exists here and its resume is requested (or it failed).
   */
  private readonly arriving = new Map<string, Promise<void>>();
  /** Consumers being set up that a resume showed the server no longer has. */
  private readonly vanished = new Set<string>();
  private readonly precheck: PrecheckLoop;

  /**
   * End-to-end encryption of this participant's media, when connected with `e2ee`: the state per
   * participant, safety numbers, the phone downgrade. Undefined otherwise.
   */
  readonly e2ee: EndToEndEncryption | undefined;

  /** @internal Use `connect()`. */
  constructor(
    private readonly session: Session,
    private readonly device: Device,
    join: JoinResult,
    private readonly settings: RoomSettings,
  ) {
    super();
    this.info = join.room;
    this.selfInfo = asSeen(join.self);
    for (const participant of join.participants) this.others.set(participant.id, asSeen(participant));
    session.on('notification', (message) => this.onNotification(message));
    session.on('connectionStateChanged', (state) => this.emit('connectionStateChanged', state));
    session.on('reconnectStarted', (info) => this.emit('reconnectAttempt', info));
    session.on('resumed', (result) => void this.onResumed(result));
    session.on('ended', (reason) => this.onEnded(reason));
    session.on('error', (error) => this.emit('error', error));
    this.e2ee = settings.e2ee;
    this.e2ee?.bind(this, (to, payload) =>
      session.request('e2eeRelay', { to, payload }).then(() => undefined),
    );
    this.precheck = new PrecheckLoop({
      session,
      device,
      locale: settings.locale,
      e2ee: settings.e2ee,
      selfId: () => this.selfInfo.id,
      isWaiting: () => !this.finished && WAITING_STATES.has(this.selfInfo.state),
      transportSettings: () => this.transportSettings(),
      wireTransport: (transport) => this.wireTransport(transport),
      publishedTrack: (source) => this.local.get(source)?.track,
      capture: (kind, options) =>
        kind === 'video'
          ? this.capture({ video: cameraConstraints(options) }, 'video')
          : this.capture({ audio: microphoneConstraints(options) }, 'audio'),
    });
  }

  /** @internal Starts media once the application had a chance to add its listeners. */
  start(): void {
    if (this.mayExchangeMedia) void this.startMedia();
    else void this.connectAhead();
  }

  get id(): string {
    return this.info.id;
  }

  /** This participant, as the server sees it (role, admission state...). */
  get self(): ParticipantInfo {
    return this.selfInfo;
  }

  /** The other participants, by id (waiting ones included: a practitioner admits from here). */
  get participants(): ReadonlyMap<string, ParticipantInfo> {
    return this.others;
  }

  get connectionState(): ConnectionState {
    return this.session.state;
  }

  get admissionState(): AdmissionState {
    return this.selfInfo.state;
  }

  get remoteTracks(): RemoteTrack[] {
    return [...this.remote.values()];
  }

  get localTracks(): LocalTrack[] {
    return [...this.local.values()];
  }

  /**
   * Practitioners: the waiting list as last received (`waitingListChanged` keeps it current; call
   * `getWaitingList()` to fetch it explicitly).
   */
  get waitingList(): readonly WaitingEntry[] {
    return this.waitingEntries;
  }

  /** The practitioner's last message to this waiting participant (`hold`), until admission. */
  get heldMessage(): string | undefined {
    return this.heldNote;
  }

  /** Consents this participant gave during this session (and has not withdrawn). */
  get consents(): ReadonlySet<ConsentPurpose> {
    return this.consentsGiven;
  }

  /** Whether a pre-call check is running. */
  get precheckRunning(): boolean {
    return this.precheck.running;
  }

  /** What the server currently forwards to this participant ('audio-only' on a weak link). */
  get mediaMode(): MediaMode {
    return this.mediaModeNow;
  }

  /** Why the session ended, once `connectionState` is 'disconnected' (undefined after `leave()`). */
  get disconnectReason(): TeleconsultError | undefined {
    return this.session.reason;
  }

  private get mayExchangeMedia(): boolean {
    return MEDIA_STATES.has(this.selfInfo.state);
  }

  // ---------------------------------------------------------------------------------------------
  // Publishing

  /**
   * Opens the camera and publishes it, with three simulcast layers by default. Before admission
   * the track is captured (for a preview) but only sent once the practitioner admits this
   * participant: the returned track is then in state 'queued'.
   */
  async publishCamera(options: CameraOptions = {}): Promise<LocalTrack> {
    this.assertActive();
    const track = options.track ?? (await this.capture({ video: cameraConstraints(options) }, 'video'));
    const encodings = options.encodings ?? (options.simulcast === false ? undefined : simulcastEncodings());
    return this.publish(
      track,
      'camera',
      encodings,
      options.track === undefined,
      preferredVideoCodec(this.device),
    );
  }

  /** Opens the microphone and publishes it (queued until admission, like the camera). */
  async publishMicrophone(options: MicrophoneOptions = {}): Promise<LocalTrack> {
    this.assertActive();
    const track = options.track ?? (await this.capture({ audio: microphoneConstraints(options) }, 'audio'));
    return this.publish(track, 'microphone', undefined, options.track === undefined, undefined);
  }

  /** Publishes a track the application obtained itself (screen sharing, canvas...). */
  publishTrack(
    track: MediaStreamTrack,
    source: MediaSource,
    options: PublishOptions = {},
  ): Promise<LocalTrack> {
    this.assertActive();
    return this.publish(track, source, options.encodings, options.stopOnUnpublish ?? false, undefined);
  }

  /**
   * Device holders (assistant, patient): opens an examination camera (otoscope, dermatoscope) and
   * publishes it as `examination-video`: one full-resolution encoding with a high bitrate ceiling,
   * `contentHint = 'detail'` and a degradation preference that keeps resolution (docs/devices.md).
   * Only the practitioner receives it.
   */
  async publishExaminationVideo(options: ExaminationVideoOptions): Promise<LocalTrack> {
    this.assertActive();
    const track =
      options.track ?? (await this.capture({ video: examinationVideoConstraints(options) }, 'video'));
    const profile = EXAMINATION_VIDEO_PROFILE;
    if (profile.contentHint && 'contentHint' in track) track.contentHint = profile.contentHint;
    return this.publish(
      track,
      'examination-video',
      examinationVideoEncodings(),
      options.track === undefined,
      preferredVideoCodec(this.device),
      { deviceType: options.deviceType ?? 'examination-camera', profile },
    );
  }

  /**
   * Device holders: opens a digital stethoscope (an audio input) with echo cancellation, noise
   * suppression and gain control off, and publishes it as `examination-audio`: Opus full band,
   * 160 kbit/s ceiling, DTX off, in-band FEC on. Only the practitioner receives it.
   */
  async publishStethoscope(options: StethoscopeOptions = {}): Promise<LocalTrack> {
    this.assertActive();
    const track = options.track ?? (await this.capture({ audio: stethoscopeConstraints(options) }, 'audio'));
    const profile = STETHOSCOPE_PROFILE;
    if (profile.contentHint && 'contentHint' in track) track.contentHint = profile.contentHint;
    return this.publish(
      track,
      'examination-audio',
      stethoscopeEncodings(),
      options.track === undefined,
      undefined,
      {
        deviceType: 'stethoscope',
        profile,
      },
    );
  }

  /**
   * Device holders: opens a vital-signs channel for one device (an oximeter, a blood-pressure
   * cuff...). `send()` validates, numbers, rate-limits and, in an E2EE room, encrypts each reading
   * end to end; the practitioner's SDK emits them as `vitalSign` events.
   */
  async publishVitalSigns(options: { deviceType: DeviceType }): Promise<VitalSignsChannel> {
    this.assertActive();
    if (!this.mayExchangeMedia) throw this.error('NOT_ADMITTED');
    const channel: DataChannelEntry = {
      label: VITAL_SIGNS_LABEL,
      protocol: VITAL_SIGNS_PROTOCOL,
      deviceType: options.deviceType,
      producer: undefined,
      closed: false,
    };
    this.dataChannels.add(channel);
    try {
      await this.produceData(channel);
    } catch (err) {
      this.dataChannels.delete(channel);
      throw this.wrap(err);
    }
    const sender = new VitalSignsSender({
      deviceType: options.deviceType,
      cipher: this.e2ee,
      locale: this.settings.locale,
      transmit: (message) => {
        const producer = channel.producer;
        if (channel.closed || !producer || producer.closed || producer.readyState !== 'open') return false;
        producer.send(message);
        return true;
      },
    });
    return {
      deviceType: options.deviceType,
      get open() {
        return !channel.closed && channel.producer?.readyState === 'open';
      },
      send: (reading) => sender.send(reading),
      close: () => {
        channel.closed = true;
        this.dataChannels.delete(channel);
        channel.producer?.close();
      },
    };
  }

  /**
   * Practitioners: asks a device holder to publish a device source ("show the ear"); the holder's
   * SDK emits `deviceSourceRequested`. The request is journalled; the holder grants by publishing.
   */
  async requestDeviceSource(
    participantId: string,
    source: DeviceSource,
    options: DeviceSourceRequestOptions = {},
  ): Promise<void> {
    this.assertActive();
    await this.session
      .request('requestDeviceSource', {
        participantId,
        source,
        ...(options.deviceType ? { deviceType: options.deviceType } : {}),
        ...(options.note ? { note: options.note.slice(0, 140) } : {}),
      })
      .catch((err: unknown) => {
        throw this.wrap(err);
      });
  }

  /**
   * Practitioners: a still of an examination video at full resolution, from its next keyframe. The
   * server sends this receiver the video's top layer and asks the holder's browser for a keyframe;
   * the SDK keeps the first frame decoded afterwards and returns it as a PNG. The image stays in
   * this page (the server forwards the video as always and keeps nothing); the act is journalled.
   */
  async captureExaminationStill(track: RemoteTrack | string): Promise<ExaminationStill> {
    this.assertActive();
    const remote = this.remoteTracks.find(
      (r) => r.source === 'examination-video' && (r === track || r.producerId === track || r.id === track),
    );
    if (!remote) throw this.error('NOT_FOUND', 'no examination video received from this producer');
    const video = document.createElement('video');
    video.muted = true;
    video.playsInline = true;
    video.srcObject = new MediaStream([remote.track]);
    try {
      // Not awaited: a video whose sender paused it never starts playing, and the server's answer
      // (INVALID_STATE) must still come back; nextFrame bounds the wait for the frame.
      void video.play().catch(() => undefined);
      await this.session
        .request('captureExaminationStill', { producerId: remote.producerId })
        .catch((err: unknown) => {
          throw this.wrap(err);
        });
      const { width, height } = await nextFrame(video, STILL_FRAME_TIMEOUT_MS);
      if (width === 0 || height === 0) throw this.error('REQUEST_TIMEOUT', 'no frame decoded');
      const canvas = document.createElement('canvas');
      canvas.width = width;
      canvas.height = height;
      canvas.getContext('2d')?.drawImage(video, 0, 0, width, height);
      const image = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/png'));
      if (!image) throw this.error('MEDIA_DEVICE_ERROR', 'the still could not be encoded');
      return { image, width, height, producerId: remote.producerId, takenAt: Date.now() };
    } finally {
      video.pause();
      video.srcObject = null;
    }
  }

  /** Stops publishing `source` (and stops the track if the SDK opened it). */
  async unpublish(source: MediaSource): Promise<void> {
    const publication = this.local.get(source);
    if (!publication) return;
    this.local.delete(source);
    await this.retire(publication, true);
  }

  /** Pauses sending `source` (others see it muted); works before publication too. */
  async mute(source: MediaSource): Promise<void> {
    await this.setMuted(source, true);
  }

  async unmute(source: MediaSource): Promise<void> {
    await this.setMuted(source, false);
  }

  /**
   * Opens a data channel to the practitioners (e.g. for a connected medical device's readings).
   * The channel is opened again by the SDK after a media reset.
   */
  async publishData(label: string, protocol = ''): Promise<DataSender> {
    this.assertActive();
    if (!this.mayExchangeMedia) throw this.error('NOT_ADMITTED');
    const channel: DataChannelEntry = { label, protocol, producer: undefined, closed: false };
    this.dataChannels.add(channel);
    try {
      await this.produceData(channel);
    } catch (err) {
      this.dataChannels.delete(channel);
      throw this.wrap(err);
    }
    return {
      label,
      send: (data) => {
        const producer = channel.producer;
        if (channel.closed || !producer || producer.closed || producer.readyState !== 'open') return false;
        producer.send(data);
        return true;
      },
      close: () => {
        channel.closed = true;
        this.dataChannels.delete(channel);
        channel.producer?.close();
      },
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Receiving

  /**
   * Receives a producer again after `unsubscribe()` (the server otherwise subscribes every
   * participant to everything it may receive). Resolves with the new track.
   */
  async subscribe(producerId: string): Promise<RemoteTrack> {
    this.assertActive();
    const existing = [...this.remote.values()].find((r) => r.producerId === producerId);
    if (existing) return existing;
    const arrived = new Promise<RemoteTrack>((resolve) => {
      const list = this.pendingSubscriptions.get(producerId) ?? [];
      list.push(resolve);
      this.pendingSubscriptions.set(producerId, list);
    });
    try {
      await this.ensureMedia();
      await this.session.request('consume', { producerId });
    } catch (err) {
      this.pendingSubscriptions.delete(producerId);
      throw this.wrap(err);
    }
    return withTimeout(arrived, 10_000, () => {
      this.pendingSubscriptions.delete(producerId);
      return this.error('REQUEST_TIMEOUT', 'consumerAdded');
    });
  }

  /** Stops receiving a track (saves bandwidth, e.g. a hidden video tile). */
  async unsubscribe(track: RemoteTrack | string): Promise<void> {
    const subscription = this.remote.get(typeof track === 'string' ? track : track.id);
    if (!subscription) return;
    this.dropRemote(subscription);
    await this.session.request('closeConsumer', { consumerId: subscription.id }).catch((err: unknown) => {
      if (!isTeleconsultError(err) || err.code !== 'CONSUMER_NOT_FOUND') throw this.wrap(err);
    });
  }

  /** Chooses which simulcast layer of a video track to receive (0 = lowest resolution). */
  async setPreferredLayers(
    track: RemoteTrack | string,
    spatialLayer: number,
    temporalLayer?: number,
  ): Promise<void> {
    const consumerId = typeof track === 'string' ? track : track.id;
    await this.session
      .request('setConsumerPreferredLayers', {
        consumerId,
        spatialLayer,
        ...(temporalLayer !== undefined ? { temporalLayer } : {}),
      })
      .catch((err: unknown) => {
        throw this.wrap(err);
      });
  }

  /**
   * Tells the server the size (CSS pixels) at which a remote video is shown, so it does not send
   * 720p to a 160 px thumbnail; 0x0 for a hidden tile. See also `observeRenderSize`.
   */
  async setRenderSize(track: RemoteTrack | string, width: number, height: number): Promise<void> {
    const consumerId = typeof track === 'string' ? track : track.id;
    const scale = globalThis.devicePixelRatio || 1;
    const clamp = (v: number) => Math.min(8192, Math.max(0, Math.round(Number.isFinite(v) ? v * scale : 0)));
    await this.session
      .request('reportRenderSize', { consumerId, width: clamp(width), height: clamp(height) })
      .catch((err: unknown) => {
        throw this.wrap(err);
      });
  }

  /**
   * Reports the size of the element showing a remote video whenever it changes (ResizeObserver);
   * returns a function that stops observing.
   */
  observeRenderSize(track: RemoteTrack, element: Element): () => void {
    if (typeof ResizeObserver === 'undefined') return () => undefined;
    let last = '';
    const observer = new ResizeObserver((entries) => {
      const box = entries[entries.length - 1]?.contentRect;
      if (!box || this.finished || !this.remote.has(track.id)) return;
      const key = `${Math.round(box.width)}x${Math.round(box.height)}`;
      if (key === last) return;
      last = key;
      this.setRenderSize(track, box.width, box.height).catch(() => undefined);
    });
    observer.observe(element);
    return () => observer.disconnect();
  }

  /** WebRTC statistics of the sending and receiving connections (e.g. framesDecoded). */
  async getStats(): Promise<RoomStats> {
    const [send, recv] = await Promise.all([
      this.sendTransport?.closed === false ? this.sendTransport.getStats() : undefined,
      this.recvTransport?.closed === false ? this.recvTransport.getStats() : undefined,
    ]);
    return { send, recv };
  }

  // ---------------------------------------------------------------------------------------------
  // Waiting room: consent and pre-call check (patients and third parties)

  /**
   * The consent texts this participant may be asked to accept, current version per purpose.
   * Show `text` exactly as given (its hash is what the consent refers to).
   */
  async getConsentTexts(): Promise<ConsentText[]> {
    const { texts } = await this.session.request('getConsentTexts', {}).catch((err: unknown) => {
      throw this.wrap(err);
    });
    return texts;
  }

  /**
   * Patients: accepts a consent text (pass the object from `getConsentTexts()` or from a
   * `consentRequested` event, unchanged). The 'teleconsultation' consent is needed before the
   * practitioner can admit the patient; in a room without waiting room it admits at once. A
   * 'third-party' consent names the waiting third party it covers: `{ coversParticipantId }`.
   */
  async giveConsent(text: ConsentText, options: GiveConsentOptions = {}): Promise<void> {
    this.assertActive();
    if (text.purpose === 'third-party' && !options.coversParticipantId)
      throw this.error('INVALID_STATE', 'a third-party consent names the participant it covers');
    await this.session
      .request('giveConsent', {
        purpose: text.purpose,
        textId: text.textId,
        version: text.version,
        hash: text.hash,
        ...(options.coversParticipantId ? { coversParticipantId: options.coversParticipantId } : {}),
      })
      .catch((err: unknown) => {
        throw this.wrap(err);
      });
    if (text.purpose !== 'third-party') this.consentsGiven.add(text.purpose);
  }

  /**
   * Patients: withdraws a consent. Withdrawing the 'teleconsultation' consent while waiting returns
   * to 'waiting'; once admitted it ends this participant's consultation (the session ends as after
   * `leave()`). A 'third-party' withdrawal removes the third party it covered.
   */
  async withdrawConsent(purpose: ConsentPurpose, options: GiveConsentOptions = {}): Promise<void> {
    this.assertActive();
    const endsParticipation = purpose === 'teleconsultation' && this.mayExchangeMedia;
    await this.session
      .request('withdrawConsent', {
        purpose,
        ...(options.coversParticipantId ? { coversParticipantId: options.coversParticipantId } : {}),
      })
      .catch((err: unknown) => {
        throw this.wrap(err);
      });
    if (purpose !== 'third-party') this.consentsGiven.delete(purpose);
    // The server has taken this participant out; the connection has nothing left to do.
    if (endsParticipation) this.session.end(undefined);
  }

  /**
   * Waiting participants: the pre-call check. Publishes the camera and microphone on pre-call
   * transports whose media the server loops back to this participant only (`onTrack` gets the
   * returned tracks: the camera as the practitioner will see it), measures round trip, loss and
   * upload for `durationMs`, sends the result to the practitioner's waiting list, and cleans up.
   * Publications queued with `publishCamera()` are unaffected and still go out at admission; an
   * admission during the check ends it early (`completed: false`).
   */
  async runPrecheck(options: PrecheckOptions = {}): Promise<PrecheckReport> {
    this.assertActive();
    return this.precheck.start(options).catch((err: unknown) => {
      throw this.wrap(err);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Admission (practitioners)

  /** Practitioners: who waits, since when, consents, pre-call results (also kept in `waitingList`). */
  async getWaitingList(): Promise<WaitingEntry[]> {
    const { entries } = await this.session.request('getWaitingList', {}).catch((err: unknown) => {
      throw this.wrap(err);
    });
    this.waitingEntries = entries;
    return entries;
  }

  /** Practitioners: keeps a waiting participant waiting, with a message shown to it (280 characters at most). */
  async hold(participantId: string, message: string): Promise<void> {
    await this.session
      .request('hold', { participantId, message: message.slice(0, MAX_NOTE_LENGTH) })
      .catch((err: unknown) => {
        throw this.wrap(err);
      });
  }

  /**
   * Lets a waiting participant into the consultation (practitioners only). A patient must have
   * given its teleconsultation consent first (CONSENT_REQUIRED otherwise), a third party must be
   * covered by the patient's third-party consent.
   */
  async admit(participantId: string): Promise<void> {
    await this.session.request('admit', { participantId }).catch((err: unknown) => {
      throw this.wrap(err);
    });
  }

  /** Refuses a waiting participant (practitioners only). */
  async decline(participantId: string): Promise<void> {
    await this.session.request('decline', { participantId }).catch((err: unknown) => {
      throw this.wrap(err);
    });
  }

  /** Leaves the consultation, closes media and stops the tracks the SDK opened. Idempotent. */
  async leave(): Promise<void> {
    await this.session.leave();
  }

  /** Drops the signalling connection as a network failure would; the SDK then reconnects. */
  simulateConnectionDrop(): void {
    this.session.simulateConnectionDrop();
  }

  // ---------------------------------------------------------------------------------------------
  // Internals: media lifecycle

  private async publish(
    track: MediaStreamTrack,
    source: MediaSource,
    encodings: ms.RtpEncodingParameters[] | undefined,
    ownsTrack: boolean,
    codec: ms.RtpCodecCapability | undefined,
    device?: { deviceType: DeviceType; profile: DeviceProfile },
  ): Promise<LocalTrack> {
    if (track.kind !== 'audio' && track.kind !== 'video')
      throw this.error('WEBRTC_ERROR', 'unknown track kind');
    const previous = this.local.get(source);
    const publication = new LocalPublication(source, track.kind, track, encodings, codec, ownsTrack, device);
    this.local.set(source, publication);
    if (previous) await this.retire(previous, previous.track !== track);
    if (!this.mayExchangeMedia) return publication; // sent once admitted
    try {
      await this.produce(publication);
    } catch (err) {
      if (this.local.get(source) === publication) this.local.delete(source);
      await this.retire(publication, ownsTrack);
      throw this.wrap(err);
    }
    return publication;
  }

  private async produce(publication: LocalPublication): Promise<void> {
    if (publication.state !== 'queued') return;
    publication.state = 'publishing';
    await this.ensureMedia();
    const transport = this.sendTransport;
    if (!transport || this.local.get(publication.source) !== publication) return;
    const producer = await transport.produce({
      track: publication.track,
      ...(publication.encodings ? { encodings: publication.encodings } : {}),
      ...(publication.codec ? { codec: publication.codec } : {}),
      codecOptions:
        publication.device?.profile.codecOptions ??
        (publication.kind === 'audio' ? { opusFec: true, opusDtx: true } : { videoGoogleStartBitrate: 1000 }),
      stopTracks: false, // the SDK decides: the same track is republished after a media reset
      appData: {
        source: publication.source,
        ...(publication.device ? { deviceType: publication.device.deviceType } : {}),
      },
      // Before any frame leaves: with E2EE every frame goes through the encryption worker.
      ...(this.e2ee
        ? { onRtpSender: this.e2ee.senderHook(publication.kind, publication.codec?.mimeType) }
        : {}),
    });
    if (this.local.get(publication.source) !== publication || publication.state !== 'publishing') {
      producer.close();
      await this.session.request('closeProducer', { producerId: producer.id }).catch(() => undefined);
      return;
    }
    publication.producer = producer;
    publication.state = 'published';
    const degradation = publication.device?.profile.degradationPreference;
    if (degradation) await preferDegradation(producer, degradation);
    producer.on('trackended', () => {
      this.emit('error', this.error('MEDIA_DEVICE_ERROR', `${publication.source} track ended`));
      void this.unpublish(publication.source);
    });
    if (publication.muted) {
      producer.pause();
      await this.session.request('pauseProducer', { producerId: producer.id });
    }
    this.emit('localTrackPublished', publication);
  }

  /** Sends every queued publication (after admission, or after a media reset). */
  private async publishQueued(): Promise<void> {
    for (const publication of [...this.local.values()]) {
      if (publication.state !== 'queued') continue;
      try {
        await this.produce(publication);
      } catch (err) {
        publication.state = 'queued';
        this.emit('error', this.wrap(err));
      }
    }
  }

  private async retire(publication: LocalPublication, stopTrack: boolean): Promise<void> {
    const wasPublished = publication.producer !== undefined;
    const producer = publication.producer;
    publication.producer = undefined;
    publication.state = 'unpublished';
    if (producer && !producer.closed) {
      producer.close();
      await this.session.request('closeProducer', { producerId: producer.id }).catch(() => undefined);
    }
    if (stopTrack && publication.ownsTrack) publication.track.stop();
    if (wasPublished) this.emit('localTrackUnpublished', publication);
  }

  private async setMuted(source: MediaSource, muted: boolean): Promise<void> {
    const publication = this.local.get(source);
    if (!publication) throw this.error('INVALID_STATE', `nothing published for ${source}`);
    publication.muted = muted;
    const producer = publication.producer;
    if (!producer) {
      publication.track.enabled = !muted;
      return;
    }
    if (muted) producer.pause();
    else producer.resume();
    await this.session
      .request(muted ? 'pauseProducer' : 'resumeProducer', { producerId: producer.id })
      .catch((err: unknown) => {
        throw this.wrap(err);
      });
  }

  private async capture(constraints: MediaStreamConstraints, kind: MediaKind): Promise<MediaStreamTrack> {
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      const track = kind === 'video' ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0];
      if (!track) throw this.error('MEDIA_DEVICE_NOT_FOUND', kind);
      return track;
    } catch (err) {
      throw fromMediaError(err, this.settings.locale);
    }
  }

  private async startMedia(): Promise<void> {
    try {
      await this.ensureMedia();
      await this.receiveFirst();
      await this.publishQueued();
      for (const channel of this.dataChannels)
        if (!channel.producer || channel.producer.closed) await this.produceData(channel);
    } catch (err) {
      if (!this.finished) this.emit('error', this.wrap(err));
    }
  }

  /**
   * Receive first: the server announces the others' media before it tells a participant it is
   * admitted, so at admission the consumers are already arriving. They are set up here (consumed,
   * resume requested) before the queued publications start, whose negotiation and encoders would
   * otherwise compete with them in the browser and whose requests would come first in the server's
   * per-connection order, delaying the resume and so the keyframe it asks for. Bounded, so that a
   * setup that hangs does not hold the publications back.
   */
  private async receiveFirst(): Promise<void> {
    const arriving = [...this.arriving.values()];
    if (arriving.length === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, RECEIVE_FIRST_MAX_WAIT_MS)));
    await Promise.race([Promise.all(arriving), bound]);
    clearTimeout(timer);
  }

  private async produceData(channel: DataChannelEntry): Promise<void> {
    await this.ensureMedia();
    const transport = this.sendTransport;
    if (!transport) throw this.error('NOT_CONNECTED');
    const producer = await transport.produceData({
      label: channel.label,
      protocol: channel.protocol,
      ordered: true,
      ...(channel.deviceType ? { appData: { source: 'vital-signs', deviceType: channel.deviceType } } : {}),
    });
    if (channel.closed) producer.close();
    else channel.producer = producer;
  }

  /**
   * Connect ahead: while waiting, the room transports are created and connected (ICE and DTLS)
   * through a warm-up data channel that the server loops back to this participant alone, so that
   * an admission only has to produce and consume. Nothing else flows on them before admission.
   */
  private async connectAhead(): Promise<void> {
    if (this.settings.connectAhead !== true || !this.device.loaded || this.finished) return;
    if (this.mayExchangeMedia || !permits(this.selfInfo.role, this.selfInfo.state, 'prepare')) return;
    const generation = this.mediaGeneration;
    try {
      await this.ensureMedia();
      const transport = this.sendTransport;
      if (!transport || generation !== this.mediaGeneration || this.mayExchangeMedia || this.warmUp) return;
      const warmUp = await transport.produceData({
        label: 'warm-up',
        ordered: true,
        appData: { warmUp: true },
      });
      if (generation !== this.mediaGeneration || this.mayExchangeMedia || this.warmUp) warmUp.close();
      else this.warmUp = warmUp;
    } catch {
      // Admitted meanwhile (the server refuses a warm-up then) or connection lost: media starts at
      // admission as without connecting ahead.
    }
  }

  /** Creates the send and receive transports once per media generation. */
  private ensureMedia(): Promise<void> {
    if (this.finished) return Promise.reject(this.error('NOT_CONNECTED'));
    if (!this.mediaReady) {
      const generation = this.mediaGeneration;
      const ready = this.createTransports(generation);
      this.mediaReady = ready;
      ready.catch(() => {
        if (this.mediaReady === ready) this.mediaReady = undefined;
      });
    }
    return this.mediaReady;
  }

  /** ICE servers and peer connection settings of every transport (the pre-call ones too). */
  private transportSettings(): Partial<ms.TransportOptions> {
    return {
      ...(this.settings.iceServers ? { iceServers: this.settings.iceServers } : {}),
      ...(this.settings.iceTransportPolicy ? { iceTransportPolicy: this.settings.iceTransportPolicy } : {}),
      ...(this.e2ee?.peerConnectionSettings()
        ? { additionalSettings: this.e2ee.peerConnectionSettings() }
        : {}),
    };
  }

  private async createTransports(generation: number): Promise<void> {
    const common = this.transportSettings();
    // Receive first: the server starts sending what others publish as soon as it exists.
    const recvParams = await this.session.request('createTransport', { direction: 'recv', sctp: true });
    if (generation !== this.mediaGeneration || this.finished) return;
    const recv = this.device.createRecvTransport({ ...transportOptions(recvParams), ...common });
    this.wireTransport(recv);
    this.recvTransport = recv;
    const sendParams = await this.session.request('createTransport', { direction: 'send', sctp: true });
    if (generation !== this.mediaGeneration || this.finished) return;
    const send = this.device.createSendTransport({ ...transportOptions(sendParams), ...common });
    this.wireTransport(send);
    this.sendTransport = send;
  }

  private wireTransport(transport: ms.Transport): void {
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      this.session
        .request('connectTransport', { transportId: transport.id, dtlsParameters })
        .then(() => callback(), errback);
    });
    // Set once this transport lost its path; only its return says the network is back (its very
    // first connection, which may land just after a signalling drop, says nothing of the kind).
    let interrupted = false;
    transport.on('connectionstatechange', (state) => {
      if (state === 'failed') void this.restartIce(transport);
      if (state === 'disconnected' || state === 'failed') interrupted = true;
      // Media flows again: so does the network, whatever the signalling backoff still waits for.
      if (state === 'connected' && interrupted) {
        interrupted = false;
        this.session.networkRestored('ice');
      }
    });
    if (transport.direction !== 'send') return;
    transport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
      const { source = kind === 'audio' ? 'microphone' : 'camera', deviceType } = appData as {
        source?: MediaSource;
        deviceType?: DeviceType;
      };
      this.session
        .request('produce', {
          transportId: transport.id,
          kind,
          rtpParameters: opaque(rtpParameters),
          source,
          ...(deviceType ? { deviceType } : {}),
        })
        .then(({ producerId }) => callback({ id: producerId }), errback);
    });
    transport.on('producedata', ({ sctpStreamParameters, label, protocol, appData }, callback, errback) => {
      const warmUp = (appData as { warmUp?: boolean }).warmUp === true;
      const { deviceType } = appData as { deviceType?: DeviceType };
      this.session
        .request('produceData', {
          transportId: transport.id,
          sctpStreamParameters: opaque(sctpStreamParameters),
          label: label ?? '',
          protocol: protocol ?? '',
          ...(warmUp ? { warmUp } : {}),
          ...(deviceType ? { source: 'vital-signs' as const, deviceType } : {}),
        })
        .then(({ dataProducerId }) => callback({ id: dataProducerId }), errback);
    });
  }

  private async restartIce(transport: ms.Transport): Promise<void> {
    const last = this.lastIceRestart.get(transport.id) ?? 0;
    if (transport.closed || Date.now() - last < ICE_RESTART_MIN_INTERVAL_MS) return;
    this.lastIceRestart.set(transport.id, Date.now());
    try {
      const { iceParameters } = await this.session.request('restartIce', { transportId: transport.id });
      if (!transport.closed)
        await transport.restartIce({ iceParameters: iceParameters as unknown as ms.IceParameters });
    } catch (err) {
      if (!this.finished) this.emit('error', this.wrap(err));
    }
  }

  /** Forgets every media object (the server lost them) and, if allowed, builds them again. */
  private async resetMedia(): Promise<void> {
    this.closeMedia();
    this.precheck.abort(); // the server lost the pre-call transports too
    for (const publication of this.local.values()) {
      publication.producer = undefined;
      publication.state = 'queued';
    }
    if (this.mayExchangeMedia) await this.startMedia();
    else await this.connectAhead();
  }

  private closeMedia(): void {
    this.mediaGeneration++;
    this.mediaReady = undefined;
    this.warmUp = undefined;
    for (const subscription of [...this.remote.values()]) this.dropRemote(subscription);
    this.dataConsumers.clear();
    this.sendTransport?.close();
    this.recvTransport?.close();
    this.sendTransport = undefined;
    this.recvTransport = undefined;
  }

  private dropRemote(subscription: RemoteSubscription): void {
    if (!this.remote.delete(subscription.id)) return;
    subscription.consumer.close();
    this.emit('trackRemoved', subscription);
  }

  // ---------------------------------------------------------------------------------------------
  // Internals: server notifications

  private onNotification(message: AnyNotification): void {
    const handle = <N extends NotificationName>(
      name: N,
      fn: (data: NotificationData<N>) => void | Promise<void>,
    ) => {
      if (message.notification !== name) return;
      Promise.resolve(fn(message.data as NotificationData<N>)).catch((err: unknown) => {
        if (!this.finished) this.emit('error', this.wrap(err));
      });
    };
    handle('participantJoined', ({ participant }) => this.upsertParticipant(participant, true));
    handle('participantUpdated', ({ participant }) => this.upsertParticipant(participant, false));
    handle('participantLeft', ({ participantId, reason }) => this.removeParticipant(participantId, reason));
    handle('consumerAdded', (data) => this.onConsumerAdded(data));
    handle('consumerClosed', ({ consumerId }) => {
      const subscription = this.remote.get(consumerId);
      if (subscription) this.dropRemote(subscription);
      this.precheck.onConsumerClosed(consumerId);
    });
    handle('consumerPaused', ({ consumerId }) => this.setRemoteMuted(consumerId, true));
    handle('consumerResumed', ({ consumerId }) => this.setRemoteMuted(consumerId, false));
    handle('consumerLayersChanged', ({ consumerId, spatialLayer, temporalLayer }) => {
      const subscription = this.remote.get(consumerId);
      if (!subscription) return;
      subscription.layers = { spatialLayer, temporalLayer };
      this.emit('layersChanged', subscription);
    });
    handle('dataConsumerAdded', (data) => this.onDataConsumerAdded(data));
    handle('dataConsumerClosed', ({ dataConsumerId }) => {
      this.dataConsumers.get(dataConsumerId)?.close();
      this.dataConsumers.delete(dataConsumerId);
    });
    handle('dataProducerClosed', ({ dataProducerId, code }) => {
      for (const channel of this.dataChannels) {
        if (channel.producer?.id !== dataProducerId) continue;
        // Not reopened by a media reset: the sender must slow down and open a new channel.
        channel.closed = true;
        this.dataChannels.delete(channel);
        channel.producer.close();
        this.emit('error', this.error(code, channel.label));
      }
    });
    handle('e2eeMessage', ({ from, payload }) => this.e2ee?.onMessage(from, payload));
    handle('deviceSourceRequested', (request) => this.emit('deviceSourceRequested', request));
    handle('mediaReset', async () => {
      this.emit('mediaReset');
      await this.resetMedia();
    });
    handle('admissionChanged', ({ state, message: note }) =>
      this.updateSelf({ ...this.selfInfo, state }, note?.slice(0, MAX_NOTE_LENGTH)),
    );
    handle('waitingListChanged', ({ entries }) => {
      this.waitingEntries = entries;
      this.emit('waitingListChanged', entries);
    });
    handle('consentRequested', (request) => this.emit('consentRequested', request));
    handle('mediaModeChanged', ({ mode, reason }) => {
      this.mediaModeNow = mode;
      this.emit('mediaModeChanged', mode, reason);
    });
    handle('qualityUpdate', (report) => this.emit('qualityUpdate', report));
    handle('publishLayersAdvice', (advice) => this.onPublishLayersAdvice(advice));
    handle('roomClosed', ({ reason }) => {
      this.roomClosedEmitted = true;
      this.emit('roomClosed', reason);
    });
  }

  /** Sends fewer simulcast layers while the server sees a weak uplink (and all of them again after). */
  private async onPublishLayersAdvice(advice: NotificationData<'publishLayersAdvice'>): Promise<void> {
    const publication = [...this.local.values()].find((p) => p.producer?.id === advice.producerId);
    const producer = publication?.producer;
    if (!publication || !producer || producer.closed || publication.kind !== 'video') return;
    const layers = publication.encodings?.length ?? 1;
    if (layers < 2) return;
    const maxSpatialLayer = Math.min(layers - 1, Math.max(0, advice.maxSpatialLayer));
    await producer.setMaxSpatialLayer(maxSpatialLayer);
    this.emit('publishLayersAdvice', {
      producerId: producer.id,
      source: publication.source,
      maxSpatialLayer,
    });
  }

  private upsertParticipant(seen: ParticipantInfo, joined: boolean): void {
    const participant = asSeen(seen);
    if (participant.id === this.selfInfo.id) return this.updateSelf(participant);
    const previous = this.others.get(participant.id);
    this.others.set(participant.id, participant);
    if (joined && !previous) this.emit('participantJoined', participant);
    else this.emit('participantUpdated', participant, previous);
  }

  private removeParticipant(participantId: string, reason: string): void {
    const participant = this.others.get(participantId);
    if (!participant) return;
    this.others.delete(participantId);
    for (const subscription of [...this.remote.values()]) {
      if (subscription.participantId === participantId) this.dropRemote(subscription);
    }
    this.emit('participantLeft', participant, reason);
  }

  private updateSelf(seen: ParticipantInfo, note?: string): void {
    const participant = asSeen(seen);
    const before = this.selfInfo.state;
    const couldExchange = this.mayExchangeMedia;
    this.selfInfo = participant;
    if (note !== undefined) this.heldNote = note;
    if (!WAITING_STATES.has(participant.state)) this.heldNote = undefined;
    if (participant.state === 'waiting') this.consentsGiven.delete('teleconsultation');
    if (participant.state === 'consented') this.consentsGiven.add('teleconsultation');
    if (!couldExchange && this.mayExchangeMedia) {
      // Admitted: the server closed the pre-call transports and the warm-up channel; the room
      // transports (connected ahead, or created now) carry media from here.
      this.precheck.abort();
      this.warmUp?.close();
      this.warmUp = undefined;
      void this.startMedia();
    }
    if (participant.state !== before || note !== undefined)
      this.emit('admissionChanged', participant.state, note);
  }

  private async onConsumerAdded(data: NotificationData<'consumerAdded'>): Promise<void> {
    // Own media coming back: only the pre-call check's loopback is announced to its sender.
    if (data.participantId === this.selfInfo.id) return this.precheck.onConsumerAdded(data);
    if (this.remote.has(data.consumerId) || this.arriving.has(data.consumerId)) return;
    let resumeRequested = (): void => undefined;
    this.arriving.set(data.consumerId, new Promise<void>((resolve) => (resumeRequested = resolve)));
    try {
      await this.setUpConsumer(data, resumeRequested);
    } finally {
      resumeRequested();
      this.arriving.delete(data.consumerId);
      this.vanished.delete(data.consumerId);
    }
  }

  private async setUpConsumer(
    data: NotificationData<'consumerAdded'>,
    resumeRequested: () => void,
  ): Promise<void> {
    const generation = this.mediaGeneration;
    await this.ensureMedia();
    const transport = this.recvTransport;
    if (!transport || generation !== this.mediaGeneration || this.remote.has(data.consumerId)) return;
    const consumer = await transport.consume({
      id: data.consumerId,
      producerId: data.producerId,
      kind: data.kind,
      rtpParameters: data.rtpParameters as unknown as ms.RtpParameters,
      appData: { participantId: data.participantId, source: data.source },
      ...(this.e2ee
        ? { onRtpReceiver: this.e2ee.receiverHook(data.kind, data.rtpParameters, data.participantId) }
        : {}),
    });
    if (generation !== this.mediaGeneration || this.finished || this.vanished.has(consumer.id)) {
      consumer.close();
      return;
    }
    const subscription = new RemoteSubscription(
      consumer,
      data.participantId,
      data.source,
      data.producerPaused,
    );
    this.remote.set(consumer.id, subscription);
    consumer.on('transportclose', () => this.dropRemote(subscription));
    this.emit('trackAdded', subscription);
    const waiting = this.pendingSubscriptions.get(data.producerId);
    this.pendingSubscriptions.delete(data.producerId);
    for (const resolve of waiting ?? []) resolve(subscription);
    // The server created the consumer paused; it sends RTP once we are ready to receive.
    const resumed = this.session.request('resumeConsumer', { consumerId: consumer.id });
    resumeRequested();
    await resumed;
    subscription.resumed = true;
  }

  private setRemoteMuted(consumerId: string, muted: boolean): void {
    const subscription = this.remote.get(consumerId);
    if (!subscription || subscription.muted === muted) return;
    subscription.muted = muted;
    this.emit(muted ? 'trackMuted' : 'trackUnmuted', subscription);
  }

  private async onDataConsumerAdded(data: NotificationData<'dataConsumerAdded'>): Promise<void> {
    const generation = this.mediaGeneration;
    await this.ensureMedia();
    const transport = this.recvTransport;
    if (!transport || generation !== this.mediaGeneration) return;
    const dataConsumer = await transport.consumeData({
      id: data.dataConsumerId,
      dataProducerId: data.dataProducerId,
      sctpStreamParameters: data.sctpStreamParameters,
      label: data.label,
      protocol: data.protocol,
    });
    this.dataConsumers.set(dataConsumer.id, dataConsumer);
    dataConsumer.on('transportclose', () => this.dataConsumers.delete(dataConsumer.id));
    // Our own warm-up channel back (connect ahead): it connected the receive transport, nothing more.
    if (data.participantId === this.selfInfo.id) return;
    if (data.source === 'vital-signs') return this.readVitalSigns(dataConsumer, data);
    dataConsumer.on('message', (payload: unknown) => {
      const message = readDataPayload(payload);
      if (message === undefined) return;
      this.emit('dataMessage', { participantId: data.participantId, label: data.label, data: message });
    });
  }

  /** A device's readings: decrypted (E2EE), validated and in order, or rejected with a typed error. */
  private readVitalSigns(dataConsumer: ms.DataConsumer, data: NotificationData<'dataConsumerAdded'>): void {
    const { participantId } = data;
    const encrypted = this.e2ee?.encrypts(participantId) === true;
    const reader = new VitalSignsReader({
      senderId: participantId,
      deviceType: data.deviceType,
      cipher: encrypted ? this.e2ee : undefined,
      locale: this.settings.locale,
    });
    dataConsumer.on('message', (payload: unknown) => {
      reader.accept(payload).then(
        (reading) =>
          this.emit('vitalSign', { participantId, deviceType: reading.deviceType, reading, encrypted }),
        (err: unknown) => this.emit('vitalSignRejected', { participantId, error: this.wrap(err) }),
      );
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Internals: connection lifecycle

  private async onResumed(result: ResumeResult): Promise<void> {
    // Participants may have come and gone while we were away.
    const present = new Set(result.participants.map((p) => p.id));
    for (const id of [...this.others.keys()]) if (!present.has(id)) this.removeParticipant(id, 'left');
    for (const participant of result.participants.map(asSeen)) {
      const previous = this.others.get(participant.id);
      if (!previous) this.upsertParticipant(participant, true);
      else if (JSON.stringify(previous) !== JSON.stringify(participant))
        this.upsertParticipant(participant, false);
    }
    const couldExchange = this.mayExchangeMedia;
    this.updateSelf(result.self);
    // Waiting-list notifications sent while we were away are lost: fetch the list again.
    if (roleMay(this.selfInfo.role, 'manageWaitingRoom')) void this.refreshWaitingList();
    if (!couldExchange) {
      // Still waiting: a pre-call check carries on (updateSelf started media if admitted meanwhile),
      // and so do the transports connected ahead, on a path that may have changed.
      if (WAITING_STATES.has(this.selfInfo.state)) {
        await this.precheck.reconcile(result.transportIds, result.consumers);
        await this.reconnectAhead(result.transportIds);
      }
      return;
    }
    const alive = new Set(result.transportIds);
    const transports = [this.sendTransport, this.recvTransport].filter(
      (t): t is ms.Transport => t !== undefined,
    );
    if (transports.some((t) => !alive.has(t.id))) {
      await this.resetMedia();
      return;
    }
    this.reconcileConsumers(result.consumers);
    // Same transports on the server; the network path may have changed: restart ICE on each.
    for (const transport of transports) {
      this.lastIceRestart.delete(transport.id);
      await this.restartIce(transport);
    }
    // Publications whose request was lost with the connection are still queued: send them now.
    await this.publishQueued();
  }

  /** After a resume while waiting: the transports connected ahead are kept, or built again if the server lost them. */
  private async reconnectAhead(transportIds: readonly string[]): Promise<void> {
    const transports = [this.sendTransport, this.recvTransport].filter(
      (t): t is ms.Transport => t !== undefined,
    );
    const alive = new Set(transportIds);
    if (transports.some((t) => !alive.has(t.id))) {
      this.closeMedia();
      await this.connectAhead();
      return;
    }
    for (const transport of transports) {
      this.lastIceRestart.delete(transport.id);
      await this.restartIce(transport);
    }
  }

  private async refreshWaitingList(): Promise<void> {
    try {
      const { entries } = await this.session.request('getWaitingList', {});
      if (JSON.stringify(entries) === JSON.stringify(this.waitingEntries)) return;
      this.waitingEntries = entries;
      this.emit('waitingListChanged', entries);
    } catch (err) {
      if (!this.finished) this.emit('error', this.wrap(err));
    }
  }

  /**
   * After a resume, makes the received tracks match the consumers the server lists: those created
   * while the connection was down are set up, those closed meanwhile are dropped, and those whose
   * `resumeConsumer` was lost with the connection are resumed.
   */
  private reconcileConsumers(listed: NotificationData<'consumerAdded'>[]): void {
    const ids = new Set(listed.map((c) => c.consumerId));
    for (const subscription of [...this.remote.values()])
      if (!ids.has(subscription.id)) this.dropRemote(subscription);
    for (const id of this.arriving.keys()) if (!ids.has(id)) this.vanished.add(id);
    const fail = (err: unknown) => {
      if (!this.finished) this.emit('error', this.wrap(err));
    };
    for (const data of listed) {
      if (data.participantId === this.selfInfo.id) continue;
      const existing = this.remote.get(data.consumerId);
      if (!existing) {
        this.onConsumerAdded(data).catch(fail);
      } else if (!existing.resumed) {
        this.session
          .request('resumeConsumer', { consumerId: existing.id })
          .then(() => (existing.resumed = true))
          .catch(fail);
      }
    }
  }

  private onEnded(reason: TeleconsultError | undefined): void {
    if (this.finished) return;
    this.finished = true;
    this.precheck.abort();
    this.closeMedia();
    this.e2ee?.close();
    for (const publication of this.local.values()) {
      if (publication.ownsTrack) publication.track.stop();
      publication.producer = undefined;
      publication.state = 'unpublished';
    }
    this.pendingSubscriptions.clear();
    for (const channel of this.dataChannels) channel.closed = true;
    this.dataChannels.clear();
    if (reason?.code === 'DECLINED' || reason?.code === 'REMOVED') {
      const state: AdmissionState = reason.code === 'DECLINED' ? 'declined' : 'removed';
      if (this.selfInfo.state !== state) {
        this.selfInfo = { ...this.selfInfo, state };
        this.emit('admissionChanged', state);
      }
    } else if (reason === undefined && this.selfInfo.state !== 'left') {
      this.selfInfo = { ...this.selfInfo, state: 'left' };
      this.emit('admissionChanged', 'left');
    }
    if (reason?.code === 'ROOM_CLOSED' && !this.roomClosedEmitted) this.emit('roomClosed', 'ended');
    if (reason) this.emit('error', reason);
  }

  private assertActive(): void {
    if (this.finished) throw this.error('NOT_CONNECTED');
  }

  private error(code: TeleconsultError['code'], detail?: string): TeleconsultError {
    return new TeleconsultError(code, this.settings.locale, detail);
  }

  private wrap(err: unknown): TeleconsultError {
    return fromMediaError(err, this.settings.locale);
  }
}

function transportOptions(params: {
  id: string;
  iceParameters: Record<string, unknown>;
  iceCandidates: Record<string, unknown>[];
  dtlsParameters: Record<string, unknown>;
  sctpParameters?: Record<string, unknown>;
}): ms.TransportOptions {
  // The protocol carries mediasoup's parameter dictionaries opaquely; mediasoup-client reads them.
  return {
    id: params.id,
    iceParameters: params.iceParameters as unknown as ms.IceParameters,
    iceCandidates: params.iceCandidates as unknown as ms.IceCandidate[],
    dtlsParameters: params.dtlsParameters as unknown as ms.DtlsParameters,
    ...(params.sctpParameters
      ? { sctpParameters: params.sctpParameters as unknown as ms.SctpParameters }
      : {}),
  };
}

function opaque(value: object): Record<string, unknown> {
  return value as Record<string, unknown>;
}

function readDataPayload(payload: unknown): string | ArrayBuffer | undefined {
  if (typeof payload === 'string') return payload.length <= MAX_DATA_MESSAGE_BYTES ? payload : undefined;
  if (payload instanceof ArrayBuffer)
    return payload.byteLength <= MAX_DATA_MESSAGE_BYTES ? payload : undefined;
  return undefined;
}

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/**
 * The server tells 'admitted' from 'in-call' (admitted and media started); the application needs
 * only 'admitted', so the SDK never shows 'in-call' (docs/sdk.md).
 */
function asSeen(participant: ParticipantInfo): ParticipantInfo {
  return participant.state === 'in-call' ? { ...participant, state: 'admitted' } : participant;
}

/**
 * Asks the encoder to keep resolution (or frame rate) when bandwidth is short. A browser that does
 * not support it keeps its default ('balanced'): the publication goes on.
 */
async function preferDegradation(
  producer: ms.Producer,
  preference: NonNullable<DeviceProfile['degradationPreference']>,
): Promise<void> {
  const sender = producer.rtpSender;
  if (!sender) return;
  try {
    const parameters = sender.getParameters() as RTCRtpSendParameters & { degradationPreference?: string };
    parameters.degradationPreference = preference;
    await sender.setParameters(parameters);
  } catch {
    // Not supported here: documented in docs/devices.md.
  }
}

/** How long a still waits for a decoded frame after the keyframe request. */
const STILL_FRAME_TIMEOUT_MS = 5000;

/**
 * The size of the next frame a video element presents (requestVideoFrameCallback; without it, the
 * frame shown half a second later); 0x0 when none comes in time.
 */
function nextFrame(video: HTMLVideoElement, timeoutMs: number): Promise<{ width: number; height: number }> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ width: 0, height: 0 }), timeoutMs);
    const done = (width: number, height: number) => {
      clearTimeout(timer);
      resolve({ width, height });
    };
    if (typeof video.requestVideoFrameCallback === 'function')
      video.requestVideoFrameCallback((_now, frame) => done(frame.width, frame.height));
    else setTimeout(() => done(video.videoWidth, video.videoHeight), 500);
  });
}

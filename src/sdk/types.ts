import type { types as mediasoupTypes } from 'mediasoup-client';
import type {
  AdmissionState,
  MediaSource,
  NotificationData,
  ParticipantInfo,
  PrecheckResult,
  RequestResult,
  WaitingEntry,
} from '../protocol/messages.js';
import type { E2eeOptions, EncryptionState } from './e2ee/endToEndEncryption.js';
import type { DeviceSource, DeviceType } from '../protocol/devices.js';
import type { VitalSign, VitalSignKind } from '../protocol/vitalSignRules.js';
import type { VitalSignInput } from './vitalSigns.js';
/** Roles and what each may do come from the server's permission table (docs/authorization.md). */
export type { Action, Role } from '../protocol/permissions.js';
import type { TeleconsultError } from './errors.js';
import type { Locale } from './messages.js';
import type { ReconnectPolicy } from './reconnectPolicy.js';
import type { ConnectionState, JoinCredentials, ReconnectTrigger } from './session.js';
import type { WebSocketConstructor } from './signallingSocket.js';

export type { AdmissionState, MediaSource, ParticipantInfo, ConnectionState, Locale, ReconnectPolicy };
export type { JoinCredentials, PrecheckResult, ReconnectTrigger, WaitingEntry };
export type { E2eeOptions, EncryptionState };
export type { DeviceSource, DeviceType, VitalSign, VitalSignKind, VitalSignInput };
export type MediaKind = 'audio' | 'video';
export type RoomInfo = RequestResult<'join'>['room'];
/** mediasoup-client's built-in browser handlers ('Chrome111' for headless Chromium). */
export type HandlerName = mediasoupTypes.BuiltinHandlerName;

export interface ConnectOptions {
  /**
   * The mediasoup-client handler to use instead of detecting the browser. Detection fails on
   * headless Chromium (its user agent says "HeadlessChrome"): pass 'Chrome111' there.
   */
  handlerName?: HandlerName;
  /** Language of `TeleconsultError.message` (default 'fr'). */
  locale?: Locale;
  /** Reconnection after a network drop (default: on, see `DEFAULT_RECONNECT_POLICY`); `false` to disable. */
  reconnect?: Partial<ReconnectPolicy> | boolean;
  /** A WebSocket implementation (default: the global `WebSocket`; in Node, pass `ws`'s). */
  WebSocket?: WebSocketConstructor;
  /** Time a request may wait for its answer (default 10 000 ms). */
  requestTimeoutMs?: number;
  /** Time opening the WebSocket may take (default 10 000 ms). */
  connectTimeoutMs?: number;
  /**
   * End-to-end encryption of media (SFrame, keys held only by participants; docs/encryption.md).
   * `true` or options; fails with E2EE_REQUIRED when the browser cannot do it (check
   * `isE2eeSupported()` first). Rooms created with `e2eeRequired` refuse clients without it.
   */
  e2ee?: boolean | E2eeOptions;
  /** STUN/TURN servers for the media transports (hospital networks often need TURN over TLS). */
  iceServers?: RTCIceServer[];
  /** 'relay' forces TURN. */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /**
   * While waiting for admission, create and connect the media transports (ICE, DTLS) so that
   * media starts as soon as the practitioner admits; nothing is sent or received on them before.
   * Default true.
   */
  connectAhead?: boolean;
}

/** A track received from another participant. */
export interface RemoteTrack {
  /** The consumer id: pass it (or this object) to `unsubscribe` and `setPreferredLayers`. */
  readonly id: string;
  readonly producerId: string;
  readonly participantId: string;
  readonly kind: MediaKind;
  readonly source: MediaSource;
  readonly track: MediaStreamTrack;
  /** The sender paused this track (muted). */
  readonly muted: boolean;
  /** The simulcast layers currently received (video), `null` when none. */
  readonly layers: { spatialLayer: number | null; temporalLayer: number | null } | undefined;
}

/** A local track and its publication. */
export interface LocalTrack {
  readonly source: MediaSource;
  readonly kind: MediaKind;
  readonly track: MediaStreamTrack;
  /**
   * 'queued' until the participant is admitted (nothing leaves the browser before), 'published'
   * once the server receives it, 'unpublished' after `unpublish()` or when the session ended.
   */
  readonly state: 'queued' | 'publishing' | 'published' | 'unpublished';
  readonly muted: boolean;
  readonly producerId: string | undefined;
}

export interface CameraOptions {
  /** A specific camera (from `navigator.mediaDevices.enumerateDevices()`). */
  deviceId?: string;
  /** Capture size and rate (default 1280x720 at 30 fps). */
  width?: number;
  height?: number;
  frameRate?: number;
  /** Send three VP8 layers so each receiver gets what its bandwidth allows (default true). */
  simulcast?: boolean;
  /** Replace the default encodings entirely (advanced). */
  encodings?: mediasoupTypes.RtpEncodingParameters[];
  /** Publish this track instead of opening the camera. */
  track?: MediaStreamTrack;
}

export interface MicrophoneOptions {
  deviceId?: string;
  /** Publish this track instead of opening the microphone. */
  track?: MediaStreamTrack;
}

export interface PublishOptions {
  /** Video only: encodings (simulcast layers); default: one encoding. */
  encodings?: mediasoupTypes.RtpEncodingParameters[];
  /** Stop the track when it is unpublished or the session ends (default: false for tracks you pass in). */
  stopOnUnpublish?: boolean;
}

/** Sends messages on a data channel (e.g. readings of a connected medical device). */
export interface DataSender {
  readonly label: string;
  /**
   * Sends one message; returns false (and drops it) while the channel is not open: just after
   * `publishData()`, or while the SDK rebuilds media after a reset.
   */
  send(data: string | ArrayBuffer | ArrayBufferView): boolean;
  close(): void;
}

export interface ExaminationVideoOptions {
  /** The device: 'otoscope', 'dermatoscope' or 'examination-camera' (default), for the journal. */
  deviceType?: Extract<DeviceType, 'otoscope' | 'dermatoscope' | 'examination-camera'>;
  /** The device's camera input (from `navigator.mediaDevices.enumerateDevices()`). */
  deviceId?: string;
  /** Capture size (default 1920x1080). */
  width?: number;
  height?: number;
  /** Publish this track instead of opening the device. */
  track?: MediaStreamTrack;
}

export interface StethoscopeOptions {
  /** The stethoscope's audio input. */
  deviceId?: string;
  /** Publish this track instead (capture it with echo cancellation, noise suppression and gain control off). */
  track?: MediaStreamTrack;
}

/** A device's vital-signs channel (from `publishVitalSigns`). */
/** A still of an examination video, at the resolution its holder sends (`captureExaminationStill`). */
export interface ExaminationStill {
  /** A PNG image, for the application to show or save (the server never sees it). */
  readonly image: Blob;
  readonly width: number;
  readonly height: number;
  /** The examination video's producer. */
  readonly producerId: string;
  /** When the frame was decoded (epoch ms). */
  readonly takenAt: number;
}

export interface VitalSignsChannel {
  readonly deviceType: DeviceType;
  /** The data channel is open (`send` rejects with NOT_CONNECTED otherwise). */
  readonly open: boolean;
  /**
   * Sends one reading (the SDK adds `seq`, `deviceType`, and `timestamp` when absent); resolves
   * with the reading as sent. Rejects with VITAL_SIGN_INVALID, VITAL_SIGN_RATE_LIMITED,
   * E2EE_KEY_MISSING or NOT_CONNECTED: nothing was sent.
   */
  send(reading: VitalSignInput): Promise<VitalSign>;
  close(): void;
}

/** A reading received from a device holder, validated and in order. */
export interface VitalSignEvent {
  participantId: string;
  deviceType: DeviceType;
  reading: VitalSign;
  /** It was end-to-end encrypted (the server relayed ciphertext only). */
  encrypted: boolean;
}

/** A reading dropped at reception, and why (error codes VITAL_SIGN_*). */
export interface VitalSignRejection {
  participantId: string;
  error: TeleconsultError;
}

/** A practitioner asks this device holder for a device source. */
export type DeviceSourceRequest = NotificationData<'deviceSourceRequested'>;

export interface DeviceSourceRequestOptions {
  deviceType?: DeviceType;
  /** Shown to the holder ("oreille droite"), 140 characters at most; not journalled. */
  note?: string;
}

export interface DataMessage {
  participantId: string;
  label: string;
  data: string | ArrayBuffer;
}

export interface RoomStats {
  /** Stats of the sending RTCPeerConnection (outbound-rtp...), when one exists. */
  send: RTCStatsReport | undefined;
  /** Stats of the receiving RTCPeerConnection (inbound-rtp with framesDecoded...), when one exists. */
  recv: RTCStatsReport | undefined;
}

/** What the server forwards to this participant: every video, reduced layers, or audio only. */
export type MediaMode = NotificationData<'mediaModeChanged'>['mode'];
export type MediaModeReason = NotificationData<'mediaModeChanged'>['reason'];
/** Network quality of a participant (score 0 unusable .. 5 excellent), pushed every few seconds. */
export type QualityReport = NotificationData<'qualityUpdate'>;

export interface PublishLayersAdvice {
  producerId: string;
  source: MediaSource | undefined;
  /** Highest simulcast layer still sent (0 = lowest); the SDK already applied it. */
  maxSpatialLayer: number;
}

/** What a consent is for: the teleconsultation itself, a third party's presence, a secondary use. */
export type ConsentPurpose = ConsentText['purpose'];

/**
 * A consent text as the server serves it: show `text` as is (it is what `hash` covers), then pass
 * the same object to `giveConsent()`.
 */
export type ConsentText = RequestResult<'getConsentTexts'>['texts'][number];

/** The patient is asked to consent to a third party (assistant, observer) who waits to join. */
export type ConsentRequest = NotificationData<'consentRequested'>;

export interface GiveConsentOptions {
  /** For a 'third-party' consent: the waiting participant it covers (from `consentRequested`). */
  coversParticipantId?: string;
}

export interface PrecheckOptions {
  /** How long media loops through the server before the measurement (default 5 000 ms, 1 000..30 000). */
  durationMs?: number;
  /** Test the camera (default true); options as for `publishCamera`. The published camera's track is reused. */
  camera?: boolean | CameraOptions;
  /** Test the microphone (default true); options as for `publishMicrophone`. */
  microphone?: boolean | MicrophoneOptions;
  /**
   * Called with each track as it comes back from the server, e.g. to show the camera "as the
   * practitioner will see it". The tracks end when the check ends.
   */
  onTrack?: (track: RemoteTrack) => void;
  /** Send the result to the practitioner's waiting list (default true). */
  report?: boolean;
}

/** The outcome of `runPrecheck()`: what the practitioner sees, plus details for the patient's screen. */
export interface PrecheckReport extends PrecheckResult {
  /** The measurement ran its full duration (false when admission or leaving cut it short). */
  completed: boolean;
  /** The result reached the practitioner's waiting list. */
  reported: boolean;
  /** Video frames decoded from the camera's looped-back stream. */
  framesDecoded: number;
  /** Audio packets received from the microphone's looped-back stream. */
  audioPacketsReceived: number;
  /** The looped-back tracks (ended once the check is over). */
  tracks: RemoteTrack[];
}

/** Room events and their listener arguments. */
export type RoomEvents = {
  participantJoined: [participant: ParticipantInfo];
  participantUpdated: [participant: ParticipantInfo, previous: ParticipantInfo | undefined];
  participantLeft: [participant: ParticipantInfo, reason: string];
  trackAdded: [track: RemoteTrack];
  trackRemoved: [track: RemoteTrack];
  trackMuted: [track: RemoteTrack];
  trackUnmuted: [track: RemoteTrack];
  layersChanged: [track: RemoteTrack];
  localTrackPublished: [track: LocalTrack];
  localTrackUnpublished: [track: LocalTrack];
  connectionStateChanged: [state: ConnectionState];
  /**
   * While 'reconnecting': an attempt starts, because its backoff delay ran out or at once because
   * the network came back ('online' event, or ICE reconnected on a media transport).
   */
  reconnectAttempt: [info: { attempt: number; trigger: ReconnectTrigger }];
  /**
   * This participant's own admission state changed ('waiting' -> 'admitted', 'declined'...); `message`
   * is the practitioner's note when the server sends one (e.g. asked to keep waiting).
   */
  admissionChanged: [state: AdmissionState, message?: string];
  /** Patients: a third party waits to join and needs this patient's consent (`giveConsent(request.text, ...)`). */
  consentRequested: [request: ConsentRequest];
  /** Practitioners: who waits, since when, consents given, pre-call check results, held messages. */
  waitingListChanged: [entries: WaitingEntry[]];
  dataMessage: [message: DataMessage];
  /** Practitioners: a vital-sign reading from a device holder, validated and in order. */
  vitalSign: [event: VitalSignEvent];
  /** Practitioners: a reading was dropped (invalid, out of order, unreadable, in clear, too many). */
  vitalSignRejected: [rejection: VitalSignRejection];
  /** Device holders: a practitioner asks for a device source ("show the ear"). */
  deviceSourceRequested: [request: DeviceSourceRequest];
  /** The server lost this room's media (worker died); the SDK republished local tracks. */
  mediaReset: [];
  /** Video is reduced or paused ('audio-only') for this participant's bandwidth, or back ('full'). */
  mediaModeChanged: [mode: MediaMode, reason: MediaModeReason];
  /** Network quality of this participant, and (for practitioners) of the others. */
  qualityUpdate: [report: QualityReport];
  /** This participant's uplink is weak: the SDK lowered (or restored) the camera's simulcast layers. */
  publishLayersAdvice: [advice: PublishLayersAdvice];
  /** The consultation ended (by the platform or a server shutdown). */
  roomClosed: [reason: 'ended' | 'server-shutdown'];
  /** Failures outside any call the application made (a queued publication, a subscription...). */
  error: [error: TeleconsultError];
};

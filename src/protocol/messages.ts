import { Type, type Static, type TLiteral, type TSchema, type TUnion } from '@sinclair/typebox';
import { ROLES } from './permissions.js';
import { DEVICE_SOURCES, DEVICE_TYPES } from './devices.js';

/**
 * The signalling protocol, version 1: the one source of truth for every message. The server
 * validates each incoming message against these schemas at the boundary; the SDK takes its types
 * from them. Documented in docs/protocol.md.
 *
 * Transport: one WebSocket per participant, subprotocol `teleconsult.v1`, JSON text frames.
 *   client -> server  request       { id, method, params }
 *   server -> client  response      { id, ok: true, result } | { id, ok: false, error }
 *   server -> client  notification  { notification, data }
 */
export const PROTOCOL_VERSION = 1;
export const PROTOCOL_SUBPROTOCOL = 'teleconsult.v1';

const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' });
/** mediasoup's opaque JSON dictionaries (RTP/DTLS/SCTP parameters), size-capped at the frame level. */
const Opaque = Type.Record(Type.String({ maxLength: 64 }), Type.Unknown());

type Literals<T extends readonly string[]> = { -readonly [K in keyof T]: TLiteral<T[K]> };

/** A union of string literals: one of the given values. */
function oneOf<const T extends readonly string[]>(values: T): TUnion<Literals<T>> {
  return Type.Union(values.map((v) => Type.Literal(v))) as unknown as TUnion<Literals<T>>;
}

/** The roles of the permission table (permissions.ts): adding a role there adds it here. */
export const Role = oneOf(ROLES);
export type Role = Static<typeof Role>;

export const AdmissionState = oneOf([
  'invited',
  'waiting',
  'consented',
  'admitted',
  'in-call',
  'left',
  'declined',
  'expired',
  'removed',
] as const);
export type AdmissionState = Static<typeof AdmissionState>;

export const ParticipantInfo = Type.Object({
  id: Id,
  role: Role,
  displayName: Type.String({ maxLength: 128 }),
  state: AdmissionState,
  connected: Type.Boolean(),
  phone: Type.Boolean(),
  e2ee: Type.Boolean(),
  /** The participant's end-to-end encryption public key (opaque to the server), when it has one. */
  e2eeKey: Type.Optional(Type.String({ maxLength: 1024 })),
});
export type ParticipantInfo = Static<typeof ParticipantInfo>;

export const RoomOptions = Type.Object({
  waitingRoom: Type.Boolean({ default: true }),
  e2eeRequired: Type.Boolean({ default: false }),
  phoneAllowed: Type.Boolean({ default: true }),
  maxParticipants: Type.Integer({ minimum: 2, maximum: 1000, default: 4 }),
});
export type RoomOptions = Static<typeof RoomOptions>;

export const DtlsFingerprint = Type.Object({
  algorithm: oneOf(['sha-1', 'sha-224', 'sha-256', 'sha-384', 'sha-512'] as const),
  value: Type.String({ minLength: 10, maxLength: 200, pattern: '^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+$' }),
});

export const DtlsParameters = Type.Object({
  role: Type.Optional(oneOf(['auto', 'client', 'server'] as const)),
  // An empty fingerprint list once killed mediasoup workers: require at least one.
  fingerprints: Type.Array(DtlsFingerprint, { minItems: 1, maxItems: 8 }),
});

const MediaKind = oneOf(['audio', 'video'] as const);
export const MediaSource = oneOf([
  'microphone',
  'camera',
  'screen',
  'phone',
  /** A connected examination camera (otoscope, dermatoscope): detail over motion (docs/devices.md). */
  'examination-video',
  /** A digital stethoscope: unprocessed full-band audio. */
  'examination-audio',
] as const);
export type MediaSource = Static<typeof MediaSource>;
/** Sources a device holder publishes (permission `publishDevice`, received with `receiveDeviceData`). */
export const DeviceSource = oneOf(DEVICE_SOURCES);
/** The device behind a device source, for the journal (devices.ts maps each type to its source). */
export const DeviceType = oneOf(DEVICE_TYPES);

export const ConsentPurposeSchema = oneOf(['teleconsultation', 'third-party', 'secondary-use'] as const);

export const ConsentTextView = Type.Object({
  purpose: ConsentPurposeSchema,
  textId: Type.String(),
  version: Type.String(),
  hash: Type.String(),
  locale: Type.String(),
  text: Type.String(),
});

export const PrecheckResult = Type.Object({
  rttMs: Type.Number({ minimum: 0, maximum: 60000 }),
  lossRatio: Type.Number({ minimum: 0, maximum: 1 }),
  uploadKbps: Type.Number({ minimum: 0, maximum: 1000000 }),
  camera: Type.Boolean(),
  microphone: Type.Boolean(),
});
export type PrecheckResult = Static<typeof PrecheckResult>;

export const WaitingEntry = Type.Object({
  participant: ParticipantInfo,
  since: Type.String(),
  consents: Type.Array(ConsentPurposeSchema),
  /** For a third party: whether the patient consented to its presence. */
  coveredByPatientConsent: Type.Boolean(),
  precheck: Type.Union([PrecheckResult, Type.Null()]),
  heldMessage: Type.Union([Type.String(), Type.Null()]),
});
export type WaitingEntry = Static<typeof WaitingEntry>;

/** A consumer the server created for this participant (paused until the client resumes it). */
export const ConsumerAnnouncement = Type.Object({
  consumerId: Id,
  producerId: Id,
  participantId: Id,
  kind: MediaKind,
  source: MediaSource,
  /** For a device source: the device the holder declared. */
  deviceType: Type.Optional(DeviceType),
  rtpParameters: Opaque,
  producerPaused: Type.Boolean(),
});

/** TURN/STUN servers for the client's ICE agent, with short-lived credentials (coturn REST scheme). */
export const IceServer = Type.Object({
  urls: Type.Array(Type.String()),
  username: Type.Optional(Type.String()),
  credential: Type.Optional(Type.String()),
});

/** What `join` and `resume` both answer. */
const JoinedFields = {
  protocolVersion: Type.Literal(PROTOCOL_VERSION),
  self: ParticipantInfo,
  room: Type.Object({ id: Id, options: RoomOptions }),
  participants: Type.Array(ParticipantInfo),
  routerRtpCapabilities: Opaque,
  resumeToken: Type.String(),
  /** Present when the server issues TURN credentials (turn.* configuration). */
  iceServers: Type.Optional(Type.Array(IceServer)),
};

/** Requests: method name -> params and result schemas. */
export const Requests = {
  join: {
    params: Type.Object({
      /** A join token (JWT); or, instead, an invitation's access code. Exactly one of the two. */
      token: Type.Optional(Type.String({ minLength: 10, maxLength: 8192 })),
      accessCode: Type.Optional(Type.String({ minLength: 4, maxLength: 12, pattern: '^[0-9]+$' })),
      capabilities: Type.Optional(
        Type.Object({
          e2ee: Type.Boolean(),
          /** Public key for end-to-end key exchange (e.g. base64url raw ECDH P-256); relayed, never used by the server. */
          e2eeKey: Type.Optional(
            Type.String({ minLength: 16, maxLength: 1024, pattern: '^[A-Za-z0-9_=-]+$' }),
          ),
        }),
      ),
    }),
    result: Type.Object(JoinedFields),
  },
  resume: {
    params: Type.Object({ resumeToken: Type.String({ minLength: 10, maxLength: 512 }) }),
    result: Type.Object({
      ...JoinedFields,
      /** Transports kept during the grace period; the client restarts ICE on each. */
      transportIds: Type.Array(Id),
      /** Every consumer this participant has now, including any created while it was disconnected. */
      consumers: Type.Array(ConsumerAnnouncement),
    }),
  },
  setRtpCapabilities: {
    params: Type.Object({ rtpCapabilities: Opaque }),
    result: Type.Object({}),
  },
  createTransport: {
    params: Type.Object({
      direction: oneOf(['send', 'recv'] as const),
      sctp: Type.Optional(Type.Boolean()),
      /** Pre-call check while waiting: media on this transport only loops back to the sender. */
      precheck: Type.Optional(Type.Boolean()),
    }),
    result: Type.Object({
      id: Id,
      iceParameters: Opaque,
      iceCandidates: Type.Array(Opaque),
      dtlsParameters: Opaque,
      sctpParameters: Type.Optional(Opaque),
    }),
  },
  connectTransport: {
    params: Type.Object({ transportId: Id, dtlsParameters: DtlsParameters }),
    result: Type.Object({}),
  },
  restartIce: {
    params: Type.Object({ transportId: Id }),
    result: Type.Object({ iceParameters: Opaque }),
  },
  produce: {
    params: Type.Object({
      transportId: Id,
      kind: MediaKind,
      rtpParameters: Opaque,
      source: MediaSource,
      /** Required with a device source (`examination-*`), refused with any other. */
      deviceType: Type.Optional(DeviceType),
    }),
    result: Type.Object({ producerId: Id }),
  },
  pauseProducer: { params: Type.Object({ producerId: Id }), result: Type.Object({}) },
  resumeProducer: { params: Type.Object({ producerId: Id }), result: Type.Object({}) },
  closeProducer: { params: Type.Object({ producerId: Id }), result: Type.Object({}) },
  /** Subscribes again to a producer of this room (consumers are otherwise created by the server). */
  consume: { params: Type.Object({ producerId: Id }), result: Type.Object({}) },
  closeConsumer: { params: Type.Object({ consumerId: Id }), result: Type.Object({}) },
  /** The client has set up the consumer announced by `consumerAdded` and is ready for RTP. */
  resumeConsumer: { params: Type.Object({ consumerId: Id }), result: Type.Object({}) },
  pauseConsumer: { params: Type.Object({ consumerId: Id }), result: Type.Object({}) },
  setConsumerPreferredLayers: {
    params: Type.Object({
      consumerId: Id,
      spatialLayer: Type.Integer({ minimum: 0, maximum: 3 }),
      temporalLayer: Type.Optional(Type.Integer({ minimum: 0, maximum: 3 })),
    }),
    result: Type.Object({}),
  },
  produceData: {
    params: Type.Object({
      transportId: Id,
      sctpStreamParameters: Opaque,
      label: Type.String({ maxLength: 64 }),
      protocol: Type.String({ maxLength: 64 }),
      /**
       * The connection warm-up channel of a participant still waiting: it makes the send transport
       * connect before admission and loops back to its own receive transport, to no one else.
       */
      warmUp: Type.Optional(Type.Boolean()),
      /** `vital-signs`: a device's readings (needs `publishDevice` and a `deviceType` that feeds it). */
      source: Type.Optional(Type.Literal('vital-signs')),
      deviceType: Type.Optional(DeviceType),
    }),
    result: Type.Object({ dataProducerId: Id }),
  },
  /**
   * Practitioner: asks a device holder to publish a device source ("show the ear"). The holder's
   * SDK gets `deviceSourceRequested`; it grants by publishing, which the permission table allows
   * only to the holder's side.
   */
  requestDeviceSource: {
    params: Type.Object({
      participantId: Id,
      source: DeviceSource,
      deviceType: Type.Optional(DeviceType),
      /** Shown to the holder ("l'oreille droite"); not journalled. */
      note: Type.Optional(Type.String({ maxLength: 140 })),
    }),
    result: Type.Object({}),
  },
  /**
   * Practitioner: a still of an examination video it receives, at full resolution. The server
   * asks the sender for a keyframe and sends this consumer its top layer; the practitioner's SDK
   * keeps the next decoded frame. Nothing of the image reaches or stays on the server; the act
   * is journalled (`device.still`).
   */
  captureExaminationStill: {
    params: Type.Object({ producerId: Id }),
    result: Type.Object({ consumerId: Id }),
  },
  getStats: {
    params: Type.Object({ transportId: Id }),
    result: Type.Object({ stats: Type.Array(Opaque) }),
  },
  leave: { params: Type.Object({}), result: Type.Object({}) },
  /**
   * End-to-end encryption: relays an opaque blob (e.g. a sender key wrapped for one recipient) to
   * another admitted participant of the room. The server never reads it.
   */
  e2eeRelay: {
    params: Type.Object({
      to: Id,
      payload: Type.String({ minLength: 1, maxLength: 16384, pattern: '^[A-Za-z0-9_=-]+$' }),
    }),
    result: Type.Object({}),
  },
  /** The size at which the client renders a video consumer; drives layer selection. */
  reportRenderSize: {
    params: Type.Object({
      consumerId: Id,
      width: Type.Integer({ minimum: 0, maximum: 8192 }),
      height: Type.Integer({ minimum: 0, maximum: 8192 }),
    }),
    result: Type.Object({}),
  },
  /** The consent texts this participant may be asked to accept (current version per purpose). */
  getConsentTexts: {
    params: Type.Object({}),
    result: Type.Object({ texts: Type.Array(ConsentTextView) }),
  },
  /**
   * Patient: accepts a consent text (the exact version and hash shown). For 'third-party',
   * `coversParticipantId` names the waiting third party the consent is for.
   */
  giveConsent: {
    params: Type.Object({
      purpose: ConsentPurposeSchema,
      textId: Type.String({ minLength: 1, maxLength: 64 }),
      version: Type.String({ minLength: 1, maxLength: 32 }),
      hash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
      coversParticipantId: Type.Optional(Id),
    }),
    result: Type.Object({}),
  },
  /** Patient: withdraws a consent; its own participation ends, or the third party it covered is removed. */
  withdrawConsent: {
    params: Type.Object({ purpose: ConsentPurposeSchema, coversParticipantId: Type.Optional(Id) }),
    result: Type.Object({}),
  },
  /** Practitioner: who waits, since when, consent and pre-call check state. */
  getWaitingList: { params: Type.Object({}), result: Type.Object({ entries: Type.Array(WaitingEntry) }) },
  /** Practitioner: keep a waiting participant waiting, with a message shown to it. */
  hold: {
    params: Type.Object({ participantId: Id, message: Type.String({ maxLength: 280 }) }),
    result: Type.Object({}),
  },
  /** Waiting participant: the result of its pre-call network check, shown to the practitioner. */
  reportPrecheck: { params: PrecheckResult, result: Type.Object({}) },
  /** Practitioner: let a waiting participant in (consent rules apply, see docs/protocol.md). */
  admit: { params: Type.Object({ participantId: Id }), result: Type.Object({}) },
  /** Practitioner: refuse a waiting participant. */
  decline: { params: Type.Object({ participantId: Id }), result: Type.Object({}) },
} satisfies Record<string, { params: TSchema; result: TSchema }>;

export type Method = keyof typeof Requests;
export type RequestParams<M extends Method> = Static<(typeof Requests)[M]['params']>;
export type RequestResult<M extends Method> = Static<(typeof Requests)[M]['result']>;

/** Notifications the server pushes: name -> data schema. */
export const Notifications = {
  participantJoined: Type.Object({ participant: ParticipantInfo }),
  participantUpdated: Type.Object({ participant: ParticipantInfo }),
  participantLeft: Type.Object({
    participantId: Id,
    reason: Type.Union(['left', 'timeout', 'removed', 'declined', 'room-closed'].map((r) => Type.Literal(r))),
  }),
  consumerAdded: ConsumerAnnouncement,
  consumerClosed: Type.Object({ consumerId: Id }),
  consumerPaused: Type.Object({ consumerId: Id }),
  consumerResumed: Type.Object({ consumerId: Id }),
  consumerLayersChanged: Type.Object({
    consumerId: Id,
    spatialLayer: Type.Union([Type.Integer(), Type.Null()]),
    temporalLayer: Type.Union([Type.Integer(), Type.Null()]),
  }),
  dataConsumerAdded: Type.Object({
    dataConsumerId: Id,
    dataProducerId: Id,
    participantId: Id,
    sctpStreamParameters: Opaque,
    label: Type.String(),
    protocol: Type.String(),
    /** `vital-signs` for a device's readings; absent for an application data channel. */
    source: Type.Optional(Type.Literal('vital-signs')),
    deviceType: Type.Optional(DeviceType),
  }),
  dataConsumerClosed: Type.Object({ dataConsumerId: Id }),
  /**
   * To its sender: the server closed one of its data producers (`DATA_RATE_EXCEEDED`: it stayed over
   * the channel's rate limit for dataChannels.floodCloseS).
   */
  dataProducerClosed: Type.Object({ dataProducerId: Id, code: Type.Literal('DATA_RATE_EXCEEDED') }),
  /** This participant's own admission state changed (admitted, held with a message, declined, ...). */
  admissionChanged: Type.Object({ state: AdmissionState, message: Type.Optional(Type.String()) }),
  /** To practitioners: the waiting list changed. */
  waitingListChanged: Type.Object({ entries: Type.Array(WaitingEntry) }),
  /** To the patient: a third party asks to join and needs the patient's consent. */
  consentRequested: Type.Object({
    purpose: ConsentPurposeSchema,
    participantId: Id,
    role: Role,
    text: ConsentTextView,
  }),
  /** To a device holder: a practitioner asks for a device source (see `requestDeviceSource`). */
  deviceSourceRequested: Type.Object({
    from: Id,
    source: DeviceSource,
    deviceType: Type.Optional(DeviceType),
    note: Type.Optional(Type.String()),
  }),
  /** An opaque end-to-end encryption blob from another participant (see `e2eeRelay`). */
  e2eeMessage: Type.Object({ from: Id, payload: Type.String() }),
  /** Network quality of a participant, 0 (unusable) to 5 (excellent); sent to itself and to practitioners. */
  qualityUpdate: Type.Object({
    participantId: Id,
    score: Type.Integer({ minimum: 0, maximum: 5 }),
    rttMs: Type.Union([Type.Number(), Type.Null()]),
    lossRatio: Type.Union([Type.Number(), Type.Null()]),
    jitterMs: Type.Union([Type.Number(), Type.Null()]),
    availableKbps: Type.Union([Type.Number(), Type.Null()]),
    /** Sustained poor quality: the practitioner's UI should offer the phone fallback. */
    suggestPhoneFallback: Type.Boolean(),
  }),
  /** This receiver's video mode changed: full, reduced layers, or audio only (video paused). */
  mediaModeChanged: Type.Object({
    mode: oneOf(['full', 'reduced', 'audio-only'] as const),
    reason: oneOf(['bandwidth', 'recovered', 'render-size', 'priority'] as const),
  }),
  /** The sender's uplink is weak: send at most these simulcast layers (indices from 0). */
  publishLayersAdvice: Type.Object({
    producerId: Id,
    maxSpatialLayer: Type.Integer({ minimum: -1, maximum: 3 }),
  }),
  /** Media of the room was lost (e.g. its worker died); transports must be created again. */
  mediaReset: Type.Object({ reason: oneOf(['worker-died'] as const) }),
  roomClosed: Type.Object({ reason: oneOf(['ended', 'server-shutdown'] as const) }),
} satisfies Record<string, TSchema>;

export type NotificationName = keyof typeof Notifications;
export type NotificationData<N extends NotificationName> = Static<(typeof Notifications)[N]>;

export const ErrorBody = Type.Object({
  code: Type.String(),
  message: Type.String(),
  detail: Type.Optional(Type.String()),
  /** With ROOM_ELSEWHERE: the base URL of the node hosting the room (cluster mode). */
  location: Type.Optional(Type.String()),
});
export type ErrorBody = Static<typeof ErrorBody>;

export const RequestEnvelope = Type.Object({
  id: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  method: Type.String({ maxLength: 64 }),
  params: Type.Optional(Type.Unknown()),
});
export type RequestEnvelope = Static<typeof RequestEnvelope>;

/** `id` is null only when the request could not be read far enough to know its id. */
export type ResponseEnvelope =
  { id: number; ok: true; result: unknown } | { id: number | null; ok: false; error: ErrorBody };

export interface NotificationEnvelope<N extends NotificationName = NotificationName> {
  notification: N;
  data: NotificationData<N>;
}

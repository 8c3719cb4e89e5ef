import { withoutCaptureTimeExtension } from '../media/captureTime.js';
import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Config } from '../config/schema.js';
import { SfuError } from '../errors/catalogue.js';
import type { MediaSource, NotificationData, NotificationName, RoomOptions } from '../protocol/messages.js';
import { exchangesMedia as exchangesMediaState } from './admission.js';
import type { Participant, StateChange } from './participant.js';
import { sourceOf } from './participant.js';
import { permits, roleMay, type Action } from '../protocol/permissions.js';
import { deviceFeeds, isDeviceSource, type DeviceSource, type DeviceType } from '../protocol/devices.js';
import { checkDeviceRtpParameters } from './deviceProfiles.js';
import { udpReceiveBufferOption } from '../media/socketBuffers.js';
import type { DataChannelClass, DataRateGuard } from './dataRateGuard.js';

export interface RoomDeps {
  log: Logger;
  metrics: Metrics;
  limits: Config['limits'];
  media: Config['media'];
  dataChannels: Config['dataChannels'];
  /** Rate limits of data producers (shared by the process's rooms). */
  dataRateGuard: DataRateGuard;
  /** Finds a router for the room on a live worker (used again after a worker death). */
  placeRouter(
    avoidWorkerPid?: number,
  ): Promise<{ router: types.Router; webRtcServer: types.WebRtcServer | undefined }>;
  onClosed(room: Room): void;
  /**
   * Once the room's router carries this many consumers, newcomers' transports go to a router on
   * another worker, fed through pipeToRouter; 0 keeps a room on one router.
   */
  spanConsumersPerRouter?: number;
  /** Layer selection hook (bandwidth adaptation). */
  onRenderSize?(participant: Participant, consumer: types.Consumer, width: number, height: number): void;
}

/** Why a participant left the room's map. */
export type DepartureReason = 'left' | 'timeout' | 'removed' | 'declined' | 'replaced';

/**
 * The room's domain events, for in-process subscribers (phone gateway, cluster, quality): they
 * learn what happened instead of reaching into participants. Emitted after the change is made.
 */
export interface RoomEvents {
  /** A new incarnation entered the room (in whatever state it arrived). */
  participantJoined: [Participant];
  /** Every change of a current incarnation's admission state (through the state table). */
  stateChanged: [Participant, StateChange];
  /** A participant's connection dropped; it is kept for the resume grace period. */
  connectionLost: [Participant];
  /** A participant resumed on a new connection (its resume token renewed); `wasConnected`: it replaced a live one. */
  resumed: [Participant, wasConnected: boolean];
  /** The room's media worker died; its media is moving to another (see watchRouter). */
  mediaLost: [];
  /** A participant may now exchange media (its admission, or its arrival admitted). */
  admitted: [Participant];
  /** A participant left the room's map for good; its media is closed. */
  removed: [Participant, DepartureReason];
  /** The patient withdrew a consent; `covering` is the third party it covered, if any. */
  consentWithdrawn: [patient: Participant, covering: Participant | undefined];
  /** A participant's producer is now offered to the room (not pre-call check producers). */
  mediaAdded: [types.Producer, Participant];
  /** A device source started (a producer or a vital-signs channel offered to the room). */
  deviceStarted: [DeviceUse];
  /** It stopped (closed by its holder, or with the holder's media); `durationMs` since it started. */
  deviceStopped: [DeviceUse, durationMs: number];
  /** A practitioner asked a device holder for a device source. */
  deviceRequested: [DeviceRequest];
  /** A practitioner took a still of an examination video (the image never reaches the server). */
  deviceStill: [DeviceStill];
}

/** One use of a connected device, as the journal records it (never its readings). */
export interface DeviceUse {
  /** The producer or data producer carrying it. */
  id: string;
  participant: Participant;
  source: DeviceSource;
  deviceType: DeviceType;
  startedAt: Date;
}

export interface DeviceStill {
  by: Participant;
  holder: Participant;
  /** The examination video's producer. */
  producerId: string;
  deviceType: DeviceType | undefined;
}

export interface DeviceRequest {
  by: Participant;
  holder: Participant;
  source: DeviceSource;
  deviceType: DeviceType | undefined;
}

interface Placement {
  router: types.Router;
  webRtcServer: types.WebRtcServer | undefined;
}

/**
 * A consultation: its participants and its router. Enforces who may exchange media with whom:
 * only admitted participants of this room, as the permission table allows, whatever
 * `router.canConsume()` would allow. It holds one incarnation per identity: every lookup and
 * removal compares objects, so an older incarnation can never act on a newer one.
 */
export class Room {
  readonly #participants = new Map<string, Participant>();
  /** Domain events (see RoomEvents). */
  readonly events = new EventEmitter<RoomEvents>();
  readonly createdAt = new Date();
  closed = false;
  private router: types.Router;
  private webRtcServer: types.WebRtcServer | undefined;
  /** Extra routers on other workers when the room spans workers (see placementFor). */
  private spans: Placement[] = [];
  /** Producers already piped to a router: `${producerId}>${routerId}`. */
  private readonly pipes = new Map<string, Promise<void>>();
  /** Producers made on a phone leg's plain transport, and whose leg it is (see adoptProducer). */
  private readonly legProducers = new WeakMap<types.Producer, Participant>();
  private readonly log: Logger;

  constructor(
    readonly id: string,
    readonly options: RoomOptions,
    placement: { router: types.Router; webRtcServer: types.WebRtcServer | undefined },
    private readonly deps: RoomDeps,
  ) {
    this.router = placement.router;
    this.webRtcServer = placement.webRtcServer;
    this.log = deps.log.child({ module: 'room', room: id });
    this.watchRouter();
  }

  /** The router media lives on now (it changes if its worker dies). */
  get currentRouter(): types.Router {
    return this.router;
  }

  get rtpCapabilities(): types.RtpCapabilities {
    return this.router.rtpCapabilities;
  }

  get workerPid(): number | undefined {
    return (this.router.appData as { workerPid?: number }).workerPid;
  }

  /** The current incarnation per identity. Read-only: participants enter by `add` and go by `removeParticipant`. */
  get participants(): ReadonlyMap<string, Participant> {
    return this.#participants;
  }

  /** Whether `participant` is the current incarnation of its identity in this room. */
  holds(participant: Participant): boolean {
    return this.#participants.get(participant.id) === participant;
  }

  /** Takes a new incarnation in; the previous one of that identity must have been removed first. */
  add(participant: Participant): void {
    if (this.closed) throw new SfuError('ROOM_CLOSED');
    if (this.#participants.has(participant.id)) throw new SfuError('INVALID_STATE', 'already present');
    this.#participants.set(participant.id, participant);
    participant.observer.on('stateChanged', (change) => {
      if (!this.holds(participant)) return;
      this.events.emit('stateChanged', participant, change);
      if (!exchangesMediaState(change.from) && exchangesMediaState(change.to))
        this.events.emit('admitted', participant);
    });
    this.events.emit('participantJoined', participant);
    if (participant.mayExchangeMedia) this.events.emit('admitted', participant);
  }

  activeParticipants(): Participant[] {
    return [...this.#participants.values()].filter((p) => p.active);
  }

  broadcast<N extends NotificationName>(name: N, data: NotificationData<N>, except?: Participant): void {
    for (const participant of this.#participants.values()) {
      if (participant !== except && participant.active) participant.link?.notify(name, data);
    }
  }

  /** Makes a participant able to exchange media: consumes what others publish, and the reverse. */
  async onAdmitted(participant: Participant): Promise<void> {
    await this.consumeEverything(participant);
    for (const other of this.#participants.values()) {
      if (other === participant || !other.mayExchangeMedia) continue;
      for (const producer of participant.producers.values())
        await this.consumeSafely(other, participant, producer);
      for (const dataProducer of participant.dataProducers.values())
        await this.consumeDataSafely(other, participant, dataProducer);
    }
  }

  /**
   * A transport for media with the room (created ahead by a participant still waiting: nothing
   * flows on it until admission but its own warm-up channel), or a pre-call check transport whose
   * media only loops back to itself.
   */
  async createTransport(
    participant: Participant,
    direction: 'send' | 'recv',
    sctp: boolean,
    precheck = false,
  ) {
    if (precheck) {
      if (this.closed) throw new SfuError('ROOM_CLOSED');
      if (!this.holds(participant) || !permits(participant.role, participant.state, 'precheck'))
        throw new SfuError('INVALID_STATE', 'pre-call check is for waiting participants');
    } else {
      this.requireMedia(participant, 'prepare');
    }
    if (participant.transports.size >= this.deps.limits.maxTransportsPerParticipant) {
      throw new SfuError('LIMIT_EXCEEDED', 'transports');
    }
    const placement = await this.placementFor(participant);
    const listen = placement.webRtcServer
      ? { webRtcServer: placement.webRtcServer }
      : {
          listenInfos: (['udp', 'tcp'] as const).map((protocol) => ({
            protocol,
            ip: this.deps.media.listenIp,
            ...(this.deps.media.announcedAddress
              ? { announcedAddress: this.deps.media.announcedAddress }
              : {}),
            ...(protocol === 'udp' ? udpReceiveBufferOption(this.deps.media.udpReceiveBufferBytes) : {}),
          })),
        };
    const transport = await placement.router.createWebRtcTransport({
      ...listen,
      enableUdp: true,
      enableTcp: true,
      preferUdp: true,
      enableSctp: sctp,
      // Worker-side bounds on data channels: larger messages are dropped on arrival, and a slow
      // receiver's queue per stream stays bounded (rates: dataRateGuard.ts).
      ...(sctp
        ? {
            maxReceiveMessageSize: this.deps.dataChannels.maxMessageBytes,
            maxSendMessageSize: this.deps.dataChannels.maxMessageBytes,
            sctpPerStreamSendQueueLimit: this.deps.dataChannels.sendQueueBytes,
          }
        : {}),
      iceConsentTimeout: this.deps.media.iceConsentTimeoutS,
      initialAvailableOutgoingBitrate: this.deps.media.initialOutgoingBitrate,
      appData: { participantId: participant.id, direction, precheck },
    });
    if (precheck) participant.precheckTransportIds.add(transport.id);
    if (direction === 'send') {
      await transport.setMaxIncomingBitrate(this.deps.media.maxIncomingBitrate).catch(() => undefined);
    }
    participant.transports.set(transport.id, transport);
    participant.transportDirections.set(transport.id, direction);
    this.deps.metrics.transports.inc();
    // ICE turns 'disconnected' when the peer sent no consent check for media.iceConsentTimeoutS (it
    // went silent) or its last TCP connection closed. The transport stays, so that the client's ICE
    // restart can bring it back.
    transport.on('icestatechange', (state) => {
      if (state !== 'disconnected') return;
      this.deps.metrics.iceDisconnects.inc();
      this.log.warn(
        { participant: participant.id, transport: transport.id, direction },
        'ICE disconnected: peer silent',
      );
    });
    transport.observer.once('close', () => {
      this.deps.metrics.transports.dec();
      participant.transports.delete(transport.id);
      participant.transportDirections.delete(transport.id);
      participant.precheckTransportIds.delete(transport.id);
    });
    if (direction === 'recv')
      void (precheck ? this.consumeLoopback(participant) : this.consumeEverything(participant));
    return {
      id: transport.id,
      iceParameters: transport.iceParameters as unknown as Record<string, unknown>,
      iceCandidates: transport.iceCandidates as unknown as Record<string, unknown>[],
      dtlsParameters: transport.dtlsParameters as unknown as Record<string, unknown>,
      ...(transport.sctpParameters
        ? { sctpParameters: transport.sctpParameters as unknown as Record<string, unknown> }
        : {}),
    };
  }

  transportOf(participant: Participant, transportId: string): types.WebRtcTransport {
    const transport = participant.transports.get(transportId);
    if (!transport) throw new SfuError('TRANSPORT_NOT_FOUND');
    return transport;
  }

  async setRtpCapabilities(participant: Participant, caps: types.RtpCapabilities): Promise<void> {
    participant.setRtpCapabilities(caps);
    await this.consumeEverything(participant);
  }

  async produce(
    participant: Participant,
    transportId: string,
    kind: types.MediaKind,
    rtpParameters: types.RtpParameters,
    source: MediaSource,
    deviceType?: DeviceType,
  ): Promise<string> {
    const transport = this.transportOf(participant, transportId);
    const precheck = participant.precheckTransportIds.has(transportId);
    const device = isDeviceSource(source);
    if (!precheck) this.requireMedia(participant, 'publish');
    else if (!permits(participant.role, participant.state, 'precheck'))
      throw new SfuError('INVALID_STATE', 'pre-call check is for waiting participants');
    if (device) {
      this.requireDeviceHolder(participant, precheck);
      requireDeviceType(source, deviceType);
      if ((source === 'examination-video') !== (kind === 'video'))
        throw new SfuError('MESSAGE_INVALID', `${source} has the wrong kind`);
      const refusal = checkDeviceRtpParameters(source, rtpParameters);
      if (refusal) throw new SfuError('RTP_PARAMETERS_INVALID', refusal);
    } else if (deviceType !== undefined) {
      throw new SfuError('MESSAGE_INVALID', 'deviceType is for device sources');
    }
    // Nothing in clear reaches others in an e2eeRequired room (a pre-call check loops back only).
    if (!precheck && this.options.e2eeRequired && !participant.e2ee) throw new SfuError('E2EE_REQUIRED');
    if (participant.transportDirections.get(transportId) !== 'send')
      throw new SfuError('INVALID_STATE', 'not a send transport');
    if (participant.producers.size >= this.deps.limits.maxProducersPerParticipant) {
      throw new SfuError('LIMIT_EXCEEDED', 'producers');
    }
    let producer: types.Producer;
    try {
      producer = await transport.produce({
        kind,
        rtpParameters: withoutCaptureTimeExtension(rtpParameters),
        appData: { participantId: participant.id, source, precheck, ...(device ? { deviceType } : {}) },
      });
    } catch (err) {
      // Bad parameters are a TypeError, a conflict (an SSRC or MID already in use) an Error.
      if (transport.closed) throw new SfuError('TRANSPORT_NOT_FOUND');
      throw new SfuError('RTP_PARAMETERS_INVALID', (err as Error).message.slice(0, 120));
    }
    participant.producers.set(producer.id, producer);
    this.deps.metrics.producers.inc({ kind });
    producer.observer.once('close', () => {
      this.deps.metrics.producers.dec({ kind });
      participant.producers.delete(producer.id);
    });
    if (precheck) {
      await this.consumeLoopback(participant);
      return producer.id;
    }
    if (device && deviceType) this.trackDeviceUse(producer, participant, source, deviceType);
    await this.offer(participant, producer);
    return producer.id;
  }

  /** Journals a device source for as long as its (data) producer lives. */
  private trackDeviceUse(
    carrier: types.Producer | types.DataProducer,
    participant: Participant,
    source: DeviceSource,
    deviceType: DeviceType,
  ): void {
    const use: DeviceUse = { id: carrier.id, participant, source, deviceType, startedAt: new Date() };
    const stopped = () => this.events.emit('deviceStopped', use, Date.now() - use.startedAt.getTime());
    if ('kind' in carrier) carrier.observer.once('close', stopped);
    else carrier.observer.once('close', stopped);
    this.events.emit('deviceStarted', use);
  }

  /** Only the device holder's side publishes device sources (the permission table's `publishDevice`). */
  private requireDeviceHolder(participant: Participant, precheck: boolean): void {
    if (!roleMay(participant.role, 'publishDevice')) throw new SfuError('FORBIDDEN_FOR_ROLE');
    if (!precheck) this.requireMedia(participant, 'publishDevice');
  }

  /**
   * A practitioner asks a device holder for a device source. Only the table's `requestDevice`
   * roles ask, only a `publishDevice` holder of this room is asked; anyone else is NOT_FOUND, as a
   * participant that does not exist.
   */
  requestDeviceSource(
    by: Participant,
    holderId: string,
    source: DeviceSource,
    deviceType: DeviceType | undefined,
    note: string | undefined,
  ): void {
    if (!roleMay(by.role, 'requestDevice')) throw new SfuError('FORBIDDEN_FOR_ROLE');
    this.requireMedia(by, 'requestDevice');
    if (deviceType !== undefined && !deviceFeeds(deviceType, source))
      throw new SfuError('MESSAGE_INVALID', `a ${deviceType} does not feed ${source}`);
    const holder = this.#participants.get(holderId);
    if (!holder || holder === by || !permits(holder.role, holder.state, 'publishDevice'))
      throw new SfuError('NOT_FOUND');
    holder.link?.notify('deviceSourceRequested', {
      from: by.id,
      source,
      ...(deviceType ? { deviceType } : {}),
      ...(note ? { note } : {}),
    });
    this.events.emit('deviceRequested', { by, holder, source, deviceType });
  }

  /**
   * A practitioner wants a still of an examination video it receives: its consumer goes to the top
   * layer and the sender is asked for a keyframe, so that the next frame the practitioner decodes
   * is complete and at full resolution. Only the table's `receiveDeviceData` roles (what they
   * receive is theirs to keep); an unknown producer, or one this participant does not receive as
   * examination video, is NOT_FOUND; a paused one (its holder muted it) is INVALID_STATE. Returns
   * the consumer id.
   */
  async captureExaminationStill(by: Participant, producerId: string): Promise<string> {
    if (!roleMay(by.role, 'receiveDeviceData')) throw new SfuError('FORBIDDEN_FOR_ROLE');
    this.requireMedia(by, 'receiveDeviceData');
    const consumer = [...by.consumers.values()].find(
      (c) =>
        !c.closed &&
        c.producerId === producerId &&
        (c.appData as { source?: MediaSource }).source === 'examination-video',
    );
    if (!consumer) throw new SfuError('NOT_FOUND', 'no examination video received from this producer');
    const holder = this.#participants.get(
      (consumer.appData as { participantId?: string }).participantId ?? '',
    );
    if (!holder) throw new SfuError('NOT_FOUND');
    // A paused video sends no keyframe: say so now rather than let the SDK wait for a frame.
    if (consumer.paused || consumer.producerPaused)
      throw new SfuError('INVALID_STATE', 'the examination video is paused');
    if (consumer.type === 'simulcast' || consumer.type === 'svc') {
      const layers = consumer.rtpParameters.encodings?.length ?? 1;
      await consumer.setPreferredLayers({ spatialLayer: Math.max(0, layers - 1) }).catch(() => undefined);
    }
    await consumer.requestKeyFrame();
    const deviceType = (consumer.appData as { deviceType?: DeviceType }).deviceType;
    this.events.emit('deviceStill', { by, holder, producerId, deviceType });
    return consumer.id;
  }

  /**
   * A phone leg's plain transport towards the gateway's relay socket, on the room's router and
   * owned by the participant's incarnation like its WebRTC transports: removal, decline, consent
   * withdrawal and the room's end close it with the rest of its media (docs/closures.md).
   */
  async createPlainTransport(
    participant: Participant,
    options: { listenIp: string; appData?: Record<string, unknown> },
  ): Promise<types.PlainTransport> {
    if (!participant.phone) throw new SfuError('INVALID_STATE', 'plain transports are for phone legs');
    this.requireMedia(participant);
    if (participant.plainTransports.size >= this.deps.limits.maxTransportsPerParticipant)
      throw new SfuError('LIMIT_EXCEEDED', 'transports');
    const transport = await this.router.createPlainTransport({
      listenIp: options.listenIp,
      rtcpMux: true,
      comedia: false,
      appData: { ...options.appData, participantId: participant.id, phone: true },
    });
    // Removed, or the room ended, while the transport was being made: it must not outlive them.
    if (this.closed || !this.holds(participant) || !participant.mayExchangeMedia) {
      transport.close();
      throw new SfuError(this.closed ? 'ROOM_CLOSED' : 'NOT_ADMITTED');
    }
    participant.plainTransports.set(transport.id, transport);
    this.deps.metrics.transports.inc();
    transport.observer.on('newproducer', (producer) => this.legProducers.set(producer, participant));
    transport.observer.once('close', () => {
      this.deps.metrics.transports.dec();
      participant.plainTransports.delete(transport.id);
    });
    return transport;
  }

  /**
   * Takes a producer made on the participant's plain transport (the phone gateway's, see
   * createPlainTransport) as the participant's own, and offers it to the room.
   */
  async adoptProducer(participant: Participant, producer: types.Producer): Promise<void> {
    this.requireMedia(participant, 'publish');
    // Only what was made on this participant's own leg, in this room: anything else would publish
    // media under its name (or another room's) past every check a producer gets on the way in.
    if (this.legProducers.get(producer) !== participant || producer.closed)
      throw new SfuError('INVALID_STATE', "not a producer of this participant's phone leg");
    participant.producers.set(producer.id, producer);
    this.deps.metrics.producers.inc({ kind: producer.kind });
    producer.observer.once('close', () => {
      this.deps.metrics.producers.dec({ kind: producer.kind });
      participant.producers.delete(producer.id);
    });
    await this.offer(participant, producer);
  }

  /** Every other admitted participant gets a consumer of the producer. */
  private async offer(participant: Participant, producer: types.Producer): Promise<void> {
    this.markMediaStarted(participant);
    for (const other of this.#participants.values()) {
      if (other !== participant) await this.consumeSafely(other, participant, producer);
    }
    this.events.emit('mediaAdded', producer, participant);
  }

  producerOf(participant: Participant, producerId: string): types.Producer {
    const producer = participant.producers.get(producerId);
    if (!producer) throw new SfuError('PRODUCER_NOT_FOUND');
    return producer;
  }

  consumerOf(participant: Participant, consumerId: string): types.Consumer {
    const consumer = participant.consumers.get(consumerId);
    if (!consumer) throw new SfuError('CONSUMER_NOT_FOUND');
    return consumer;
  }

  /** An explicit subscription; the producer must belong to an admitted participant of this room. */
  async consumeById(receiver: Participant, producerId: string): Promise<void> {
    this.requireMedia(receiver);
    for (const owner of this.#participants.values()) {
      const producer = owner.producers.get(producerId);
      if (producer && owner !== receiver && owner.mayExchangeMedia) {
        if (!receiver.recvTransport() || !receiver.rtpCapabilities)
          throw new SfuError('INVALID_STATE', 'no receive transport');
        const consumed = await this.consume(receiver, owner, producer);
        if (!consumed) throw new SfuError('CANNOT_CONSUME');
        return;
      }
    }
    // Same answer for a producer of another room and one that does not exist.
    throw new SfuError('PRODUCER_NOT_FOUND');
  }

  async produceData(
    participant: Participant,
    transportId: string,
    sctpStreamParameters: types.SctpStreamParameters,
    label: string,
    protocol: string,
    warmUp = false,
    device?: { source: 'vital-signs'; deviceType: DeviceType | undefined },
  ): Promise<string> {
    if (warmUp && device) throw new SfuError('MESSAGE_INVALID', 'a warm-up channel carries no device');
    if (warmUp) return this.produceWarmUp(participant, transportId, sctpStreamParameters, label, protocol);
    // A role that never holds a device is told so whatever its state (the table's rule).
    if (device && !roleMay(participant.role, 'publishDevice')) throw new SfuError('FORBIDDEN_FOR_ROLE');
    this.requireMedia(participant, 'publish');
    if (device) {
      this.requireDeviceHolder(participant, false);
      requireDeviceType(device.source, device.deviceType);
    }
    const transport = this.transportOf(participant, transportId);
    if (participant.dataProducers.size >= this.deps.limits.maxProducersPerParticipant) {
      throw new SfuError('LIMIT_EXCEEDED', 'data producers');
    }
    let dataProducer: types.DataProducer;
    try {
      dataProducer = await transport.produceData({
        sctpStreamParameters,
        label,
        protocol,
        appData: { participantId: participant.id, ...(device ?? {}) },
      });
    } catch (err) {
      // TypeError for bad parameters, Error for a conflict (a stream id already in use).
      if (transport.closed) throw new SfuError('TRANSPORT_NOT_FOUND');
      throw new SfuError('MESSAGE_INVALID', (err as Error).message.slice(0, 120));
    }
    participant.dataProducers.set(dataProducer.id, dataProducer);
    dataProducer.observer.once('close', () => participant.dataProducers.delete(dataProducer.id));
    this.limitRate(participant, dataProducer, device ? 'vital-signs' : 'application');
    if (device?.deviceType) this.trackDeviceUse(dataProducer, participant, device.source, device.deviceType);
    for (const other of this.#participants.values()) {
      if (other !== participant) await this.consumeDataSafely(other, participant, dataProducer);
    }
    return dataProducer.id;
  }

  /**
   * Connect ahead: a waiting participant's data channel on its room send transport, whose only
   * purpose is to make that transport (and, through the loop back to its own receive transport,
   * that one too) run ICE and DTLS before admission. It is offered to no one and closed at admission.
   */
  private async produceWarmUp(
    participant: Participant,
    transportId: string,
    sctpStreamParameters: types.SctpStreamParameters,
    label: string,
    protocol: string,
  ): Promise<string> {
    this.requireMedia(participant, 'prepare');
    if (permits(participant.role, participant.state, 'receive'))
      throw new SfuError('INVALID_STATE', 'a warm-up channel is for participants still waiting');
    const transport = this.transportOf(participant, transportId);
    if (
      participant.precheckTransportIds.has(transportId) ||
      participant.transportDirections.get(transportId) !== 'send'
    )
      throw new SfuError('INVALID_STATE', 'not a room send transport');
    if ([...participant.dataProducers.values()].some(isWarmUp))
      throw new SfuError('LIMIT_EXCEEDED', 'warm-up channels');
    let dataProducer: types.DataProducer;
    try {
      dataProducer = await transport.produceData({
        sctpStreamParameters,
        label,
        protocol,
        appData: { participantId: participant.id, warmUp: true },
      });
    } catch (err) {
      if (transport.closed) throw new SfuError('TRANSPORT_NOT_FOUND');
      throw new SfuError('MESSAGE_INVALID', (err as Error).message.slice(0, 120));
    }
    participant.dataProducers.set(dataProducer.id, dataProducer);
    dataProducer.observer.once('close', () => participant.dataProducers.delete(dataProducer.id));
    this.limitRate(participant, dataProducer, 'application');
    const recv = participant.recvTransport();
    if (recv?.sctpParameters) {
      const loop = await recv.consumeData({
        dataProducerId: dataProducer.id,
        appData: { participantId: participant.id, warmUp: true },
      });
      this.registerDataConsumer(participant, participant, dataProducer, loop);
    }
    return dataProducer.id;
  }

  /**
   * Ends what a participant had only while waiting (on admission): its pre-call check loopback
   * transports and its warm-up channel close; its room transports, connected ahead, stay.
   */
  endWaitingMedia(participant: Participant): void {
    for (const id of [...participant.precheckTransportIds]) participant.transports.get(id)?.close();
    participant.precheckTransportIds.clear();
    // The loop back is closed here, not left to the worker's dataproducerclose: from admission on,
    // nothing of the waiting time may remain.
    for (const loop of [...participant.dataConsumers.values()]) {
      if (!(loop.appData as { warmUp?: boolean }).warmUp || loop.closed) continue;
      loop.close();
      participant.link?.notify('dataConsumerClosed', { dataConsumerId: loop.id });
    }
    for (const dataProducer of [...participant.dataProducers.values()])
      if (isWarmUp(dataProducer)) dataProducer.close();
  }

  /** Pre-call check: a waiting participant's own producers come back to it, and to no one else. */
  private async consumeLoopback(participant: Participant): Promise<void> {
    const transport = [...participant.precheckTransportIds]
      .filter((id) => participant.transportDirections.get(id) === 'recv')
      .map((id) => participant.transports.get(id))[0];
    const caps = participant.rtpCapabilities;
    if (!transport || !caps || participant.mayExchangeMedia) return;
    for (const producer of participant.producers.values()) {
      if (!(producer.appData as { precheck?: boolean }).precheck) continue;
      if ([...participant.consumers.values()].some((c) => c.producerId === producer.id)) continue;
      if (!this.routerOf(participant).canConsume({ producerId: producer.id, rtpCapabilities: caps }))
        continue;
      const consumer = await transport.consume({
        producerId: producer.id,
        rtpCapabilities: caps,
        paused: true,
        appData: { participantId: participant.id, source: sourceOf(producer), precheck: true },
      });
      this.registerConsumer(participant, participant, producer, consumer);
    }
  }

  /** Passes an opaque end-to-end encryption blob between two admitted participants of this room. */
  relayE2ee(from: Participant, to: string, payload: string): void {
    this.requireMedia(from);
    const recipient = this.#participants.get(to);
    if (!recipient || recipient === from || !recipient.mayExchangeMedia) throw new SfuError('NOT_FOUND');
    recipient.link?.notify('e2eeMessage', { from: from.id, payload });
  }

  setRenderSize(participant: Participant, consumerId: string, width: number, height: number): void {
    const consumer = this.consumerOf(participant, consumerId);
    participant.renderSizes.set(consumer.id, { width, height });
    consumer.observer.once('close', () => participant.renderSizes.delete(consumer.id));
    this.deps.onRenderSize?.(participant, consumer, width, height);
  }

  /**
   * Removes a participant from the room for good, closing its media. Only the current incarnation
   * is removed: an older one (a stale socket's, a late timer's) finds itself gone and nothing happens.
   */
  removeParticipant(participant: Participant, reason: DepartureReason): boolean {
    if (!this.holds(participant)) return false;
    participant.stopGrace();
    this.closeFlowsFrom(participant);
    participant.closeMedia();
    this.#participants.delete(participant.id);
    this.broadcast('participantLeft', {
      participantId: participant.id,
      reason: reason === 'replaced' ? 'left' : reason,
    });
    this.events.emit('removed', participant, reason);
    return true;
  }

  /**
   * Closes, now, every consumer other participants hold of this owner's media. Closing the owner's
   * transports alone leaves them open until the worker's `producerclose` arrives, a window in
   * which the room would hold a flow from someone no longer in it.
   */
  private closeFlowsFrom(owner: Participant): void {
    const producerIds = new Set(owner.producers.keys());
    const dataProducerIds = new Set(owner.dataProducers.keys());
    for (const receiver of this.#participants.values()) {
      if (receiver === owner) continue;
      for (const consumer of [...receiver.consumers.values()]) {
        if (!producerIds.has(consumer.producerId) || consumer.closed) continue;
        consumer.close();
        receiver.link?.notify('consumerClosed', { consumerId: consumer.id });
      }
      for (const dataConsumer of [...receiver.dataConsumers.values()]) {
        if (!dataProducerIds.has(dataConsumer.dataProducerId) || dataConsumer.closed) continue;
        dataConsumer.close();
        receiver.link?.notify('dataConsumerClosed', { dataConsumerId: dataConsumer.id });
      }
    }
  }

  close(reason: 'ended' | 'server-shutdown'): void {
    if (this.closed) return;
    this.closed = true;
    for (const participant of this.#participants.values()) {
      participant.stopGrace();
      participant.link?.notify('roomClosed', { reason });
      participant.detach()?.close('room closed');
      participant.closeMedia();
      this.events.emit('removed', participant, 'removed');
    }
    this.#participants.clear();
    this.router.close();
    for (const span of this.spans) span.router.close();
    this.spans = [];
    this.deps.onClosed(this);
  }

  /** The permission table decides; a participant that is not (or no longer) the room's own is refused too. */
  private requireMedia(participant: Participant, action: Action = 'receive'): void {
    if (this.closed) throw new SfuError('ROOM_CLOSED');
    if (!this.holds(participant) || !permits(participant.role, participant.state, action))
      throw new SfuError('NOT_ADMITTED');
  }

  /** The participant's first media (its own producer, or a consumer it resumed). */
  markMediaStarted(participant: Participant): void {
    if (participant.state === 'admitted') participant.transition('startMedia');
  }

  private async consumeEverything(receiver: Participant): Promise<void> {
    if (!receiver.mayExchangeMedia || !receiver.recvTransport()) return;
    for (const owner of this.#participants.values()) {
      if (owner === receiver || !owner.mayExchangeMedia) continue;
      if (receiver.rtpCapabilities) {
        for (const producer of owner.producers.values()) await this.consumeSafely(receiver, owner, producer);
      }
      for (const dataProducer of owner.dataProducers.values())
        await this.consumeDataSafely(receiver, owner, dataProducer);
    }
  }

  private async consumeSafely(
    receiver: Participant,
    owner: Participant,
    producer: types.Producer,
  ): Promise<void> {
    try {
      await this.consume(receiver, owner, producer);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not create consumer');
    }
  }

  /** Creates a paused consumer and announces it; the client resumes it once ready. */
  private async consume(
    receiver: Participant,
    owner: Participant,
    producer: types.Producer,
  ): Promise<boolean> {
    // Rights first: membership and admission of both sides. canConsume() is only a codec check.
    const source = sourceOf(producer);
    const action = isDeviceSource(source) ? 'receiveDeviceData' : 'receive';
    if (!this.mayFlow(owner, receiver, action) || producer.closed) return false;
    if ((producer.appData as { precheck?: boolean }).precheck) return false;
    const transport = receiver.recvTransport();
    const caps = receiver.rtpCapabilities;
    if (!transport || !caps) return false;
    for (const existing of receiver.consumers.values()) if (existing.producerId === producer.id) return true;
    if (receiver.consumers.size >= this.deps.limits.maxConsumersPerParticipant)
      throw new SfuError('LIMIT_EXCEEDED', 'consumers');
    const router = this.routerOf(receiver);
    await this.pipe(producer.id, this.routerOf(owner), router, 'producer');
    if (!router.canConsume({ producerId: producer.id, rtpCapabilities: caps })) return false;
    const deviceType = (producer.appData as { deviceType?: DeviceType }).deviceType;
    const consumer = await transport.consume({
      producerId: producer.id,
      rtpCapabilities: caps,
      paused: true,
      appData: { participantId: owner.id, source, ...(deviceType ? { deviceType } : {}) },
    });
    this.registerConsumer(receiver, owner, producer, consumer);
    return true;
  }

  /**
   * Whether media may flow from `owner` to `receiver`: both current incarnations of this room, the
   * owner allowed to publish and the receiver to receive in their present states.
   */
  mayFlow(owner: Participant, receiver: Participant, action: Action = 'receive'): boolean {
    return (
      owner !== receiver &&
      this.holds(owner) &&
      this.holds(receiver) &&
      permits(owner.role, owner.state, 'publish') &&
      permits(receiver.role, receiver.state, action)
    );
  }

  /** Whether the table lets `receiver` have this kind of source at all (device sources are apart). */
  sourceAllowedFor(receiver: Participant, producer: types.Producer): boolean {
    const action = isDeviceSource(sourceOf(producer)) ? 'receiveDeviceData' : 'receive';
    return permits(receiver.role, receiver.state, action);
  }

  /** What `consumerAdded` says of a consumer (also listed again on resume). */
  announcement(consumer: types.Consumer): NotificationData<'consumerAdded'> {
    const appData = consumer.appData as {
      participantId: string;
      source: MediaSource;
      deviceType?: DeviceType;
    };
    return {
      consumerId: consumer.id,
      producerId: consumer.producerId,
      participantId: appData.participantId,
      kind: consumer.kind,
      source: appData.source,
      ...(appData.deviceType ? { deviceType: appData.deviceType } : {}),
      rtpParameters: consumer.rtpParameters,
      producerPaused: consumer.producerPaused,
    };
  }

  /** Tracks a consumer and relays its events to the receiver, then announces it. */
  private registerConsumer(
    receiver: Participant,
    owner: Participant,
    producer: types.Producer,
    consumer: types.Consumer,
  ): void {
    receiver.consumers.set(consumer.id, consumer);
    this.deps.metrics.consumers.inc({ kind: consumer.kind });
    consumer.observer.once('close', () => {
      this.deps.metrics.consumers.dec({ kind: consumer.kind });
      receiver.consumers.delete(consumer.id);
    });
    consumer.on('producerclose', () => receiver.link?.notify('consumerClosed', { consumerId: consumer.id }));
    consumer.on('producerpause', () => receiver.link?.notify('consumerPaused', { consumerId: consumer.id }));
    consumer.on('producerresume', () =>
      receiver.link?.notify('consumerResumed', { consumerId: consumer.id }),
    );
    consumer.on('layerschange', (layers) =>
      receiver.link?.notify('consumerLayersChanged', {
        consumerId: consumer.id,
        spatialLayer: layers?.spatialLayer ?? null,
        temporalLayer: layers?.temporalLayer ?? null,
      }),
    );
    receiver.link?.notify('consumerAdded', this.announcement(consumer));
  }

  /** The server's rate limit on a data producer; a flood closes it and its sender is told why. */
  private limitRate(
    participant: Participant,
    dataProducer: types.DataProducer,
    channel: DataChannelClass,
  ): void {
    this.deps.dataRateGuard.watch(dataProducer, channel, () =>
      participant.link?.notify('dataProducerClosed', {
        dataProducerId: dataProducer.id,
        code: 'DATA_RATE_EXCEEDED',
      }),
    );
  }

  /** Tracks a data consumer and relays its end to the receiver, then announces it. */
  private registerDataConsumer(
    receiver: Participant,
    owner: Participant,
    dataProducer: types.DataProducer,
    dataConsumer: types.DataConsumer,
  ): void {
    receiver.dataConsumers.set(dataConsumer.id, dataConsumer);
    dataConsumer.observer.once('close', () => receiver.dataConsumers.delete(dataConsumer.id));
    dataConsumer.on('dataproducerclose', () =>
      receiver.link?.notify('dataConsumerClosed', { dataConsumerId: dataConsumer.id }),
    );
    receiver.link?.notify('dataConsumerAdded', {
      dataConsumerId: dataConsumer.id,
      dataProducerId: dataProducer.id,
      participantId: owner.id,
      sctpStreamParameters: dataConsumer.sctpStreamParameters as unknown as Record<string, unknown>,
      label: dataConsumer.label,
      protocol: dataConsumer.protocol,
      ...deviceOf(dataProducer),
    });
  }

  /** Device readings go only where the table allows (practitioners). */
  private async consumeDataSafely(
    receiver: Participant,
    owner: Participant,
    dataProducer: types.DataProducer,
  ) {
    if (!this.mayFlow(owner, receiver, 'receiveDeviceData') || isWarmUp(dataProducer)) return;
    const transport = receiver.recvTransport();
    if (!transport?.sctpParameters) return;
    for (const existing of receiver.dataConsumers.values())
      if (existing.dataProducerId === dataProducer.id) return;
    try {
      await this.pipe(dataProducer.id, this.routerOf(owner), this.routerOf(receiver), 'dataProducer');
      const dataConsumer = await transport.consumeData({ dataProducerId: dataProducer.id });
      this.registerDataConsumer(receiver, owner, dataProducer, dataConsumer);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not create data consumer');
    }
  }

  /** When the router's worker dies, every media object is gone: move to a new router, tell clients. */
  private watchRouter(router: types.Router = this.router): void {
    router.on('workerclose', () => {
      if (this.closed || (router !== this.router && !this.spans.some((s) => s.router === router))) return;
      this.log.warn({ workerPid: this.workerPid }, 'room lost its media worker; moving to another');
      this.events.emit('mediaLost');
      for (const participant of this.#participants.values()) {
        participant.closeMedia();
        participant.placeOn(undefined);
      }
      for (const span of this.spans) span.router.close();
      this.spans = [];
      this.pipes.clear();
      if (router !== this.router) this.router.close();
      void this.relocate();
    });
  }

  /** The router a participant's transports live on: the room's, or a span on another worker. */
  private routerOf(participant: Participant): types.Router {
    return participant.router && !participant.router.closed ? participant.router : this.router;
  }

  /**
   * Chooses where a participant's transports go. Rooms stay on one router until that router
   * carries `spanConsumersPerRouter` consumers; newcomers then go to a router on another worker.
   */
  private async placementFor(participant: Participant): Promise<Placement> {
    if (participant.router && !participant.router.closed) {
      const own = participant.router;
      return own === this.router
        ? this.primary()
        : (this.spans.find((s) => s.router === own) ?? this.primary());
    }
    const limit = this.deps.spanConsumersPerRouter ?? 0;
    let placement = this.primary();
    if (limit > 0 && this.consumersOn(this.router) >= limit) {
      placement = this.spans.find((s) => this.consumersOn(s.router) < limit) ?? (await this.addSpan());
    }
    participant.placeOn(placement.router);
    return placement;
  }

  private primary(): Placement {
    return { router: this.router, webRtcServer: this.webRtcServer };
  }

  private consumersOn(router: types.Router): number {
    let count = 0;
    for (const p of this.#participants.values()) if (this.routerOf(p) === router) count += p.consumers.size;
    return count;
  }

  private async addSpan(): Promise<Placement> {
    const span = await this.deps.placeRouter(this.workerPid);
    if (this.closed) {
      span.router.close();
      throw new SfuError('ROOM_CLOSED');
    }
    this.spans.push(span);
    this.watchRouter(span.router);
    this.deps.metrics.roomSpans.inc();
    span.router.observer.once('close', () => this.deps.metrics.roomSpans.dec());
    this.log.info({ routers: this.spans.length + 1 }, 'room spans another worker');
    return span;
  }

  /** Makes a (data) producer available on another router of the room, once. */
  private async pipe(
    id: string,
    from: types.Router,
    to: types.Router,
    kind: 'producer' | 'dataProducer',
  ): Promise<void> {
    if (from === to) return;
    const key = `${id}>${to.id}`;
    let piping = this.pipes.get(key);
    if (!piping) {
      piping = from
        .pipeToRouter(
          kind === 'producer' ? { producerId: id, router: to } : { dataProducerId: id, router: to },
        )
        .then(() => {
          this.deps.metrics.pipedProducers.inc();
        });
      piping.catch(() => this.pipes.delete(key));
      this.pipes.set(key, piping);
    }
    await piping;
  }

  private async relocate(): Promise<void> {
    for (let attempt = 0; attempt < 60 && !this.closed; attempt++) {
      try {
        const placement = await this.deps.placeRouter();
        if (this.closed) {
          placement.router.close();
          return;
        }
        this.router = placement.router;
        this.webRtcServer = placement.webRtcServer;
        this.watchRouter();
        this.broadcast('mediaReset', { reason: 'worker-died' });
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }
}

/** A participant's connection warm-up channel (connect ahead), never offered to anyone. */
function isWarmUp(dataProducer: types.DataProducer): boolean {
  return (dataProducer.appData as { warmUp?: boolean }).warmUp === true;
}

/** A device source names a device that feeds it (the journal records which device was used). */
function requireDeviceType(source: DeviceSource, deviceType: DeviceType | undefined): void {
  if (!deviceType) throw new SfuError('MESSAGE_INVALID', `${source} needs a deviceType`);
  if (!deviceFeeds(deviceType, source))
    throw new SfuError('MESSAGE_INVALID', `a ${deviceType} does not feed ${source}`);
}

function deviceOf(dataProducer: types.DataProducer): {
  source?: 'vital-signs';
  deviceType?: DeviceType;
} {
  const appData = dataProducer.appData as { source?: 'vital-signs'; deviceType?: DeviceType };
  return appData.source
    ? { source: appData.source, ...(appData.deviceType ? { deviceType: appData.deviceType } : {}) }
    : {};
}

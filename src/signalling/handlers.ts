import type { types } from 'mediasoup';
import { SfuError } from '../errors/catalogue.js';
import { turnCredentials } from '../cluster/turnCredentials.js';
import {
  PROTOCOL_VERSION,
  type Method,
  type RequestParams,
  type RequestResult,
} from '../protocol/messages.js';
import type { Room } from '../rooms/room.js';
import type { Participant, ParticipantLink } from '../rooms/participant.js';
import type { SignallingContext } from './context.js';

/** What a request handler sees: the server's services and, once joined, this connection's membership. */
export interface HandlerScope {
  ctx: SignallingContext;
  member: { room: Room; participant: Participant } | undefined;
  connection: {
    link: ParticipantLink;
    /** Remote address, for access-code lockouts. */
    address: string;
    setMember(member: { room: Room; participant: Participant }): void;
  };
}

type Handler<M extends Method> = (scope: HandlerScope, params: RequestParams<M>) => Promise<RequestResult<M>>;

function joined(scope: HandlerScope): { room: Room; participant: Participant } {
  if (!scope.member) throw new SfuError('AUTH_REQUIRED');
  if (scope.member.room.closed) throw new SfuError('ROOM_CLOSED');
  return scope.member;
}

function joinResult(scope: HandlerScope, room: Room, participant: Participant) {
  const iceServers = turnCredentials(scope.ctx.config.turn, participant.id);
  return {
    ...(iceServers ? { iceServers } : {}),
    protocolVersion: PROTOCOL_VERSION as typeof PROTOCOL_VERSION,
    self: participant.info(),
    room: { id: room.id, options: room.options },
    participants: room
      .activeParticipants()
      .filter((p) => p !== participant)
      .map((p) => p.info()),
    routerRtpCapabilities: room.rtpCapabilities as unknown as Record<string, unknown>,
    resumeToken: participant.resumeToken,
  };
}

const ok = {};

export const HANDLERS: { [M in Method]: Handler<M> } = {
  async join(scope, params) {
    if (scope.member) throw new SfuError('ALREADY_JOINED');
    let claims;
    if (params.token !== undefined && params.accessCode === undefined) {
      claims = await scope.ctx.tokens.verify(params.token);
      scope.ctx.invitations.useByTokenId(claims.jti);
    } else if (params.accessCode !== undefined && params.token === undefined) {
      claims = await scope.ctx.roomService.redeemAccessCode(params.accessCode, scope.connection.address);
      // The invitation is used: its link token must not let a second person in.
      scope.ctx.tokens.markUsed(claims.jti, claims.exp);
    } else {
      throw new SfuError('MESSAGE_INVALID', 'give either token or accessCode');
    }
    const member = await scope.ctx.roomService.join(claims, scope.connection.link, {
      e2ee: params.capabilities?.e2ee ?? false,
      e2eeKey: params.capabilities?.e2eeKey,
    });
    scope.connection.setMember(member);
    // Auto-admission and the waiting list go out after the join answer.
    setImmediate(
      () => void scope.ctx.rooms.afterJoin(member.room, member.participant).catch(() => undefined),
    );
    return joinResult(scope, member.room, member.participant);
  },

  async resume(scope, params) {
    if (scope.member) throw new SfuError('ALREADY_JOINED');
    const member = await scope.ctx.roomService.resume(params.resumeToken, scope.connection.link);
    scope.connection.setMember(member);
    return Promise.resolve({
      ...joinResult(scope, member.room, member.participant),
      transportIds: [...member.participant.transports.keys()],
      consumers: [...member.participant.consumers.values()].map((c) => member.room.announcement(c)),
    });
  },

  async setRtpCapabilities(scope, params) {
    const { room, participant } = joined(scope);
    await room.setRtpCapabilities(participant, params.rtpCapabilities);
    return ok;
  },

  async createTransport(scope, params) {
    const { room, participant } = joined(scope);
    return room.createTransport(
      participant,
      params.direction,
      params.sctp ?? false,
      params.precheck ?? false,
    );
  },

  async connectTransport(scope, params) {
    const { room, participant } = joined(scope);
    const transport = room.transportOf(participant, params.transportId);
    try {
      await transport.connect({ dtlsParameters: params.dtlsParameters });
    } catch (err) {
      if (err instanceof TypeError) throw new SfuError('DTLS_PARAMETERS_INVALID', err.message.slice(0, 120));
      throw new SfuError('INVALID_STATE', 'transport already connected');
    }
    return ok;
  },

  async restartIce(scope, params) {
    const { room, participant } = joined(scope);
    const iceParameters = await room.transportOf(participant, params.transportId).restartIce();
    return { iceParameters: iceParameters as unknown as Record<string, unknown> };
  },

  async produce(scope, params) {
    const { room, participant } = joined(scope);
    const producerId = await room.produce(
      participant,
      params.transportId,
      params.kind,
      params.rtpParameters as unknown as types.RtpParameters,
      params.source,
      params.deviceType,
    );
    return { producerId };
  },

  async pauseProducer(scope, params) {
    const { room, participant } = joined(scope);
    await room.producerOf(participant, params.producerId).pause();
    return ok;
  },

  async resumeProducer(scope, params) {
    const { room, participant } = joined(scope);
    await room.producerOf(participant, params.producerId).resume();
    return ok;
  },

  async closeProducer(scope, params) {
    const { room, participant } = joined(scope);
    room.producerOf(participant, params.producerId).close();
    return Promise.resolve(ok);
  },

  async consume(scope, params) {
    const { room, participant } = joined(scope);
    await room.consumeById(participant, params.producerId);
    return ok;
  },

  async closeConsumer(scope, params) {
    const { room, participant } = joined(scope);
    room.consumerOf(participant, params.consumerId).close();
    return Promise.resolve(ok);
  },

  async resumeConsumer(scope, params) {
    const { room, participant } = joined(scope);
    await room.consumerOf(participant, params.consumerId).resume();
    room.markMediaStarted(participant);
    return ok;
  },

  async pauseConsumer(scope, params) {
    const { room, participant } = joined(scope);
    await room.consumerOf(participant, params.consumerId).pause();
    return ok;
  },

  async setConsumerPreferredLayers(scope, params) {
    const { room, participant } = joined(scope);
    const consumer = room.consumerOf(participant, params.consumerId);
    const layers = {
      spatialLayer: params.spatialLayer,
      ...(params.temporalLayer !== undefined ? { temporalLayer: params.temporalLayer } : {}),
    };
    // The client's choice caps what bandwidth adaptation may pick later for this consumer.
    participant.layerCaps.set(consumer.id, layers);
    consumer.observer.once('close', () => participant.layerCaps.delete(consumer.id));
    await consumer.setPreferredLayers(layers);
    return ok;
  },

  async produceData(scope, params) {
    const { room, participant } = joined(scope);
    const dataProducerId = await room.produceData(
      participant,
      params.transportId,
      params.sctpStreamParameters as unknown as types.SctpStreamParameters,
      params.label,
      params.protocol,
      params.warmUp ?? false,
      params.source ? { source: params.source, deviceType: params.deviceType } : undefined,
    );
    return { dataProducerId };
  },

  async requestDeviceSource(scope, params) {
    const { room, participant } = joined(scope);
    room.requestDeviceSource(
      participant,
      params.participantId,
      params.source,
      params.deviceType,
      params.note,
    );
    return Promise.resolve(ok);
  },

  async captureExaminationStill(scope, params) {
    const { room, participant } = joined(scope);
    const consumerId = await room.captureExaminationStill(participant, params.producerId);
    return { consumerId };
  },

  async getStats(scope, params) {
    const { room, participant } = joined(scope);
    const stats = await room.transportOf(participant, params.transportId).getStats();
    return { stats: stats as unknown as Record<string, unknown>[] };
  },

  async e2eeRelay(scope, params) {
    const { room, participant } = joined(scope);
    room.relayE2ee(participant, params.to, params.payload);
    return Promise.resolve(ok);
  },

  async reportRenderSize(scope, params) {
    const { room, participant } = joined(scope);
    room.setRenderSize(participant, params.consumerId, params.width, params.height);
    return Promise.resolve(ok);
  },

  async getConsentTexts(scope) {
    joined(scope);
    return Promise.resolve({ texts: scope.ctx.consentTexts.currentAll().map((t) => ({ ...t })) });
  },

  async giveConsent(scope, params) {
    const { room, participant } = joined(scope);
    await scope.ctx.rooms.waitingRoom.giveConsent(room, participant, params);
    return ok;
  },

  async withdrawConsent(scope, params) {
    const { room, participant } = joined(scope);
    await scope.ctx.rooms.waitingRoom.withdrawConsent(room, participant, params);
    return ok;
  },

  async getWaitingList(scope) {
    const { room, participant } = joined(scope);
    return Promise.resolve({ entries: scope.ctx.rooms.waitingRoom.waitingList(room, participant) });
  },

  async hold(scope, params) {
    const { room, participant } = joined(scope);
    await scope.ctx.rooms.waitingRoom.hold(room, participant, params.participantId, params.message);
    return ok;
  },

  async reportPrecheck(scope, params) {
    const { room, participant } = joined(scope);
    scope.ctx.rooms.waitingRoom.reportPrecheck(room, participant, params);
    return Promise.resolve(ok);
  },

  async admit(scope, params) {
    const { room, participant } = joined(scope);
    await scope.ctx.rooms.waitingRoom.admit(room, participant, params.participantId);
    return ok;
  },

  async decline(scope, params) {
    const { room, participant } = joined(scope);
    await scope.ctx.rooms.waitingRoom.decline(room, participant, params.participantId);
    return ok;
  },

  async leave(scope) {
    const { room, participant } = joined(scope);
    await scope.ctx.rooms.leaveVoluntarily(room, participant);
    return ok;
  },
};

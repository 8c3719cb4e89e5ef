import { DataRateGuard } from './dataRateGuard.js';
import { EventEmitter } from 'node:events';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { WorkerPool } from '../media/workerPool.js';
import { MEDIA_CODECS } from '../media/codecs.js';
import { SfuError } from '../errors/catalogue.js';
import type { AdmissionState, RoomOptions } from '../protocol/messages.js';
import type { JoinClaims } from '../auth/joinTokens.js';
import type { ConsentRegistry } from '../consent/consentRegistry.js';
import { Room } from './room.js';
import { Participant, type ParticipantIdentity, type ParticipantLink } from './participant.js';
import type { ConsultationRecord } from './consultationRecord.js';
import { WaitingRoom } from './waitingRoom.js';
import { admissionRule } from '../protocol/permissions.js';

export const DEFAULT_ROOM_OPTIONS: RoomOptions = {
  waitingRoom: true,
  e2eeRequired: false,
  phoneAllowed: true,
  maxParticipants: 4,
};

/**
 * The options a new room gets: the caller's, over the defaults. A maximum above the server's limit
 * is refused naming the limit, never lowered in silence; an omitted one is the default, within it.
 */
export function roomOptionsWithin(options: Partial<RoomOptions>, limits: Config['limits']): RoomOptions {
  const limit = limits.maxParticipantsPerRoom;
  if (options.maxParticipants !== undefined && options.maxParticipants > limit)
    throw new SfuError(
      'MESSAGE_INVALID',
      `maxParticipants ${options.maxParticipants} exceeds limits.maxParticipantsPerRoom (${limit})`,
    );
  return {
    ...DEFAULT_ROOM_OPTIONS,
    ...options,
    maxParticipants: options.maxParticipants ?? Math.min(DEFAULT_ROOM_OPTIONS.maxParticipants, limit),
  };
}

export interface RoomRegistryEvents {
  /** A room was created: attach per-room services (quality control, phone bridge). */
  roomCreated: [Room];
  roomClosed: [Room];
}

export interface RoomRegistryDeps {
  pool: WorkerPool;
  config: Config;
  metrics: Metrics;
  log: Logger;
  record: ConsultationRecord;
  consentTexts: ConsentRegistry;
}

/**
 * All rooms of this process, and the lifecycle of participants within them: join, disconnect,
 * resume within the grace period, leave, removal. Places each new room on the least-loaded
 * worker. Admission itself is the waiting room's (waitingRoom.ts).
 */
export class RoomRegistry extends EventEmitter<RoomRegistryEvents> {
  private readonly rooms = new Map<string, Room>();
  private readonly byResumeToken = new Map<string, { room: Room; participant: Participant }>();
  /** Joins in progress per (room, identity), chained (see serialized). */
  private readonly joining = new Map<string, Promise<void>>();
  private readonly log: Logger;
  readonly waitingRoom: WaitingRoom;
  /** Rate limits of every room's data channels: one timer for the process. */
  private readonly dataRateGuard: DataRateGuard;
  draining = false;

  constructor(private readonly deps: RoomRegistryDeps) {
    super();
    this.log = deps.log.child({ module: 'rooms' });
    this.dataRateGuard = new DataRateGuard({
      config: deps.config.dataChannels,
      metrics: deps.metrics,
      log: deps.log,
    });
    this.waitingRoom = new WaitingRoom(deps.consentTexts, deps.record, (room, participant, reason) =>
      this.leave(room, participant, reason),
    );
  }

  get record(): ConsultationRecord {
    return this.deps.record;
  }

  get size(): number {
    return this.rooms.size;
  }

  get(roomId: string): Room | undefined {
    const room = this.rooms.get(roomId);
    return room && !room.closed ? room : undefined;
  }

  list(): Room[] {
    return [...this.rooms.values()];
  }

  /** `adopted`: a cluster node takes over a room; its journal, if this store has it, goes on. */
  async createRoom(options: Partial<RoomOptions>, roomId?: string, adopted = false): Promise<Room> {
    const { config, metrics } = this.deps;
    if (this.draining) throw new SfuError('SERVER_DRAINING');
    // Counted where it is answered (REST counts every refusal).
    if (this.rooms.size >= config.limits.maxRooms) throw new SfuError('ROOM_LIMIT_REACHED');
    const id = roomId ?? `room_${randomUUID()}`;
    if (this.rooms.has(id)) throw new SfuError('INVALID_STATE', 'room exists');
    const merged = roomOptionsWithin(options, config.limits);
    await this.deps.record.created(
      id,
      {
        consultationId: id,
        createdAt: new Date().toISOString(),
        e2ee: merged.e2eeRequired,
        maxParticipants: merged.maxParticipants,
      },
      adopted,
    );
    const room = new Room(id, merged, await this.placeRouter(), {
      log: this.log,
      metrics,
      limits: config.limits,
      media: config.media,
      dataChannels: config.dataChannels,
      dataRateGuard: this.dataRateGuard,
      placeRouter: (avoidWorkerPid) => this.placeRouter(avoidWorkerPid),
      onClosed: (closed) => this.forget(closed),
      spanConsumersPerRouter: config.cluster.spanConsumersPerRouter,
    });
    this.journalIncidents(room);
    this.journalDevices(room);
    this.rooms.set(id, room);
    metrics.rooms.set(this.rooms.size);
    this.log.info({ room: id }, 'room created');
    this.emit('roomCreated', room);
    return room;
  }

  /**
   * Technical incidents in the journal, from the room's domain events: each is written where the
   * event is emitted, as it was when the registry wrote it itself, so the chain's order is the same.
   * Incidents are logged, not refused, when they cannot be written (ConsultationRecord.incident).
   */
  private journalIncidents(room: Room): void {
    const { record } = this.deps;
    room.events.on('mediaLost', () => record.incident(room.id, 'worker-died'));
    room.events.on('connectionLost', (participant) =>
      record.incident(room.id, 'connection-lost', participant.id),
    );
    room.events.on('resumed', (participant, wasConnected) => {
      if (!wasConnected) record.incident(room.id, 'reconnected', participant.id);
    });
  }

  /**
   * Connected devices in the journal: which device, by whom, when and for how long, and the
   * practitioner's requests; never a reading (docs/devices.md). Written after the fact, so a
   * failure is logged rather than refused; a use still open at the end ran until consultation.ended.
   */
  private journalDevices(room: Room): void {
    const write = (done: Promise<void>) =>
      done.catch((err: unknown) =>
        this.log.warn({ room: room.id, err: (err as Error).message }, 'device use not journalled'),
      );
    room.events.on('deviceStarted', (use) => {
      void write(
        this.deps.record.record(room.id, 'device.started', {
          useId: use.id,
          participantId: use.participant.id,
          role: use.participant.role,
          source: use.source,
          deviceType: use.deviceType,
        }),
      );
    });
    room.events.on('deviceStopped', (use, durationMs) => {
      if (room.closed) return;
      void write(
        this.deps.record.record(room.id, 'device.stopped', {
          useId: use.id,
          participantId: use.participant.id,
          durationS: Math.round(durationMs / 1000),
        }),
      );
    });
    room.events.on('deviceStill', (still) => {
      void write(
        this.deps.record.record(room.id, 'device.still', {
          takenBy: still.by.id,
          participantId: still.holder.id,
          producerId: still.producerId,
          ...(still.deviceType ? { deviceType: still.deviceType } : {}),
        }),
      );
    });
    room.events.on('deviceRequested', (request) => {
      void write(
        this.deps.record.record(room.id, 'device.requested', {
          requestedBy: request.by.id,
          participantId: request.holder.id,
          source: request.source,
          ...(request.deviceType ? { deviceType: request.deviceType } : {}),
        }),
      );
    });
  }

  /**
   * Brings a verified token holder into its room, through the waiting room. A second join by
   * the same participant replaces the first connection, so a participant is never present twice.
   */
  async join(
    claims: JoinClaims,
    link: ParticipantLink,
    keys: { e2ee: boolean; e2eeKey?: string | undefined },
    /** A phone leg: not end-to-end encryptable; its consent was given by keypress before joining. */
    phone?: { consentGiven: boolean },
  ): Promise<{ room: Room; participant: Participant }> {
    if (this.draining) throw new SfuError('SERVER_DRAINING');
    const room = this.get(claims.room);
    // Same answer as a bad token: callers cannot probe which rooms exist.
    if (!room) throw new SfuError('ACCESS_DENIED');
    if (phone) {
      if (!room.options.phoneAllowed)
        throw new SfuError('FORBIDDEN_FOR_ROLE', 'phone not allowed in this room');
    } else if (room.options.e2eeRequired && !keys.e2ee) {
      // Every role alike: an observer without E2EE would render the others' frames undecryptable
      // and could publish in clear to them (docs/encryption.md).
      throw new SfuError('E2EE_REQUIRED');
    }
    // One join at a time per (room, identity): at most one live incarnation, whatever the timing.
    return this.serialized(`${room.id}\n${claims.sub}`, async () => {
      const existing = room.participants.get(claims.sub);
      if (existing) await this.replace(room, existing);
      if (room.closed) throw new SfuError('ACCESS_DENIED');
      if (room.activeParticipants().length >= room.options.maxParticipants) throw new SfuError('ROOM_FULL');
      const participant = new Participant(
        {
          id: claims.sub,
          role: claims.role,
          displayName: claims.name ?? '',
          rpps: claims.rpps,
          identityStatus: claims.idStatus,
        },
        this.newResumeToken(),
        { e2ee: keys.e2ee, e2eeKey: keys.e2eeKey, phone: phone !== undefined },
        link,
      );
      await this.waitingRoom.arrive(room, participant);
      if (phone?.consentGiven && participant.role === 'patient') {
        participant.recordConsent('teleconsultation');
        participant.transition('consent');
      }
      if (room.closed) throw new SfuError('ACCESS_DENIED');
      room.add(participant);
      this.byResumeToken.set(participant.resumeToken, { room, participant });
      room.broadcast('participantJoined', { participant: participant.info() }, participant);
      if (participant.mayExchangeMedia) await room.onAdmitted(participant);
      return { room, participant };
    });
  }

  /** Runs `task` after every earlier task of the same key. */
  private async serialized<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = this.joining.get(key) ?? Promise.resolve();
    const run = before.then(task, task);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.joining.set(key, settled);
    void settled.then(() => {
      if (this.joining.get(key) === settled) this.joining.delete(key);
    });
    return run;
  }

  /**
   * Ends an incarnation replaced by a new join of the same identity. Its link is cut before its
   * socket is closed, so that socket, once it closes, and its timers find nothing to act on.
   */
  private async replace(room: Room, existing: Participant): Promise<void> {
    await this.deps.record.record(room.id, 'participant.left', {
      participantId: existing.id,
      reason: 'replaced',
    });
    existing.end('leave');
    this.detach(existing);
    const oldLink = existing.detach();
    room.removeParticipant(existing, 'replaced');
    oldLink?.close('replaced by a new connection');
  }

  /**
   * Cluster failover: brings back a participant of a room that moved here after its node died. One
   * that had been admitted is admitted again at once (its consent and admission are in the first
   * node's journal); any other arrives in the waiting room again.
   */
  async restore(
    room: Room,
    identity: ParticipantIdentity,
    wasAdmitted: boolean,
    link: ParticipantLink,
    keys: { e2ee: boolean; e2eeKey?: string | undefined },
  ): Promise<{ room: Room; participant: Participant }> {
    if (room.participants.has(identity.id)) throw new SfuError('RESUME_REJECTED');
    if (room.activeParticipants().length >= room.options.maxParticipants) throw new SfuError('ROOM_FULL');
    const participant = new Participant(
      identity,
      this.newResumeToken(),
      { e2ee: keys.e2ee, e2eeKey: keys.e2eeKey },
      link,
    );
    if (wasAdmitted && admissionRule(identity.role) !== 'on-arrival') {
      participant.transition('arriveAdmitted');
      await this.deps.record.record(room.id, 'participant.admitted', {
        participantId: identity.id,
        role: identity.role,
      });
    } else {
      await this.waitingRoom.arrive(room, participant);
    }
    if (room.participants.has(identity.id)) throw new SfuError('RESUME_REJECTED');
    room.add(participant);
    this.byResumeToken.set(participant.resumeToken, { room, participant });
    this.deps.record.incident(room.id, 'reconnected', participant.id, 'node-failover');
    room.broadcast('participantJoined', { participant: participant.info() }, participant);
    if (participant.mayExchangeMedia) await room.onAdmitted(participant);
    return { room, participant };
  }

  /** After the join answer is sent: auto-admission and the practitioners' waiting list. */
  async afterJoin(room: Room, participant: Participant): Promise<void> {
    this.waitingRoom.requestOpenConsents(room, participant);
    await this.waitingRoom.settle(room, participant);
  }

  /** Re-attaches a connection to a participant kept during the grace period. */
  resume(resumeToken: string, link: ParticipantLink): { room: Room; participant: Participant } {
    const entry = this.byResumeToken.get(resumeToken);
    if (!entry || entry.room.closed || !entry.participant.active || !entry.room.holds(entry.participant))
      throw new SfuError('RESUME_REJECTED');
    const { room, participant } = entry;
    const previous = participant.attach(link);
    previous?.close('resumed elsewhere');
    this.byResumeToken.delete(resumeToken);
    participant.renewResumeToken(this.newResumeToken());
    this.byResumeToken.set(participant.resumeToken, entry);
    room.events.emit('resumed', participant, previous !== undefined);
    room.broadcast('participantUpdated', { participant: participant.info() }, participant);
    return entry;
  }

  /**
   * The connection `link` dropped: keep the participant for the grace period, then remove it.
   * A link that is no longer the participant's (replaced, resumed elsewhere), or a participant
   * that is no longer the room's current incarnation, changes nothing.
   */
  disconnected(room: Room, participant: Participant, link: ParticipantLink): void {
    if (!room.holds(participant) || !participant.active || !participant.detach(link)) return;
    room.events.emit('connectionLost', participant);
    room.broadcast('participantUpdated', { participant: participant.info() }, participant);
    participant.startGrace(this.deps.config.auth.resumeGraceS * 1000, () => {
      if (!room.holds(participant)) return;
      void this.deps.record
        .record(room.id, 'participant.left', { participantId: participant.id, reason: 'timeout' })
        .catch(() => undefined);
      participant.end('leave');
      this.detach(participant);
      room.removeParticipant(participant, 'timeout');
      this.waitingRoom.publishWaitingList(room);
    });
  }

  /** The participant leaves by itself. */
  async leaveVoluntarily(room: Room, participant: Participant, reason = 'left'): Promise<void> {
    await this.deps.record.record(room.id, 'participant.left', {
      participantId: participant.id,
      reason,
    });
    this.leave(room, participant, 'left');
  }

  /** Removal by the platform (REST). */
  async removeByPlatform(room: Room, participant: Participant): Promise<void> {
    await this.deps.record.record(room.id, 'participant.removed', {
      participantId: participant.id,
      by: 'platform',
      reason: 'platform-request',
    });
    this.leave(room, participant, 'removed');
  }

  /** Takes a participant out (records are the caller's). */
  leave(room: Room, participant: Participant, reason: 'left' | 'removed' | 'declined'): void {
    participant.end(reason === 'left' ? 'leave' : reason === 'removed' ? 'remove' : 'decline');
    this.detach(participant);
    const link = participant.detach();
    room.removeParticipant(participant, reason);
    if (reason !== 'left') link?.close(reason);
    this.waitingRoom.publishWaitingList(room);
  }

  /** Ends the consultation: last records, the ended webhook, then the room closes. */
  async endRoom(room: Room, reason: 'ended' | 'server-shutdown', endedBy?: string): Promise<void> {
    if (room.closed) return;
    const present = room.activeParticipants().map((p) => p.id);
    for (const participant of room.participants.values()) this.detach(participant);
    room.close(reason);
    try {
      await this.deps.record.ended(
        room.id,
        present,
        reason === 'ended' ? 'ended' : 'server-shutdown',
        endedBy,
      );
    } catch (err) {
      this.log.error(
        { room: room.id, err: (err as Error).message },
        'could not record the end of a consultation',
      );
    }
  }

  /** Sums the transports' current bitrates (worker-computed) into the metrics, for the scrape. */
  async sampleBitrates(): Promise<void> {
    let inbound = 0;
    let outbound = 0;
    const transports = [...this.rooms.values()].flatMap((room) =>
      [...room.participants.values()].flatMap((p) => [...p.transports.values()]),
    );
    await Promise.all(
      transports.map(async (transport) => {
        try {
          for (const stat of await transport.getStats()) {
            inbound += stat.recvBitrate;
            outbound += stat.sendBitrate;
          }
        } catch {
          // Closed while sampling.
        }
      }),
    );
    this.deps.metrics.transportBitrate.set({ direction: 'in' }, inbound);
    this.deps.metrics.transportBitrate.set({ direction: 'out' }, outbound);
  }

  /** Counts participants by admission state, for the metrics scrape. */
  participantCounts(): Map<AdmissionState, number> {
    const counts = new Map<AdmissionState, number>();
    for (const room of this.rooms.values()) {
      for (const participant of room.participants.values()) {
        counts.set(participant.state, (counts.get(participant.state) ?? 0) + 1);
      }
    }
    return counts;
  }

  async closeAll(reason: 'ended' | 'server-shutdown'): Promise<void> {
    await Promise.all([...this.rooms.values()].map((room) => this.endRoom(room, reason)));
  }

  async placeRouter(avoidWorkerPid?: number) {
    const slot = this.deps.pool.leastLoaded(avoidWorkerPid);
    if (!slot) throw new SfuError('MEDIA_UNAVAILABLE');
    const router = await slot.worker.createRouter({
      mediaCodecs: MEDIA_CODECS,
      appData: { workerPid: slot.worker.pid, workerIndex: slot.index },
    });
    return { router, webRtcServer: slot.webRtcServer };
  }

  private newResumeToken(): string {
    return `rt_${randomBytes(24).toString('base64url')}`;
  }

  /** Forgets the participant's resume token and stops its grace timer. */
  private detach(participant: Participant): void {
    if (this.byResumeToken.get(participant.resumeToken)?.participant === participant)
      this.byResumeToken.delete(participant.resumeToken);
    participant.stopGrace();
  }

  private forget(room: Room): void {
    this.rooms.delete(room.id);
    this.deps.metrics.rooms.set(this.rooms.size);
    this.log.info({ room: room.id }, 'room closed');
    this.emit('roomClosed', room);
  }
}

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
import { Room } from './room.js';
import { Participant, type ParticipantLink } from './participant.js';

export interface RoomSummary {
  id: string;
  options: RoomOptions;
  createdAt: string;
  participants: ReturnType<Participant['info']>[];
}

export const DEFAULT_ROOM_OPTIONS: RoomOptions = {
  waitingRoom: true,
  e2eeRequired: false,
  phoneAllowed: true,
  maxParticipants: 4,
};

/**
 * All rooms of this process, and the lifecycle of participants within them: join, disconnect,
 * resume within the grace period, leave. Places each new room on the least-loaded worker.
 */
export interface RoomRegistryEvents {
  /** A room was created: attach per-room services (quality control, phone bridge, journal). */
  roomCreated: [Room];
  roomClosed: [Room];
}

export class RoomRegistry extends EventEmitter<RoomRegistryEvents> {
  private readonly rooms = new Map<string, Room>();
  private readonly byResumeToken = new Map<string, { room: Room; participant: Participant }>();
  private readonly log: Logger;
  draining = false;

  constructor(
    private readonly pool: WorkerPool,
    private readonly config: Config,
    private readonly metrics: Metrics,
    log: Logger,
  ) {
    super();
    this.log = log.child({ module: 'rooms' });
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

  async createRoom(options: Partial<RoomOptions>, roomId?: string): Promise<Room> {
    if (this.draining) throw new SfuError('SERVER_DRAINING');
    if (this.rooms.size >= this.config.limits.maxRooms) throw new SfuError('ROOM_LIMIT_REACHED');
    const id = roomId ?? `room_${randomUUID()}`;
    if (this.rooms.has(id)) throw new SfuError('INVALID_STATE', 'room exists');
    const merged: RoomOptions = {
      ...DEFAULT_ROOM_OPTIONS,
      ...options,
      maxParticipants: Math.min(
        options.maxParticipants ?? DEFAULT_ROOM_OPTIONS.maxParticipants,
        this.config.limits.maxParticipantsPerRoom,
      ),
    };
    const room = new Room(id, merged, await this.placeRouter(), {
      log: this.log,
      metrics: this.metrics,
      limits: this.config.limits,
      media: this.config.media,
      placeRouter: () => this.placeRouter(),
      onClosed: (closed) => this.forget(closed),
    });
    this.rooms.set(id, room);
    this.metrics.rooms.set(this.rooms.size);
    this.log.info({ room: id }, 'room created');
    this.emit('roomCreated', room);
    return room;
  }

  /**
   * Admits a verified token holder into its room. A second join by the same participant replaces
   * the first connection, so a participant is never present twice.
   */
  async join(
    claims: JoinClaims,
    link: ParticipantLink,
    keys: { e2ee: boolean; e2eeKey?: string | undefined },
  ): Promise<{ room: Room; participant: Participant }> {
    const e2ee = keys.e2ee;
    if (this.draining) throw new SfuError('SERVER_DRAINING');
    const room = this.get(claims.room);
    // Same answer as a bad token: callers cannot probe which rooms exist.
    if (!room) throw new SfuError('ACCESS_DENIED');
    if (room.options.e2eeRequired && !e2ee && claims.role !== 'observer') throw new SfuError('E2EE_REQUIRED');
    const existing = room.participants.get(claims.sub);
    if (existing) {
      this.detach(existing);
      room.removeParticipant(existing, 'left');
    }
    if (room.activeParticipants().length >= room.options.maxParticipants) throw new SfuError('ROOM_FULL');
    const participant = new Participant(
      { id: claims.sub, role: claims.role, displayName: claims.name ?? '', rpps: claims.rpps },
      this.initialState(room, claims),
      this.newResumeToken(),
    );
    participant.e2ee = e2ee;
    participant.e2eeKey = keys.e2eeKey;
    participant.link = link;
    room.participants.set(participant.id, participant);
    this.byResumeToken.set(participant.resumeToken, { room, participant });
    room.broadcast('participantJoined', { participant: participant.info() }, participant);
    if (participant.mayExchangeMedia) await room.onAdmitted(participant);
    return { room, participant };
  }

  /** Re-attaches a connection to a participant kept during the grace period. */
  resume(resumeToken: string, link: ParticipantLink): { room: Room; participant: Participant } {
    const entry = this.byResumeToken.get(resumeToken);
    if (!entry || entry.room.closed || !entry.participant.active) throw new SfuError('RESUME_REJECTED');
    const { room, participant } = entry;
    clearTimeout(participant.graceTimer);
    participant.graceTimer = undefined;
    const previous = participant.link;
    participant.link = link;
    previous?.close('resumed elsewhere');
    this.byResumeToken.delete(resumeToken);
    participant.resumeToken = this.newResumeToken();
    this.byResumeToken.set(participant.resumeToken, entry);
    room.broadcast('participantUpdated', { participant: participant.info() }, participant);
    return entry;
  }

  /** The connection dropped: keep the participant for the grace period, then remove it. */
  disconnected(room: Room, participant: Participant, link: ParticipantLink): void {
    if (participant.link !== link || !room.participants.has(participant.id)) return;
    participant.link = undefined;
    room.broadcast('participantUpdated', { participant: participant.info() }, participant);
    participant.graceTimer = setTimeout(() => {
      this.detach(participant);
      room.removeParticipant(participant, 'timeout');
    }, this.config.auth.resumeGraceS * 1000);
    participant.graceTimer.unref();
  }

  leave(room: Room, participant: Participant, reason: 'left' | 'removed' | 'declined'): void {
    participant.state = reason === 'left' ? 'left' : reason;
    this.detach(participant);
    const link = participant.link;
    participant.link = undefined;
    room.removeParticipant(participant, reason);
    if (reason !== 'left') link?.close(reason);
  }

  /** A practitioner lets a waiting participant in; both then exchange media with the room. */
  async admit(room: Room, by: Participant, participantId: string): Promise<void> {
    if (by.role !== 'practitioner') throw new SfuError('FORBIDDEN_FOR_ROLE');
    const target = room.participants.get(participantId);
    if (!target || !target.active) throw new SfuError('NOT_FOUND');
    if (target.mayExchangeMedia) return;
    if (target.state !== 'waiting' && target.state !== 'consented') throw new SfuError('INVALID_STATE');
    target.state = 'admitted';
    room.broadcast('participantUpdated', { participant: target.info() });
    await room.onAdmitted(target);
  }

  decline(room: Room, by: Participant, participantId: string): void {
    if (by.role !== 'practitioner') throw new SfuError('FORBIDDEN_FOR_ROLE');
    const target = room.participants.get(participantId);
    if (!target || !target.active) throw new SfuError('NOT_FOUND');
    if (target.mayExchangeMedia) throw new SfuError('INVALID_STATE');
    this.leave(room, target, 'declined');
  }

  endRoom(room: Room, reason: 'ended' | 'server-shutdown'): void {
    for (const participant of room.participants.values()) this.detach(participant);
    room.close(reason);
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

  closeAll(reason: 'ended' | 'server-shutdown'): void {
    for (const room of [...this.rooms.values()]) this.endRoom(room, reason);
  }

  async placeRouter() {
    const slot = this.pool.leastLoaded();
    if (!slot) throw new SfuError('MEDIA_UNAVAILABLE');
    const router = await slot.worker.createRouter({
      mediaCodecs: MEDIA_CODECS,
      appData: { workerPid: slot.worker.pid, workerIndex: slot.index },
    });
    return { router, webRtcServer: slot.webRtcServer };
  }

  private initialState(room: Room, claims: JoinClaims): AdmissionState {
    if (!room.options.waitingRoom || claims.role === 'practitioner') return 'admitted';
    return 'waiting';
  }

  private newResumeToken(): string {
    return `rt_${randomBytes(24).toString('base64url')}`;
  }

  private detach(participant: Participant): void {
    this.byResumeToken.delete(participant.resumeToken);
    clearTimeout(participant.graceTimer);
  }

  private forget(room: Room): void {
    this.rooms.delete(room.id);
    this.metrics.rooms.set(this.rooms.size);
    this.log.info({ room: room.id }, 'room closed');
    this.emit('roomClosed', room);
  }
}

import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { WorkerPool } from '../media/workerPool.js';
import { roomOptionsWithin, type RoomRegistry } from '../rooms/roomRegistry.js';
import type { Room } from '../rooms/room.js';
import type { Participant, ParticipantLink } from '../rooms/participant.js';
import type { JoinClaims } from '../auth/joinTokens.js';
import type { RoomOptions } from '../protocol/messages.js';
import { SfuError } from '../errors/catalogue.js';
import { RoomDirectory, digestOf, type MemberRecord, type NodeRecord } from './roomDirectory.js';
import { RoomElsewhereError } from './roomElsewhere.js';
import { SharedInvitations } from './sharedInvitations.js';
import { sharedStateCalls } from './sharedStateCalls.js';

/** A room created on another node: what the REST answer says of it. */
export interface RemoteRoomView {
  id: string;
  options: RoomOptions;
  createdAt: string;
  participants: [];
  /** Base URL of the node hosting it. */
  node: string;
}

/** What the REST and signalling layers ask of the cluster. */
export interface ClusterRouting {
  /** Places a new room on the least-loaded live node (this one on a tie) and records it. */
  createRoom(
    options: Partial<RoomOptions>,
    roomId?: string,
  ): Promise<{ local: Room } | { remote: RemoteRoomView }>;
  /**
   * The room when this node hosts it (adopting a room just assigned here); throws
   * RoomElsewhereError when another live node hosts it; undefined when no node does.
   */
  locate(roomId: string): Promise<Room | undefined>;
  /** Before a join is served here: a join token works once in the whole cluster. */
  admitJoin(claims: JoinClaims): Promise<void>;
  /** A resume token this node does not know: brings the participant back if its room moved here. */
  resume(resumeToken: string, link: ParticipantLink): Promise<{ room: Room; participant: Participant }>;
  /** Makes an invitation's access code usable on every node. */
  shareInvitation(accessCode: string, claims: JoinClaims): Promise<void>;
  /** What a shared access code stands for, without using it. */
  findInvitation(accessCode: string): Promise<JoinClaims | undefined>;
  /** Uses a shared access code: its claims for the one node that takes it. */
  takeInvitation(accessCode: string): Promise<JoinClaims | undefined>;
  /** Whether a join token (or the invitation behind it) was used on any node. */
  tokenUsed(jti: string): Promise<boolean>;
}

export interface ClusterNodeDeps {
  config: Config;
  rooms: RoomRegistry;
  pool: WorkerPool;
  log: Logger;
  /** This node's own base URL when cluster.nodeUrl is not set. */
  url: () => string;
}

const ADMITTED_STATES = new Set(['admitted', 'in-call']);

/**
 * This process as a member of a cluster sharing one Redis: registers with heartbeats, places rooms
 * on the least-loaded node, answers for rooms hosted elsewhere with their node's URL, moves the
 * rooms of a node whose heartbeat expired, and adopts the rooms assigned to it. See docs/cluster.md.
 */
export class ClusterNode implements ClusterRouting {
  readonly id: string;
  private readonly redis: Redis;
  private readonly directory: RoomDirectory;
  private readonly invitations: SharedInvitations;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private nodesCache = new Map<string, NodeRecord | null>();
  /** Rooms assigned by this node to others since the last heartbeat: keeps placement even. */
  private readonly pendingLoad = new Map<string, number>();
  private readonly adopting = new Map<string, Promise<Room | undefined>>();
  private readonly creating = new Set<string>();
  /** What was last written for each member of each local room, to write only what changed. */
  private readonly written = new Map<string, Map<string, string>>();
  private stopped = false;

  private constructor(private readonly deps: ClusterNodeDeps) {
    const cluster = deps.config.cluster;
    if (!cluster.redisUrl) throw new Error('cluster.enabled needs cluster.redisUrl');
    this.id = cluster.nodeId ?? os.hostname();
    this.log = deps.log.child({ module: 'cluster', node: this.id });
    this.redis = new Redis(cluster.redisUrl, {
      lazyConnect: true,
      maxRetriesPerRequest: 2,
      connectTimeout: 5000,
      // Heartbeats must not queue up behind a dead connection: fail fast, retry next beat.
      enableOfflineQueue: false,
    });
    this.redis.on('error', (err: Error) => this.log.warn({ err: err.message }, 'redis error'));
    const unreachable = (err: unknown): void =>
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'cluster state unreachable');
    this.directory = sharedStateCalls(new RoomDirectory(this.redis, cluster.keyPrefix), unreachable);
    // Codes are keyed with the token secret every node shares, so that Redis holds no digest one
    // could reverse by trying the 10^8 codes (unkeyed when join tokens are only asymmetric).
    this.invitations = sharedStateCalls(
      new SharedInvitations(this.redis, cluster.keyPrefix, deps.config.auth.tokenSecret ?? ''),
      unreachable,
    );
    deps.rooms.on('roomCreated', (room) => this.follow(room));
    deps.rooms.on('roomClosed', (room) => this.onRoomClosed(room));
  }

  /** Builds the node without I/O: the REST and signalling layers get it before the server listens. */
  static create(deps: ClusterNodeDeps): ClusterNode {
    return new ClusterNode(deps);
  }

  /** Connects to Redis and registers (once the server listens, so that its URL is known). */
  async start(): Promise<void> {
    await this.redis.connect();
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.deps.config.cluster.heartbeatMs);
    this.timer.unref();
    this.log.info({ url: this.url }, 'joined the cluster');
  }

  get url(): string {
    return this.deps.config.cluster.nodeUrl ?? this.deps.url();
  }

  /** Publishes the draining state at once, so no new room is assigned here. */
  drainStarted(): void {
    void this.tick();
  }

  /** Leaves the cluster in order (rooms already ended); idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    await this.ticking?.catch(() => undefined);
    try {
      await this.directory.leave(this.id);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not deregister');
    }
    this.redis.disconnect();
  }

  // -------------------------------------------------------------------------------------------
  // Placement and routing

  async createRoom(
    options: Partial<RoomOptions>,
    roomId?: string,
  ): Promise<{ local: Room } | { remote: RemoteRoomView }> {
    const { rooms, config } = this.deps;
    // A draining node still places new rooms, on the other nodes (pickNode leaves itself out).
    const id = roomId ?? `room_${randomUUID()}`;
    const merged = roomOptionsWithin(options, config.limits);
    const target = await this.pickNode();
    this.creating.add(id);
    try {
      const holder = await this.directory.claimRoom(id, target.id, merged);
      if (holder !== null) throw new SfuError('INVALID_STATE', 'room exists');
      if (target.id !== this.id) {
        this.pendingLoad.set(target.id, (this.pendingLoad.get(target.id) ?? 0) + 1);
        this.log.info({ room: id, host: target.id }, 'room assigned to another node');
        return {
          remote: {
            id,
            options: merged,
            createdAt: new Date().toISOString(),
            participants: [],
            node: target.url,
          },
        };
      }
      try {
        return { local: await rooms.createRoom(merged, id) };
      } catch (err) {
        await this.directory.releaseRoom(id, this.id).catch(() => undefined);
        throw err;
      }
    } finally {
      this.creating.delete(id);
    }
  }

  async locate(roomId: string): Promise<Room | undefined> {
    const local = this.deps.rooms.get(roomId);
    if (local) return local;
    const record = await this.directory.room(roomId);
    if (!record) return undefined;
    let host = record.node;
    if (host !== this.id) {
      const hostRecord = await this.liveNode(host);
      if (hostRecord) throw new RoomElsewhereError(hostRecord.url);
      // The host's heartbeat expired: move the room now rather than wait for the sweep.
      const target = await this.pickNode();
      host = (await this.directory.moveRoom(roomId, record.node, target.id)) ?? '';
      if (host !== this.id) {
        const moved = host ? await this.liveNode(host) : null;
        if (!moved) throw new SfuError('MEDIA_UNAVAILABLE', 'room is moving');
        throw new RoomElsewhereError(moved.url);
      }
      this.log.warn({ room: roomId, from: record.node }, 'room taken over from a dead node');
    }
    return this.adopt(roomId);
  }

  async admitJoin(claims: JoinClaims): Promise<void> {
    if (!(await this.directory.claimTokenId(claims.jti, claims.exp))) throw new SfuError('ACCESS_DENIED');
  }

  async resume(
    resumeToken: string,
    link: ParticipantLink,
  ): Promise<{ room: Room; participant: Participant }> {
    const digest = digestOf(resumeToken);
    const target = await this.directory.resumeTarget(digest);
    if (!target) throw new SfuError('RESUME_REJECTED');
    const room = await this.locate(target.roomId);
    if (!room || room.participants.has(target.participantId)) throw new SfuError('RESUME_REJECTED');
    const member = await this.directory.member(target.roomId, target.participantId);
    if (!member || member.resume !== digest) throw new SfuError('RESUME_REJECTED');
    if (!(await this.directory.takeMember(target.roomId, target.participantId, digest)))
      throw new SfuError('RESUME_REJECTED');
    const restored = await this.deps.rooms.restore(
      room,
      {
        id: member.id,
        role: member.role,
        displayName: member.displayName,
        rpps: member.rpps,
        identityStatus: member.idStatus,
      },
      ADMITTED_STATES.has(member.state),
      link,
      { e2ee: member.e2ee, e2eeKey: member.e2eeKey },
    );
    this.log.info({ room: room.id }, 'participant brought back after a node failure');
    return restored;
  }

  shareInvitation(accessCode: string, claims: JoinClaims): Promise<void> {
    return this.invitations.publish(accessCode, claims);
  }

  findInvitation(accessCode: string): Promise<JoinClaims | undefined> {
    return this.invitations.find(accessCode);
  }

  takeInvitation(accessCode: string): Promise<JoinClaims | undefined> {
    return this.invitations.take(accessCode);
  }

  tokenUsed(jti: string): Promise<boolean> {
    return this.directory.tokenIdUsed(jti);
  }

  /**
   * Publishes a room's membership as it changes, from the room's domain events (joined, every
   * state change, resumed with a new token, removed), so that another node taking the room over
   * knows who was admitted; the heartbeat only repairs what a failed write missed.
   */
  private follow(room: Room): void {
    const publish = (participant: Participant) => this.memberChanged(room, participant);
    room.events.on('participantJoined', publish);
    room.events.on('stateChanged', publish);
    room.events.on('resumed', publish);
    room.events.on('removed', publish);
  }

  private memberChanged(room: Room, participant: Participant): void {
    void this.syncRoom(room, [participant]).catch((err: unknown) =>
      this.log.warn({ err: (err as Error).message }, 'membership not published'),
    );
  }

  // -------------------------------------------------------------------------------------------
  // Heartbeat: registration, failure detection, adoption, membership

  private tick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.ticking ??= this.beat()
      .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'cluster heartbeat failed'))
      .finally(() => {
        this.ticking = undefined;
      });
    return this.ticking;
  }

  private async beat(): Promise<void> {
    const { config, rooms, pool } = this.deps;
    const record: NodeRecord = {
      id: this.id,
      url: this.url,
      load: pool.list().reduce((sum, slot) => sum + slot.load, 0),
      rooms: rooms.size,
      draining: rooms.draining,
      at: Date.now(),
    };
    await this.directory.heartbeat(record, config.cluster.nodeTtlMs);
    this.nodesCache = await this.directory.nodes();
    this.pendingLoad.clear();
    for (const [nodeId, node] of this.nodesCache) {
      if (node === null && nodeId !== this.id) await this.takeOverFrom(nodeId);
    }
    if (!rooms.draining) {
      for (const roomId of await this.directory.roomsOf(this.id)) {
        if (!rooms.get(roomId) && !this.creating.has(roomId)) await this.adopt(roomId);
      }
    }
    for (const room of rooms.list()) await this.syncRoom(room, [...room.participants.values()]);
  }

  /** Moves every room of a dead node to live nodes; one node does it, under a short lock. */
  private async takeOverFrom(deadId: string): Promise<void> {
    const { nodeTtlMs } = this.deps.config.cluster;
    if (!(await this.directory.lockFailover(deadId, this.id, nodeTtlMs))) return;
    const roomIds = await this.directory.roomsOf(deadId);
    this.log.warn({ dead: deadId, rooms: roomIds.length }, 'node lost; moving its rooms');
    for (const roomId of roomIds) {
      const target = await this.pickNode();
      await this.directory.moveRoom(roomId, deadId, target.id);
      if (target.id !== this.id) this.pendingLoad.set(target.id, (this.pendingLoad.get(target.id) ?? 0) + 1);
    }
    await this.directory.forgetNode(deadId);
  }

  /** Creates locally a room assigned to this node (new here, or moved from a dead node). */
  private adopt(roomId: string): Promise<Room | undefined> {
    const existing = this.adopting.get(roomId);
    if (existing) return existing;
    const adoption = (async () => {
      const record = await this.directory.room(roomId);
      if (!record || record.node !== this.id) return undefined;
      const local = this.deps.rooms.get(roomId);
      if (local) return local;
      const room = await this.deps.rooms.createRoom(record.options, roomId, true);
      if (record.epoch > 1) this.deps.rooms.record.incident(roomId, 'worker-died', undefined, 'node-lost');
      this.log.info({ room: roomId, epoch: record.epoch }, 'room adopted');
      return room;
    })().finally(() => this.adopting.delete(roomId));
    this.adopting.set(roomId, adoption);
    return adoption;
  }

  private async syncRoom(room: Room, participants: Participant[]): Promise<void> {
    if (room.closed || this.stopped) return;
    let written = this.written.get(room.id);
    if (!written) this.written.set(room.id, (written = new Map<string, string>()));
    const changed: MemberRecord[] = [];
    const stale: string[] = [];
    for (const participant of participants) {
      if (!participant.active || room.participants.get(participant.id) !== participant) continue;
      const record = memberRecord(participant);
      const text = JSON.stringify(record);
      const before = written.get(participant.id);
      if (before === text) continue;
      if (before) {
        const previous = JSON.parse(before) as MemberRecord;
        if (previous.resume !== record.resume) stale.push(previous.resume);
      }
      changed.push(record);
      written.set(participant.id, text);
    }
    const departed: string[] = [];
    for (const [participantId, text] of written) {
      const present = room.participants.get(participantId);
      if (present?.active) continue;
      departed.push(participantId);
      stale.push((JSON.parse(text) as MemberRecord).resume);
      written.delete(participantId);
    }
    if (changed.length === 0 && departed.length === 0) return;
    await this.directory.syncMembers(room.id, changed, departed, stale);
  }

  private onRoomClosed(room: Room): void {
    this.written.delete(room.id);
    if (this.stopped) return;
    void this.directory
      .releaseRoom(room.id, this.id)
      .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'room not released'));
  }

  // -------------------------------------------------------------------------------------------
  // Node choice

  /** A node whose heartbeat has not expired (a draining node still hosts its rooms). */
  private liveNode(nodeId: string): Promise<NodeRecord | null> {
    return this.directory.node(nodeId);
  }

  /** The least-loaded live node that takes rooms; this node wins ties. */
  private async pickNode(): Promise<NodeRecord> {
    if (this.nodesCache.size === 0) this.nodesCache = await this.directory.nodes();
    let best: NodeRecord | undefined;
    let bestLoad = Infinity;
    for (const node of this.nodesCache.values()) {
      if (!node || node.draining) continue;
      if (node.id === this.id && this.deps.rooms.draining) continue;
      const load = node.id === this.id ? this.ownLoad() : node.load + (this.pendingLoad.get(node.id) ?? 0);
      if (load < bestLoad || (load === bestLoad && node.id === this.id)) {
        best = node;
        bestLoad = load;
      }
    }
    if (!best) throw new SfuError('SERVER_DRAINING', 'no node takes new rooms');
    return best;
  }

  private ownLoad(): number {
    return this.deps.pool.list().reduce((sum, slot) => sum + slot.load, 0);
  }
}

function memberRecord(participant: Participant): MemberRecord {
  const { identity } = participant;
  return {
    id: identity.id,
    role: identity.role,
    displayName: identity.displayName,
    ...(identity.rpps !== undefined ? { rpps: identity.rpps } : {}),
    ...(identity.identityStatus !== undefined ? { idStatus: identity.identityStatus } : {}),
    state: participant.state,
    e2ee: participant.e2ee,
    ...(participant.e2eeKey !== undefined ? { e2eeKey: participant.e2eeKey } : {}),
    resume: digestOf(participant.resumeToken),
  };
}

import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { AdmissionState, RoomOptions, Role } from '../protocol/messages.js';

/** What a node publishes about itself with every heartbeat (key expires when it stops). */
export interface NodeRecord {
  id: string;
  /** Base URL clients use to reach this node directly (redirect target). */
  url: string;
  /** Routers plus consumers over all its workers: the placement criterion. */
  load: number;
  rooms: number;
  draining: boolean;
  /** Unix milliseconds of the heartbeat. */
  at: number;
}

export interface RoomRecord {
  node: string;
  options: RoomOptions;
  createdAt: string;
  /** Incremented at every move to another node. */
  epoch: number;
}

/**
 * A participant as needed to bring it back on another node after its host died: identity, the
 * admission it had reached, and the digest (never the value) of its current resume token.
 */
export interface MemberRecord {
  id: string;
  role: Role;
  displayName: string;
  rpps?: string;
  idStatus?: 'verified' | 'declared' | 'unverified';
  state: AdmissionState;
  e2ee: boolean;
  e2eeKey?: string;
  resume: string;
}

/** Resume tokens and used join-token ids live this long in Redis (a consultation is far shorter). */
const SESSION_TTL_S = 24 * 3600;

/** Writes the room's assignment only if the room is unknown; answers the current node otherwise. */
const CLAIM_ROOM = `
local current = redis.call('HGET', KEYS[1], 'node')
if current then return current end
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'options', ARGV[2], 'createdAt', ARGV[3], 'epoch', 1)
redis.call('SADD', KEYS[2], ARGV[4])
return false`;

/** Moves a room from a node to another only if it is still on the first one (one mover wins). */
const MOVE_ROOM = `
local current = redis.call('HGET', KEYS[1], 'node')
if not current then return false end
if current ~= ARGV[1] then return current end
redis.call('HSET', KEYS[1], 'node', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('SREM', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[3])
return ARGV[2]`;

/** Forgets an ended room, only on behalf of the node hosting it. */
const RELEASE_ROOM = `
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[2])
return 1`;

export function digestOf(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

/**
 * The cluster's shared state in Redis: which nodes live (TTL keys), which node hosts each room
 * (a hash written atomically by Lua scripts), and what is needed to bring a room back elsewhere.
 * Key layout in docs/cluster.md.
 */
export class RoomDirectory {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  async heartbeat(record: NodeRecord, ttlMs: number): Promise<void> {
    await this.redis
      .multi()
      .set(this.key('node', record.id), JSON.stringify(record), 'PX', ttlMs)
      .sadd(this.key('nodes'), record.id)
      .exec();
  }

  /**
   * A node leaving in order drops its heartbeat key at once. It stays listed, so that the next
   * sweep moves whatever rooms were still assigned to it, then forgets it.
   */
  async leave(nodeId: string): Promise<void> {
    await this.redis.del(this.key('node', nodeId));
  }

  /** Every registered node id with its record, or null for a node whose heartbeat expired. */
  async nodes(): Promise<Map<string, NodeRecord | null>> {
    const ids = await this.redis.smembers(this.key('nodes'));
    const out = new Map<string, NodeRecord | null>();
    if (ids.length === 0) return out;
    const values = await this.redis.mget(ids.map((id) => this.key('node', id)));
    ids.forEach((id, i) => {
      const text = values[i];
      out.set(id, text ? (JSON.parse(text) as NodeRecord) : null);
    });
    return out;
  }

  async node(nodeId: string): Promise<NodeRecord | null> {
    const text = await this.redis.get(this.key('node', nodeId));
    return text ? (JSON.parse(text) as NodeRecord) : null;
  }

  /** Assigns a new room to `nodeId`; returns the node already holding that id, if any. */
  async claimRoom(roomId: string, nodeId: string, options: RoomOptions): Promise<string | null> {
    const result = (await this.redis.eval(
      CLAIM_ROOM,
      2,
      this.key('room', roomId),
      this.key('noderooms', nodeId),
      nodeId,
      JSON.stringify(options),
      new Date().toISOString(),
      roomId,
    )) as string | null;
    return result;
  }

  /** Moves a room off a dead node; returns the node the room is on afterwards (null: no such room). */
  async moveRoom(roomId: string, from: string, to: string): Promise<string | null> {
    return (await this.redis.eval(
      MOVE_ROOM,
      3,
      this.key('room', roomId),
      this.key('noderooms', from),
      this.key('noderooms', to),
      from,
      to,
      roomId,
    )) as string | null;
  }

  async releaseRoom(roomId: string, nodeId: string): Promise<void> {
    await this.redis.eval(
      RELEASE_ROOM,
      3,
      this.key('room', roomId),
      this.key('members', roomId),
      this.key('noderooms', nodeId),
      nodeId,
      roomId,
    );
  }

  async room(roomId: string): Promise<RoomRecord | null> {
    const fields = await this.redis.hgetall(this.key('room', roomId));
    if (!fields.node || !fields.options) return null;
    return {
      node: fields.node,
      options: JSON.parse(fields.options) as RoomOptions,
      createdAt: fields.createdAt ?? new Date().toISOString(),
      epoch: Number(fields.epoch ?? 1),
    };
  }

  roomsOf(nodeId: string): Promise<string[]> {
    return this.redis.smembers(this.key('noderooms', nodeId));
  }

  /** Forgets a dead node once its rooms have moved. */
  async forgetNode(nodeId: string): Promise<void> {
    await this.redis.multi().del(this.key('noderooms', nodeId)).srem(this.key('nodes'), nodeId).exec();
  }

  /** One node at a time moves a dead node's rooms: a short lock, released by expiry. */
  async lockFailover(deadNodeId: string, byNodeId: string, ttlMs: number): Promise<boolean> {
    const ok = await this.redis.set(this.key('failover', deadNodeId), byNodeId, 'PX', ttlMs, 'NX');
    return ok === 'OK';
  }

  /** Writes changed members of a room and removes departed ones; maps new resume digests. */
  async syncMembers(
    roomId: string,
    changed: MemberRecord[],
    departed: string[],
    staleResumeDigests: string[],
  ): Promise<void> {
    const multi = this.redis.multi();
    if (changed.length > 0)
      multi.hset(this.key('members', roomId), ...changed.flatMap((m) => [m.id, JSON.stringify(m)]));
    if (departed.length > 0) multi.hdel(this.key('members', roomId), ...departed);
    for (const member of changed)
      multi.set(this.key('resume', member.resume), `${roomId} ${member.id}`, 'EX', SESSION_TTL_S);
    if (staleResumeDigests.length > 0)
      multi.del(...staleResumeDigests.map((digest) => this.key('resume', digest)));
    await multi.exec();
  }

  /** The room and participant a resume token belonged to, wherever it was issued. */
  async resumeTarget(resumeDigest: string): Promise<{ roomId: string; participantId: string } | null> {
    const value = await this.redis.get(this.key('resume', resumeDigest));
    const [roomId, participantId] = value?.split(' ') ?? [];
    return roomId && participantId ? { roomId, participantId } : null;
  }

  async member(roomId: string, participantId: string): Promise<MemberRecord | null> {
    const text = await this.redis.hget(this.key('members', roomId), participantId);
    return text ? (JSON.parse(text) as MemberRecord) : null;
  }

  /** Takes a member record out as it is brought back, so one old resume token serves once. */
  async takeMember(roomId: string, participantId: string, resumeDigest: string): Promise<boolean> {
    const removed = await this.redis.del(this.key('resume', resumeDigest));
    return removed === 1 && (await this.member(roomId, participantId)) !== null;
  }

  /** Join tokens are single-use across the cluster: false when this id was already used. */
  async claimTokenId(jti: string, expiresAtS: number): Promise<boolean> {
    const ttl = Math.max(1, Math.min(SESSION_TTL_S, expiresAtS - Math.floor(Date.now() / 1000) + 60));
    const ok = await this.redis.set(this.key('jti', digestOf(jti)), '1', 'EX', ttl, 'NX');
    return ok === 'OK';
  }

  /** Whether a join token id was used on any node (kept until the token's expiry + 60 s). */
  async tokenIdUsed(jti: string): Promise<boolean> {
    return (await this.redis.exists(this.key('jti', digestOf(jti)))) === 1;
  }
}

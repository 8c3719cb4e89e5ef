import type { JoinClaims } from '../auth/joinTokens.js';
import type { ClusterRouting, RemoteRoomView } from '../cluster/clusterNode.js';
import { isSfuError } from '../errors/catalogue.js';
import type { RoomOptions } from '../protocol/messages.js';
import type { Participant, ParticipantLink } from './participant.js';
import type { Room } from './room.js';
import type { RoomRegistry } from './roomRegistry.js';

export interface Member {
  room: Room;
  participant: Participant;
}

/**
 * Where rooms are found, created, joined and resumed. Signalling handlers and the REST API use
 * this one interface and never ask whether the server runs alone or in a cluster: the local
 * implementation serves this process's rooms; the clustered one places rooms across nodes, answers
 * ROOM_ELSEWHERE for rooms another node hosts, and takes over the rooms of a dead node.
 */
export interface RoomService {
  createRoom(
    options: Partial<RoomOptions>,
    roomId?: string,
  ): Promise<{ local: Room } | { remote: RemoteRoomView }>;
  /** The room when this process hosts it; throws RoomElsewhereError when another node does. */
  find(roomId: string): Promise<Room | undefined>;
  join(
    claims: JoinClaims,
    link: ParticipantLink,
    keys: { e2ee: boolean; e2eeKey?: string | undefined },
  ): Promise<Member>;
  resume(resumeToken: string, link: ParticipantLink): Promise<Member>;
}

/** One process, its own rooms. */
export class LocalRoomService implements RoomService {
  constructor(private readonly rooms: RoomRegistry) {}

  async createRoom(options: Partial<RoomOptions>, roomId?: string) {
    return { local: await this.rooms.createRoom(options, roomId) };
  }

  find(roomId: string): Promise<Room | undefined> {
    return Promise.resolve(this.rooms.get(roomId));
  }

  join(claims: JoinClaims, link: ParticipantLink, keys: { e2ee: boolean; e2eeKey?: string | undefined }) {
    return this.rooms.join(claims, link, keys);
  }

  resume(resumeToken: string, link: ParticipantLink): Promise<Member> {
    return Promise.resolve(this.rooms.resume(resumeToken, link));
  }
}

/** This process as one node of a cluster (docs/cluster.md). */
export class ClusteredRoomService implements RoomService {
  constructor(
    private readonly rooms: RoomRegistry,
    private readonly cluster: ClusterRouting,
  ) {}

  createRoom(options: Partial<RoomOptions>, roomId?: string) {
    return this.cluster.createRoom(options, roomId);
  }

  async find(roomId: string): Promise<Room | undefined> {
    return this.rooms.get(roomId) ?? (await this.cluster.locate(roomId));
  }

  async join(
    claims: JoinClaims,
    link: ParticipantLink,
    keys: { e2ee: boolean; e2eeKey?: string | undefined },
  ) {
    // Another node hosts the room: ROOM_ELSEWHERE names it. Single use holds across nodes.
    await this.cluster.locate(claims.room);
    await this.cluster.admitJoin(claims);
    const member = await this.rooms.join(claims, link, keys);
    this.cluster.memberChanged(member.room, member.participant);
    return member;
  }

  async resume(resumeToken: string, link: ParticipantLink): Promise<Member> {
    let member: Member;
    try {
      member = this.rooms.resume(resumeToken, link);
    } catch (err) {
      // Unknown here: the session may come from a node that died or lives elsewhere.
      if (!isSfuError(err) || err.code !== 'RESUME_REJECTED') throw err;
      member = await this.cluster.resume(resumeToken, link);
    }
    this.cluster.memberChanged(member.room, member.participant);
    return member;
  }
}

export function roomServiceFor(rooms: RoomRegistry, cluster: ClusterRouting | undefined): RoomService {
  return cluster ? new ClusteredRoomService(rooms, cluster) : new LocalRoomService(rooms);
}

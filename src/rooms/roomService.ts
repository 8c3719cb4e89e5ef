import type { JoinClaims } from '../auth/joinTokens.js';
import { claimsOf, type Invitation, type InvitationStore } from '../auth/invitations.js';
import type { ClusterRouting, RemoteRoomView } from '../cluster/clusterNode.js';
import { SfuError, isSfuError } from '../errors/catalogue.js';
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
  /** After an invitation is created: its access code becomes usable wherever it is typed. */
  invitationCreated(invitation: Invitation, accessCode: string): Promise<void>;
  /**
   * Exchanges an access code for its invitation's claims, once; wrong codes count towards the
   * lockout of `address`. In a cluster, a code for a room hosted elsewhere is left unused and
   * answered with ROOM_ELSEWHERE, so that the client types it there.
   */
  redeemAccessCode(accessCode: string, address: string): Promise<JoinClaims>;
}

/** One process, its own rooms. */
export class LocalRoomService implements RoomService {
  constructor(
    private readonly rooms: RoomRegistry,
    private readonly invitations: InvitationStore,
  ) {}

  invitationCreated(): Promise<void> {
    return Promise.resolve();
  }

  redeemAccessCode(accessCode: string, address: string): Promise<JoinClaims> {
    return Promise.resolve(this.invitations.redeem(accessCode, address));
  }

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
    private readonly invitations: InvitationStore,
  ) {}

  async invitationCreated(invitation: Invitation, accessCode: string): Promise<void> {
    await this.cluster.shareInvitation(accessCode, claimsOf(invitation));
  }

  async redeemAccessCode(accessCode: string, address: string): Promise<JoinClaims> {
    this.invitations.checkLockout(address);
    const shared = await this.cluster.findInvitation(accessCode);
    // Not shared (a code of the try-it page, or Redis lost it): this node's own codes, counted.
    if (!shared) return this.invitations.redeem(accessCode, address);
    // Hosted elsewhere: ROOM_ELSEWHERE before the code is used, so that it still works there.
    await this.cluster.locate(shared.room);
    const claims = await this.cluster.takeInvitation(accessCode);
    if (!claims) throw new SfuError('ACCESS_DENIED');
    // The node that created it forgets it too (no expiry webhook for a used invitation).
    this.invitations.useByTokenId(claims.jti);
    return claims;
  }

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
    // The cluster publishes the membership from the room's events (ClusterNode.follow).
    return this.rooms.join(claims, link, keys);
  }

  async resume(resumeToken: string, link: ParticipantLink): Promise<Member> {
    try {
      return this.rooms.resume(resumeToken, link);
    } catch (err) {
      // Unknown here: the session may come from a node that died or lives elsewhere.
      if (!isSfuError(err) || err.code !== 'RESUME_REJECTED') throw err;
      return this.cluster.resume(resumeToken, link);
    }
  }
}

export function roomServiceFor(
  rooms: RoomRegistry,
  cluster: ClusterRouting | undefined,
  invitations: InvitationStore,
): RoomService {
  return cluster
    ? new ClusteredRoomService(rooms, cluster, invitations)
    : new LocalRoomService(rooms, invitations);
}

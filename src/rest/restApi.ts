import { buildJoinLink } from '../protocol/joinLink.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID, timingSafeEqual, createHash } from 'node:crypto';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { SfuError, isSfuError } from '../errors/catalogue.js';
import { signJoinToken } from '../auth/joinTokens.js';
import type { RoomRegistry } from '../rooms/roomRegistry.js';
import type { Room } from '../rooms/room.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { firstViolation } from '../protocol/validators.js';
import { CreateInvitationBody, CreateRoomBody } from './schemas.js';
import { handlePhoneCalls } from './phoneCalls.js';
import type { InvitationStore } from '../auth/invitations.js';
import { ConsentTextInput, type ConsentRegistry } from '../consent/consentRegistry.js';
import { isJournalError, type JournalStore } from '../journal/index.js';
import { decodeJwt } from 'jose';
import type { SipGateway } from '../phone/gateway.js';
import type { RoomService } from '../rooms/roomService.js';
import { isRoomElsewhere } from '../cluster/roomElsewhere.js';

const createRoomCheck = TypeCompiler.Compile(CreateRoomBody);
const invitationCheck = TypeCompiler.Compile(CreateInvitationBody);
const consentTextCheck = TypeCompiler.Compile(ConsentTextInput);
const MAX_BODY_BYTES = 64 * 1024;
const DEFAULT_INVITATION_TTL_S = 600;

export interface RestDeps {
  rooms: RoomRegistry;
  invitations: InvitationStore;
  consentTexts: ConsentRegistry;
  journal: JournalStore;
  apiKeys: readonly string[];
  tokenSecret: Uint8Array;
  tokenAudience: string;
  maxTokenLifetimeS: number;
  publicUrl: () => string;
  /** The front-end page invitation links open (server.joinBaseUrl); the try-it page when null. */
  joinBaseUrl?: string | null | undefined;
  log: Logger;
  onDrain: () => void;
  /** Refusals are counted in sfu_rejections_total like the signalling ones. */
  metrics?: Metrics;
  /** The SIP gateway, when phone.enabled. */
  phone?: SipGateway | undefined;
  /** Finds and creates rooms, wherever they live (local or clustered). */
  roomService: RoomService;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, error: SfuError): void {
  sendJson(res, error.status, error.toJSON());
}

export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) throw new SfuError('MESSAGE_TOO_LARGE');
      chunks.push(chunk);
    }
  } catch (err) {
    // A client that aborts mid-body is not a server failure.
    if (isSfuError(err)) throw err;
    throw new SfuError('MESSAGE_MALFORMED', 'incomplete body');
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new SfuError('MESSAGE_MALFORMED');
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Platform REST API: rooms, invitations, participants, drain. Authenticated by API key. */
export class RestApi {
  private readonly keyDigests: Buffer[];

  constructor(private readonly deps: RestDeps) {
    this.keyDigests = deps.apiKeys.map(digest);
  }

  /** Returns false when the path is not part of this API. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    if (!path.startsWith('/v1/') && path !== '/admin/drain') return false;
    try {
      this.authenticate(req);
      await this.route(req, res, path);
    } catch (err) {
      if (isRoomElsewhere(err)) res.setHeader('Location', err.redirectFor(req.url ?? path));
      if (isSfuError(err)) {
        this.deps.metrics?.rejections.inc({ code: err.code });
        sendError(res, err);
      } else {
        this.deps.log.error({ err: (err as Error).message }, 'REST request failed');
        sendError(res, new SfuError('INTERNAL'));
      }
    }
    return true;
  }

  private authenticate(req: IncomingMessage): void {
    const header = req.headers.authorization ?? '';
    const key = header.startsWith('Bearer ') ? header.slice(7) : '';
    // Compare digests in constant time so the key cannot be found byte by byte.
    const candidate = digest(key);
    const valid = key.length > 0 && this.keyDigests.some((known) => timingSafeEqual(known, candidate));
    if (!valid) throw new SfuError('API_KEY_INVALID');
  }

  private async route(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const parts = path.split('/').filter(Boolean);
    const method = req.method ?? 'GET';
    if (path === '/admin/drain' && method === 'POST') {
      this.deps.onDrain();
      return sendJson(res, 202, { draining: true });
    }
    if (parts[0] === 'v1' && parts[1] === 'consent-texts' && parts.length === 2) {
      if (method === 'GET') return sendJson(res, 200, this.deps.consentTexts.list());
      if (method === 'POST') {
        const body = await readJsonBody(req);
        if (!consentTextCheck.Check(body))
          throw new SfuError('MESSAGE_INVALID', firstViolation(consentTextCheck, body));
        return sendJson(res, 201, this.deps.consentTexts.register(body));
      }
    }
    if (parts[0] !== 'v1' || parts[1] !== 'rooms') throw new SfuError('NOT_FOUND');
    // The journal outlives the room: it is exported after the consultation ended.
    if (parts.length === 4 && parts[3] === 'journal' && method === 'GET')
      return this.exportJournal(res, parts[2] ?? '');
    if (parts.length === 2) {
      if (method === 'POST') return this.createRoom(req, res);
      if (method === 'GET') return sendJson(res, 200, this.deps.rooms.list().map(roomView));
      throw new SfuError('NOT_FOUND');
    }
    const roomId = parts[2] ?? '';
    const room = await this.deps.roomService.find(roomId);
    if (!room) throw new SfuError('NOT_FOUND');
    if (parts.length === 3) {
      if (method === 'GET') return sendJson(res, 200, roomView(room));
      if (method === 'DELETE') {
        await this.deps.rooms.endRoom(room, 'ended', 'platform');
        res.writeHead(204).end();
        return;
      }
    }
    if (parts.length === 4 && parts[3] === 'invitations' && method === 'POST')
      return this.invite(req, res, room);
    if (parts.length === 4 && parts[3] === 'participants' && method === 'GET') {
      return sendJson(
        res,
        200,
        [...room.participants.values()].map((p) => p.info()),
      );
    }
    if ((parts.length === 4 || parts.length === 5) && parts[3] === 'phone-calls')
      return handlePhoneCalls(this.deps.phone, room, parts[4], method, req, res, readJsonBody, sendJson);
    if (parts.length === 5 && parts[3] === 'participants' && method === 'DELETE') {
      const participant = room.participants.get(parts[4] ?? '');
      if (!participant) throw new SfuError('NOT_FOUND');
      await this.deps.rooms.removeByPlatform(room, participant);
      res.writeHead(204).end();
      return;
    }
    throw new SfuError('NOT_FOUND');
  }

  private async createRoom(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJsonBody(req);
    if (!createRoomCheck.Check(body))
      throw new SfuError('MESSAGE_INVALID', firstViolation(createRoomCheck, body));
    const placed = await this.deps.roomService.createRoom(body.options ?? {}, body.roomId);
    sendJson(res, 201, 'local' in placed ? roomView(placed.local) : placed.remote);
  }

  private async invite(req: IncomingMessage, res: ServerResponse, room: Room): Promise<void> {
    const body = await readJsonBody(req);
    if (!invitationCheck.Check(body))
      throw new SfuError('MESSAGE_INVALID', firstViolation(invitationCheck, body));
    const limit = this.deps.maxTokenLifetimeS;
    if (body.ttlS !== undefined && body.ttlS > limit)
      throw new SfuError('MESSAGE_INVALID', `ttlS ${body.ttlS} exceeds auth.maxTokenLifetimeS (${limit})`);
    const ttlS = Math.min(body.ttlS ?? DEFAULT_INVITATION_TTL_S, limit);
    const participantId = body.participantId ?? `p_${randomUUID()}`;
    const token = await signJoinToken(this.deps.tokenSecret, this.deps.tokenAudience, {
      room: room.id,
      participantId,
      role: body.role,
      ttlS,
      ...(body.displayName !== undefined ? { displayName: body.displayName } : {}),
      ...(body.rpps !== undefined ? { rpps: body.rpps } : {}),
    });
    const { invitation, accessCode } = this.deps.invitations.create({
      roomId: room.id,
      participantId,
      role: body.role,
      displayName: body.displayName,
      rpps: body.rpps,
      tokenId: decodeJwt(token).jti ?? '',
      ttlS,
    });
    // Without Redis the code still works on this node (the room's host), where links lead too.
    await this.deps.roomService
      .invitationCreated(invitation, accessCode)
      .catch((err: unknown) =>
        this.deps.log.warn({ room: room.id, err: (err as Error).message }, 'access code not shared'),
      );
    await this.deps.rooms.record.record(room.id, 'participant.invited', {
      participantId,
      role: body.role,
      channel: 'link',
      expiresAt: new Date(Date.now() + ttlS * 1000).toISOString(),
    });
    sendJson(res, 201, {
      participantId,
      role: body.role,
      token,
      accessCode,
      joinUrl: buildJoinLink(this.deps.joinBaseUrl ?? `${this.deps.publicUrl()}/`, token),
      ttlS,
      expiresAt: new Date(Date.now() + ttlS * 1000).toISOString(),
    });
  }

  private async exportJournal(res: ServerResponse, roomId: string): Promise<void> {
    try {
      sendJson(res, 200, await this.deps.journal.export(roomId));
    } catch (err) {
      if (isJournalError(err) && (err.code === 'JOURNAL_NOT_FOUND' || err.code === 'JOURNAL_INVALID_ID')) {
        throw new SfuError('NOT_FOUND');
      }
      throw err;
    }
  }
}

export function roomView(room: Room) {
  return {
    id: room.id,
    options: room.options,
    createdAt: room.createdAt.toISOString(),
    participants: [...room.participants.values()].map((p) => p.info()),
  };
}

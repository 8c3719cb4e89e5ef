import type { Static } from '@sinclair/typebox';
import type { ConsentText, ConsentTextInput } from '../consent/consentRegistry.js';
import type { JournalExport } from '../journal/exportFormat.js';
import type { ParticipantInfo } from '../protocol/messages.js';
import type {
  CreateInvitationBody,
  CreateRoomBody,
  DialOutBody,
  ErrorView,
  InvitationView,
  RoomView,
} from '../rest/schemas.js';

/**
 * A typed client of the media server's REST API for a platform's backend. Its request and answer
 * types are the TypeBox schemas that validate the server's input and make its OpenAPI document
 * (src/rest/schemas.ts), so the client cannot drift from the server. Node 20+ (global `fetch`).
 */

export type Room = Static<typeof RoomView>;
export type Invitation = Static<typeof InvitationView>;
export type { CreateInvitationBody, CreateRoomBody, JournalExport, ParticipantInfo };
export type DialOut = Static<typeof DialOutBody>;
export type { ConsentText, ConsentTextInput };

/** An error answer of the API, with its stable `code` (docs/errors.md), or a transport failure. */
export class TeleconsultApiError extends Error {
  constructor(
    /** HTTP status; 0 when no answer came (network, time-out). */
    readonly status: number,
    /** Server error code (e.g. ROOM_NOT_FOUND is NOT_FOUND, MESSAGE_INVALID), or NETWORK_ERROR. */
    readonly code: string,
    message: string,
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'TeleconsultApiError';
  }
}

export interface TeleconsultClientOptions {
  /** The media server's base URL, e.g. `https://video.example.fr`. */
  baseUrl: string;
  /** One of the server's `auth.apiKeys`. Keep it on the backend: never ship it to a browser. */
  apiKey: string;
  /** Per request (default 10 000 ms). */
  timeoutMs?: number;
  /** A `fetch` implementation (default: the global one). */
  fetch?: typeof fetch;
}

/** Longest error text kept from a non-JSON answer (a proxy's HTML page). */
const MAX_ERROR_TEXT = 200;

export class TeleconsultClient {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: TeleconsultClientOptions) {
    if (!/^https?:\/\//.test(options.baseUrl)) throw new TypeError('baseUrl must be an http(s) URL');
    if (!options.apiKey) throw new TypeError('apiKey is required');
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.fetchImpl = options.fetch ?? fetch;
  }

  createRoom(body: CreateRoomBody = {}): Promise<Room> {
    return this.call('POST', '/v1/rooms', body);
  }

  listRooms(): Promise<Room[]> {
    return this.call('GET', '/v1/rooms');
  }

  getRoom(roomId: string): Promise<Room> {
    return this.call('GET', `/v1/rooms/${segment(roomId)}`);
  }

  /** Ends the consultation for everyone; its journal becomes exportable. */
  async endRoom(roomId: string): Promise<void> {
    await this.call('DELETE', `/v1/rooms/${segment(roomId)}`);
  }

  /** A single-use join token, its link (`joinUrl`, token in the fragment) and an access code. */
  createInvitation(roomId: string, body: CreateInvitationBody): Promise<Invitation> {
    return this.call('POST', `/v1/rooms/${segment(roomId)}/invitations`, body);
  }

  listParticipants(roomId: string): Promise<ParticipantInfo[]> {
    return this.call('GET', `/v1/rooms/${segment(roomId)}/participants`);
  }

  async removeParticipant(roomId: string, participantId: string): Promise<void> {
    await this.call('DELETE', `/v1/rooms/${segment(roomId)}/participants/${segment(participantId)}`);
  }

  /** The consultation's hash-chained journal, once the room has ended. */
  exportJournal(roomId: string): Promise<JournalExport> {
    return this.call('GET', `/v1/rooms/${segment(roomId)}/journal`);
  }

  listConsentTexts(): Promise<ConsentText[]> {
    return this.call('GET', '/v1/consent-texts');
  }

  registerConsentText(text: ConsentTextInput): Promise<ConsentText> {
    return this.call('POST', '/v1/consent-texts', text);
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await this.fetchImpl(this.baseUrl + path, {
        method,
        headers: {
          Authorization: `Bearer ${this.options.apiKey}`,
          ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new TeleconsultApiError(0, 'NETWORK_ERROR', `${method} ${path}: ${(err as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) throw apiError(res.status, text);
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new TeleconsultApiError(res.status, 'UNEXPECTED_RESPONSE', `${method} ${path}: not JSON`);
    }
  }
}

function segment(value: string): string {
  return encodeURIComponent(value);
}

function apiError(status: number, text: string): TeleconsultApiError {
  try {
    const body = JSON.parse(text) as Partial<Static<typeof ErrorView>>;
    if (typeof body.code === 'string')
      return new TeleconsultApiError(status, body.code, body.message ?? body.code, body.detail);
  } catch {
    // Not the API's JSON (a proxy answered): keep the status and the start of the text.
  }
  return new TeleconsultApiError(status, `HTTP_${status}`, text.slice(0, MAX_ERROR_TEXT));
}

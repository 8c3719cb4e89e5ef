import type { Role, RoomOptions } from '../../../src/protocol/messages.js';
import { TargetError } from '../../harness/target.js';

export interface Invitation {
  participantId: string;
  token: string;
}

/** The platform side of our server: the REST calls a teleconsultation backend makes, with its API key. */
export class PlatformApi {
  constructor(
    readonly baseUrl: string,
    private readonly apiKey: string,
  ) {}

  async createRoom(options: Partial<RoomOptions>): Promise<string> {
    const room = await this.call<{ id: string }>('POST', '/v1/rooms', { options });
    return room.id;
  }

  invite(roomId: string, role: Role, participantId: string): Promise<Invitation> {
    return this.call<Invitation>('POST', `/v1/rooms/${encodeURIComponent(roomId)}/invitations`, {
      role,
      participantId,
    });
  }

  async deleteRoom(roomId: string): Promise<void> {
    await this.call('DELETE', `/v1/rooms/${encodeURIComponent(roomId)}`);
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(this.baseUrl + path, {
      method,
      headers: { Authorization: `Bearer ${this.apiKey}`, 'Content-Type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    if (!res.ok) {
      let code = `HTTP ${res.status}`;
      try {
        code = (JSON.parse(text) as { code?: string }).code ?? code;
      } catch {
        // Not JSON: keep the status.
      }
      throw new TargetError(`${method} ${path.replace(/room_[0-9a-f-]+/, ':id')}: ${code}`);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

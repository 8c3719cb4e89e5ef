import type { ServerResponse } from 'node:http';
import { decodeJwt } from 'jose';
import { signJoinToken } from '../auth/joinTokens.js';
import type { InvitationStore } from '../auth/invitations.js';
import type { RoomRegistry } from '../rooms/roomRegistry.js';
import { sendJson } from '../rest/restApi.js';

/**
 * The try-it page's backend: creates a test consultation and signs a practitioner and a patient
 * token, standing in for a platform backend. Enabled by `server.demoPage`; turn it off in production.
 */
export class DemoEndpoint {
  constructor(
    private readonly rooms: RoomRegistry,
    private readonly tokenSecret: Uint8Array,
    private readonly audience: string,
    private readonly invitations: InvitationStore,
  ) {}

  async create(res: ServerResponse): Promise<void> {
    const room = await this.rooms.createRoom({ waitingRoom: true, maxParticipants: 4 });
    const ttlS = 600;
    const practitioner = await signJoinToken(this.tokenSecret, this.audience, {
      room: room.id,
      participantId: 'practitioner-1',
      role: 'practitioner',
      displayName: 'Dr Martin',
      ttlS,
    });
    const patient = await signJoinToken(this.tokenSecret, this.audience, {
      room: room.id,
      participantId: 'patient-1',
      role: 'patient',
      displayName: 'Patient',
      ttlS,
    });
    // A companion (third party) joins with a typed access code: it shows the third-party consent flow.
    const assistantToken = await signJoinToken(this.tokenSecret, this.audience, {
      room: room.id,
      participantId: 'assistant-1',
      role: 'assistant',
      displayName: 'Accompagnant',
      ttlS,
    });
    const { accessCode } = this.invitations.create({
      roomId: room.id,
      participantId: 'assistant-1',
      role: 'assistant',
      displayName: 'Accompagnant',
      rpps: undefined,
      tokenId: decodeJwt(assistantToken).jti ?? '',
      ttlS,
    });
    sendJson(res, 201, {
      roomId: room.id,
      tokens: { practitioner, patient },
      assistantAccessCode: accessCode,
    });
  }
}

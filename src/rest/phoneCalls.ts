import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { SfuError } from '../errors/catalogue.js';
import type { PhoneCallStatus, SipGateway } from '../phone/gateway.js';
import { firstViolation } from '../protocol/validators.js';
import type { Room } from '../rooms/room.js';
import { DialOutBody } from './schemas.js';

const dialOutCheck = TypeCompiler.Compile(DialOutBody);

type Reply = (res: ServerResponse, status: number, body: unknown) => void;

/**
 * `/v1/rooms/{roomId}/phone-calls[/{callId}]`: the server calls a phone into the room (dial-out)
 * with the role of the person called, reports the call's state, and hangs it up.
 */
export async function handlePhoneCalls(
  phone: SipGateway | undefined,
  room: Room,
  callId: string | undefined,
  method: string,
  req: IncomingMessage,
  res: ServerResponse,
  readBody: (req: IncomingMessage) => Promise<unknown>,
  reply: Reply,
): Promise<void> {
  if (!phone) throw new SfuError('NOT_FOUND', 'phone gateway disabled');
  if (callId === undefined) {
    if (method !== 'POST') throw new SfuError('NOT_FOUND');
    if (room.closed) throw new SfuError('ROOM_CLOSED');
    if (!room.options.phoneAllowed)
      throw new SfuError('FORBIDDEN_FOR_ROLE', 'phone not allowed in this room');
    const body = await readBody(req);
    if (!dialOutCheck.Check(body)) throw new SfuError('MESSAGE_INVALID', firstViolation(dialOutCheck, body));
    const participantId = body.participantId ?? `phone_${randomUUID()}`;
    if (room.participants.get(participantId)?.active)
      throw new SfuError('INVALID_STATE', 'participant already present');
    const call = phone.dialOut({ to: body.to, roomId: room.id, participantId, role: body.role ?? 'patient' });
    const status = phone.callStatus(call.callId);
    return reply(res, 201, view(status ?? placeholder(call.callId, room.id, participantId, body.role)));
  }
  const status = phone.callStatus(callId);
  if (!status || status.roomId !== room.id) throw new SfuError('NOT_FOUND');
  if (method === 'GET') return reply(res, 200, view(status));
  if (method === 'DELETE') return reply(res, 200, view(phone.hangup(callId) ?? status));
  throw new SfuError('NOT_FOUND');
}

/** Before the gateway's record exists (the room check is asynchronous), the call is ringing. */
function placeholder(callId: string, roomId: string, participantId: string, role?: string): PhoneCallStatus {
  return {
    callId,
    direction: 'dial-out',
    state: 'ringing',
    roomId,
    participantId,
    role: role ?? 'patient',
    reason: undefined,
    sipStatus: undefined,
  };
}

function view(status: PhoneCallStatus) {
  return {
    callId: status.callId,
    roomId: status.roomId,
    participantId: status.participantId,
    role: status.role,
    direction: status.direction,
    state: status.state,
    ...(status.reason !== undefined ? { reason: status.reason } : {}),
    ...(status.sipStatus !== undefined ? { sipStatus: status.sipStatus } : {}),
  };
}

import { Type, type Static } from '@sinclair/typebox';
import { Role, RoomOptions } from '../protocol/messages.js';

/** Request bodies of the platform REST API (validated at the boundary; also feed the OpenAPI document). */
const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' });
/** A room id also names its journal file: '.' and '..' are not ids. */
const RoomId = Type.String({ minLength: 1, maxLength: 64, pattern: '^(?!\\.{1,2}$)[A-Za-z0-9_.:-]+$' });

export const CreateRoomBody = Type.Object(
  {
    roomId: Type.Optional(RoomId),
    options: Type.Optional(
      Type.Partial(RoomOptions, {
        additionalProperties: false,
        description:
          'maxParticipants above the server limit `limits.maxParticipantsPerRoom` is refused (400 MESSAGE_INVALID naming the limit), never lowered; omitted, it is 4 or that limit if lower. The answer states the options applied.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type CreateRoomBody = Static<typeof CreateRoomBody>;

export const CreateInvitationBody = Type.Object(
  {
    role: Role,
    participantId: Type.Optional(Id),
    displayName: Type.Optional(Type.String({ maxLength: 128 })),
    rpps: Type.Optional(Type.String({ maxLength: 32 })),
    ttlS: Type.Optional(
      Type.Integer({
        minimum: 30,
        maximum: 86400,
        description:
          'Lifetime of the invitation and its token, 600 s by default. Above the server limit `auth.maxTokenLifetimeS` the request is refused (400 MESSAGE_INVALID naming the limit), never shortened.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type CreateInvitationBody = Static<typeof CreateInvitationBody>;

export const RoomView = Type.Object({
  id: Id,
  options: RoomOptions,
  createdAt: Type.String(),
  participants: Type.Array(Type.Unknown()),
});

export const InvitationView = Type.Object({
  participantId: Id,
  role: Role,
  token: Type.String(),
  /** Short numeric code, an alternative to the link for people who type it (single use). */
  accessCode: Type.String({
    pattern: '^[0-9]{8}$',
    description:
      'Single-use 8-digit code: typed instead of the link, and the PIN a caller keys in when dialling in by phone.',
  }),
  joinUrl: Type.String(),
  /** The lifetime applied, in seconds (the one asked for, or the default). */
  ttlS: Type.Integer({
    description: 'The lifetime applied, in seconds (the one asked for, or the default).',
  }),
  expiresAt: Type.String(),
});

export const ErrorView = Type.Object({
  code: Type.String(),
  message: Type.String(),
  detail: Type.Optional(Type.String()),
});

export const DialOutBody = Type.Object(
  {
    /** SIP URI of the phone to call, e.g. `sip:+33612345678@trunk.example`. Never logged. */
    to: Type.String({ minLength: 8, maxLength: 256, pattern: '^sips?:[^\\s<>"]+$' }),
    /** Role the person called joins with; only a patient is asked to consent by keypress. */
    role: Type.Optional(Role),
    participantId: Type.Optional(Id),
  },
  { additionalProperties: false },
);

const CallState = Type.Union(
  ['ringing', 'answered', 'pin', 'consent', 'waiting', 'in-call', 'ended', 'failed'].map((s) =>
    Type.Literal(s),
  ),
  {
    description:
      'ringing (not answered yet), answered, consent (notice and keypress), waiting (waiting room), in-call, ended (after being answered) or failed (never answered).',
  },
);

export const PhoneCallView = Type.Object({
  callId: Type.String(),
  roomId: Id,
  participantId: Id,
  role: Role,
  direction: Type.Union([Type.Literal('dial-out'), Type.Literal('dial-in')]),
  state: CallState,
  reason: Type.Optional(
    Type.String({
      description:
        'Why it ended (hangup: the phone hung up; ended: hung up through the API; removed; declined; media-timeout; error) or failed (busy, rejected, no-answer, cancelled, unreachable, auth-failed, no-common-codec, room-unavailable, busy-here, srtp-required, srtp-mismatch, closed).',
    }),
  ),
  sipStatus: Type.Optional(
    Type.Integer({ description: 'Final SIP status of a failed call, when one came.' }),
  ),
});

import { Type, type Static } from '@sinclair/typebox';
import { Role, RoomOptions } from '../protocol/messages.js';

/** Request bodies of the platform REST API (validated at the boundary; also feed the OpenAPI document). */
const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' });

export const CreateRoomBody = Type.Object(
  {
    roomId: Type.Optional(Id),
    options: Type.Optional(Type.Partial(RoomOptions, { additionalProperties: false })),
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
    ttlS: Type.Optional(Type.Integer({ minimum: 30, maximum: 86400 })),
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
  accessCode: Type.String(),
  joinUrl: Type.String(),
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
    to: Type.String({ minLength: 8, maxLength: 256, pattern: '^sips?:' }),
    participantId: Type.Optional(Id),
  },
  { additionalProperties: false },
);

import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';

/**
 * What the journal records: the facts of a consultation that the server witnesses and that
 * R.6316-4 asks the record to hold (who the professionals are, when, which consent, who was
 * admitted, technical incidents). Never media, never health content: free text is not accepted,
 * only short identifiers and tokens, and every object rejects unknown members.
 */

const Id = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:-]+$' });
/** A short machine token such as a role or a reason ('practitioner', 'ended-by-practitioner'). */
const Token = Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9_.-]*$' });
const IsoTime = Type.String({
  minLength: 20,
  maxLength: 40,
  pattern: '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d',
});
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const Strict = { additionalProperties: false } as const;

/**
 * Role of a participant. Recommended values: 'practitioner', 'patient', 'nurse', 'pharmacist',
 * 'interpreter', 'family', 'other'.
 */
export const ParticipantRole = Token;

/** Identity status of the patient (R.6316-3): checked against an identity proof, or only declared. */
export const IdentityStatus = Type.Union([
  Type.Literal('verified'),
  Type.Literal('declared'),
  Type.Literal('unverified'),
]);

/**
 * Identifiers of a health professional as carried by the platform's token (Pro Santé Connect).
 * Allowed here because the journal is the legal record; they must never reach a log line.
 */
export const ProfessionalIdentity = Type.Object(
  {
    /** RPPS number (11 digits in practice; any short identifier the platform's token carries is kept). */
    rpps: Type.Optional(Type.String({ minLength: 1, maxLength: 32, pattern: '^[0-9A-Za-z_.:/-]+$' })),
    adeli: Type.Optional(Type.String({ pattern: '^[0-9A-Za-z]{9}$' })),
    nationalId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[0-9A-Za-z/_.-]+$' })),
    profession: Type.Optional(Token),
    authMethod: Type.Optional(Token),
  },
  Strict,
);

/** Which consent text the participant accepted: its identity, version, content hash and purpose. */
export const ConsentReference = Type.Object(
  {
    textId: Id,
    version: Type.String({ minLength: 1, maxLength: 32, pattern: '^[0-9A-Za-z._-]+$' }),
    hash: Sha256,
    /** 'teleconsultation', 'third-party', 'recording', 'secondary-use', ... */
    purpose: Token,
    locale: Type.Optional(Type.String({ pattern: '^[a-z]{2}(-[A-Z]{2})?$' })),
  },
  Strict,
);

export const IncidentKind = Type.Union([
  Type.Literal('connection-lost'),
  Type.Literal('reconnected'),
  Type.Literal('worker-died'),
  Type.Literal('phone-fallback'),
  Type.Literal('e2ee-downgraded'),
  Type.Literal('network-poor'),
  // The consultation's journal was found corrupt and moved aside (sent as a webhook, not journalled).
  Type.Literal('journal-corrupt'),
]);

const ParticipantRef = { participantId: Id, role: ParticipantRole };

export const JournalEventSchemas = {
  'consultation.created': Type.Object(
    {
      consultationId: Id,
      createdAt: Type.Optional(IsoTime),
      scheduledAt: Type.Optional(IsoTime),
      /** The platform's own reference for this consultation (opaque, no personal data). */
      platformRef: Type.Optional(Id),
      e2ee: Type.Optional(Type.Boolean()),
      maxParticipants: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    },
    Strict,
  ),
  'participant.invited': Type.Object(
    {
      ...ParticipantRef,
      channel: Type.Optional(
        Type.Union([Type.Literal('link'), Type.Literal('access-code'), Type.Literal('phone')]),
      ),
      expiresAt: Type.Optional(IsoTime),
      professional: Type.Optional(ProfessionalIdentity),
    },
    Strict,
  ),
  'participant.waiting': Type.Object(
    { ...ParticipantRef, identityStatus: Type.Optional(IdentityStatus) },
    Strict,
  ),
  'consent.given': Type.Object(
    {
      participantId: Id,
      consent: ConsentReference,
      /** For a third-party consent: the request it answers. */
      requestId: Type.Optional(Id),
    },
    Strict,
  ),
  'consent.withdrawn': Type.Object(
    { participantId: Id, consent: ConsentReference, requestId: Type.Optional(Id) },
    Strict,
  ),
  'participant.admitted': Type.Object(
    {
      ...ParticipantRef,
      /** The professional who admitted; absent when the participant joined directly (the practitioner). */
      admittedBy: Type.Optional(Id),
      identityStatus: Type.Optional(IdentityStatus),
      professional: Type.Optional(ProfessionalIdentity),
    },
    Strict,
  ),
  'participant.declined': Type.Object({ participantId: Id, by: Id, reason: Type.Optional(Token) }, Strict),
  'participant.held': Type.Object({ participantId: Id, by: Id }, Strict),
  'participant.removed': Type.Object({ participantId: Id, by: Id, reason: Type.Optional(Token) }, Strict),
  'participant.left': Type.Object(
    {
      participantId: Id,
      reason: Type.Optional(Token),
    },
    Strict,
  ),
  'thirdparty.requested': Type.Object(
    {
      requestId: Id,
      requestedBy: Id,
      /** Role the third party will have ('nurse', 'interpreter', 'family', ...). */
      role: ParticipantRole,
      participantId: Type.Optional(Id),
    },
    Strict,
  ),
  'thirdparty.approved': Type.Object(
    { requestId: Id, approvedBy: Id, participantId: Type.Optional(Id) },
    Strict,
  ),
  /** A practitioner asked a device holder for a device source ("show the ear"). */
  'device.requested': Type.Object(
    { requestedBy: Id, participantId: Id, source: Token, deviceType: Type.Optional(Token) },
    Strict,
  ),
  /** A practitioner took a still of an examination video; the image is never journalled. */
  'device.still': Type.Object(
    { takenBy: Id, participantId: Id, producerId: Id, deviceType: Type.Optional(Token) },
    Strict,
  ),
  /** A connected device started sending (its media or its readings; never the readings themselves). */
  'device.started': Type.Object(
    { useId: Id, participantId: Id, role: ParticipantRole, source: Token, deviceType: Token },
    Strict,
  ),
  'device.stopped': Type.Object(
    { useId: Id, participantId: Id, durationS: Type.Integer({ minimum: 0 }) },
    Strict,
  ),
  incident: Type.Object(
    {
      kind: IncidentKind,
      participantId: Type.Optional(Id),
      /** A short machine token that precises the kind ('ice-failed', 'udp-blocked', ...). */
      detail: Type.Optional(Token),
    },
    Strict,
  ),
  'consultation.ended': Type.Object(
    {
      reason: Token,
      endedBy: Type.Optional(Id),
      durationS: Type.Optional(Type.Integer({ minimum: 0 })),
    },
    Strict,
  ),
  /**
   * Written by the journal itself (never by the room code) after every N records and after
   * consultation.ended: an Ed25519 signature over the record just before it (see signing.ts).
   */
  'journal.checkpoint': Type.Object(
    {
      signedSeq: Type.Integer({ minimum: 1 }),
      signedHash: Sha256,
      keyId: Type.String({ pattern: '^[0-9a-f]{16}$' }),
      signature: Type.String({ pattern: '^[A-Za-z0-9_-]{86}$' }),
    },
    Strict,
  ),
} as const satisfies Record<string, TSchema>;

export type JournalEventType = keyof typeof JournalEventSchemas;
export type JournalEventData<T extends JournalEventType = JournalEventType> = Static<
  (typeof JournalEventSchemas)[T]
>;
export const JOURNAL_EVENT_TYPES = Object.keys(JournalEventSchemas) as JournalEventType[];

const checkers = new Map<string, TypeCheck<TSchema>>(
  Object.entries(JournalEventSchemas).map(([type, schema]) => [type, TypeCompiler.Compile(schema)]),
);

export function isJournalEventType(type: unknown): type is JournalEventType {
  return typeof type === 'string' && checkers.has(type);
}

/** Why `data` is not valid for `type`, or null when it is. Names the path, never the value. */
export function explainInvalidEvent(type: unknown, data: unknown): string | null {
  if (typeof type !== 'string') return 'type is not a string';
  const checker = checkers.get(type);
  if (!checker) return `unknown event type ${JSON.stringify(type.slice(0, 64))}`;
  if (checker.Check(data)) return null;
  const first = checker.Errors(data).First();
  return first ? `${type}: ${first.path || '/'} ${first.message}` : `${type}: invalid data`;
}

/**
 * The one catalogue of errors the server returns, over WebSocket and REST. Codes are stable:
 * the SDK and platform backends branch on them, never on messages. Every code is documented in
 * docs/errors.md (a test fails otherwise). Messages never carry personal data.
 */
export const ERROR_CATALOGUE = {
  MESSAGE_MALFORMED: { status: 400, message: 'The message is not valid JSON.' },
  MESSAGE_INVALID: { status: 400, message: 'The message does not match the protocol schema.' },
  MESSAGE_TOO_LARGE: { status: 413, message: 'The message exceeds the size limit.' },
  METHOD_UNKNOWN: { status: 400, message: 'The method is not part of this protocol version.' },
  PROTOCOL_VERSION_UNSUPPORTED: { status: 400, message: 'The protocol version is not supported.' },
  RATE_LIMITED: { status: 429, message: 'Too many messages or requests; slow down.' },
  TOO_MANY_CONNECTIONS: { status: 429, message: 'Too many connections from this address.' },
  AUTH_REQUIRED: { status: 401, message: 'Join the room before sending this request.' },
  AUTH_TIMEOUT: { status: 408, message: 'No join request arrived in time.' },
  ALREADY_JOINED: { status: 409, message: 'This connection has already joined a room.' },
  ACCESS_DENIED: {
    status: 403,
    message: 'The token is invalid, expired, already used, or not valid for this room.',
  },
  RESUME_REJECTED: { status: 403, message: 'The session cannot be resumed; join again with a new token.' },
  API_KEY_INVALID: { status: 401, message: 'The API key is missing or invalid.' },
  NOT_FOUND: { status: 404, message: 'No such resource.' },
  ROOM_FULL: { status: 409, message: 'The room has reached its participant limit.' },
  ROOM_CLOSED: { status: 410, message: 'The room has ended.' },
  ROOM_ID_TAKEN: {
    status: 409,
    message: 'This room id belongs to a consultation that already has a journal; use a new id.',
  },
  ROOM_LIMIT_REACHED: { status: 503, message: 'The server hosts as many rooms as it may.' },
  NOT_ADMITTED: { status: 403, message: 'Media is available only after admission to the consultation.' },
  FORBIDDEN_FOR_ROLE: { status: 403, message: 'This role may not perform this operation.' },
  INVALID_STATE: { status: 409, message: 'The operation is not allowed in the current state.' },
  CONSENT_REQUIRED: { status: 409, message: 'The patient has not given the required consent.' },
  LIMIT_EXCEEDED: {
    status: 409,
    message: 'A per-participant limit (transports, producers or consumers) is reached.',
  },
  DATA_RATE_EXCEEDED: {
    status: 429,
    message: 'A data channel stayed over its rate limit and was closed.',
  },
  TRANSPORT_NOT_FOUND: { status: 404, message: 'No such transport for this participant.' },
  PRODUCER_NOT_FOUND: { status: 404, message: 'No such producer in this room.' },
  CONSUMER_NOT_FOUND: { status: 404, message: 'No such consumer for this participant.' },
  DATA_PRODUCER_NOT_FOUND: { status: 404, message: 'No such data producer in this room.' },
  CANNOT_CONSUME: { status: 409, message: 'The receiver cannot decode this producer (no codec in common).' },
  DTLS_PARAMETERS_INVALID: { status: 400, message: 'The DTLS parameters are invalid.' },
  RTP_PARAMETERS_INVALID: { status: 400, message: 'The RTP parameters are invalid.' },
  E2EE_REQUIRED: {
    status: 403,
    message: 'This room requires end-to-end encryption, which the client does not support.',
  },
  SERVER_DRAINING: { status: 503, message: 'The server is draining for maintenance; join another node.' },
  ROOM_ELSEWHERE: {
    status: 307,
    message: 'The room is hosted by another node; repeat the request there (location).',
  },
  MEDIA_UNAVAILABLE: { status: 503, message: 'No media worker is available.' },
  CLUSTER_UNAVAILABLE: {
    status: 503,
    message: "The cluster's shared state is unreachable; try again shortly.",
  },
  INTERNAL: { status: 500, message: 'An internal error occurred.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export const ERROR_CODES = Object.keys(ERROR_CATALOGUE) as ErrorCode[];

/** An error whose code is in the catalogue; `detail` is a short, non-personal precision. */
export class SfuError extends Error {
  override readonly name = 'SfuError';
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    readonly detail?: string,
  ) {
    super(detail ? `${ERROR_CATALOGUE[code].message} (${detail})` : ERROR_CATALOGUE[code].message);
    this.status = ERROR_CATALOGUE[code].status;
  }

  toJSON(): { code: ErrorCode; message: string; detail?: string } {
    return this.detail
      ? { code: this.code, message: ERROR_CATALOGUE[this.code].message, detail: this.detail }
      : { code: this.code, message: ERROR_CATALOGUE[this.code].message };
  }
}

export function isSfuError(value: unknown): value is SfuError {
  return value instanceof SfuError;
}

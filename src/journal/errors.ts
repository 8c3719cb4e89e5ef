/**
 * Typed errors of the journal. Codes are stable so the room code can branch on them (e.g. map
 * JOURNAL_BACKPRESSURE to a retryable refusal, JOURNAL_NOT_FOUND to the catalogue's NOT_FOUND).
 * Messages never carry personal data: identifiers of consultations only, never event data.
 */
export type JournalErrorCode =
  | 'JOURNAL_INVALID_ID'
  | 'JOURNAL_INVALID_EVENT'
  | 'JOURNAL_RECORD_TOO_LARGE'
  | 'JOURNAL_BACKPRESSURE'
  | 'JOURNAL_TOO_MANY_OPEN'
  | 'JOURNAL_ENDED'
  | 'JOURNAL_CORRUPT'
  | 'JOURNAL_NOT_FOUND'
  | 'JOURNAL_IO'
  | 'JOURNAL_CLOSED';

export class JournalError extends Error {
  override readonly name = 'JournalError';

  constructor(
    readonly code: JournalErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${code}: ${message}`, options);
  }
}

export function isJournalError(value: unknown, code?: JournalErrorCode): value is JournalError {
  return value instanceof JournalError && (code === undefined || value.code === code);
}

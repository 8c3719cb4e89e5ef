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
  | 'JOURNAL_EXISTS'
  | 'JOURNAL_CORRUPT'
  | 'JOURNAL_NOT_FOUND'
  | 'JOURNAL_IO'
  | 'JOURNAL_CLOSED';

/** Where a journal stops verifying: its 1-based line and the reason. */
export interface JournalCorruption {
  line: number;
  reason: string;
}

export class JournalError extends Error {
  override readonly name = 'JournalError';

  constructor(
    readonly code: JournalErrorCode,
    message: string,
    options?: { cause?: unknown; corruption?: JournalCorruption },
  ) {
    super(`${code}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.corruption = options?.corruption;
  }

  /** With JOURNAL_CORRUPT: where the chain breaks and why (never any record content). */
  readonly corruption: JournalCorruption | undefined;
}

export function isJournalError(value: unknown, code?: JournalErrorCode): value is JournalError {
  return value instanceof JournalError && (code === undefined || value.code === code);
}

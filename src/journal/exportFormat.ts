import type { JournalRecord } from './chain.js';
import type { SignedHead } from './signing.js';

export const JOURNAL_EXPORT_FORMAT = 'teleconsult-journal/1';

/** A consultation's journal as served by the REST layer and sent with the consultation.ended webhook. */
export interface JournalExport {
  format: typeof JOURNAL_EXPORT_FORMAT;
  consultationId: string;
  exportedAt: string;
  /** Every acknowledged record, in order. */
  records: JournalRecord[];
  /** Hash of the last record: anchoring it elsewhere makes truncation of the tail detectable too. */
  headHash: string;
  ended: boolean;
  verification: {
    ok: boolean;
    firstBadSeq?: number;
    line?: number;
    reason?: string;
    /** Checkpoint signatures were checked against the server's keys. */
    signaturesChecked: boolean;
    /** Highest sequence number covered by a verified checkpoint signature (0: none). */
    anchoredSeq: number;
    /** Every record is covered by a verified signature (the last record is a valid checkpoint). */
    anchored: boolean;
  };
  /** The last verified checkpoint: keep it to detect a later truncation or re-forging. */
  signedHead?: SignedHead;
  /** Present and true when the journal was found corrupt and moved aside (see docs/journal.md). */
  quarantined?: boolean;
}

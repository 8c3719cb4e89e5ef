import type { JournalRecord } from './chain.js';
import type { JournalEventData, JournalEventType } from './events.js';
import type { JournalExport } from './journalStore.js';
import type { SignedHead } from './signing.js';

/**
 * What the server needs of a journal store, whatever keeps the records: files on the node's disk
 * (JournalStore in journalStore.ts, the embedded default) or PostgreSQL shared by a cluster
 * (PgJournalStore). Both assign sequence numbers and hashes in call order per consultation,
 * acknowledge an append only once it is durable, sign checkpoints, and refuse a chain that does
 * not verify.
 */
export interface JournalStorage {
  append<T extends JournalEventType>(
    consultationId: string,
    type: T,
    data: JournalEventData<T>,
  ): Promise<JournalRecord<T>>;
  export(consultationId: string): Promise<JournalExport>;
  verify(consultationId: string): Promise<JournalExport['verification'] & { records: number }>;
  list(): Promise<string[]>;
  endedSince(sinceMs: number): Promise<Array<{ consultationId: string; endedAt: string; reason: string }>>;
  sweep(): Promise<{ deleted: string[]; kept: number }>;
  startRetentionSweep(intervalMs?: number): void;
  signedHead(consultationId: string): SignedHead | undefined;
  close(): Promise<void>;
}

import type pg from 'pg';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { buildRecord, genesisHash, verifyChain, type JournalRecord } from './chain.js';
import { isConsultationId } from './consultationId.js';
import { JournalError, isJournalError } from './errors.js';
import { keepClientErrorsHandled } from './pgClientErrors.js';
import { explainInvalidEvent, type JournalEventData, type JournalEventType } from './events.js';
import { JOURNAL_EXPORT_FORMAT, type JournalExport, type JournalIncident } from './journalStore.js';
import { JournalKeyring, type JournalSigner, type SignedHead } from './signing.js';
import type { JournalStorage } from './storage.js';

/**
 * The journal in PostgreSQL, shared by every node of a cluster: a consultation whose room moves to
 * another node goes on with the same chain. One row per record holds the line exactly as a file
 * would (so verification is the same), and one head row per consultation holds the tail of its
 * chain. An append is a transaction that locks the head row (`SELECT ... FOR UPDATE`), so appends
 * from several nodes serialise; appends made on one node while a transaction is in flight wait
 * and go together in the next one (group commit: one commit, one WAL flush). An append resolves
 * after COMMIT returns (synchronous_commit on: durable).
 */

export interface PgJournalStoreOptions {
  /** A pool of the `journal.postgresUrl` database; the store does not end it. */
  pool: pg.Pool;
  retentionDays: number;
  signer?: JournalSigner;
  keyring?: JournalKeyring;
  checkpointEvery?: number;
  /** Appends waiting per consultation before JOURNAL_BACKPRESSURE (default 1024). */
  maxPendingPerJournal?: number;
  /** Appends committed in one transaction at most (default 512). */
  maxBatch?: number;
  maxRecordBytes?: number;
  logger?: Logger;
  metrics?: Metrics;
  clock?: () => number;
  onCorrupt?: (incident: JournalIncident) => void;
}

interface PendingAppend {
  type: JournalEventType;
  data: JournalEventData;
  resolve: (record: JournalRecord) => void;
  reject: (error: Error) => void;
}

interface Lane {
  queue: PendingAppend[];
  running: boolean;
}

/** The tail of a chain as this process last verified it. */
interface Tail {
  seq: number;
  hash: string;
}

interface HeadRow {
  seq: string;
  hash: string;
  ended: boolean;
  since_checkpoint: number;
  corrupt_reason: string | null;
}

export const PG_SCHEMA = `
CREATE TABLE IF NOT EXISTS teleconsult_journal_heads (
  consultation_id text PRIMARY KEY,
  seq bigint NOT NULL,
  hash text NOT NULL,
  ended boolean NOT NULL DEFAULT false,
  ended_at timestamptz,
  ended_reason text,
  since_checkpoint integer NOT NULL DEFAULT 0,
  last_at timestamptz NOT NULL,
  corrupt_line integer,
  corrupt_reason text
);
CREATE TABLE IF NOT EXISTS teleconsult_journal_records (
  consultation_id text NOT NULL REFERENCES teleconsult_journal_heads ON DELETE CASCADE,
  seq bigint NOT NULL,
  line text NOT NULL,
  PRIMARY KEY (consultation_id, seq)
);
CREATE INDEX IF NOT EXISTS teleconsult_journal_heads_ended ON teleconsult_journal_heads (ended_at);
`;

const MAX_REMEMBERED = 10_000;

/** Creates the tables once, whichever node gets there first (an advisory lock serialises them). */
export async function migratePg(pool: pg.Pool, schema: string, lockName: string): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [lockName]);
    await client.query(schema);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

export class PgJournalStore implements JournalStorage {
  private readonly lanes = new Map<string, Lane>();
  private readonly tails = new Map<string, Tail>();
  private readonly heads = new Map<string, SignedHead>();
  private readonly keyring: JournalKeyring | undefined;
  private readonly maxPending: number;
  private readonly maxBatch: number;
  private readonly maxRecordBytes: number;
  private readonly clock: () => number;
  private sweepTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  private constructor(private readonly options: PgJournalStoreOptions) {
    this.keyring =
      options.keyring ?? (options.signer ? new JournalKeyring([options.signer.publicKey]) : undefined);
    this.maxPending = options.maxPendingPerJournal ?? 1024;
    this.maxBatch = options.maxBatch ?? 512;
    this.maxRecordBytes = options.maxRecordBytes ?? 16 * 1024;
    this.clock = options.clock ?? Date.now;
  }

  /** Creates the tables if needed and returns the store. */
  static async open(options: PgJournalStoreOptions): Promise<PgJournalStore> {
    keepClientErrorsHandled(options.pool);
    try {
      await migratePg(options.pool, PG_SCHEMA, 'teleconsult-journal-schema');
    } catch (cause) {
      throw new JournalError('JOURNAL_IO', 'cannot prepare the journal tables', { cause });
    }
    return new PgJournalStore(options);
  }

  append<T extends JournalEventType>(
    consultationId: string,
    type: T,
    data: JournalEventData<T>,
  ): Promise<JournalRecord<T>> {
    try {
      if (this.closed) throw new JournalError('JOURNAL_CLOSED', 'the journal store is closed');
      if (!isConsultationId(consultationId)) {
        throw new JournalError('JOURNAL_INVALID_ID', 'a consultation id is 1-128 characters [A-Za-z0-9_.:-]');
      }
      if (type === 'journal.checkpoint') {
        throw new JournalError('JOURNAL_INVALID_EVENT', 'checkpoints are written by the journal itself');
      }
      const problem = explainInvalidEvent(type, data);
      if (problem) throw new JournalError('JOURNAL_INVALID_EVENT', problem);
    } catch (error) {
      this.countFailure(error);
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    let lane = this.lanes.get(consultationId);
    if (!lane) {
      lane = { queue: [], running: false };
      this.lanes.set(consultationId, lane);
    }
    if (lane.queue.length >= this.maxPending) {
      const error = new JournalError(
        'JOURNAL_BACKPRESSURE',
        `too many appends pending for ${consultationId}`,
      );
      this.countFailure(error);
      return Promise.reject(error);
    }
    const normalised = JSON.parse(JSON.stringify(data)) as JournalEventData;
    this.options.metrics?.journalPendingAppends.inc();
    const promise = new Promise<JournalRecord>((resolve, reject) => {
      lane.queue.push({ type, data: normalised, resolve, reject });
    });
    this.kick(consultationId, lane);
    return promise.then(
      (record) => {
        this.options.metrics?.journalPendingAppends.dec();
        this.options.metrics?.journalAppends.inc({ type });
        return record as JournalRecord<T>;
      },
      (error: unknown) => {
        this.options.metrics?.journalPendingAppends.dec();
        this.countFailure(error);
        throw error;
      },
    );
  }

  async export(consultationId: string): Promise<JournalExport> {
    if (!isConsultationId(consultationId)) {
      throw new JournalError('JOURNAL_INVALID_ID', 'a consultation id is 1-128 characters [A-Za-z0-9_.:-]');
    }
    const { lines, corrupt } = await this.readChain(consultationId);
    const check = verifyChain(consultationId, lines, this.keyring);
    const anchoring = {
      signaturesChecked: check.signaturesChecked,
      anchoredSeq: check.anchoredSeq,
      anchored: check.anchored,
    };
    return {
      format: JOURNAL_EXPORT_FORMAT,
      consultationId,
      exportedAt: new Date(this.clock()).toISOString(),
      records: check.records,
      headHash: check.headHash,
      ended: check.ended,
      verification: check.ok
        ? { ok: true, ...anchoring }
        : { ok: false, firstBadSeq: check.firstBadSeq, line: check.line, reason: check.reason, ...anchoring },
      ...(check.signedHead ? { signedHead: check.signedHead } : {}),
      ...(corrupt ? { quarantined: true } : {}),
    };
  }

  async verify(consultationId: string): Promise<JournalExport['verification'] & { records: number }> {
    const exported = await this.export(consultationId);
    return { ...exported.verification, records: exported.records.length };
  }

  async list(): Promise<string[]> {
    const result = await this.options.pool.query<{ consultation_id: string }>(
      'SELECT consultation_id FROM teleconsult_journal_heads ORDER BY consultation_id',
    );
    return result.rows.map((r) => r.consultation_id);
  }

  async endedSince(
    sinceMs: number,
  ): Promise<Array<{ consultationId: string; endedAt: string; reason: string }>> {
    const result = await this.options.pool.query<{
      consultation_id: string;
      ended_at: Date;
      ended_reason: string;
    }>(
      `SELECT consultation_id, ended_at, ended_reason FROM teleconsult_journal_heads
        WHERE ended_at >= $1 AND corrupt_reason IS NULL ORDER BY consultation_id`,
      [new Date(sinceMs)],
    );
    return result.rows.map((r) => ({
      consultationId: r.consultation_id,
      endedAt: r.ended_at.toISOString(),
      reason: r.ended_reason,
    }));
  }

  /** Deletes consultations whose last record is older than retentionDays (corrupt ones are kept). */
  async sweep(): Promise<{ deleted: string[]; kept: number }> {
    const cutoff = new Date(this.clock() - this.options.retentionDays * 86_400_000);
    const busy = [...this.lanes.keys()];
    const result = await this.options.pool.query<{ consultation_id: string }>(
      `DELETE FROM teleconsult_journal_heads
        WHERE last_at < $1 AND corrupt_reason IS NULL AND NOT (consultation_id = ANY($2::text[]))
        RETURNING consultation_id`,
      [cutoff, busy],
    );
    const deleted = result.rows.map((r) => r.consultation_id).sort();
    const count = await this.options.pool.query<{ n: string }>(
      'SELECT count(*) AS n FROM teleconsult_journal_heads',
    );
    if (deleted.length > 0) {
      for (const id of deleted) this.tails.delete(id);
      this.options.metrics?.journalDeleted.inc(deleted.length);
      this.options.logger?.info({ deleted: deleted.length }, 'journal retention sweep');
    }
    return { deleted, kept: Number(count.rows[0]?.n ?? 0) };
  }

  startRetentionSweep(intervalMs = 3_600_000): void {
    if (this.sweepTimer || this.closed) return;
    this.sweepTimer = setInterval(() => {
      this.sweep().catch((error: unknown) =>
        this.options.logger?.error({ err: error }, 'journal sweep failed'),
      );
    }, intervalMs);
    this.sweepTimer.unref();
  }

  signedHead(consultationId: string): SignedHead | undefined {
    return this.heads.get(consultationId);
  }

  /** Waits for queued appends to commit; the pool stays open (its owner ends it). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    while (this.lanes.size > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private kick(consultationId: string, lane: Lane): void {
    if (lane.running) return;
    lane.running = true;
    void this.drain(consultationId, lane);
  }

  private async drain(consultationId: string, lane: Lane): Promise<void> {
    while (lane.queue.length > 0) {
      const batch = lane.queue.splice(0, this.maxBatch);
      await this.commitBatch(consultationId, batch);
    }
    lane.running = false;
    if (this.lanes.get(consultationId) === lane) this.lanes.delete(consultationId);
    if (this.lanes.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** One transaction: lock the head, check the chain if it moved, insert the batch, move the head. */
  private async commitBatch(consultationId: string, batch: PendingAppend[]): Promise<void> {
    const started = performance.now();
    let client: pg.PoolClient;
    try {
      client = await this.options.pool.connect();
    } catch (cause) {
      for (const p of batch)
        p.reject(new JournalError('JOURNAL_IO', 'the journal database is unreachable', { cause }));
      return;
    }
    let broken: Error | undefined;
    // A connection cut between two queries reports here, not as a rejection: never crash on it.
    const onConnectionError = (error: Error): void => {
      broken ??= error;
    };
    client.on('error', onConnectionError);
    const outcomes: Array<{ pending: PendingAppend; record?: JournalRecord; error?: Error }> = [];
    const written: JournalRecord[] = [];
    const signed: SignedHead[] = [];
    try {
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO teleconsult_journal_heads (consultation_id, seq, hash, last_at)
         VALUES ($1, 0, $2, now()) ON CONFLICT DO NOTHING`,
        [consultationId, genesisHash(consultationId)],
      );
      const head = (
        await client.query<HeadRow>(
          `SELECT seq, hash, ended, since_checkpoint, corrupt_reason FROM teleconsult_journal_heads
            WHERE consultation_id = $1 FOR UPDATE`,
          [consultationId],
        )
      ).rows[0] as HeadRow;
      if (head.corrupt_reason !== null) {
        await client.query('ROLLBACK');
        for (const p of batch) {
          p.reject(new JournalError('JOURNAL_CORRUPT', `the journal of ${consultationId} is marked corrupt`));
        }
        return;
      }
      const headSeq = Number(head.seq);
      const cached = this.tails.get(consultationId);
      if (headSeq > 0 && (cached?.seq !== headSeq || cached.hash !== head.hash)) {
        // First use here, or another node appended: verify the whole chain before extending it.
        const corruption = await this.checkChain(client, consultationId, headSeq, head.hash);
        if (corruption) {
          await client.query(
            `UPDATE teleconsult_journal_heads SET corrupt_line = $2, corrupt_reason = $3 WHERE consultation_id = $1`,
            [consultationId, corruption.line, corruption.reason],
          );
          await client.query('COMMIT');
          this.reportCorrupt(consultationId, corruption);
          for (const p of batch) {
            p.reject(
              new JournalError(
                'JOURNAL_CORRUPT',
                `the journal of ${consultationId} breaks at line ${corruption.line}`,
                {
                  corruption,
                },
              ),
            );
          }
          return;
        }
      }
      let seq = headSeq;
      let hash = head.hash;
      let ended = head.ended;
      let sinceCheckpoint = head.since_checkpoint;
      let endedAt: string | null = null;
      let endedReason: string | null = null;
      const ts = new Date(this.clock()).toISOString();
      const every = this.options.checkpointEvery ?? 64;
      for (const pending of batch) {
        if (pending.type === 'consultation.created' && seq > 0) {
          outcomes.push({
            pending,
            error: new JournalError(
              'JOURNAL_EXISTS',
              `the consultation ${consultationId} already has a journal`,
            ),
          });
          continue;
        }
        if (ended) {
          outcomes.push({
            pending,
            error: new JournalError('JOURNAL_ENDED', `the consultation ${consultationId} has ended`),
          });
          continue;
        }
        const record = buildRecord(seq + 1, ts, pending.type, pending.data, hash);
        if (Buffer.byteLength(JSON.stringify(record), 'utf8') > this.maxRecordBytes) {
          outcomes.push({
            pending,
            error: new JournalError(
              'JOURNAL_RECORD_TOO_LARGE',
              `a ${pending.type} record exceeds ${this.maxRecordBytes} bytes`,
            ),
          });
          continue;
        }
        written.push(record);
        outcomes.push({ pending, record });
        seq = record.seq;
        hash = record.hash;
        sinceCheckpoint++;
        if (pending.type === 'consultation.ended') {
          ended = true;
          endedAt = ts;
          endedReason = (pending.data as JournalEventData<'consultation.ended'>).reason;
        }
        const signer = this.options.signer;
        if (signer && (pending.type === 'consultation.ended' || sinceCheckpoint >= every)) {
          const signature = signer.sign(consultationId, seq, hash);
          const checkpoint = buildRecord(
            seq + 1,
            ts,
            'journal.checkpoint',
            { signedSeq: seq, signedHash: hash, keyId: signer.keyId, signature },
            hash,
          );
          signed.push({ consultationId, seq, hash, keyId: signer.keyId, signature });
          written.push(checkpoint);
          seq = checkpoint.seq;
          hash = checkpoint.hash;
          sinceCheckpoint = 0;
        }
      }
      if (written.length > 0) {
        await client.query(
          `INSERT INTO teleconsult_journal_records (consultation_id, seq, line)
           SELECT $1, unnest($2::bigint[]), unnest($3::text[])`,
          [consultationId, written.map((r) => r.seq), written.map((r) => JSON.stringify(r))],
        );
        await client.query(
          `UPDATE teleconsult_journal_heads
              SET seq = $2, hash = $3, ended = $4, since_checkpoint = $5, last_at = $6,
                  ended_at = COALESCE($7, ended_at), ended_reason = COALESCE($8, ended_reason)
            WHERE consultation_id = $1`,
          [consultationId, seq, hash, ended, sinceCheckpoint, ts, endedAt, endedReason],
        );
      }
      await client.query('COMMIT');
      this.remember(this.tails, consultationId, { seq, hash });
      for (const head of signed) this.remember(this.heads, consultationId, head);
    } catch (cause) {
      broken = cause as Error;
      await client.query('ROLLBACK').catch(() => undefined);
      this.tails.delete(consultationId);
    } finally {
      // A connection that failed mid-transaction is discarded, not reused.
      client.off('error', onConnectionError);
      client.release(broken);
    }
    if (broken) {
      for (const p of batch) {
        p.reject(
          new JournalError('JOURNAL_IO', `appending to the journal of ${consultationId} failed`, {
            cause: broken,
          }),
        );
      }
      return;
    }
    this.options.metrics?.journalFsyncBatches.inc();
    this.options.metrics?.journalFsyncSeconds.observe((performance.now() - started) / 1000);
    for (const outcome of outcomes) {
      if (outcome.record) outcome.pending.resolve(outcome.record);
      else outcome.pending.reject(outcome.error as Error);
    }
  }

  /** Verifies the stored chain against its head row; returns where it breaks, or null. */
  private async checkChain(
    client: pg.PoolClient,
    consultationId: string,
    headSeq: number,
    headHash: string,
  ): Promise<{ line: number; reason: string } | null> {
    const rows = await client.query<{ seq: string; line: string }>(
      'SELECT seq, line FROM teleconsult_journal_records WHERE consultation_id = $1 ORDER BY seq',
      [consultationId],
    );
    const check = verifyChain(
      consultationId,
      rows.rows.map((r) => r.line),
      this.keyring,
    );
    if (!check.ok) return { line: check.line ?? 0, reason: check.reason ?? 'does not verify' };
    if (check.records.length !== headSeq || check.headHash !== headHash) {
      return { line: check.records.length + 1, reason: 'records end before the head row (records deleted)' };
    }
    return null;
  }

  private reportCorrupt(consultationId: string, corruption: { line: number; reason: string }): void {
    this.options.metrics?.journalCorrupt.inc();
    this.options.logger?.error(
      { consultationId, line: corruption.line, reason: corruption.reason },
      'journal corrupt: marked in the database (rows untouched), appends refused',
    );
    try {
      this.options.onCorrupt?.({
        consultationId,
        detectedAt: new Date(this.clock()).toISOString(),
        line: corruption.line,
        reason: corruption.reason,
        movedTo: 'postgresql:teleconsult_journal_heads.corrupt_reason',
        bytes: 0,
        sha256: '',
      });
    } catch (err) {
      this.options.logger?.error({ consultationId, err }, 'journal corruption handler failed');
    }
  }

  private async readChain(consultationId: string): Promise<{ lines: string[]; corrupt: boolean }> {
    const head = await this.options.pool.query<{ corrupt_reason: string | null }>(
      'SELECT corrupt_reason FROM teleconsult_journal_heads WHERE consultation_id = $1',
      [consultationId],
    );
    const row = head.rows[0];
    if (!row) throw new JournalError('JOURNAL_NOT_FOUND', `no journal for ${consultationId}`);
    const rows = await this.options.pool.query<{ line: string }>(
      'SELECT line FROM teleconsult_journal_records WHERE consultation_id = $1 ORDER BY seq',
      [consultationId],
    );
    return { lines: rows.rows.map((r) => r.line), corrupt: row.corrupt_reason !== null };
  }

  private remember<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    map.set(key, value);
    if (map.size > MAX_REMEMBERED) {
      const oldest = map.keys().next().value;
      if (oldest !== undefined) map.delete(oldest);
    }
  }

  private countFailure(error: unknown): void {
    const code = isJournalError(error) ? error.code : 'UNKNOWN';
    this.options.metrics?.journalAppendFailures.inc({ code });
  }
}

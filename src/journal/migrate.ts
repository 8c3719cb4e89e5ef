import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { verifyChain } from './chain.js';
import { durablePrefixLength, splitLines } from './durableLog.js';
import type { JournalEventData } from './events.js';
import type { JournalKeyring } from './signing.js';

export type MigrationOutcome =
  | { consultationId: string; status: 'migrated' | 'already'; records: number; headHash: string }
  | { consultationId: string; status: 'broken' | 'conflict' | 'mismatch'; reason: string };

/**
 * Moves one file journal into PostgreSQL and verifies it end to end: the file must verify (and,
 * with a keyring, its checkpoints too); its lines go in one transaction, never over an existing
 * different chain; then the lines are read back and must be byte for byte the file's, and verify
 * again from the database. A journal already there with the same head is reported `already`.
 */
export async function migrateFileJournal(
  pool: pg.Pool,
  journalsDir: string,
  consultationId: string,
  keyring?: JournalKeyring,
): Promise<MigrationOutcome> {
  const content = await readFile(path.join(journalsDir, `${consultationId}.jsonl`));
  const lines = splitLines(content.subarray(0, durablePrefixLength(content)));
  const check = verifyChain(consultationId, lines, keyring);
  if (!check.ok) {
    return { consultationId, status: 'broken', reason: `line ${check.line}: ${check.reason}` };
  }
  if (lines.length === 0) return { consultationId, status: 'broken', reason: 'empty journal' };
  const last = check.records.at(-1);
  const ended = check.records.find((r) => r.type === 'consultation.ended');
  const lastCheckpoint = check.records.findLastIndex((r) => r.type === 'journal.checkpoint');
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const inserted = await client.query(
      `INSERT INTO teleconsult_journal_heads
         (consultation_id, seq, hash, ended, ended_at, ended_reason, since_checkpoint, last_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
      [
        consultationId,
        last?.seq,
        check.headHash,
        ended !== undefined,
        ended?.ts ?? null,
        ended ? (ended.data as JournalEventData<'consultation.ended'>).reason : null,
        check.records.length - (lastCheckpoint + 1),
        last?.ts,
      ],
    );
    if (inserted.rowCount === 0) {
      await client.query('ROLLBACK');
      const head = await pool.query<{ seq: string; hash: string }>(
        'SELECT seq, hash FROM teleconsult_journal_heads WHERE consultation_id = $1',
        [consultationId],
      );
      const row = head.rows[0];
      if (row && Number(row.seq) === last?.seq && row.hash === check.headHash) {
        return verifyInDatabase(pool, consultationId, lines, keyring, 'already');
      }
      return { consultationId, status: 'conflict', reason: 'the database holds another chain for this id' };
    }
    await client.query(
      `INSERT INTO teleconsult_journal_records (consultation_id, seq, line)
       SELECT $1, unnest($2::bigint[]), unnest($3::text[])`,
      [consultationId, check.records.map((r) => r.seq), lines],
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
  return verifyInDatabase(pool, consultationId, lines, keyring, 'migrated');
}

async function verifyInDatabase(
  pool: pg.Pool,
  consultationId: string,
  fileLines: readonly string[],
  keyring: JournalKeyring | undefined,
  status: 'migrated' | 'already',
): Promise<MigrationOutcome> {
  const rows = await pool.query<{ line: string }>(
    'SELECT line FROM teleconsult_journal_records WHERE consultation_id = $1 ORDER BY seq',
    [consultationId],
  );
  const stored = rows.rows.map((r) => r.line);
  if (stored.length !== fileLines.length || stored.some((line, i) => line !== fileLines[i])) {
    return { consultationId, status: 'mismatch', reason: 'the database lines differ from the file' };
  }
  const check = verifyChain(consultationId, stored, keyring);
  if (!check.ok) {
    return { consultationId, status: 'mismatch', reason: `line ${check.line}: ${check.reason}` };
  }
  return { consultationId, status, records: stored.length, headHash: check.headHash };
}

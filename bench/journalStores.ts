/**
 * Journal store bench: appends per second for the file store and the PostgreSQL store (a real
 * PostgreSQL 15 started as in the tests), and kill -9 trials of a node during 1,000 concurrent
 * PostgreSQL appends (acknowledged records lost). Writes one JSON report.
 * Usage: node dist/bench/journalStores.js [--out FILE] [--burst N] [--serial N] [--kill-trials N]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { JournalStore } from '../src/journal/journalStore.js';
import { PgJournalStore } from '../src/journal/pgJournalStore.js';
import { JournalSigner } from '../src/journal/signing.js';
import type { JournalStorage } from '../src/journal/storage.js';
import { postgresUnavailable, startPostgres } from '../tests/journal/postgres.js';
import { ProvenanceRecorder } from './harness/provenance.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.resolve(here, '../tests/journal/fixtures/pgBurst.js');

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}
const outAt = process.argv.indexOf('--out');
const out = outAt >= 0 ? (process.argv[outAt + 1] as string) : 'bench-results/journal-stores.json';
const BURST = option('--burst', 5000);
const SERIAL = option('--serial', 500);
const KILL_TRIALS = option('--kill-trials', 20);
const CONSULTATIONS = 10;
const signer = JournalSigner.generate();
const provenance = new ProvenanceRecorder(process.argv.slice(2));

interface StoreFigures {
  /** Appends/s with BURST appends in flight at once over CONSULTATIONS consultations. */
  burstAppendsPerS: number;
  /** Appends/s with one awaited append at a time (one commit each). */
  serialAppendsPerS: number;
}

async function measure(store: JournalStorage, prefix: string): Promise<StoreFigures> {
  const ids = Array.from({ length: CONSULTATIONS }, (_, i) => `${prefix}-${i}`);
  for (const id of ids) await store.append(id, 'consultation.created', { consultationId: id });
  let started = performance.now();
  await Promise.all(
    Array.from({ length: BURST }, (_, n) =>
      store.append(ids[n % CONSULTATIONS] as string, 'incident', {
        kind: 'network-poor',
        participantId: `p${n}`,
      }),
    ),
  );
  const burstS = (performance.now() - started) / 1000;
  started = performance.now();
  for (let n = 0; n < SERIAL; n++) {
    await store.append(ids[0] as string, 'incident', { kind: 'reconnected', participantId: `s${n}` });
  }
  const serialS = (performance.now() - started) / 1000;
  return {
    burstAppendsPerS: Math.round(BURST / burstS),
    serialAppendsPerS: Math.round(SERIAL / serialS),
  };
}

function killTrial(
  url: string,
  prefix: string,
  killAfter: number,
): Promise<Map<string, Map<number, string>>> {
  const child = spawn(process.execPath, [fixture, url, String(CONSULTATIONS), '1000', prefix], {
    env: { ...process.env, JOURNAL_TEST_KEY: signer.exportPem() },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const acked = new Map<string, Map<number, string>>();
  let count = 0;
  let buffer = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const [kind, id, seq, hash] = buffer.slice(0, newline).split(' ');
      buffer = buffer.slice(newline + 1);
      if (kind !== 'A' || !id || !seq || !hash) continue;
      let seqs = acked.get(id);
      if (!seqs) acked.set(id, (seqs = new Map<number, string>()));
      seqs.set(Number(seq), hash);
      if (++count >= killAfter && child.exitCode === null && !child.killed) child.kill('SIGKILL');
    }
  });
  return new Promise((resolve) => child.on('close', () => resolve(acked)));
}

const report: Record<string, unknown> = {
  bench: 'journal-stores',
  date: new Date().toISOString(),
  host: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? 'unknown', node: process.version },
  params: { burst: BURST, serial: SERIAL, consultations: CONSULTATIONS, checkpointEvery: 64 },
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'journal-bench-'));
const files = new JournalStore({ dir, retentionDays: 30, signer, maxPendingPerJournal: BURST });
report.files = await measure(files, 'f');
await files.close();
fs.rmSync(dir, { recursive: true, force: true });

const unavailable = postgresUnavailable();
if (unavailable) {
  report.postgres = { skipped: unavailable };
} else {
  const server = await startPostgres();
  try {
    const pool = new pg.Pool({ connectionString: server.url, max: 10 });
    pool.on('error', () => undefined);
    const store = await PgJournalStore.open({ pool, retentionDays: 30, signer, maxPendingPerJournal: BURST });
    report.postgres = await measure(store, 'p');
    let acknowledged = 0;
    let lost = 0;
    let chainsOk = 0;
    for (let trial = 0; trial < KILL_TRIALS; trial++) {
      const prefix = `k${trial}`;
      for (let i = 0; i < CONSULTATIONS; i++) {
        await store.append(`${prefix}-${i}`, 'consultation.created', { consultationId: `${prefix}-${i}` });
      }
      const acked = await killTrial(server.url, prefix, 100 + ((trial * 47) % 800));
      for (const [id, seqs] of acked) {
        const rows = await pool.query<{ seq: string; line: string }>(
          'SELECT seq, line FROM teleconsult_journal_records WHERE consultation_id = $1',
          [id],
        );
        const stored = new Map(
          rows.rows.map((r) => [Number(r.seq), (JSON.parse(r.line) as { hash: string }).hash]),
        );
        for (const [seq, hash] of seqs) {
          acknowledged++;
          if (stored.get(seq) !== hash) lost++;
        }
      }
      for (let i = 0; i < CONSULTATIONS; i++) {
        const id = `${prefix}-${i}`;
        await store.append(id, 'consultation.ended', { reason: 'ended-by-practitioner' });
        const exported = await store.export(id);
        if (exported.verification.ok && exported.verification.anchored) chainsOk++;
      }
    }
    report.postgresKill = {
      trials: KILL_TRIALS,
      appendsPerTrial: 1000,
      acknowledged,
      acknowledgedLost: lost,
      chainsVerified: chainsOk,
      chains: KILL_TRIALS * CONSULTATIONS,
    };
    await store.close();
    await pool.end();
  } finally {
    server.stop();
  }
}

// Not a run of the bench CLI: the command recorded is this script's.
report.provenance = {
  ...provenance.finish(),
  command: ['node dist/bench/journalStores.js', ...process.argv.slice(2)].join(' '),
};
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
process.stderr.write(`${JSON.stringify(report, null, 2)}\n`);

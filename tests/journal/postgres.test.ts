import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PgJournalStore } from '../../src/journal/pgJournalStore.js';
import { JournalKeyring, JournalSigner, keySetDocument } from '../../src/journal/signing.js';
import { JournalStore } from '../../src/journal/journalStore.js';
import { verifyChain } from '../../src/journal/chain.js';
import { isJournalError } from '../../src/journal/errors.js';
import { Metrics } from '../../src/observability/metrics.js';
import { PgWebhookOutbox } from '../../src/webhooks/pgOutbox.js';
import { WebhookReceiver } from '../webhooks/receiver.js';
import { consultationEvents } from './sampleEvents.js';
import { postgresUnavailable, startPostgres, type TestPostgres } from './postgres.js';
import { startPgFaultProxy } from './pgFaultProxy.js';

/**
 * The journal and webhook outbox on a real PostgreSQL 15 (Debian's), shared by several "nodes":
 * one chain per consultation wherever its room is, appends that survive kill -9 of a node and of
 * its database connections, and a webhook delivered once per id across nodes.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, 'fixtures', 'pgBurst.js');
const migrateCli = path.resolve(here, '../../src/journal/migrateCli.js');
const SECRET = 'webhook-secret-0123456789';
const KILL_TRIALS = Number(process.env.JOURNAL_PG_KILL_TRIALS ?? 3);

const unavailable = postgresUnavailable();
if (unavailable) {
  t.comment(`skipped: ${unavailable}`);
  t.pass('PostgreSQL tests skipped');
} else {
  let server: TestPostgres;
  const pools: pg.Pool[] = [];
  const newPool = (max = 8): pg.Pool => {
    const pool = new pg.Pool({ connectionString: server.url, max });
    pool.on('error', () => undefined);
    pools.push(pool);
    return pool;
  };
  const signer = JournalSigner.generate();
  t.before(async () => {
    server = await startPostgres();
  });
  t.teardown(async () => {
    for (const pool of pools) await pool.end().catch(() => undefined);
    server.stop();
  });

  void t.test('appends form one verified, anchored chain; a used id is never started again', async (t) => {
    const metrics = new Metrics();
    const store = await PgJournalStore.open({
      pool: newPool(),
      retentionDays: 30,
      signer,
      checkpointEvery: 4,
      metrics,
    });
    for (const event of consultationEvents('pg-1')) await store.append('pg-1', event.type, event.data);
    const exported = await store.export('pg-1');
    t.match(exported.verification, { ok: true, anchored: true, signaturesChecked: true });
    t.equal(exported.records.at(-1)?.type, 'journal.checkpoint');
    t.equal(exported.ended, true);
    await t.rejects(store.append('pg-1', 'consultation.created', { consultationId: 'pg-1' }), {
      code: 'JOURNAL_EXISTS',
    });
    await t.rejects(store.append('pg-1', 'incident', { kind: 'reconnected' }), { code: 'JOURNAL_ENDED' });
    t.same(
      (await store.endedSince(Date.now() - 60_000)).map((e) => e.consultationId),
      ['pg-1'],
    );
    // Group commit: a burst shares transactions.
    await store.append('pg-burst', 'consultation.created', { consultationId: 'pg-burst' });
    const before =
      (await metrics.registry.getSingleMetric('sfu_journal_fsync_batches_total')?.get())?.values[0]?.value ??
      0;
    await Promise.all(
      Array.from({ length: 500 }, (_, n) =>
        store.append('pg-burst', 'incident', { kind: 'network-poor', participantId: `p${n}` }),
      ),
    );
    const after =
      (await metrics.registry.getSingleMetric('sfu_journal_fsync_batches_total')?.get())?.values[0]?.value ??
      0;
    t.ok(after - before < 100, `500 appends in ${after - before} transactions`);
    t.match(await store.verify('pg-burst'), { ok: true, records: 501 + Math.floor(501 / 4) });
    await store.close();
  });

  void t.test('a room moved to another node continues the same chain', async (t) => {
    const nodeA = await PgJournalStore.open({
      pool: newPool(),
      retentionDays: 30,
      signer,
      checkpointEvery: 8,
    });
    const nodeB = await PgJournalStore.open({
      pool: newPool(),
      retentionDays: 30,
      signer,
      checkpointEvery: 8,
    });
    await nodeA.append('moved', 'consultation.created', { consultationId: 'moved' });
    await Promise.all([
      ...Array.from({ length: 50 }, (_, n) =>
        nodeA.append('moved', 'incident', { kind: 'reconnected', participantId: `a${n}` }),
      ),
      ...Array.from({ length: 50 }, (_, n) =>
        nodeB.append('moved', 'incident', { kind: 'network-poor', participantId: `b${n}` }),
      ),
    ]);
    // The room's new host: the id is known, its chain goes on (no second consultation.created).
    await t.rejects(nodeB.append('moved', 'consultation.created', { consultationId: 'moved' }), {
      code: 'JOURNAL_EXISTS',
    });
    await nodeB.append('moved', 'consultation.ended', { reason: 'ended-by-practitioner' });
    const exported = await nodeA.export('moved');
    t.match(exported.verification, { ok: true, anchored: true });
    t.equal(exported.records.filter((r) => r.type === 'incident').length, 100, 'both nodes, one chain');
    await nodeA.close();
    await nodeB.close();
  });

  void t.test('a stored record that does not verify is corruption: rows kept, appends refused', async (t) => {
    const pool = newPool();
    const writer = await PgJournalStore.open({ pool, retentionDays: 30, signer });
    for (const event of consultationEvents('pg-bad').slice(0, 6))
      await writer.append('pg-bad', event.type, event.data);
    await writer.close();
    await pool.query(
      `UPDATE teleconsult_journal_records SET line = replace(line, '"version":"3"', '"version":"4"')
        WHERE consultation_id = 'pg-bad' AND line LIKE '%consent.given%'`,
    );
    const metrics = new Metrics();
    const incidents: string[] = [];
    const reader = await PgJournalStore.open({
      pool: newPool(),
      retentionDays: 30,
      signer,
      metrics,
      onCorrupt: (i) => incidents.push(i.reason),
    });
    try {
      await reader.append('pg-bad', 'incident', { kind: 'reconnected' });
      t.fail('appended to a corrupt chain');
    } catch (error) {
      t.ok(isJournalError(error, 'JOURNAL_CORRUPT'), 'JOURNAL_CORRUPT');
    }
    t.match(incidents, [/hash does not match/]);
    t.match(await metrics.registry.getSingleMetricAsString('sfu_journal_corrupt_total'), / 1$/m);
    const rows = await pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM teleconsult_journal_records WHERE consultation_id = 'pg-bad'",
    );
    t.equal(rows.rows[0]?.n, 6, 'no row removed');
    const exported = await reader.export('pg-bad');
    t.match(exported, { quarantined: true, verification: { ok: false, line: 6 } });
    await t.rejects(reader.append('pg-bad', 'incident', { kind: 'reconnected' }), {
      code: 'JOURNAL_CORRUPT',
    });
    await reader.close();
  });

  /** Runs a node (child) making 1,000 concurrent appends; SIGKILLs it after `killAfter` acks. */
  function runNodeAndKill(
    prefix: string,
    killAfter: number,
    onReady?: () => void,
  ): Promise<{ acked: Map<string, Map<number, string>>; errors: number }> {
    const child = spawn(process.execPath, [fixture, server.url, '10', '1000', prefix], {
      env: { ...process.env, JOURNAL_TEST_KEY: signer.exportPem() },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const acked = new Map<string, Map<number, string>>();
    let count = 0;
    let errors = 0;
    let buffer = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        const [kind, id, seq, hash] = line.split(' ');
        if (kind === 'READY') onReady?.();
        if (kind === 'E') errors++;
        if (kind !== 'A' || !id || !seq || !hash) continue;
        let seqs = acked.get(id);
        if (!seqs) acked.set(id, (seqs = new Map<number, string>()));
        seqs.set(Number(seq), hash);
        if (++count >= killAfter && child.exitCode === null && !child.killed) child.kill('SIGKILL');
      }
    });
    return new Promise((resolve) => child.on('close', () => resolve({ acked, errors })));
  }

  void t.test(
    `kill -9 of a node during 1,000 concurrent appends loses no acknowledged record (${KILL_TRIALS} trials)`,
    async (t) => {
      const survivor = await PgJournalStore.open({
        pool: newPool(),
        retentionDays: 30,
        signer,
        checkpointEvery: 16,
      });
      t.teardown(() => survivor.close());
      const pool = newPool(2);
      let lost = 0;
      let totalAcked = 0;
      for (let trial = 0; trial < KILL_TRIALS; trial++) {
        const prefix = `kill${trial}`;
        for (let i = 0; i < 10; i++)
          await survivor.append(`${prefix}-${i}`, 'consultation.created', {
            consultationId: `${prefix}-${i}`,
          });
        const killAfter = 150 + trial * 200;
        const { acked } = await runNodeAndKill(prefix, killAfter);
        for (const [id, seqs] of acked) {
          const rows = await pool.query<{ seq: string; line: string }>(
            'SELECT seq, line FROM teleconsult_journal_records WHERE consultation_id = $1 ORDER BY seq',
            [id],
          );
          const stored = new Map(
            rows.rows.map((r) => [Number(r.seq), (JSON.parse(r.line) as { hash: string }).hash]),
          );
          for (const [seq, hash] of seqs) {
            totalAcked++;
            if (stored.get(seq) !== hash) lost++;
          }
        }
        // The rooms move to a surviving node: every chain goes on and verifies.
        for (let i = 0; i < 10; i++) {
          const id = `${prefix}-${i}`;
          await survivor.append(id, 'incident', { kind: 'worker-died', detail: 'node-lost' });
          await survivor.append(id, 'consultation.ended', { reason: 'ended-by-practitioner' });
          const exported = await survivor.export(id);
          if (!exported.verification.ok || !exported.verification.anchored) t.fail(`${id} does not verify`);
        }
      }
      t.ok(totalAcked > 0, `${totalAcked} acknowledged appends across ${KILL_TRIALS} kills`);
      t.equal(lost, 0, '0 acknowledged records lost');
    },
  );

  void t.test(
    'database connections killed mid-append: failures are reported, nothing acknowledged is lost',
    async (t) => {
      const survivor = await PgJournalStore.open({ pool: newPool(), retentionDays: 30, signer });
      t.teardown(() => survivor.close());
      const admin = newPool(1);
      for (let i = 0; i < 10; i++)
        await survivor.append(`term-${i}`, 'consultation.created', { consultationId: `term-${i}` });
      let terminated = 0;
      const { acked, errors } = await runNodeAndKill('term', Number.MAX_SAFE_INTEGER, () => {
        // Cut the node's database connections while its appends are in flight.
        setTimeout(() => {
          void admin
            .query(
              "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = 'pg-burst'",
            )
            .then((r) => (terminated = (r.rows[0] as { n: number }).n));
        }, 30);
      });
      t.comment(
        `${terminated} connections terminated, ${errors} appends failed (JOURNAL_IO), the rest acknowledged`,
      );
      let lost = 0;
      let count = 0;
      for (const [id, seqs] of acked) {
        const rows = await admin.query<{ seq: string; line: string }>(
          'SELECT seq, line FROM teleconsult_journal_records WHERE consultation_id = $1 ORDER BY seq',
          [id],
        );
        const check = verifyChain(
          id,
          rows.rows.map((r) => r.line),
        );
        if (!check.ok) t.fail(`${id}: ${check.reason}`);
        const stored = new Map(check.records.map((r) => [r.seq, r.hash]));
        for (const [seq, hash] of seqs) {
          count++;
          if (stored.get(seq) !== hash) lost++;
        }
      }
      t.ok(count > 0, `${count} acknowledged`);
      t.equal(lost, 0, '0 acknowledged records lost');
      for (let i = 0; i < 10; i++) {
        await survivor.append(`term-${i}`, 'incident', { kind: 'reconnected' });
        t.equal((await survivor.verify(`term-${i}`)).ok, true);
      }
    },
  );

  void t.test(
    'a connection terminated in the same read that made it ready fails one batch, never the process',
    async (t) => {
      const proxy = await startPgFaultProxy(server.port);
      t.teardown(() => proxy.close());
      // maxUses 1: every checkout opens a new connection, so the armed one is the next batch's.
      const pool = new pg.Pool({
        connectionString: server.url.replace(`:${server.port}/`, `:${proxy.port}/`),
        max: 2,
        maxUses: 1,
      });
      pool.on('error', () => undefined);
      pools.push(pool);
      const store = await PgJournalStore.open({ pool, retentionDays: 30, signer });
      t.teardown(() => store.close());
      proxy.armOnce();
      await t.rejects(
        store.append('same-read-1', 'consultation.created', { consultationId: 'same-read-1' }),
        { code: 'JOURNAL_IO' },
        'the batch on the terminated connection is reported failed',
      );
      t.equal(proxy.injected(), 1, 'the termination was delivered with ReadyForQuery');
      const record = await store.append('same-read-1', 'consultation.created', {
        consultationId: 'same-read-1',
      });
      t.equal(record.seq, 1, 'the next batch, on a new connection, is written');
      t.equal((await store.verify('same-read-1')).ok, true);
    },
  );

  void t.test('the migration command moves file journals into PostgreSQL and verifies them', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'journal-migrate-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const files = new JournalStore({ dir, retentionDays: 30, signer, checkpointEvery: 5 });
    for (const event of consultationEvents('mig-ended'))
      await files.append('mig-ended', event.type, event.data);
    for (const event of consultationEvents('mig-open').slice(0, 7))
      await files.append('mig-open', event.type, event.data);
    for (const event of consultationEvents('mig-bad').slice(0, 4))
      await files.append('mig-bad', event.type, event.data);
    await files.close();
    const badFile = path.join(dir, 'journals', 'mig-bad.jsonl');
    fs.writeFileSync(badFile, fs.readFileSync(badFile, 'utf8').replace('"p-pat"', '"p-xxx"'));
    const keys = path.join(dir, 'keys.json');
    fs.writeFileSync(keys, JSON.stringify(keySetDocument(new JournalKeyring([signer.publicKey]))));

    const run = () =>
      spawnSync(process.execPath, [migrateCli, '--postgres-url', server.url, '--keys', keys, dir], {
        encoding: 'utf8',
        timeout: 60_000,
      });
    const first = run();
    t.equal(first.status, 1, 'a broken journal is not migrated, and says so');
    t.match(first.stdout, /^MIGRATED mig-ended records=\d+ /m);
    t.match(first.stdout, /^MIGRATED mig-open /m);
    t.match(first.stdout, /^BROKEN mig-bad reason="line \d+: /m);
    t.match(run().stdout, /^ALREADY mig-ended /m, 'running it again changes nothing');

    const store = await PgJournalStore.open({ pool: newPool(2), retentionDays: 30, signer });
    t.teardown(() => store.close());
    const reader = new JournalStore({ dir, retentionDays: 30, signer });
    t.teardown(() => reader.close());
    for (const id of ['mig-ended', 'mig-open']) {
      const fromDb = await store.export(id);
      const fromFile = await reader.export(id);
      t.same(fromDb.records, fromFile.records, `${id}: the same records`);
      t.equal(fromDb.headHash, fromFile.headHash);
      t.equal(fromDb.verification.ok, true);
    }
    t.equal((await store.export('mig-ended')).verification.anchored, true);
    // The migrated open consultation goes on in the database.
    await store.append('mig-open', 'consultation.ended', { reason: 'ended-by-practitioner' });
    t.match(await store.verify('mig-open'), { ok: true, anchored: true });
    await t.rejects(store.export('mig-bad'), { code: 'JOURNAL_NOT_FOUND' });
  });

  void t.test('a webhook is delivered once per id across nodes', async (t) => {
    const receiver = await WebhookReceiver.start(SECRET);
    t.teardown(() => receiver.close());
    const nodes = await Promise.all(
      ['node-a', 'node-b', 'node-c'].map((nodeId) =>
        PgWebhookOutbox.open({
          pool: newPool(4),
          url: receiver.url,
          secret: SECRET,
          nodeId,
          pollMs: 20,
          baseDelayMs: 20,
        }),
      ),
    );
    t.teardown(() => Promise.all(nodes.map((n) => n.close())));
    for (const node of nodes) node.start();
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, n) =>
        (nodes[n % 3] as PgWebhookOutbox).enqueue({
          type: 'consultation.incident',
          data: { consultationId: `c-${n % 20}`, kind: 'network-poor', at: new Date().toISOString() },
          // Every key is enqueued by three different nodes.
          idempotencyKey: `incident-${n % 20}`,
        }),
      ),
    );
    t.equal(
      results.filter((r) => r.status === 'enqueued').length,
      20,
      'one enqueue per key, the others duplicates',
    );
    await receiver.waitFor(() => new Set(receiver.requests.map((r) => r.id)).size === 20);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const perId = new Map<string, number>();
    for (const r of receiver.requests) perId.set(r.id, (perId.get(r.id) ?? 0) + 1);
    t.equal(perId.size, 20);
    t.same([...new Set(perId.values())], [1], 'each id POSTed exactly once');
    t.ok(receiver.requests.every((r) => r.signatureValid));
  });
}

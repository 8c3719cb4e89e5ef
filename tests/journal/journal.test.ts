import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Metrics } from '../../src/observability/metrics.js';
import { JournalStore } from '../../src/journal/journalStore.js';
import { isJournalError, type JournalErrorCode } from '../../src/journal/errors.js';
import { verifyChain } from '../../src/journal/chain.js';
import type { JournalEventData } from '../../src/journal/events.js';
import { consultationEvents } from './sampleEvents.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const verifyCli = path.resolve(here, '../../src/journal/verifyCli.js');

function tmpDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'journal-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function rejectsWith(t: Test, promise: Promise<unknown>, code: JournalErrorCode, what: string) {
  try {
    await promise;
    t.fail(`${what}: expected ${code}, it resolved`);
  } catch (error) {
    t.ok(isJournalError(error, code), `${what}: ${code}`);
  }
}

async function writeConsultation(store: JournalStore, id: string): Promise<void> {
  for (const event of consultationEvents(id)) await store.append(id, event.type, event.data);
}

function runCli(...args: string[]): { status: number | null; stdout: string } {
  const result = spawnSync(process.execPath, [verifyCli, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stdout: result.stdout };
}

function journalFile(dir: string, id: string): string {
  return path.join(dir, 'journals', `${id}.jsonl`);
}

void t.test('appended events form a hash chain that verifies and exports in order', async (t) => {
  const dir = tmpDir(t);
  const store = new JournalStore({ dir, retentionDays: 30 });
  t.teardown(() => store.close());
  const events = consultationEvents('cons-1');
  for (const [index, event] of events.entries()) {
    const record = await store.append('cons-1', event.type, event.data);
    t.equal(record.seq, index + 1);
    t.match(record.hash, /^[0-9a-f]{64}$/);
  }
  const exported = await store.export('cons-1');
  t.equal(exported.format, 'teleconsult-journal/1');
  t.equal(exported.records.length, events.length);
  t.same(
    exported.records.map((r) => r.type),
    events.map((e) => e.type),
  );
  t.same(exported.verification, { ok: true, signaturesChecked: false, anchoredSeq: 0, anchored: false });
  t.equal(exported.ended, true);
  t.equal(exported.headHash, exported.records.at(-1)?.hash);
  for (const [i, r] of exported.records.entries()) {
    if (i > 0)
      t.equal(r.prevHash, exported.records[i - 1]?.hash, `record ${r.seq} points at its predecessor`);
  }
  const rpps = exported.records.find((r) => r.type === 'participant.invited');
  t.same((rpps?.data as JournalEventData<'participant.invited'>).professional, { rpps: '10101010101' });
  t.match(await store.verify('cons-1'), { ok: true, records: events.length });
  const cli = runCli(dir, 'cons-1');
  t.equal(cli.status, 0, 'the CLI exits 0 on an intact journal');
  t.match(cli.stdout, /^OK cons-1 records=11 ended=true/m);
});

void t.test('a burst of concurrent appends shares write+fsync batches (group commit)', async (t) => {
  const dir = tmpDir(t);
  const metrics = new Metrics();
  const store = new JournalStore({ dir, retentionDays: 30, metrics, maxPendingPerJournal: 4096 });
  t.teardown(() => store.close());
  await store.append('burst', 'consultation.created', { consultationId: 'burst' });
  const before = (await metrics.journalFsyncBatches.get()).values[0]?.value ?? 0;
  const count = 2000;
  const started = performance.now();
  const records = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      store.append('burst', 'incident', {
        kind: i % 2 ? 'network-poor' : 'reconnected',
        participantId: `p-${i % 7}`,
      }),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  const batches = ((await metrics.journalFsyncBatches.get()).values[0]?.value ?? 0) - before;
  t.comment(
    `group commit: ${count} appends in ${batches} write+fsync batches, ${Math.round(count / seconds)} appends/s`,
  );
  t.same(
    records.map((r) => r.seq),
    Array.from({ length: count }, (_, i) => i + 2),
    'sequence numbers follow call order',
  );
  const sequentialStarted = performance.now();
  for (let i = 0; i < 200; i++) await store.append('burst', 'incident', { kind: 'reconnected' });
  const sequentialRate = Math.round(200 / ((performance.now() - sequentialStarted) / 1000));
  t.comment(`one awaited append at a time (one fsync each): ${sequentialRate} appends/s`);
  t.ok(batches < count / 10, `far fewer fsyncs than appends (${batches} for ${count})`);
  t.match(await store.verify('burst'), { ok: true, records: count + 201 });
  const appended = (await metrics.journalAppends.get()).values.reduce((sum, v) => sum + v.value, 0);
  t.equal(appended, count + 201, 'sfu_journal_appends_total counts every acknowledged record');
});

void t.test('tampering with a record is detected by verify and by the CLI', async (t) => {
  const dir = tmpDir(t);
  const store = new JournalStore({ dir, retentionDays: 30 });
  for (const id of ['edited', 'deleted', 'reordered', 'rehashed', 'intact'])
    await writeConsultation(store, id);
  await store.close();

  const lines = (id: string) => fs.readFileSync(journalFile(dir, id), 'utf8').trimEnd().split('\n');
  const write = (id: string, l: string[]) => fs.writeFileSync(journalFile(dir, id), `${l.join('\n')}\n`);

  const edited = lines('edited');
  edited[5] = (edited[5] as string).replace('"version":"3"', '"version":"4"');
  write('edited', edited);
  const deleted = lines('deleted');
  deleted.splice(3, 1);
  write('deleted', deleted);
  const reordered = lines('reordered');
  [reordered[6], reordered[7]] = [reordered[7] as string, reordered[6] as string];
  write('reordered', reordered);
  // A forger who also recomputes the edited record's own hash breaks the next link instead.
  const rehashed = lines('rehashed');
  const victim = JSON.parse(rehashed[4] as string) as Record<string, unknown>;
  (victim.data as Record<string, unknown>).identityStatus = 'verified';
  const { recordHash } = await import('../../src/journal/chain.js');
  victim.hash = recordHash(victim as never);
  rehashed[4] = JSON.stringify(victim);
  write('rehashed', rehashed);

  const reader = new JournalStore({ dir, retentionDays: 30 });
  t.teardown(() => reader.close());
  const expectations: Record<string, number> = { edited: 6, deleted: 4, reordered: 7, rehashed: 6 };
  for (const [id, firstBadSeq] of Object.entries(expectations)) {
    const result = await reader.verify(id);
    t.equal(result.ok, false, `${id}: verification fails`);
    t.equal(result.firstBadSeq, firstBadSeq, `${id}: first bad seq is ${firstBadSeq}`);
  }
  t.equal((await reader.verify('intact')).ok, true);
  await rejectsWith(
    t,
    reader.append('edited', 'incident', { kind: 'network-poor' }),
    'JOURNAL_CORRUPT',
    'a tampered journal refuses appends',
  );

  const all = runCli(dir);
  t.equal(all.status, 1, 'the CLI exits 1 when a journal is broken');
  t.match(all.stdout, /^BROKEN edited line=6 firstBadSeq=6 /m);
  t.match(all.stdout, /^BROKEN deleted line=4 firstBadSeq=4 /m);
  t.match(all.stdout, /^BROKEN reordered line=7 firstBadSeq=7 /m);
  t.match(all.stdout, /^BROKEN rehashed line=6 firstBadSeq=6 /m);
  t.match(all.stdout, /^OK intact /m);
  t.notMatch(all.stdout, /10101010101/, 'the CLI prints no event data');
  t.equal(runCli(path.join(dir, 'journals'), 'intact').status, 0, 'the journals folder itself is accepted');
  t.equal(runCli(dir, 'reordered').status, 1);
  t.equal(runCli().status, 2, 'usage error');
  t.equal(runCli(dir, '../etc').status, 2, 'an id that is a path is refused');
});

void t.test('a journal copied under another consultation id does not verify', async (t) => {
  const dir = tmpDir(t);
  const store = new JournalStore({ dir, retentionDays: 30 });
  await writeConsultation(store, 'original');
  await store.close();
  fs.copyFileSync(journalFile(dir, 'original'), journalFile(dir, 'copy'));
  const reader = new JournalStore({ dir, retentionDays: 30 });
  t.teardown(() => reader.close());
  const result = await reader.verify('copy');
  t.equal(result.ok, false);
  t.equal(result.firstBadSeq, 1);
});

void t.test('a torn last line (never acknowledged) is cut on open and the chain goes on', async (t) => {
  const dir = tmpDir(t);
  const store = new JournalStore({ dir, retentionDays: 30 });
  await store.append('torn', 'consultation.created', { consultationId: 'torn' });
  await store.append('torn', 'participant.waiting', { participantId: 'p1', role: 'patient' });
  await store.close();
  const file = journalFile(dir, 'torn');
  const intactSize = fs.statSync(file).size;
  fs.appendFileSync(file, '{"seq":3,"ts":"2024-01-01T00:00:00.000Z","type":"incid');
  const cli = runCli(dir, 'torn');
  t.equal(cli.status, 0, 'a torn tail is not a broken chain');
  t.match(cli.stdout, /tornTailBytes=\d+/);

  const reopened = new JournalStore({ dir, retentionDays: 30 });
  t.teardown(() => reopened.close());
  const record = await reopened.append('torn', 'incident', { kind: 'worker-died' });
  t.equal(record.seq, 3, 'the torn record never counted');
  t.ok(fs.statSync(file).size > intactSize);
  t.match(await reopened.verify('torn'), { ok: true, records: 3 });
  // Zero-filled blocks after the last newline (what a power loss may leave) are cut too; the same
  // bytes followed by a newline are corruption (tests/journal/corruption.test.ts).
  await reopened.close();
  fs.appendFileSync(file, Buffer.alloc(100));
  const again = new JournalStore({ dir, retentionDays: 30 });
  t.teardown(() => again.close());
  t.equal((await again.append('torn', 'incident', { kind: 'reconnected' })).seq, 4);
  t.match(await again.verify('torn'), { ok: true, records: 4 });
});

void t.test('bad input and misuse get typed errors, never a crash', async (t) => {
  const dir = tmpDir(t);
  const store = new JournalStore({ dir, retentionDays: 30, maxPendingPerJournal: 8, maxRecordBytes: 600 });
  t.teardown(() => store.close());
  await rejectsWith(
    t,
    store.append('../escape', 'incident', { kind: 'reconnected' }),
    'JOURNAL_INVALID_ID',
    'path id',
  );
  await rejectsWith(
    t,
    store.append('', 'incident', { kind: 'reconnected' }),
    'JOURNAL_INVALID_ID',
    'empty id',
  );
  await rejectsWith(
    t,
    store.append('..', 'incident', { kind: 'reconnected' }),
    'JOURNAL_INVALID_ID',
    'dot-dot',
  );
  t.equal(
    (await store.append('room:42', 'incident', { kind: 'reconnected' })).seq,
    1,
    'a REST room id is accepted',
  );
  await rejectsWith(
    t,
    store.append('c', 'incident', { kind: 'meteor-strike' } as unknown as JournalEventData<'incident'>),
    'JOURNAL_INVALID_EVENT',
    'unknown incident kind',
  );
  await rejectsWith(
    t,
    store.append('c', 'participant.left', {
      participantId: 'p1',
      diagnosis: 'flu',
    } as unknown as JournalEventData<'participant.left'>),
    'JOURNAL_INVALID_EVENT',
    'an unknown member (no health content sneaks in)',
  );
  await rejectsWith(
    t,
    store.append('c', 'no.such.type' as 'incident', { kind: 'reconnected' }),
    'JOURNAL_INVALID_EVENT',
    'unknown event type',
  );
  await rejectsWith(
    t,
    store.append('c', 'participant.invited', {
      participantId: 'p1',
      role: 'practitioner',
      professional: { rpps: '1234 5678' },
    }),
    'JOURNAL_INVALID_EVENT',
    'an RPPS is an identifier, not free text',
  );
  await rejectsWith(
    t,
    store.append('c', 'thirdparty.requested', {
      requestId: 'r'.repeat(128),
      requestedBy: 'q'.repeat(128),
      role: 'interpreter',
      participantId: 's'.repeat(128),
    }),
    'JOURNAL_RECORD_TOO_LARGE',
    'record size cap',
  );

  const results = await Promise.allSettled(
    Array.from({ length: 30 }, () => store.append('c', 'incident', { kind: 'network-poor' })),
  );
  const accepted = results.filter((r) => r.status === 'fulfilled').length;
  const refused = results.filter(
    (r) => r.status === 'rejected' && isJournalError(r.reason, 'JOURNAL_BACKPRESSURE'),
  ).length;
  t.equal(accepted, 8, 'the pending cap is honoured');
  t.equal(refused, 22, 'beyond it appends are refused with JOURNAL_BACKPRESSURE');
  t.match(await store.verify('c'), { ok: true, records: 8 }, 'every accepted append is on disk');

  await store.append('c', 'consultation.ended', { reason: 'ended-by-practitioner' });
  await rejectsWith(t, store.append('c', 'incident', { kind: 'reconnected' }), 'JOURNAL_ENDED', 'after end');
  await rejectsWith(t, store.export('missing'), 'JOURNAL_NOT_FOUND', 'export of an unknown consultation');
  await store.close();
  await rejectsWith(
    t,
    store.append('d', 'incident', { kind: 'reconnected' }),
    'JOURNAL_CLOSED',
    'after close',
  );
  const reopened = new JournalStore({ dir, retentionDays: 30 });
  t.teardown(() => reopened.close());
  await rejectsWith(
    t,
    reopened.append('c', 'incident', { kind: 'reconnected' }),
    'JOURNAL_ENDED',
    'ended survives',
  );
});

void t.test('open journals are bounded and idle ones are closed', async (t) => {
  const dir = tmpDir(t);
  const store = new JournalStore({ dir, retentionDays: 30, maxOpenJournals: 3, idleCloseMs: 300 });
  t.teardown(() => store.close());
  for (let i = 0; i < 8; i++) {
    await store.append(`room-${i}`, 'consultation.created', { consultationId: `room-${i}` });
    t.ok(store.openCount <= 3, `at most 3 open after room-${i}`);
  }
  await store.append('room-0', 'incident', { kind: 'reconnected' });
  t.equal((await store.verify('room-0')).records, 2, 'a reopened journal continues its chain');
  await new Promise((resolve) => setTimeout(resolve, 1200));
  t.equal(store.openCount, 0, 'idle journals were closed');
  t.same((await store.list()).length, 8);
});

void t.test('the retention sweep deletes journals older than retentionDays, and only those', async (t) => {
  const dir = tmpDir(t);
  const day = 86_400_000;
  const now = Date.parse('2025-06-01T12:00:00Z');
  let clock = now - 40 * day;
  const writer = new JournalStore({ dir, retentionDays: 30, clock: () => clock });
  await writeConsultation(writer, 'ended-40d-ago');
  await writer.append('abandoned-40d-ago', 'consultation.created', { consultationId: 'abandoned-40d-ago' });
  await writer.append('ended-late', 'consultation.created', { consultationId: 'ended-late' });
  clock = now - 10 * day;
  await writer.append('ended-late', 'consultation.ended', { reason: 'ended-by-practitioner' });
  await writeConsultation(writer, 'ended-10d-ago');
  await writer.close();

  clock = now - 31 * day;
  const store = new JournalStore({ dir, retentionDays: 30, clock: () => clock });
  t.teardown(() => store.close());
  // A journal held open is never swept, whatever its age.
  await store.append('open-now', 'consultation.created', { consultationId: 'open-now' });
  clock = now;
  const result = await store.sweep();
  t.same(result.deleted.sort(), ['abandoned-40d-ago', 'ended-40d-ago']);
  t.same(await store.list(), ['ended-10d-ago', 'ended-late', 'open-now']);
  t.equal(fs.existsSync(journalFile(dir, 'ended-40d-ago')), false);
  clock = now + 25 * day;
  t.same((await store.sweep()).deleted.sort(), ['ended-10d-ago', 'ended-late']);
});

void t.test('verifyChain reports a malformed line at its position', (t) => {
  const result = verifyChain('x', ['not json']);
  t.equal(result.ok, false);
  t.equal(result.firstBadSeq, 1);
  t.same(verifyChain('x', []), {
    ok: true,
    records: [],
    ended: false,
    headHash: result.headHash,
    signaturesChecked: false,
    anchoredSeq: 0,
    anchored: false,
  });
  t.end();
});

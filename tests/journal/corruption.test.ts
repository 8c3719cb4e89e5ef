import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Metrics } from '../../src/observability/metrics.js';
import { JournalStore, type JournalIncident } from '../../src/journal/journalStore.js';
import { isJournalError, type JournalErrorCode } from '../../src/journal/errors.js';
import { recordHash, verifyChain } from '../../src/journal/chain.js';
import { ConsultationRecord } from '../../src/rooms/consultationRecord.js';
import { WebhookOutbox } from '../../src/webhooks/outbox.js';
import { createLogger } from '../../src/observability/logger.js';
import { isSfuError } from '../../src/errors/catalogue.js';
import { consultationEvents } from './sampleEvents.js';

/**
 * The attacks of issue #16 on the journal folder: a complete line that does not parse, hash or
 * chain is corruption, never a torn tail. It fails verification loudly (CLI, export), and the
 * server refuses the journal, moves it aside byte for byte, counts and reports it; an id whose
 * journal exists is never started again.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const verifyCli = path.resolve(here, '../../src/journal/verifyCli.js');

function tmpDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'journal-corrupt-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function runCli(...args: string[]): { status: number | null; stdout: string } {
  const result = spawnSync(process.execPath, [verifyCli, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stdout: result.stdout };
}

function journalFile(dir: string, id: string): string {
  return path.join(dir, 'journals', `${id}.jsonl`);
}

async function rejectsWith(t: Test, promise: Promise<unknown>, code: JournalErrorCode, what: string) {
  try {
    await promise;
    t.fail(`${what}: expected ${code}, it resolved`);
  } catch (error) {
    t.ok(isJournalError(error, code), `${what}: ${code} (${(error as Error).message})`);
  }
}

/** Writes a whole ended consultation (21 records) and closes the store. */
async function endedJournal(dir: string, id: string): Promise<Buffer> {
  const store = new JournalStore({ dir, retentionDays: 30 });
  for (const event of consultationEvents(id)) await store.append(id, event.type, event.data);
  await store.close();
  return fs.readFileSync(journalFile(dir, id));
}

function lines(content: Buffer): string[] {
  return content.toString('utf8').split('\n').slice(0, -1);
}

function joined(list: string[]): Buffer {
  return Buffer.from(list.map((l) => `${l}\n`).join(''), 'utf8');
}

/** A NUL byte in the middle of a line, which keeps its length and its newline. */
function withNul(line: string): string {
  const at = Math.floor(line.length / 2);
  return `${line.slice(0, at)}\u0000${line.slice(at + 1)}`;
}

interface Attack {
  name: string;
  tamper: (original: string[]) => string[];
  line: (count: number) => number;
  reason: RegExp;
}

const ATTACKS: Attack[] = [
  {
    name: 'nul-every-line',
    tamper: (l) => l.map(withNul),
    line: () => 1,
    reason: /NUL/,
  },
  {
    name: 'nul-last-record',
    tamper: (l) => [...l.slice(0, -1), withNul(l.at(-1) as string)],
    line: (n) => n,
    reason: /NUL/,
  },
  {
    name: 'cut-last-line',
    tamper: (l) => [...l.slice(0, -1), (l.at(-1) as string).slice(0, 40)],
    line: (n) => n,
    reason: /not JSON/,
  },
  {
    name: 'reordered',
    tamper: (l) => [l[0] as string, l[2] as string, l[1] as string, ...l.slice(3)],
    line: () => 2,
    reason: /seq/,
  },
  {
    name: 'garbage-line',
    tamper: (l) => [...l.slice(0, 5), 'garbage', ...l.slice(5)],
    line: () => 6,
    reason: /not JSON/,
  },
];

void t.test('a complete line that does not verify is loud and never trimmed', async (t) => {
  for (const attack of ATTACKS) {
    await t.test(attack.name, async (t) => {
      const dir = tmpDir(t);
      const id = `c-${attack.name}`;
      const original = lines(await endedJournal(dir, id));
      const tampered = joined(attack.tamper(original));
      fs.writeFileSync(journalFile(dir, id), tampered);
      const expectedLine = attack.line(original.length);

      const cli = runCli(dir, id);
      t.equal(cli.status, 1, 'the CLI fails');
      t.match(cli.stdout, new RegExp(`^BROKEN ${id} line=${expectedLine} `, 'm'), 'it names the line');
      t.match(cli.stdout, attack.reason, 'and the reason');
      t.notMatch(cli.stdout, /^OK /m);

      const metrics = new Metrics();
      const incidents: JournalIncident[] = [];
      const store = new JournalStore({
        dir,
        retentionDays: 30,
        metrics,
        onCorrupt: (incident) => incidents.push(incident),
      });
      t.teardown(() => store.close());
      const exported = await store.export(id);
      t.equal(exported.verification.ok, false, 'the export reports verification failed');
      t.equal(exported.verification.line, expectedLine);
      t.match(exported.verification.reason ?? '', attack.reason);

      await rejectsWith(
        t,
        store.append(id, 'consultation.created', { consultationId: id }),
        'JOURNAL_CORRUPT',
        'no new chain over it',
      );
      t.notOk(fs.existsSync(journalFile(dir, id)), 'moved out of the journals folder');
      t.equal(incidents.length, 1, 'one incident');
      const incident = incidents[0] as JournalIncident;
      t.equal(incident.line, expectedLine);
      t.same(fs.readFileSync(incident.movedTo), tampered, 'moved aside byte for byte, never truncated');
      t.equal(incident.bytes, tampered.length);
      const stored = fs
        .readdirSync(path.dirname(incident.movedTo))
        .filter((n) => n.endsWith('.incident.json'));
      t.equal(stored.length, 1, 'the incident is stored beside the moved file');
      t.match(await metrics.registry.getSingleMetricAsString('sfu_journal_corrupt_total'), / 1$/m);

      await rejectsWith(
        t,
        store.append(id, 'incident', { kind: 'reconnected' }),
        'JOURNAL_CORRUPT',
        'still refused once moved aside',
      );
      const again = await store.export(id);
      t.equal(again.quarantined, true, 'the export still serves it, marked quarantined');
      t.equal(again.verification.ok, false);
      t.equal(runCli(dir).status, 1, 'the CLI reports the moved-aside journal as broken');
      t.equal(incidents.length, 1, 'a refused journal is not counted twice');
    });
  }
});

void t.test('only bytes after the last newline are a torn tail', async (t) => {
  const dir = tmpDir(t);
  const store = new JournalStore({ dir, retentionDays: 30 });
  await store.append('torn', 'consultation.created', { consultationId: 'torn' });
  await store.close();
  const file = journalFile(dir, 'torn');
  // Zero-filled blocks after the last newline: never acknowledged, cut on open.
  fs.appendFileSync(file, Buffer.alloc(100));
  t.equal(runCli(dir, 'torn').status, 0);
  const reopened = new JournalStore({ dir, retentionDays: 30 });
  t.equal((await reopened.append('torn', 'incident', { kind: 'reconnected' })).seq, 2);
  await reopened.close();
  // The same bytes followed by a newline are a complete line: corruption, kept.
  fs.appendFileSync(file, Buffer.concat([Buffer.alloc(100), Buffer.from('\n')]));
  const before = fs.readFileSync(file);
  const cli = runCli(dir, 'torn');
  t.equal(cli.status, 1);
  t.match(cli.stdout, /^BROKEN torn line=3 .*NUL/m);
  const third = new JournalStore({ dir, retentionDays: 30 });
  t.teardown(() => third.close());
  await rejectsWith(
    t,
    third.append('torn', 'incident', { kind: 'reconnected' }),
    'JOURNAL_CORRUPT',
    'NUL line',
  );
  const moved = fs.readdirSync(path.join(dir, 'corrupt', 'torn')).find((n) => n.endsWith('.jsonl'));
  t.same(fs.readFileSync(path.join(dir, 'corrupt', 'torn', moved as string)), before);
});

void t.test('every top-level member is hashed: an extra member is refused', async (t) => {
  const dir = tmpDir(t);
  const original = lines(await endedJournal(dir, 'extra'));
  const victim = JSON.parse(original[5] as string) as Record<string, unknown>;
  victim.note = 'consent obtained by phone';
  // Even with the hash recomputed over it, the chain breaks: no member outside the format.
  victim.hash = recordHash(victim as never);
  const plain = JSON.parse(original[5] as string) as Record<string, unknown>;
  plain.note = 'consent obtained by phone';
  for (const [name, record] of [
    ['rehashed', victim],
    ['plain', plain],
  ] as const) {
    const result = verifyChain('extra', [
      ...original.slice(0, 5),
      JSON.stringify(record),
      ...original.slice(6),
    ]);
    t.equal(result.ok, false, `${name}: refused`);
    t.equal(result.line, 6);
    t.match(result.reason, /unknown member "note"/);
  }
  fs.writeFileSync(
    journalFile(dir, 'extra'),
    joined([...original.slice(0, 5), JSON.stringify(plain), ...original.slice(6)]),
  );
  const store = new JournalStore({ dir, retentionDays: 30 });
  t.teardown(() => store.close());
  const exported = await store.export('extra');
  t.equal(exported.verification.ok, false);
  t.notOk(
    exported.records.some((r) => 'note' in r),
    'the unhashed member is not shown as part of a verified record',
  );
});

void t.test('a line must be exactly the serialisation of what is hashed', (t) => {
  const record = (seq: number, prevHash: string) => {
    const fields = {
      seq,
      ts: '2026-01-01T00:00:00.000Z',
      type: 'incident',
      data: { kind: 'reconnected' },
      prevHash,
    };
    return { ...fields, hash: recordHash(fields as never) };
  };
  const first = verifyChain('x', []).headHash;
  const good = record(1, first);
  t.equal(verifyChain('x', [JSON.stringify(good)]).ok, true);
  const duplicate = JSON.stringify(good).replace('"data":', '"data":{"kind":"worker-died"},"data":');
  t.match(verifyChain('x', [duplicate]).reason, /exact serialisation/, 'a duplicate member');
  t.match(verifyChain('x', [JSON.stringify(good, null, 1).replace(/\n/g, '')]).reason, /exact serialisation/);
  const unknownData = { ...good, data: { kind: 'reconnected', extra: 1 } };
  t.match(verifyChain('x', [JSON.stringify(unknownData)]).reason, /schema/, 'unknown data member');
  t.match(
    verifyChain('x', [JSON.stringify({ ...good, ts: '2026-01-01T00:00:00Z' })]).reason,
    /ISO timestamp/,
  );
  t.end();
});

void t.test('a consultation id whose journal exists is never started again', async (t) => {
  const dir = tmpDir(t);
  await endedJournal(dir, 'ended');
  const store = new JournalStore({ dir, retentionDays: 30 });
  t.teardown(() => store.close());
  await rejectsWith(
    t,
    store.append('ended', 'consultation.created', { consultationId: 'ended' }),
    'JOURNAL_EXISTS',
    'ended journal',
  );
  await store.append('open', 'consultation.created', { consultationId: 'open' });
  await rejectsWith(
    t,
    store.append('open', 'consultation.created', { consultationId: 'open' }),
    'JOURNAL_EXISTS',
    'open journal',
  );

  // The room code turns it into the catalogue's ROOM_ID_TAKEN, for ended and corrupt journals alike.
  const outbox = await WebhookOutbox.open({ dir, url: null, secret: null });
  const record = new ConsultationRecord(store, outbox, createLogger('silent'));
  fs.writeFileSync(journalFile(dir, 'nul'), joined(lines(await endedJournal(dir, 'nul')).map(withNul)));
  for (const id of ['ended', 'nul', 'nul']) {
    try {
      await record.record(id, 'consultation.created', { consultationId: id });
      t.fail(`${id}: reused`);
    } catch (error) {
      t.ok(isSfuError(error) && error.code === 'ROOM_ID_TAKEN', `${id}: ROOM_ID_TAKEN`);
      t.equal(isSfuError(error) && error.status, 409);
    }
  }
  t.equal((await store.export('ended')).records.length, consultationEvents('ended').length, 'untouched');
});

import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { verify } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { JournalStore } from '../../src/journal/journalStore.js';
import { buildRecord, genesisHash, type JournalRecord } from '../../src/journal/chain.js';
import {
  JournalKeyring,
  JournalSigner,
  checkpointPayload,
  keySetDocument,
  loadSigningKey,
} from '../../src/journal/signing.js';
import type { JournalEventData, JournalEventType } from '../../src/journal/events.js';
import { createLogger } from '../../src/observability/logger.js';
import { WebhookOutbox } from '../../src/webhooks/outbox.js';
import type { WebhookBody } from '../../src/webhooks/events.js';
import { WebhookReceiver } from '../webhooks/receiver.js';
import { consultationEvents } from './sampleEvents.js';

/**
 * The anchored chain (issue #16): checkpoints signed with Ed25519 every N records and after the
 * end; a chain recomputed from the genesis without the key is caught by its signatures.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const verifyCli = path.resolve(here, '../../src/journal/verifyCli.js');
const SECRET = 'webhook-secret-0123456789';

function tmpDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'journal-anchor-'));
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

function readRecords(dir: string, id: string): JournalRecord[] {
  return fs
    .readFileSync(journalFile(dir, id), 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as JournalRecord);
}

function writeRecords(dir: string, id: string, records: JournalRecord[]): void {
  fs.writeFileSync(journalFile(dir, id), records.map((r) => `${JSON.stringify(r)}\n`).join(''));
}

/** Rebuilds a chain from the genesis as a forger would: every seq, prevHash and hash recomputed. */
function reforge(
  id: string,
  events: Array<{ type: JournalEventType; data: JournalEventData; ts: string }>,
): JournalRecord[] {
  let prev = genesisHash(id);
  return events.map((event, index) => {
    const record = buildRecord(index + 1, event.ts, event.type, event.data, prev);
    prev = record.hash;
    return record;
  });
}

async function signedConsultation(dir: string, id: string, signer: JournalSigner): Promise<void> {
  const store = new JournalStore({ dir, retentionDays: 30, signer, checkpointEvery: 5 });
  for (const event of consultationEvents(id)) await store.append(id, event.type, event.data);
  await store.close();
}

function keysFile(t: Test, signer: JournalSigner): string {
  const file = path.join(tmpDir(t), 'keys.json');
  fs.writeFileSync(file, JSON.stringify(keySetDocument(new JournalKeyring([signer.publicKey]))));
  return file;
}

void t.test('checkpoints every N records and after the end anchor the whole chain', async (t) => {
  const dir = tmpDir(t);
  const signer = JournalSigner.generate();
  await signedConsultation(dir, 'c-1', signer);
  const records = readRecords(dir, 'c-1');
  const events = consultationEvents('c-1').length;
  const checkpoints = records.filter((r) => r.type === 'journal.checkpoint');
  t.equal(checkpoints.length, Math.floor(events / 5) + 1, 'one every 5 records, one after the end');
  t.equal(records.at(-1)?.type, 'journal.checkpoint', 'the end is signed');
  t.equal(records.at(-2)?.type, 'consultation.ended');
  for (const checkpoint of checkpoints) {
    const data = checkpoint.data as JournalEventData<'journal.checkpoint'>;
    t.equal(data.signedSeq, checkpoint.seq - 1);
    t.equal(data.keyId, signer.keyId);
  }

  const store = new JournalStore({ dir, retentionDays: 30, signer });
  t.teardown(() => store.close());
  const exported = await store.export('c-1');
  t.match(exported.verification, { ok: true, signaturesChecked: true, anchored: true });
  t.equal(exported.verification.anchoredSeq, records.length - 1);
  t.equal(exported.signedHead?.hash, records.at(-2)?.hash, 'the signed head is consultation.ended');

  const cli = runCli('--keys', keysFile(t, signer), dir, 'c-1');
  t.equal(cli.status, 0);
  t.match(cli.stdout, new RegExp(`^OK c-1 records=${records.length} ended=true anchored=true `, 'm'));
  // Without --keys the CLI uses no key it did not find, and says so.
  t.match(runCli(dir, 'c-1').stdout, /signatures not checked/);
  t.end();
});

void t.test('a chain re-forged from the genesis is caught by its signatures', async (t) => {
  const dir = tmpDir(t);
  const signer = JournalSigner.generate();
  await signedConsultation(dir, 'victim', signer);
  const original = readRecords(dir, 'victim');
  const fake: { type: JournalEventType; data: JournalEventData; ts: string } = {
    type: 'consent.given',
    ts: (original[3] as JournalRecord).ts,
    data: {
      participantId: 'p-pat',
      consent: { textId: 'consent-tc', version: '3', hash: 'b'.repeat(64), purpose: 'teleconsultation' },
    },
  };
  const keys = keysFile(t, signer);

  // 1. The forger keeps the checkpoints (re-pointing them at the new hashes): signatures fail.
  const kept = reforge(
    'victim',
    [...original.slice(0, 3), fake, ...original.slice(3)].map((r) => ({
      type: r.type,
      data: r.data,
      ts: r.ts,
    })),
  );
  let prev = genesisHash('victim');
  const repointed = kept.map((record, index) => {
    let data = record.data;
    if (record.type === 'journal.checkpoint') {
      data = {
        ...(record.data as JournalEventData<'journal.checkpoint'>),
        signedSeq: index,
        signedHash: prev,
      };
    }
    const rebuilt = buildRecord(index + 1, record.ts, record.type, data, prev);
    prev = rebuilt.hash;
    return rebuilt;
  });
  writeRecords(dir, 'victim', repointed);
  let cli = runCli('--keys', keys, dir, 'victim');
  t.equal(cli.status, 1, 'kept checkpoints: fails');
  t.match(cli.stdout, /^BROKEN victim line=\d+ .*checkpoint signature does not verify/m);
  const store = new JournalStore({ dir, retentionDays: 30, signer });
  t.teardown(() => store.close());
  t.match((await store.export('victim')).verification, { ok: false, reason: /signature does not verify/ });

  // 2. The forger drops every checkpoint: the hash chain holds, but nothing anchors it.
  const stripped = reforge(
    'victim',
    [...original.slice(0, 3), fake, ...original.slice(3)]
      .filter((r) => r.type !== 'journal.checkpoint')
      .map((r) => ({ type: r.type, data: r.data, ts: r.ts })),
  );
  writeRecords(dir, 'victim', stripped);
  cli = runCli('--keys', keys, dir, 'victim');
  t.equal(cli.status, 1, 'stripped checkpoints: fails');
  t.match(cli.stdout, /^UNANCHORED victim .*anchored=false anchoredSeq=0/m);
  t.match((await store.export('victim')).verification, { ok: true, anchored: false, anchoredSeq: 0 });

  // 3. The forger signs with a key of his own: not a key the verifier trusts.
  const own = JournalSigner.generate();
  const forgerDir = tmpDir(t);
  await signedConsultation(forgerDir, 'victim', own);
  fs.copyFileSync(journalFile(forgerDir, 'victim'), journalFile(dir, 'victim'));
  cli = runCli('--keys', keys, dir, 'victim');
  t.equal(cli.status, 1, "forger's key: fails");
  t.match(cli.stdout, new RegExp(`checkpoint signed by unknown key ${own.keyId}`));

  // 4. The server refuses to append to a re-forged journal and moves it aside.
  writeRecords(dir, 'victim', repointed);
  await t.rejects(store.append('victim', 'incident', { kind: 'reconnected' }), { code: 'JOURNAL_CORRUPT' });
  t.notOk(fs.existsSync(journalFile(dir, 'victim')));
});

void t.test('webhooks carry the latest signed head, verifiable with the public key', async (t) => {
  const dir = tmpDir(t);
  const signer = JournalSigner.generate();
  const store = new JournalStore({ dir, retentionDays: 30, signer, checkpointEvery: 3 });
  t.teardown(() => store.close());
  const receiver = await WebhookReceiver.start(SECRET);
  t.teardown(() => receiver.close());
  const outbox = await WebhookOutbox.open({
    dir,
    url: receiver.url,
    secret: SECRET,
    journalHead: (id) => store.signedHead(id),
  });
  t.teardown(() => outbox.close());
  outbox.start();
  const events = consultationEvents('c-w').slice(0, 4);
  let third: JournalRecord | undefined;
  for (const [index, event] of events.entries()) {
    const record = await store.append('c-w', event.type, event.data);
    if (index === 2) third = record;
  }
  await outbox.enqueue({
    type: 'participant.waiting',
    data: { consultationId: 'c-w', participantId: 'p-pat', role: 'patient', since: new Date().toISOString() },
  });
  await receiver.waitFor(() => receiver.requests.length === 1);
  const body = JSON.parse(receiver.requests[0]?.body ?? '{}') as WebhookBody<'participant.waiting'> & {
    data: { journalHead?: { seq: number; hash: string; keyId: string; signature: string } };
  };
  const head = body.data.journalHead;
  t.ok(head, 'the webhook carries journalHead before the consultation ends');
  t.equal(head?.seq, third?.seq);
  t.equal(head?.hash, third?.hash);
  t.equal(head?.keyId, signer.keyId);
  const publicKey = keySetDocument(new JournalKeyring([signer.publicKey])).keys[0]?.publicKey ?? '';
  const ok = verify(
    null,
    checkpointPayload('c-w', head?.seq ?? 0, head?.hash ?? ''),
    { key: { kty: 'OKP', crv: 'Ed25519', x: publicKey }, format: 'jwk' },
    Buffer.from(head?.signature ?? '', 'base64url'),
  );
  t.ok(ok, 'the platform verifies it with the published key');
});

void t.test('the signing key: generated once and kept, logged by id only; explicit sources', async (t) => {
  const dir = tmpDir(t);
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const logger = createLogger('info', sink);
  const defaultFile = path.join(dir, 'keys', 'journal-signing.pem');
  const first = await loadSigningKey({ pem: null, file: null, defaultFile, logger });
  t.equal(fs.statSync(defaultFile).mode & 0o777, 0o600, 'the key file is private');
  const second = await loadSigningKey({ pem: null, file: null, defaultFile, logger });
  t.equal(second.keyId, first.keyId, 'the generated key is kept across restarts');
  const logged = lines.join('');
  t.match(logged, new RegExp(first.keyId), 'the log names the key id');
  t.match(logged, /generated/);
  t.notMatch(logged, /PRIVATE KEY|MC4CAQAwBQYDK2Vw/, 'never the key');
  t.notMatch(logged, new RegExp(first.publicKey.publicKey.replace(/[-]/g, '\\-')), 'nor the raw key');

  const fromPem = await loadSigningKey({
    pem: first.exportPem(),
    file: null,
    defaultFile: '/nonexistent',
    logger,
  });
  t.equal(fromPem.keyId, first.keyId);
  await t.rejects(
    loadSigningKey({ pem: null, file: path.join(dir, 'missing.pem'), defaultFile, logger }),
    { code: 'ENOENT' },
    'a configured key file must exist',
  );
  t.throws(() => new JournalKeyring([{ keyId: 'x', alg: 'Ed25519', publicKey: 'short' }]));
});

void t.test('the room code cannot write a checkpoint', async (t) => {
  const dir = tmpDir(t);
  const store = new JournalStore({ dir, retentionDays: 30, signer: JournalSigner.generate() });
  t.teardown(() => store.close());
  await store.append('c', 'consultation.created', { consultationId: 'c' });
  await t.rejects(
    store.append('c', 'journal.checkpoint', {
      signedSeq: 1,
      signedHash: 'a'.repeat(64),
      keyId: '0'.repeat(16),
      signature: 'A'.repeat(86),
    }),
    { code: 'JOURNAL_INVALID_EVENT' },
  );
});

void t.test(
  'an acknowledged end is already anchored on disk: the end and its checkpoint are one write',
  async (t) => {
    // A crash right after the end was acknowledged must not leave an ended journal that no
    // signature covers: when the append resolves, the checkpoint over the end is on disk too.
    const dir = tmpDir(t);
    const store = new JournalStore({ dir, retentionDays: 30, signer: JournalSigner.generate() });
    t.teardown(() => store.close());
    const id = 'c-end-anchored';
    const events = consultationEvents(id);
    for (const event of events.slice(0, -1)) await store.append(id, event.type, event.data);
    const end = events[events.length - 1]!;
    t.equal(end.type, 'consultation.ended');
    const onDiskWhenAcknowledged = await store
      .append(id, end.type, end.data)
      .then(() => readRecords(dir, id).map((r) => r.type));
    t.same(onDiskWhenAcknowledged.slice(-2), ['consultation.ended', 'journal.checkpoint']);
  },
);

import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestServer } from '../support/server.js';
import type { JournalExport } from '../../src/journal/journalStore.js';

/**
 * The journal through the real server (issue #16): an ended consultation's id cannot be used
 * again, a journal with NUL bytes is refused and kept (never truncated into a new chain), and the
 * public keys of the checkpoints are served at the well-known path.
 */

void t.test('through the server: reused ids refused, corrupt journals kept, keys published', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'journal-server-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const first = await startTestServer({ journal: { dir } });
  let stopped = false;
  t.teardown(() => (stopped ? undefined : first.stop()));

  t.equal((await first.rest('POST', '/v1/rooms', { roomId: 'srv-1' })).status, 201);
  t.equal((await first.rest('DELETE', '/v1/rooms/srv-1')).status, 204);
  const reused = await first.rest<{ code: string }>('POST', '/v1/rooms', { roomId: 'srv-1' });
  t.equal(reused.status, 409, 'an ended consultation id cannot be reused');
  t.equal(reused.body.code, 'ROOM_ID_TAKEN');

  const keys = await fetch(`${first.url}/.well-known/teleconsult-journal-keys.json`);
  t.equal(keys.status, 200, 'served without authentication');
  const keySet = (await keys.json()) as { keys: Array<{ keyId: string; alg: string; publicKey: string }> };
  t.equal(keySet.keys.length, 1);
  t.equal(keySet.keys[0]?.alg, 'Ed25519');
  const exported = await first.rest<JournalExport>('GET', '/v1/rooms/srv-1/journal');
  t.match(exported.body.verification, { ok: true, signaturesChecked: true, anchored: true });
  t.equal(exported.body.signedHead?.keyId, keySet.keys[0]?.keyId, 'signed with the published key');
  await first.stop();
  stopped = true;

  // NUL bytes in every line of the ended consultation's journal.
  const file = path.join(dir, 'journals', 'srv-1.jsonl');
  const original = fs.readFileSync(file, 'utf8').split('\n').slice(0, -1);
  const tampered = Buffer.from(original.map((l) => `${l.slice(0, 10)}\u0000${l.slice(11)}\n`).join(''));
  fs.writeFileSync(file, tampered);

  const second = await startTestServer({ journal: { dir } });
  t.teardown(() => second.stop());
  const again = await second.rest<{ code: string }>('POST', '/v1/rooms', { roomId: 'srv-1' });
  t.equal(again.status, 409, 'no new chain over a corrupt journal');
  t.equal(again.body.code, 'ROOM_ID_TAKEN');
  t.notOk(fs.existsSync(file), 'moved aside');
  const aside = path.join(dir, 'corrupt', 'srv-1');
  const moved = fs.readdirSync(aside).find((n) => n.endsWith('.jsonl')) as string;
  t.same(fs.readFileSync(path.join(aside, moved)), tampered, 'byte for byte, never truncated');
  const report = await second.rest<JournalExport>('GET', '/v1/rooms/srv-1/journal');
  t.equal(report.status, 200);
  t.match(report.body, { quarantined: true, verification: { ok: false, line: 1, reason: /NUL/ } });
  const keysAfter = (await (
    await fetch(`${second.url}/.well-known/teleconsult-journal-keys.json`)
  ).json()) as {
    keys: Array<{ keyId: string }>;
  };
  t.equal(keysAfter.keys[0]?.keyId, keySet.keys[0]?.keyId, 'the generated key was kept across the restart');
});

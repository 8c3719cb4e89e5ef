import t from 'tap';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { JournalStore } from '../../src/journal/journalStore.js';
import { verifyJournalDirectory } from '../../src/journal/verifyFiles.js';
import { WebhookOutbox } from '../../src/webhooks/outbox.js';
import { WebhookReceiver } from '../webhooks/receiver.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, 'fixtures', 'burst.js');
const SECRET = 'crash-test-secret-0123456789';
const JOURNALS = 4;
const TRIALS = 5;

interface Acks {
  journals: Map<string, Set<number>>;
  webhooks: Set<string>;
  total: number;
  done: boolean;
}

/** Runs the burst child until `killAfter` acknowledgements were printed, then SIGKILLs it. */
function runAndKill(dir: string, killAfter: number): Promise<Acks> {
  const acks: Acks = { journals: new Map(), webhooks: new Set(), total: 0, done: false };
  const child = spawn(process.execPath, [fixture, dir, String(JOURNALS), SECRET], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: child.stdout });
  let ready = false;
  lines.on('line', (line) => {
    const [kind, a, b] = line.split(' ');
    if (kind === 'READY') ready = true;
    else if (kind === 'DONE') acks.done = true;
    else if (kind === 'J' && a && b) {
      const set = acks.journals.get(a) ?? new Set<number>();
      set.add(Number(b));
      acks.journals.set(a, set);
      acks.total++;
    } else if (kind === 'W' && a) {
      acks.webhooks.add(a);
      acks.total++;
    }
    if (ready && acks.total >= killAfter && child.exitCode === null && !child.killed) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    // 'close' waits for stdout to end: every line printed before the kill has been read.
    child.on('close', () => resolve(acks));
  });
}

void t.test(
  'after SIGKILL mid-burst every acknowledged event and webhook survives, exactly once',
  async (t) => {
    for (let trial = 1; trial <= TRIALS; trial++) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'journal-crash-'));
      t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
      const killAfter = 200 + Math.floor(Math.random() * 3000);
      const acks = await runAndKill(dir, killAfter);
      t.notOk(acks.done, `trial ${trial}: the child was killed mid-burst (after ${acks.total} acks)`);
      t.equal(acks.journals.size, JOURNALS);

      const reports = await verifyJournalDirectory(dir);
      t.ok(
        reports.every((r) => r.ok),
        `trial ${trial}: every chain verifies (${reports.map((r) => `${r.records}r/${r.tornTailBytes}b torn`).join(', ')})`,
      );

      const store = new JournalStore({ dir, retentionDays: 30 });
      let missing = 0;
      let acked = 0;
      for (const [id, seqs] of acks.journals) {
        const exported = await store.export(id);
        const present = new Set(exported.records.map((r) => r.seq));
        for (const seq of seqs) {
          acked++;
          if (!present.has(seq)) missing++;
        }
        t.ok(exported.verification.ok);
        // The chain goes on where the disk says it stopped.
        const next = await store.append(id, 'incident', { kind: 'worker-died' });
        t.equal(next.seq, exported.records.length + 1);
      }
      t.equal(missing, 0, `trial ${trial}: all ${acked} acknowledged journal records are present`);
      await store.close();
      t.equal((await verifyJournalDirectory(dir)).filter((r) => !r.ok).length, 0);

      const receiver = await WebhookReceiver.start(SECRET);
      const outbox = await WebhookOutbox.open({ dir, url: receiver.url, secret: SECRET, baseDelayMs: 50 });
      const pendingAtStart = outbox.pendingCount;
      t.ok(
        pendingAtStart >= acks.webhooks.size,
        `trial ${trial}: ${pendingAtStart} webhooks pending after restart`,
      );
      outbox.start();
      await receiver.waitFor(() => outbox.pendingCount === 0);
      await outbox.close();
      const counts = receiver.deliveredCounts();
      const lost = [...acks.webhooks].filter((id) => !counts.has(id));
      t.same(lost, [], `trial ${trial}: each of ${acks.webhooks.size} acknowledged webhooks was delivered`);
      t.ok(
        [...counts.values()].every((n) => n === 1),
        `trial ${trial}: no webhook was delivered twice`,
      );
      t.ok(
        receiver.requests.every((r) => r.signatureValid),
        'every request carries a valid signature',
      );

      // A restarted outbox has nothing left to send.
      const before = receiver.requests.length;
      const again = await WebhookOutbox.open({ dir, url: receiver.url, secret: SECRET, baseDelayMs: 50 });
      t.equal(again.pendingCount, 0, 'delivered webhooks are not pending after another restart');
      again.start();
      await new Promise((resolve) => setTimeout(resolve, 300));
      await again.close();
      t.equal(receiver.requests.length, before, 'nothing was re-sent');
      await receiver.close();
    }
  },
);

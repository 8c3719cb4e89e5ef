import t from 'tap';
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { verifyChain } from '../../src/journal/chain.js';
import { JournalKeyring, JournalSigner } from '../../src/journal/signing.js';
import { postgresUnavailable, startPostgres, type TestPostgres } from '../journal/postgres.js';
import { WebhookReceiver } from '../webhooks/receiver.js';
import { eventually, startNode, startRedis, type NodeProcess, type RedisServer } from './support.js';

/**
 * The consultation journal of a cluster, end to end: real server nodes (child processes) sharing
 * Redis and a real PostgreSQL. In each trial a fresh node hosts a room and answers 1,000 concurrent
 * invitation requests (each acknowledged only once its `participant.invited` record is committed);
 * it is killed with SIGKILL mid-burst; the surviving node takes the room over, ends it, and the
 * one chain in the database must hold every acknowledged record and verify, anchored. Every
 * webhook, whichever node sends it, reaches the platform once per Webhook-Id.
 * JOURNAL_E2E_TRIALS sets the number of trials (20).
 */

const TRIALS = Number(process.env.JOURNAL_E2E_TRIALS ?? 20);
const APPENDS = 1000;
const WEBHOOK_SECRET = 'cluster-webhook-secret-0123456789';
// Each trial starts a node (with its mediasoup worker) and waits for a failover: well over the
// default file timeout at 20 trials on a busy 2-core machine.
t.setTimeout(120_000 + TRIALS * 45_000);

interface ExportedJournal {
  records: Array<{ seq: number; type: string; hash: string; data: Record<string, unknown> }>;
  ended: boolean;
  headHash: string;
  verification: { ok: boolean; anchored: boolean; signaturesChecked: boolean };
}

function redisUnavailable(): string | null {
  const probe = spawnSync('redis-server', ['--version']);
  return probe.error ? 'redis-server is not installed (scripts/setup.sh installs redis-server)' : null;
}

const unavailable = postgresUnavailable() ?? redisUnavailable();
if (unavailable) {
  t.comment(`skipped: ${unavailable}`);
  t.pass('cluster journal tests skipped');
} else {
  let database: TestPostgres;
  let redis: RedisServer;
  let receiver: WebhookReceiver;
  let survivor: NodeProcess;
  let db: pg.Pool;
  const nodes: NodeProcess[] = [];
  // One signing key for the whole cluster: a chain moved to another node is verified there.
  const signer = JournalSigner.generate();
  const keyring = new JournalKeyring([signer.publicKey]);
  const nodeEnv = (): Record<string, string> => ({
    SFU_JOURNAL__POSTGRES_URL: database.url,
    SFU_JOURNAL__SIGNING_KEY: signer.exportPem(),
    SFU_WEBHOOKS__URL: receiver.url,
    SFU_WEBHOOKS__SECRET: WEBHOOK_SECRET,
  });

  t.before(async () => {
    database = await startPostgres();
    redis = await startRedis();
    receiver = await WebhookReceiver.start(WEBHOOK_SECRET);
    db = new pg.Pool({ connectionString: database.url, max: 2 });
    db.on('error', () => undefined);
    survivor = await startNode('survivor', redis.url, nodeEnv());
    nodes.push(survivor);
  });
  t.teardown(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await db?.end().catch(() => undefined);
    await receiver?.close();
    await redis?.stop();
    database?.stop();
  });

  /** Sends APPENDS invitation requests at once; SIGKILLs the node after `killAfter` answers 201. */
  async function burstAndKill(node: NodeProcess, roomId: string, killAfter: number): Promise<Set<string>> {
    const acknowledged = new Set<string>();
    await Promise.allSettled(
      Array.from({ length: APPENDS }, async (_, n) => {
        const participantId = `p${n}`;
        const answer = await node.rest('POST', `/v1/rooms/${roomId}/invitations`, {
          role: 'patient',
          participantId,
        });
        if (answer.status !== 201) return;
        acknowledged.add(participantId);
        if (acknowledged.size >= killAfter && node.child.exitCode === null) node.kill('SIGKILL');
      }),
    );
    return acknowledged;
  }

  void t.test(
    `kill -9 of a node during ${APPENDS} concurrent appends: nothing acknowledged is lost, the moved room keeps one chain (${TRIALS} trials)`,
    async (t) => {
      const started = Date.now();
      let totalAcknowledged = 0;
      let lost = 0;
      for (let trial = 0; trial < TRIALS; trial++) {
        const node = await startNode(`host-${trial}`, redis.url, nodeEnv());
        nodes.push(node);
        const roomId = `failover-${trial}`;
        // The new node is the least loaded (the survivor ended its rooms), so it hosts the room.
        const created = await node.rest<{ id: string; node?: string }>('POST', '/v1/rooms', {
          roomId,
          options: { waitingRoom: false },
        });
        t.equal(created.status, 201, `trial ${trial}: room created`);
        t.equal(created.body.node, undefined, `trial ${trial}: hosted by the node about to die`);

        const killAfter = 50 + ((trial * 389) % 900);
        const acknowledged = await burstAndKill(node, roomId, killAfter);
        t.equal(await node.exited, 'SIGKILL', `trial ${trial}: killed after ${acknowledged.size} answers`);
        totalAcknowledged += acknowledged.size;

        // The survivor moves the room once the dead node's heartbeat expires, then ends it.
        await eventually(
          `the survivor to host ${roomId}`,
          async () => (await survivor.rest('GET', `/v1/rooms/${roomId}`)).status === 200,
          20_000,
          200,
        );
        t.equal(
          (await survivor.rest('DELETE', `/v1/rooms/${roomId}`)).status,
          204,
          `trial ${trial}: ended there`,
        );
        const exported = await survivor.rest<ExportedJournal>('GET', `/v1/rooms/${roomId}/journal`);
        t.equal(exported.status, 200, `trial ${trial}: journal exported by the survivor`);
        const journal = exported.body;
        if (!journal.verification.ok || !journal.verification.anchored || !journal.ended)
          t.fail(`trial ${trial}: the exported journal does not verify anchored and ended`);
        const count = (type: string) => journal.records.filter((r) => r.type === type).length;
        if (count('consultation.created') !== 1)
          t.fail(`trial ${trial}: ${count('consultation.created')} starts`);
        const invited = new Set(
          journal.records.filter((r) => r.type === 'participant.invited').map((r) => r.data.participantId),
        );
        for (const participantId of acknowledged) if (!invited.has(participantId)) lost++;
        const moved = journal.records.filter(
          (r) => r.type === 'incident' && r.data.kind === 'worker-died' && r.data.detail === 'node-lost',
        );
        t.equal(moved.length, 1, `trial ${trial}: the move is recorded in the same chain`);

        // Independently of the server: the rows in the database are that one chain, and verify.
        const rows = await db.query<{ line: string }>(
          'SELECT line FROM teleconsult_journal_records WHERE consultation_id = $1 ORDER BY seq',
          [roomId],
        );
        const check = verifyChain(
          roomId,
          rows.rows.map((r) => r.line),
          keyring,
        );
        if (!check.ok || !check.anchored || check.headHash !== journal.headHash)
          t.fail(`trial ${trial}: the stored chain does not verify: ${check.reason ?? 'not anchored'}`);
        t.equal(
          check.records.length,
          journal.records.length,
          `trial ${trial}: one chain of ${check.records.length}`,
        );

        await receiver.waitFor(() =>
          receiver.requests.some((r) => r.body.includes('"consultation.ended"') && r.body.includes(roomId)),
        );
        await node.stop();
      }
      t.ok(totalAcknowledged > 0, `${totalAcknowledged} acknowledged appends across ${TRIALS} kills`);
      t.equal(lost, 0, '0 acknowledged records lost');
      t.comment(`${TRIALS} trials in ${Math.round((Date.now() - started) / 1000)} s`);
    },
  );

  void t.test('every webhook reaches the platform once per id, whichever node sent it', async (t) => {
    // Every node started later re-enqueued the ended webhooks of the earlier trials (reconcile at
    // start): the shared outbox keeps one per key.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const counts = receiver.deliveredCounts();
    const ended = receiver.requests.filter((r) => r.body.includes('"consultation.ended"'));
    t.equal(new Set(ended.map((r) => r.id)).size, TRIALS, 'one consultation.ended per room');
    t.ok(
      receiver.requests.some((r) => r.body.includes('"consultation.incident"')),
      'the move was announced',
    );
    t.same(
      [...counts.entries()].filter(([, n]) => n !== 1),
      [],
      'no Webhook-Id delivered twice',
    );
    t.ok(
      receiver.requests.every((r) => r.signatureValid),
      'every delivery signed',
    );
  });
}

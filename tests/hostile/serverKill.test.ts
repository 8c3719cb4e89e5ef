import t from 'tap';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { signJoinToken } from '../../src/auth/joinTokens.js';
import { RequestError, SignallingClient } from '../support/signallingClient.js';
import { WebhookReceiver } from '../webhooks/receiver.js';
import { Rng, fuzzSeed } from '../fuzz/generator.js';
import { eventually, sleep } from './stats.js';

/**
 * Chaos: kill -9 of the whole server process during a burst of journal writes (rooms created,
 * joins, consents, admissions, rooms ended, through the real REST API and protocol) and webhook
 * enqueues, while the platform's webhook receiver is failing. Every operation the server
 * acknowledged is recorded by the test. After a restart on the same journal.dir: every acknowledged
 * event is in its journal, every chain verifies (also with the verification CLI), and once the
 * receiver accepts, every acknowledged consultation.ended webhook is delivered, once per Webhook-Id.
 */
const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const MAIN = path.join(projectRoot, 'dist', 'src', 'main.js');
const VERIFY_CLI = path.join(projectRoot, 'dist', 'src', 'journal', 'verifyCli.js');
const TRIALS = 5;
const API_KEY = 'chaos-api-key-0123456789';
const TOKEN_SECRET = 'chaos-token-secret-0123456789';
const WEBHOOK_SECRET = 'chaos-webhook-secret-0123456789';
const ROOM_LOOPS = 12;
const seed = fuzzSeed();

interface Running {
  child: ChildProcess;
  url: string;
  wsUrl: string;
  workerPids: number[];
}

/** Starts `node dist/src/main.js` on loopback and waits for its "server listening" log line. */
async function startServer(dir: string, webhookUrl: string): Promise<Running> {
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      SFU_SERVER__LISTEN_HOST: '127.0.0.1',
      SFU_SERVER__PORT: '0',
      SFU_SERVER__DEMO_PAGE: 'false',
      SFU_SERVER__SHUTDOWN_DEADLINE_S: '0',
      SFU_MEDIA__WORKERS: '1',
      SFU_MEDIA__LISTEN_IP: '127.0.0.1',
      SFU_MEDIA__WEB_RTC_SERVER_PORT: '0',
      SFU_JOURNAL__DIR: dir,
      SFU_AUTH__API_KEYS: JSON.stringify([API_KEY]),
      SFU_AUTH__TOKEN_SECRET: TOKEN_SECRET,
      SFU_WEBHOOKS__URL: webhookUrl,
      SFU_WEBHOOKS__SECRET: WEBHOOK_SECRET,
      SFU_LOG__LEVEL: 'info',
      SFU_QUALITY__ENABLED: 'false',
      SFU_LIMITS__MESSAGES_PER_SECOND: '10000',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: child.stdout });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start within 20 s')), 20_000);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    lines.on('line', (line) => {
      const match = /"msg":"server listening"/.test(line)
        ? /:(\d+)"/.exec(/"url":"[^"]+"/.exec(line)?.[0] ?? '')
        : null;
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
  });
  lines.on('line', () => undefined); // keep draining stdout
  const workerPids = execFileSync('ps', ['-o', 'pid=', '--ppid', String(child.pid)], { encoding: 'utf8' })
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => n > 0);
  return { child, url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/ws`, workerPids };
}

async function rest(url: string, method: string, route: string, body?: unknown) {
  const res = await fetch(url + route, {
    method,
    headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Record<string, unknown> };
}

interface Ack {
  roomId: string;
  type: string;
  participantId?: string;
}

function token(room: string, participantId: string, role: 'practitioner' | 'patient'): Promise<string> {
  return signJoinToken(new TextEncoder().encode(TOKEN_SECRET), 'teleconsult-sfu', {
    room,
    participantId,
    role,
    ttlS: 300,
  });
}

/** One consultation after another through the real API until the server dies; records every ack. */
async function consultationLoop(server: Running, acks: Ack[], stop: { dead: boolean }): Promise<void> {
  const clients: SignallingClient[] = [];
  try {
    while (!stop.dead) {
      const created = await rest(server.url, 'POST', '/v1/rooms', { options: { waitingRoom: true } });
      if (created.status !== 201) return;
      const roomId = created.body.id as string;
      acks.push({ roomId, type: 'consultation.created' });
      const doc = await SignallingClient.open(server.wsUrl);
      clients.push(doc);
      await doc.request('join', { token: await token(roomId, 'doc', 'practitioner') });
      acks.push({ roomId, type: 'participant.admitted', participantId: 'doc' });
      const pat = await SignallingClient.open(server.wsUrl);
      clients.push(pat);
      await pat.request('join', { token: await token(roomId, 'pat', 'patient') });
      acks.push({ roomId, type: 'participant.waiting', participantId: 'pat' });
      await pat.consent();
      acks.push({ roomId, type: 'consent.given', participantId: 'pat' });
      await doc.request('admit', { participantId: 'pat' });
      acks.push({ roomId, type: 'participant.admitted', participantId: 'pat' });
      const ended = await rest(server.url, 'DELETE', `/v1/rooms/${roomId}`);
      if (ended.status === 204) acks.push({ roomId, type: 'consultation.ended' });
      doc.close();
      pat.close();
    }
  } catch (err) {
    // The server was killed under us: whatever was not acknowledged may be lost.
    if (!stop.dead && !(err instanceof RequestError)) throw err;
  } finally {
    for (const c of clients) c.close();
  }
}

t.test('kill -9 during a burst loses no acknowledged event and no pending webhook', async (t) => {
  t.comment(`server kill seed ${seed} (replay: FUZZ_SEED=${seed})`);
  const rng = new Rng(seed);
  let totalAcks = 0;
  let totalLost = 0;
  let totalWebhooks = 0;
  for (let trial = 1; trial <= TRIALS; trial++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfu-chaos-'));
    let accepting = false;
    const receiver = await WebhookReceiver.start(WEBHOOK_SECRET, () => (accepting ? 200 : 503));
    const acks: Ack[] = [];
    const stop = { dead: false };
    let first: Running | undefined;
    let second: Running | undefined;
    try {
      first = await startServer(dir, receiver.url);
      const killAfter = 40 + rng.int(120);
      const loops = Array.from({ length: ROOM_LOOPS }, () => consultationLoop(first!, acks, stop));
      const killed = eventually(() => acks.length >= killAfter, 30_000, 1).then(() => {
        stop.dead = true;
        first!.child.kill('SIGKILL');
      });
      await killed;
      await Promise.all(loops);
      await new Promise((resolve) =>
        first!.child.exitCode !== null || first!.child.signalCode
          ? resolve(0)
          : first!.child.once('exit', resolve),
      );
      // The workers notice their parent is gone; never leave one behind.
      const orphansGone = await eventually(
        () => first!.workerPids.every((pid) => !fs.existsSync(`/proc/${pid}`)),
        5000,
      );
      if (!orphansGone)
        for (const pid of first.workerPids) if (fs.existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGKILL');
      t.ok(orphansGone, `trial ${trial}: the killed server's workers exited by themselves`);

      const acked = [...acks];
      accepting = true;
      second = await startServer(dir, receiver.url);
      const byRoom = new Map<
        string,
        { records: { type: string; data: { participantId?: string } }[]; verification: { ok: boolean } }
      >();
      let lost = 0;
      for (const ack of acked) {
        if (!byRoom.has(ack.roomId)) {
          const journal = await rest(second.url, 'GET', `/v1/rooms/${ack.roomId}/journal`);
          byRoom.set(ack.roomId, journal.body as never);
        }
        const journal = byRoom.get(ack.roomId)!;
        const found = journal.records?.some(
          (r) =>
            r.type === ack.type &&
            (ack.participantId === undefined || r.data.participantId === ack.participantId),
        );
        if (!found) {
          lost++;
          t.fail(
            `trial ${trial}: acknowledged ${ack.type} ${ack.participantId ?? ''} of ${ack.roomId} is missing`,
          );
        }
      }
      t.ok(
        [...byRoom.values()].every((j) => j.verification?.ok),
        `trial ${trial}: every chain verifies (${byRoom.size} journals)`,
      );
      const cli = spawn(process.execPath, [VERIFY_CLI, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
      let cliOut = '';
      cli.stdout.on('data', (d: Buffer) => (cliOut += d.toString()));
      const cliCode = await new Promise<number | null>((resolve) => cli.on('exit', resolve));
      t.equal(
        cliCode,
        0,
        `trial ${trial}: the verification CLI agrees (${cliOut.trim().split('\n').pop() ?? ''})`,
      );

      const endedRooms = acked.filter((a) => a.type === 'consultation.ended').map((a) => a.roomId);
      const endedIdOf = (roomId: string) =>
        receiver.requests.find((r) => {
          const body = JSON.parse(r.body) as { type: string; data: { consultationId: string } };
          return body.type === 'consultation.ended' && body.data.consultationId === roomId;
        })?.id;
      const delivered = () => {
        const counts = receiver.deliveredCounts();
        return endedRooms.every((roomId) => {
          const id = endedIdOf(roomId);
          return id !== undefined && (counts.get(id) ?? 0) >= 1;
        });
      };
      t.ok(
        await eventually(delivered, 30_000, 100),
        `trial ${trial}: every acknowledged end is delivered once the receiver accepts`,
      );
      const ids = new Set(endedRooms.map(endedIdOf));
      const duplicates = [...receiver.deliveredCounts()].filter(([id, n]) => ids.has(id) && n > 1);
      t.same(duplicates, [], `trial ${trial}: each delivered once per Webhook-Id`);
      t.ok(
        receiver.requests.every((r) => r.signatureValid),
        `trial ${trial}: every delivery is signed`,
      );
      const missingWebhooks = endedRooms.filter(
        (roomId) => (receiver.deliveredCounts().get(endedIdOf(roomId) ?? '') ?? 0) === 0,
      ).length;
      totalAcks += acked.length;
      totalLost += lost + missingWebhooks;
      totalWebhooks += endedRooms.length;
      t.comment(
        `trial ${trial}: killed after ${acked.length} acknowledged events over ${byRoom.size} consultations, ${endedRooms.length} ended webhooks pending; lost ${lost} events, ${missingWebhooks} webhooks`,
      );
    } finally {
      stop.dead = true;
      for (const running of [first, second]) {
        if (running && running.child.exitCode === null && !running.child.signalCode) {
          running.child.kill('SIGTERM');
          await new Promise((resolve) => running.child.once('exit', resolve));
        }
      }
      await receiver.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  await sleep(0);
  t.equal(totalLost, 0, 'nothing acknowledged was lost');
  t.comment(
    `server kill -9: ${TRIALS} trials, ${totalAcks} acknowledged events, ${totalWebhooks} pending webhooks, ${totalLost} lost`,
  );
});

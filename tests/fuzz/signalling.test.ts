import t from 'tap';
import { ERROR_CODES } from '../../src/errors/catalogue.js';
import { Requests } from '../../src/protocol/messages.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { SignallingClient } from '../support/signallingClient.js';
import { Rng, fuzzBudgetMs, fuzzSeed, mutateFrame, mutateJson, type Json } from './generator.js';
import { inputBytes, loadCorpus, saveCrash } from './corpus.js';
import { DESTRUCTIVE, FuzzSession, templates, type Sender } from './signallingSession.js';

/**
 * Fuzzes every signalling method against a live server (real mediasoup worker) for a fixed time:
 * structure-aware mutations of valid requests sent from a practitioner, an admitted patient, a
 * waiting assistant and an unjoined connection. Every frame must get exactly one answer, with a
 * catalogued error code and never INTERNAL; the worker must never die; Object.prototype must stay
 * clean; afterwards a valid join still works. Failing inputs are saved under
 * tests/fuzz/corpus/signalling/ and replayed first on every run.
 */
const TARGET = 'signalling';
const seed = fuzzSeed();
const budgetMs = fuzzBudgetMs(8000);
const ANSWER_TIMEOUT_MS = 10_000;
/** Close codes the server may legitimately use on hostile input (ws: bad UTF-8, over the hard cap). */
const ACCEPTED_CLOSE_CODES = new Set([1000, 1001, 1005, 1007, 1009]);
const catalogued = new Set<string>(ERROR_CODES);
const METHODS = Object.keys(Requests);
const SENDERS: Sender[] = ['practitioner', 'patient', 'waiting', 'anon'];

let srv: TestServer;
const workerDeaths: number[] = [];
let caseNumber = 0;

t.before(async () => {
  srv = await startTestServer({
    limits: {
      messagesPerSecond: 100_000,
      authTimeoutMs: 600_000,
      connectionsPerAddress: 100_000,
    },
    quality: { enabled: false },
  });
  srv.server.pool.on('workerDied', () => workerDeaths.push(caseNumber));
});
t.teardown(() => srv.stop());

interface Verdict {
  failure: string | undefined;
  code: string;
  rebuild: boolean;
}

function polluted(): boolean {
  return (
    (Object.prototype as Record<string, unknown>).polluted !== undefined ||
    (Array.prototype as unknown as Record<string, unknown>).polluted !== undefined
  );
}

/** Sends one frame from `sender` and judges the answer against the invariants. */
async function runCase(
  session: FuzzSession,
  sender: Sender,
  frame: string | Buffer,
  binary: boolean,
  method: unknown,
): Promise<Verdict> {
  const socket = session.sockets.get(sender)!;
  const deathsBefore = workerDeaths.length;
  const answer = (await socket.exchange(await session.substitute(frame), binary, ANSWER_TIMEOUT_MS)) as {
    timeout?: boolean;
    closed?: number;
    ok?: unknown;
    error?: { code?: unknown };
  };
  let failure: string | undefined;
  let code = 'ok';
  let rebuild = false;
  if (answer.timeout) {
    failure = 'no answer within 10 s';
  } else if (answer.closed !== undefined) {
    code = `closed:${answer.closed}`;
    rebuild = true;
    if (!ACCEPTED_CLOSE_CODES.has(answer.closed) && !(answer.closed >= 4000 && answer.closed < 5000))
      failure = `connection closed with ${answer.closed}`;
  } else if (answer.ok === true) {
    if (typeof method === 'string' && DESTRUCTIVE.has(method)) rebuild = true;
  } else if (answer.ok === false && typeof answer.error?.code === 'string') {
    code = answer.error.code;
    if (!catalogued.has(code)) failure = `uncatalogued error code ${code}`;
    else if (code === 'INTERNAL') failure = 'INTERNAL error';
    if (sender !== 'anon' && (code === 'AUTH_REQUIRED' || code === 'ROOM_CLOSED')) rebuild = true;
  } else {
    failure = `answer is not a protocol response: ${JSON.stringify(answer).slice(0, 200)}`;
  }
  if (workerDeaths.length > deathsBefore) failure = 'the mediasoup worker died';
  if (polluted()) failure = 'Object.prototype was polluted';
  return { failure, code, rebuild };
}

async function texts(session: FuzzSession) {
  return (await session.sockets.get('patient')!.client.request('getConsentTexts', {})).texts;
}

t.test('saved crash inputs replay without failure', async (t) => {
  const corpus = loadCorpus(TARGET);
  for (const { file, entry } of corpus) {
    const session = await FuzzSession.build(srv);
    const input = entry.input.json as { sender: Sender; binary: boolean; method: unknown };
    const frame = entry.input.base64 !== undefined ? inputBytes(entry.input) : (entry.input.text ?? '');
    // Twice in the same session: some failures need the state the first frame left behind.
    for (const attempt of [1, 2]) {
      const verdict = await runCase(session, input.sender, frame, input.binary, input.method);
      t.equal(verdict.failure, undefined, `${file} (${entry.failure}), attempt ${attempt}`);
      if (verdict.rebuild) break;
    }
    await session.close();
  }
  t.comment(`${corpus.length} corpus entries replayed`);
});

t.test(`every method fuzzed for ${budgetMs} ms never crashes the server (seed ${seed})`, async (t) => {
  t.comment(`signalling fuzz seed ${seed} (replay: FUZZ_SEED=${seed})`);
  const rng = new Rng(seed);
  let session = await FuzzSession.build(srv);
  const list = templates(await texts(session));
  const codes = new Map<string, number>();
  const okMethods = new Set<string>();
  const failures: string[] = [];
  let rebuilds = 0;
  const deadline = performance.now() + budgetMs;
  while (performance.now() < deadline && failures.length < 5) {
    caseNumber++;
    const template = rng.pick(list);
    const sender = rng.chance(0.85) ? template.sender : rng.pick(SENDERS);
    const method = rng.chance(0.03) ? rng.pick(METHODS) : template.method;
    let envelope: Json = { id: caseNumber, method, params: template.params };
    const roll = rng.next();
    if (roll < 0.75) envelope = { id: caseNumber, method, params: mutateJson(rng, template.params).value };
    else if (roll < 0.9) envelope = mutateJson(rng, envelope).value;
    const { frame } = mutateFrame(rng, envelope);
    const binary = Buffer.isBuffer(frame) && rng.chance(0.5);
    const sentMethod = (envelope as { method?: unknown } | null)?.method;
    const verdict = await runCase(session, sender, frame, binary, sentMethod);
    codes.set(verdict.code, (codes.get(verdict.code) ?? 0) + 1);
    if (verdict.code === 'ok' && typeof sentMethod === 'string') okMethods.add(sentMethod);
    if (verdict.failure) {
      const file = saveCrash({
        target: TARGET,
        failure: verdict.failure,
        seed,
        caseNumber,
        input: {
          json: { sender, binary, method: sentMethod ?? null },
          ...(Buffer.isBuffer(frame) ? { base64: frame.toString('base64') } : { text: frame }),
        },
      });
      failures.push(`case ${caseNumber}: ${verdict.failure} (saved ${file})`);
    }
    const anonJoined =
      sender === 'anon' && verdict.code === 'ok' && (sentMethod === 'join' || sentMethod === 'resume');
    if (verdict.rebuild && sender === 'anon' && sentMethod === 'join') {
      await session.renewAnon();
    } else if (verdict.rebuild || anonJoined || caseNumber % 150 === 0) {
      await session.close();
      session = await FuzzSession.build(srv);
      rebuilds++;
    }
  }
  await session.close();
  t.same(failures, [], `no failure (seed ${seed})`);
  t.same(workerDeaths, [], 'the worker never died');
  t.ok(srv.server.pool.allAlive, 'the worker pool is alive');
  t.ok(caseNumber > 200, `${caseNumber} cases ran`);
  t.ok(okMethods.size >= 15, `valid requests reached ${okMethods.size} methods' handlers`);
  t.comment(
    `signalling fuzz: ${caseNumber} cases, ${rebuilds} session rebuilds, answers ${JSON.stringify(
      Object.fromEntries([...codes].sort((a, b) => b[1] - a[1])),
    )}`,
  );

  const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } }))
    .body.id;
  const client = await SignallingClient.open(srv.wsUrl);
  t.teardown(() => client.close());
  const joined = await client.request('join', {
    token: await srv.token({ room: roomId, participantId: 'after-fuzz', role: 'practitioner' }),
  });
  t.equal(joined.self.state, 'admitted', 'the server still answers a valid join');
  const transport = await client.request('createTransport', { direction: 'send' });
  t.ok(transport.id, 'and still creates media on its worker');
});

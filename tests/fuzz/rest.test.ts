import t from 'tap';
import net from 'node:net';
import { ERROR_CODES } from '../../src/errors/catalogue.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { SignallingClient } from '../support/signallingClient.js';
import {
  Rng,
  fuzzBudgetMs,
  fuzzSeed,
  hostileValue,
  mutateFrame,
  mutateJson,
  type Json,
} from './generator.js';
import { loadCorpus, saveCrash } from './corpus.js';

/**
 * Fuzzes every HTTP route (REST API, probes, metrics, OpenAPI, demo, static files) over raw TCP, so
 * methods, paths, headers and bodies can be anything: mutated valid requests, broken framing, path
 * traversal, hostile headers. Every request must get an HTTP answer (or a clean close by Node's
 * parser on broken framing), never a 5xx other than the documented 503s, every JSON error must carry
 * a catalogued code, no file outside public/ is ever served, and the server keeps working.
 */
const TARGET = 'rest';
const seed = fuzzSeed();
const budgetMs = fuzzBudgetMs(6000);
const catalogued = new Set<string>(ERROR_CODES);
/** 503 is documented for ROOM_LIMIT_REACHED, SERVER_DRAINING and MEDIA_UNAVAILABLE; nothing else may be 5xx. */
const DOCUMENTED_5XX = new Set(['ROOM_LIMIT_REACHED', 'SERVER_DRAINING', 'MEDIA_UNAVAILABLE']);

let srv: TestServer;
t.before(async () => {
  srv = await startTestServer({ limits: { maxRooms: 50 }, quality: { enabled: false } });
});
t.teardown(() => srv.stop());

interface RawAnswer {
  status: number | undefined;
  head: string;
  body: string;
  closedWithoutAnswer: boolean;
  timedOut: boolean;
}

/**
 * Sends raw bytes on a fresh connection and reads until the server closes it (Connection: close).
 * The request is not half-closed (Node aborts a request whose client half-closes), except after
 * `halfCloseAfterMs` for framing the server may legitimately wait on (chunked bodies).
 */
function rawRequest(
  port: number,
  bytes: Buffer,
  halfCloseAfterMs: number | undefined = undefined,
  timeoutMs = 10_000,
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, timeoutMs);
    const halfClose =
      halfCloseAfterMs === undefined ? undefined : setTimeout(() => socket.end(), halfCloseAfterMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      clearTimeout(halfClose);
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const head = split >= 0 ? text.slice(0, split) : text;
      const match = /^HTTP\/1\.1 (\d{3})/.exec(head);
      resolve({
        status: match ? Number(match[1]) : undefined,
        head,
        body: split >= 0 ? text.slice(split + 4) : '',
        closedWithoutAnswer: text.length === 0,
        timedOut,
      });
    });
    socket.write(bytes);
  });
}

interface RequestSpec {
  method: string;
  path: string;
  headers: [string, string][];
  body: string | Buffer | undefined;
}

function serialise(spec: RequestSpec): Buffer {
  const body = spec.body === undefined ? Buffer.alloc(0) : Buffer.from(spec.body);
  const lines = [`${spec.method} ${spec.path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  for (const [name, value] of spec.headers) lines.push(`${name}: ${value}`);
  if (
    !spec.headers.some(
      ([n]) => n.toLowerCase() === 'content-length' || n.toLowerCase() === 'transfer-encoding',
    )
  )
    lines.push(`Content-Length: ${body.length}`);
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), body]);
}

/** Percent-encodes every byte of the UTF-8 form (lone surrogates become U+FFFD, never an exception). */
function percentEncode(text: string): string {
  return [...Buffer.from(text, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
}

const FORBIDDEN_CONTENT = ['root:x:0:0', '"name": "teleconsult-sfu"', 'BEGIN PRIVATE KEY', 'tokenSecret'];

function judge(answer: RawAnswer): string | undefined {
  if (answer.timedOut) return 'no answer within 10 s';
  if (answer.closedWithoutAnswer) return undefined; // Node's parser may drop a connection that is not HTTP.
  if (answer.status === undefined) return `not an HTTP answer: ${answer.head.slice(0, 80)}`;
  for (const needle of FORBIDDEN_CONTENT)
    if (answer.body.includes(needle)) return `served forbidden content (${needle})`;
  let code: string | undefined;
  if (/content-type: application\/json/i.test(answer.head) && answer.body.length > 0) {
    try {
      const parsed = JSON.parse(answer.body) as { code?: unknown };
      if (answer.status >= 400) {
        if (typeof parsed.code !== 'string') return `error answer without a code (${answer.status})`;
        code = parsed.code;
        if (!catalogued.has(code)) return `uncatalogued code ${code}`;
      }
    } catch {
      return 'JSON answer that does not parse';
    }
  }
  if (answer.status >= 500 && !(code && DOCUMENTED_5XX.has(code)))
    return `HTTP ${answer.status}${code ? ` ${code}` : ''}`;
  return undefined;
}

t.test('saved crash inputs replay without failure', async (t) => {
  const corpus = loadCorpus(TARGET);
  for (const { file, entry } of corpus) {
    const bytes = Buffer.from(entry.input.base64 ?? '', 'base64');
    // Twice, with every room ended in between: some failures need the state the first one left.
    for (const attempt of [1, 2]) {
      const answer = await rawRequest(srv.server.address.port, bytes, 2000);
      t.equal(judge(answer), undefined, `${file} (${entry.failure}), attempt ${attempt}`);
      for (const room of srv.server.rooms.list()) await srv.server.rooms.endRoom(room, 'ended');
    }
  }
  t.comment(`${corpus.length} corpus entries replayed`);
});

t.test(`every route fuzzed for ${budgetMs} ms answers with catalogued codes (seed ${seed})`, async (t) => {
  t.comment(`REST fuzz seed ${seed} (replay: FUZZ_SEED=${seed})`);
  const rng = new Rng(seed);
  const port = srv.server.address.port;
  const auth = `Bearer ${srv.apiKey}`;
  let roomId = '';
  let participantId = '';
  const freshRoom = async () => {
    const created = await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: true } });
    if (created.status !== 201) {
      // The fuzzer filled the room limit: end every room and start again.
      for (const room of srv.server.rooms.list()) await srv.server.rooms.endRoom(room, 'ended');
      return freshRoom();
    }
    roomId = created.body.id;
    participantId = 'pat';
    const client = await SignallingClient.open(srv.wsUrl);
    await client.request('join', {
      token: await srv.token({ room: roomId, participantId, role: 'patient' }),
    });
    clients.push(client);
  };
  const clients: SignallingClient[] = [];
  t.teardown(() => clients.forEach((c) => c.close()));
  await freshRoom();

  const templates: { method: string; path: string; body?: Json; auth: boolean }[] = [
    {
      method: 'POST',
      path: '/v1/rooms',
      body: { options: { waitingRoom: true, maxParticipants: 4 } },
      auth: true,
    },
    { method: 'POST', path: '/v1/rooms', body: { roomId: 'fuzz-room', options: {} }, auth: true },
    { method: 'GET', path: '/v1/rooms', auth: true },
    { method: 'GET', path: '/v1/rooms/@@ROOM@@', auth: true },
    { method: 'DELETE', path: '/v1/rooms/@@ROOM@@', auth: true },
    {
      method: 'POST',
      path: '/v1/rooms/@@ROOM@@/invitations',
      body: { role: 'patient', displayName: 'Mme P', ttlS: 600, participantId: 'p2' },
      auth: true,
    },
    { method: 'GET', path: '/v1/rooms/@@ROOM@@/participants', auth: true },
    { method: 'DELETE', path: '/v1/rooms/@@ROOM@@/participants/@@PARTICIPANT@@', auth: true },
    { method: 'GET', path: '/v1/rooms/@@ROOM@@/journal', auth: true },
    { method: 'GET', path: '/v1/consent-texts', auth: true },
    {
      method: 'POST',
      path: '/v1/consent-texts',
      body: { textId: 'cgu-tc', version: '2', purpose: 'secondary-use', locale: 'fr', text: 'J’accepte.' },
      auth: true,
    },
    // Drain only ever without a valid key: a drained server refuses every new room.
    { method: 'POST', path: '/admin/drain', auth: false },
    { method: 'GET', path: '/healthz', auth: false },
    { method: 'GET', path: '/readyz', auth: false },
    { method: 'GET', path: '/metrics', auth: false },
    { method: 'GET', path: '/openapi.json', auth: false },
    { method: 'POST', path: '/demo/consultations', auth: false },
    { method: 'GET', path: '/', auth: false },
    { method: 'GET', path: '/sdk/teleconsult-sdk.js', auth: false },
    { method: 'GET', path: '/../../package.json', auth: false },
    { method: 'GET', path: '/sdk/../../../../etc/passwd', auth: false },
  ];
  const hostileSegments = [
    '..',
    '%2e%2e',
    '%2E%2E%2F',
    '.%00.',
    '',
    '//',
    '\\..\\..',
    'room%00',
    'a'.repeat(300),
    '__proto__',
    'constructor',
    '%ZZ',
    '€',
    '?x=1',
    '#frag',
    ';jsessionid=1',
  ];
  const failures: string[] = [];
  const statuses = new Map<string, number>();
  let cases = 0;
  const deadline = performance.now() + budgetMs;
  while (performance.now() < deadline && failures.length < 5) {
    cases++;
    const template = rng.pick(templates);
    let method = template.method;
    if (rng.chance(0.1))
      method = rng.pick(['GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'OPTIONS', 'HEAD', 'FOO', 'get']);
    let path = template.path;
    if (rng.chance(0.3)) {
      const segments = path.split('/');
      const at = 1 + rng.int(Math.max(1, segments.length - 1));
      segments[at] = rng.chance(0.7)
        ? rng.pick(hostileSegments)
        : percentEncode(JSON.stringify(hostileValue(rng)));
      path = segments.join('/');
    }
    if (rng.chance(0.05)) path += '?' + 'q='.repeat(rng.pick([1, 100, 5000]));
    const headers: [string, string][] = [];
    const authRoll = rng.next();
    if (template.auth ? authRoll < 0.8 : authRoll < 0.1) {
      if (template.method === 'POST' && template.path === '/admin/drain')
        headers.push(['Authorization', 'Bearer nope']);
      else headers.push(['Authorization', auth]);
    } else if (authRoll < 0.9) {
      headers.push([
        'Authorization',
        rng.pick([
          'Bearer ',
          'Bearer',
          'Basic dGVzdDp0ZXN0',
          `Bearer ${srv.apiKey}x`,
          `Bearer ${srv.apiKey.slice(0, -1)}`,
          `bearer ${srv.apiKey}`,
          'Bearer ' + 'A'.repeat(5000),
          `Bearer ${percentEncode(JSON.stringify(hostileValue(rng)))}`,
        ]),
      ]);
    }
    if (rng.chance(0.7))
      headers.push([
        'Content-Type',
        rng.pick([
          'application/json',
          'text/plain',
          'application/x-www-form-urlencoded',
          '',
          'application/json; charset=latin1',
        ]),
      ]);
    if (rng.chance(0.05)) headers.push(['X-Forwarded-For', '1.2.3.4, 127.0.0.1']);
    if (rng.chance(0.03)) headers.push(['Transfer-Encoding', 'chunked']);
    if (rng.chance(0.02)) for (let i = 0; i < 200; i++) headers.push([`X-Pad-${i}`, 'x'.repeat(100)]);
    let body: string | Buffer | undefined;
    if (template.body !== undefined || rng.chance(0.1)) {
      const base = template.body ?? {};
      const roll = rng.next();
      if (roll < 0.7) body = mutateFrame(rng, mutateJson(rng, base).value).frame;
      else if (roll < 0.8) body = JSON.stringify(base);
      else if (roll < 0.9) body = 'x'.repeat(rng.pick([65 * 1024, 200 * 1024]));
      else body = rng.bytes(rng.int(2048));
    }
    const spec: RequestSpec = {
      method,
      path: path.split('@@ROOM@@').join(roomId).split('@@PARTICIPANT@@').join(participantId),
      headers,
      body,
    };
    const bytes = serialise(spec);
    const chunked = headers.some(([name]) => name === 'Transfer-Encoding');
    const answer = await rawRequest(port, bytes, chunked ? 2000 : undefined);
    const key = answer.status === undefined ? 'closed' : String(answer.status);
    statuses.set(key, (statuses.get(key) ?? 0) + 1);
    const failure = judge(answer);
    if (failure) {
      const file = saveCrash({
        target: TARGET,
        failure,
        seed,
        caseNumber: cases,
        input: { base64: bytes.toString('base64') },
      });
      failures.push(`case ${cases}: ${failure} (saved ${file})`);
    }
    if (answer.status !== undefined && answer.status < 300 && method === 'DELETE') await freshRoom();
    else if (srv.server.rooms.get(roomId) === undefined) await freshRoom();
  }
  t.same(failures, [], `no failure (seed ${seed})`);
  t.ok(cases > 100, `${cases} cases ran`);
  t.comment(`REST fuzz: ${cases} cases, statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
  t.equal(srv.server.rooms.draining, false, 'the fuzzer never drained the server');
  const health = await fetch(`${srv.url}/healthz`);
  t.equal(health.status, 200, 'the server still answers');
  for (const room of srv.server.rooms.list()) await srv.server.rooms.endRoom(room, 'ended');
  const created = await srv.rest('POST', '/v1/rooms', { options: {} });
  t.equal(created.status, 201, 'and still creates rooms');
});

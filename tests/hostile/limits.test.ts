import t, { type Test } from 'tap';
import net from 'node:net';
import WebSocket from 'ws';
import { PROTOCOL_SUBPROTOCOL } from '../../src/protocol/messages.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { RequestError, SignallingClient } from '../support/signallingClient.js';
import { subscriberRtpCapabilities } from '../../bench/peer/index.js';
import { rtpParameters } from '../fuzz/signallingSession.js';
import { metricValue, rejections } from './metrics.js';

/**
 * Every configurable limit (src/config/schema.ts `limits`), one test each: the refusal code, and
 * the refusal counted in sfu_rejections_total{code}. Small limits make each one quick to reach.
 */
let srv: TestServer;
let rateSrv: TestServer;
t.before(async () => {
  srv = await startTestServer({
    limits: {
      wsMaxPayloadBytes: 2048,
      // Long enough that the other tests' unjoined clients finish on a busy host before it cuts them.
      authTimeoutMs: 1500,
      maxRooms: 3,
      maxParticipantsPerRoom: 2,
      maxTransportsPerParticipant: 2,
      maxProducersPerParticipant: 2,
      maxConsumersPerParticipant: 1,
    },
    quality: { enabled: false },
  });
  rateSrv = await startTestServer({ limits: { messagesPerSecond: 5, connectionsPerAddress: 3 } });
});
t.teardown(async () => {
  await srv.stop();
  await rateSrv.stop();
});

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    return err instanceof RequestError ? err.code : (err as Error).message;
  }
}

async function room(server: TestServer, options: Record<string, unknown> = { waitingRoom: false }) {
  const res = await server.rest<{ id: string; code?: string }>('POST', '/v1/rooms', { options });
  return res;
}

async function joined(
  server: TestServer,
  roomId: string,
  participantId: string,
  role: 'practitioner' | 'patient',
) {
  const client = await SignallingClient.open(server.wsUrl);
  await client.request('join', { token: await server.token({ room: roomId, participantId, role }) });
  if (role === 'patient') {
    await client.consent();
    await client.waitFor('admissionChanged', (d) => d.state === 'admitted');
  }
  return client;
}

t.test('limits.wsMaxPayloadBytes: a larger message gets MESSAGE_TOO_LARGE, counted', async (t) => {
  const before = await rejections(srv.url, 'MESSAGE_TOO_LARGE');
  const client = await SignallingClient.open(srv.wsUrl);
  t.teardown(() => client.close());
  client.sendRaw(JSON.stringify({ id: 1, method: 'getConsentTexts', params: { pad: 'x'.repeat(3000) } }));
  t.match(await client.nextRawResponse(), { ok: false, error: { code: 'MESSAGE_TOO_LARGE' } });
  // Far beyond the limit (over the transport's hard cap of 4x), the socket is closed instead.
  client.sendRaw('x'.repeat(2048 * 4 + 1));
  t.equal(await client.closed, 1009, 'a frame over the hard cap closes the connection (1009)');
  t.equal(await rejections(srv.url, 'MESSAGE_TOO_LARGE'), before + 1, 'counted once');
});

t.test('limits.messagesPerSecond: a burst is answered RATE_LIMITED, each one counted', async (t) => {
  const before = await rejections(rateSrv.url, 'RATE_LIMITED');
  const client = await SignallingClient.open(rateSrv.wsUrl);
  t.teardown(() => client.close());
  const codes = await Promise.all(Array.from({ length: 40 }, () => codeOf(client.requestRaw('leave', {}))));
  const limited = codes.filter((c) => c === 'RATE_LIMITED').length;
  t.ok(limited >= 20, `${limited} of 40 refused (burst allowance is twice the rate)`);
  t.ok(codes.includes('AUTH_REQUIRED'), 'the first ones are served');
  t.equal(await rejections(rateSrv.url, 'RATE_LIMITED'), before + limited, 'every refusal counted');
});

t.test('limits.connectionsPerAddress: one more socket gets 429 TOO_MANY_CONNECTIONS, counted', async (t) => {
  const before = await rejections(rateSrv.url, 'TOO_MANY_CONNECTIONS');
  const open = await Promise.all([1, 2, 3].map(() => SignallingClient.open(rateSrv.wsUrl)));
  const status = await new Promise<number>((resolve) => {
    const ws = new WebSocket(rateSrv.wsUrl, PROTOCOL_SUBPROTOCOL);
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => resolve(101));
    ws.on('error', () => undefined);
  });
  t.equal(status, 429);
  t.equal(await rejections(rateSrv.url, 'TOO_MANY_CONNECTIONS'), before + 1, 'counted');
  open[0]!.close();
  await open[0]!.closed;
  await new Promise((resolve) => setTimeout(resolve, 50));
  const again = await SignallingClient.open(rateSrv.wsUrl);
  t.pass('a slot freed by a close is usable again');
  for (const c of [...open, again]) c.close();
});

/** An upgrade request the WebSocket library refuses after our per-address check (bad key or version). */
async function failedHandshake(port: number, headers: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(
        'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Protocol: ${PROTOCOL_SUBPROTOCOL}\r\n${headers}\r\n`,
      );
    });
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('close', () => resolve(answer.split('\r\n')[0] ?? ''));
    socket.on('error', reject);
  });
}

t.test('failed WebSocket handshakes give their per-address slot back', async (t) => {
  const port = Number(new URL(rateSrv.url).port);
  // The previous test's sockets may still be closing: start from no connection at all.
  for (let i = 0; i < 100 && (await metricValue(rateSrv.url, 'sfu_ws_connections')) > 0; i++)
    await new Promise((resolve) => setTimeout(resolve, 20));
  for (let i = 0; i < 4; i++) {
    const bad = await failedHandshake(port, 'Sec-WebSocket-Key: not-a-key\r\nSec-WebSocket-Version: 13\r\n');
    t.match(bad, /^HTTP\/1\.1 400/, 'a bad key is refused by the handshake');
    const version = await failedHandshake(
      port,
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n',
    );
    t.match(version, /^HTTP\/1\.1 400/, 'an unsupported version is refused by the handshake');
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  const clients = await Promise.all([1, 2, 3].map(() => SignallingClient.open(rateSrv.wsUrl)));
  t.pass('every slot is still free for real connections');
  for (const c of clients) c.close();
  await Promise.all(clients.map((c) => c.closed));
});

t.test('limits.authTimeoutMs: a connection that never joins is cut with AUTH_TIMEOUT, counted', async (t) => {
  const before = await rejections(srv.url, 'AUTH_TIMEOUT');
  const client = await SignallingClient.open(srv.wsUrl);
  t.equal(await client.closed, 4408);
  t.match(client.rawResponses[0], { ok: false, error: { code: 'AUTH_TIMEOUT' } });
  t.equal(await rejections(srv.url, 'AUTH_TIMEOUT'), before + 1, 'counted');
});

t.test('a slow HTTP client that never finishes its headers is cut', async (t) => {
  // Slowloris: one header byte a second. Node's headersTimeout (10 s here) cuts it; the connection
  // checker runs every connectionsCheckingInterval, so the cut comes within a few seconds after.
  const socket = net.connect(srv.server.address.port, '127.0.0.1');
  const started = Date.now();
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  socket.on('error', () => undefined);
  socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  const drip = setInterval(() => socket.write('X'), 1000);
  await new Promise((resolve) => socket.on('close', resolve));
  clearInterval(drip);
  const seconds = (Date.now() - started) / 1000;
  t.ok(seconds < 20, `cut after ${seconds.toFixed(1)} s`);
  t.match(answer, /^HTTP\/1\.1 408/, 'with 408 Request Timeout');
});

t.test('limits.maxRooms: one room more gets 503 ROOM_LIMIT_REACHED, counted', async (t) => {
  for (const r of srv.server.rooms.list()) await srv.server.rooms.endRoom(r, 'ended');
  const before = await rejections(srv.url, 'ROOM_LIMIT_REACHED');
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await room(srv)).body.id);
  const refused = await room(srv);
  t.equal(refused.status, 503);
  t.equal(refused.body.code, 'ROOM_LIMIT_REACHED');
  t.equal(await rejections(srv.url, 'ROOM_LIMIT_REACHED'), before + 1, 'counted');
  for (const id of ids) await srv.rest('DELETE', `/v1/rooms/${id}`);
});

t.test('limits.maxParticipantsPerRoom: one participant more gets ROOM_FULL, counted', async (t) => {
  const tooMany = await srv.rest<{ code: string; detail: string }>('POST', '/v1/rooms', {
    options: { waitingRoom: false, maxParticipants: 50 },
  });
  t.equal(tooMany.status, 400, 'a room may not ask for more than the limit: no silent cap');
  t.equal(tooMany.body.code, 'MESSAGE_INVALID');
  t.match(tooMany.body.detail, /limits\.maxParticipantsPerRoom \(2\)/, 'the answer names the limit');
  const roomRes = await room(srv, { waitingRoom: false });
  const roomId = roomRes.body.id;
  t.teardown(() => srv.rest('DELETE', `/v1/rooms/${roomId}`));
  const info = await srv.rest<{ options: { maxParticipants: number } }>('GET', `/v1/rooms/${roomId}`);
  t.equal(info.body.options.maxParticipants, 2, 'without a maximum of its own, a room gets the limit');
  const before = await rejections(srv.url, 'ROOM_FULL');
  const a = await joined(srv, roomId, 'doc', 'practitioner');
  const b = await joined(srv, roomId, 'pat', 'patient');
  const c = await SignallingClient.open(srv.wsUrl);
  t.teardown(() => [a, b, c].forEach((x) => x.close()));
  const code = await codeOf(
    c.request('join', {
      token: await srv.token({ room: roomId, participantId: 'third', role: 'assistant' }),
    }),
  );
  t.equal(code, 'ROOM_FULL');
  t.equal(await rejections(srv.url, 'ROOM_FULL'), before + 1, 'counted');
});

async function mediaRoom(t: Test) {
  const roomId = (await room(srv)).body.id;
  const doc = await joined(srv, roomId, 'doc', 'practitioner');
  t.teardown(async () => {
    doc.close();
    await srv.rest('DELETE', `/v1/rooms/${roomId}`);
  });
  await doc.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() });
  return { roomId, doc };
}

t.test('limits.maxTransportsPerParticipant: one transport more gets LIMIT_EXCEEDED, counted', async (t) => {
  const { doc } = await mediaRoom(t);
  const before = await rejections(srv.url, 'LIMIT_EXCEEDED');
  await doc.request('createTransport', { direction: 'send' });
  await doc.request('createTransport', { direction: 'recv' });
  t.equal(await codeOf(doc.request('createTransport', { direction: 'send' })), 'LIMIT_EXCEEDED');
  t.equal(await rejections(srv.url, 'LIMIT_EXCEEDED'), before + 1, 'counted');
});

t.test('limits.maxProducersPerParticipant: one producer more gets LIMIT_EXCEEDED, counted', async (t) => {
  const { doc } = await mediaRoom(t);
  const before = await rejections(srv.url, 'LIMIT_EXCEEDED');
  const send = await doc.request('createTransport', { direction: 'send' });
  const produce = (mid: string) =>
    doc.request('produce', {
      transportId: send.id,
      kind: 'video',
      rtpParameters: { ...(rtpParameters('video') as Record<string, unknown>), mid },
      source: 'camera',
    });
  await produce('a');
  await produce('b');
  t.equal(await codeOf(produce('c')), 'LIMIT_EXCEEDED');
  t.equal(await rejections(srv.url, 'LIMIT_EXCEEDED'), before + 1, 'counted');
});

t.test('limits.maxConsumersPerParticipant: one consumer more gets LIMIT_EXCEEDED, counted', async (t) => {
  const { roomId, doc } = await mediaRoom(t);
  const pat = await joined(srv, roomId, 'pat', 'patient');
  t.teardown(() => pat.close());
  const send = await doc.request('createTransport', { direction: 'send' });
  await pat.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() });
  await pat.request('createTransport', { direction: 'recv' });
  const producers: string[] = [];
  for (const mid of ['a', 'b']) {
    producers.push(
      (
        await doc.request('produce', {
          transportId: send.id,
          kind: 'video',
          rtpParameters: { ...(rtpParameters('video') as Record<string, unknown>), mid },
          source: 'camera',
        })
      ).producerId,
    );
  }
  await pat.waitFor('consumerAdded');
  const before = await rejections(srv.url, 'LIMIT_EXCEEDED');
  const announced = pat.notifications.filter((n) => n.notification === 'consumerAdded');
  t.equal(announced.length, 1, 'the server created only as many consumers as allowed');
  const unconsumed = producers.find((p) => !announced.some((n) => n.data.producerId === p))!;
  t.equal(await codeOf(pat.request('consume', { producerId: unconsumed })), 'LIMIT_EXCEEDED');
  t.equal(await rejections(srv.url, 'LIMIT_EXCEEDED'), before + 1, 'counted');
});

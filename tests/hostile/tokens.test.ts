import t from 'tap';
import { SignJWT } from 'jose';
import { startTestServer, type TestServer } from '../support/server.js';
import type { RequestError } from '../support/signallingClient.js';
import { SignallingClient } from '../support/signallingClient.js';

/**
 * Join tokens and probing: a token works once, for one room and one role, for minutes; every bad
 * token and every unknown room gets the same answer, byte for byte, and in about the same time.
 */
let srv: TestServer;
const SECRET = 'test-secret-0123456789abcdef';
t.before(async () => {
  srv = await startTestServer({
    auth: { tokenSecret: SECRET, maxTokenLifetimeS: 600 },
    limits: { messagesPerSecond: 100_000 },
    quality: { enabled: false },
  });
});
t.teardown(() => srv.stop());

async function newRoom(): Promise<string> {
  return (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: true } })).body.id;
}

/** The whole error body of a join attempt on a fresh connection, or 'joined'. */
async function attempt(params: Record<string, unknown>): Promise<unknown> {
  const client = await SignallingClient.open(srv.wsUrl);
  try {
    const joined = await client.requestRaw('join', params);
    return { joined: (joined as { self: { role: string } }).self.role };
  } catch (err) {
    return (err as RequestError).body;
  } finally {
    client.close();
  }
}

const DENIED = {
  code: 'ACCESS_DENIED',
  message: 'The token is invalid, expired, already used, or not valid for this room.',
};

function tamper(token: string, change: (payload: Record<string, unknown>) => void): string {
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>;
  change(claims);
  return `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
}

async function sign(
  claims: Record<string, unknown>,
  options: { iat?: number; exp: number; secret?: string },
) {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setAudience('teleconsult-sfu');
  if (options.iat !== undefined) jwt = jwt.setIssuedAt(options.iat);
  return jwt.setExpirationTime(options.exp).sign(new TextEncoder().encode(options.secret ?? SECRET));
}

t.test('a join token works once (jti)', async (t) => {
  const roomId = await newRoom();
  const token = await srv.token({ room: roomId, participantId: 'pat', role: 'patient' });
  t.same(await attempt({ token }), { joined: 'patient' });
  t.same(await attempt({ token }), DENIED, 'the same token again is refused');
});

t.test('a join token is bound to its room and role: changing either breaks it', async (t) => {
  const roomA = await newRoom();
  const roomB = await newRoom();
  const token = await srv.token({ room: roomA, participantId: 'pat', role: 'patient' });
  t.same(await attempt({ token: tamper(token, (c) => (c.room = roomB)) }), DENIED, 'another room');
  t.same(await attempt({ token: tamper(token, (c) => (c.role = 'practitioner')) }), DENIED, 'another role');
  t.same(await attempt({ token: tamper(token, (c) => (c.sub = 'doc')) }), DENIED, 'another participant');
  t.same(await attempt({ token }), { joined: 'patient' }, 'the untouched token still works, with its role');
});

t.test(
  'a join token lives minutes: lifetime over the cap, expired, or forged are refused alike',
  async (t) => {
    const roomId = await newRoom();
    const now = Math.floor(Date.now() / 1000);
    const claims = (sub: string) => ({ room: roomId, role: 'patient', sub, jti: `jti-${sub}-${now}` });
    t.same(
      await attempt({ token: await sign(claims('a'), { iat: now, exp: now + 3600 }) }),
      DENIED,
      'one hour',
    );
    t.same(
      await attempt({ token: await sign(claims('b'), { exp: now + 3600 }) }),
      DENIED,
      'no iat, one hour',
    );
    t.same(
      await attempt({ token: await sign(claims('c'), { iat: now - 700, exp: now - 100 }) }),
      DENIED,
      'expired',
    );
    t.same(
      await attempt({
        token: await sign(claims('d'), { iat: now, exp: now + 300, secret: 'another-secret-0123456789' }),
      }),
      DENIED,
      'signed with another key',
    );
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(
      JSON.stringify({ ...claims('e'), aud: 'teleconsult-sfu', exp: now + 300 }),
    ).toString('base64url')}.`;
    t.same(await attempt({ token: unsigned }), DENIED, 'alg none');
    t.same(
      await attempt({ token: await sign(claims('g'), { iat: now + 86400, exp: now + 86400 + 300 }) }),
      DENIED,
      'iat a day ahead: the lifetime counts from now, not from the claimed issue time',
    );
    t.same(
      await attempt({ token: await sign(claims('h'), { iat: now + 300, exp: now + 400 }) }),
      DENIED,
      'iat minutes ahead (beyond clock skew)',
    );
    t.same(
      await attempt({ token: await sign(claims('f'), { iat: now, exp: now + 590 }) }),
      { joined: 'patient' },
      'within the cap it works',
    );
  },
);

t.test('room and invitation probing get identical answers', async (t) => {
  const roomId = await newRoom();
  const unknownRoom = await attempt({
    token: await srv.token({ room: 'room-that-never-existed', participantId: 'x', role: 'patient' }),
  });
  const good = await srv.token({ room: roomId, participantId: 'y', role: 'patient' });
  const badSignature = await attempt({ token: good.slice(0, -3) + (good.endsWith('AAA') ? 'BBB' : 'AAA') });
  const ended = await newRoom();
  await srv.rest('DELETE', `/v1/rooms/${ended}`);
  const endedRoom = await attempt({
    token: await srv.token({ room: ended, participantId: 'z', role: 'patient' }),
  });
  t.same(
    [unknownRoom, badSignature, endedRoom],
    [DENIED, DENIED, DENIED],
    'tokens: same code and message, no detail',
  );

  const invitation = await srv.rest<{ accessCode: string; token: string }>(
    'POST',
    `/v1/rooms/${roomId}/invitations`,
    { role: 'patient' },
  );
  const unknownCode = await attempt({
    accessCode: '00000000' === invitation.body.accessCode ? '00000001' : '00000000',
  });
  t.same(await attempt({ accessCode: invitation.body.accessCode }), { joined: 'patient' });
  const usedCode = await attempt({ accessCode: invitation.body.accessCode });
  const usedLink = await attempt({ token: invitation.body.token });
  t.same(
    [unknownCode, usedCode, usedLink],
    [DENIED, DENIED, DENIED],
    'codes and links: unknown and used alike',
  );
});

/**
 * Timing: 200 refusals for a valid token naming an unknown room, interleaved with 200 for an
 * existing room with a forged signature, on one connection. Both paths verify an HMAC and answer
 * the same bytes; the unknown-room path then does a few map lookups more (microseconds) while a
 * loopback round trip costs hundreds of microseconds with jitter. We compare 10%-trimmed means and
 * accept a difference within 4 standard errors of the difference, or within 20% of the mean: a
 * statistical sanity check that catches a real side channel (a database lookup, a sleep, a
 * different code path costing milliseconds), not a speed assertion. Runs interleaved, so load on
 * the machine affects both series alike.
 */
t.test('refusals for an unknown room and for a bad token take similar time', async (t) => {
  const roomId = await newRoom();
  const TRIALS = 200;
  const unknown = await Promise.all(
    Array.from({ length: TRIALS }, (_, i) =>
      srv.token({ room: `unknown-room-${i}`, participantId: 'p', role: 'patient' }),
    ),
  );
  const forged = await Promise.all(
    Array.from({ length: TRIALS }, async (_, i) => {
      const token = await srv.token({ room: roomId, participantId: `p${i}`, role: 'patient' });
      return token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    }),
  );
  const client = await SignallingClient.open(srv.wsUrl);
  t.teardown(() => client.close());
  const time = async (token: string) => {
    const start = performance.now();
    try {
      await client.request('join', { token });
    } catch (err) {
      if ((err as RequestError).code !== 'ACCESS_DENIED') throw err;
    }
    return performance.now() - start;
  };
  for (let i = 0; i < 20; i++) await time(forged[i % 4]!); // warm-up (JIT, caches)
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < TRIALS; i++) {
    a.push(await time(unknown[i]!));
    b.push(await time(forged[i]!));
  }
  const stats = (xs: number[]) => {
    const sorted = [...xs].sort((x, y) => x - y);
    const cut = Math.floor(sorted.length * 0.1);
    const kept = sorted.slice(cut, sorted.length - cut);
    const mean = kept.reduce((s, x) => s + x, 0) / kept.length;
    const variance = kept.reduce((s, x) => s + (x - mean) ** 2, 0) / (kept.length - 1);
    return { mean, se: Math.sqrt(variance / kept.length) };
  };
  const sa = stats(a);
  const sb = stats(b);
  const diff = Math.abs(sa.mean - sb.mean);
  const bound = Math.max(4 * Math.sqrt(sa.se ** 2 + sb.se ** 2), 0.2 * ((sa.mean + sb.mean) / 2));
  t.comment(
    `unknown room ${(sa.mean * 1000).toFixed(0)} µs ± ${(sa.se * 1000).toFixed(0)}, bad token ${(sb.mean * 1000).toFixed(0)} µs ± ${(sb.se * 1000).toFixed(0)}, difference ${(diff * 1000).toFixed(0)} µs, bound ${(bound * 1000).toFixed(0)} µs`,
  );
  t.ok(diff <= bound, 'the difference is within noise');
});

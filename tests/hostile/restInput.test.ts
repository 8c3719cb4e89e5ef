import t from 'tap';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * The platform API answers what the caller asked or says why not: ids that cannot name a journal
 * file are a 400, and a value above a server limit is refused naming that limit, never cut silently.
 */
let srv: TestServer;
t.before(async () => {
  srv = await startTestServer({ auth: { maxTokenLifetimeS: 600 }, quality: { enabled: false } });
});
t.teardown(() => srv.stop());

interface ErrorBody {
  code: string;
  detail?: string;
}

t.test('roomId "." and ".." are refused with 400, like any other invalid id', async (t) => {
  for (const roomId of ['.', '..']) {
    const res = await srv.rest<ErrorBody>('POST', '/v1/rooms', { roomId });
    t.equal(res.status, 400, `roomId ${JSON.stringify(roomId)}`);
    t.equal(res.body.code, 'MESSAGE_INVALID');
  }
  const dotted = await srv.rest<{ id: string }>('POST', '/v1/rooms', { roomId: 'a.b..c' });
  t.equal(dotted.status, 201, 'dots inside an id stay allowed');
  await srv.rest('DELETE', `/v1/rooms/${dotted.body.id}`);
});

t.test('an invitation longer than the token lifetime limit is refused, naming the limit', async (t) => {
  const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', {})).body.id;
  t.teardown(() => srv.rest('DELETE', `/v1/rooms/${roomId}`));
  const refused = await srv.rest<ErrorBody>('POST', `/v1/rooms/${roomId}/invitations`, {
    role: 'patient',
    ttlS: 3600,
  });
  t.equal(refused.status, 400);
  t.equal(refused.body.code, 'MESSAGE_INVALID');
  t.match(refused.body.detail, /auth\.maxTokenLifetimeS \(600\)/);

  const before = Date.now();
  const ok = await srv.rest<{ ttlS: number; expiresAt: string }>('POST', `/v1/rooms/${roomId}/invitations`, {
    role: 'patient',
    ttlS: 600,
  });
  t.equal(ok.status, 201, 'at the limit it is accepted');
  t.equal(ok.body.ttlS, 600, 'the answer states the lifetime applied');
  const expires = Date.parse(ok.body.expiresAt);
  t.ok(expires >= before + 599_000 && expires <= Date.now() + 601_000, 'and expires accordingly');

  const byDefault = await srv.rest<{ ttlS: number }>('POST', `/v1/rooms/${roomId}/invitations`, {
    role: 'patient',
  });
  t.equal(byDefault.body.ttlS, 600, 'without ttlS the answer states the default applied');
});

import t from 'tap';
import { startTestServer, type TestServer } from '../support/server.js';
import type { RequestError } from '../support/signallingClient.js';
import { SignallingClient } from '../support/signallingClient.js';

/**
 * An `e2eeRequired` room carries nothing in clear: every WebRTC participant, whatever its role
 * (observers included), must announce end-to-end encryption to join (docs/encryption.md).
 */
let srv: TestServer;
t.before(async () => {
  srv = await startTestServer({ quality: { enabled: false } });
});
t.teardown(() => srv.stop());

const KEY = 'BEl1c1bHs0K6yCv0bUgRkDz3X8c0h4mYqQ9m3aA1Zr0';

async function attempt(roomId: string, participantId: string, role: string, e2ee: boolean): Promise<string> {
  const client = await SignallingClient.open(srv.wsUrl);
  try {
    await client.request('join', {
      token: await srv.token({ room: roomId, participantId, role: role as 'observer' }),
      capabilities: e2ee ? { e2ee: true, e2eeKey: KEY } : { e2ee: false },
    });
    return 'joined';
  } catch (err) {
    return (err as RequestError).code;
  } finally {
    client.close();
  }
}

t.test('every role needs end-to-end encryption to join an e2eeRequired room', async (t) => {
  const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { e2eeRequired: true } }))
    .body.id;
  t.teardown(() => srv.rest('DELETE', `/v1/rooms/${roomId}`));
  for (const role of ['practitioner', 'patient', 'assistant', 'observer']) {
    t.equal(await attempt(roomId, `${role}-clear`, role, false), 'E2EE_REQUIRED', `${role} without E2EE`);
    t.equal(await attempt(roomId, `${role}-e2ee`, role, true), 'joined', `${role} with E2EE`);
  }
});

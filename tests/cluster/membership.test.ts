import t from 'tap';
import { Redis } from 'ioredis';
import { startTestServer } from '../support/server.js';
import { SignallingClient } from '../support/signallingClient.js';
import { RoomDirectory } from '../../src/cluster/roomDirectory.js';
import { eventually, startRedis } from './support.js';

/**
 * A cluster node publishes a room's membership from the room's domain events (joined, each state
 * change, resumed, removed), not only at its heartbeat: a node taking the room over after a crash
 * must know who had been admitted a moment before. The heartbeat here is a minute, so only the
 * events can have written what the test reads.
 */
void t.test('admission, consent and removal reach the cluster directory at once', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const srv = await startTestServer({
    cluster: {
      enabled: true,
      redisUrl: redis.url,
      nodeId: 'events-node',
      heartbeatMs: 60000,
      nodeTtlMs: 600000,
    },
    quality: { enabled: false },
  });
  t.teardown(() => srv.stop());
  const reader = new Redis(redis.url);
  t.teardown(() => reader.disconnect());
  const directory = new RoomDirectory(reader, 'tcsfu:');

  const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: true } }))
    .body.id;
  const join = async (participantId: string, role: 'practitioner' | 'patient') => {
    const client = await SignallingClient.open(srv.wsUrl);
    t.teardown(() => client.close());
    await client.request('join', { token: await srv.token({ room: roomId, participantId, role }) });
    return client;
  };
  const stateOf = async (participantId: string) =>
    (await directory.member(roomId, participantId))?.state ?? 'absent';
  /** Whether the directory shows `state` within 5 s (a heartbeat would take a minute). */
  const reaches = (participantId: string, state: string) =>
    eventually(
      `${participantId} ${state} in the directory`,
      async () => (await stateOf(participantId)) === state,
      5000,
    ).then(
      () => true,
      () => false,
    );

  const patient = await join('pat', 'patient');
  t.ok(await reaches('pat', 'waiting'), 'joined: published as waiting');
  await patient.consent();
  t.ok(await reaches('pat', 'consented'), 'its consent is published');
  const doctor = await join('doc', 'practitioner');
  t.ok(await reaches('doc', 'admitted'), 'the practitioner, admitted on arrival, is published');
  await doctor.request('admit', { participantId: 'pat' });
  t.ok(await reaches('pat', 'admitted'), 'the admission is published');
  const removed = await srv.rest('DELETE', `/v1/rooms/${roomId}/participants/pat`);
  t.equal(removed.status, 204, 'removed by REST');
  t.ok(await reaches('pat', 'absent'), 'the removal takes it out of the directory');
  await srv.rest('DELETE', `/v1/rooms/${roomId}`);
});

import t from 'tap';
import { RequestError, SignallingClient } from '../support/signallingClient.js';
import { redirectOf, signallingUrlOf } from './clusterPeer.js';
import { eventually, startNode, startRedis, type NodeProcess, type RedisServer } from './support.js';

/**
 * Invitation access codes in a cluster (two real nodes sharing Redis): a code typed on a node that
 * does not host the room sends the caller to the host without using the code; it works there once;
 * used, it works nowhere; and after its host's death it still works on the node that took the room.
 */

let redis: RedisServer;
let nodeA: NodeProcess;
let nodeB: NodeProcess;
const nodes: NodeProcess[] = [];
const clients: SignallingClient[] = [];

t.before(async () => {
  redis = await startRedis();
  nodeA = await startNode('codes-a', redis.url);
  nodeB = await startNode('codes-b', redis.url);
  nodes.push(nodeA, nodeB);
});
t.teardown(async () => {
  for (const client of clients) client.close();
  await Promise.all(nodes.map((node) => node.stop()));
  await redis.stop();
});

/** Joins with an access code through `node`; the error code (and redirect) when refused. */
async function joinWithCode(
  node: NodeProcess,
  accessCode: string,
): Promise<{ joined: true; participantId: string } | { joined: false; code: string; location?: string }> {
  const client = await SignallingClient.open(node.wsUrl);
  try {
    const result = await client.request('join', { accessCode });
    clients.push(client);
    return { joined: true, participantId: result.self.id };
  } catch (err) {
    client.close();
    if (!(err instanceof RequestError)) throw err;
    const location = redirectOf(err);
    return { joined: false, code: err.code, ...(location ? { location } : {}) };
  }
}

async function invite(host: NodeProcess, roomId: string, participantId: string): Promise<string> {
  const answer = await host.rest<{ accessCode: string }>('POST', `/v1/rooms/${roomId}/invitations`, {
    role: 'patient',
    participantId,
  });
  if (answer.status !== 201) throw new Error(`invitation refused: ${answer.status}`);
  return answer.body.accessCode;
}

let roomId = '';

t.test('a code typed on the other node leads to the host, works there once, then nowhere', async (t) => {
  const created = await nodeA.rest<{ id: string; node?: string }>('POST', '/v1/rooms', {
    options: { waitingRoom: true },
  });
  t.equal(created.status, 201);
  t.equal(created.body.node, undefined, 'node A hosts the room');
  roomId = created.body.id;
  const code = await invite(nodeA, roomId, 'companion-1');

  const onB = await joinWithCode(nodeB, code);
  t.match(onB, { joined: false, code: 'ROOM_ELSEWHERE', location: nodeA.url }, 'B names the host');
  const onA = await joinWithCode(nodeA, code);
  t.same(onA, { joined: true, participantId: 'companion-1' }, 'the same code then works on A');
  t.match(await joinWithCode(nodeB, code), { joined: false, code: 'ACCESS_DENIED' }, 'used: refused on B');
  t.match(await joinWithCode(nodeA, code), { joined: false, code: 'ACCESS_DENIED' }, 'used: refused on A');
  t.match(
    await joinWithCode(nodeB, '00000000'),
    { joined: false, code: 'ACCESS_DENIED' },
    'an unknown code is refused as before',
  );
  // The redirect is what a client follows: the WebSocket URL of the host.
  t.equal(signallingUrlOf(nodeA.url), nodeA.wsUrl);
});

t.test('after the host dies, its codes work on the node that took the room over', async (t) => {
  const code = await invite(nodeA, roomId, 'companion-2');
  nodeA.kill('SIGKILL');
  t.equal(await nodeA.exited, 'SIGKILL');
  // Until A's heartbeat expires B still names A; then B moves the room to itself.
  const joined = await eventually(
    'the code to work on B',
    async () => {
      const attempt = await joinWithCode(nodeB, code);
      if (!attempt.joined && attempt.code === 'ACCESS_DENIED') throw new Error('code refused');
      return attempt.joined ? attempt : undefined;
    },
    20_000,
    200,
  );
  t.same(joined, { joined: true, participantId: 'companion-2' });
  const room = await nodeB.rest<{ participants: { id: string }[] }>('GET', `/v1/rooms/${roomId}`);
  t.equal(room.status, 200, 'B hosts the room');
  t.ok(
    room.body.participants.some((p) => p.id === 'companion-2'),
    'the participant who typed the code is in it',
  );
});

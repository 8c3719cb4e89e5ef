import t from 'tap';
import { spawnSync } from 'node:child_process';
import { releaseNativePeers } from '../support/mediaPeer.js';
import { RequestError } from '../support/signallingClient.js';
import { ClusterPeer, mediaFlows } from './clusterPeer.js';
import { eventually, startNode, startRedis } from './support.js';

/**
 * docs/cluster.md, "Redis unreachable": rooms already running keep their media and signalling;
 * what needs the shared state (a join token's single use, a room's placement) is refused with
 * CLUSTER_UNAVAILABLE, never served unchecked, and the node keeps running.
 */
const missing = spawnSync('redis-server', ['--version']).error
  ? 'redis-server is not installed (scripts/setup.sh installs redis-server)'
  : false;

t.teardown(releaseNativePeers);

void t.test(
  'with Redis gone, a running consultation keeps its media; new joins and rooms get CLUSTER_UNAVAILABLE',
  { skip: missing },
  async (t) => {
    const redis = await startRedis();
    const node = await startNode('solo', redis.url);
    const peers: ClusterPeer[] = [];
    t.teardown(async () => {
      for (const peer of peers) peer.close();
      await node.stop();
      await redis.stop();
    });
    const created = await node.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } });
    t.equal(created.status, 201);
    const room = created.body.id;
    const doctor = new ClusterPeer('doc');
    const patient = new ClusterPeer('pat');
    peers.push(doctor, patient);
    await doctor.join(node.wsUrl, await node.token({ room, participantId: 'doc', role: 'practitioner' }));
    await patient.join(node.wsUrl, await node.token({ room, participantId: 'pat', role: 'patient' }));
    await doctor.publish();
    await patient.publish();
    await Promise.all([doctor.subscribe(2), patient.subscribe(2)]);
    await mediaFlows(doctor, patient);

    await redis.stop();
    const refused = await eventually('room creation to be refused', async () => {
      const answer = await node.rest<{ code: string }>('POST', '/v1/rooms', { options: {} });
      return answer.status === 503 ? answer : false;
    });
    t.equal(refused.body.code, 'CLUSTER_UNAVAILABLE', 'room creation: 503 CLUSTER_UNAVAILABLE');

    const late = new ClusterPeer('late');
    peers.push(late);
    const error = await late
      .join(node.wsUrl, await node.token({ room, participantId: 'late', role: 'patient' }))
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    t.ok(error instanceof RequestError, 'the join is refused with a typed error');
    t.equal((error as RequestError).code, 'CLUSTER_UNAVAILABLE', 'single use cannot be checked: refused');

    await mediaFlows(doctor, patient);
    t.pass('the running consultation still has audio and video both ways');
    t.equal(node.child.exitCode, null, 'the node is still running');
  },
);

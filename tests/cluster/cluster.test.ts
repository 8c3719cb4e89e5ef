import t from 'tap';
import { releaseNativePeers } from '../support/mediaPeer.js';
import { ClusterPeer, mediaFlows } from './clusterPeer.js';
import { eventually, sleep, startNode, startRedis, type NodeProcess, type RedisServer } from './support.js';

let redis: RedisServer;
let nodeA: NodeProcess;
let nodeB: NodeProcess;
const peers: ClusterPeer[] = [];
const nodes: NodeProcess[] = [];

t.before(async () => {
  redis = await startRedis();
  nodeA = await startNode('node-a', redis.url);
  nodeB = await startNode('node-b', redis.url);
  nodes.push(nodeA, nodeB);
});
t.teardown(async () => {
  for (const peer of peers) peer.close();
  await Promise.all(nodes.map((node) => node.stop()));
  await redis.stop();
  releaseNativePeers();
});

let roomId = '';
let doctor: ClusterPeer;
let patient: ClusterPeer;

t.test('a room created through node A is joined through node B, which redirects to A', async (t) => {
  const created = await nodeA.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } });
  t.equal(created.status, 201);
  roomId = created.body.id;

  const elsewhere = await nodeB.rest<{ code: string; location: string }>('GET', `/v1/rooms/${roomId}`);
  t.equal(elsewhere.status, 307, 'REST on the other node answers with a redirect');
  t.equal(elsewhere.body.code, 'ROOM_ELSEWHERE');
  t.equal(elsewhere.location, `${nodeA.url}/v1/rooms/${roomId}`, 'Location names the same path on A');

  doctor = new ClusterPeer('doc');
  patient = new ClusterPeer('pat');
  peers.push(doctor, patient);
  await doctor.join(
    nodeB.wsUrl,
    await nodeB.token({ room: roomId, participantId: 'doc', role: 'practitioner' }),
  );
  await patient.join(nodeB.wsUrl, await nodeB.token({ room: roomId, participantId: 'pat', role: 'patient' }));
  t.same(doctor.redirects, [nodeA.wsUrl], 'the practitioner was sent to node A');
  t.same(patient.redirects, [nodeA.wsUrl], 'the patient was sent to node A');

  await doctor.publish();
  await patient.publish();
  await Promise.all([doctor.subscribe(2), patient.subscribe(2)]);
  await mediaFlows(doctor, patient);
  t.pass('audio and video flow between the two through node A');
});

t.test('kill -9 of node A moves its room to B, and the clients resume there with media', async (t) => {
  const killedAt = Date.now();
  nodeA.kill('SIGKILL');
  t.equal(await nodeA.exited, 'SIGKILL');
  for (const peer of [doctor, patient]) {
    peer.publisher?.close();
    peer.subscriber?.close();
  }
  // Both resume through B, the entry node, as the SDK does once A cannot be reached.
  const [doctorResume, patientResume] = await Promise.all([
    doctor.resumeVia(nodeB.wsUrl),
    patient.resumeVia(nodeB.wsUrl),
  ]);
  const resumedAt = Date.now();
  t.same(doctorResume.transportIds, [], 'the new host has no transport: media is rebuilt');
  t.same(patientResume.transportIds, []);
  t.equal(doctor.hostUrl, nodeB.wsUrl, 'the practitioner is now on B');
  t.equal(patient.hostUrl, nodeB.wsUrl, 'the patient is now on B');
  const moved = await nodeB.rest<{ id: string; participants: { id: string; state: string }[] }>(
    'GET',
    `/v1/rooms/${roomId}`,
  );
  t.equal(moved.status, 200, 'B hosts the room');
  t.same(
    moved.body.participants.map((p) => p.id).sort(),
    ['doc', 'pat'],
    'both participants are back in the room',
  );
  t.ok(
    moved.body.participants.every((p) => p.state === 'admitted' || p.state === 'in-call'),
    'the admitted patient does not go back to the waiting room',
  );

  await doctor.publish();
  await patient.publish();
  await Promise.all([doctor.subscribe(2), patient.subscribe(2)]);
  await mediaFlows(doctor, patient);
  const flowingAt = Date.now();
  t.comment(
    `failover: sessions resumed ${resumedAt - killedAt} ms after kill -9, media flowing again after ${flowingAt - killedAt} ms`,
  );
});

t.test('a draining node takes no new room, and exits when its last consultation ends', async (t) => {
  const nodeC = await startNode('node-c', redis.url);
  nodes.push(nodeC);
  await sleep(700); // a heartbeat or two: B learns of C
  nodeB.kill('SIGTERM');
  await eventually('B to report not ready', async () => (await fetch(`${nodeB.url}/readyz`)).status === 503);

  const placed = await nodeB.rest<{ id: string; node?: string }>('POST', '/v1/rooms', {
    options: { waitingRoom: false },
  });
  t.equal(placed.status, 201, 'the draining node still answers the platform');
  t.equal(placed.body.node, nodeC.url, 'the new room is assigned to C');
  const onC = await nodeC.rest<{ id: string }>('GET', `/v1/rooms/${placed.body.id}`);
  t.equal(onC.status, 200, 'C hosts it');
  const onB = await nodeB.rest('GET', `/v1/rooms/${placed.body.id}`);
  t.equal(onB.status, 307, 'B sends its callers to C');

  await sleep(500);
  t.equal(nodeB.child.exitCode, null, 'B keeps running while its consultation goes on');
  const endedAt = Date.now();
  const ended = await nodeB.rest('DELETE', `/v1/rooms/${roomId}`);
  t.equal(ended.status, 204);
  t.equal(await nodeB.exited, 0, 'B exits cleanly once its last room has ended');
  t.comment(`B exited ${Date.now() - endedAt} ms after its last consultation ended (deadline 60 s)`);
});

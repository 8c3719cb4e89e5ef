import t from 'tap';
import { MediaPeer, releaseNativePeers } from '../support/mediaPeer.js';
import type { RequestError } from '../support/signallingClient.js';
import { startTestServer, type TestServer } from '../support/server.js';

let srv: TestServer;
t.before(async () => {
  srv = await startTestServer({ media: { workers: 2 } });
});
t.teardown(async () => {
  await srv.stop();
  releaseNativePeers();
});

async function newRoom(): Promise<string> {
  return (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } })).body.id;
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test('two participants exchange audio and video RTP through the real worker', async (t) => {
  const roomId = await newRoom();
  const doctor = await MediaPeer.joinAs(srv, roomId, 'doc', 'practitioner');
  const patient = await MediaPeer.joinAs(srv, roomId, 'pat', 'patient');
  t.teardown(() => {
    doctor.close();
    patient.close();
  });
  await doctor.publish();
  await patient.publish();
  const [doctorSees, patientSees] = await Promise.all([doctor.subscribe(2), patient.subscribe(2)]);
  t.same(doctorSees.map((c) => c.kind).sort(), ['audio', 'video']);
  t.same(patientSees.map((c) => c.kind).sort(), ['audio', 'video']);
  await Promise.all([
    doctor.subscriber!.waitForMedia('audio'),
    doctor.subscriber!.waitForMedia('video'),
    patient.subscriber!.waitForMedia('audio'),
    patient.subscriber!.waitForMedia('video'),
  ]);
  await settle(1500);
  for (const peer of [doctor, patient]) {
    const received = peer.subscriber!.stats();
    const audio = received.streams.filter((s) => s.kind === 'audio');
    const video = received.streams.filter((s) => s.kind === 'video');
    t.ok(audio.reduce((n, s) => n + s.packets, 0) > 40, `${peer.id} received audio packets`);
    t.ok(video.reduce((n, s) => n + s.packets, 0) > 40, `${peer.id} received video packets`);
    t.ok(
      video.some((s) => s.keyframes > 0),
      `${peer.id} received a keyframe`,
    );
    t.ok(received.lost / Math.max(1, received.expected) < 0.05, `${peer.id} lost under 5% on loopback`);
  }
  // The metrics see the forwarded bitrate, both ways.
  const metrics = await (await fetch(`${srv.url}/metrics`)).text();
  const bitrate = (direction: string) =>
    Number(
      new RegExp(`^sfu_transport_bitrate_bps\\{direction="${direction}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ??
        0,
    );
  t.ok(bitrate('in') > 100_000, 'inbound bitrate is counted');
  t.ok(bitrate('out') > 100_000, 'outbound bitrate is counted');
  t.match(metrics, /^sfu_consumers\{kind="video"\} [1-9]/m, 'consumers are counted');
  // The server's counters agree that what was sent was forwarded.
  const stats = await doctor.client.request('getStats', {
    transportId: (await doctor.client.request('createTransport', { direction: 'recv' })).id,
  });
  t.ok(Array.isArray(stats.stats));
});

t.test(
  'a peer of room B asking for a producer of room A is refused, exactly as for a missing one',
  async (t) => {
    const roomA = await newRoom();
    const roomB = await newRoom();
    const alice = await MediaPeer.joinAs(srv, roomA, 'alice', 'practitioner');
    const mallory = await MediaPeer.joinAs(srv, roomB, 'mallory', 'patient');
    t.teardown(() => {
      alice.close();
      mallory.close();
    });
    await alice.publish({ video: false });
    await mallory.client.request('setRtpCapabilities', { rtpCapabilities: {} }).catch(() => undefined);
    await mallory.client.request('createTransport', { direction: 'recv' });
    const attempt = async (producerId: string) => {
      try {
        await mallory.client.request('consume', { producerId });
        return 'consumed';
      } catch (err) {
        return (err as RequestError).code;
      }
    };
    t.equal(await attempt(alice.producerIds[0]!), 'PRODUCER_NOT_FOUND');
    t.equal(
      await attempt('00000000-0000-0000-0000-000000000000'),
      'PRODUCER_NOT_FOUND',
      'same answer as a missing one',
    );
    t.equal(mallory.consumerAnnouncements().length, 0, 'nothing from room A was announced to room B');
    // Foreign consumer ids are not usable either.
    await t.rejects(mallory.client.request('resumeConsumer', { consumerId: 'foreign-consumer' }), {
      code: 'CONSUMER_NOT_FOUND',
    });
  },
);

t.test('a reconnecting media peer keeps its identity and its media keeps flowing', async (t) => {
  const roomId = await newRoom();
  const doctor = await MediaPeer.joinAs(srv, roomId, 'doc', 'practitioner');
  const patient = await MediaPeer.joinAs(srv, roomId, 'pat', 'patient');
  t.teardown(() => {
    doctor.close();
    patient.close();
  });
  const patientJoin = patient.client.notifications;
  t.ok(patientJoin);
  await patient.publish({ video: false });
  await doctor.subscribe(1);
  await doctor.subscriber!.waitForMedia('audio');
  // The patient's signalling drops; its media transport stays up during the grace period.
  const participantsBefore = (await srv.rest<{ id: string }[]>('GET', `/v1/rooms/${roomId}/participants`))
    .body;
  patient.client.ws.terminate();
  await doctor.client.waitFor(
    'participantUpdated',
    (d) => (d.participant as { connected: boolean }).connected === false,
  );
  const before = doctor.subscriber!.stats().packets;
  await settle(500);
  t.ok(doctor.subscriber!.stats().packets > before, 'media flows while signalling is down');
  t.same(
    (await srv.rest<{ id: string }[]>('GET', `/v1/rooms/${roomId}/participants`)).body
      .map((p) => p.id)
      .sort(),
    participantsBefore.map((p) => p.id).sort(),
  );
});

t.test(
  'a resumed participant gets every consumer it has, including ones created while it was away',
  async (t) => {
    const roomId = await newRoom();
    const doctor = await MediaPeer.joinAs(srv, roomId, 'doc', 'practitioner');
    const patient = await MediaPeer.joinAs(srv, roomId, 'pat', 'patient');
    t.teardown(() => {
      doctor.close();
      patient.close();
    });
    await doctor.client.request('setRtpCapabilities', {
      rtpCapabilities: (await import('../../bench/peer/index.js')).subscriberRtpCapabilities(),
    });
    await doctor.client.request('createTransport', { direction: 'recv' });
    // The doctor's signalling drops; meanwhile the patient starts publishing.
    const token = srv.server.rooms.get(roomId)!.participants.get('doc')!.resumeToken;
    doctor.client.ws.terminate();
    await patient.publish({ video: false });
    const { SignallingClient } = await import('../support/signallingClient.js');
    const again = await SignallingClient.open(srv.wsUrl);
    t.teardown(() => again.close());
    const resumed = await again.request('resume', { resumeToken: token });
    t.equal(resumed.consumers.length, 1, 'the consumer created during the outage is listed');
    t.equal(resumed.consumers[0]!.participantId, 'pat');
    t.equal(resumed.consumers[0]!.kind, 'audio');
  },
);

t.test("a receiver's own layer choice caps what bandwidth adaptation picks", async (t) => {
  const roomId = await newRoom();
  const doctor = await MediaPeer.joinAs(srv, roomId, 'doc', 'practitioner');
  const patient = await MediaPeer.joinAs(srv, roomId, 'pat', 'patient');
  t.teardown(() => {
    doctor.close();
    patient.close();
  });
  await patient.publish();
  const consumers = await doctor.subscribe(2);
  const video = consumers.find((c) => c.kind === 'video')!;
  await doctor.subscriber!.waitForMedia('video');
  await doctor.client.request('setConsumerPreferredLayers', { consumerId: video.id!, spatialLayer: 0 });
  // Let the quality controller run a few of its cycles.
  await settle(3500);
  const consumer = srv.server.rooms.get(roomId)!.participants.get('doc')!.consumers.get(video.id!)!;
  t.equal(consumer.preferredLayers?.spatialLayer, 0, 'the preference stays at the layer the client chose');
  t.equal(consumer.currentLayers?.spatialLayer, 0, 'and the lowest layer is what is forwarded');
});

import t from 'tap';
import { MediaPeer, releaseNativePeers } from '../support/mediaPeer.js';
import { RequestError, type SignallingClient } from '../support/signallingClient.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { subscriberRtpCapabilities } from '../../bench/peer/index.js';

// Connect ahead (instant admission): a waiting participant may create its room transports (and the
// SDK connects them through a warm-up data channel), but nothing of anyone else reaches them and
// nothing of its own reaches anyone before admission. Checked on the server's own objects.

let srv: TestServer;
t.before(async () => {
  srv = await startTestServer();
});
t.teardown(async () => {
  await srv.stop();
  releaseNativePeers();
});

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    return err instanceof RequestError ? err.code : (err as Error).message;
  }
}

const warmUp = (client: SignallingClient, transportId: string, streamId = 1) =>
  client.request('produceData', {
    transportId,
    sctpStreamParameters: { streamId, ordered: true },
    label: 'warm-up',
    protocol: '',
    warmUp: true,
  });

t.test(
  'a waiting patient creates its room transports ahead; its warm-up channel loops back to it alone and closes at admission',
  async (t) => {
    const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: true } }))
      .body.id;
    const doctor = await MediaPeer.joinAs(srv, roomId, 'doc', 'practitioner');
    const patient = await MediaPeer.joinAs(srv, roomId, 'pat', 'patient', { consent: false });
    t.teardown(() => {
      doctor.close();
      patient.close();
    });
    await doctor.publish();
    await doctor.client.request('createTransport', { direction: 'recv', sctp: true });
    const room = srv.server.rooms.get(roomId)!;
    const pat = room.participants.get('pat')!;
    const doc = room.participants.get('doc')!;

    await patient.client.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() });
    const recv = await patient.client.request('createTransport', { direction: 'recv', sctp: true });
    const send = await patient.client.request('createTransport', { direction: 'send', sctp: true });
    t.equal(pat.transports.size, 2, 'the waiting patient holds its two room transports');
    t.equal(pat.consumers.size, 0, 'no consumer of the practitioner on them');

    // Nothing but the warm-up channel: no media, no device data, no consumption.
    t.equal(
      await codeOf(
        patient.client.request('produceData', {
          transportId: send.id,
          sctpStreamParameters: { streamId: 1, ordered: true },
          label: 'tensiometre',
          protocol: 'json',
        }),
      ),
      'NOT_ADMITTED',
      'a data channel to the room waits for admission',
    );
    t.equal(
      await codeOf(patient.client.request('consume', { producerId: doctor.producerIds[0]! })),
      'NOT_ADMITTED',
    );
    t.equal(
      await codeOf(warmUp(patient.client, recv.id)),
      'INVALID_STATE',
      'warm-up on a send transport only',
    );

    const { dataProducerId } = await warmUp(patient.client, send.id);
    const loop = (
      await patient.client.waitFor('dataConsumerAdded', (d) => d.dataProducerId === dataProducerId)
    ).data as { dataConsumerId: string; participantId: string };
    t.equal(loop.participantId, 'pat', 'the warm-up channel comes back to the patient itself');
    t.equal(await codeOf(warmUp(patient.client, send.id, 2)), 'LIMIT_EXCEEDED', 'one warm-up channel');
    await settle(300);
    t.equal(doc.dataConsumers.size, 0, 'the practitioner is offered nothing of the waiting patient');
    t.notOk(
      doctor.client.notifications.some((n) => n.notification === 'dataConsumerAdded'),
      'no dataConsumerAdded reaches the practitioner',
    );

    // Admission: the warm-up channel closes, the transports stay and carry the consultation.
    await patient.client.consent();
    await doctor.client.request('admit', { participantId: 'pat' });
    await patient.client.waitFor('admissionChanged', (d) => d.state === 'admitted');
    await patient.client.waitFor('dataConsumerClosed', (d) => d.dataConsumerId === loop.dataConsumerId);
    t.equal(pat.dataProducers.size, 0, 'the warm-up channel is closed at admission');
    t.same(
      [...pat.transports.keys()].sort(),
      [recv.id, send.id].sort(),
      'the transports created ahead are kept',
    );
    const offered = (await patient.client.waitFor('consumerAdded', (d) => d.participantId === 'doc'))
      .data as { consumerId: string };
    t.ok(pat.consumers.has(offered.consumerId), "the practitioner's media now comes on them");
    t.equal(await codeOf(warmUp(patient.client, send.id, 3)), 'INVALID_STATE', 'no warm-up once admitted');
    t.equal(doc.dataConsumers.size, 0, 'the closed warm-up channel was never offered to the practitioner');
  },
);

t.test(
  "at admission the practitioner's media is announced to the patient before its admission is",
  async (t) => {
    const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: true } }))
      .body.id;
    const doctor = await MediaPeer.joinAs(srv, roomId, 'doc', 'practitioner');
    const patient = await MediaPeer.joinAs(srv, roomId, 'pat', 'patient');
    t.teardown(() => {
      doctor.close();
      patient.close();
    });
    await doctor.publish();
    await patient.client.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() });
    await patient.client.request('createTransport', { direction: 'recv', sctp: true });
    await patient.client.request('createTransport', { direction: 'send', sctp: true });

    await doctor.client.request('admit', { participantId: 'pat' });
    await patient.client.waitFor('admissionChanged', (d) => d.state === 'admitted');
    const order = patient.client.notifications
      .filter(
        (n) =>
          (n.notification === 'consumerAdded' && n.data.participantId === 'doc') ||
          (n.notification === 'admissionChanged' && n.data.state === 'admitted'),
      )
      .map((n) => (n.notification === 'consumerAdded' ? String(n.data.kind) : 'admitted'));
    // The SDK sets its subscriptions up first when they are already announced (docs/sdk.md).
    t.same(order.slice(0, 2).sort(), ['audio', 'video'], "the practitioner's microphone and camera first");
    t.same(order.slice(2), ['admitted'], 'then the admission');
  },
);

import t from 'tap';
import { MediaPeer, releaseNativePeers } from '../support/mediaPeer.js';
import { RequestError } from '../support/signallingClient.js';
import { startTestServer, type TestServer } from '../support/server.js';

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

t.test(
  'a waiting patient receives no RTP and cannot consume; after consent and admission media flows both ways',
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
    const doctorProducer = doctor.producerIds[0]!;

    // Waiting: no media with anyone (its room transports may exist ahead, but carry nothing).
    const ahead = await patient.client.request('createTransport', { direction: 'send' });
    t.equal(
      await codeOf(
        patient.client.request('produce', {
          transportId: ahead.id,
          kind: 'audio',
          rtpParameters: { codecs: [], encodings: [] },
          source: 'microphone',
        }),
      ),
      'NOT_ADMITTED',
    );
    t.equal(await codeOf(patient.client.request('consume', { producerId: doctorProducer })), 'NOT_ADMITTED');

    // The pre-call check loops the patient's own camera and microphone back, and nothing else.
    await patient.publish({ precheck: true });
    const loopback = await patient.subscribe(2, 10_000, { precheck: true });
    t.equal(loopback.length, 2);
    await patient.subscriber!.waitForMedia('video');
    await settle(800);
    t.ok(
      patient.allAnnouncements().every((a) => a.participantId === 'pat'),
      'only its own media is offered to it',
    );
    const ownSsrcs = new Set(patient.subscriber!.stats().streams.map((s) => s.ssrc));
    t.ok(patient.subscriber!.stats().packets > 20, 'its own media comes back');
    const doctorSsrcs = doctor.publisher!.ssrcs;
    t.notOk(ownSsrcs.has(doctorSsrcs.audio!), 'no RTP from the practitioner reaches the waiting patient');
    t.equal(
      doctor.allAnnouncements().length,
      0,
      "the practitioner is not offered the waiting patient's media",
    );
    await patient.client.request('reportPrecheck', {
      rttMs: 3,
      lossRatio: 0,
      uploadKbps: 2500,
      camera: true,
      microphone: true,
    });
    const list = await doctor.client.request('getWaitingList', {});
    t.equal(list.entries[0]?.precheck?.uploadKbps, 2500, 'the practitioner sees the pre-call check result');

    // Consent, then admission: the pre-call check ends and real media flows both ways.
    await patient.client.consent();
    await doctor.client.request('admit', { participantId: 'pat' });
    await patient.client.waitFor('admissionChanged', (d) => d.state === 'admitted');
    await patient.publish();
    const [patientSees, doctorSees] = await Promise.all([patient.subscribe(2), doctor.subscribe(2)]);
    t.ok(
      patientSees.every(
        (c) => patient.allAnnouncements().find((a) => a.consumerId === c.id)?.participantId === 'doc',
      ),
    );
    t.ok(
      doctorSees.every(
        (c) => doctor.allAnnouncements().find((a) => a.consumerId === c.id)?.participantId === 'pat',
      ),
    );
    await Promise.all([
      patient.subscriber!.waitForMedia('audio'),
      patient.subscriber!.waitForMedia('video'),
      doctor.subscriber!.waitForMedia('audio'),
      doctor.subscriber!.waitForMedia('video'),
    ]);
    await settle(500);
    t.ok(patient.subscriber!.stats().packets > 20, 'the admitted patient receives the practitioner');
    t.ok(doctor.subscriber!.stats().packets > 20, 'the practitioner receives the admitted patient');
  },
);

import t from 'tap';
import { randomInt } from 'node:crypto';
import { SignallingClient, RequestError } from '../support/signallingClient.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { subscriberRtpCapabilities } from '../../bench/peer/index.js';
import { rtpParameters } from '../fuzz/signallingSession.js';

/**
 * Device sources on a live server: who may publish them (the device holder's side), who receives
 * them (the practitioner), what a stethoscope producer must declare, the practitioner's request,
 * and the journal of device use. The rules are the permission table's (docs/authorization.md).
 */
async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    return err instanceof RequestError ? err.code : (err as Error).message;
  }
}

interface Journal {
  records: { type: string; data: Record<string, unknown> }[];
  verification: { ok: boolean };
}

let srv: TestServer;
t.before(async () => {
  srv = await startTestServer({ quality: { enabled: false } });
});
t.teardown(() => srv.stop());

type Role = 'practitioner' | 'patient' | 'assistant' | 'observer';

async function joinAs(roomId: string, participantId: string, role: Role) {
  const client = await SignallingClient.open(srv.wsUrl);
  await client.request('join', { token: await srv.token({ room: roomId, participantId, role }) });
  return client;
}

/** A send and a receive transport (with SCTP), and capabilities to receive. */
async function transports(client: SignallingClient): Promise<string> {
  await client.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() });
  await client.request('createTransport', { direction: 'recv', sctp: true });
  return (await client.request('createTransport', { direction: 'send', sctp: true })).id;
}

/** Opus as a stethoscope must be sent: FEC on, DTX off, a ceiling of at least 128 kbit/s. */
function stethoscopeParameters(overrides: { usedtx?: number; maxBitrate?: number } = {}) {
  const base = rtpParameters('audio') as {
    codecs: { parameters: Record<string, unknown> }[];
    encodings: Record<string, unknown>[];
  };
  base.codecs[0]!.parameters = { useinbandfec: 1, usedtx: overrides.usedtx ?? 0 };
  base.encodings[0]!.maxBitrate = overrides.maxBitrate ?? 160_000;
  return base as unknown as Record<string, unknown>;
}

function videoParameters(): Record<string, unknown> {
  const params = rtpParameters('video') as { mid: string };
  params.mid = String(randomInt(2, 1000));
  return params;
}

t.test('device sources go from the device holder to the practitioner only, and are journalled', async (t) => {
  const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { maxParticipants: 6 } }))
    .body.id;
  const doctor = await joinAs(roomId, 'doc', 'practitioner');
  const patient = await joinAs(roomId, 'pat', 'patient');
  t.teardown(() => {
    doctor.close();
    patient.close();
  });
  await patient.consent();
  await doctor.request('admit', { participantId: 'pat' });
  const nurse = await joinAs(roomId, 'nurse', 'assistant');
  t.teardown(() => nurse.close());
  await patient.consent('third-party', 'nurse');
  await doctor.request('admit', { participantId: 'nurse' });
  await nurse.waitFor('admissionChanged', (d) => d.state === 'admitted');

  const doctorSend = await transports(doctor);
  await transports(patient);
  const nurseSend = await transports(nurse);

  await t.test('the practitioner asks; the holder is told; no one else may ask', async (t) => {
    await doctor.request('requestDeviceSource', {
      participantId: 'nurse',
      source: 'examination-video',
      deviceType: 'otoscope',
      note: 'oreille droite',
    });
    const asked = await nurse.waitFor('deviceSourceRequested');
    t.same(asked.data, {
      from: 'doc',
      source: 'examination-video',
      deviceType: 'otoscope',
      note: 'oreille droite',
    });
    t.equal(
      await codeOf(patient.request('requestDeviceSource', { participantId: 'nurse', source: 'vital-signs' })),
      'FORBIDDEN_FOR_ROLE',
      'a patient does not ask',
    );
    t.equal(
      await codeOf(doctor.request('requestDeviceSource', { participantId: 'nobody', source: 'vital-signs' })),
      'NOT_FOUND',
    );
    t.equal(
      await codeOf(
        doctor.request('requestDeviceSource', {
          participantId: 'nurse',
          source: 'examination-audio',
          deviceType: 'otoscope',
        }),
      ),
      'MESSAGE_INVALID',
      'an otoscope does not feed examination audio',
    );
  });

  let otoscopeId = '';
  await t.test(
    'the assistant publishes an otoscope: the practitioner receives it, the patient does not',
    async (t) => {
      t.equal(
        await codeOf(
          nurse.request('produce', {
            transportId: nurseSend,
            kind: 'video',
            rtpParameters: videoParameters(),
            source: 'examination-video',
          }),
        ),
        'MESSAGE_INVALID',
        'a device source names its device',
      );
      t.equal(
        await codeOf(
          nurse.request('produce', {
            transportId: nurseSend,
            kind: 'video',
            rtpParameters: videoParameters(),
            source: 'camera',
            deviceType: 'otoscope',
          }),
        ),
        'MESSAGE_INVALID',
        'a camera is not a device source',
      );
      otoscopeId = (
        await nurse.request('produce', {
          transportId: nurseSend,
          kind: 'video',
          rtpParameters: videoParameters(),
          source: 'examination-video',
          deviceType: 'otoscope',
        })
      ).producerId;
      const added = await doctor.waitFor('consumerAdded', (d) => d.producerId === otoscopeId);
      t.equal(added.data.source, 'examination-video');
      t.equal(added.data.deviceType, 'otoscope', 'the practitioner knows which device it sees');
      t.notOk(
        patient.notifications.some(
          (n) =>
            n.notification === 'consumerAdded' &&
            (n.data as { producerId: string }).producerId === otoscopeId,
        ),
        'the patient gets no consumer of the examination video',
      );
      t.equal(
        await codeOf(patient.request('consume', { producerId: otoscopeId })),
        'CANNOT_CONSUME',
        'nor can it ask for one',
      );
    },
  );

  await t.test('the practitioner may not publish a device source', async (t) => {
    t.equal(
      await codeOf(
        doctor.request('produce', {
          transportId: doctorSend,
          kind: 'video',
          rtpParameters: videoParameters(),
          source: 'examination-video',
          deviceType: 'dermatoscope',
        }),
      ),
      'FORBIDDEN_FOR_ROLE',
    );
  });

  await t.test('a stethoscope must be sent with its profile: FEC on, DTX off, >= 128 kbit/s', async (t) => {
    const produce = (params: Record<string, unknown>) =>
      nurse.request('produce', {
        transportId: nurseSend,
        kind: 'audio',
        rtpParameters: params,
        source: 'examination-audio',
        deviceType: 'stethoscope',
      });
    t.equal(await codeOf(produce(stethoscopeParameters({ usedtx: 1 }))), 'RTP_PARAMETERS_INVALID', 'DTX on');
    t.equal(
      await codeOf(produce(stethoscopeParameters({ maxBitrate: 64_000 }))),
      'RTP_PARAMETERS_INVALID',
      'a voice bitrate',
    );
    t.equal(
      await codeOf(produce(rtpParameters('audio') as unknown as Record<string, unknown>)),
      'RTP_PARAMETERS_INVALID',
      'a microphone profile',
    );
    const { producerId } = await produce(stethoscopeParameters());
    const added = await doctor.waitFor('consumerAdded', (d) => d.producerId === producerId);
    t.equal(added.data.source, 'examination-audio');
  });

  await t.test('vital signs: a device channel to the practitioner, named by its device', async (t) => {
    t.equal(
      await codeOf(
        nurse.request('produceData', {
          transportId: nurseSend,
          sctpStreamParameters: { streamId: 3, ordered: true },
          label: 'vital-signs',
          protocol: 'teleconsult.vitals.v1',
          source: 'vital-signs',
          deviceType: 'otoscope',
        }),
      ),
      'MESSAGE_INVALID',
    );
    const { dataProducerId } = await nurse.request('produceData', {
      transportId: nurseSend,
      sctpStreamParameters: { streamId: 4, ordered: true },
      label: 'vital-signs',
      protocol: 'teleconsult.vitals.v1',
      source: 'vital-signs',
      deviceType: 'pulse-oximeter',
    });
    const added = await doctor.waitFor('dataConsumerAdded', (d) => d.dataProducerId === dataProducerId);
    t.equal(added.data.source, 'vital-signs');
    t.equal(added.data.deviceType, 'pulse-oximeter');
    t.notOk(
      patient.notifications.some((n) => n.notification === 'dataConsumerAdded'),
      'the patient receives no readings',
    );
  });

  await t.test('the journal says which device, by whom, for how long; never a reading', async (t) => {
    await nurse.request('closeProducer', { producerId: otoscopeId });
    let got: Journal | undefined;
    for (let i = 0; i < 50 && !got?.records.some((r) => r.type === 'device.stopped'); i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 50));
      got = (await srv.rest<Journal>('GET', `/v1/rooms/${roomId}/journal`)).body;
    }
    if (!got) throw new Error('no journal');
    t.ok(got.verification.ok, 'the chain verifies');
    const of = (type: string) => got.records.filter((r) => r.type === type).map((r) => r.data);
    t.same(of('device.requested')[0], {
      requestedBy: 'doc',
      participantId: 'nurse',
      source: 'examination-video',
      deviceType: 'otoscope',
    });
    const started = of('device.started');
    t.same(
      started.map((d) => [d.participantId, d.role, d.source, d.deviceType]),
      [
        ['nurse', 'assistant', 'examination-video', 'otoscope'],
        ['nurse', 'assistant', 'examination-audio', 'stethoscope'],
        ['nurse', 'assistant', 'vital-signs', 'pulse-oximeter'],
      ],
    );
    const stopped = of('device.stopped');
    t.equal(stopped.length, 1);
    t.equal(stopped[0]!.useId, otoscopeId);
    t.type(stopped[0]!.durationS, 'number');
  });
});

t.test('an observer neither publishes nor receives device sources', async (t) => {
  const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { maxParticipants: 6 } }))
    .body.id;
  const doctor = await joinAs(roomId, 'doc', 'practitioner');
  const patient = await joinAs(roomId, 'pat', 'patient');
  t.teardown(() => {
    doctor.close();
    patient.close();
  });
  await patient.consent();
  await doctor.request('admit', { participantId: 'pat' });
  const observer = await joinAs(roomId, 'obs', 'observer');
  t.teardown(() => observer.close());
  await patient.consent('third-party', 'obs');
  await doctor.request('admit', { participantId: 'obs' });
  await observer.waitFor('admissionChanged', (d) => d.state === 'admitted');
  await transports(doctor);
  const observerSend = await transports(observer);
  const patientSend = await transports(patient);
  t.equal(
    await codeOf(
      observer.request('produce', {
        transportId: observerSend,
        kind: 'video',
        rtpParameters: videoParameters(),
        source: 'examination-video',
        deviceType: 'dermatoscope',
      }),
    ),
    'FORBIDDEN_FOR_ROLE',
  );
  const { producerId } = await patient.request('produce', {
    transportId: patientSend,
    kind: 'video',
    rtpParameters: videoParameters(),
    source: 'examination-video',
    deviceType: 'dermatoscope',
  });
  await doctor.waitFor('consumerAdded', (d) => d.producerId === producerId);
  t.notOk(
    observer.notifications.some(
      (n) =>
        n.notification === 'consumerAdded' && (n.data as { producerId: string }).producerId === producerId,
    ),
    'the patient holding a device: its examination video reaches the practitioner, not the observer',
  );
});

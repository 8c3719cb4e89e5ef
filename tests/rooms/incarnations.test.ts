import t from 'tap';
import { startTestServer, type TestServer } from '../support/server.js';
import { RequestError, SignallingClient } from '../support/signallingClient.js';
import { subscriberRtpCapabilities } from '../../bench/peer/index.js';
import { metricValue } from '../hostile/metrics.js';
import { rtpParameters } from '../fuzz/signallingSession.js';
import type { Participant } from '../../src/rooms/participant.js';

/**
 * A person who joins again is a new incarnation: the old socket, its grace timer and anything else
 * holding the old one must never act on the new one (docs/closures.md).
 */
let srv: TestServer;
t.before(async () => {
  srv = await startTestServer({ auth: { resumeGraceS: 1 }, quality: { enabled: false } });
});
t.teardown(() => srv.stop());

interface Journal {
  records: { type: string; data: Record<string, unknown> }[];
}

async function joinAs(
  roomId: string,
  participantId: string,
  role: 'practitioner' | 'patient' | 'observer' | 'assistant',
) {
  const client = await SignallingClient.open(srv.wsUrl);
  const joined = await client.request('join', {
    token: await srv.token({ room: roomId, participantId, role }),
  });
  return { client, joined };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    return err instanceof RequestError ? err.code : (err as Error).message;
  }
}

for (const oldSocket of ['answers the close', 'is silent, then dies'] as const) {
  t.test(`the old socket of a re-joined observer (${oldSocket}) cannot remove the new one`, async (t) => {
    const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } }))
      .body.id;
    t.teardown(() => srv.rest('DELETE', `/v1/rooms/${roomId}`));
    const doctor = await joinAs(roomId, 'doc', 'practitioner');
    const patient = await joinAs(roomId, 'pat', 'patient');
    t.teardown(() => [doctor, patient].forEach((p) => p.client.close()));
    await patient.client.consent();

    const first = await joinAs(roomId, 'obs', 'observer');
    await patient.client.consent('third-party', 'obs');
    await first.client.waitFor('admissionChanged', (d) => d.state === 'admitted');
    // A silent client reads nothing: the server's close reaches no one until the socket dies.
    if (oldSocket === 'is silent, then dies') first.client.ws.pause();

    const second = await joinAs(roomId, 'obs', 'observer');
    t.teardown(() => second.client.close());
    await patient.client.waitFor('consentRequested', (d) => d.participantId === 'obs');
    await patient.client.consent('third-party', 'obs');
    await second.client.waitFor('admissionChanged', (d) => d.state === 'admitted');
    await second.client.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() });
    await second.client.request('createTransport', { direction: 'recv' });
    if (oldSocket === 'is silent, then dies') first.client.ws.terminate();
    await first.client.closed;

    // Past the old incarnation's grace period (1 s), the new one is still there and still reachable.
    await new Promise((resolve) => setTimeout(resolve, 1800));
    const listed = await srv.rest<{ id: string; state: string }[]>('GET', `/v1/rooms/${roomId}/participants`);
    t.same(
      listed.body.filter((p) => p.id === 'obs').map((p) => p.state),
      ['admitted'],
      'REST lists the new incarnation, once',
    );
    const journal = await srv.rest<Journal>('GET', `/v1/rooms/${roomId}/journal`);
    const lefts = journal.body.records.filter(
      (r) => r.type === 'participant.left' && r.data.participantId === 'obs',
    );
    t.same(
      lefts.map((r) => r.data.reason),
      ['replaced'],
      'the journal says the old one was replaced, and no timeout',
    );

    t.equal(
      await codeOf(
        patient.client.request('withdrawConsent', { purpose: 'third-party', coversParticipantId: 'obs' }),
      ),
      'ok',
      "the patient's withdrawal reaches the new incarnation",
    );
    t.equal(await second.client.closed, 4000, 'which is cut off');
    const after = await srv.rest<{ id: string }[]>('GET', `/v1/rooms/${roomId}/participants`);
    t.notOk(
      after.body.some((p) => p.id === 'obs'),
      'and gone from REST',
    );
    const room = srv.server.rooms.get(roomId);
    t.equal(room?.participants.get('obs'), undefined, 'and from the room');
  });
}

t.test('REST removal reaches a re-joined participant', async (t) => {
  const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } }))
    .body.id;
  t.teardown(() => srv.rest('DELETE', `/v1/rooms/${roomId}`));
  const doctor = await joinAs(roomId, 'doc', 'practitioner');
  t.teardown(() => doctor.client.close());
  const first = await joinAs(roomId, 'pat', 'patient');
  const second = await joinAs(roomId, 'pat', 'patient');
  t.teardown(() => second.client.close());
  await first.client.closed;
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const removed = await srv.rest('DELETE', `/v1/rooms/${roomId}/participants/pat`);
  t.equal(removed.status, 204);
  t.equal(await second.client.closed, 4000);
  t.equal(await metricValue(srv.url, 'sfu_ws_connections'), 1, 'only the doctor is still connected');
});

t.test(
  "a leaver's media stops reaching the others the moment it leaves, not when the worker says so",
  async (t) => {
    const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } }))
      .body.id;
    t.teardown(() => srv.rest('DELETE', `/v1/rooms/${roomId}`));
    const doctor = await joinAs(roomId, 'doc', 'practitioner');
    const patient = await joinAs(roomId, 'pat', 'patient');
    t.teardown(() => [doctor, patient].forEach((p) => p.client.close()));
    await patient.client.consent();
    const nurse = await joinAs(roomId, 'nurse', 'assistant');
    t.teardown(() => nurse.client.close());
    await patient.client.consent('third-party', 'nurse');
    await nurse.client.waitFor('admissionChanged', (d) => d.state === 'admitted');

    await patient.client.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() });
    await patient.client.request('createTransport', { direction: 'recv' });
    await nurse.client.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() });
    const send = await nurse.client.request('createTransport', { direction: 'send' });
    await nurse.client.requestRaw('produce', {
      transportId: send.id,
      kind: 'audio',
      rtpParameters: rtpParameters('audio'),
      source: 'microphone',
    });
    const announced = (await patient.client.waitFor('consumerAdded', (d) => d.participantId === 'nurse'))
      .data;

    // Synchronously, as the room reports the removal: the worker's own producerclose cannot have come yet.
    const room = srv.server.rooms.get(roomId)!;
    const receiver = room.participants.get('pat')!;
    const openAtRemoval = new Promise<string[]>((resolve) =>
      room.events.once('removed', (leaver: Participant) =>
        resolve(
          [...receiver.consumers.values()]
            .filter((c) => !c.closed && (c.appData as { participantId: string }).participantId === leaver.id)
            .map((c) => c.id),
        ),
      ),
    );
    const closedNotice = patient.client.waitFor(
      'consumerClosed',
      (d) => d.consumerId === announced.consumerId,
    );
    await patient.client.request('withdrawConsent', { purpose: 'third-party', coversParticipantId: 'nurse' });
    t.same(
      await openAtRemoval,
      [],
      "no consumer of the nurse's media is open once the nurse is out of the room",
    );
    t.equal((await closedNotice).data.consumerId, announced.consumerId, 'and the patient is told');
  },
);

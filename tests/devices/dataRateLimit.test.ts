import t from 'tap';
import { SignallingClient } from '../support/signallingClient.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { DataPeer, closeAllPeers, subscriberRtpCapabilities } from '../../bench/peer/index.js';
import type { RemoteSctpParams, RemoteTransportParams } from '../../bench/peer/index.js';

/**
 * The server's own rate limit on data channels (src/rooms/dataRateGuard.ts), with real
 * node-datachannel peers over SCTP: a device holder's vital-signs channel at the SDK's pace gets
 * every reading through in order; a flood from it is held back (the worker drops it, the metric
 * counts the drops) and, as it goes on, the channel is closed with DATA_RATE_EXCEEDED.
 */
const CHECK_MS = 100;
const FLOOD_CLOSE_S = 1;

let srv: TestServer;
t.before(async () => {
  srv = await startTestServer({
    quality: { enabled: false },
    dataChannels: { checkIntervalMs: CHECK_MS, floodCloseS: FLOOD_CLOSE_S },
  });
});
t.teardown(async () => {
  await srv.stop();
  closeAllPeers();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Transport = RemoteTransportParams & { id: string; sctpParameters: RemoteSctpParams };

async function joinAs(roomId: string, participantId: string, role: 'practitioner' | 'patient') {
  const client = await SignallingClient.open(srv.wsUrl);
  await client.request('join', { token: await srv.token({ room: roomId, participantId, role }) });
  return client;
}

async function metric(name: string, channel: string): Promise<number> {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{channel="${channel}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

function reading(seq: number): string {
  return JSON.stringify({
    type: 'spo2',
    value: 97,
    unit: '%',
    seq,
    timestamp: Date.now(),
    deviceType: 'pulse-oximeter',
  });
}

t.test('a vital-signs channel: readings at the SDK pace pass in order; a flood is cut', async (t) => {
  const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', {})).body.id;
  const doctor = await joinAs(roomId, 'doc', 'practitioner');
  const patient = await joinAs(roomId, 'pat', 'patient');
  t.teardown(() => {
    doctor.close();
    patient.close();
  });
  await patient.consent();
  await doctor.request('admit', { participantId: 'pat' });
  await patient.waitFor('admissionChanged', (d) => d.state === 'admitted');

  await doctor.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() });
  const doctorRecv = (await doctor.request('createTransport', {
    direction: 'recv',
    sctp: true,
  })) as unknown as Transport;
  const patientSend = (await patient.request('createTransport', {
    direction: 'send',
    sctp: true,
  })) as unknown as Transport;
  t.equal(
    patientSend.sctpParameters.maxMessageSize,
    16384,
    'the transport advertises dataChannels.maxMessageBytes',
  );

  const STREAM = 1;
  const oximeter = new DataPeer({ name: 'oximeter', streams: [{ streamId: STREAM, label: 'vital-signs' }] });
  t.teardown(() => oximeter.close());
  await patient.request('connectTransport', {
    transportId: patientSend.id,
    dtlsParameters: oximeter.offer(),
  });
  oximeter.connect(patientSend);
  const { dataProducerId } = await patient.request('produceData', {
    transportId: patientSend.id,
    sctpStreamParameters: { streamId: STREAM, ordered: true },
    label: 'vital-signs',
    protocol: 'teleconsult.vitals.v1',
    source: 'vital-signs',
    deviceType: 'pulse-oximeter',
  });
  await oximeter.waitOpen(STREAM);

  const added = await doctor.waitFor('dataConsumerAdded', (d) => d.dataProducerId === dataProducerId);
  const doctorStream = (added.data.sctpStreamParameters as { streamId: number }).streamId;
  const screen = new DataPeer({
    name: 'practitioner',
    streams: [{ streamId: doctorStream, label: 'vital-signs' }],
    keep: 100_000,
  });
  t.teardown(() => screen.close());
  await doctor.request('connectTransport', {
    transportId: doctorRecv.id,
    dtlsParameters: screen.offer(),
  });
  screen.connect(doctorRecv);
  await screen.waitOpen(doctorStream);
  const droppedBefore = await metric('sfu_data_messages_dropped_total', 'vital-signs');

  await t.test('in-order readings under the limit all arrive', async (t) => {
    // The SDK's limit: a burst of 10, then 5 a second.
    let seq = 0;
    for (let i = 0; i < 10; i++) t.ok(oximeter.send(STREAM, reading(++seq)));
    for (let i = 0; i < 10; i++) {
      await sleep(200);
      t.ok(oximeter.send(STREAM, reading(++seq)));
    }
    for (let i = 0; i < 50 && screen.received(doctorStream).messages < seq; i++) await sleep(50);
    const got = screen
      .received(doctorStream)
      .last.map((m) => (JSON.parse(m.toString()) as { seq: number }).seq);
    t.same(
      got,
      Array.from({ length: seq }, (_, i) => i + 1),
      'every reading, in order',
    );
    t.equal(await metric('sfu_data_messages_dropped_total', 'vital-signs'), droppedBefore, 'nothing dropped');
  });

  await t.test('a flood is held back, counted, then closed with DATA_RATE_EXCEEDED', async (t) => {
    const before = screen.received(doctorStream).messages;
    let sent = 0;
    // 100 messages every 20 ms (about 5,000 a second) until the server closes the channel.
    const floodUntil = performance.now() + (FLOOD_CLOSE_S + 3) * 1000;
    while (
      performance.now() < floodUntil &&
      !patient.notifications.some((n) => n.notification === 'dataProducerClosed')
    ) {
      for (let i = 0; i < 100; i++) if (oximeter.send(STREAM, reading(1000 + sent))) sent++;
      await sleep(20);
    }
    const closed = await patient.waitFor('dataProducerClosed', (d) => d.dataProducerId === dataProducerId);
    t.same(closed.data, { dataProducerId, code: 'DATA_RATE_EXCEEDED' }, 'the sender is told why');
    await doctor.waitFor('dataConsumerClosed', (d) => d.dataConsumerId === added.data.dataConsumerId);
    await sleep(300);
    const forwarded = screen.received(doctorStream).messages - before;
    t.ok(sent > 1000, `the flood was sent (${sent} messages)`);
    t.ok(forwarded < sent / 4, `most of it never reached the practitioner (${forwarded} of ${sent})`);
    const dropped = (await metric('sfu_data_messages_dropped_total', 'vital-signs')) - droppedBefore;
    t.ok(dropped > 0, `the metric counts the drops (${dropped})`);
    t.ok(dropped + forwarded <= sent, 'drops and forwarded messages are within what was sent');
    t.equal(await metric('sfu_data_producers_flood_closed_total', 'vital-signs'), 1, 'one flood closed');
  });
});

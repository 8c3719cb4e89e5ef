import t from 'tap';
import type { types } from 'mediasoup';
import { MediaPeer, releaseNativePeers } from '../support/mediaPeer.js';
import { SignallingClient } from '../support/signallingClient.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { subscriberRtpCapabilities, type RemoteTransportParams } from '../../bench/peer/index.js';
import { Rng, fuzzSeed } from '../fuzz/generator.js';
import { NackingReceiver } from './nackingReceiver.js';
import { UdpRelay } from './udpRelay.js';
import { sleep } from './stats.js';

/**
 * Chaos: 5% of the video RTP packets from the server to a subscriber are dropped by a relay on the
 * path. The subscriber NACKs what is missing (as browsers do) and the server's consumer retransmits
 * from its buffer: the loss left after repair is far below the relay's drop rate, and the
 * consumer's own stats show the NACKs it received and the packets it retransmitted.
 */
const DROP_RATE = 0.05;
const RUN_MS = 6000;
const seed = fuzzSeed();

let srv: TestServer;
t.before(async () => {
  srv = await startTestServer({ quality: { enabled: false } });
});
t.teardown(async () => {
  await srv.stop();
  releaseNativePeers();
});

t.test('NACK and retransmission repair 5% packet loss on the way to a subscriber', async (t) => {
  t.comment(`packet loss seed ${seed} (replay: FUZZ_SEED=${seed})`);
  const rng = new Rng(seed);
  const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } }))
    .body.id;
  const doctor = await MediaPeer.joinAs(srv, roomId, 'doc', 'practitioner');
  t.teardown(() => doctor.close());
  await doctor.publish();

  const patient = await SignallingClient.open(srv.wsUrl);
  t.teardown(() => patient.close());
  await patient.request('join', {
    token: await srv.token({ room: roomId, participantId: 'pat', role: 'patient' }),
  });
  await patient.consent();
  await patient.waitFor('admissionChanged', (d) => d.state === 'admitted');
  await patient.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() });
  const transport = await patient.request('createTransport', { direction: 'recv' });
  const announced = await patient.waitFor('consumerAdded', (d) => d.kind === 'video');
  const consumerId = announced.data.consumerId as string;
  const receiver = new NackingReceiver({
    kind: 'video',
    rtpParameters: announced.data.rtpParameters as types.RtpParameters,
  });
  t.teardown(() => receiver.close());
  const udp = (transport.iceCandidates as unknown as types.IceCandidate[]).find((c) => c.protocol === 'udp')!;
  const relay = await UdpRelay.start({ address: '127.0.0.1', port: udp.port });
  t.teardown(() => relay.close());
  let videoSeen = 0;
  let videoDropped = 0;
  relay.dropToPeer = (packet, kind) => {
    if (kind !== 'rtp' || packet.readUInt32BE(8) !== receiver.mediaSsrc) return false;
    videoSeen++;
    const drop = rng.chance(DROP_RATE);
    if (drop) videoDropped++;
    return drop;
  };
  await patient.request('connectTransport', {
    transportId: transport.id,
    dtlsParameters: receiver.dtlsParameters,
  });
  receiver.connect(relay.rewrite(transport as unknown as RemoteTransportParams));
  await receiver.waitConnected(15_000);
  await patient.request('resumeConsumer', { consumerId });
  await sleep(RUN_MS);

  const stats = receiver.stats();
  const dropRatio = videoDropped / Math.max(1, videoSeen);
  const residual = stats.lost / Math.max(1, stats.expected);
  const consumer = srv.server.rooms.get(roomId)!.participants.get('pat')!.consumers.get(consumerId)!;
  const outbound = (await consumer.getStats()).find((s) => s.type === 'outbound-rtp') as unknown as {
    nackCount: number;
    nackPacketCount: number;
    packetsRetransmitted: number;
    packetsRepaired: number;
  };
  t.comment(
    `relay dropped ${videoDropped}/${videoSeen} video packets (${(dropRatio * 100).toFixed(1)}%, retransmissions included); ` +
      `subscriber: ${stats.expected} expected, ${stats.repaired} repaired, ${stats.lost} lost after repair ` +
      `(${(residual * 100).toFixed(2)}%), ${stats.nacksSent} NACKs sent; consumer: nackCount ${outbound.nackCount}, ` +
      `nackPacketCount ${outbound.nackPacketCount}, packetsRetransmitted ${outbound.packetsRetransmitted}`,
  );
  t.ok(stats.expected > 300, `${stats.expected} video packets flowed`);
  t.ok(dropRatio > DROP_RATE / 2, 'the relay really dropped packets');
  t.ok(stats.repaired > 0, 'lost packets were repaired by retransmission');
  t.ok(residual < dropRatio / 2, 'loss after repair is well below the drop rate');
  t.ok(outbound.nackCount > 0, "the consumer's stats count the NACKs it received");
  t.ok(outbound.packetsRetransmitted > 0, "the consumer's stats count the packets it retransmitted");
});

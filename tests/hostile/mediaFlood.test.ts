import t from 'tap';
import dgram from 'node:dgram';
import type { types } from 'mediasoup';
import { MediaPeer, releaseNativePeers } from '../support/mediaPeer.js';
import { SignallingClient } from '../support/signallingClient.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { Publisher, subscriberRtpCapabilities, type RemoteTransportParams } from '../../bench/peer/index.js';
import { Rng, fuzzSeed } from '../fuzz/generator.js';
import { UdpRelay } from './udpRelay.js';
import { eventually, sleep } from './stats.js';

/**
 * Hostile packets at the media port (the worker's WebRtcServer UDP port on 127.0.0.1): garbage,
 * fake STUN, fake DTLS and fake RTP from an unknown address, then, from the 5-tuple of a real
 * ICE-validated publisher (through a relay that holds it), replayed SRTP, tampered SRTP and junk.
 * None of it becomes media (the producer's packet count only grows by what the publisher really
 * sent), the transport's byte counter shows it arrived, and a real call on the same worker keeps
 * flowing during and after. The flood is bounded: at most FLOOD_PACKETS packets, at most FLOOD_MS.
 */
const FLOOD_PACKETS = 40_000;
const FLOOD_MS = 4000;
const seed = fuzzSeed();

let srv: TestServer;
t.before(async () => {
  srv = await startTestServer({ quality: { enabled: false } });
});
t.teardown(async () => {
  await srv.stop();
  releaseNativePeers();
});

async function newRoom(): Promise<string> {
  return (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } })).body.id;
}

function stunLike(rng: Rng): Buffer {
  const user = rng.bytes(8).toString('hex');
  const attr = Buffer.alloc(4 + user.length);
  attr.writeUInt16BE(0x0006, 0);
  attr.writeUInt16BE(user.length, 2);
  attr.write(user, 4, 'latin1');
  const head = Buffer.alloc(20);
  head.writeUInt16BE(0x0001, 0);
  head.writeUInt16BE(attr.length + rng.int(64), 2);
  head.writeUInt32BE(0x2112a442, 4);
  rng.bytes(12).copy(head, 8);
  return Buffer.concat([head, attr, rng.bytes(rng.int(32))]);
}

function junk(rng: Rng): Buffer {
  switch (rng.int(4)) {
    case 0:
      return stunLike(rng);
    case 1:
      return Buffer.concat([Buffer.from([22, 0xfe, 0xfd]), rng.bytes(10 + rng.int(200))]); // DTLS-like
    case 2:
      return Buffer.concat([Buffer.from([0x80, 96]), rng.bytes(10 + rng.int(1100))]); // RTP-like
    default:
      return rng.bytes(1 + rng.int(1200));
  }
}

t.test('garbage, replayed and forged packets at the media port are dropped; calls go on', async (t) => {
  t.comment(`media flood seed ${seed} (replay: FUZZ_SEED=${seed})`);
  const rng = new Rng(seed);
  const workerPid = srv.server.pool.list()[0]!.worker.pid;

  // A real call that must keep flowing.
  const callRoom = await newRoom();
  const doctor = await MediaPeer.joinAs(srv, callRoom, 'doc', 'practitioner');
  const patient = await MediaPeer.joinAs(srv, callRoom, 'pat', 'patient');
  t.teardown(() => {
    doctor.close();
    patient.close();
  });
  await doctor.publish();
  await patient.publish();
  await Promise.all([doctor.subscribe(2), patient.subscribe(2)]);
  await Promise.all([doctor.subscriber!.waitForMedia('video'), patient.subscriber!.waitForMedia('video')]);

  // A victim publisher whose ICE-validated 5-tuple the relay holds.
  const victimRoom = await newRoom();
  const victim = await SignallingClient.open(srv.wsUrl);
  t.teardown(() => victim.close());
  await victim.request('join', {
    token: await srv.token({ room: victimRoom, participantId: 'victim', role: 'practitioner' }),
  });
  await victim.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() });
  const transport = await victim.request('createTransport', { direction: 'send' });
  const udp = (transport.iceCandidates as unknown as types.IceCandidate[]).find((c) => c.protocol === 'udp')!;
  const mediaPort = udp.port;
  const relay = await UdpRelay.start({ address: '127.0.0.1', port: mediaPort });
  t.teardown(() => relay.close());
  const publisher = new Publisher({ name: 'victim-pub', bindAddress: '127.0.0.1', keyframeIntervalMs: 1000 });
  t.teardown(() => publisher.close());
  await victim.request('connectTransport', {
    transportId: transport.id,
    dtlsParameters: publisher.dtlsParameters,
  });
  publisher.connect(relay.rewrite(transport as unknown as RemoteTransportParams));
  await publisher.waitConnected(15_000);
  const { producerId } = await victim.request('produce', {
    transportId: transport.id,
    kind: 'video',
    rtpParameters: publisher.videoRtpParameters!,
    source: 'camera',
  });
  publisher.startMedia();
  await eventually(() => relay.captured.length > 200, 10_000);

  const member = srv.server.rooms.get(victimRoom)!.participants.get('victim')!;
  const producer = member.producers.get(producerId)!;
  const serverTransport = member.transports.get(transport.id)!;
  const producerPackets = async () =>
    (await producer.getStats()).reduce(
      (n, s) => n + (s as unknown as { packetCount: number }).packetCount,
      0,
    );
  const transportStats = async () =>
    (await serverTransport.getStats())[0] as unknown as { bytesReceived: number; rtpBytesReceived: number };
  const sent = () =>
    publisher
      .stats()
      .streams.filter((s) => s.kind === 'video')
      .reduce((n, s) => n + s.packets, 0);
  const callPackets = () => doctor.subscriber!.stats().packets + patient.subscriber!.stats().packets;

  const before = {
    producer: await producerPackets(),
    sent: sent(),
    transport: await transportStats(),
    call: callPackets(),
  };
  const attacker = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => attacker.bind(0, '127.0.0.1', resolve));
  t.teardown(() => attacker.close());
  const counts = { unknownSource: 0, replayed: 0, tampered: 0, junkOnTuple: 0, injectedBytes: 0 };
  const started = Date.now();
  let callDuringFlood = 0;
  for (let n = 0; n < FLOOD_PACKETS && Date.now() - started < FLOOD_MS; n++) {
    const roll = rng.int(4);
    if (roll === 0) {
      attacker.send(junk(rng), mediaPort, '127.0.0.1');
      counts.unknownSource++;
    } else {
      let packet: Buffer;
      if (roll === 1) {
        packet = Buffer.from(rng.pick(relay.captured));
        counts.replayed++;
      } else if (roll === 2) {
        packet = Buffer.from(rng.pick(relay.captured));
        const at = 12 + rng.int(Math.max(1, packet.length - 12));
        packet[at] = (packet[at] ?? 0) ^ (1 + rng.int(255));
        counts.tampered++;
      } else {
        packet = junk(rng);
        counts.junkOnTuple++;
      }
      counts.injectedBytes += packet.length;
      relay.inject(packet);
    }
    if (n % 20 === 19) await sleep(1); // paced: bounded rate, and lets the real call's packets through
    if (n === 2000) callDuringFlood = callPackets();
  }
  const floodMs = Date.now() - started;
  const duringFlood = callPackets() - callDuringFlood;
  await sleep(500);
  const after = {
    producer: await producerPackets(),
    sent: sent(),
    transport: await transportStats(),
    call: callPackets(),
  };

  const total = counts.unknownSource + counts.replayed + counts.tampered + counts.junkOnTuple;
  const producerGrowth = after.producer - before.producer;
  const sentGrowth = after.sent - before.sent;
  const bytesGrowth = after.transport.bytesReceived - before.transport.bytesReceived;
  t.comment(
    `flood: ${total} packets in ${floodMs} ms (${JSON.stringify(counts)}); producer counted ${producerGrowth} packets ` +
      `while the publisher sent ${sentGrowth}; transport bytesReceived +${bytesGrowth}, rtpBytesReceived +${
        after.transport.rtpBytesReceived - before.transport.rtpBytesReceived
      }; the other call received ${duringFlood} packets during the flood`,
  );
  t.ok(producerGrowth <= sentGrowth + 5, 'no replayed, tampered or junk packet became media');
  t.ok(producerGrowth > 0, "the victim's real media still arrives");
  const rtpGrowth = after.transport.rtpBytesReceived - before.transport.rtpBytesReceived;
  t.ok(
    bytesGrowth > 10 * rtpGrowth,
    "the transport's bytesReceived counts the hostile packets; rtpBytesReceived only real media",
  );
  t.ok(duringFlood > 100, 'the other call kept flowing during the flood');
  t.ok(await eventually(() => callPackets() > after.call + 100, 5000), 'and after it');
  t.equal(srv.server.pool.list()[0]!.worker.pid, workerPid, 'the worker never restarted');
  t.ok(srv.server.pool.allAlive, 'the worker is alive');
});

import t from 'tap';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { MEDIA_CODECS } from '../../src/media/codecs.js';
import { MediaScheduler, Publisher, closeAllPeers } from '../../bench/peer/index.js';
import type { RemoteTransportParams } from '../../bench/peer/index.js';
import { writeRtpHeader } from '../../bench/peer/rtp.js';

/**
 * The worker's DTLS and SRTP, the parts the engine upgrade rebuilt (Debian's OpenSSL through the
 * patched BIO callback, the libsrtp 3 stand-in of the source folder): a WebRTC peer
 * (node-datachannel) completes DTLS with the worker in either role and its media is decrypted;
 * and each SRTP crypto suite mediasoup offers (AES-GCM 256/128, AES-CM with 80/32-bit tags)
 * protects and unprotects RTP between two SRTP plain transports.
 */
t.teardown(closeAllPeers);

let worker: types.Worker;
t.before(async () => {
  worker = await mediasoup.createWorker({ logLevel: 'warn' });
});
t.teardown(() => worker.close());

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await settle(50);
  }
  return check();
}

async function packetsOf(producer: types.Producer): Promise<number> {
  return (await producer.getStats()).reduce((n, s) => n + s.packetCount, 0);
}

for (const peerRole of ['client', 'server'] as const) {
  const workerRole = peerRole === 'client' ? 'server' : 'client';
  t.test(`DTLS with the worker as ${workerRole}: handshake done and media decrypted`, async (t) => {
    const scheduler = new MediaScheduler();
    const server = await worker.createWebRtcServer({ listenInfos: [{ protocol: 'udp', ip: '127.0.0.1' }] });
    const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
    const publisher = new Publisher({
      name: `dtls-${peerRole}`,
      scheduler,
      video: false,
      dtlsRole: peerRole,
    });
    t.teardown(() => {
      publisher.close();
      scheduler.stop();
      router.close();
      server.close();
    });
    const transport = await router.createWebRtcTransport({ webRtcServer: server });
    await transport.connect({ dtlsParameters: publisher.dtlsParameters });
    const params: RemoteTransportParams = {
      iceParameters: transport.iceParameters,
      iceCandidates: transport.iceCandidates,
      dtlsParameters: transport.dtlsParameters,
    };
    publisher.connect(params);
    const producer = await transport.produce({ kind: 'audio', rtpParameters: publisher.audioRtpParameters! });
    await publisher.waitConnected(10_000);
    t.ok(await until(() => transport.dtlsState === 'connected', 5000), 'the worker finished DTLS');
    t.equal(transport.dtlsParameters.role, workerRole, `the worker took the ${workerRole} role`);
    publisher.startMedia();
    t.ok(
      await until(async () => (await packetsOf(producer)) > 10, 5000),
      'the producer counts decrypted RTP',
    );
  });
}

const SUITES: types.SrtpCryptoSuite[] = [
  'AEAD_AES_256_GCM',
  'AEAD_AES_128_GCM',
  'AES_CM_128_HMAC_SHA1_80',
  'AES_CM_128_HMAC_SHA1_32',
];

for (const suite of SUITES) {
  t.test(`SRTP ${suite}: protected by one transport, unprotected by the other`, async (t) => {
    const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
    t.teardown(() => router.close());
    // RTP written from here enters the router through a DirectTransport producer...
    const direct = await router.createDirectTransport();
    const opus = router.rtpCapabilities.codecs!.find((c) => c.mimeType === 'audio/opus')!;
    const ssrc = 0x1234abcd;
    const source = await direct.produce({
      kind: 'audio',
      rtpParameters: {
        codecs: [
          {
            mimeType: opus.mimeType,
            payloadType: opus.preferredPayloadType,
            clockRate: opus.clockRate,
            channels: 2,
          },
        ],
        encodings: [{ ssrc }],
      },
    });
    // ...leaves through an SRTP plain transport to another one on loopback, which decrypts it.
    const plain = () =>
      router.createPlainTransport({
        listenInfo: { protocol: 'udp', ip: '127.0.0.1' },
        rtcpMux: true,
        comedia: false,
        enableSrtp: true,
        srtpCryptoSuite: suite,
      });
    const sender = await plain();
    const receiver = await plain();
    t.equal(sender.srtpParameters?.cryptoSuite, suite);
    await sender.connect({
      ip: '127.0.0.1',
      port: receiver.tuple.localPort,
      srtpParameters: receiver.srtpParameters!,
    });
    await receiver.connect({
      ip: '127.0.0.1',
      port: sender.tuple.localPort,
      srtpParameters: sender.srtpParameters!,
    });
    const consumer = await sender.consume({ producerId: source.id, rtpCapabilities: router.rtpCapabilities });
    const sink = await receiver.produce({ kind: 'audio', rtpParameters: consumer.rtpParameters });

    const packet = Buffer.alloc(12 + 60, 0x5a);
    for (let seq = 0; seq < 50; seq++) {
      writeRtpHeader(
        packet,
        {
          payloadType: opus.preferredPayloadType,
          sequenceNumber: seq,
          timestamp: seq * 960,
          ssrc,
          marker: false,
        },
        {},
      );
      source.send(packet);
      await settle(10);
    }
    t.ok(
      await until(async () => (await packetsOf(sink)) >= 40, 3000),
      'the receiving transport decrypted the RTP',
    );
    const [sent] = await consumer.getStats();
    t.ok((sent?.packetCount ?? 0) >= 40, 'the sending transport protected and sent it');
  });
}

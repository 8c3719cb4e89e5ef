import t from 'tap';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { MEDIA_CODECS } from '../../src/media/codecs.js';
import {
  DelayHistogram,
  MediaScheduler,
  Publisher,
  Subscriber,
  closeAllPeers,
  subscriberRtpCapabilities,
} from '../../bench/peer/index.js';
import type { RemoteTransportParams } from '../../bench/peer/index.js';
import { parseRtp, readProbe, writeProbe, writeRtpHeader } from '../../bench/peer/rtp.js';
import { isVp8KeyframeStart, writeVp8Descriptor, writeVp8FrameHeader } from '../../bench/peer/vp8.js';

// node-datachannel keeps native handles alive after close(); release them so the file can exit.
t.teardown(closeAllPeers);

function paramsOf(transport: types.WebRtcTransport): RemoteTransportParams {
  return {
    iceParameters: transport.iceParameters,
    iceCandidates: transport.iceCandidates,
    dtlsParameters: transport.dtlsParameters,
  };
}

async function until(predicate: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return predicate();
}

void t.test('an RTP packet written by the publisher code parses back with its probe and keyframe', (t) => {
  const buf = Buffer.alloc(1500);
  const offset = writeRtpHeader(
    buf,
    { payloadType: 96, sequenceNumber: 65535, timestamp: 123456, ssrc: 0xdeadbeef, marker: true },
    { mid: '1', absSendTimeMs: 1000, transportSeq: 7 },
  );
  writeVp8Descriptor(buf, offset, true, 300);
  writeVp8FrameHeader(buf, offset + 4, true, 1280, 720, 500);
  writeProbe(buf, offset + 200, 42.5, 9);
  const packet = buf.subarray(0, offset + 200);
  const rtp = parseRtp(packet);
  t.ok(rtp);
  t.equal(rtp?.ssrc, 0xdeadbeef);
  t.equal(rtp?.sequenceNumber, 65535);
  t.equal(rtp?.marker, true);
  t.equal(rtp?.payloadOffset, offset);
  t.same(readProbe(packet, rtp!), { sendTimeMs: 42.5, streamSeq: 9 });
  t.ok(isVp8KeyframeStart(packet, rtp!.payloadOffset, rtp!.payloadEnd));
  t.equal(parseRtp(Buffer.from([1, 2, 3])), undefined, 'a runt packet is refused, not thrown on');
  t.end();
});

void t.test('the delay histogram reports percentiles within its 2 % precision', (t) => {
  const h = new DelayHistogram();
  for (let i = 1; i <= 1000; i++) h.record(i / 10);
  const p = h.percentiles();
  t.ok(Math.abs(p.p50 - 50) / 50 < 0.03, `p50 ${p.p50}`);
  t.ok(Math.abs(p.p99 - 99) / 99 < 0.03, `p99 ${p.p99}`);
  t.equal(h.count, 1000);
  t.end();
});

void t.test('a publisher reaches a subscriber through a real mediasoup router', async (t) => {
  const worker = await mediasoup.createWorker({ logLevel: 'warn' });
  const scheduler = new MediaScheduler();
  const peers: { close(): void }[] = [];
  t.teardown(() => {
    for (const peer of peers) peer.close();
    scheduler.stop();
    worker.close();
  });
  const server = await worker.createWebRtcServer({ listenInfos: [{ protocol: 'udp', ip: '127.0.0.1' }] });
  const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });

  const sendTransport = await router.createWebRtcTransport({ webRtcServer: server });
  const publisher = new Publisher({ name: 'publisher', scheduler });
  peers.push(publisher);
  await sendTransport.connect({ dtlsParameters: publisher.dtlsParameters });
  publisher.connect(paramsOf(sendTransport));
  const audioProducer = await sendTransport.produce({
    kind: 'audio',
    rtpParameters: publisher.audioRtpParameters!,
  });
  const videoProducer = await sendTransport.produce({
    kind: 'video',
    rtpParameters: publisher.videoRtpParameters!,
  });
  await publisher.waitConnected(10_000);
  // The peer's side completes first; the worker's 'connected' follows within a moment.
  for (let i = 0; i < 100 && sendTransport.dtlsState !== 'connected'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.equal(sendTransport.dtlsState, 'connected', 'the server side of the send transport finished DTLS');
  publisher.startMedia();
  // mediasoup 3.27 lets a consumer without bandwidth estimation (this subscriber sends no
  // transport-cc) switch to a simulcast stream only once it can place that stream's frames in
  // time, from its Sender Reports, and re-checks on a stream's first report alone, which comes
  // before the stream can be placed (docs/engine.md). A consumer created while the layers are
  // still starting may then stay below the top one. Consume once every layer has sent and
  // reported: three streams seen, then two report intervals.
  await until(async () => (await videoProducer.getStats()).length === 3, 10_000);
  await new Promise((resolve) => setTimeout(resolve, 2_200));

  const recvTransport = await router.createWebRtcTransport({ webRtcServer: server });
  const rtpCapabilities = subscriberRtpCapabilities();
  t.ok(router.canConsume({ producerId: videoProducer.id, rtpCapabilities }));
  const audioConsumer = await recvTransport.consume({ producerId: audioProducer.id, rtpCapabilities });
  const videoConsumer = await recvTransport.consume({ producerId: videoProducer.id, rtpCapabilities });
  const subscriber = new Subscriber({
    name: 'subscriber',
    scheduler,
    consumers: [audioConsumer, videoConsumer].map((c) => ({
      id: c.id,
      kind: c.kind,
      rtpParameters: c.rtpParameters,
    })),
  });
  peers.push(subscriber);
  await recvTransport.connect({ dtlsParameters: subscriber.dtlsParameters });
  subscriber.connect(paramsOf(recvTransport));
  await subscriber.waitConnected(10_000);
  await subscriber.waitForMedia('audio', 10_000);
  await subscriber.waitForMedia('video', 10_000);

  const topLayerReached = await until(() => videoConsumer.currentLayers?.spatialLayer === 2, 10_000);
  t.ok(topLayerReached, 'the video consumer forwards the top simulcast layer');
  await new Promise((resolve) => setTimeout(resolve, 1500));

  const sent = publisher.stats();
  const received = subscriber.stats();
  const audio = received.streams.find((s) => s.kind === 'audio');
  const video = received.streams.find((s) => s.kind === 'video');
  t.ok(audio && audio.packets > 0, 'audio RTP arrives');
  t.ok(video && video.packets > 0, 'video RTP arrives');
  t.ok(video && video.keyframes > 0, 'a VP8 keyframe arrives and is recognised');
  t.equal(video?.lastKeyframeWidth, 1280, 'the keyframes received are those of the top layer');
  t.equal(video?.ssrc, videoConsumer.rtpParameters.encodings?.[0]?.ssrc, 'routed by the consumer SSRC');
  t.ok(
    sent.streams.every((s) => s.packets > 0),
    'every layer and the audio were sent',
  );
  t.equal(sent.sendFailures, 0);

  const consumerStats = await videoConsumer.getStats();
  const outbound = consumerStats.find((s) => s.type === 'outbound-rtp');
  t.ok(outbound && outbound.packetCount > 0, 'the worker counts forwarded video packets');
  const rttMeasured = await until(async () => {
    const stats = await videoConsumer.getStats();
    return (stats.find((s) => s.type === 'outbound-rtp')?.roundTripTime ?? 0) > 0;
  }, 5000);
  t.ok(rttMeasured, 'the worker computes a round-trip time from our receiver reports');
  const producerStats = await videoProducer.getStats();
  t.equal(producerStats.length, 3, 'the worker sees three simulcast streams');
  t.ok(
    videoConsumer.score.producerScores.every((score) => score > 0),
    'every layer is scored by the worker',
  );

  t.ok(received.delay.count > 0, 'delays were measured');
  t.ok(received.delay.quantile(0.5) > 0, 'the median delay is positive');
  t.ok(received.lost / received.expected < 0.5, 'most packets arrive');

  const requestsBefore = sent.streams.find((s) => s.layer === 2)!.keyframeRequests;
  await videoConsumer.requestKeyFrame();
  const answered = await until(
    () => publisher.stats().streams.find((s) => s.layer === 2)!.keyframeRequests > requestsBefore,
    5000,
  );
  t.ok(answered, 'a PLI from the worker reaches the publisher as a keyframe request');

  publisher.close();
  subscriber.close();
  t.equal(scheduler.size, 0, 'closing leaves nothing on the scheduler');
});

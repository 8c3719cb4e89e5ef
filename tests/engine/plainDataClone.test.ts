import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import t from 'tap';
import { MEDIA_CODECS } from '../../src/media/codecs.js';
import {
  clonePlainData,
  mediasoupUsesCheapCopies,
  mediasoupUtilsModule,
  useCheapCopiesInMediasoup,
} from '../../src/media/plainDataClone.js';

/** Every object and array reachable from a value. */
function objectsIn(value: unknown, into = new Set<object>()): Set<object> {
  if (typeof value === 'object' && value !== null && !into.has(value)) {
    into.add(value);
    for (const child of Object.values(value)) objectsIn(child, into);
  }
  return into;
}

// JSON-like data, with undefined members as mediasoup's optional fields have, and -0 and NaN.
const plainData = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(undefined, null, true, false, -0, Number.NaN),
    fc.double(),
    fc.integer(),
    fc.string(),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string(), tie('value'), { maxKeys: 5 }),
  ),
})).value;

void t.test('plain data is copied exactly as structuredClone copies it, and shares nothing', (t) => {
  fc.assert(
    fc.property(plainData, (value) => {
      const copy = clonePlainData(value);
      assert.deepStrictEqual(copy, structuredClone(value));
      const originals = objectsIn(value);
      for (const object of objectsIn(copy)) assert.ok(!originals.has(object), 'no object is shared');
    }),
    { numRuns: 500 },
  );
  t.pass('500 random values');
  t.end();
});

void t.test('anything that is not plain data gets structuredClone itself', (t) => {
  class Tuple {
    constructor(readonly ip: string) {}
  }
  const cyclic: Record<string, unknown> = { name: 'loop' };
  cyclic.self = cyclic;
  const copy = clonePlainData(cyclic);
  t.equal(copy.self, copy, 'a cycle is kept, not followed forever');
  t.not(copy, cyclic);

  const withInstances = { tuple: new Tuple('127.0.0.1'), at: new Date(0), seen: new Map([['a', 1]]) };
  t.same(clonePlainData(withInstances), structuredClone(withInstances));
  t.equal(
    Object.getPrototypeOf(clonePlainData(withInstances).tuple),
    Object.prototype,
    'an instance becomes plain',
  );
  t.ok(clonePlainData(withInstances).seen instanceof Map);

  t.throws(
    () => clonePlainData({ call: () => 1 }),
    { name: 'DataCloneError' },
    'a function is refused the same way',
  );
  const deep = Array.from({ length: 40 }).reduce<unknown>((inner) => ({ inner }), 0);
  t.same(clonePlainData(deep), deep, 'data deeper than the fast path still copies');
  t.end();
});

void t.test("mediasoup's copies go through the cheap clone and give the same parameters", async (t) => {
  const utils = mediasoupUtilsModule();
  if (!utils) return t.fail("this mediasoup's utils module is not where the product looks for it");
  const publishedClone = utils.clone;
  t.notOk(mediasoupUsesCheapCopies(), 'mediasoup starts with its own copies');

  const worker = await mediasoup.createWorker({ logLevel: 'error' });
  t.teardown(() => {
    utils.clone = publishedClone;
    worker.close();
  });
  const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
  const listenInfos = [{ protocol: 'udp' as const, ip: '127.0.0.1' }];
  const send = await router.createWebRtcTransport({ listenInfos });
  const recv = await router.createWebRtcTransport({ listenInfos });
  const producer = await send.produce({
    kind: 'video',
    rtpParameters: {
      mid: '0',
      codecs: [
        {
          mimeType: 'video/VP8',
          payloadType: 96,
          clockRate: 90000,
          rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'transport-cc' }],
        },
      ],
      headerExtensions: [{ uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', id: 1 }],
      encodings: [{ ssrc: 1111, scalabilityMode: 'L1T3' }, { ssrc: 2222 }, { ssrc: 3333 }],
      rtcp: { cname: 'clone-test' },
    },
  });
  const caps = router.rtpCapabilities;
  const consumeOnce = async (): Promise<types.RtpParameters> => {
    t.ok(router.canConsume({ producerId: producer.id, rtpCapabilities: caps }));
    const consumer = await recv.consume({ producerId: producer.id, rtpCapabilities: caps, paused: true });
    const { mid: _mid, ...rest } = consumer.rtpParameters;
    return { ...rest, encodings: rest.encodings?.map(({ ssrc: _s, rtx: _r, ...e }) => e) };
  };
  const withPublished = await consumeOnce();

  t.ok(useCheapCopiesInMediasoup(), 'the replacement is installed');
  t.ok(useCheapCopiesInMediasoup(), 'installing twice is harmless');
  t.ok(mediasoupUsesCheapCopies(), 'mediasoup now calls the cheap clone');
  t.same(await consumeOnce(), withPublished, 'a consumer gets the same parameters either way');

  const first = producer.consumableRtpParameters;
  first.codecs[0]!.mimeType = 'video/H264';
  first.encodings![0]!.ssrc = 1;
  t.equal(
    producer.consumableRtpParameters.codecs[0]?.mimeType,
    'video/VP8',
    'a getter still hands out a copy',
  );
  t.not(producer.consumableRtpParameters.encodings?.[0]?.ssrc, 1);
  t.equal(utils.clone(undefined), undefined, "mediasoup's undefined stays undefined");
  t.ok(Number.isNaN(utils.clone(Number.NaN)));
});

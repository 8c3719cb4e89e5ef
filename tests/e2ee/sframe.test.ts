import t from 'tap';
import { fromHex, toHex } from '../../src/sdk/e2ee/bytes.js';
import {
  SFrameError,
  decodeHeader,
  deriveKeySalt,
  encodeHeader,
  importSFrameKey,
  keyLabel,
  nonceFor,
  saltLabel,
  sframeDecrypt,
  sframeEncrypt,
} from '../../src/sdk/e2ee/sframe.js';
import { FrameCryptor, clearPrefixLength, codecOf } from '../../src/sdk/e2ee/frameCrypto.js';

// RFC 9605, appendix C.3, cipher_suite 0x0004 (AES_128_GCM_SHA256_128).
const RFC = {
  kid: 0x123,
  ctr: 0x4567,
  baseKey: '000102030405060708090a0b0c0d0e0f',
  keyLabel: '534672616d6520312e30205365637265 74206b65792000000000000001230004',
  saltLabel: '534672616d6520312e30205365637265 742073616c7420000000000000012300 04',
  sframeKey: 'd34f547f4ca4f9a7447006fe7fcbf768',
  sframeSalt: '75234edefe07819026751816',
  metadata: '4945544620534672616d65205747',
  nonce: '75234edefe07819026755d71',
  pt: '64726166742d696574662d736672616d 652d656e63',
  ct: '9901234567b7412c2513a1b66dbb4884 1bbaf17f598751176ad847681a69c6d0 b091c07018ce4adb34eb',
};

t.test('the RFC 9605 test vector for AES_128_GCM_SHA256_128 is reproduced', async (t) => {
  t.equal(toHex(keyLabel(RFC.kid)), toHex(fromHex(RFC.keyLabel)), 'sframe_key_label');
  t.equal(toHex(saltLabel(RFC.kid)), toHex(fromHex(RFC.saltLabel)), 'sframe_salt_label');
  const derived = await deriveKeySalt(RFC.kid, fromHex(RFC.baseKey));
  t.equal(toHex(derived.key), RFC.sframeKey, 'sframe_key');
  t.equal(toHex(derived.salt), RFC.sframeSalt, 'sframe_salt');
  t.equal(toHex(nonceFor(derived.salt, RFC.ctr)), RFC.nonce, 'nonce = salt XOR CTR');
  const key = await importSFrameKey(RFC.kid, fromHex(RFC.baseKey));
  const ct = await sframeEncrypt(key, RFC.ctr, fromHex(RFC.metadata), fromHex(RFC.pt));
  t.equal(toHex(ct), toHex(fromHex(RFC.ct)), 'encrypt(ctr, kid, metadata, pt) == ct');
  const opened = await sframeDecrypt(() => key, fromHex(RFC.metadata), fromHex(RFC.ct));
  t.equal(toHex(opened.plaintext), toHex(fromHex(RFC.pt)), 'decrypt(metadata, ct) == pt');
  t.equal(opened.kid, RFC.kid);
  t.equal(opened.ctr, RFC.ctr);
});

t.test('SFrame headers encode as in RFC 9605 appendix C.1', async (t) => {
  const cases: [number, number, string][] = [
    [0, 0, '00'],
    [7, 7, '77'],
    [0x123, 0x4567, '9901234567'],
    [0x10000, 0xffffffffff, 'ac010000ffffffffff'],
    [0xffffff, 0xff, 'a8ffffffff'],
    [0x1000000, 0, 'b001000000'],
    [0xffffffff, 0x100, 'b9ffffffff0100'],
    [0x100000000, 1, 'c10100000000'],
    [Number.MAX_SAFE_INTEGER, 0, 'e01fffffffffffff'],
  ];
  for (const [kid, ctr, hex] of cases) {
    t.equal(toHex(encodeHeader(kid, ctr)), hex, `kid ${kid.toString(16)} ctr ${ctr.toString(16)}`);
    t.same(decodeHeader(fromHex(hex + 'abcd')), { kid, ctr, length: hex.length / 2 }, `decodes ${hex}`);
  }
});

async function reasonOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'decrypted',
    (err: unknown) => (err instanceof SFrameError ? err.reason : String(err)),
  );
}

t.test('malformed input is a typed error, never a crash', async (t) => {
  const key = await importSFrameKey(1, new Uint8Array(16));
  t.throws(() => decodeHeader(new Uint8Array(0)), SFrameError, 'empty');
  t.throws(() => decodeHeader(fromHex('9901')), SFrameError, 'truncated KID');
  t.throws(() => decodeHeader(fromHex('ff' + '11'.repeat(16))), SFrameError, 'KID beyond 2^53');
  await t.rejects(
    sframeDecrypt(() => key, new Uint8Array(0), fromHex('10')),
    SFrameError,
    'no tag',
  );
  t.equal(
    await reasonOf(sframeDecrypt(() => undefined, new Uint8Array(0), new Uint8Array(40))),
    'unknown-key',
  );
  const sealed = await sframeEncrypt(key, 9, fromHex('aa'), fromHex('0102030405'));
  t.equal(
    await reasonOf(sframeDecrypt(() => key, fromHex('ab'), sealed)),
    'authentication-failed',
    'metadata is authenticated',
  );
  const flipped = new Uint8Array(sealed);
  flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1;
  t.equal(
    await reasonOf(sframeDecrypt(() => key, fromHex('aa'), flipped)),
    'authentication-failed',
    'tag is checked',
  );
  // Random garbage must never throw anything but SFrameError.
  for (let i = 0; i < 200; i++) {
    const junk = crypto.getRandomValues(new Uint8Array(1 + (i % 64)));
    await sframeDecrypt(() => key, new Uint8Array(0), junk).then(
      () => t.fail('garbage decrypted'),
      (err: unknown) => {
        if (!(err instanceof SFrameError)) t.fail(`unexpected error ${String(err)}`);
      },
    );
  }
});

t.test('VP8 keeps its frame tag in clear, Opus nothing', async (t) => {
  t.equal(codecOf('video/VP8'), 'vp8');
  t.equal(codecOf('audio/opus'), 'opus');
  t.equal(codecOf('video/H264'), 'other');
  t.equal(
    clearPrefixLength('vp8', fromHex('1001029d012a8002e001aa')),
    10,
    'keyframe: tag + start code + size',
  );
  t.equal(clearPrefixLength('vp8', fromHex('3102')), 1, 'delta frame: one byte');
  t.equal(clearPrefixLength('opus', fromHex('fc0102')), 0);
  t.equal(clearPrefixLength('other', fromHex('0102')), 0);

  const sender = new FrameCryptor();
  const receiver = new FrameCryptor();
  const baseKey = crypto.getRandomValues(new Uint8Array(16));
  await sender.setSendKey(5, baseKey);
  await receiver.addReceiveKey('alice', 5, baseKey);
  const keyframe = fromHex('1001029d012a8002e001' + '42'.repeat(100));
  const sealed = await sender.encrypt('vp8', keyframe);
  t.ok(sealed, 'encrypted');
  t.equal(
    toHex(sealed!.subarray(0, 10)),
    '1001029d012a8002e001',
    'the keyframe header stays readable by the SFU',
  );
  t.same(decodeHeader(sealed!.subarray(10)), { kid: 5, ctr: 0, length: 1 }, 'then the SFrame header');
  t.notOk(toHex(sealed!).includes('42424242'), 'the picture data is not in clear');
  t.equal(toHex((await receiver.decrypt('alice', 'vp8', sealed!))!), toHex(keyframe), 'round trip');
  const opus = fromHex('fc' + '33'.repeat(60));
  const sealedOpus = await sender.encrypt('opus', opus);
  t.same(decodeHeader(sealedOpus!), { kid: 5, ctr: 1, length: 1 }, 'Opus starts with the SFrame header');
  t.equal(toHex((await receiver.decrypt('alice', 'opus', sealedOpus!))!), toHex(opus));

  const tampered = new Uint8Array(sealed!);
  tampered[0] = (tampered[0] as number) ^ 0x02; // the clear prefix is authenticated too
  t.equal(await receiver.decrypt('alice', 'vp8', tampered), undefined, 'a modified prefix is refused');
  t.equal(await receiver.decrypt('bob', 'opus', sealedOpus!), undefined, 'another sender has no key');
  t.same(receiver.stats.failures, {
    alice: { 'malformed-header': 0, 'unknown-key': 0, 'authentication-failed': 1 },
    bob: { 'malformed-header': 0, 'unknown-key': 1, 'authentication-failed': 0 },
  });
  t.equal(await new FrameCryptor().encrypt('opus', opus), undefined, 'no key: nothing is sent in clear');
});

t.test('a receiver keeps only the newest three key generations of a sender', async (t) => {
  const receiver = new FrameCryptor();
  const sender = new FrameCryptor();
  const keys = [1, 2, 3, 4].map(() => crypto.getRandomValues(new Uint8Array(16)));
  await sender.setSendKey(1, keys[0]!);
  const first = await sender.encrypt('opus', fromHex('01020304'));
  for (const [i, key] of keys.entries()) await receiver.addReceiveKey('alice', i + 1, key);
  t.equal(await receiver.decrypt('alice', 'opus', first!), undefined, 'generation 1 was dropped');
  await sender.setSendKey(4, keys[3]!);
  t.ok(
    await receiver.decrypt('alice', 'opus', (await sender.encrypt('opus', fromHex('0102')))!),
    'generation 4 works',
  );
});

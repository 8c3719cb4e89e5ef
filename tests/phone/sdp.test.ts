import t, { type Test } from 'tap';
import { answerDirection, buildAudioSdp, negotiateAudio, parseAudioSdp } from '../../src/phone/sip/sdp.js';

/** A synchronous subtest, ended when its body returns. */
function check(name: string, body: (t: Test) => void): void {
  void t.test(name, (t) => {
    body(t);
    t.end();
  });
}

const OFFER = [
  'v=0',
  'o=user1 53655765 2353687637 IN IP4 127.0.0.1',
  's=-',
  'c=IN IP4 127.0.0.1',
  't=0 0',
  'm=audio 6000 RTP/AVP 8 0 18 101',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:18 G729/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-15',
  'a=sendrecv',
  '',
].join('\r\n');

check("the offerer's first G.711 codec is chosen, with telephone-event", (t) => {
  const offer = parseAudioSdp(OFFER);
  if (!offer.ok) return void t.fail(offer.reason);
  const negotiated = negotiateAudio(offer.value, ['PCMU', 'PCMA']);
  t.same(negotiated, {
    ok: true,
    value: {
      remoteAddress: '127.0.0.1',
      remotePort: 6000,
      codec: 'PCMA',
      payloadType: 8,
      telephoneEventPt: 101,
      direction: 'sendrecv',
    },
  });
});

check('static payload types without rtpmap are understood, and telephone-event is optional', (t) => {
  const offer = parseAudioSdp('v=0\r\nc=IN IP4 10.1.2.3\r\nm=audio 4000 RTP/AVP 18 0\r\n');
  if (!offer.ok) return void t.fail(offer.reason);
  const negotiated = negotiateAudio(offer.value, ['PCMU', 'PCMA']);
  t.ok(negotiated.ok && negotiated.value.codec === 'PCMU' && negotiated.value.telephoneEventPt === undefined);
});

check('a media-level connection line overrides the session one', (t) => {
  const offer = parseAudioSdp('v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\n');
  t.ok(offer.ok && offer.value.address === '10.0.0.2');
});

check('offers without a usable audio stream are refused', (t) => {
  const noCommon = parseAudioSdp(
    'v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n',
  );
  t.ok(noCommon.ok);
  if (noCommon.ok) t.notOk(negotiateAudio(noCommon.value, ['PCMU', 'PCMA']).ok);
  const declined = parseAudioSdp('v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 0 RTP/AVP 0\r\n');
  t.ok(declined.ok && !negotiateAudio(declined.value, ['PCMU']).ok);
  const noKey = parseAudioSdp('v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\n');
  t.ok(noKey.ok && !negotiateAudio(noKey.value, ['PCMU']).ok, 'RTP/SAVP without a usable SDES key');
  const otherSuite = parseAudioSdp(
    `v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:${Buffer.alloc(46).toString('base64')}\r\n`,
  );
  t.ok(otherSuite.ok && !negotiateAudio(otherSuite.value, ['PCMU']).ok, 'another suite only');
  const sdes = parseAudioSdp(
    `v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:${Buffer.alloc(30, 1).toString('base64')}|2^31\r\n`,
  );
  const negotiated = sdes.ok ? negotiateAudio(sdes.value, ['PCMU']) : undefined;
  t.equal(negotiated?.ok && negotiated.value.srtp?.tag, 7, 'the SDES key and its tag are taken');
  t.notOk(parseAudioSdp('v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 4000 RTP/AVP 96\r\n').ok, 'no audio');
  t.notOk(parseAudioSdp('hello').ok);
  t.notOk(parseAudioSdp('v=0\r\nm=audio 4000 RTP/AVP 0\r\n').ok, 'no connection address');
  t.notOk(parseAudioSdp('v=0\r\nc=IN IP4 x\r\nm=audio 4000 RTP/AVP 300\r\n').ok);
});

check('our answer names one codec and telephone-event and parses back', (t) => {
  const text = buildAudioSdp({
    sessionId: '1',
    version: 1,
    address: '127.0.0.1',
    port: 40000,
    codecs: [{ codec: 'PCMU', pt: 0 }],
    telephoneEventPt: 101,
  });
  t.match(text, /m=audio 40000 RTP\/AVP 0 101\r\n/);
  t.match(text, /a=rtpmap:101 telephone-event\/8000\r\na=fmtp:101 0-15/);
  const back = parseAudioSdp(text);
  t.ok(back.ok && negotiateAudio(back.value, ['PCMU']).ok);
});

check('directions are mirrored in the answer', (t) => {
  t.equal(answerDirection('sendonly'), 'recvonly');
  t.equal(answerDirection('recvonly'), 'sendonly');
  t.equal(answerDirection('sendrecv'), 'sendrecv');
  t.equal(answerDirection('inactive'), 'inactive');
});

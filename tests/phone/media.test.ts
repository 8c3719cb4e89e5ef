import t, { type Test } from 'tap';
import {
  alawToLinear,
  decodeG711,
  encodeG711,
  linearToAlaw,
  linearToUlaw,
  ulawToLinear,
} from '../../src/phone/media/g711.js';
import { AudioMixer } from '../../src/phone/media/mixer.js';
import { OpusToNarrowband } from '../../src/phone/media/opusDecoder.js';
import { DtmfReceiver, parseDtmfInfo } from '../../src/phone/media/rfc4733.js';
import { RtpSender, buildRtp, parseRtp, type RtpPacket } from '../../src/phone/media/rtp.js';
import OpusScript from 'opusscript';

/** A synchronous subtest, ended when its body returns. */
function check(name: string, body: (t: Test) => void): void {
  void t.test(name, (t) => {
    body(t);
    t.end();
  });
}

check('every G.711 code word decodes and re-encodes to itself', (t) => {
  let ulawMismatches = 0;
  let alawMismatches = 0;
  for (let byte = 0; byte < 256; byte++) {
    // 0x7f and 0xff are both zero in μ-law; zero encodes as 0xff.
    if (linearToUlaw(ulawToLinear(byte)) !== byte && byte !== 0x7f) ulawMismatches++;
    if (linearToAlaw(alawToLinear(byte)) !== byte) alawMismatches++;
  }
  t.equal(ulawMismatches, 0);
  t.equal(alawMismatches, 0);
});

check('a tone survives a G.711 round trip with high signal-to-noise ratio', (t) => {
  const samples = Int16Array.from({ length: 800 }, (_, i) =>
    Math.round(12000 * Math.sin((2 * Math.PI * 440 * i) / 8000)),
  );
  for (const law of ['PCMU', 'PCMA'] as const) {
    const back = decodeG711(law, encodeG711(law, samples));
    let signal = 0;
    let noise = 0;
    for (let i = 0; i < samples.length; i++) {
      signal += (samples[i] ?? 0) ** 2;
      noise += ((samples[i] ?? 0) - (back[i] ?? 0)) ** 2;
    }
    const snr = 10 * Math.log10(signal / noise);
    t.ok(snr > 30, `${law} SNR ${snr.toFixed(1)} dB`);
  }
  t.equal(linearToUlaw(0), 0xff);
  t.equal(linearToAlaw(0), 0xd5);
  t.equal(ulawToLinear(linearToUlaw(40000)), 32124, 'values past the range clip');
});

function eventPacket(timestamp: number, event: number, end: boolean, seq: number, ssrc = 1): RtpPacket {
  const payload = Buffer.from([event, end ? 0x8a : 0x0a, 0, 160]);
  return parseRtp(
    buildRtp({ payloadType: 101, marker: false, sequenceNumber: seq, timestamp, ssrc, payload }),
  ) as RtpPacket;
}

check(
  'an RFC 4733 event is reported once at its first end packet, duplicates of the end are ignored',
  (t) => {
    const receiver = new DtmfReceiver();
    const digits: string[] = [];
    let seq = 0;
    for (const [timestamp, event] of [
      [1000, 4],
      [2000, 4],
      [3000, 11],
    ] as const) {
      for (let i = 0; i < 5; i++)
        digits.push(...receiver.receive(eventPacket(timestamp, event, false, seq++)));
      for (let i = 0; i < 3; i++)
        digits.push(...receiver.receive(eventPacket(timestamp, event, true, seq++)));
    }
    digits.push(...receiver.receive(eventPacket(3000, 11, true, seq++)));
    t.same(digits, ['4', '4', '#']);
  },
);

check('an event whose end packets were all lost is reported when the next one begins', (t) => {
  const receiver = new DtmfReceiver();
  const digits = [
    ...receiver.receive(eventPacket(100, 7, false, 1)),
    ...receiver.receive(eventPacket(100, 7, false, 2)),
    ...receiver.receive(eventPacket(900, 0, true, 3)),
  ];
  t.same(digits, ['7', '0']);
  t.same(receiver.receive(eventPacket(900, 0, true, 4)), []);
  t.same(
    receiver.receive({ ...eventPacket(50, 1, true, 5), payload: Buffer.from([1]) }),
    [],
    'truncated payloads are ignored',
  );
});

check('the packets of the Debian sipp DTMF capture decode to their digit once', (t) => {
  // Payloads of dtmf_2833_1.pcap from sip-tester: 7 packets in progress, then 3 end packets.
  const receiver = new DtmfReceiver();
  const payloads = [
    '010a0000',
    '010a0140',
    '010a0280',
    '010a03c0',
    '010a0500',
    '010a0640',
    '010a0780',
    '018a08c0',
    '018a08c0',
    '018a08c0',
  ];
  const digits = payloads.flatMap((hex, i) =>
    receiver.receive({
      payloadType: 101,
      marker: i === 0,
      sequenceNumber: 7984 + i,
      timestamp: 13280,
      ssrc: 0xe05384e,
      payload: Buffer.from(hex, 'hex'),
    }),
  );
  t.same(digits, ['1']);
});

check('SIP INFO DTMF bodies are read in both usual formats', (t) => {
  t.equal(parseDtmfInfo('application/dtmf-relay', 'Signal=5\r\nDuration=160\r\n'), '5');
  t.equal(parseDtmfInfo('application/dtmf-relay', 'Signal=#\r\n'), '#');
  t.equal(parseDtmfInfo('application/dtmf-relay', 'Signal=11\r\n'), '#');
  t.equal(parseDtmfInfo('application/dtmf', '*'), '*');
  t.equal(parseDtmfInfo('application/dtmf-relay', 'Signal=Z'), undefined);
  t.equal(parseDtmfInfo('text/plain', '5'), undefined);
});

check('RTP headers round trip and RTCP or short packets are not taken for RTP', (t) => {
  const sender = new RtpSender(0x1234, 0);
  const first = parseRtp(sender.next(Buffer.alloc(160, 0xff), 160));
  const second = parseRtp(sender.next(Buffer.alloc(160, 0xff), 160));
  t.ok(first?.marker && !second?.marker);
  t.equal(((second?.sequenceNumber ?? 0) - (first?.sequenceNumber ?? 0) + 0x10000) % 0x10000, 1);
  t.equal(((second?.timestamp ?? 0) - (first?.timestamp ?? 0)) >>> 0, 160);
  t.equal(second?.payload.length, 160);
  t.equal(parseRtp(Buffer.from([0x80, 200, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])), undefined);
  t.equal(parseRtp(Buffer.alloc(8)), undefined);
});

check('the mixer sums sources with clipping and waits for a little buffer before playing one', (t) => {
  const mixer = new AudioMixer(160);
  mixer.addSource('a');
  mixer.addSource('b');
  mixer.push('a', new Int16Array(320).fill(30000));
  mixer.push('b', new Int16Array(320).fill(10000));
  const out = mixer.mix(new Int16Array(160));
  t.equal(out[0], 32767, 'clipped');
  mixer.removeSource('b');
  t.equal(mixer.mix(new Int16Array(160))[0], 30000);
  t.equal(mixer.mix(new Int16Array(160))[0], 0, 'dry source is silent');
  mixer.push('a', new Int16Array(160).fill(5));
  t.equal(mixer.mix(new Int16Array(160))[0], 0, 'not yet primed again');
});

check('Opus encoded at 48 kHz decodes straight to 8 kHz narrowband', (t) => {
  const encoder = new OpusScript(48000, 2, OpusScript.Application.AUDIO);
  const decoder = new OpusToNarrowband();
  t.teardown(() => {
    encoder.delete();
    decoder.close();
  });
  const pcm = new Int16Array(960 * 2);
  for (let i = 0; i < 960; i++)
    pcm[2 * i] = pcm[2 * i + 1] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 48000));
  let energy = 0;
  for (let frame = 0; frame < 5; frame++) {
    const samples = decoder.decode(encoder.encode(Buffer.from(pcm.buffer), 960));
    t.equal(samples?.length, 160);
    if (frame === 4) for (const s of samples ?? []) energy += s * s;
  }
  t.ok(Math.sqrt(energy / 160) > 1000, 'the tone is audible after decoding');
  t.equal(decoder.decode(Buffer.from([0xff, 0xff, 0xff])), undefined, 'a corrupt packet is refused');
});

import t from 'tap';
import OpusScript from 'opusscript';
import { encodeG711 } from '../../src/phone/media/g711.js';
import { AudioMixer } from '../../src/phone/media/mixer.js';
import { OpusToNarrowband } from '../../src/phone/media/opusDecoder.js';
import { RtpSender } from '../../src/phone/media/rtp.js';

/** Opus packets of a tone as a browser sends them: 48 kHz stereo, 20 ms frames. */
function opusPackets(count: number, frequency: number): Buffer[] {
  const encoder = new OpusScript(48000, 2, OpusScript.Application.AUDIO);
  encoder.setBitrate(32000);
  const pcm = new Int16Array(960 * 2);
  const packets: Buffer[] = [];
  let phase = 0;
  for (let n = 0; n < count; n++) {
    for (let i = 0; i < 960; i++) {
      pcm[2 * i] = pcm[2 * i + 1] = Math.round(8000 * Math.sin(phase));
      phase += (2 * Math.PI * frequency) / 48000;
    }
    packets.push(Buffer.from(encoder.encode(Buffer.from(pcm.buffer), 960)));
  }
  encoder.delete();
  return packets;
}

// Not a speed assertion: it measures and logs the CPU one phone leg costs for the room -> phone
// direction (Opus decode of each speaker, mix, G.711 encode, RTP packing), and checks the output.
void t.test('the CPU cost of one phone leg (decode, mix, encode) is measured and logged', (t) => {
  const seconds = 30;
  const frames = seconds * 50;
  for (const speakers of [1, 2, 4]) {
    const streams = Array.from({ length: speakers }, (_, s) => opusPackets(frames, 300 + 100 * s));
    const decoders = streams.map(() => new OpusToNarrowband());
    const mixer = new AudioMixer(160);
    streams.forEach((_, s) => mixer.addSource(String(s)));
    const sender = new RtpSender(1, 0);
    const frame = new Int16Array(160);
    let loudest = 0;
    const start = process.cpuUsage();
    for (let n = 0; n < frames; n++) {
      for (let s = 0; s < speakers; s++) {
        const samples = decoders[s]?.decode(streams[s]?.[n] ?? Buffer.alloc(0));
        if (samples) mixer.push(String(s), samples);
      }
      mixer.mix(frame);
      const packet = sender.next(encodeG711('PCMU', frame), 160);
      if (n > 10) loudest = Math.max(loudest, ...frame.subarray(0, 8));
      if (packet.length !== 172) t.fail('packet size');
    }
    const used = process.cpuUsage(start);
    decoders.forEach((d) => d.close());
    const cpuMs = (used.user + used.system) / 1000;
    const percentOfCore = (cpuMs / (seconds * 1000)) * 100;
    t.comment(
      `phone leg, ${speakers} speaker(s): ${cpuMs.toFixed(0)} ms CPU for ${seconds} s of audio = ${percentOfCore.toFixed(2)} % of one core`,
    );
    t.ok(loudest > 1000, `${speakers} speaker(s): the mixed output carries the speakers' audio`);
  }
  t.end();
});

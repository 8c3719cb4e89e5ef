import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { decodeG711 } from '../../src/phone/media/g711.js';
import { parseRtp } from '../../src/phone/media/rtp.js';
import { beepPrompts, startGateway } from './fixtures/gatewayFixture.js';
import { phoneStream, writeRtpPcap } from './fixtures/pcap.js';
import { FixtureRoomPort, OpusToneSource, toneLevel, until } from './fixtures/roomFixture.js';
import { freeUdpPort, runSipp } from './fixtures/sipp.js';

const PIN = '482913';

void t.test(
  'a caller dials in, types the PIN and 1, is admitted: the room hears the phone and the phone hears the room',
  async (t) => {
    const room = await FixtureRoomPort.create();
    t.teardown(() => room.close());
    room.pins.set(PIN, { roomId: 'room-1', participantId: 'phone-1', role: 'patient' });
    const tone = await OpusToneSource.start(room.router, 440);
    t.teardown(() => tone.close());
    room.roomAudio.push(tone.producer);

    const { gateway } = await startGateway(room);
    t.teardown(() => gateway.close());
    const states: string[] = [];
    let inCallAt = Infinity;
    gateway.on('callState', ({ state }) => {
      states.push(state);
      if (state === 'in-call') inCallAt = Date.now();
    });

    // The phone's media port, announced in sipp's SDP: what the gateway sends to the phone lands here.
    const phoneSocket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => phoneSocket.bind(0, '127.0.0.1', resolve));
    t.teardown(() => phoneSocket.close());
    const heardInCall: Int16Array[] = [];
    let packetsToPhone = 0;
    phoneSocket.on('message', (data) => {
      const packet = parseRtp(data);
      if (!packet || packet.payloadType !== 0) return;
      packetsToPhone++;
      if (Date.now() > inCallAt) heardInCall.push(decodeG711('PCMU', packet.payload));
    });

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phone-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const pcap = path.join(dir, 'phone.pcap');
    const keys = [...`${PIN}#`].map((digit, i) => ({ digit, atMs: 1000 + i * 250 }));
    for (let atMs = 3000; atMs <= 22000; atMs += 1000) keys.push({ digit: '1', atMs });
    writeRtpPcap(pcap, phoneStream({ durationMs: 27000, keys, voice: true }));

    const sipPort = await freeUdpPort();
    const sipp = runSipp({
      scenario: 'dial-in.xml',
      remote: `127.0.0.1:${gateway.sipPorts.udp}`,
      localPort: sipPort,
      mediaPort: await freeUdpPort(),
      values: { PCAP: pcap, RTP_PORT: phoneSocket.address().port, CALLER: '+33612345678', CALL_MS: 28000 },
      timeoutS: 60,
    });
    t.teardown(() => sipp.kill());

    const producerFlowing = await until(async () => {
      const producer = room.participants.get('phone-1')?.producer;
      if (!producer || producer.closed) return false;
      const stats = await producer.getStats();
      return stats.some((s) => s.packetCount > 25 && s.byteCount > 25 * 160);
    }, 45000);
    t.ok(producerFlowing, "the phone participant's producer in the room receives the phone's G.711 packets");
    const phoneProducer = room.participants.get('phone-1')?.producer;
    t.equal(phoneProducer?.rtpParameters.codecs[0]?.mimeType, 'audio/PCMU');

    const heard = await until(() => heardInCall.length >= 100, 20000);
    t.ok(heard, 'the phone receives RTP after admission');
    const recent = heardInCall.slice(-50);
    const samples = new Int16Array(recent.reduce((n, f) => n + f.length, 0));
    recent.reduce((offset, frame) => (samples.set(frame, offset), offset + frame.length), 0);
    const rms = Math.sqrt(samples.reduce((sum, s) => sum + s * s, 0) / samples.length);
    t.ok(rms > 500, `the room's audio reaches the phone, not silence (RMS ${rms.toFixed(0)})`);
    t.ok(
      toneLevel(samples, 440) > 5 * toneLevel(samples, 1000),
      'it is the 440 Hz tone the room participant sends',
    );

    const run = await sipp.done;
    t.equal(run.exitCode, 0, run.exitCode === 0 ? 'sipp completed the call' : run.output);
    t.equal(room.pinLookups[0]?.pin, PIN, 'the PIN typed as RFC 4733 events reached the port');
    t.equal(room.pinLookups[0]?.caller.number, '+33612345678');
    t.match(room.consents, [
      { roomId: 'room-1', participantId: 'phone-1', accepted: true, language: 'fr', direction: 'dial-in' },
    ]);
    t.same(states.slice(0, 4), ['consent', 'waiting', 'in-call', 'ended']);
    await until(() => room.leaves.length > 0, 2000);
    t.match(room.leaves, [{ participantId: 'phone-1', reason: 'hangup' }]);
    t.ok(packetsToPhone > 0);
    t.equal(gateway.activeCalls, 0);
    t.ok(phoneProducer?.closed, 'the phone producer is closed when the call ends');
  },
);

void t.test('keys sent as SIP INFO (application/dtmf-relay) work as the DTMF fallback', async (t) => {
  const room = await FixtureRoomPort.create();
  t.teardown(() => room.close());
  room.pins.set('2468', { roomId: 'room-2', participantId: 'phone-2', role: 'patient' });
  const { gateway } = await startGateway(room, { pin: { length: 6 } }, beepPrompts());
  t.teardown(() => gateway.close());
  const states: string[] = [];
  gateway.on('callState', ({ state }) => states.push(state));
  const sipp = runSipp({
    scenario: 'dial-in-info.xml',
    remote: `127.0.0.1:${gateway.sipPorts.udp}`,
    localPort: await freeUdpPort(),
    mediaPort: await freeUdpPort(),
    values: {
      K1: 2,
      K2: 4,
      K3: 6,
      K4: 8,
      CONSENT_PAUSE_MS: 1500,
      CALL_MS: 2500,
      RTP_PORT: await freeUdpPort(),
      CALLER: '0600000042',
    },
    timeoutS: 30,
  });
  t.teardown(() => sipp.kill());
  const run = await sipp.done;
  t.equal(
    run.exitCode,
    0,
    run.exitCode === 0 ? 'every INFO was answered 200 and the call completed' : run.output,
  );
  t.same(
    room.pinLookups.map((l) => l.pin),
    ['2468'],
    "the short PIN ended by '#' reached the port",
  );
  t.match(room.consents, [{ participantId: 'phone-2', accepted: true }]);
  t.ok(states.includes('in-call'), 'the caller was admitted to the room');
});

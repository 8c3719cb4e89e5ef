import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startPhoneServer } from './fixtures/phoneServer.js';
import { decodeG711 } from '../../src/phone/media/g711.js';
import { parseRtp } from '../../src/phone/media/rtp.js';
import { phoneStream, writeRtpPcap } from './fixtures/pcap.js';
import OpusScript from 'opusscript';
import { toneLevel, until } from './fixtures/roomFixture.js';
import { MediaPeer, releaseNativePeers } from '../support/mediaPeer.js';
import { freeUdpPort, runSipp } from './fixtures/sipp.js';

interface Journal {
  records: { type: string; data: Record<string, unknown> }[];
  verification: { ok: boolean };
}

void t.test(
  'through the real server: a caller dials in with an invitation code, consents by keypress, waits, is admitted by the practitioner, and audio flows both ways',
  async (t) => {
    const srv = await startPhoneServer();
    t.teardown(() => srv.stop());
    const gateway = srv.server.phone!;
    const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: true } }))
      .body.id;
    const invitation = await srv.rest<{ accessCode: string; participantId: string }>(
      'POST',
      `/v1/rooms/${roomId}/invitations`,
      { role: 'patient', participantId: 'phone-patient' },
    );
    // The practitioner: a real WebRTC peer (node-datachannel) sending real Opus frames of a 440 Hz tone.
    const doctorPeer = await MediaPeer.joinAs(srv, roomId, 'doc', 'practitioner');
    t.teardown(() => {
      doctorPeer.close();
      releaseNativePeers();
    });
    const doctor = doctorPeer.client;
    await doctorPeer.publish({ video: false, audioFrames: opusTone(440) });
    const room = srv.server.rooms.get(roomId)!;

    const phoneSocket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => phoneSocket.bind(0, '127.0.0.1', resolve));
    t.teardown(() => phoneSocket.close());
    let admittedAt = Infinity;
    const heard: Int16Array[] = [];
    phoneSocket.on('message', (data) => {
      const packet = parseRtp(data);
      if (packet?.payloadType === 0 && Date.now() > admittedAt + 1500)
        heard.push(decodeG711('PCMU', packet.payload));
    });

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phone-room-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const pcap = path.join(dir, 'phone.pcap');
    const keys = [...`${invitation.body.accessCode}#`].map((digit, i) => ({ digit, atMs: 1000 + i * 250 }));
    for (let atMs = 4000; atMs <= 24000; atMs += 1000) keys.push({ digit: '1', atMs });
    writeRtpPcap(pcap, phoneStream({ durationMs: 38000, keys, voice: true }));
    const sipp = runSipp({
      scenario: 'dial-in.xml',
      remote: `127.0.0.1:${gateway.sipPorts.udp}`,
      localPort: await freeUdpPort(),
      mediaPort: await freeUdpPort(),
      values: { PCAP: pcap, RTP_PORT: phoneSocket.address().port, CALLER: '+33612345678', CALL_MS: 39000 },
      timeoutS: 80,
    });
    t.teardown(() => sipp.kill());

    // The practitioner sees a phone participant waiting, with its consent given by keypress.
    const waiting = await doctor.waitFor('waitingListChanged', (d) =>
      (d.entries as { participant: { id: string; phone: boolean }; consents: string[] }[]).some(
        (e) =>
          e.participant.id === 'phone-patient' &&
          e.participant.phone &&
          e.consents.includes('teleconsultation'),
      ),
    );
    t.ok(waiting, 'the phone participant waits, marked as a phone leg, consent given');
    const joined = doctor.notifications.find(
      (n) =>
        n.notification === 'participantJoined' &&
        (n.data.participant as { id: string }).id === 'phone-patient',
    );
    const info = joined?.data.participant as { phone: boolean; e2ee: boolean } | undefined;
    t.equal(info?.phone, true, 'the room is told a phone leg is present');
    t.equal(info?.e2ee, false, 'and that it is not end-to-end encrypted');
    await doctor.request('admit', { participantId: 'phone-patient' });
    admittedAt = Date.now();

    const phoneParticipant = room.participants.get('phone-patient')!;
    const producing = await until(async () => {
      for (const producer of phoneParticipant.producers.values()) {
        const stats = await producer.getStats();
        if (stats.some((s) => s.packetCount > 25)) return true;
      }
      return false;
    }, 20000);
    t.ok(producing, "the phone's producer in the room receives its G.711 packets");
    const hears = await until(() => heard.length >= 100, 20000);
    t.ok(hears, "the phone receives the room's audio after admission");
    const recent = heard.slice(-50);
    const samples = new Int16Array(recent.reduce((n, f) => n + f.length, 0));
    recent.reduce((offset, frame) => (samples.set(frame, offset), offset + frame.length), 0);
    t.ok(
      toneLevel(samples, 440) > 5 * toneLevel(samples, 1000),
      "what the phone hears is the WebRTC practitioner's 440 Hz tone",
    );

    const journal = await srv.rest<Journal>('GET', `/v1/rooms/${roomId}/journal`);
    t.ok(journal.body.verification.ok);
    const incidents = journal.body.records.filter((r) => r.type === 'incident').map((r) => r.data.kind);
    t.ok(incidents.includes('phone-fallback'), 'the fallback to phone is journalled');
    t.ok(incidents.includes('e2ee-downgraded'), 'the encryption downgrade is journalled');
    const consent = journal.body.records.find(
      (r) => r.type === 'consent.given' && r.data.participantId === 'phone-patient',
    );
    t.match(
      (consent?.data.consent as { textId: string })?.textId,
      /^phone-notice/,
      'the keypress consent is journalled',
    );
    sipp.kill();
  },
);

/** One second of 20 ms Opus frames (48 kHz stereo, as WebRTC sends) of a sine tone. */
function opusTone(frequency: number): Buffer[] {
  const encoder = new OpusScript(48000, 2, OpusScript.Application.AUDIO);
  const frames: Buffer[] = [];
  let phase = 0;
  for (let f = 0; f < 50; f++) {
    const pcm = new Int16Array(960 * 2);
    for (let i = 0; i < 960; i++) {
      const sample = Math.round(Math.sin(phase) * 8000);
      pcm[2 * i] = sample;
      pcm[2 * i + 1] = sample;
      phase += (2 * Math.PI * frequency) / 48000;
    }
    frames.push(Buffer.from(encoder.encode(Buffer.from(pcm.buffer), 960)));
  }
  encoder.delete();
  return frames;
}

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { decodeG711 } from '../../src/phone/media/g711.js';
import { parseRtp } from '../../src/phone/media/rtp.js';
import { SrtpContext } from '../../src/phone/media/srtp.js';
import type { SipGateway } from '../../src/phone/gateway.js';
import { startPhoneServer } from './fixtures/phoneServer.js';
import { Baresip, baresipMissing, freeTcpPortPair, writeToneWav } from './fixtures/baresip.js';
import { selfSignedCertificate } from './fixtures/certificates.js';
import { captureLoopbackUdp, loopbackCaptureMissing, type CapturedDatagram } from './fixtures/capture.js';
import { beepPrompts, startGateway } from './fixtures/gatewayFixture.js';
import { FixtureRoomPort, G711Listener, OpusToneSource, toneLevel, until } from './fixtures/roomFixture.js';
import { freeUdpPort } from './fixtures/sipp.js';

/**
 * SRTP against a real third-party softphone: Debian's baresip (libre's SIP over TLS, its own SRTP
 * with SDES keys). What travels on the loopback wire is captured with tcpdump and checked packet by
 * packet: every RTP packet either way is SRTP that authenticates with its sender's SDES key, and
 * the tone it carries is only audible once decrypted.
 */
const PHONE_TONE_HZ = 600;
const ROOM_TONE_HZ = 440;

const skipBaresip = baresipMissing();
const skipCapture = loopbackCaptureMissing();

interface CallKeys {
  /** The phone's key (what it encrypts with) and ours, from the gateway's record of the call. */
  readonly phone: { masterKey: Buffer; masterSalt: Buffer };
  readonly gateway: Buffer;
}

/** The SDES keys of the gateway's only call: what lets the test decrypt the capture. */
function keysOfOnlyCall(gateway: SipGateway): CallKeys | undefined {
  const calls = (
    gateway as unknown as {
      calls: Map<
        string,
        {
          negotiated?: { srtp?: { masterKey: Buffer; masterSalt: Buffer } };
          localCrypto?: { keyAndSalt: Buffer };
        }
      >;
    }
  ).calls;
  const [record] = [...calls.values()];
  const phone = record?.negotiated?.srtp;
  const mine = record?.localCrypto?.keyAndSalt;
  return phone && mine ? { phone, gateway: mine } : undefined;
}

interface WireReport {
  fromPhone: number;
  toPhone: number;
  /** Packets that did not authenticate with their sender's key. */
  notSrtp: number;
  /** Packets of plain RTP size (12 + 160), which SRTP never has (its tag adds 10). */
  plainSized: number;
  /** The phone's tone in its packets, read as plain G.711, then decrypted. */
  toneOnWire: number;
  toneDecrypted: number;
}

/** Checks every captured packet between the phone's RTP port and the gateway. */
function inspectWire(
  datagrams: readonly CapturedDatagram[],
  phoneRtpPort: number,
  keys: CallKeys,
): WireReport {
  const fromPhoneKey = new SrtpContext(keys.phone.masterKey, keys.phone.masterSalt);
  const fromGatewayKey = new SrtpContext(keys.gateway.subarray(0, 16), keys.gateway.subarray(16));
  const report: WireReport = {
    fromPhone: 0,
    toPhone: 0,
    notSrtp: 0,
    plainSized: 0,
    toneOnWire: 0,
    toneDecrypted: 0,
  };
  const wireAudio: Int16Array[] = [];
  const clearAudio: Int16Array[] = [];
  for (const datagram of datagrams) {
    const fromPhone = datagram.sourcePort === phoneRtpPort;
    if (!fromPhone && datagram.destinationPort !== phoneRtpPort) continue; // RTCP
    if (fromPhone) report.fromPhone++;
    else report.toPhone++;
    if (datagram.payload.length === 12 + 160) report.plainSized++;
    const clear = (fromPhone ? fromPhoneKey : fromGatewayKey).unprotect(datagram.payload);
    const packet = clear ? parseRtp(clear) : undefined;
    if (!packet) {
      report.notSrtp++;
      continue;
    }
    if (fromPhone && packet.payloadType === 0 && packet.payload.length === 160) {
      clearAudio.push(decodeG711('PCMU', packet.payload));
      wireAudio.push(decodeG711('PCMU', datagram.payload.subarray(12, 12 + 160)));
    }
  }
  const joined = (chunks: Int16Array[]) => {
    const all = new Int16Array(chunks.length * 160);
    chunks.forEach((chunk, i) => all.set(chunk, i * 160));
    return all;
  };
  report.toneOnWire = toneLevel(joined(wireAudio), PHONE_TONE_HZ);
  report.toneDecrypted = toneLevel(joined(clearAudio), PHONE_TONE_HZ);
  return report;
}

function checkWire(t: Test, report: WireReport): void {
  t.ok(report.fromPhone > 100, `the phone sent RTP on the wire (${report.fromPhone} packets)`);
  t.ok(report.toPhone > 100, `the gateway sent RTP on the wire (${report.toPhone} packets)`);
  t.equal(report.notSrtp, 0, "every packet either way is SRTP that authenticates with its sender's SDES key");
  t.equal(report.plainSized, 0, 'no packet has the size of a plain G.711 RTP packet');
  t.ok(
    report.toneDecrypted > 20 * report.toneOnWire,
    `the phone's ${PHONE_TONE_HZ} Hz tone is there once decrypted (${report.toneDecrypted.toFixed(0)}), not in the bytes on the wire (${report.toneOnWire.toFixed(1)})`,
  );
}

/**
 * The strongest level of a tone over the 1 s windows of a recording (quarter-second steps): a
 * loaded machine may starve a stretch of the call, the tone must be clearly there in some second.
 */
function strongestSecond(samples: Int16Array, frequency: number): number {
  let strongest = 0;
  for (let start = 0; start + 8000 <= samples.length; start += 2000)
    strongest = Math.max(strongest, toneLevel(samples.subarray(start, start + 8000), frequency));
  return strongest;
}

interface CallFiles {
  readonly dir: string;
  readonly gatewayCert: { cert: string; key: string };
  readonly phoneCert: { cert: string; both: string };
  readonly toneWav: string;
}

/** A folder with both sides' certificates and the phone's microphone (a tone). */
function prepare(t: Test, prefix: string): CallFiles {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const toneWav = path.join(dir, 'tone.wav');
  writeToneWav(toneWav, PHONE_TONE_HZ, 60);
  return {
    dir,
    gatewayCert: selfSignedCertificate(dir, 'gateway'),
    phoneCert: selfSignedCertificate(dir, 'phone'),
    toneWav,
  };
}

/** baresip with SRTP required (calling `dial` when given), and tcpdump on its RTP ports when it can run. */
async function startPhone(t: Test, files: CallFiles, dial?: string) {
  const rtpPort = await freeUdpPort();
  const capture = skipCapture ? undefined : await captureLoopbackUdp(files.dir, [rtpPort, rtpPort + 1]);
  t.teardown(() => capture?.stop().catch(() => undefined));
  const phone = await Baresip.start({
    dir: files.dir,
    sipPort: await freeTcpPortPair(),
    rtpPorts: [rtpPort, rtpPort + 1],
    ctrlPort: await freeTcpPortPair(),
    sourceWav: files.toneWav,
    certificate: files.phoneCert.both,
    mediaenc: 'srtp-mand',
    ...(dial ? { dial } : {}),
  });
  t.teardown(() => phone.kill());
  return { phone, capture, rtpPort };
}

void t.test(
  'dial-in from baresip over SIP TLS with SDES SRTP: PIN, consent, audio both ways, nothing plain on the wire',
  { skip: skipBaresip },
  async (t) => {
    const files = prepare(t, 'phone-baresip-in-');
    const { gatewayCert } = files;

    const room = await FixtureRoomPort.create();
    t.teardown(() => room.close());
    room.pins.set('13572468', { roomId: 'room-b', participantId: 'phone-b', role: 'patient' });
    const tone = await OpusToneSource.start(room.router, ROOM_TONE_HZ);
    t.teardown(() => tone.close());
    room.addRoomAudio(tone.producer);
    const { gateway } = await startGateway(
      room,
      { sip: { tlsPort: 0, tlsCertFile: gatewayCert.cert, tlsKeyFile: gatewayCert.key }, srtp: 'required' },
      beepPrompts(),
    );
    t.teardown(() => gateway.close());
    const states: string[] = [];
    gateway.on('callState', ({ state }) => states.push(state));
    const ended = new Promise<string>((resolve) => gateway.on('callEnded', ({ reason }) => resolve(reason)));

    const { phone, capture, rtpPort } = await startPhone(
      t,
      files,
      `sip:gateway@127.0.0.1:${gateway.sipPorts.tls};transport=tls`,
    );

    t.ok(
      await until(() => gateway.activeCalls === 1 && /Call established/.test(phone.log), 10000),
      'baresip reached the gateway over TLS and the call is established',
    );
    await phone.command('sndcode', '13572468#');
    t.ok(
      await until(() => states.includes('consent'), 10000),
      'the PIN, sent as SRTP telephone-events, was read',
    );
    t.ok(
      await until(async () => {
        if (states.includes('in-call')) return true;
        await phone.command('sndcode', '1');
        return false;
      }, 15000),
      `consent by keypress, then in the call (${states.join(' > ')})`,
    );
    t.same(room.consents.length, 1, 'the consent was recorded');
    const keys = keysOfOnlyCall(gateway);
    t.ok(keys, 'the call negotiated SDES keys both ways');

    const phoneProducer = room.participants.get('phone-b')?.producer;
    t.ok(phoneProducer, "the phone's producer is in the room");
    const listener = phoneProducer ? await G711Listener.start(room.router, phoneProducer) : undefined;
    t.teardown(() => listener?.close());
    await new Promise((resolve) => setTimeout(resolve, 4000));

    const heardInRoom = listener?.samples() ?? new Int16Array(0);
    t.ok(
      heardInRoom.length >= 8000 * 2,
      `the room received the phone's audio (${heardInRoom.length} samples)`,
    );
    t.ok(
      strongestSecond(heardInRoom, PHONE_TONE_HZ) > 500 && strongestSecond(heardInRoom, ROOM_TONE_HZ) < 100,
      `the room hears baresip's ${PHONE_TONE_HZ} Hz tone (${strongestSecond(heardInRoom, PHONE_TONE_HZ).toFixed(0)}), not its own ${ROOM_TONE_HZ} Hz`,
    );

    await phone.command('hangup');
    t.equal(await ended, 'hangup', 'baresip hung up (BYE over TLS)');
    t.equal(room.leaves.length, 1, 'the phone left the room once');
    const heardByPhone = phone.decodedAudio();
    t.ok(
      heardByPhone.length >= 8000 * 2,
      `baresip decoded audio from the gateway (${heardByPhone.length} samples)`,
    );
    t.ok(
      strongestSecond(heardByPhone, ROOM_TONE_HZ) > 300,
      `baresip hears the room's ${ROOM_TONE_HZ} Hz tone (${strongestSecond(heardByPhone, ROOM_TONE_HZ).toFixed(0)})`,
    );

    const datagrams = await capture?.stop();
    await t.test(
      'on the wire (tcpdump on lo)',
      { skip: skipCapture || (keys ? false : 'no SDES keys were negotiated') },
      async (t) => checkWire(t, inspectWire(datagrams ?? [], rtpPort, keys!)),
    );
  },
);

void t.test(
  'REST dial-out to baresip over SIP TLS: SRTP offered with SDES, answered, audio both ways, nothing plain on the wire',
  { skip: skipBaresip },
  async (t) => {
    const files = prepare(t, 'phone-baresip-out-');
    const { gatewayCert, phoneCert } = files;

    const srv = await startPhoneServer({
      sipTlsPort: 0,
      sipTlsCertFile: gatewayCert.cert,
      sipTlsKeyFile: gatewayCert.key,
      // The phone's certificate is self-signed: the gateway trusts exactly it.
      sipTlsCaFile: phoneCert.cert,
      srtp: 'required',
    });
    t.teardown(() => srv.stop());
    const gateway = srv.server.phone!;
    const { phone, capture, rtpPort } = await startPhone(t, files);

    const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } }))
      .body.id;
    const created = await srv.rest<{ callId: string; state: string }>(
      'POST',
      `/v1/rooms/${roomId}/phone-calls`,
      {
        to: `sip:phone@127.0.0.1:${phone.tlsPort};transport=tls`,
        role: 'patient',
        participantId: 'phone-out',
      },
    );
    t.equal(created.status, 201, 'the call is placed');
    const { callId } = created.body;
    const stateOf = async () =>
      (await srv.rest<{ state: string; reason?: string }>('GET', `/v1/rooms/${roomId}/phone-calls/${callId}`))
        .body;
    t.ok(
      await until(async () => (await stateOf()).state === 'consent', 15000),
      `baresip answered the SRTP offer over TLS (${JSON.stringify(await stateOf())})`,
    );
    const keys = keysOfOnlyCall(gateway);
    t.ok(keys, 'the call negotiated SDES keys both ways');
    t.ok(
      await until(async () => {
        if ((await stateOf()).state === 'in-call') return true;
        await phone.command('sndcode', '1');
        return false;
      }, 45000), // The spoken intro and notice alone last 12.5 s.
      'the patient consented by keypress (an SRTP telephone-event) and is in the call',
    );
    t.match(phone.log, /SRTP is Enabled \(cryptosuite=AES_CM_128_HMAC_SHA1_80\)/, 'baresip says SRTP is on');

    const participant = srv.server.rooms.get(roomId)?.participants.get('phone-out');
    const producer = [...(participant?.producers.values() ?? [])][0];
    t.ok(producer, "the phone's producer is in the room");
    const listener = producer
      ? await G711Listener.start(srv.server.rooms.get(roomId)!.currentRouter, producer)
      : undefined;
    t.teardown(() => listener?.close());
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const heardInRoom = listener?.samples() ?? new Int16Array(0);
    t.ok(
      strongestSecond(heardInRoom, PHONE_TONE_HZ) > 500,
      `the room hears baresip's ${PHONE_TONE_HZ} Hz tone (${strongestSecond(heardInRoom, PHONE_TONE_HZ).toFixed(0)})`,
    );

    const hungUp = await srv.rest<{ state: string; reason?: string }>(
      'DELETE',
      `/v1/rooms/${roomId}/phone-calls/${callId}`,
    );
    t.same(
      [hungUp.status, hungUp.body.state, hungUp.body.reason],
      [200, 'ended', 'ended'],
      'hung up through the API',
    );
    t.ok(await until(() => /terminated/.test(phone.log), 5000), 'baresip got the BYE over TLS');
    const heardByPhone = phone.decodedAudio();
    let loud = 0;
    for (const sample of heardByPhone) if (Math.abs(sample) > 1000) loud++;
    t.ok(loud > 8000, `baresip decoded the spoken prompts (${loud} loud samples)`);

    const datagrams = await capture?.stop();
    await t.test(
      'on the wire (tcpdump on lo)',
      { skip: skipCapture || (keys ? false : 'no SDES keys were negotiated') },
      async (t) => checkWire(t, inspectWire(datagrams ?? [], rtpPort, keys!)),
    );
  },
);

import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { parseRtp, buildRtp } from '../../src/phone/media/rtp.js';
import { SrtpContext, parseSdesInline } from '../../src/phone/media/srtp.js';
import { headerValue, parseSipMessage, type SipResponse } from '../../src/phone/sip/message.js';
import { SipStreamFramer } from '../../src/phone/sip/streamFramer.js';
import { selfSignedCertificate } from './fixtures/certificates.js';
import { beepPrompts, startGateway } from './fixtures/gatewayFixture.js';
import { phoneStream } from './fixtures/pcap.js';
import { FixtureRoomPort, until } from './fixtures/roomFixture.js';

function invite(transport: 'TLS' | 'UDP', callId: string, mediaPort: number, sdp: string): string {
  return [
    'INVITE sip:gateway@127.0.0.1 SIP/2.0',
    `Via: SIP/2.0/${transport} 127.0.0.1:5999;branch=z9hG4bK-${callId}`,
    'From: <sip:0677777777@127.0.0.1>;tag=phone-1',
    'To: <sip:gateway@127.0.0.1>',
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:0677777777@127.0.0.1:5999;transport=${transport.toLowerCase()}>`,
    'Max-Forwards: 70',
    'Content-Type: application/sdp',
    `Content-Length: ${Buffer.byteLength(sdp)}`,
    '',
    sdp,
  ].join('\r\n');
}

function offer(mediaPort: number, crypto: string | undefined): string {
  return [
    'v=0',
    'o=phone 1 1 IN IP4 127.0.0.1',
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=audio ${mediaPort} ${crypto ? 'RTP/SAVP' : 'RTP/AVP'} 0 101`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:101 telephone-event/8000',
    ...(crypto ? [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${crypto}`] : []),
    '',
  ].join('\r\n');
}

void t.test('an SRTP call over SIP TLS: SDES keys, and nothing plain on the wire either way', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sip-srtp-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { cert, key } = selfSignedCertificate(dir, 'gateway');
  const room = await FixtureRoomPort.create();
  t.teardown(() => room.close());
  room.pins.set('13572468', { roomId: 'room-s', participantId: 'phone-s', role: 'patient' });
  const { gateway } = await startGateway(
    room,
    { sip: { tlsPort: 0, tlsCertFile: cert, tlsKeyFile: key }, srtp: 'required' },
    beepPrompts(),
  );
  t.teardown(() => gateway.close());

  const media = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => media.bind(0, '127.0.0.1', resolve));
  t.teardown(() => media.close());
  const mediaPort = media.address().port;

  // Over UDP, and as plain RTP over TLS, the offer is refused: keys only over TLS, SRTP required.
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  t.teardown(() => udp.close());
  const udpAnswer = new Promise<SipResponse>((resolve) =>
    udp.on('message', (data) => {
      const parsed = parseSipMessage(data);
      if (parsed.ok && parsed.message.kind === 'response' && parsed.message.status >= 200)
        resolve(parsed.message);
    }),
  );
  const phoneKey = randomBytes(30);
  udp.send(
    invite('UDP', 'srtp-over-udp', mediaPort, offer(mediaPort, phoneKey.toString('base64'))),
    gateway.sipPorts.udp ?? 0,
    '127.0.0.1',
  );
  t.equal((await udpAnswer).status, 488, 'SDES keys over UDP are refused');

  const socket = tls.connect({
    host: '127.0.0.1',
    port: gateway.sipPorts.tls ?? 0,
    ca: fs.readFileSync(cert),
    checkServerIdentity: () => undefined,
  });
  t.teardown(() => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const framer = new SipStreamFramer();
  const responses: SipResponse[] = [];
  socket.on('data', (chunk: Buffer) => {
    for (const event of framer.push(chunk)) {
      const parsed = event.type === 'message' ? parseSipMessage(event.bytes, true) : undefined;
      if (parsed?.ok && parsed.message.kind === 'response') responses.push(parsed.message);
    }
  });
  socket.write(invite('TLS', 'plain-over-tls', mediaPort, offer(mediaPort, undefined)));
  t.ok(
    await until(() => responses.some((r) => r.status === 488), 5000),
    'plain RTP is refused when SRTP is required',
  );

  socket.write(invite('TLS', 'srtp-over-tls', mediaPort, offer(mediaPort, phoneKey.toString('base64'))));
  t.ok(await until(() => responses.some((r) => r.status === 200), 5000), 'the SRTP offer is answered 200');
  const ok = responses.find((r) => r.status === 200)!;
  // A sip: Request-URI gets a sip: Contact with transport=tls: libre-based phones (baresip) cannot
  // route to a sips: Contact and drop the call at the ACK.
  t.match(
    headerValue(ok.headers, 'Contact'),
    /^<sip:gateway@127\.0\.0\.1:\d+;transport=tls>$/,
    'the Contact keeps the sip: scheme of the Request-URI',
  );
  const answer = ok.body.toString('utf8');
  t.match(answer, /m=audio \d+ RTP\/SAVP 0 101/, 'the answer is RTP/SAVP');
  const crypto = /a=crypto:1 AES_CM_128_HMAC_SHA1_80 (inline:\S+)/.exec(answer);
  const gatewayKey = parseSdesInline(crypto?.[1] ?? '');
  t.ok(gatewayKey, "the answer carries the gateway's own SDES key (same tag)");
  t.notOk(gatewayKey?.masterKey.equals(phoneKey.subarray(0, 16)), 'a key of its own, not ours echoed');
  const gatewayPort = Number(/m=audio (\d+)/.exec(answer)?.[1]);
  socket.write(
    [
      'ACK sip:gateway@127.0.0.1 SIP/2.0',
      'Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-srtp-ack',
      'From: <sip:0677777777@127.0.0.1>;tag=phone-1',
      `To: ${headerValue(ok.headers, 'To') ?? ''}`,
      'Call-ID: srtp-over-tls',
      'CSeq: 1 ACK',
      'Max-Forwards: 70',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );

  // What the gateway sends: SRTP that our copy of its key decrypts, never the plain packet.
  const fromGateway = gatewayKey ? new SrtpContext(gatewayKey.masterKey, gatewayKey.masterSalt) : undefined;
  let received = 0;
  let decrypted = 0;
  let plainLooking = 0;
  media.on('message', (data) => {
    received++;
    const clear = fromGateway?.unprotect(data);
    if (clear && parseRtp(clear)?.payloadType === 0) decrypted++;
    const raw = parseRtp(data);
    // A plain G.711 packet is 12 + 160 bytes; an SRTP one carries 10 more (the tag), encrypted.
    if (
      data.length === 172 ||
      (clear && raw && raw.payload.subarray(0, 160).equals(parseRtp(clear)!.payload))
    )
      plainLooking++;
  });

  // What the phone sends: the PIN and the consent key as RFC 4733 events, and voice, all SRTP.
  const toGateway = new SrtpContext(phoneKey.subarray(0, 16), phoneKey.subarray(16));
  const keys = [...'13572468#'].map((digit, i) => ({ digit, atMs: 400 + i * 200 }));
  for (let atMs = 3000; atMs < 8000; atMs += 500) keys.push({ digit: '1', atMs });
  const started = Date.now();
  for (const packet of phoneStream({ durationMs: 9000, keys, voice: true })) {
    const wait = started + packet.atMs - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    media.send(toGateway.protect(buildRtp(packet)), gatewayPort, '127.0.0.1');
  }
  t.same(
    room.pinLookups.map((l) => l.pin),
    ['13572468'],
    'the gateway decrypted the PIN sent as SRTP telephone-events',
  );
  t.ok(await until(() => room.consents.length === 1, 3000), 'and the consent key');
  t.ok(received > 100, `the gateway sent media (${received} packets)`);
  t.equal(decrypted, received, 'every packet from the gateway is SRTP that decrypts with its SDES key');
  t.equal(plainLooking, 0, 'none is plain RTP');
});

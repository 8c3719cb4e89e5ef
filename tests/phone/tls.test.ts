import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { parseSipMessage } from '../../src/phone/sip/message.js';
import { selfSignedCertificate } from './fixtures/certificates.js';
import { beepPrompts, startGateway } from './fixtures/gatewayFixture.js';
import { FixtureRoomPort } from './fixtures/roomFixture.js';

void t.test(
  'SIP over TLS with the configured certificate answers requests framed by Content-Length',
  async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sip-tls-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const { cert, key } = selfSignedCertificate(dir, 'gateway');
    const room = await FixtureRoomPort.create();
    t.teardown(() => room.close());
    const { gateway } = await startGateway(
      room,
      { sip: { tlsPort: 0, tlsCertFile: cert, tlsKeyFile: key } },
      beepPrompts(),
    );
    t.teardown(() => gateway.close());
    t.ok(gateway.sipPorts.tls, 'the TLS port is bound');

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
    const options = [
      'OPTIONS sip:gateway@127.0.0.1 SIP/2.0',
      'Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-tls-1',
      'From: <sip:probe@127.0.0.1>;tag=1',
      'To: <sip:gateway@127.0.0.1>',
      'Call-ID: tls-options',
      'CSeq: 1 OPTIONS',
      'Max-Forwards: 70',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    let received = Buffer.alloc(0);
    const answered = new Promise<void>((resolve) =>
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        if (received.includes('\r\n\r\n')) resolve();
      }),
    );
    // Split in two writes: the framer must join them.
    socket.write(options.slice(0, 40));
    socket.write(options.slice(40));
    await answered;
    const parsed = parseSipMessage(received, true);
    t.ok(
      parsed.ok && parsed.message.kind === 'response' && parsed.message.status === 200,
      'OPTIONS over TLS gets 200 OK',
    );
  },
);

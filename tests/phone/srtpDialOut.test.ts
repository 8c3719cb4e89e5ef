import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { DialOutError } from '../../src/phone/gateway.js';
import {
  buildResponse,
  headerValue,
  parseSipMessage,
  serializeSipMessage,
  type SipHeader,
  type SipRequest,
} from '../../src/phone/sip/message.js';
import { SipStreamFramer } from '../../src/phone/sip/streamFramer.js';
import { beepPrompts, startGateway } from './fixtures/gatewayFixture.js';
import { selfSignedCertificate } from './fixtures/certificates.js';
import { FixtureRoomPort, until } from './fixtures/roomFixture.js';

type Answer = (invite: SipRequest, index: number) => { status: number; body?: string };

/** A called phone over TLS that records the INVITEs and answers each as `answer` says. */
async function tlsCallee(cert: { cert: string; key: string }) {
  const invites: SipRequest[] = [];
  const requests: string[] = [];
  let answer: Answer = () => ({ status: 486 });
  const server = tls.createServer(
    { cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) },
    (socket) => {
      const framer = new SipStreamFramer();
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        for (const event of framer.push(chunk)) {
          if (event.type !== 'message') continue;
          const parsed = parseSipMessage(event.bytes, true);
          if (!parsed.ok || parsed.message.kind !== 'request') continue;
          const request = parsed.message;
          requests.push(request.method);
          if (request.method === 'BYE') socket.write(serializeSipMessage(buildResponse(request, 200, 'OK')));
          if (request.method !== 'INVITE') continue;
          invites.push(request);
          const { status, body } = answer(request, invites.length - 1);
          const headers: SipHeader[] = body
            ? [
                { name: 'Contact', value: '<sip:phone@localhost;transport=tls>' },
                { name: 'Content-Type', value: 'application/sdp' },
              ]
            : [];
          const response = buildResponse(request, status, status === 200 ? 'OK' : 'Nope', {
            toTag: 'callee-1',
            headers,
            body: Buffer.from(body ?? ''),
          });
          socket.write(serializeSipMessage(response));
        }
      });
    },
  );
  // Bound where `localhost` resolves first, as the gateway will resolve it.
  await new Promise<void>((resolve) => server.listen(0, 'localhost', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    uri: `sip:+33600000000@localhost:${port};transport=tls`,
    invites,
    requests,
    answerWith: (next: Answer) => (answer = next),
    close: () => server.close(),
  };
}

/** An answer in plain RTP/AVP, whatever was offered. */
const PLAIN_ANSWER = [
  'v=0',
  'o=- 1 1 IN IP4 127.0.0.1',
  's=-',
  'c=IN IP4 127.0.0.1',
  't=0 0',
  'm=audio 40000 RTP/AVP 0 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:101 telephone-event/8000',
  '',
].join('\r\n');

void t.test('dial-out over SIP TLS offers SDES SRTP', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phone-srtp-out-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const gatewayCert = selfSignedCertificate(dir, 'gateway');
  // It names `localhost` only (no address): only a check by the name dialled accepts it.
  const calleeCert = selfSignedCertificate(dir, 'callee', 'DNS:localhost');
  const callee = await tlsCallee(calleeCert);
  t.teardown(() => callee.close());
  const room = await FixtureRoomPort.create();
  t.teardown(() => room.close());
  const start = (srtp: 'offered' | 'required') =>
    startGateway(
      room,
      {
        sip: {
          tlsPort: 0,
          tlsCertFile: gatewayCert.cert,
          tlsKeyFile: gatewayCert.key,
          tlsCaFile: calleeCert.cert,
        },
        srtp,
        ringTimeoutS: 5,
      },
      beepPrompts(),
    );
  const dial = async (gateway: Awaited<ReturnType<typeof start>>['gateway'], to: string) => {
    const { answered } = gateway.dialOut({
      to,
      roomId: 'room-o',
      participantId: 'phone-o',
      role: 'practitioner',
    });
    return answered.then(
      () => undefined,
      (error: unknown) =>
        error instanceof DialOutError ? { reason: error.reason, status: error.status } : error,
    );
  };

  await t.test("'offered': RTP/SAVP with a key first, plain RTP after a 488", async (t) => {
    const { gateway } = await start('offered');
    t.teardown(() => gateway.close());
    callee.invites.length = 0;
    callee.answerWith((_, index) => ({ status: index === 0 ? 488 : 486 }));
    t.same(
      await dial(gateway, callee.uri),
      { reason: 'busy', status: 486 },
      'the second offer got the busy answer',
    );
    t.equal(
      callee.invites.length,
      2,
      'the callee, checked by the name dialled (its certificate names no address), got both INVITEs',
    );
    const [secure, plain] = callee.invites.map((invite) => invite.body.toString('utf8'));
    t.match(secure, /\r\nm=audio \d+ RTP\/SAVP 0 8 101\r\n/, 'the first offer is RTP/SAVP');
    t.match(
      secure,
      /\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:[A-Za-z0-9+/]{40}\r\n/,
      'with an SDES key',
    );
    t.match(plain, /\r\nm=audio \d+ RTP\/AVP 0 8 101\r\n/, 'the second offer is plain RTP/AVP');
    t.notMatch(plain, /a=crypto/, 'without a key');
    t.same(
      callee.invites.map((invite) => headerValue(invite.headers, 'CSeq')),
      ['1 INVITE', '2 INVITE'],
      'a new transaction in the same call',
    );
    t.match(
      headerValue(callee.invites[0]!.headers, 'Contact'),
      /^<sip:teleconsult@[^>]+;transport=tls>$/,
      'Contact sip: with transport=tls',
    );
  });

  await t.test("'offered': a plain answer to an SRTP offer ends the call (srtp-mismatch)", async (t) => {
    const { gateway } = await start('offered');
    t.teardown(() => gateway.close());
    callee.invites.length = 0;
    callee.requests.length = 0;
    callee.answerWith(() => ({ status: 200, body: PLAIN_ANSWER }));
    t.same(await dial(gateway, callee.uri), { reason: 'srtp-mismatch', status: undefined }, 'refused');
    t.ok(
      await until(() => callee.requests.includes('BYE'), 3000),
      `ACKed, then BYE (${callee.requests.join(' ')})`,
    );
  });

  await t.test("'required': no fallback, and no call where TLS cannot carry the keys", async (t) => {
    const { gateway } = await start('required');
    t.teardown(() => gateway.close());
    callee.invites.length = 0;
    callee.answerWith(() => ({ status: 488 }));
    t.same(await dial(gateway, callee.uri), { reason: 'rejected', status: 488 }, 'a 488 is final');
    t.equal(callee.invites.length, 1, 'one INVITE, RTP/SAVP');
    t.same(
      await dial(gateway, 'sip:+33600000000@127.0.0.1:9'),
      { reason: 'srtp-required', status: undefined },
      'a target over UDP is refused before any INVITE',
    );
  });
});

void t.test(
  'a TLS callee whose certificate is not trusted fails the call at once as unreachable',
  async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phone-tls-untrusted-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const gatewayCert = selfSignedCertificate(dir, 'gateway');
    const callee = await tlsCallee(selfSignedCertificate(dir, 'callee'));
    t.teardown(() => callee.close());
    const room = await FixtureRoomPort.create();
    t.teardown(() => room.close());
    // The gateway trusts its own certificate only, not the callee's.
    const { gateway } = await startGateway(
      room,
      {
        sip: {
          tlsPort: 0,
          tlsCertFile: gatewayCert.cert,
          tlsKeyFile: gatewayCert.key,
          tlsCaFile: gatewayCert.cert,
        },
        ringTimeoutS: 60,
      },
      beepPrompts(),
    );
    t.teardown(() => gateway.close());
    const startedAt = Date.now();
    const { answered } = gateway.dialOut({
      to: callee.uri,
      roomId: 'room-u',
      participantId: 'phone-u',
      role: 'practitioner',
    });
    const error = await answered.then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(error instanceof DialOutError && error.reason === 'unreachable', `unreachable (${String(error)})`);
    t.ok(
      Date.now() - startedAt < 10000,
      `at once, not after the ring timeout (${Date.now() - startedAt} ms)`,
    );
    t.equal(callee.invites.length, 0, 'nothing was sent to the untrusted peer');
    t.equal(gateway.activeCalls, 0, 'no call is left behind');
  },
);

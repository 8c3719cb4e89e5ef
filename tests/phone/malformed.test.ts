import dgram from 'node:dgram';
import net from 'node:net';
import t from 'tap';
import { parseSipMessage, headerValue, type SipResponse } from '../../src/phone/sip/message.js';
import { beepPrompts, startGateway } from './fixtures/gatewayFixture.js';
import { FixtureRoomPort, until } from './fixtures/roomFixture.js';
import { freeUdpPort, runSipp } from './fixtures/sipp.js';

function request(lines: string[], body = ''): string {
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

const GOOD_HEADERS = (callId: string, method = 'OPTIONS') => [
  `${method} sip:gateway@127.0.0.1 SIP/2.0`,
  'Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-' + callId,
  'From: <sip:probe@127.0.0.1>;tag=1',
  'To: <sip:gateway@127.0.0.1>',
  `Call-ID: ${callId}`,
  `CSeq: 1 ${method}`,
  'Max-Forwards: 70',
];

/** Malformed datagrams and what the gateway must do with each: answer 400 (with the Call-ID) or stay silent. */
const UDP_CASES: { name: string; bytes: Buffer; answer: string | undefined }[] = [
  { name: 'garbage text', bytes: Buffer.from('hello there\r\n\r\n'), answer: undefined },
  {
    name: 'random binary',
    bytes: Buffer.from(Array.from({ length: 600 }, (_, i) => (i * 73 + 11) % 256)),
    answer: undefined,
  },
  {
    name: 'a request without Call-ID',
    bytes: Buffer.from(request(GOOD_HEADERS('x').filter((h) => !h.startsWith('Call-ID')))),
    answer: undefined,
  },
  {
    name: 'a request without Via',
    bytes: Buffer.from(request(GOOD_HEADERS('x').filter((h) => !h.startsWith('Via')))),
    answer: undefined,
  },
  {
    name: 'a Content-Length past the body',
    bytes: Buffer.from(request([...GOOD_HEADERS('bad-length'), 'Content-Length: 500'], 'short')),
    answer: 'bad-length',
  },
  {
    name: 'a non-numeric Content-Length',
    bytes: Buffer.from(request([...GOOD_HEADERS('nan-length'), 'Content-Length: 1e3'])),
    answer: 'nan-length',
  },
  {
    name: 'a CSeq of another method',
    bytes: Buffer.from(
      request(GOOD_HEADERS('cseq').map((h) => (h.startsWith('CSeq') ? 'CSeq: 1 INVITE' : h))),
    ),
    answer: 'cseq',
  },
  {
    name: 'a 20 KiB header line',
    bytes: Buffer.from(request([...GOOD_HEADERS('long-line'), `X-Long: ${'a'.repeat(20000)}`])),
    answer: 'long-line',
  },
  {
    name: 'a binary header value',
    bytes: Buffer.concat([
      Buffer.from(request(GOOD_HEADERS('binary')).slice(0, -4)),
      Buffer.from('\r\nX-Bin: \x00\x01\x02\r\n\r\n', 'latin1'),
    ]),
    answer: 'binary',
  },
  {
    name: 'a readable request with a bad start line (lowercase version)',
    bytes: Buffer.from(
      request(GOOD_HEADERS('bad-start').map((h, i) => (i === 0 ? h.replace('SIP/2.0', 'sip/2.0') : h))),
    ),
    answer: 'bad-start',
  },
  {
    name: 'a readable request with a start line missing its URI',
    bytes: Buffer.from(request(GOOD_HEADERS('no-uri').map((h, i) => (i === 0 ? 'OPTIONS SIP/2.0' : h)))),
    answer: 'no-uri',
  },
  {
    name: 'a malformed ACK',
    bytes: Buffer.from(
      request(GOOD_HEADERS('ack', 'ACK').map((h) => (h.startsWith('CSeq') ? 'CSeq: x ACK' : h))),
    ),
    answer: undefined,
  },
  {
    name: 'a malformed response',
    bytes: Buffer.from('SIP/2.0 2000 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9\r\n\r\n'),
    answer: undefined,
  },
  { name: 'a bare CRLF keep-alive', bytes: Buffer.from('\r\n\r\n'), answer: undefined },
];

void t.test(
  'malformed SIP over UDP and TCP is answered 400 or ignored, and a good call still completes',
  async (t) => {
    const room = await FixtureRoomPort.create();
    t.teardown(() => room.close());
    const { gateway, metrics } = await startGateway(room, {}, beepPrompts());
    t.teardown(() => gateway.close());

    // UDP: one socket sends every case and collects answers.
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    t.teardown(() => udp.close());
    const answers: SipResponse[] = [];
    udp.on('message', (data) => {
      const parsed = parseSipMessage(data);
      if (parsed.ok && parsed.message.kind === 'response') answers.push(parsed.message);
    });
    for (const { bytes } of UDP_CASES) udp.send(bytes, gateway.sipPorts.udp ?? 0, '127.0.0.1');
    udp.send(Buffer.from(request(GOOD_HEADERS('still-alive'))), gateway.sipPorts.udp ?? 0, '127.0.0.1');
    await until(() => answers.some((a) => headerValue(a.headers, 'Call-ID') === 'still-alive'), 3000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const { name, answer } of UDP_CASES) {
      const got = answers.filter((a) => answer !== undefined && headerValue(a.headers, 'Call-ID') === answer);
      if (answer === undefined) continue;
      t.same(
        got.map((a) => a.status),
        [400],
        `UDP: ${name} is answered 400 Bad Request`,
      );
    }
    const expected = UDP_CASES.filter((c) => c.answer !== undefined).length;
    t.equal(answers.filter((a) => a.status === 400).length, expected, 'UDP: nothing else was answered 400');
    t.ok(
      answers.some((a) => a.status === 200 && headerValue(a.headers, 'Call-ID') === 'still-alive'),
      'UDP: a valid OPTIONS after them gets 200',
    );

    // TCP: each case on its own connection; the gateway answers when it can and closes a stream whose framing is lost.
    const tcpCase = async (bytes: Buffer): Promise<{ text: string; closed: boolean }> => {
      const socket = net.connect({ host: '127.0.0.1', port: gateway.sipPorts.tcp ?? 0 });
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      socket.on('error', () => undefined);
      const closed = new Promise<boolean>((resolve) => {
        socket.on('close', () => resolve(true));
        setTimeout(() => resolve(false), 2000);
      });
      socket.write(bytes);
      const result = { text, closed: await closed };
      result.text = text;
      socket.destroy();
      return result;
    };
    const noLength = await tcpCase(Buffer.from(request(GOOD_HEADERS('tcp-no-length'))));
    t.match(
      noLength.text,
      /^SIP\/2\.0 400 Bad Request\r\n/,
      'TCP: a request without Content-Length is answered 400',
    );
    t.ok(noLength.closed, 'TCP: and the connection, whose framing is lost, is closed');
    const oversized = await tcpCase(
      Buffer.from(`${GOOD_HEADERS('tcp-big').join('\r\n')}\r\nX-Pad: ${'b'.repeat(70 * 1024)}`),
    );
    t.equal(oversized.text, '', 'TCP: a header section past 64 KiB is not answered');
    t.ok(oversized.closed, 'TCP: and its connection is closed');
    const bigBody = await tcpCase(
      Buffer.from(request([...GOOD_HEADERS('tcp-big-body'), 'Content-Length: 900000'])),
    );
    t.ok(bigBody.closed, 'TCP: a Content-Length past 64 KiB closes the connection');
    const binary = await tcpCase(
      Buffer.concat([
        Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 31 + 7) % 256)),
        Buffer.from('\r\n\r\n'),
      ]),
    );
    t.equal(binary.text, '', 'TCP: binary garbage is not answered');
    t.ok(binary.closed, 'TCP: and its connection is closed');
    const twoInOne = await tcpCase(
      Buffer.from(
        request([...GOOD_HEADERS('tcp-1'), 'Content-Length: 0']) +
          '\r\n' +
          request([
            ...GOOD_HEADERS('tcp-2').map((h) => (h.startsWith('CSeq') ? 'CSeq: 2 BYE' : h)),
            'Content-Length: 0',
          ]),
      ),
    );
    t.match(
      twoInOne.text,
      /SIP\/2\.0 200 OK[\s\S]*Call-ID: tcp-1[\s\S]*SIP\/2\.0 400 Bad Request[\s\S]*Call-ID: tcp-2/,
      'TCP: a good and a bad request on one stream get 200 then 400',
    );

    const malformed = (await metrics.sipMalformed.get()).values.reduce((sum, v) => sum + v.value, 0);
    t.ok(malformed >= expected + 4, `every refusal is counted in sfu_sip_malformed_total (${malformed})`);

    // A complete call afterwards, once over UDP and once over TCP.
    for (const transport of ['u1', 't1'] as const) {
      const sipp = runSipp({
        scenario: 'dial-in.xml',
        remote: `127.0.0.1:${transport === 'u1' ? gateway.sipPorts.udp : gateway.sipPorts.tcp}`,
        localPort: await freeUdpPort(),
        mediaPort: await freeUdpPort(),
        transport,
        values: {
          PCAP: '/usr/share/sip-tester/dtmf_2833_1.pcap',
          RTP_PORT: await freeUdpPort(),
          CALLER: '0600000009',
          CALL_MS: 1500,
        },
        timeoutS: 20,
      });
      t.teardown(() => sipp.kill());
      const run = await sipp.done;
      t.equal(
        run.exitCode,
        0,
        run.exitCode === 0
          ? `a good call over ${transport === 'u1' ? 'UDP' : 'TCP'} completes afterwards`
          : run.output,
      );
    }
    t.equal(gateway.activeCalls, 0);
  },
);

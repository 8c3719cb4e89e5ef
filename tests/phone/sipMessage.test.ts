import t, { type Test } from 'tap';
import {
  SIP_LIMITS,
  buildResponse,
  headerParam,
  headerValue,
  headerValues,
  parseSipMessage,
  parseSipUri,
  serializeSipMessage,
  splitHeaderList,
  uriOf,
  uriUser,
  type SipRequest,
} from '../../src/phone/sip/message.js';
import { SipStreamFramer } from '../../src/phone/sip/streamFramer.js';

/** A synchronous subtest, ended when its body returns. */
function check(name: string, body: (t: Test) => void): void {
  void t.test(name, (t) => {
    body(t);
    t.end();
  });
}

const CRLF = '\r\n';
const INVITE = [
  'INVITE sip:gateway@127.0.0.1:5060 SIP/2.0',
  'Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport',
  'v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-0',
  'Max-Forwards: 70',
  'f: "Caller" <sip:+33612345678@trunk>;tag=abc',
  'To: <sip:gateway@127.0.0.1>',
  'i: call-1@host',
  'CSeq: 1 INVITE',
  'm: <sip:caller@127.0.0.1:5070>',
  'Content-Type: application/sdp',
  'Content-Length: 4',
  '',
  'v=0\n',
].join(CRLF);

check(
  'a request with compact headers parses into canonical names, and its body is cut at Content-Length',
  (t) => {
    const result = parseSipMessage(Buffer.from(INVITE));
    t.ok(result.ok);
    if (!result.ok) return;
    const message = result.message as SipRequest;
    t.equal(message.kind, 'request');
    t.equal(message.method, 'INVITE');
    t.equal(message.uri, 'sip:gateway@127.0.0.1:5060');
    t.equal(headerValue(message.headers, 'Call-ID'), 'call-1@host');
    t.equal(headerValues(message.headers, 'Via').length, 2);
    t.equal(headerParam(headerValue(message.headers, 'From') ?? '', 'tag'), 'abc');
    t.equal(message.body.toString(), 'v=0\n'.slice(0, 4));
  },
);

check('a serialized message parses back to the same start line, headers and body', (t) => {
  const parsed = parseSipMessage(Buffer.from(INVITE));
  if (!parsed.ok) return void t.fail('did not parse');
  const again = parseSipMessage(serializeSipMessage(parsed.message), true);
  t.ok(again.ok);
  if (!again.ok) return;
  t.same(again.message.headers, parsed.message.headers);
  t.same(again.message.body, parsed.message.body);
});

check('a response to a request copies Via, From, To, Call-ID and CSeq and adds the To tag', (t) => {
  const parsed = parseSipMessage(Buffer.from(INVITE));
  if (!parsed.ok || parsed.message.kind !== 'request') return void t.fail('did not parse');
  const response = buildResponse(parsed.message, 200, 'OK', { toTag: 'xyz' });
  const text = serializeSipMessage(response).toString();
  t.match(text, /^SIP\/2\.0 200 OK\r\n/);
  t.equal(headerValues(response.headers, 'Via').length, 2);
  t.equal(headerParam(headerValue(response.headers, 'To') ?? '', 'tag'), 'xyz');
  t.match(text, /Content-Length: 0\r\n\r\n$/);
  const back = parseSipMessage(Buffer.from(text), true);
  t.ok(back.ok && back.message.kind === 'response' && back.message.status === 200);
});

check('folded header lines are joined to the previous header', (t) => {
  const text = INVITE.replace('Max-Forwards: 70', 'Subject: first\r\n  second\r\nMax-Forwards: 70');
  const result = parseSipMessage(Buffer.from(text));
  t.ok(result.ok && headerValue(result.message.headers, 'Subject') === 'first second');
});

const refusals: [string, string, boolean][] = [
  ['garbage', 'hello world\r\n\r\n', false],
  // A bad start line with readable Via, From, To, Call-ID and CSeq still gets its 400.
  ['a lowercase SIP version', INVITE.replace('SIP/2.0\r\n', 'sip/2.0\r\n'), true],
  ['two spaces in the request line', INVITE.replace('INVITE sip:', 'INVITE  sip:'), true],
  ['a request line without a version', INVITE.replace(' SIP/2.0\r\n', '\r\n'), true],
  [
    'a bad start line and a missing CSeq',
    INVITE.replace(' SIP/2.0\r\n', '\r\n').replace('CSeq: 1 INVITE\r\n', ''),
    false,
  ],
  [
    'a bad start line and a response-like version',
    INVITE.replace(/^INVITE sip:\S+ SIP\/2\.0/, 'SIP/2.0 OK'),
    false,
  ],
  ['a missing Call-ID', INVITE.replace('i: call-1@host\r\n', ''), false],
  ['a missing CSeq', INVITE.replace('CSeq: 1 INVITE\r\n', ''), false],
  ['a CSeq for another method', INVITE.replace('CSeq: 1 INVITE', 'CSeq: 1 BYE'), true],
  ['a non-numeric Content-Length', INVITE.replace('Content-Length: 4', 'Content-Length: four'), true],
  ['a Content-Length past the body', INVITE.replace('Content-Length: 4', 'Content-Length: 400'), true],
  ['two Call-IDs', INVITE.replace('i: call-1@host', 'i: call-1@host\r\nCall-ID: other'), true],
  ['a header line without a colon', INVITE.replace('Max-Forwards: 70', 'Max-Forwards 70'), true],
  ['a NUL byte in a header', INVITE.replace('Max-Forwards: 70', 'Max-Forwards: 7\u00000'), true],
  ['no blank line after the headers', INVITE.split('\r\n\r\n')[0] ?? '', false],
];
for (const [what, text, answerable] of refusals) {
  check(`a request with ${what} is refused${answerable ? ' with what a 400 needs' : ''}`, (t) => {
    const result = parseSipMessage(Buffer.from(text, 'latin1'));
    t.notOk(result.ok);
    if (result.ok) return;
    t.equal(result.respondTo !== undefined, answerable, result.reason);
  });
}

check('binary bytes in the header section are refused', (t) => {
  const bytes = Buffer.concat([
    Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: '),
    Buffer.from([0xc3, 0x28, 0xff]),
    Buffer.from('\r\n\r\n'),
  ]);
  const result = parseSipMessage(bytes);
  t.notOk(result.ok);
});

check('a message over 64 KiB is refused before parsing', (t) => {
  const big = INVITE.replace('Max-Forwards: 70', `X-Pad: ${'a'.repeat(SIP_LIMITS.maxMessageBytes)}`);
  const result = parseSipMessage(Buffer.from(big));
  t.notOk(result.ok);
  if (!result.ok) t.equal(result.reason, 'message too large');
});

check('more than the maximum number of headers is refused', (t) => {
  const many = Array.from({ length: SIP_LIMITS.maxHeaders + 1 }, (_, i) => `X-H${i}: ${i}`).join(CRLF);
  const result = parseSipMessage(Buffer.from(INVITE.replace('Max-Forwards: 70', many)));
  t.notOk(result.ok);
  if (!result.ok) t.equal(result.reason, 'too many headers');
});

check('an ACK is never given a response context, even when malformed', (t) => {
  const ack = INVITE.replace('INVITE sip:', 'ACK sip:').replace('CSeq: 1 INVITE', 'CSeq: 1 BYE');
  const result = parseSipMessage(Buffer.from(ack));
  t.notOk(result.ok);
  if (!result.ok) t.equal(result.respondTo, undefined);
});

check('a stream transport requires an exact Content-Length', (t) => {
  const noLength = INVITE.replace('Content-Length: 4\r\n', '');
  t.notOk(parseSipMessage(Buffer.from(noLength), true).ok);
  t.ok(parseSipMessage(Buffer.from(noLength), false).ok);
});

check('the stream framer cuts messages split across chunks and skips keep-alive CRLFs', (t) => {
  const framer = new SipStreamFramer();
  const two = Buffer.from(`\r\n\r\n${INVITE}${INVITE}`);
  const events = [
    ...framer.push(two.subarray(0, 100)),
    ...framer.push(two.subarray(100, 101)),
    ...framer.push(two.subarray(101)),
  ];
  t.equal(events.length, 2);
  t.ok(events.every((e) => e.type === 'message' && parseSipMessage(e.bytes, true).ok));
});

check('the stream framer gives up on a missing or bad Content-Length and on endless headers', (t) => {
  const missing = new SipStreamFramer().push(Buffer.from(INVITE.replace('Content-Length: 4\r\n', '')));
  t.equal(missing[0]?.type, 'fatal');
  const bad = new SipStreamFramer().push(
    Buffer.from(INVITE.replace('Content-Length: 4', 'Content-Length: -1')),
  );
  t.equal(bad[0]?.type, 'fatal');
  const framer = new SipStreamFramer();
  let fatal = false;
  for (let i = 0; i < 80 && !fatal; i++)
    fatal = framer.push(Buffer.alloc(1024, 0x61)).some((e) => e.type === 'fatal');
  t.ok(fatal, 'a header section that never ends is cut at 64 KiB');
});

check('URI helpers read user, host, port and transport', (t) => {
  t.equal(uriOf('"A, B" <sip:+331@trunk:5070;transport=tcp>;tag=1'), 'sip:+331@trunk:5070;transport=tcp');
  t.equal(uriUser('sip:+331@trunk:5070'), '+331');
  t.equal(uriUser('sip:trunk.example'), undefined);
  t.same(parseSipUri('sip:+331@127.0.0.1:5070;transport=tcp'), {
    host: '127.0.0.1',
    port: 5070,
    transport: 'tcp',
    secure: false,
  });
  t.same(parseSipUri('sips:[::1]'), { host: '::1', port: undefined, transport: 'tls', secure: true });
  t.equal(parseSipUri('http://x'), undefined);
  t.same(splitHeaderList('<sip:a;lr>, "x,y" <sip:b>'), ['<sip:a;lr>', '"x,y" <sip:b>']);
});

check('random mutations of a valid message never throw, and framing never grows past the limit', (t) => {
  // A fixed-seed generator keeps failures reproducible; the loop is bounded in count, not in time.
  let seed = 0x2545f491;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  const base = Buffer.from(INVITE);
  let parsed = 0;
  for (let i = 0; i < 5000; i++) {
    const bytes = Buffer.from(base);
    const edits = 1 + Math.floor(random() * 8);
    for (let e = 0; e < edits; e++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
    const cut = random() < 0.2 ? bytes.subarray(0, Math.floor(random() * bytes.length)) : bytes;
    if (parseSipMessage(cut).ok) parsed++;
    new SipStreamFramer().push(cut);
  }
  t.ok(parsed < 5000, `${parsed} of 5000 mutants still parsed; none threw`);
});

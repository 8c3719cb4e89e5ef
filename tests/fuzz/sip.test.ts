import t from 'tap';
import { parseSipMessage, serializeSipMessage } from '../../src/phone/sip/message.js';
import { Rng, fuzzBudgetMs, fuzzSeed, hostileValue } from './generator.js';
import { inputBytes, loadCorpus, saveCrash } from './corpus.js';

/**
 * Fuzzes the SIP parser through its public function, parseSipMessage(), with line-aware mutations
 * of valid requests and responses. It must never throw, must refuse with a reason or return a
 * message, must not take pathological time on any input (a generous 1 s bound catches regular
 * expression blow-ups, not speed), and a message it accepts must serialise to one it accepts again
 * with the same start line, headers and body.
 */
const TARGET = 'sip';
const seed = fuzzSeed();
const budgetMs = fuzzBudgetMs(5000);
const PATHOLOGICAL_MS = 1000;

const CRLF = '\r\n';
const SEEDS: string[] = [
  [
    'INVITE sip:gateway@127.0.0.1:5060 SIP/2.0',
    'Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-77;rport',
    'Max-Forwards: 70',
    'From: "Appelant" <sip:+33612345678@trunk.example>;tag=a1',
    'To: <sip:gateway@127.0.0.1>',
    'Call-ID: 8f1c@127.0.0.1',
    'CSeq: 1 INVITE',
    'Contact: <sip:caller@127.0.0.1:5070>',
    'Content-Type: application/sdp',
    'Content-Length: 129',
    '',
    'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n',
  ].join(CRLF),
  [
    'REGISTER sip:registrar.example SIP/2.0',
    'v: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK-reg',
    'f: <sip:gw@registrar.example>;tag=r1',
    't: <sip:gw@registrar.example>',
    'i: reg-1',
    'CSeq: 2 REGISTER',
    'm: <sip:gw@127.0.0.1:5060>;expires=300',
    'Authorization: Digest username="gw", realm="x", nonce="n", uri="sip:registrar.example", response="0123456789abcdef0123456789abcdef"',
    'l: 0',
    '',
    '',
  ].join(CRLF),
  [
    'SIP/2.0 401 Unauthorized',
    'Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1',
    'From: <sip:gw@registrar.example>;tag=r1',
    'To: <sip:gw@registrar.example>;tag=s1',
    'Call-ID: reg-1',
    'CSeq: 2 REGISTER',
    'WWW-Authenticate: Digest realm="x", nonce="abc", algorithm=MD5, qop="auth"',
    'Content-Length: 0',
    '',
    '',
  ].join(CRLF),
  [
    'BYE sip:caller@127.0.0.1:5070 SIP/2.0',
    'Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-bye',
    'From: <sip:gateway@127.0.0.1>;tag=g1',
    'To: "Appelant" <sip:+33612345678@trunk.example>;tag=a1',
    'Call-ID: 8f1c@127.0.0.1',
    'CSeq: 2 BYE',
    'Content-Length: 0',
    '',
    '',
  ].join(CRLF),
];

const HOSTILE_LINES = [
  'Content-Length: -1',
  'Content-Length: 99999999',
  'Content-Length: 0x10',
  'Content-Length: 1e3',
  'Content-Length:',
  'CSeq: 99999999999 INVITE',
  'CSeq: 1',
  'Via:',
  'Via: SIP/2.0/UDP',
  ' folded continuation',
  '\tfolded',
  ':',
  'Bad Header: x',
  'X-Nul: a\u0000b',
  'X-Long: ' + 'a'.repeat(9000),
  'X-Quote: "' + '\\"'.repeat(2000),
  'X-Angles: ' + '<'.repeat(5000),
  'Via: ' + 'SIP/2.0/UDP h;branch=z9hG4bK,'.repeat(300),
  'From: ' + '"'.repeat(4000),
  'To: <sip:' + '@'.repeat(3000) + '>',
];

function lineMutation(rng: Rng, message: string): string {
  const split = message.indexOf(CRLF + CRLF);
  const headLines = message.slice(0, split).split(CRLF);
  let body = message.slice(split + 4);
  const pick = () => 1 + rng.int(Math.max(1, headLines.length - 1));
  switch (rng.int(11)) {
    case 0:
      headLines.splice(pick(), 1);
      break;
    case 1:
      headLines.splice(pick(), 0, headLines[pick()] ?? '');
      break;
    case 2:
      headLines.splice(pick(), 0, rng.pick(HOSTILE_LINES));
      break;
    case 3: {
      const at = pick();
      const line = headLines[at] ?? '';
      const colon = line.indexOf(':');
      headLines[at] = `${line.slice(0, colon + 1)} ${JSON.stringify(hostileValue(rng)).slice(0, 3000)}`;
      break;
    }
    case 4:
      headLines[0] = rng.pick([
        'INVITE sip:x SIP/2.0',
        'INVITE  sip:x SIP/2.0',
        'INVITE sip:x SIP/3.0',
        'SIP/2.0 999 X',
        'SIP/2.0 200',
        'SIP/2.0 099 Low',
        'invite sip:x SIP/2.0',
        `${'A'.repeat(3000)} sip:x SIP/2.0`,
        'OPTIONS * SIP/2.0',
        '',
      ]);
      break;
    case 5:
      for (let i = 0; i < rng.pick([50, 99, 100, 101, 500]); i++) headLines.push(`X-H${i}: ${i}`);
      break;
    case 6:
      body = rng.chance(0.5)
        ? body + rng.bytes(rng.int(200)).toString('latin1')
        : body.slice(0, rng.int(body.length + 1));
      break;
    case 7:
      return message.split(CRLF).join(rng.pick(['\n', '\r', '\r\n\r\n', '\n\r']));
    case 8:
      return message.slice(0, rng.int(message.length));
    case 9: {
      const a = pick();
      const b = pick();
      [headLines[a], headLines[b]] = [headLines[b] ?? '', headLines[a] ?? ''];
      break;
    }
    default:
      headLines.splice(
        pick(),
        0,
        `${rng.pick(['Via', 'From', 'To', 'Call-ID', 'CSeq', 'v', 'l', 'i'])}: ${rng.pick(HOSTILE_LINES).split(': ')[1] ?? ''}`,
      );
  }
  return headLines.join(CRLF) + CRLF + CRLF + body;
}

function mutate(rng: Rng): Buffer {
  let text = rng.pick(SEEDS);
  const rounds = 1 + rng.int(4);
  for (let i = 0; i < rounds; i++) text = lineMutation(rng, text);
  const bytes = Buffer.from(text, rng.chance(0.9) ? 'utf8' : 'latin1');
  if (rng.chance(0.15)) for (let i = 0; i < 1 + rng.int(6); i++) bytes[rng.int(bytes.length)] = rng.int(256);
  if (rng.chance(0.02)) return Buffer.concat([bytes, Buffer.alloc(70 * 1024, 0x41)]);
  if (rng.chance(0.02)) return rng.bytes(rng.int(4096));
  return bytes;
}

/** Checks one input; returns a failure description or undefined. */
function check(input: Buffer, framed: boolean): string | undefined {
  const started = performance.now();
  let result;
  try {
    result = parseSipMessage(input, framed);
  } catch (err) {
    return `parseSipMessage threw: ${(err as Error).message}`;
  }
  if (performance.now() - started > PATHOLOGICAL_MS) return 'pathologically slow parse';
  if (!result.ok)
    return typeof result.reason === 'string' && result.reason.length > 0 ? undefined : 'no reason';
  const message = result.message;
  let again;
  try {
    again = parseSipMessage(serializeSipMessage(message), true);
  } catch (err) {
    return `round trip threw: ${(err as Error).message}`;
  }
  if (!again.ok) return `accepted message does not round-trip: ${again.reason}`;
  const a = message;
  const b = again.message;
  const startA = a.kind === 'request' ? `${a.method} ${a.uri}` : `${a.status} ${a.reason}`;
  const startB = b.kind === 'request' ? `${b.method} ${b.uri}` : `${b.status} ${b.reason}`;
  if (startA !== startB) return 'round trip changed the start line';
  if (!a.body.equals(b.body)) return 'round trip changed the body';
  // Compared up to surrounding whitespace: a folded line after an empty value keeps a leading
  // space that the re-parse trims (same meaning; reported to the parser's owner).
  const normal = (headers: typeof a.headers) =>
    headers.filter((h) => h.name !== 'Content-Length').map((h) => ({ name: h.name, value: h.value.trim() }));
  const headersA = normal(a.headers);
  const headersB = normal(b.headers);
  if (JSON.stringify(headersA) !== JSON.stringify(headersB)) return 'round trip changed the headers';
  return undefined;
}

t.test('saved crash inputs replay without failure', async (t) => {
  const corpus = loadCorpus(TARGET);
  for (const { file, entry } of corpus) {
    const framed = (entry.input.json as { framed?: boolean } | undefined)?.framed ?? false;
    t.equal(check(inputBytes(entry.input), framed), undefined, `${file} (${entry.failure})`);
  }
  t.comment(`${corpus.length} corpus entries replayed`);
});

t.test(`the SIP parser fuzzed for ${budgetMs} ms never throws and round-trips (seed ${seed})`, async (t) => {
  t.comment(`SIP fuzz seed ${seed} (replay: FUZZ_SEED=${seed})`);
  const rng = new Rng(seed);
  const failures: string[] = [];
  let cases = 0;
  let accepted = 0;
  const deadline = performance.now() + budgetMs;
  while (performance.now() < deadline && failures.length < 5) {
    cases++;
    const input = mutate(rng);
    const framed = rng.chance(0.5);
    const failure = check(input, framed);
    if (parseSipMessage(input, framed).ok) accepted++;
    if (failure) {
      const file = saveCrash({
        target: TARGET,
        failure,
        seed,
        caseNumber: cases,
        input: { base64: input.toString('base64'), json: { framed } },
      });
      failures.push(`case ${cases}: ${failure} (saved ${file})`);
    }
  }
  t.same(failures, [], `no failure (seed ${seed})`);
  t.ok(cases > 1000, `${cases} cases ran`);
  t.ok(accepted > 0, `${accepted} mutated messages were still valid (the mutations stay near the grammar)`);
  t.comment(`SIP fuzz: ${cases} cases, ${accepted} accepted`);
});

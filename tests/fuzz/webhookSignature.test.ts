import t from 'tap';
import { createHmac } from 'node:crypto';
import { signWebhook, verifyWebhookSignature } from '../../src/webhooks/signature.js';
import { Rng, fuzzBudgetMs, fuzzSeed, hostileValue } from './generator.js';
import { loadCorpus, saveCrash } from './corpus.js';

/**
 * Fuzzes webhook signature verification, the function platform teams call on every delivery. It
 * must never throw, whatever the argument types, and must never accept a delivery whose signature,
 * body or timestamp was changed: the oracle recomputes the HMAC independently and allows `true`
 * only when the header still holds the exact signature of the exact (timestamp, body) within the
 * tolerance.
 */
const TARGET = 'webhook-signature';
const seed = fuzzSeed();
const budgetMs = fuzzBudgetMs(4000);
const TOLERANCE_S = 300;

interface Case {
  secret: unknown;
  timestamp: unknown;
  body: unknown;
  header: unknown;
  toleranceS: unknown;
  nowS: unknown;
}

/** What verification may answer: true only for an untouched, fresh, exactly signed delivery. */
function mayAccept(c: Case): boolean {
  if (typeof c.secret !== 'string' || c.secret.length === 0 || typeof c.header !== 'string') return false;
  if (typeof c.body !== 'string' && !(c.body instanceof Uint8Array)) return false;
  const ts = typeof c.timestamp === 'number' ? String(c.timestamp) : c.timestamp;
  if (typeof ts !== 'string' || !/^[0-9]{1,12}$/.test(ts)) return false;
  if (typeof c.toleranceS !== 'number' || !Number.isFinite(c.toleranceS) || c.toleranceS < 0) return false;
  // An omitted clock means the real one (the function's default parameter), as callers use it.
  const now = c.nowS === undefined ? Date.now() / 1000 : c.nowS;
  if (typeof now !== 'number' || !(Math.abs(now - Number(ts)) <= c.toleranceS)) return false;
  const expected = createHmac('sha256', c.secret).update(`${ts}.`).update(c.body).digest('hex');
  return c.header.split(/[\s,]+/).some((entry) => entry.toLowerCase() === `v1=${expected}`);
}

function judge(c: Case): string | undefined {
  let accepted: boolean;
  try {
    accepted = verifyWebhookSignature(
      c.secret as string,
      c.timestamp as string,
      c.body as string,
      c.header as string,
      c.toleranceS as number,
      c.nowS as number,
    );
  } catch (err) {
    return `threw: ${(err as Error).message}`;
  }
  if (typeof accepted !== 'boolean') return 'did not answer a boolean';
  if (accepted && !mayAccept(c)) return 'accepted a mutated or stale delivery';
  return undefined;
}

/** JSON cannot hold NaN, Infinity, undefined, bigint, symbols, functions or bytes: tag them. */
function encodeCase(c: Case): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(c)) {
    if (typeof value === 'number' && !Number.isFinite(value)) out[key] = { $: String(value) };
    else if (value === undefined) out[key] = { $: 'undefined' };
    else if (typeof value === 'bigint') out[key] = { $: 'bigint', v: String(value) };
    else if (typeof value === 'symbol') out[key] = { $: 'symbol' };
    else if (typeof value === 'function') out[key] = { $: 'function' };
    else if (value instanceof Uint8Array) out[key] = { $: 'bytes', v: Buffer.from(value).toString('base64') };
    else out[key] = value;
  }
  return out;
}

function decodeCase(json: Record<string, unknown>): Case {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json)) {
    const tag = (value as { $?: unknown } | null)?.$;
    const v = (value as { v?: string } | null)?.v ?? '';
    if (tag === 'NaN' || tag === 'Infinity' || tag === '-Infinity') out[key] = Number(tag);
    else if (tag === 'undefined') out[key] = undefined;
    else if (tag === 'bigint') out[key] = BigInt(v);
    else if (tag === 'symbol') out[key] = Symbol('x');
    else if (tag === 'function') out[key] = () => 1;
    else if (tag === 'bytes') out[key] = Buffer.from(v, 'base64');
    else out[key] = value;
  }
  return out as unknown as Case;
}

function flipHex(rng: Rng, text: string): string {
  const at = text.length - 1 - rng.int(64);
  const char = text[at] ?? '0';
  const replacement = '0123456789abcdef'.replace(char.toLowerCase(), '')[rng.int(15)] ?? '0';
  return text.slice(0, at) + replacement + text.slice(at + 1);
}

function mutateCase(rng: Rng, valid: Case): { c: Case; field: string } {
  const c: Case = { ...valid };
  const field = rng.pick(['body', 'timestamp', 'header', 'header', 'secret', 'types', 'time', 'none']);
  switch (field) {
    case 'body': {
      const body = Buffer.isBuffer(valid.body) ? valid.body.toString('utf8') : (valid.body as string);
      const roll = rng.int(4);
      if (roll === 0) c.body = body + ' ';
      else if (roll === 1) c.body = body.slice(0, rng.int(body.length));
      else if (roll === 2) c.body = Buffer.from(body.replace('"', "'"));
      else c.body = JSON.stringify(hostileValue(rng));
      break;
    }
    case 'timestamp': {
      const ts = String(valid.timestamp);
      c.timestamp = rng.pick([
        `0${ts}`,
        `${ts} `,
        String(Number(ts) + 1),
        `${ts}.0`,
        '',
        '-1',
        'NaN',
        `${ts}\u0000`,
      ]);
      break;
    }
    case 'header': {
      const header = valid.header as string;
      const roll = rng.int(8);
      if (roll === 0) c.header = flipHex(rng, header);
      else if (roll === 1) c.header = header.replace('v1=', rng.pick(['v2=', 'V1=', 'v1:', '']));
      else if (roll === 2) c.header = header.slice(0, rng.int(header.length));
      else if (roll === 3) c.header = `${flipHex(rng, header)} v1=${'0'.repeat(64)}`;
      else if (roll === 4) c.header = `${header.toUpperCase()}`;
      else if (roll === 5) c.header = `v1=${'a'.repeat(63)},${header.slice(0, -1)}`;
      else if (roll === 6) c.header = 'v1=' + ' '.repeat(5000);
      else c.header = `${header}\u0000`;
      break;
    }
    case 'secret':
      c.secret = rng.pick([
        '',
        `${valid.secret as string}x`,
        (valid.secret as string).slice(1),
        'wrong-secret-0123456789',
      ]);
      break;
    case 'types':
      for (const key of ['secret', 'timestamp', 'body', 'header', 'toleranceS', 'nowS'] as const)
        if (rng.chance(0.3))
          c[key] = rng.chance(0.5)
            ? hostileValue(rng)
            : rng.pick([undefined, Symbol('x'), 1n, () => 1, NaN, Infinity]);
      break;
    case 'time':
      c.nowS = rng.pick([
        (valid.nowS as number) + TOLERANCE_S + 1,
        (valid.nowS as number) - TOLERANCE_S - 1,
        NaN,
        Infinity,
        -Infinity,
      ]);
      if (rng.chance(0.5)) c.toleranceS = rng.pick([-1, NaN, Infinity, 0]);
      break;
  }
  return { c, field };
}

t.test('saved crash inputs replay without failure', async (t) => {
  const corpus = loadCorpus(TARGET);
  for (const { file, entry } of corpus) {
    t.equal(
      judge(decodeCase(entry.input.json as Record<string, unknown>)),
      undefined,
      `${file} (${entry.failure})`,
    );
  }
  t.comment(`${corpus.length} corpus entries replayed`);
});

t.test(
  `signature verification fuzzed for ${budgetMs} ms never throws nor accepts a mutation (seed ${seed})`,
  async (t) => {
    t.comment(`webhook signature fuzz seed ${seed} (replay: FUZZ_SEED=${seed})`);
    const rng = new Rng(seed);
    const failures: string[] = [];
    let cases = 0;
    let acceptedValid = 0;
    let refusedMutations = 0;
    const deadline = performance.now() + budgetMs;
    while (performance.now() < deadline && failures.length < 5) {
      cases++;
      const secret = `whsec_${rng.bytes(12).toString('hex')}`;
      const nowS = 1_700_000_000 + rng.int(100_000_000);
      const timestamp = nowS - rng.int(TOLERANCE_S);
      const body = JSON.stringify({
        id: `wh_${cases}`,
        type: 'consultation.ended',
        data: { n: rng.int(1000), s: 'é€' },
      });
      const header = rng.chance(0.2)
        ? `v1=${'b'.repeat(64)} ${signWebhook(secret, timestamp, body)}`
        : signWebhook(secret, timestamp, body);
      const valid: Case = {
        secret,
        timestamp: rng.chance(0.5) ? timestamp : String(timestamp),
        body: rng.chance(0.5) ? body : Buffer.from(body),
        header,
        toleranceS: TOLERANCE_S,
        nowS,
      };
      const { c, field } = mutateCase(rng, valid);
      const failure =
        field === 'none'
          ? (judge(c) ?? (mayAccept(c) ? undefined : 'oracle refuses a valid case'))
          : judge(c);
      if (field === 'none') {
        const accepted = verifyWebhookSignature(
          secret,
          c.timestamp as string,
          c.body as string,
          header,
          TOLERANCE_S,
          nowS,
        );
        if (!accepted) failures.push(`case ${cases}: a valid delivery was refused`);
        else acceptedValid++;
      } else if (!mayAccept(c)) refusedMutations++;
      if (failure) {
        const json = encodeCase(c);
        const file = saveCrash({ target: TARGET, failure, seed, caseNumber: cases, input: { json } });
        failures.push(`case ${cases} (${field}): ${failure} (saved ${file})`);
      }
    }
    t.same(failures, [], `no failure (seed ${seed})`);
    t.ok(
      acceptedValid > 0 && refusedMutations > 0,
      `${acceptedValid} valid deliveries accepted, ${refusedMutations} mutations refused`,
    );
    t.comment(`webhook signature fuzz: ${cases} cases`);
  },
);

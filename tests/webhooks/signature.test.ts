import t from 'tap';
import { createHmac } from 'node:crypto';
import { signWebhook, verifyWebhookSignature } from '../../src/webhooks/signature.js';

const SECRET = 'whsec-test-0123456789abcdef';
const BODY = '{"id":"wh_1","type":"invitation.expired","data":{"consultationId":"c1"}}';
const NOW = 1_750_000_000;

void t.test('a signature made with the secret over "<timestamp>.<body>" verifies', (t) => {
  const header = signWebhook(SECRET, NOW, BODY);
  const expected = createHmac('sha256', SECRET).update(`${NOW}.${BODY}`).digest('hex');
  t.equal(header, `v1=${expected}`, 'the header is v1=<hex HMAC-SHA256>');
  t.equal(verifyWebhookSignature(SECRET, String(NOW), BODY, header, 300, NOW), true);
  t.equal(
    verifyWebhookSignature(SECRET, NOW, Buffer.from(BODY), header, 300, NOW + 299),
    true,
    'raw bytes too',
  );
  t.end();
});

void t.test('a wrong secret, an altered body or an altered timestamp fails', (t) => {
  const header = signWebhook(SECRET, NOW, BODY);
  t.equal(verifyWebhookSignature('another-secret-0123456789', NOW, BODY, header, 300, NOW), false);
  t.equal(verifyWebhookSignature(SECRET, NOW, BODY.replace('c1', 'c2'), header, 300, NOW), false);
  t.equal(verifyWebhookSignature(SECRET, NOW + 1, BODY, header, 300, NOW), false);
  const flipped = header.slice(0, -1) + (header.endsWith('0') ? '1' : '0');
  t.equal(verifyWebhookSignature(SECRET, NOW, BODY, flipped, 300, NOW), false);
  t.end();
});

void t.test('a signature older or newer than the tolerance is refused', (t) => {
  const header = signWebhook(SECRET, NOW, BODY);
  t.equal(verifyWebhookSignature(SECRET, NOW, BODY, header, 300, NOW + 301), false, 'expired');
  t.equal(verifyWebhookSignature(SECRET, NOW, BODY, header, 300, NOW - 301), false, 'from the future');
  t.equal(
    verifyWebhookSignature(SECRET, NOW, BODY, header, 300),
    false,
    'against the real clock, long expired',
  );
  const fresh = Math.floor(Date.now() / 1000);
  t.equal(verifyWebhookSignature(SECRET, fresh, BODY, signWebhook(SECRET, fresh, BODY), 300), true);
  t.end();
});

void t.test('during a secret rotation any listed v1 signature may match', (t) => {
  const header = `${signWebhook('old-secret-0123456789abc', NOW, BODY)} ${signWebhook(SECRET, NOW, BODY)}`;
  t.equal(verifyWebhookSignature(SECRET, NOW, BODY, header, 300, NOW), true);
  t.end();
});

void t.test('malformed input is simply invalid, never an exception', (t) => {
  const header = signWebhook(SECRET, NOW, BODY);
  const cases: Array<[string, unknown[]]> = [
    ['empty header', [SECRET, NOW, BODY, '', 300, NOW]],
    ['unknown scheme', [SECRET, NOW, BODY, header.replace('v1=', 'v0='), 300, NOW]],
    ['short hex', [SECRET, NOW, BODY, 'v1=abcd', 300, NOW]],
    ['not hex', [SECRET, NOW, BODY, `v1=${'z'.repeat(64)}`, 300, NOW]],
    ['timestamp not a number', [SECRET, 'yesterday', BODY, header, 300, NOW]],
    ['negative tolerance', [SECRET, NOW, BODY, header, -1, NOW]],
    ['empty secret', ['', NOW, BODY, header, 300, NOW]],
    ['body not text', [SECRET, NOW, 42, header, 300, NOW]],
    ['header not text', [SECRET, NOW, BODY, null, 300, NOW]],
    ['huge header', [SECRET, NOW, BODY, 'v1='.padEnd(10_000, 'a'), 300, NOW]],
  ];
  for (const [what, args] of cases) {
    const verify = verifyWebhookSignature as (...a: unknown[]) => boolean;
    t.equal(verify(...args), false, what);
  }
  t.end();
});

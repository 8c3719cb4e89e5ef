import t, { type Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Metrics } from '../../src/observability/metrics.js';
import { WebhookOutbox, type WebhookOutboxOptions } from '../../src/webhooks/outbox.js';
import { isWebhookError, type WebhookErrorCode } from '../../src/webhooks/errors.js';
import type { WebhookBody } from '../../src/webhooks/events.js';
import { JournalStore } from '../../src/journal/journalStore.js';
import { enqueueEndedWebhook, reconcileEndedWebhooks } from '../../src/webhooks/reconcile.js';
import { WebhookReceiver } from './receiver.js';

const SECRET = 'outbox-test-secret-0123456789';

function tmpDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outbox-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function receiverFor(
  t: Test,
  statusFor?: (id: string, previous: number) => number,
): Promise<WebhookReceiver> {
  const receiver = await WebhookReceiver.start(SECRET, statusFor);
  t.teardown(() => receiver.close());
  return receiver;
}

async function openOutbox(
  t: Test,
  options: Partial<WebhookOutboxOptions> & { dir: string; url: string | null },
) {
  const outbox = await WebhookOutbox.open({ secret: SECRET, baseDelayMs: 40, ...options });
  t.teardown(() => outbox.close());
  return outbox;
}

function expired(n: number) {
  return {
    type: 'invitation.expired' as const,
    data: {
      consultationId: `c-${n}`,
      participantId: `p-${n}`,
      role: 'patient',
      expiredAt: new Date().toISOString(),
    },
  };
}

async function rejectsWith(t: Test, promise: Promise<unknown>, code: WebhookErrorCode, what: string) {
  try {
    await promise;
    t.fail(`${what}: expected ${code}, it resolved`);
  } catch (error) {
    t.ok(isWebhookError(error, code), `${what}: ${code}`);
  }
}

const outboxFile = (dir: string) => path.join(dir, 'webhooks', 'outbox.jsonl');

void t.test('a delivery is POSTed as signed JSON with its id and timestamp headers', async (t) => {
  const dir = tmpDir(t);
  const receiver = await receiverFor(t);
  const metrics = new Metrics();
  const outbox = await openOutbox(t, { dir, url: receiver.url, metrics });
  outbox.start();
  const result = await outbox.enqueue({ ...expired(1), idempotencyKey: 'invitation.expired:c-1:p-1' });
  t.same(result, { id: 'invitation.expired:c-1:p-1', status: 'enqueued' });
  await receiver.waitFor(() => outbox.pendingCount === 0 && receiver.requests.length === 1);
  const [request] = receiver.requests;
  t.equal(request?.id, 'invitation.expired:c-1:p-1', 'Webhook-Id is the idempotency key');
  t.equal(request?.contentType, 'application/json');
  t.match(request?.timestamp, /^\d{10}$/, 'Webhook-Timestamp is unix seconds');
  t.match(request?.signature, /^v1=[0-9a-f]{64}$/);
  t.equal(request?.signatureValid, true);
  const body = JSON.parse(request?.body ?? '{}') as WebhookBody<'invitation.expired'>;
  t.equal(body.id, 'invitation.expired:c-1:p-1');
  t.equal(body.type, 'invitation.expired');
  t.equal(body.data.consultationId, 'c-1');
  t.equal((await metrics.webhookDelivered.get()).values[0]?.value, 1, 'sfu_webhook_delivered_total');
  t.equal((await metrics.webhookPending.get()).values[0]?.value, 0, 'sfu_webhook_pending');

  const again = await outbox.enqueue({ ...expired(1), idempotencyKey: 'invitation.expired:c-1:p-1' });
  t.same(
    again,
    { id: 'invitation.expired:c-1:p-1', status: 'duplicate' },
    'a key already delivered is not re-sent',
  );
  const generated = await outbox.enqueue(expired(2));
  t.match(generated.id, /^wh_[0-9a-f-]{36}$/, 'without a key an id is generated');
  await receiver.waitFor(() => receiver.requests.length === 2);
});

void t.test('a failing receiver is retried with growing delays until it answers 2xx', async (t) => {
  const dir = tmpDir(t);
  const receiver = await receiverFor(t, (_id, previous) => (previous < 4 ? 503 : 204));
  const metrics = new Metrics();
  const outbox = await openOutbox(t, { dir, url: receiver.url, baseDelayMs: 60, metrics });
  outbox.start();
  await outbox.enqueue(expired(1));
  await receiver.waitFor(() => outbox.pendingCount === 0);
  t.same(
    receiver.requests.map((r) => r.status),
    [503, 503, 503, 503, 204],
  );
  const gaps = receiver.requests.slice(1).map((r, i) => r.at - (receiver.requests[i] as { at: number }).at);
  t.comment(`gaps between attempts (ms): ${gaps.join(', ')}`);
  // Jitter keeps each delay within [half, all] of base * 2^(n-1): 30-60, 60-120, 120-240, 240-480 ms.
  gaps.forEach((gap, i) =>
    t.ok(gap >= (60 * 2 ** i) / 2 - 5, `delay ${i + 1} (${gap} ms) is at least its floor`),
  );
  t.ok(
    new Set(receiver.requests.map((r) => r.id)).size === 1,
    'every attempt carries the same Webhook-Id so the receiver can dedupe',
  );
  t.ok(new Set(receiver.requests.map((r) => r.body)).size === 1, 'and the same body');
  const attempts = await metrics.webhookAttempts.get();
  t.equal(attempts.values.find((v) => v.labels.outcome === '5xx')?.value, 4);
  t.equal(attempts.values.find((v) => v.labels.outcome === '2xx')?.value, 1);
});

void t.test(
  'a delivery that never succeeds is recorded failed, counted, and not retried after a restart',
  async (t) => {
    const dir = tmpDir(t);
    const receiver = await receiverFor(t, () => 500);
    const metrics = new Metrics();
    const outbox = await WebhookOutbox.open({
      dir,
      url: receiver.url,
      secret: SECRET,
      baseDelayMs: 20,
      maxAttempts: 3,
      metrics,
    });
    outbox.start();
    await outbox.enqueue(expired(1));
    await receiver.waitFor(() => outbox.pendingCount === 0);
    await outbox.close();
    t.equal(receiver.requests.length, 3, 'bounded attempts');
    t.equal((await metrics.webhookFailed.get()).values[0]?.value, 1, 'sfu_webhook_failed_total');
    t.match(fs.readFileSync(outboxFile(dir), 'utf8'), /"op":"failed"/, 'the failure is recorded durably');
    const restarted = await openOutbox(t, { dir, url: receiver.url });
    t.equal(restarted.pendingCount, 0);
    restarted.start();
    await new Promise((resolve) => setTimeout(resolve, 200));
    t.equal(receiver.requests.length, 3, 'a failed delivery is not retried after a restart');
  },
);

void t.test(
  'an unreachable receiver is an error outcome and deliveries resume after a restart',
  async (t) => {
    const dir = tmpDir(t);
    const receiver = await receiverFor(t);
    const down = await WebhookReceiver.start(SECRET);
    const deadUrl = down.url;
    await down.close();
    const first = await WebhookOutbox.open({ dir, url: deadUrl, secret: SECRET, baseDelayMs: 50 });
    first.start();
    for (let i = 0; i < 5; i++) await first.enqueue(expired(i));
    await new Promise((resolve) => setTimeout(resolve, 150));
    t.equal(first.pendingCount, 5, 'nothing could be delivered');
    await first.close();
    // The platform fixed its endpoint: the same log, a new url.
    const second = await openOutbox(t, { dir, url: receiver.url });
    t.equal(second.pendingCount, 5, 'pending deliveries were reloaded');
    second.start();
    await receiver.waitFor(() => second.pendingCount === 0);
    t.equal(receiver.deliveredCounts().size, 5);
  },
);

void t.test(
  'the outbox log is compacted when large, keeping pending deliveries and settled ids',
  async (t) => {
    const dir = tmpDir(t);
    let open = false;
    const receiver = await receiverFor(t, (id) => (id.startsWith('hold-') && !open ? 503 : 200));
    const outbox = await WebhookOutbox.open({
      dir,
      url: receiver.url,
      secret: SECRET,
      baseDelayMs: 30,
      maxDelayMs: 60,
      maxAttempts: 1_000_000,
      compactAfterBytes: 20_000,
    });
    outbox.start();
    await outbox.enqueue({ ...expired(0), idempotencyKey: 'hold-0' });
    for (let i = 1; i <= 150; i++) await outbox.enqueue({ ...expired(i), idempotencyKey: `done-${i}` });
    await receiver.waitFor(() => receiver.deliveredCounts().size === 150);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const size = fs.statSync(outboxFile(dir)).size;
    t.ok(size < 20_000, `the log shrank to ${size} bytes`);
    await outbox.close();

    open = true;
    const restarted = await openOutbox(t, { dir, url: receiver.url });
    t.equal(restarted.pendingCount, 1, 'the held delivery survived compaction');
    t.same(
      await restarted.enqueue({ ...expired(7), idempotencyKey: 'done-7' }),
      { id: 'done-7', status: 'duplicate' },
      'settled ids survive compaction',
    );
    restarted.start();
    await receiver.waitFor(() => restarted.pendingCount === 0);
    const counts = receiver.deliveredCounts();
    t.equal(counts.get('hold-0'), 1);
    t.ok(
      [...counts.values()].every((n) => n === 1),
      'nothing was delivered twice',
    );
  },
);

void t.test('a torn outbox tail is cut on open', async (t) => {
  const dir = tmpDir(t);
  const receiver = await receiverFor(t);
  const first = await WebhookOutbox.open({ dir, url: receiver.url, secret: SECRET });
  await first.enqueue({ ...expired(1), idempotencyKey: 'k1' });
  await first.close();
  fs.appendFileSync(outboxFile(dir), '{"op":"enqueued","id":"k2","type":"invitation.exp');
  const second = await openOutbox(t, { dir, url: receiver.url });
  t.equal(second.pendingCount, 1);
  second.start();
  await receiver.waitFor(() => second.pendingCount === 0);
  t.same([...receiver.deliveredCounts().keys()], ['k1']);
});

void t.test('the consultation.ended webhook carries the journal export', async (t) => {
  const dir = tmpDir(t);
  const receiver = await receiverFor(t);
  const journal = new JournalStore({ dir, retentionDays: 30 });
  t.teardown(() => journal.close());
  const outbox = await openOutbox(t, { dir, url: receiver.url });
  outbox.start();
  await journal.append('c-end', 'consultation.created', { consultationId: 'c-end' });
  const ended = await journal.append('c-end', 'consultation.ended', { reason: 'ended-by-practitioner' });
  await outbox.enqueue({
    type: 'consultation.ended',
    data: {
      consultationId: 'c-end',
      endedAt: ended.ts,
      reason: 'ended-by-practitioner',
      journal: await journal.export('c-end'),
    },
    idempotencyKey: 'consultation.ended:c-end',
  });
  await receiver.waitFor(() => outbox.pendingCount === 0);
  const body = JSON.parse(receiver.requests[0]?.body ?? '{}') as WebhookBody<'consultation.ended'>;
  t.equal(body.data.journal.records.length, 2);
  t.equal(body.data.journal.headHash, ended.hash);
  t.match(body.data.journal.verification, { ok: true });
});

void t.test('bad configuration and bad events get typed errors; no url disables webhooks', async (t) => {
  const dir = tmpDir(t);
  await rejectsWith(
    t,
    WebhookOutbox.open({ dir, url: 'not a url', secret: SECRET }),
    'WEBHOOK_CONFIG',
    'url',
  );
  await rejectsWith(
    t,
    WebhookOutbox.open({ dir, url: 'ftp://127.0.0.1/x', secret: SECRET }),
    'WEBHOOK_CONFIG',
    'scheme',
  );
  await rejectsWith(
    t,
    WebhookOutbox.open({ dir, url: 'http://127.0.0.1:9/', secret: null }),
    'WEBHOOK_CONFIG',
    'secret',
  );
  await rejectsWith(
    t,
    WebhookOutbox.open({ dir, url: 'http://127.0.0.1:9/', secret: 'short' }),
    'WEBHOOK_CONFIG',
    'short secret',
  );

  const disabled = await openOutbox(t, { dir, url: null });
  t.equal((await disabled.enqueue(expired(1))).status, 'disabled');
  t.equal(fs.existsSync(outboxFile(dir)), false, 'nothing is written when webhooks are off');

  const outbox = await openOutbox(t, {
    dir,
    url: 'http://127.0.0.1:9/never-started',
    maxPending: 3,
    maxBodyBytes: 400,
  });
  await rejectsWith(
    t,
    outbox.enqueue({ ...expired(1), type: 'no.such' as 'invitation.expired' }),
    'WEBHOOK_INVALID_EVENT',
    'type',
  );
  await rejectsWith(
    t,
    outbox.enqueue({ ...expired(1), idempotencyKey: 'bad key\n' }),
    'WEBHOOK_INVALID_EVENT',
    'key',
  );
  await rejectsWith(
    t,
    outbox.enqueue({ ...expired(1), data: { ...expired(1).data, role: 'x'.repeat(500) } }),
    'WEBHOOK_TOO_LARGE',
    'body size cap',
  );
  const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => outbox.enqueue(expired(i))));
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 3, 'the pending cap is honoured');
  t.ok(
    results
      .filter((r) => r.status === 'rejected')
      .every((r) => isWebhookError(r.reason, 'WEBHOOK_BACKPRESSURE')),
    'beyond it enqueue is refused with WEBHOOK_BACKPRESSURE',
  );
  await outbox.close();
  await rejectsWith(t, outbox.enqueue(expired(9)), 'WEBHOOK_CLOSED', 'after close');
});

void t.test('ended consultations whose webhook a crash left out are enqueued once at startup', async (t) => {
  const dir = tmpDir(t);
  const receiver = await receiverFor(t);
  const journal = new JournalStore({ dir, retentionDays: 30 });
  t.teardown(() => journal.close());
  for (const id of ['sent', 'missed', 'still-open']) {
    await journal.append(id, 'consultation.created', { consultationId: id });
  }
  await journal.append('sent', 'consultation.ended', { reason: 'ended-by-practitioner' });
  await journal.append('missed', 'consultation.ended', { reason: 'timeout' });
  const outbox = await openOutbox(t, { dir, url: receiver.url });
  t.equal((await enqueueEndedWebhook(journal, outbox, 'sent')).status, 'enqueued');
  // 'missed' ended but the server died before enqueueing its webhook.
  t.same(await reconcileEndedWebhooks(journal, outbox), ['missed']);
  t.same(await reconcileEndedWebhooks(journal, outbox), [], 'a second pass finds nothing');
  outbox.start();
  await receiver.waitFor(() => outbox.pendingCount === 0);
  t.same([...receiver.deliveredCounts().entries()].sort(), [
    ['consultation.ended:missed', 1],
    ['consultation.ended:sent', 1],
  ]);
  const missed = receiver.requests.find((r) => r.id === 'consultation.ended:missed');
  const body = JSON.parse(missed?.body ?? '{}') as WebhookBody<'consultation.ended'>;
  t.equal(body.data.reason, 'timeout');
  t.equal(body.data.journal.records.length, 2);
});

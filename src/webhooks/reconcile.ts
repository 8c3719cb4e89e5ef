import type { JournalStorage as JournalStore } from '../journal/storage.js';
import type { WebhookOutboxPort as WebhookOutbox } from './port.js';

/** The idempotency key (and Webhook-Id) of a consultation's consultation.ended webhook. */
export function endedWebhookKey(consultationId: string): string {
  return `consultation.ended:${consultationId}`;
}

/**
 * Enqueues the consultation.ended webhook (with the journal export) of one consultation, keyed so
 * that calling it again, or reconcileEndedWebhooks after a restart, does not send it twice.
 */
export async function enqueueEndedWebhook(
  journal: JournalStore,
  outbox: WebhookOutbox,
  consultationId: string,
): Promise<{ id: string; status: 'enqueued' | 'duplicate' | 'disabled' }> {
  const key = endedWebhookKey(consultationId);
  if (outbox.has(key)) return { id: key, status: 'duplicate' };
  const exported = await journal.export(consultationId);
  const last = exported.records.at(-1);
  const reason = last?.type === 'consultation.ended' ? (last.data as { reason: string }).reason : 'unknown';
  return outbox.enqueue({
    type: 'consultation.ended',
    data: { consultationId, endedAt: last?.ts ?? exported.exportedAt, reason, journal: exported },
    idempotencyKey: key,
  });
}

/**
 * At startup: a crash between the consultation.ended append and its webhook's enqueue would lose
 * the webhook. Enqueues it for every consultation that ended within `withinMs` (default 24 h) and
 * that the outbox does not know. Returns the consultation ids enqueued.
 */
export async function reconcileEndedWebhooks(
  journal: JournalStore,
  outbox: WebhookOutbox,
  withinMs = 86_400_000,
): Promise<string[]> {
  const enqueued: string[] = [];
  for (const { consultationId } of await journal.endedSince(Date.now() - withinMs)) {
    if (outbox.has(endedWebhookKey(consultationId))) continue;
    const result = await enqueueEndedWebhook(journal, outbox, consultationId);
    if (result.status === 'enqueued') enqueued.push(consultationId);
  }
  return enqueued;
}

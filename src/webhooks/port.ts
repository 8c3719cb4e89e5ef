import type { WebhookEvent, WebhookEventType } from './events.js';
import type { EnqueueResult } from './outbox.js';

/**
 * What the server needs of a webhook outbox, whatever keeps it: the file log of one node
 * (outbox.ts, the embedded default) or PostgreSQL shared by a cluster (pgOutbox.ts).
 */
export interface WebhookOutboxPort {
  /** True when this id is known to be enqueued (a shortcut; enqueue dedupes in any case). */
  has(id: string): boolean;
  enqueue<T extends WebhookEventType>(event: WebhookEvent<T>): Promise<EnqueueResult>;
  start(): void;
  close(): Promise<void>;
}

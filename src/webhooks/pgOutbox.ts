import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type pg from 'pg';
import { migratePg } from '../journal/pgJournalStore.js';
import { keepClientErrorsHandled } from '../journal/pgClientErrors.js';
import type { SignedHead } from '../journal/signing.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { WebhookError } from './errors.js';
import { WEBHOOK_EVENT_TYPES, type WebhookBody, type WebhookEvent, type WebhookEventType } from './events.js';
import type { EnqueueResult } from './outbox.js';
import type { WebhookOutboxPort } from './port.js';
import { postWebhook } from './post.js';

/**
 * The webhook outbox in PostgreSQL, shared by the nodes of a cluster. enqueue() resolves once the
 * row is committed; an idempotency key is the primary key, so a second enqueue of the same id by
 * any node is a 'duplicate'. Every node runs the delivery loop: it claims due rows with
 * `FOR UPDATE SKIP LOCKED` and a lease (claimed_by, claimed_until), so one node at a time holds a
 * delivery; the outcome is written only by the node that holds the claim. A node that dies holding
 * a claim lets the lease expire, and another node sends it again (at least once, same Webhook-Id).
 */

export interface PgWebhookOutboxOptions {
  pool: pg.Pool;
  url: string | null;
  secret: string | null;
  /** Who claims deliveries (the cluster node id). */
  nodeId: string;
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  requestTimeoutMs?: number;
  concurrency?: number;
  maxPending?: number;
  maxBodyBytes?: number;
  /** How often the loop looks for due deliveries (default 500 ms). */
  pollMs?: number;
  journalHead?: (consultationId: string) => SignedHead | undefined;
  logger?: Logger;
  metrics?: Metrics;
}

export const PG_OUTBOX_SCHEMA = `
CREATE TABLE IF NOT EXISTS teleconsult_webhook_outbox (
  id text PRIMARY KEY,
  type text NOT NULL,
  body text NOT NULL,
  status text NOT NULL DEFAULT 'pending',
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  claimed_by text,
  claimed_until timestamptz,
  enqueued_at timestamptz NOT NULL DEFAULT now(),
  settled_at timestamptz,
  last_status text
);
CREATE INDEX IF NOT EXISTS teleconsult_webhook_outbox_due
  ON teleconsult_webhook_outbox (next_attempt_at) WHERE status = 'pending';
`;

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$/;

interface Claimed {
  id: string;
  type: string;
  body: string;
  attempts: number;
}

export class PgWebhookOutbox implements WebhookOutboxPort {
  private readonly target: URL | null;
  private readonly agent: http.Agent | null;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly known = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private started = false;
  private closing = false;
  private polling = false;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly requestTimeoutMs: number;
  private readonly concurrency: number;
  private readonly maxPending: number;
  private readonly maxBodyBytes: number;
  private readonly pollMs: number;

  private constructor(
    private readonly options: PgWebhookOutboxOptions,
    target: URL | null,
  ) {
    this.target = target;
    this.maxAttempts = options.maxAttempts ?? 10;
    this.baseDelayMs = options.baseDelayMs ?? 1000;
    this.maxDelayMs = options.maxDelayMs ?? 600_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.concurrency = options.concurrency ?? 4;
    this.maxPending = options.maxPending ?? 1000;
    this.maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
    this.pollMs = options.pollMs ?? 500;
    const AgentClass = target?.protocol === 'https:' ? https.Agent : http.Agent;
    this.agent = target ? new AgentClass({ keepAlive: true, maxSockets: this.concurrency }) : null;
  }

  static async open(options: PgWebhookOutboxOptions): Promise<PgWebhookOutbox> {
    if (options.url === null) return new PgWebhookOutbox(options, null);
    let target: URL;
    try {
      target = new URL(options.url);
    } catch {
      throw new WebhookError('WEBHOOK_CONFIG', 'webhooks.url is not a URL');
    }
    if (target.protocol !== 'http:' && target.protocol !== 'https:') {
      throw new WebhookError('WEBHOOK_CONFIG', 'webhooks.url must be http or https');
    }
    if (!options.secret || options.secret.length < 16) {
      throw new WebhookError(
        'WEBHOOK_CONFIG',
        'webhooks.secret (16 characters or more) is required with a url',
      );
    }
    keepClientErrorsHandled(options.pool);
    try {
      await migratePg(options.pool, PG_OUTBOX_SCHEMA, 'teleconsult-webhook-schema');
    } catch (cause) {
      throw new WebhookError('WEBHOOK_IO', 'cannot prepare the webhook outbox table', { cause });
    }
    return new PgWebhookOutbox(options, target);
  }

  /** Ids this process enqueued; the database's primary key is what really dedupes. */
  has(id: string): boolean {
    return this.known.has(id);
  }

  get pendingCount(): number {
    return this.inFlight.size;
  }

  async enqueue<T extends WebhookEventType>(event: WebhookEvent<T>): Promise<EnqueueResult> {
    if (this.closing) throw new WebhookError('WEBHOOK_CLOSED', 'the outbox is closed');
    if (!WEBHOOK_EVENT_TYPES.includes(event.type)) {
      throw new WebhookError('WEBHOOK_INVALID_EVENT', 'unknown webhook event type');
    }
    if (typeof event.data !== 'object' || event.data === null || Array.isArray(event.data)) {
      throw new WebhookError('WEBHOOK_INVALID_EVENT', 'webhook data must be an object');
    }
    if (event.idempotencyKey !== undefined && !ID_PATTERN.test(event.idempotencyKey)) {
      throw new WebhookError(
        'WEBHOOK_INVALID_EVENT',
        'an idempotency key is 1-200 characters [A-Za-z0-9_.:-]',
      );
    }
    const id = event.idempotencyKey ?? `wh_${randomUUID()}`;
    if (!this.target) return { id, status: 'disabled' };
    const consultationId = (event.data as { consultationId?: unknown }).consultationId;
    const head = typeof consultationId === 'string' ? this.options.journalHead?.(consultationId) : undefined;
    const body: WebhookBody<T> = {
      id,
      type: event.type,
      createdAt: new Date().toISOString(),
      data: head ? { ...event.data, journalHead: head } : event.data,
    };
    const bodyText = JSON.stringify(body);
    if (Buffer.byteLength(bodyText, 'utf8') > this.maxBodyBytes) {
      throw new WebhookError('WEBHOOK_TOO_LARGE', `the body exceeds ${this.maxBodyBytes} bytes`);
    }
    let inserted: number;
    try {
      const result = await this.options.pool.query(
        `INSERT INTO teleconsult_webhook_outbox (id, type, body)
         SELECT $1, $2, $3
          WHERE (SELECT count(*) FROM teleconsult_webhook_outbox WHERE status = 'pending') < $4
         ON CONFLICT (id) DO NOTHING`,
        [id, event.type, bodyText, this.maxPending],
      );
      inserted = result.rowCount ?? 0;
      if (inserted === 0) {
        const exists = await this.options.pool.query(
          'SELECT 1 FROM teleconsult_webhook_outbox WHERE id = $1',
          [id],
        );
        if (exists.rowCount === 0) {
          throw new WebhookError('WEBHOOK_BACKPRESSURE', 'too many webhook deliveries are pending');
        }
      }
    } catch (cause) {
      if (cause instanceof WebhookError) throw cause;
      throw new WebhookError('WEBHOOK_IO', 'the webhook outbox could not persist the delivery', { cause });
    }
    this.known.add(id);
    if (this.known.size > 10_000) {
      const oldest = this.known.values().next().value;
      if (oldest !== undefined) this.known.delete(oldest);
    }
    if (inserted === 0) return { id, status: 'duplicate' };
    this.options.metrics?.webhookEnqueued.inc({ type: event.type });
    this.poll();
    return { id, status: 'enqueued' };
  }

  start(): void {
    if (this.started || this.closing || !this.target) return;
    this.started = true;
    this.poll();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    while (this.inFlight.size > 0 || this.polling) {
      await Promise.allSettled([...this.inFlight]);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    this.agent?.destroy();
  }

  /** Claims due deliveries (up to the free concurrency) and sends them; then waits pollMs. */
  private poll(): void {
    if (!this.started || this.closing || this.polling) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.polling = true;
    void this.claim()
      .then((claimed) => {
        for (const delivery of claimed) {
          const attempt = this.attempt(delivery).finally(() => {
            this.inFlight.delete(attempt);
            this.poll();
          });
          this.inFlight.add(attempt);
        }
      })
      .catch((error: unknown) => this.options.logger?.warn({ err: error }, 'webhook outbox poll failed'))
      .finally(() => {
        this.polling = false;
        if (!this.closing) {
          this.timer = setTimeout(() => this.poll(), this.pollMs);
          this.timer.unref();
        }
      });
  }

  private async claim(): Promise<Claimed[]> {
    const free = this.concurrency - this.inFlight.size;
    if (free <= 0) return [];
    const leaseMs = this.requestTimeoutMs * 2 + 5000;
    const result = await this.options.pool.query<Claimed>(
      `UPDATE teleconsult_webhook_outbox o
          SET claimed_by = $1, claimed_until = now() + make_interval(secs => $2::double precision / 1000),
              attempts = o.attempts + 1
        WHERE o.id IN (
          SELECT id FROM teleconsult_webhook_outbox
           WHERE status = 'pending' AND next_attempt_at <= now()
             AND (claimed_until IS NULL OR claimed_until < now())
           ORDER BY next_attempt_at
           LIMIT $3
           FOR UPDATE SKIP LOCKED)
        RETURNING o.id, o.type, o.body, o.attempts`,
      [this.options.nodeId, leaseMs, free],
    );
    return result.rows;
  }

  private async attempt(delivery: Claimed): Promise<void> {
    let status = 0;
    let outcome: string;
    try {
      status = await postWebhook(
        this.target as URL,
        this.agent as http.Agent,
        this.options.secret as string,
        delivery.id,
        delivery.body,
        this.requestTimeoutMs,
      );
      outcome = status >= 200 && status < 300 ? '2xx' : `${Math.floor(status / 100)}xx`;
    } catch {
      outcome = 'error';
    }
    this.options.metrics?.webhookAttempts.inc({ outcome });
    try {
      if (outcome === '2xx') {
        await this.settle(delivery.id, 'delivered', String(status));
        this.options.metrics?.webhookDelivered.inc();
      } else if (delivery.attempts >= this.maxAttempts) {
        await this.settle(delivery.id, 'failed', status ? String(status) : 'error');
        this.options.metrics?.webhookFailed.inc();
        this.options.logger?.warn(
          { webhookId: delivery.id, type: delivery.type, attempts: delivery.attempts, last: outcome },
          'webhook delivery failed; giving up',
        );
      } else {
        await this.options.pool.query(
          `UPDATE teleconsult_webhook_outbox
              SET claimed_by = NULL, claimed_until = NULL,
                  next_attempt_at = now() + make_interval(secs => $3::double precision / 1000)
            WHERE id = $1 AND claimed_by = $2`,
          [delivery.id, this.options.nodeId, this.backoffMs(delivery.attempts)],
        );
      }
    } catch (error) {
      // The lease expires and a node sends it again (at least once).
      this.options.logger?.error({ webhookId: delivery.id, err: error }, 'cannot record a webhook outcome');
    }
  }

  private async settle(id: string, status: 'delivered' | 'failed', last: string): Promise<void> {
    await this.options.pool.query(
      `UPDATE teleconsult_webhook_outbox
          SET status = $3, settled_at = now(), last_status = $4, claimed_until = NULL
        WHERE id = $1 AND claimed_by = $2`,
      [id, this.options.nodeId, status, last],
    );
  }

  private backoffMs(attemptsSoFar: number): number {
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(attemptsSoFar - 1, 30));
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }
}

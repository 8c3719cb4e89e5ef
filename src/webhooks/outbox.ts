import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { DurableLog, DurableLogError } from '../journal/durableLog.js';
import type { SignedHead } from '../journal/signing.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { WebhookError } from './errors.js';
import { WEBHOOK_EVENT_TYPES, type WebhookBody, type WebhookEvent, type WebhookEventType } from './events.js';
import type { WebhookOutboxPort } from './port.js';
import { postWebhook } from './post.js';

export interface WebhookOutboxOptions {
  /** `journal.dir`: the outbox log is `<dir>/webhooks/outbox.jsonl`. */
  dir: string;
  /** `webhooks.url`; null disables webhooks (enqueue then records nothing). */
  url: string | null;
  /** `webhooks.secret`, required with a url. */
  secret: string | null;
  /** Attempts per delivery before it is recorded as failed (default 10). */
  maxAttempts?: number;
  /** Delay before the 2nd attempt; doubles each time, with jitter (default 1 s). */
  baseDelayMs?: number;
  /** Cap of the backoff delay (default 10 min). */
  maxDelayMs?: number;
  /** Per POST, response included (default 10 s). */
  requestTimeoutMs?: number;
  /** POSTs in flight at once (default 4). */
  concurrency?: number;
  /** Deliveries persisted and not yet delivered, by count and by body bytes, before WEBHOOK_BACKPRESSURE. */
  maxPending?: number;
  maxPendingBytes?: number;
  /** Largest body (default 1 MiB). */
  maxBodyBytes?: number;
  /** The log is compacted past this size when most of it is settled deliveries (default 4 MiB). */
  compactAfterBytes?: number;
  /**
   * The latest signed head of a consultation's journal: added as `journalHead` to the data of
   * every webhook about a consultation, so the platform holds an anchor before the end.
   */
  journalHead?: (consultationId: string) => SignedHead | undefined;
  logger?: Logger;
  metrics?: Metrics;
}

export type EnqueueResult = { id: string; status: 'enqueued' | 'duplicate' | 'disabled' };

interface Delivery {
  id: string;
  type: string;
  body: string;
  /** The 'enqueued' line as stored, rewritten as is by compaction. */
  line: string;
  attempts: number;
  nextAttemptAt: number;
}

type OutboxRecord =
  | { op: 'enqueued'; id: string; type: string; at: number; body: string }
  | { op: 'delivered'; id: string; at: number; status: number; attempts: number }
  | { op: 'failed'; id: string; at: number; attempts: number; last: string };

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$/;
/** Settled ids remembered (and kept through compaction) so a re-enqueued key is recognised. */
const SETTLED_MEMORY = 10_000;

/**
 * A durable outbox of signed webhooks. enqueue() resolves once the delivery is on disk; a delivery
 * loop POSTs it, retries with exponential backoff and jitter, and records 'delivered' (2xx) or
 * 'failed' (attempts exhausted) durably. After a restart, open() + start() resume what is pending.
 * A crash between a 2xx and its 'delivered' record re-sends once: receivers dedupe by Webhook-Id.
 */
export class WebhookOutbox implements WebhookOutboxPort {
  private readonly pending = new Map<string, Delivery>();
  /** Ids being enqueued (not yet on disk), so a concurrent duplicate key is recognised. */
  private readonly enqueuing = new Set<string>();
  private readonly settled = new Set<string>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private started = false;
  private closing = false;
  private compacting = false;
  private readonly agent: http.Agent | null;
  private readonly opts: Required<
    Omit<WebhookOutboxOptions, 'logger' | 'metrics' | 'url' | 'secret' | 'dir' | 'journalHead'>
  >;

  private constructor(
    private readonly options: WebhookOutboxOptions,
    private readonly target: URL | null,
    private readonly log: DurableLog | null,
  ) {
    this.opts = {
      maxAttempts: options.maxAttempts ?? 10,
      baseDelayMs: options.baseDelayMs ?? 1000,
      maxDelayMs: options.maxDelayMs ?? 600_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      concurrency: options.concurrency ?? 4,
      maxPending: options.maxPending ?? 1000,
      maxPendingBytes: options.maxPendingBytes ?? 64 * 1024 * 1024,
      maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
      compactAfterBytes: options.compactAfterBytes ?? 4 * 1024 * 1024,
    };
    const AgentClass = target?.protocol === 'https:' ? https.Agent : http.Agent;
    this.agent = target ? new AgentClass({ keepAlive: true, maxSockets: this.opts.concurrency }) : null;
  }

  /** Opens the outbox log (cutting a torn tail) and loads the pending deliveries. Does not send. */
  static async open(options: WebhookOutboxOptions): Promise<WebhookOutbox> {
    if (options.url === null) return new WebhookOutbox(options, null, null);
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
    const maxPending = options.maxPending ?? 1000;
    const opened = await DurableLog.open(path.join(options.dir, 'webhooks', 'outbox.jsonl'), {
      // Terminal records of in-flight deliveries come on top of enqueues.
      maxPending: maxPending + (options.concurrency ?? 4) + 16,
      onBatch: () => options.metrics?.webhookFsyncBatches.inc(),
    }).catch((cause: unknown) => {
      throw new WebhookError('WEBHOOK_IO', 'cannot open the webhook outbox', { cause });
    });
    const outbox = new WebhookOutbox(options, target, opened.log);
    outbox.replay(opened.lines);
    if (opened.truncatedBytes > 0) {
      options.logger?.warn(
        { truncatedBytes: opened.truncatedBytes },
        'webhook outbox had a torn tail from a crash; removed (it was never acknowledged)',
      );
    }
    return outbox;
  }

  /** Deliveries persisted and not yet delivered or failed. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** True when a delivery with this id (idempotency key) is pending, being enqueued, or settled. */
  has(id: string): boolean {
    return this.pending.has(id) || this.enqueuing.has(id) || this.settled.has(id);
  }

  /**
   * Persists a delivery; resolves once it is on disk. Rejects with a WebhookError:
   * INVALID_EVENT, TOO_LARGE, BACKPRESSURE, IO, CLOSED.
   */
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
    if (!this.log) return { id, status: 'disabled' };
    if (this.pending.has(id) || this.settled.has(id) || this.enqueuing.has(id))
      return { id, status: 'duplicate' };
    const consultationId = (event.data as { consultationId?: unknown }).consultationId;
    const head = typeof consultationId === 'string' ? this.options.journalHead?.(consultationId) : undefined;
    const body: WebhookBody<T> = {
      id,
      type: event.type,
      createdAt: new Date().toISOString(),
      data: head ? { ...event.data, journalHead: head } : event.data,
    };
    const bodyText = JSON.stringify(body);
    const bodyBytes = Buffer.byteLength(bodyText, 'utf8');
    if (bodyBytes > this.opts.maxBodyBytes) {
      throw new WebhookError('WEBHOOK_TOO_LARGE', `the body exceeds ${this.opts.maxBodyBytes} bytes`);
    }
    if (
      this.pending.size + this.enqueuing.size >= this.opts.maxPending ||
      this.pendingBytes + bodyBytes > this.opts.maxPendingBytes
    ) {
      throw new WebhookError('WEBHOOK_BACKPRESSURE', 'too many webhook deliveries are pending');
    }
    const record: OutboxRecord = { op: 'enqueued', id, type: event.type, at: Date.now(), body: bodyText };
    const line = JSON.stringify(record);
    this.enqueuing.add(id);
    this.pendingBytes += bodyBytes;
    try {
      await this.log.append(line);
    } catch (cause) {
      this.pendingBytes -= bodyBytes;
      throw this.wrap(cause);
    } finally {
      this.enqueuing.delete(id);
    }
    // Only what is on disk becomes deliverable (and part of a compaction snapshot).
    this.pending.set(id, { id, type: event.type, body: bodyText, line, attempts: 0, nextAttemptAt: 0 });
    this.options.metrics?.webhookEnqueued.inc({ type: event.type });
    this.options.metrics?.webhookPending.set(this.pending.size);
    this.pump();
    return { id, status: 'enqueued' };
  }

  /** Starts the delivery loop (a no-op when webhooks are disabled). */
  start(): void {
    if (this.started || this.closing || !this.log) return;
    this.started = true;
    this.pump();
  }

  /** Stops sending, waits for POSTs in flight (bounded by the request timeout), closes the log. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()]);
    await this.log?.close();
    this.agent?.destroy();
  }

  private replay(lines: readonly string[]): void {
    let skipped = 0;
    for (const line of lines) {
      let record: OutboxRecord;
      try {
        record = JSON.parse(line) as OutboxRecord;
      } catch {
        skipped++;
        continue;
      }
      if (typeof record !== 'object' || record === null || typeof record.id !== 'string') {
        skipped++;
        continue;
      }
      if (record.op === 'enqueued' && typeof record.body === 'string') {
        // Replay is idempotent: compaction may have written a record that also follows it.
        if (this.pending.has(record.id) || this.settled.has(record.id)) continue;
        this.pending.set(record.id, {
          id: record.id,
          type: String(record.type),
          body: record.body,
          line,
          attempts: 0,
          nextAttemptAt: 0,
        });
        this.pendingBytes += Buffer.byteLength(record.body, 'utf8');
      } else if (record.op === 'delivered' || record.op === 'failed') {
        this.settle(record.id);
      } else {
        skipped++;
      }
    }
    if (skipped > 0) this.options.logger?.error({ skipped }, 'webhook outbox lines unreadable; skipped');
    this.options.metrics?.webhookPending.set(this.pending.size);
  }

  private settle(id: string): void {
    const delivery = this.pending.get(id);
    if (delivery) {
      this.pending.delete(id);
      this.pendingBytes -= Buffer.byteLength(delivery.body, 'utf8');
    }
    this.settled.delete(id);
    this.settled.add(id);
    if (this.settled.size > SETTLED_MEMORY) {
      const oldest = this.settled.values().next().value;
      if (oldest !== undefined) this.settled.delete(oldest);
    }
  }

  /** Starts every due delivery up to the concurrency; arms a timer for the next one due. */
  private pump(): void {
    if (!this.started || this.closing) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const now = Date.now();
    let nextDue = Infinity;
    for (const delivery of this.pending.values()) {
      if (this.inFlight.size >= this.opts.concurrency) return; // a finishing attempt pumps again
      if (this.inFlight.has(delivery.id)) continue;
      if (delivery.nextAttemptAt <= now) {
        const attempt = this.attempt(delivery).finally(() => {
          this.inFlight.delete(delivery.id);
          this.pump();
        });
        this.inFlight.set(delivery.id, attempt);
      } else {
        nextDue = Math.min(nextDue, delivery.nextAttemptAt);
      }
    }
    if (nextDue !== Infinity) {
      this.timer = setTimeout(() => this.pump(), Math.max(0, nextDue - now));
      this.timer.unref();
    }
  }

  private async attempt(delivery: Delivery): Promise<void> {
    delivery.attempts++;
    let outcome: string;
    let status = 0;
    try {
      status = await this.post(delivery);
      outcome = status >= 200 && status < 300 ? '2xx' : `${Math.floor(status / 100)}xx`;
    } catch {
      outcome = 'error';
    }
    this.options.metrics?.webhookAttempts.inc({ outcome });
    if (outcome === '2xx') {
      await this.record({
        op: 'delivered',
        id: delivery.id,
        at: Date.now(),
        status,
        attempts: delivery.attempts,
      });
      this.options.metrics?.webhookDelivered.inc();
    } else if (delivery.attempts >= this.opts.maxAttempts) {
      await this.record({
        op: 'failed',
        id: delivery.id,
        at: Date.now(),
        attempts: delivery.attempts,
        last: status ? String(status) : 'error',
      });
      this.options.metrics?.webhookFailed.inc();
      this.options.logger?.warn(
        { webhookId: delivery.id, type: delivery.type, attempts: delivery.attempts, last: outcome },
        'webhook delivery failed; giving up',
      );
      return;
    } else {
      delivery.nextAttemptAt = Date.now() + this.backoffMs(delivery.attempts);
      this.options.logger?.debug(
        { webhookId: delivery.id, attempts: delivery.attempts, outcome },
        'webhook delivery will be retried',
      );
    }
  }

  /** Exponential backoff with jitter: between half and all of base * 2^(attempt-1), capped. */
  private backoffMs(attemptsSoFar: number): number {
    const ceiling = Math.min(
      this.opts.maxDelayMs,
      this.opts.baseDelayMs * 2 ** Math.min(attemptsSoFar - 1, 30),
    );
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  /** Records a settled delivery durably, then forgets it; compacts the log when worthwhile. */
  private async record(record: OutboxRecord): Promise<void> {
    try {
      await (this.log as DurableLog).append(JSON.stringify(record));
    } catch (error) {
      // Not re-sent now; after a restart it would be (at-least-once).
      this.options.logger?.error({ webhookId: record.id, err: error }, 'cannot record a webhook outcome');
    }
    this.settle(record.id);
    this.options.metrics?.webhookPending.set(this.pending.size);
    this.maybeCompact();
  }

  private maybeCompact(): void {
    const log = this.log as DurableLog;
    if (this.compacting || this.closing || log.failed || log.sizeBytes <= this.opts.compactAfterBytes) return;
    let live = 0;
    for (const d of this.pending.values()) live += d.line.length + 1;
    live += this.settled.size * 80;
    if (live * 2 > log.sizeBytes) return;
    this.compacting = true;
    log
      .rewrite(() => [
        ...[...this.settled].map((id) =>
          JSON.stringify({ op: 'delivered', id, at: 0, status: 0, attempts: 0 }),
        ),
        ...[...this.pending.values()].map((d) => d.line),
      ])
      .then(
        () => this.options.logger?.info({ pending: this.pending.size }, 'webhook outbox compacted'),
        (error: unknown) => this.options.logger?.error({ err: error }, 'webhook outbox compaction failed'),
      )
      .finally(() => {
        this.compacting = false;
      });
  }

  private post(delivery: Delivery): Promise<number> {
    return postWebhook(
      this.target as URL,
      this.agent as http.Agent,
      this.options.secret as string,
      delivery.id,
      delivery.body,
      this.opts.requestTimeoutMs,
    );
  }

  private wrap(cause: unknown): WebhookError {
    if (cause instanceof DurableLogError) {
      const code =
        cause.code === 'BACKPRESSURE'
          ? 'WEBHOOK_BACKPRESSURE'
          : cause.code === 'CLOSED'
            ? 'WEBHOOK_CLOSED'
            : 'WEBHOOK_IO';
      return new WebhookError(code, 'the webhook outbox could not persist the delivery', { cause });
    }
    return new WebhookError('WEBHOOK_IO', 'the webhook outbox could not persist the delivery', { cause });
  }
}

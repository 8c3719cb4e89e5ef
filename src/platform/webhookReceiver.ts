import { verifyWebhookSignature } from '../webhooks/signature.js';
import type { WebhookBody, WebhookEventMap, WebhookEventType } from '../webhooks/events.js';

/**
 * The receiving end of the media server's webhooks, for a platform's backend: checks the
 * `Webhook-Signature` (HMAC-SHA256 over "<Webhook-Timestamp>.<raw body>"), refuses deliveries
 * whose timestamp is outside the replay window, and hands each `Webhook-Id` to the handler once:
 * the server retries a delivery until it is acknowledged, so the same event may arrive again.
 */

export type { WebhookBody, WebhookEventMap, WebhookEventType };

export interface WebhookReceiverOptions {
  /** `webhooks.secret` of the server; several during a rotation (any one may sign). */
  secret: string | readonly string[];
  /** Replay window: how far the delivery's timestamp may be from now (default 300 s). */
  toleranceS?: number;
  /** How long a handled id is remembered to drop repeats (default 24 h). */
  rememberS?: number;
  /** Most ids remembered; the oldest are forgotten first (default 100 000). */
  maxRemembered?: number;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

/** Why a delivery was refused; answer 400 to `malformed`/`signature`/`stale`, 200 to `duplicate`. */
export type WebhookRefusal = 'malformed' | 'signature' | 'stale' | 'duplicate' | 'in-progress';

export type WebhookResult = { ok: true; event: WebhookBody } | { ok: false; reason: WebhookRefusal };

type HeaderSource = Headers | Record<string, string | string[] | undefined>;

const MAX_BODY_BYTES = 1024 * 1024;
const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

export class WebhookReceiver {
  private readonly secrets: readonly string[];
  private readonly toleranceS: number;
  private readonly rememberMs: number;
  private readonly maxRemembered: number;
  private readonly now: () => number;
  /** Handled ids and when they may be forgotten, oldest first. */
  private readonly handled = new Map<string, number>();
  private readonly inFlight = new Set<string>();

  constructor(options: WebhookReceiverOptions) {
    this.secrets = (typeof options.secret === 'string' ? [options.secret] : [...options.secret]).filter(
      (s) => s.length > 0,
    );
    if (this.secrets.length === 0) throw new TypeError('a webhook secret is required');
    this.toleranceS = options.toleranceS ?? 300;
    this.rememberMs = (options.rememberS ?? 86_400) * 1000;
    this.maxRemembered = options.maxRemembered ?? 100_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * Checks a delivery without handling it: signature, replay window, shape, and whether its id
   * was already handled. `rawBody` must be the bytes as received (not re-serialised JSON).
   */
  verify(headers: HeaderSource, rawBody: string | Uint8Array): WebhookResult {
    const id = header(headers, 'webhook-id');
    const timestamp = header(headers, 'webhook-timestamp');
    const signature = header(headers, 'webhook-signature');
    if (!id || !ID_PATTERN.test(id) || !timestamp || !/^[0-9]{1,12}$/.test(timestamp) || !signature)
      return { ok: false, reason: 'malformed' };
    if (byteLength(rawBody) > MAX_BODY_BYTES) return { ok: false, reason: 'malformed' };
    const nowS = this.now() / 1000;
    if (!(Math.abs(nowS - Number(timestamp)) <= this.toleranceS)) return { ok: false, reason: 'stale' };
    const signed = this.secrets.some((secret) =>
      verifyWebhookSignature(secret, timestamp, rawBody, signature, this.toleranceS, nowS),
    );
    if (!signed) return { ok: false, reason: 'signature' };
    let event: WebhookBody;
    try {
      event = JSON.parse(
        typeof rawBody === 'string' ? rawBody : new TextDecoder().decode(rawBody),
      ) as WebhookBody;
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    // The id is signed only through the body: the header must say the same.
    if (typeof event !== 'object' || event === null || event.id !== id || typeof event.type !== 'string')
      return { ok: false, reason: 'malformed' };
    this.forgetExpired();
    if (this.handled.has(id)) return { ok: false, reason: 'duplicate' };
    if (this.inFlight.has(id)) return { ok: false, reason: 'in-progress' };
    return { ok: true, event };
  }

  /**
   * Verifies, then runs `handler` once per id: an id is remembered only when the handler
   * succeeded, so a delivery whose handling failed is handled again when the server retries it.
   */
  async receive(
    headers: HeaderSource,
    rawBody: string | Uint8Array,
    handler: (event: WebhookBody) => Promise<void> | void,
  ): Promise<WebhookResult> {
    const result = this.verify(headers, rawBody);
    if (!result.ok) return result;
    const { id } = result.event;
    this.inFlight.add(id);
    try {
      await handler(result.event);
      this.remember(id);
      return result;
    } finally {
      this.inFlight.delete(id);
    }
  }

  private remember(id: string): void {
    this.handled.delete(id);
    this.handled.set(id, this.now() + this.rememberMs);
    while (this.handled.size > this.maxRemembered) {
      const oldest = this.handled.keys().next().value;
      if (oldest === undefined) break;
      this.handled.delete(oldest);
    }
  }

  private forgetExpired(): void {
    const now = this.now();
    for (const [id, until] of this.handled) {
      if (until > now) break;
      this.handled.delete(id);
    }
  }
}

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const record = headers as Record<string, string | string[] | undefined>;
  const value = record[name] ?? record[Object.keys(record).find((k) => k.toLowerCase() === name) ?? ''];
  return Array.isArray(value) ? value[0] : value;
}

function byteLength(body: string | Uint8Array): number {
  return typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.byteLength;
}

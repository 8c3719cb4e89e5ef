import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures: `Webhook-Signature: v1=<hex HMAC-SHA256 over "<Webhook-Timestamp>.<body>">`
 * keyed with `webhooks.secret`. The timestamp is in the signed text, so a receiver that bounds its
 * age rejects replays of old deliveries; the body is signed byte for byte as sent.
 */

export const SIGNATURE_SCHEME = 'v1';

function hmacHex(secret: string, timestamp: string, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(`${timestamp}.`, 'utf8').update(body).digest('hex');
}

/** The `Webhook-Signature` header value for one delivery attempt. */
export function signWebhook(secret: string, timestamp: number | string, body: string | Uint8Array): string {
  return `${SIGNATURE_SCHEME}=${hmacHex(secret, String(timestamp), body)}`;
}

/**
 * For platform teams: true when `header` (the `Webhook-Signature` value, possibly several
 * space-separated `v1=` entries during a secret rotation) signs `timestamp` and the raw `body` with
 * `secret`, and the timestamp is within `toleranceS` seconds of now. Compares in constant time.
 * Never throws: any malformed input is simply not a valid signature.
 */
export function verifyWebhookSignature(
  secret: string,
  timestamp: string | number,
  body: string | Uint8Array,
  header: string,
  toleranceS: number,
  nowS: number = Date.now() / 1000,
): boolean {
  if (typeof secret !== 'string' || secret.length === 0) return false;
  if (typeof header !== 'string' || header.length > 4096) return false;
  if (typeof body !== 'string' && !(body instanceof Uint8Array)) return false;
  const ts = typeof timestamp === 'number' ? String(timestamp) : timestamp;
  if (typeof ts !== 'string' || !/^[0-9]{1,12}$/.test(ts)) return false;
  if (!Number.isFinite(toleranceS) || toleranceS < 0) return false;
  // Written so that a NaN or non-number clock refuses instead of skipping the freshness check.
  if (typeof nowS !== 'number' || !(Math.abs(nowS - Number(ts)) <= toleranceS)) return false;
  const expected = Buffer.from(hmacHex(secret, ts, body), 'hex');
  let matched = false;
  for (const entry of header.split(/[\s,]+/)) {
    const [scheme, value] = entry.split('=', 2);
    if (scheme !== SIGNATURE_SCHEME || value === undefined || !/^[0-9a-fA-F]{64}$/.test(value)) continue;
    if (timingSafeEqual(Buffer.from(value, 'hex'), expected)) matched = true;
  }
  return matched;
}

import http from 'node:http';
import https from 'node:https';
import { signWebhook } from './signature.js';

/** One signed webhook POST; resolves with the status code once the response is read. */
export function postWebhook(
  target: URL,
  agent: http.Agent,
  secret: string,
  id: string,
  bodyText: string,
  timeoutMs: number,
): Promise<number> {
  const timestamp = Math.floor(Date.now() / 1000);
  const body = Buffer.from(bodyText, 'utf8');
  const request = target.protocol === 'https:' ? https.request : http.request;
  return new Promise<number>((resolve, reject) => {
    const req = request(
      target,
      {
        method: 'POST',
        agent,
        timeout: timeoutMs,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': body.length,
          'User-Agent': 'teleconsult-sfu-webhooks/1',
          'Webhook-Id': id,
          'Webhook-Timestamp': String(timestamp),
          'Webhook-Signature': signWebhook(secret, timestamp, body),
        },
      },
      (res) => {
        res.on('error', reject);
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.resume(); // the response body is not used; drain it so the socket is reused
      },
    );
    const deadline = setTimeout(() => req.destroy(new Error('webhook request timed out')), timeoutMs);
    req.on('close', () => clearTimeout(deadline));
    req.on('timeout', () => req.destroy(new Error('webhook socket idle too long')));
    req.on('error', reject);
    req.end(body);
  });
}

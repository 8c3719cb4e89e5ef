import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhookSignature } from '../../src/webhooks/signature.js';

export interface ReceivedWebhook {
  id: string;
  timestamp: string;
  signature: string;
  contentType: string;
  body: string;
  signatureValid: boolean;
  status: number;
  at: number;
}

/**
 * A real HTTP webhook receiver on 127.0.0.1 for tests. `statusFor` decides each answer (by the
 * number of earlier requests for the same Webhook-Id); every request is recorded.
 */
export class WebhookReceiver {
  readonly requests: ReceivedWebhook[] = [];
  private readonly server: http.Server;
  private waiters: Array<() => void> = [];

  private constructor(
    private readonly secret: string,
    private readonly statusFor: (id: string, previousAttempts: number) => number,
  ) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const id = String(req.headers['webhook-id'] ?? '');
        const timestamp = String(req.headers['webhook-timestamp'] ?? '');
        const signature = String(req.headers['webhook-signature'] ?? '');
        const body = Buffer.concat(chunks).toString('utf8');
        const previous = this.requests.filter((r) => r.id === id).length;
        const status = this.statusFor(id, previous);
        this.requests.push({
          id,
          timestamp,
          signature,
          contentType: String(req.headers['content-type'] ?? ''),
          body,
          signatureValid: verifyWebhookSignature(this.secret, timestamp, body, signature, 300),
          status,
          at: Date.now(),
        });
        res.writeHead(status, { 'Content-Type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
        for (const wake of this.waiters.splice(0)) wake();
      });
    });
  }

  static async start(
    secret: string,
    statusFor: (id: string, previousAttempts: number) => number = () => 200,
  ): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver(secret, statusFor);
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/hooks`;
  }

  /** Ids answered with a 2xx, with how many times each was. */
  deliveredCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const r of this.requests) if (r.status < 300) counts.set(r.id, (counts.get(r.id) ?? 0) + 1);
    return counts;
  }

  /** Resolves when `done()` holds, checked after each request; rejects after `timeoutMs`. */
  async waitFor(done: () => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for webhook requests');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

import WebSocket from 'ws';
import {
  PROTOCOL_SUBPROTOCOL,
  type ErrorBody,
  type Method,
  type RequestParams,
  type RequestResult,
} from '../../src/protocol/messages.js';

export class RequestError extends Error {
  constructor(readonly body: ErrorBody) {
    super(`${body.code}: ${body.message}`);
  }
  get code(): string {
    return this.body.code;
  }
}

export interface Notification {
  notification: string;
  data: Record<string, unknown>;
}

/** A minimal protocol client over `ws` for tests: typed requests, recorded notifications. */
export class SignallingClient {
  readonly notifications: Notification[] = [];
  readonly rawResponses: unknown[] = [];
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private waiters: { match: (n: Notification) => boolean; resolve: (n: Notification) => void }[] = [];
  closeCode: number | undefined;
  readonly closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) =>
      this.onMessage(JSON.parse(data.toString()) as Record<string, unknown>),
    );
    this.closed = new Promise((resolve) =>
      ws.on('close', (code) => {
        this.closeCode = code;
        for (const p of this.pending.values()) p.reject(new Error(`socket closed ${code}`));
        this.pending.clear();
        resolve(code);
      }),
    );
  }

  static async open(url: string, protocol: string | null = PROTOCOL_SUBPROTOCOL): Promise<SignallingClient> {
    const ws = protocol ? new WebSocket(url, protocol) : new WebSocket(url);
    const client = new SignallingClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return client;
  }

  request<M extends Method>(method: M, params: RequestParams<M>): Promise<RequestResult<M>> {
    return this.requestRaw(method, params) as Promise<RequestResult<M>>;
  }

  /** Sends any method and params, valid or not (for hostile-input tests). */
  requestRaw(method: string, params: unknown): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Sends a raw frame and resolves with the next error response that has no matching request. */
  sendRaw(frame: string | Buffer): void {
    this.ws.send(frame);
  }

  async nextRawResponse(): Promise<unknown> {
    const start = this.rawResponses.length;
    while (this.rawResponses.length === start) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      if (this.closeCode !== undefined && this.rawResponses.length === start) throw new Error('closed');
    }
    return this.rawResponses[start];
  }

  waitFor(
    notification: string,
    match: (data: Record<string, unknown>) => boolean = () => true,
  ): Promise<Notification> {
    const found = this.notifications.find((n) => n.notification === notification && match(n.data));
    if (found) return Promise.resolve(found);
    return new Promise((resolve) =>
      this.waiters.push({ match: (n) => n.notification === notification && match(n.data), resolve }),
    );
  }

  /** As a patient: accepts the current teleconsultation consent text. */
  async consent(
    purpose: 'teleconsultation' | 'third-party' = 'teleconsultation',
    coversParticipantId?: string,
  ): Promise<void> {
    const { texts } = await this.request('getConsentTexts', {});
    const text = texts.find((t) => t.purpose === purpose);
    if (!text) throw new Error(`no ${purpose} consent text`);
    await this.request('giveConsent', {
      purpose,
      textId: text.textId,
      version: text.version,
      hash: text.hash,
      ...(coversParticipantId ? { coversParticipantId } : {}),
    });
  }

  close(): void {
    this.ws.close();
  }

  private onMessage(message: Record<string, unknown>): void {
    if (typeof message.notification === 'string') {
      const n = message as unknown as Notification;
      this.notifications.push(n);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(n)) return true;
        w.resolve(n);
        return false;
      });
      return;
    }
    const pending = typeof message.id === 'number' ? this.pending.get(message.id) : undefined;
    if (!pending) {
      this.rawResponses.push(message);
      return;
    }
    this.pending.delete(message.id as number);
    if (message.ok === true) pending.resolve(message.result);
    else pending.reject(new RequestError(message.error as ErrorBody));
  }
}

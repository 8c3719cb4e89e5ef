import { randomUUID } from 'node:crypto';

/** One reply or event of Janus's HTTP API (only the fields the bench reads). */
export interface JanusMessage {
  janus: string;
  transaction?: string;
  session_id?: number;
  sender?: number;
  data?: { id?: number };
  error?: { code: number; reason: string };
  plugindata?: { plugin: string; data: Record<string, unknown> };
  jsep?: { type: 'offer' | 'answer'; sdp: string };
}

export class JanusApiError extends Error {
  override readonly name = 'JanusApiError';
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
  }
}

const POLL_EVENTS = 50;
const KEEPALIVE_MS = 20_000;
/** Bound on events waiting for a transaction nobody waits for (events we do not use). */
const MAX_PENDING = 10_000;

interface Waiter {
  resolve: (message: JanusMessage) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

function pluginError(message: JanusMessage): JanusApiError | undefined {
  if (message.janus === 'error') {
    return new JanusApiError(
      `janus error ${message.error?.code}: ${message.error?.reason}`,
      message.error?.code,
    );
  }
  const data = message.plugindata?.data;
  if (data && typeof data.error_code === 'number') {
    return new JanusApiError(`videoroom error ${data.error_code}: ${String(data.error)}`, data.error_code);
  }
  return undefined;
}

/**
 * A Janus session over the HTTP API: requests with transactions, one long-poll loop delivering
 * asynchronous plugin events to whoever waits for their transaction, keepalives.
 */
export class JanusSession {
  private readonly waiters = new Map<string, Waiter>();
  private polling = false;
  private keepalive: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly base: string,
    readonly id: number,
  ) {}

  static async create(base: string): Promise<JanusSession> {
    const reply = await post(base, { janus: 'create', transaction: randomUUID() });
    const id = reply.data?.id;
    if (reply.janus !== 'success' || typeof id !== 'number') {
      throw pluginError(reply) ?? new JanusApiError(`unexpected reply to create: ${reply.janus}`);
    }
    const session = new JanusSession(base, id);
    session.startPolling();
    session.keepalive = setInterval(() => {
      void post(`${base}/${id}`, { janus: 'keepalive', transaction: randomUUID() }).catch(() => undefined);
    }, KEEPALIVE_MS);
    session.keepalive.unref();
    return session;
  }

  async attach(plugin: string): Promise<number> {
    const reply = await post(`${this.base}/${this.id}`, {
      janus: 'attach',
      plugin,
      transaction: randomUUID(),
    });
    const id = reply.data?.id;
    if (reply.janus !== 'success' || typeof id !== 'number') {
      throw pluginError(reply) ?? new JanusApiError(`unexpected reply to attach: ${reply.janus}`);
    }
    return id;
  }

  /**
   * Sends a plugin message. Synchronous requests (room create) resolve with Janus's reply; for
   * asynchronous ones Janus acks first, and `event` resolves with the plugin's event.
   */
  async message(
    handle: number,
    body: Record<string, unknown>,
    jsep?: { type: 'offer' | 'answer'; sdp: string },
    timeoutMs = 15_000,
  ): Promise<{ event: Promise<JanusMessage> }> {
    const transaction = randomUUID();
    // Registered before the POST: the event may arrive on the poll before the ack.
    const event = this.waitFor(transaction, timeoutMs);
    let reply: JanusMessage;
    try {
      reply = await post(`${this.base}/${this.id}/${handle}`, {
        janus: 'message',
        transaction,
        body,
        ...(jsep ? { jsep } : {}),
      });
    } catch (error) {
      this.drop(transaction);
      event.catch(() => undefined);
      throw error;
    }
    if (reply.janus === 'ack') return { event: event.then(checked) };
    this.drop(transaction);
    event.catch(() => undefined);
    return { event: Promise.resolve(reply).then(checked) };
  }

  /** Janus waits for the end of candidates before it answers or starts ICE. */
  async trickleCompleted(handle: number): Promise<void> {
    const reply = await post(`${this.base}/${this.id}/${handle}`, {
      janus: 'trickle',
      transaction: randomUUID(),
      candidate: { completed: true },
    });
    const error = pluginError(reply);
    if (error) throw error;
  }

  async detach(handle: number): Promise<void> {
    await post(`${this.base}/${this.id}/${handle}`, { janus: 'detach', transaction: randomUUID() });
  }

  async destroy(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    for (const [transaction, waiter] of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new JanusApiError('janus session closed'));
      this.waiters.delete(transaction);
    }
    await post(`${this.base}/${this.id}`, { janus: 'destroy', transaction: randomUUID() }).catch(
      () => undefined,
    );
  }

  private waitFor(transaction: string, timeoutMs: number): Promise<JanusMessage> {
    if (this.waiters.size >= MAX_PENDING)
      return Promise.reject(new JanusApiError('too many pending requests'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(transaction);
        reject(new JanusApiError(`no janus event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(transaction, { resolve, reject, timer });
    });
  }

  private drop(transaction: string): void {
    const waiter = this.waiters.get(transaction);
    if (!waiter) return;
    clearTimeout(waiter.timer);
    this.waiters.delete(transaction);
  }

  private startPolling(): void {
    if (this.polling) return;
    this.polling = true;
    const loop = async (): Promise<void> => {
      while (!this.closed) {
        let events: JanusMessage[];
        try {
          const response = await fetch(`${this.base}/${this.id}?maxev=${POLL_EVENTS}&rid=${Date.now()}`);
          const body = (await response.json()) as JanusMessage | JanusMessage[];
          events = Array.isArray(body) ? body : [body];
        } catch {
          if (this.closed) return;
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        for (const event of events) this.deliver(event);
      }
    };
    void loop();
  }

  private deliver(event: JanusMessage): void {
    // Only plugin events answer a transaction; webrtcup, media, slowlink and hangup are not used.
    if (event.janus !== 'event' || !event.transaction) return;
    const waiter = this.waiters.get(event.transaction);
    if (!waiter) return;
    clearTimeout(waiter.timer);
    this.waiters.delete(event.transaction);
    waiter.resolve(event);
  }
}

function checked(message: JanusMessage): JanusMessage {
  const error = pluginError(message);
  if (error) throw error;
  return message;
}

async function post(url: string, body: Record<string, unknown>): Promise<JanusMessage> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new JanusApiError(`janus HTTP ${response.status} on ${body.janus as string}`);
  const reply = (await response.json()) as JanusMessage;
  if (reply.janus === 'error') throw pluginError(reply)!;
  return reply;
}

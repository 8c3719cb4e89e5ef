import WebSocket from 'ws';
import { PROTOCOL_SUBPROTOCOL } from '../../../src/protocol/messages.js';
import type {
  ErrorBody,
  Method,
  NotificationName,
  RequestParams,
  RequestResult,
} from '../../../src/protocol/messages.js';
import { TargetError } from '../../harness/target.js';

/** A request the server answered with an error: its stable code, never a message to branch on. */
export class SignallingRequestError extends TargetError {
  constructor(
    readonly method: string,
    readonly code: string,
  ) {
    super(`${method}: ${code}`);
  }
}

export interface SocketOptions {
  /** Local address to connect from (spreads connections over 127.0.0.0/8). */
  localAddress?: string;
  /** Bound on opening the socket and on each request. */
  timeoutMs?: number;
}

type NotificationListener = (data: Record<string, unknown>) => void;

const DEFAULT_TIMEOUT_MS = 15_000;
/** A load client never has more than a handful of requests in flight; more means a bug. */
const MAX_PENDING = 64;

/**
 * The benchmark's own signalling client: one WebSocket, subprotocol `teleconsult.v1`, typed
 * requests with a timeout each, notifications handed to listeners as they arrive (nothing is kept,
 * so ten thousand idle clients cost the generator little).
 */
export class SignallingSocket {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    {
      method: string;
      resolve: (value: unknown) => void;
      reject: (error: Error) => void;
      timer: NodeJS.Timeout;
    }
  >();
  private readonly listeners = new Map<string, NotificationListener[]>();
  private closedWith: string | undefined;
  private readonly timeoutMs: number;

  private constructor(
    private readonly ws: WebSocket,
    timeoutMs: number,
  ) {
    this.timeoutMs = timeoutMs;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) this.onMessage(data.toString('utf8'));
    });
    ws.on('close', (code) => this.onClosed(`socket closed (${code})`));
    ws.on('error', (error) => this.onClosed(`socket error: ${error.message}`));
  }

  static open(url: string, options: SocketOptions = {}): Promise<SignallingSocket> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const ws = new WebSocket(url, PROTOCOL_SUBPROTOCOL, {
      perMessageDeflate: false,
      handshakeTimeout: timeoutMs,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    const socket = new SignallingSocket(ws, timeoutMs);
    return new Promise((resolve, reject) => {
      const fail = (error: Error): void => {
        ws.off('open', opened);
        reject(new TargetError(`WebSocket ${url}: ${error.message}`));
      };
      const opened = (): void => {
        ws.off('error', fail);
        resolve(socket);
      };
      ws.once('open', opened);
      ws.once('error', fail);
    });
  }

  get isOpen(): boolean {
    return this.closedWith === undefined && this.ws.readyState === WebSocket.OPEN;
  }

  request<M extends Method>(method: M, params: RequestParams<M>): Promise<RequestResult<M>> {
    if (this.closedWith !== undefined)
      return Promise.reject(new TargetError(`${method}: ${this.closedWith}`));
    if (this.pending.size >= MAX_PENDING)
      return Promise.reject(new TargetError(`${method}: too many requests in flight`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TargetError(`${method}: no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { method, resolve: resolve as (value: unknown) => void, reject, timer });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Calls `listener` for every later notification of that name. */
  on(notification: NotificationName, listener: NotificationListener): void {
    const list = this.listeners.get(notification) ?? [];
    list.push(listener);
    this.listeners.set(notification, list);
  }

  /** Resolves with the data of the next notification of that name that `match` accepts. */
  next(
    notification: NotificationName,
    match: (data: Record<string, unknown>) => boolean = () => true,
    timeoutMs = this.timeoutMs,
  ): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const listener: NotificationListener = (data) => {
        if (!match(data)) return;
        done();
        resolve(data);
      };
      const timer = setTimeout(() => {
        done();
        reject(new TargetError(`no ${notification} within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        const list = this.listeners.get(notification) ?? [];
        this.listeners.set(
          notification,
          list.filter((l) => l !== listener),
        );
      };
      this.on(notification, listener);
    });
  }

  close(): void {
    this.onClosed('closed by the benchmark');
    this.ws.close();
  }

  /** Closes without a closing handshake: for tearing down thousands of sockets at once. */
  terminate(): void {
    this.onClosed('closed by the benchmark');
    this.ws.terminate();
  }

  private onMessage(text: string): void {
    let message: {
      id?: unknown;
      ok?: unknown;
      result?: unknown;
      error?: ErrorBody;
      notification?: unknown;
      data?: unknown;
    };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      return;
    }
    if (typeof message.notification === 'string') {
      const data = (typeof message.data === 'object' && message.data !== null ? message.data : {}) as Record<
        string,
        unknown
      >;
      for (const listener of [...(this.listeners.get(message.notification) ?? [])]) listener(data);
      return;
    }
    if (typeof message.id !== 'number') return;
    const pending = this.pending.get(message.id);
    if (!pending) return;
    this.pending.delete(message.id);
    clearTimeout(pending.timer);
    if (message.ok === true) pending.resolve(message.result);
    else pending.reject(new SignallingRequestError(pending.method, message.error?.code ?? 'UNKNOWN'));
  }

  private onClosed(reason: string): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = reason;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new TargetError(`${p.method}: ${reason}`));
      this.pending.delete(id);
    }
  }
}

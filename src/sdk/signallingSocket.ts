import type {
  ErrorBody,
  Method,
  NotificationData,
  NotificationName,
  RequestParams,
  RequestResult,
} from '../protocol/messages.js';
import { TeleconsultError, fromServerError } from './errors.js';
import type { Locale } from './messages.js';

/** The subprotocol of protocol version 1 (kept literal so the bundle does not pull in TypeBox). */
export const SUBPROTOCOL = 'teleconsult.v1';

// Listener types declared as methods are compared bivariantly, so both the browser's WebSocket
// and the `ws` package's WebSocket (whose events are richer) fit this shape without casts.
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

/** The part of the WebSocket API the SDK uses: the browser's `WebSocket` and `ws` both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

const OPEN = 1;
/** Requests awaiting an answer on one connection; beyond this the SDK refuses more. */
const MAX_PENDING = 256;

export interface AnyNotification {
  notification: NotificationName;
  data: NotificationData<NotificationName>;
}

export interface SocketEvents {
  notification(message: AnyNotification): void;
  /** A failed response not tied to a request (the server could not read the request's id). */
  orphanError(error: TeleconsultError): void;
  close(code: number, reason: string): void;
}

interface Pending {
  method: Method;
  resolve(result: unknown): void;
  reject(error: TeleconsultError): void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * One signalling WebSocket: correlates responses to requests by id, times requests out, and
 * hands notifications on. It knows nothing of rooms or reconnection (see session.ts).
 */
export class SignallingSocket {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  private constructor(
    private readonly ws: WebSocketLike,
    private readonly locale: Locale,
    private readonly events: SocketEvents,
  ) {
    ws.onmessage = (event) => this.onMessage(event.data);
    ws.onclose = (event) => this.onClose(event.code, event.reason);
    ws.onerror = () => undefined; // a close event always follows
  }

  /** Opens a WebSocket and resolves once it is open with the right subprotocol. */
  static open(
    WebSocketImpl: WebSocketConstructor,
    url: string,
    options: { timeoutMs: number; locale: Locale },
    events: SocketEvents,
  ): Promise<SignallingSocket> {
    return new Promise((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = new WebSocketImpl(url, SUBPROTOCOL);
      } catch (err) {
        reject(new TeleconsultError('CONNECTION_FAILED', options.locale, describe(err), undefined, err));
        return;
      }
      const fail = (detail: string) => {
        clearTimeout(timer);
        ws.onopen = ws.onclose = null;
        ws.onerror = () => undefined; // `ws` throws on an unheard error event while closing
        try {
          ws.close();
        } catch {
          // already closing
        }
        reject(new TeleconsultError('CONNECTION_FAILED', options.locale, detail));
      };
      const timer = setTimeout(() => fail('timed out opening the connection'), options.timeoutMs);
      ws.onerror = () => undefined;
      ws.onclose = (event) => fail(`closed before opening (${event.code})`);
      ws.onopen = () => {
        clearTimeout(timer);
        ws.onopen = null;
        if (ws.protocol !== SUBPROTOCOL) return fail(`server did not accept ${SUBPROTOCOL}`);
        resolve(new SignallingSocket(ws, options.locale, events));
      };
    });
  }

  get isOpen(): boolean {
    return !this.closed && this.ws.readyState === OPEN;
  }

  /** Sends a request and resolves with its result, or rejects with a `TeleconsultError`. */
  request<M extends Method>(
    method: M,
    params: RequestParams<M>,
    timeoutMs: number,
  ): Promise<RequestResult<M>> {
    return new Promise<RequestResult<M>>((resolve, reject) => {
      if (!this.isOpen) return reject(new TeleconsultError('CONNECTION_LOST', this.locale, method));
      if (this.pending.size >= MAX_PENDING) {
        return reject(
          new TeleconsultError('RATE_LIMITED', this.locale, 'too many requests awaiting an answer'),
        );
      }
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TeleconsultError('REQUEST_TIMEOUT', this.locale, method));
      }, timeoutMs);
      this.pending.set(id, { method, resolve: resolve, reject, timer });
      try {
        this.ws.send(JSON.stringify({ id, method, params }));
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new TeleconsultError('CONNECTION_LOST', this.locale, describe(err), undefined, err));
      }
    });
  }

  /** Closes the connection; pending requests fail with CONNECTION_LOST. */
  close(code = 1000, reason = 'client closed'): void {
    if (this.closed) return;
    try {
      this.ws.close(code, reason);
    } catch {
      // already closed
    }
    this.onClose(code, reason);
  }

  private onMessage(data: unknown): void {
    if (typeof data !== 'string') return; // the protocol uses text frames only
    let message: unknown;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (!isObject(message)) return;
    if (typeof message.notification === 'string') {
      this.events.notification(message as unknown as AnyNotification);
      return;
    }
    if (typeof message.ok !== 'boolean') return;
    const error = message.ok ? undefined : readErrorBody(message.error);
    if (typeof message.id !== 'number') {
      if (error) this.events.orphanError(fromServerError(error, this.locale));
      return;
    }
    const pending = this.pending.get(message.id);
    if (!pending) return; // answered after its time-out
    this.pending.delete(message.id);
    clearTimeout(pending.timer);
    if (message.ok) pending.resolve(message.result ?? {});
    else
      pending.reject(
        error
          ? fromServerError(error, this.locale)
          : new TeleconsultError('UNEXPECTED_RESPONSE', this.locale),
      );
  }

  private onClose(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.onmessage = this.ws.onclose = null;
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      this.pending.delete(id);
      pending.reject(new TeleconsultError('CONNECTION_LOST', this.locale, pending.method));
    }
    this.events.close(code, reason);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function readErrorBody(value: unknown): ErrorBody | undefined {
  if (!isObject(value) || typeof value.code !== 'string') return undefined;
  return {
    code: value.code,
    message: typeof value.message === 'string' ? value.message : '',
    ...(typeof value.detail === 'string' ? { detail: value.detail } : {}),
  };
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message.slice(0, 200) : String(err).slice(0, 200);
}

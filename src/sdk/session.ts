import type { Method, RequestParams, RequestResult } from '../protocol/messages.js';
import { TypedEmitter } from './emitter.js';
import { TeleconsultError, hasServerCode, isTeleconsultError } from './errors.js';
import { hasMessage, type Locale } from './messages.js';
import { mayRetry, reconnectDelay, type ReconnectPolicy } from './reconnectPolicy.js';
import {
  SignallingSocket,
  type AnyNotification,
  type SocketEvents,
  type WebSocketConstructor,
} from './signallingSocket.js';

/** The signalling connection as the application sees it. */
export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

export type JoinResult = RequestResult<'join'>;
export type ResumeResult = RequestResult<'resume'>;

/**
 * What proves the right to join: a join token (JWT from the platform, or from an invitation's link),
 * or the 8-digit access code of an invitation (for a patient who types it in).
 */
export type JoinCredentials = { token: string } | { accessCode: string };

/** Normalises `connect()`'s second argument: a bare string is a token. */
export function joinCredentials(value: string | JoinCredentials): JoinCredentials {
  if (typeof value === 'string') return { token: value };
  if ('accessCode' in value) return { accessCode: value.accessCode.replace(/[\s-]/g, '') };
  return { token: value.token };
}

export interface SessionOptions {
  WebSocket: WebSocketConstructor;
  locale: Locale;
  /** How long a request may wait for its answer (including while reconnecting). */
  requestTimeoutMs: number;
  /** How long opening one WebSocket may take. */
  connectTimeoutMs: number;
  reconnect: ReconnectPolicy;
  e2ee: boolean;
  /** The end-to-end encryption public key announced to the others (with `e2ee`). */
  e2eeKey?: string | undefined;
  /**
   * Where the browser announces that the network is back (`online` events): `window` in a
   * browser. A reconnection waiting for its backoff delay then tries at once.
   */
  networkEvents?: NetworkEventTarget | undefined;
}

/** The part of `window` the session listens to. */
export interface NetworkEventTarget {
  addEventListener(type: 'online', listener: () => void): void;
  removeEventListener(type: 'online', listener: () => void): void;
}

/**
 * What started a reconnection attempt: its backoff delay ran out, the browser reported the
 * network back (`online`), or a media transport's ICE reconnected (the network works again).
 */
export type ReconnectTrigger = 'backoff' | 'online' | 'ice';

export type SessionEvents = {
  connectionStateChanged: [state: ConnectionState];
  notification: [message: AnyNotification];
  /** The connection came back and the server resumed the session. */
  resumed: [result: ResumeResult];
  /** An attempt is scheduled after `delayMs`... */
  reconnectAttempt: [info: { attempt: number; delayMs: number }];
  /** ...and starts now, for this reason (sooner than the delay when the network came back). */
  reconnectStarted: [info: { attempt: number; trigger: ReconnectTrigger }];
  /** The session ended for good: `undefined` after `leave()`, the reason otherwise. */
  ended: [reason: TeleconsultError | undefined];
  /** A server error not tied to any request. */
  error: [error: TeleconsultError];
};

/** Requests that may wait for a reconnection at once; more are refused. */
const MAX_WAITING_REQUESTS = 256;

/** Methods the SDK may send twice without changing the outcome (a lost answer is retried). */
const IDEMPOTENT_METHODS: ReadonlySet<Method> = new Set<Method>([
  'setRtpCapabilities',
  'restartIce',
  'pauseProducer',
  'resumeProducer',
  'closeProducer',
  'closeConsumer',
  'pauseConsumer',
  'resumeConsumer',
  'setConsumerPreferredLayers',
  'getStats',
  'admit',
  'getConsentTexts',
  'getWaitingList',
  'reportPrecheck',
]);

interface Waiter {
  resolve(socket: SignallingSocket): void;
  reject(error: TeleconsultError): void;
}

/**
 * A participant's signalling session: joins with a token, then keeps the session alive across
 * network drops by reconnecting with backoff and sending `resume` with the last resume token.
 * Requests made while reconnecting wait (up to their time-out) for the connection to return.
 */
export class Session extends TypedEmitter<SessionEvents> {
  private socket: SignallingSocket | undefined;
  private currentState: ConnectionState = 'connecting';
  private waiters: Waiter[] = [];
  private wakeReconnect: ((trigger: ReconnectTrigger) => void) | undefined;
  /** The network came back while an attempt was in flight: the next one starts without delay. */
  private networkBack: ReconnectTrigger | undefined;
  private readonly onOnline = () => this.networkRestored('online');
  private endReason: TeleconsultError | undefined;

  private constructor(
    /** The node serving this session (after any ROOM_ELSEWHERE redirect). */
    private url: string,
    /** The URL the application gave: in a cluster, it finds the room's new node after a failure. */
    private readonly entryUrl: string,
    private readonly options: SessionOptions,
    private resumeTokenValue: string,
  ) {
    super();
    options.networkEvents?.addEventListener('online', this.onOnline);
  }

  /**
   * Opens the connection and joins with a token or an access code, following ROOM_ELSEWHERE to the
   * node hosting the room (cluster mode). Rejects with a `TeleconsultError`.
   */
  static async join(
    url: string,
    credentials: string | JoinCredentials,
    options: SessionOptions,
  ): Promise<{ session: Session; result: JoinResult }> {
    let target = url;
    for (let hop = 0; ; hop++) {
      try {
        return await Session.joinAt(target, url, credentials, options);
      } catch (err) {
        const next = hop < MAX_REDIRECTS ? redirectTarget(err) : undefined;
        if (!next) throw err;
        target = next;
      }
    }
  }

  private static async joinAt(
    url: string,
    entryUrl: string,
    credentials: string | JoinCredentials,
    options: SessionOptions,
  ): Promise<{ session: Session; result: JoinResult }> {
    const session = new Session(url, entryUrl, options, '');
    const ref: { socket?: SignallingSocket } = {};
    const socket = await SignallingSocket.open(
      options.WebSocket,
      url,
      { timeoutMs: options.connectTimeoutMs, locale: options.locale },
      {
        notification: (message) => session.onNotification(message),
        orphanError: (error) => session.emit('error', error),
        close: (code, reason) => {
          if (ref.socket) session.onSocketClose(ref.socket, code, reason);
        },
      },
    );
    let result: JoinResult;
    try {
      result = await socket.request(
        'join',
        {
          ...joinCredentials(credentials),
          capabilities: { e2ee: options.e2ee, ...(options.e2eeKey ? { e2eeKey: options.e2eeKey } : {}) },
        },
        options.requestTimeoutMs,
      );
    } catch (err) {
      socket.close(1000, 'join failed');
      throw err;
    }
    if (result.protocolVersion !== 1) {
      socket.close(1000, 'protocol version');
      throw new TeleconsultError(
        'PROTOCOL_VERSION_UNSUPPORTED',
        options.locale,
        String(result.protocolVersion),
      );
    }
    session.resumeTokenValue = result.resumeToken;
    session.socket = socket;
    ref.socket = socket;
    session.setState('connected');
    if (!socket.isOpen) session.onSocketClose(socket, 1006, 'closed during join');
    return { session, result };
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** Why the session ended, once `state` is 'disconnected' (undefined after `leave()`). */
  get reason(): TeleconsultError | undefined {
    return this.endReason;
  }

  /**
   * Sends a request; while reconnecting, it waits for the connection to return. A request whose
   * connection dropped before the answer is sent again after the resume when repeating it is
   * harmless (see IDEMPOTENT_METHODS); others fail with CONNECTION_LOST.
   */
  async request<M extends Method>(
    method: M,
    params: RequestParams<M>,
    timeoutMs = this.options.requestTimeoutMs,
  ): Promise<RequestResult<M>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const socket = await this.connectedSocket(Math.max(1, deadline - Date.now()), method);
      try {
        return await socket.request(method, params, Math.max(1, deadline - Date.now()));
      } catch (err) {
        const retry =
          isTeleconsultError(err) &&
          err.code === 'CONNECTION_LOST' &&
          IDEMPOTENT_METHODS.has(method) &&
          this.currentState !== 'disconnected' &&
          Date.now() < deadline;
        if (!retry) throw err;
      }
    }
  }

  /**
   * Drops the connection as a network failure would, so that the reconnection path can be
   * exercised (tests, the try-it page). The session then reconnects and resumes.
   */
  simulateConnectionDrop(): void {
    this.socket?.close(4999, 'simulated drop');
  }

  /**
   * The network works again (the browser's `online` event, or ICE reconnected on a transport): a
   * reconnection waiting for its backoff delay tries at once. The backoff itself is kept for
   * attempts that fail while the network is up (the server is down or restarting).
   */
  networkRestored(trigger: Exclude<ReconnectTrigger, 'backoff'>): void {
    if (this.currentState !== 'reconnecting' || !this.options.reconnect.wakeOnNetworkReturn) return;
    this.networkBack = trigger;
    this.wakeReconnect?.(trigger);
  }

  /** Leaves the room and closes the connection. Idempotent. */
  async leave(): Promise<void> {
    if (this.currentState === 'disconnected') return;
    const socket = this.socket;
    if (socket?.isOpen && this.currentState === 'connected') {
      await socket
        .request('leave', {}, Math.min(this.options.requestTimeoutMs, 3_000))
        .catch(() => undefined);
    }
    this.end(undefined);
  }

  /** Ends the session locally with `reason` (no `leave` request). */
  end(reason: TeleconsultError | undefined): void {
    if (this.currentState === 'disconnected') return;
    this.endReason = reason;
    this.setState('disconnected');
    this.options.networkEvents?.removeEventListener('online', this.onOnline);
    const socket = this.socket;
    this.socket = undefined;
    socket?.close(1000, 'left');
    this.wakeReconnect?.('backoff');
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters)
      waiter.reject(reason ?? new TeleconsultError('NOT_CONNECTED', this.options.locale));
    this.emit('ended', reason);
  }

  private connectedSocket(timeoutMs: number, method: Method): Promise<SignallingSocket> {
    const { locale } = this.options;
    if (this.currentState === 'connected' && this.socket?.isOpen) return Promise.resolve(this.socket);
    if (this.currentState === 'disconnected') {
      return Promise.reject(new TeleconsultError('NOT_CONNECTED', locale, method));
    }
    if (this.waiters.length >= MAX_WAITING_REQUESTS) {
      return Promise.reject(
        new TeleconsultError('RATE_LIMITED', locale, 'too many requests waiting for reconnection'),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (socket) => {
          clearTimeout(timer);
          resolve(socket);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new TeleconsultError('REQUEST_TIMEOUT', locale, `${method} (waiting for reconnection)`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  private onNotification(message: AnyNotification): void {
    if (this.currentState !== 'disconnected') this.emit('notification', message);
  }

  private onSocketClose(socket: SignallingSocket, code: number, reason: string): void {
    if (socket !== this.socket || this.currentState === 'disconnected') return;
    this.socket = undefined;
    const terminal = terminalCloseError(code, reason, this.options.locale);
    if (terminal) return this.end(terminal);
    if (!this.options.reconnect.enabled)
      return this.end(new TeleconsultError('CONNECTION_LOST', this.options.locale));
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    const { reconnect: policy, locale } = this.options;
    this.setState('reconnecting');
    const startedAt = Date.now();
    let attempts = 0;
    let lastError = new TeleconsultError('CONNECTION_LOST', locale);
    this.networkBack = undefined;
    while (this.currentState === 'reconnecting' && mayRetry(policy, attempts, Date.now() - startedAt)) {
      attempts++;
      const delayMs = reconnectDelay(policy, attempts);
      this.emit('reconnectAttempt', { attempt: attempts, delayMs });
      const trigger = this.networkBack ?? (await this.sleep(delayMs));
      this.networkBack = undefined;
      if (this.currentState !== 'reconnecting') return;
      this.emit('reconnectStarted', { attempt: attempts, trigger });
      const socketRef: { current?: SignallingSocket } = {};
      const events: SocketEvents = {
        notification: (message) => this.onNotification(message),
        orphanError: (error) => this.emit('error', error),
        close: (code, reason) => {
          if (socketRef.current) this.onSocketClose(socketRef.current, code, reason);
        },
      };
      let socket: SignallingSocket;
      try {
        socket = await SignallingSocket.open(
          this.options.WebSocket,
          this.url,
          { timeoutMs: this.options.connectTimeoutMs, locale },
          events,
        );
      } catch (err) {
        lastError = err as TeleconsultError;
        // In a cluster the node serving us may be gone for good: the entry URL finds the new one.
        this.url = this.entryUrl;
        continue;
      }
      if (this.currentState !== 'reconnecting') {
        socket.close(1000, 'session ended');
        return;
      }
      let result: ResumeResult;
      try {
        result = await socket.request(
          'resume',
          { resumeToken: this.resumeTokenValue },
          this.options.requestTimeoutMs,
        );
      } catch (err) {
        socket.close(1000, 'resume failed');
        lastError = err as TeleconsultError;
        const next = redirectTarget(err);
        if (next) {
          this.url = next;
          continue;
        }
        // The server answered: the session is gone (RESUME_REJECTED, ROOM_CLOSED...). Do not insist.
        if (hasServerCode(lastError)) return this.end(lastError);
        continue;
      }
      if (this.currentState !== 'reconnecting') {
        socket.close(1000, 'session ended');
        return;
      }
      socketRef.current = socket;
      this.socket = socket;
      this.resumeTokenValue = result.resumeToken;
      this.setState('connected');
      this.emit('resumed', result);
      const waiters = this.waiters;
      this.waiters = [];
      for (const waiter of waiters) waiter.resolve(socket);
      if (!socket.isOpen) this.onSocketClose(socket, 1006, 'closed during resume');
      return;
    }
    if (this.currentState === 'reconnecting') {
      this.end(
        new TeleconsultError(
          'CONNECTION_FAILED',
          locale,
          `gave up after ${attempts} attempts`,
          lastError.detail,
        ),
      );
    }
  }

  /** Waits `ms`, or less if woken; resolves with what ended the wait. */
  private sleep(ms: number): Promise<ReconnectTrigger> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done('backoff'), ms);
      const done = (trigger: ReconnectTrigger) => {
        clearTimeout(timer);
        this.wakeReconnect = undefined;
        resolve(trigger);
      };
      this.wakeReconnect = done;
    });
  }

  private setState(state: ConnectionState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    this.emit('connectionStateChanged', state);
  }
}

/** ROOM_ELSEWHERE hops followed for one join (the room's node is known after one). */
const MAX_REDIRECTS = 2;

/** The signalling URL of the node a ROOM_ELSEWHERE error names (its detail is the node's base URL). */
function redirectTarget(error: unknown): string | undefined {
  if (!isTeleconsultError(error) || error.code !== 'ROOM_ELSEWHERE' || !error.detail) return undefined;
  try {
    const url = new URL(error.detail);
    if (url.protocol === 'http:' || url.protocol === 'ws:') url.protocol = 'ws:';
    else if (url.protocol === 'https:' || url.protocol === 'wss:') url.protocol = 'wss:';
    else return undefined;
    url.pathname = '/ws';
    url.search = '';
    return url.toString();
  } catch {
    return undefined;
  }
}

/** Close codes the server uses to end a session for good; anything else is worth a reconnection. */
function terminalCloseError(code: number, reason: string, locale: Locale): TeleconsultError | undefined {
  if (code === 4999 && reason === 'simulated drop') return undefined;
  if (code === 1000) return new TeleconsultError('CONNECTION_LOST', locale, reason || 'closed by the server');
  if (code < 4000 || code > 4999) return undefined;
  switch (reason) {
    case 'declined':
      return new TeleconsultError('DECLINED', locale);
    case 'removed':
      return new TeleconsultError('REMOVED', locale);
    case 'room closed':
      return new TeleconsultError('ROOM_CLOSED', locale);
    case 'resumed elsewhere':
      return new TeleconsultError('SESSION_REPLACED', locale);
    default:
      return new TeleconsultError(
        hasMessage(reason) ? reason : 'CONNECTION_LOST',
        locale,
        `closed by the server (${code})`,
      );
  }
}

import type { WebSocket, RawData } from 'ws';
import { SfuError, isSfuError, type ErrorCode } from '../errors/catalogue.js';
import type { Method, NotificationName, ResponseEnvelope } from '../protocol/messages.js';
import { envelopeCheck, firstViolation, isMethod, paramChecks } from '../protocol/validators.js';
import type { Room } from '../rooms/room.js';
import type { Participant, ParticipantLink } from '../rooms/participant.js';
import type { SignallingContext } from './context.js';
import { HANDLERS, type HandlerScope } from './handlers.js';
import { TokenBucket } from './rateLimiter.js';

/** Requests queued per connection before further ones are refused. */
const MAX_PENDING_REQUESTS = 32;
/** A client that does not read its notifications is cut off rather than buffered forever. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/**
 * One signalling WebSocket: validates every message at the boundary, runs requests one at a time
 * in arrival order, and links the connection to its participant once joined.
 */
export class SignallingConnection {
  private member: { room: Room; participant: Participant } | undefined;
  private readonly bucket: TokenBucket;
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;
  private readonly authTimer: NodeJS.Timeout;
  private readonly openedAt = performance.now();
  private closed = false;
  readonly link: ParticipantLink;

  constructor(
    private readonly ws: WebSocket,
    private readonly ctx: SignallingContext,
    private readonly address: string,
  ) {
    this.bucket = new TokenBucket(ctx.config.limits.messagesPerSecond);
    this.link = {
      notify: (name, data) => this.notify(name as NotificationName, data),
      close: (reason) => this.close(4000, reason),
    };
    this.authTimer = setTimeout(() => {
      if (!this.member) this.fail(null, new SfuError('AUTH_TIMEOUT'), true);
    }, ctx.config.limits.authTimeoutMs);
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', () => this.onClose());
    ws.on('error', () => ws.terminate());
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
    // Every frame spends a token, valid or not; over the rate, only well-formed requests get an answer.
    const withinRate = this.bucket.take();
    if (size > this.ctx.config.limits.wsMaxPayloadBytes) {
      return withinRate ? this.fail(null, new SfuError('MESSAGE_TOO_LARGE')) : undefined;
    }
    if (isBinary)
      return withinRate ? this.fail(null, new SfuError('MESSAGE_MALFORMED', 'binary frame')) : undefined;
    let message: unknown;
    try {
      message = JSON.parse(
        Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8'),
      );
    } catch {
      return withinRate ? this.fail(null, new SfuError('MESSAGE_MALFORMED')) : undefined;
    }
    if (!envelopeCheck.Check(message)) {
      if (!withinRate) return;
      const id =
        typeof (message as { id?: unknown })?.id === 'number' ? (message as { id: number }).id : null;
      return this.fail(id, new SfuError('MESSAGE_INVALID', firstViolation(envelopeCheck, message)));
    }
    const { id, method } = message;
    if (!withinRate) return this.fail(id, new SfuError('RATE_LIMITED'));
    const params = message.params ?? {};
    if (!isMethod(method)) return this.fail(id, new SfuError('METHOD_UNKNOWN'));
    const check = paramChecks[method];
    if (!check.Check(params))
      return this.fail(id, new SfuError('MESSAGE_INVALID', firstViolation(check, params)));
    if (this.pending >= MAX_PENDING_REQUESTS)
      return this.fail(id, new SfuError('RATE_LIMITED', 'too many pending'));
    this.pending++;
    this.queue = this.queue.then(() => this.run(id, method, params)).finally(() => this.pending--);
  }

  private async run(id: number, method: Method, params: unknown): Promise<void> {
    if (this.closed) return;
    const scope: HandlerScope = {
      ctx: this.ctx,
      member: this.member,
      connection: { link: this.link, address: this.address, setMember: (member) => this.setMember(member) },
    };
    try {
      const handler = HANDLERS[method] as (scope: HandlerScope, params: unknown) => Promise<unknown>;
      const result = await handler(scope, params);
      this.ctx.metrics.wsMessages.inc({ method, outcome: 'ok' });
      if (method === 'join' || method === 'resume') {
        this.ctx.metrics.joinSeconds.observe((performance.now() - this.openedAt) / 1000);
      }
      this.send({ id, ok: true, result });
      if (method === 'resume') this.replayPending();
    } catch (err) {
      this.ctx.metrics.wsMessages.inc({ method, outcome: 'error' });
      if (isSfuError(err)) {
        this.fail(id, err);
      } else {
        this.ctx.log.error({ method, err: (err as Error).message }, 'request failed');
        this.fail(id, new SfuError('INTERNAL'));
      }
    }
  }

  /** What was said while the participant was away must not be lost with its old socket. */
  private replayPending(): void {
    if (!this.member) return;
    const { room, participant } = this.member;
    if (participant.heldMessage && !participant.mayExchangeMedia)
      this.notify('admissionChanged', { state: participant.state, message: participant.heldMessage });
    this.ctx.rooms.waitingRoom.requestOpenConsents(room, participant);
  }

  private setMember(member: { room: Room; participant: Participant }): void {
    this.member = member;
    clearTimeout(this.authTimer);
  }

  private notify(notification: NotificationName, data: unknown): void {
    if (this.closed) return;
    this.sendRaw(JSON.stringify({ notification, data }));
  }

  private fail(id: number | null, error: SfuError, thenClose = false): void {
    this.ctx.metrics.rejections.inc({ code: error.code satisfies ErrorCode });
    this.send({ id, ok: false, error: error.toJSON() });
    if (thenClose) this.close(4000 + Math.min(error.status, 999), error.code);
  }

  private send(envelope: ResponseEnvelope): void {
    this.sendRaw(JSON.stringify(envelope));
  }

  private sendRaw(text: string): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if (this.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.ws.terminate();
      return;
    }
    this.ws.send(text);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(code, reason.slice(0, 100));
  }

  private onClose(): void {
    this.closed = true;
    clearTimeout(this.authTimer);
    if (this.member) this.ctx.rooms.disconnected(this.member.room, this.member.participant, this.link);
  }
}

import type { types } from 'mediasoup';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/** Which limits a data channel gets: a device's readings, or anything else (application, warm-up). */
export type DataChannelClass = 'vital-signs' | 'application';

export interface RateLimit {
  messagesPerSecond: number;
  messageBurst: number;
  bytesPerSecond: number;
  byteBurst: number;
}

export function rateLimitOf(config: Config['dataChannels'], channel: DataChannelClass): RateLimit {
  return channel === 'vital-signs'
    ? {
        messagesPerSecond: config.vitalSignsMessagesPerSecond,
        messageBurst: config.vitalSignsMessageBurst,
        bytesPerSecond: config.vitalSignsBytesPerSecond,
        byteBurst: config.vitalSignsByteBurst,
      }
    : {
        messagesPerSecond: config.applicationMessagesPerSecond,
        messageBurst: config.applicationMessageBurst,
        bytesPerSecond: config.applicationBytesPerSecond,
        byteBurst: config.applicationByteBurst,
      };
}

/** What one check decided for one data producer. */
export type RateVerdict = 'forward' | 'hold' | 'release' | 'close';

/**
 * A token bucket (messages and bytes) fed with counts observed after the fact: the worker has
 * already forwarded what arrived while the producer ran, so a check can only stop what comes next.
 * Over the limit, the producer is held (paused: the worker drops its messages) until an interval in
 * which the sender stayed within the sustained rate; held longer than `floodCloseMs`, it is closed.
 */
export class ObservedBucket {
  private messageTokens: number;
  private byteTokens: number;
  /** When it went over the limit and has not slowed down since. */
  private overSince: number | undefined;
  held = false;

  constructor(
    private readonly limit: RateLimit,
    private readonly floodCloseMs: number,
  ) {
    this.messageTokens = limit.messageBurst;
    this.byteTokens = limit.byteBurst;
  }

  /** `messages` and `bytes` arrived in the last `elapsedMs`; `now` is the check's time. */
  observe(messages: number, bytes: number, elapsedMs: number, now: number): RateVerdict {
    const seconds = Math.max(0, elapsedMs) / 1000;
    const withinRate =
      messages <= this.limit.messagesPerSecond * seconds && bytes <= this.limit.bytesPerSecond * seconds;
    this.messageTokens = Math.min(
      this.limit.messageBurst,
      this.messageTokens + this.limit.messagesPerSecond * seconds,
    );
    this.byteTokens = Math.min(this.limit.byteBurst, this.byteTokens + this.limit.bytesPerSecond * seconds);
    if (this.held) {
      // Held: everything that arrived was dropped by the worker, and costs no tokens.
      if (withinRate) {
        this.held = false;
        this.overSince = undefined;
        return 'release';
      }
      return now - (this.overSince ?? now) >= this.floodCloseMs ? 'close' : 'hold';
    }
    this.messageTokens -= messages;
    this.byteTokens -= bytes;
    if (this.messageTokens >= 0 && this.byteTokens >= 0) return 'forward';
    this.held = true;
    this.overSince = now;
    return 'hold';
  }
}

interface Watched {
  dataProducer: types.DataProducer;
  channel: DataChannelClass;
  bucket: ObservedBucket;
  messages: number;
  bytes: number;
  at: number;
  onFlood: () => void;
}

export interface DataRateGuardDeps {
  config: Config['dataChannels'];
  metrics: Metrics;
  log: Logger;
}

/**
 * Server-side rate limits of data channels, without a per-message hop to Node: one timer for the
 * whole process reads each data producer's counters from the worker (`getStats`:
 * messagesReceived, bytesReceived, counted even while paused) every `checkIntervalMs` and pauses a
 * producer over its bucket; the worker then drops what it sends (counted as drops) until it slows
 * down, or closes it after a sustained flood. The payload is never read: it may be end-to-end
 * encrypted, so only counts and sizes matter. Between two checks a sender can get up to one
 * interval's worth of messages through before it is held (bounded further by the transport's
 * SCTP receive window and per-stream send queues, and by the receiving SDK's own limit).
 */
export class DataRateGuard {
  private readonly watched = new Map<string, Watched>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private readonly log: Logger;

  constructor(private readonly deps: DataRateGuardDeps) {
    this.log = deps.log.child({ module: 'data-rate' });
  }

  /** Limits `dataProducer` from now on, until it closes; `onFlood` runs after it is closed for a flood. */
  watch(dataProducer: types.DataProducer, channel: DataChannelClass, onFlood: () => void): void {
    if (dataProducer.closed || this.watched.has(dataProducer.id)) return;
    const limit = rateLimitOf(this.deps.config, channel);
    this.watched.set(dataProducer.id, {
      dataProducer,
      channel,
      bucket: new ObservedBucket(limit, this.deps.config.floodCloseS * 1000),
      messages: 0,
      bytes: 0,
      at: performance.now(),
      onFlood,
    });
    dataProducer.observer.once('close', () => {
      this.watched.delete(dataProducer.id);
      if (this.watched.size === 0) this.stopTimer();
    });
    this.timer ??= setInterval(() => void this.check(), this.deps.config.checkIntervalMs);
    this.timer.unref();
  }

  /** Data producers limited now. */
  get size(): number {
    return this.watched.size;
  }

  close(): void {
    this.watched.clear();
    this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One pass over every watched producer; a pass still running when the next is due is not doubled. */
  private async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      await Promise.all([...this.watched.values()].map((w) => this.checkOne(w)));
    } finally {
      this.checking = false;
    }
  }

  private async checkOne(w: Watched): Promise<void> {
    let stats: types.DataProducerStat[];
    try {
      stats = await w.dataProducer.getStats();
    } catch {
      return; // Closed meanwhile: its close listener forgets it.
    }
    const stat = stats[0];
    if (!stat || w.dataProducer.closed) return;
    const now = performance.now();
    const messages = stat.messagesReceived - w.messages;
    const bytes = stat.bytesReceived - w.bytes;
    const elapsedMs = now - w.at;
    w.messages = stat.messagesReceived;
    w.bytes = stat.bytesReceived;
    w.at = now;
    const wasHeld = w.bucket.held;
    const verdict = w.bucket.observe(messages, bytes, elapsedMs, now);
    // While held, the worker dropped everything that arrived.
    if (wasHeld && messages > 0) this.deps.metrics.dataMessagesDropped.inc({ channel: w.channel }, messages);
    try {
      if (verdict === 'hold' && !wasHeld) {
        await w.dataProducer.pause();
        // What arrived between the reading above and the pause may have been forwarded: drops are
        // counted from a reading taken once the pause is in force (a few may go uncounted, none twice).
        const paused = (await w.dataProducer.getStats())[0];
        if (paused) {
          w.messages = paused.messagesReceived;
          w.bytes = paused.bytesReceived;
        }
        this.log.warn({ dataProducer: w.dataProducer.id, channel: w.channel }, 'data producer over its rate');
      } else if (verdict === 'release') {
        await w.dataProducer.resume();
      } else if (verdict === 'close') {
        this.deps.metrics.dataProducersFloodClosed.inc({ channel: w.channel });
        this.log.warn({ dataProducer: w.dataProducer.id, channel: w.channel }, 'data producer closed: flood');
        w.dataProducer.close();
        w.onFlood();
      }
    } catch {
      // The producer closed between the check and the action: nothing left to limit.
    }
  }
}

/**
 * The one place PIN attempts are counted (docs/phone.md, "PIN policy"). Two limits:
 *
 * - per caller number: `callerMaxFailures` wrong PINs within `callerWindowS` lock that number out
 *   for `callerLockoutS`. Numbers can be forged and all PSTN calls come from the trunk's address,
 *   so this only stops a careless guesser; anonymous callers are not locked out by it (that would
 *   lock out every caller who withholds their number);
 * - global budget: every PIN check, right or wrong, from anyone, takes a token from a bucket that
 *   refills at `globalAttemptsPerMinute` (up to `globalBurst`). With no token left, callers wait
 *   their turn in arrival order. Brute force is thereby held to that rate whatever the number of
 *   callers, while a legitimate caller waits seconds (the queue holds at most one check per call,
 *   so at most maxCalls / rate), never a lockout.
 */
export interface PinGuardOptions {
  readonly callerMaxFailures: number;
  readonly callerWindowS: number;
  readonly callerLockoutS: number;
  readonly globalAttemptsPerMinute: number;
  readonly globalBurst: number;
  /** Called when callers start waiting for the budget (true) and when the queue empties (false). */
  readonly onBudgetExhausted?: (exhausted: boolean) => void;
  readonly now?: () => number;
}

/** Callers tracked at once; beyond it the oldest entries go (memory stays bounded under a flood). */
const MAX_TRACKED_CALLERS = 10_000;
/** Checks waiting for the budget; more than the gateway's calls cannot wait (one per call). */
const MAX_QUEUED_CHECKS = 10_000;

interface Waiter {
  readonly grant: (granted: boolean) => void;
}

export class PinGuard {
  private readonly failures = new Map<string, number[]>();
  private readonly lockedUntil = new Map<string, number>();
  private tokens: number;
  private refilledAt: number;
  private readonly queue: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private exhausted = false;
  private readonly now: () => number;

  constructor(private readonly options: PinGuardOptions) {
    this.now = options.now ?? Date.now;
    this.tokens = options.globalBurst;
    this.refilledAt = this.now();
  }

  /** Whether this caller number is locked out now (undefined: an anonymous caller). */
  isLocked(caller: string | undefined): boolean {
    if (caller === undefined) return false;
    const until = this.lockedUntil.get(caller);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.lockedUntil.delete(caller);
    return false;
  }

  /** Seconds until a locked caller may try again (for Retry-After). */
  get callerLockoutS(): number {
    return this.options.callerLockoutS;
  }

  /** Checks waiting for the global budget now. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Waits for the global budget to allow one PIN check. Resolves true when the check may run,
   * false when `cancelled` resolved first (the call ended while waiting).
   */
  acquire(cancelled: Promise<unknown>): Promise<boolean> {
    this.refill();
    if (this.queue.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return Promise.resolve(true);
    }
    if (this.queue.length >= MAX_QUEUED_CHECKS) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter: Waiter = { grant: resolve };
      this.queue.push(waiter);
      this.setExhausted(true);
      this.schedule();
      void cancelled.then(() => {
        const index = this.queue.indexOf(waiter);
        if (index < 0) return;
        this.queue.splice(index, 1);
        resolve(false);
        if (this.queue.length === 0) this.setExhausted(false);
      });
    });
  }

  /** Records a wrong PIN of this caller; returns true when it starts a lockout of that number. */
  recordFailure(caller: string | undefined): boolean {
    if (caller === undefined) return false;
    const now = this.now();
    const windowStart = now - this.options.callerWindowS * 1000;
    const mine = (this.failures.get(caller) ?? []).filter((at) => at > windowStart);
    mine.push(now);
    this.failures.delete(caller);
    if (mine.length >= this.options.callerMaxFailures) {
      this.lockedUntil.delete(caller);
      this.lockedUntil.set(caller, now + this.options.callerLockoutS * 1000);
      trim(this.lockedUntil);
      return true;
    }
    this.failures.set(caller, mine);
    trim(this.failures);
    return false;
  }

  close(): void {
    clearTimeout(this.timer);
    for (const waiter of this.queue.splice(0)) waiter.grant(false);
  }

  private refill(): void {
    const now = this.now();
    const perMs = this.options.globalAttemptsPerMinute / 60_000;
    this.tokens = Math.min(this.options.globalBurst, this.tokens + (now - this.refilledAt) * perMs);
    this.refilledAt = now;
  }

  /** Grants queued checks as tokens come back, one token each, in arrival order. */
  private schedule(): void {
    if (this.timer || this.queue.length === 0) return;
    const perMs = this.options.globalAttemptsPerMinute / 60_000;
    const waitMs = Math.max(1, Math.ceil((1 - this.tokens) / perMs));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refill();
      while (this.queue.length > 0 && this.tokens >= 1) {
        this.tokens -= 1;
        this.queue.shift()?.grant(true);
      }
      if (this.queue.length === 0) this.setExhausted(false);
      else this.schedule();
    }, waitMs);
  }

  private setExhausted(exhausted: boolean): void {
    if (this.exhausted === exhausted) return;
    this.exhausted = exhausted;
    this.options.onBudgetExhausted?.(exhausted);
  }
}

function trim(map: Map<string, unknown>): void {
  while (map.size > MAX_TRACKED_CALLERS) {
    const oldest = map.keys().next().value;
    if (oldest === undefined) return;
    map.delete(oldest);
  }
}

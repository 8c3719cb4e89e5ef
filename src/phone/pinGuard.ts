/**
 * Limits PIN guessing. Wrong PINs are counted per caller number and over all callers inside a sliding
 * window; past either limit PIN entry is locked for the lockout time (per caller, or for everyone:
 * caller numbers can be forged, so the global limit is the real bound on guesses).
 */
export interface PinGuardOptions {
  readonly callerMaxFailures: number;
  readonly globalMaxFailures: number;
  readonly failureWindowS: number;
  readonly lockoutS: number;
  readonly now?: () => number;
}

export type PinLock = 'caller' | 'global' | undefined;

/** Callers tracked at once; beyond it the oldest entries go (memory stays bounded under a flood). */
const MAX_TRACKED_CALLERS = 10_000;

export class PinGuard {
  private readonly failures = new Map<string, number[]>();
  private readonly lockedUntil = new Map<string, number>();
  private globalFailures: number[] = [];
  private globalLockedUntil = 0;
  private readonly now: () => number;

  constructor(private readonly options: PinGuardOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Whether this caller may try a PIN now. */
  lockFor(caller: string): PinLock {
    const now = this.now();
    if (this.globalLockedUntil > now) return 'global';
    const until = this.lockedUntil.get(caller);
    if (until !== undefined && until > now) return 'caller';
    if (until !== undefined) this.lockedUntil.delete(caller);
    return undefined;
  }

  /** Records a wrong PIN; returns the lock it caused, if any. */
  recordFailure(caller: string): PinLock {
    const now = this.now();
    const windowStart = now - this.options.failureWindowS * 1000;
    const mine = (this.failures.get(caller) ?? []).filter((at) => at > windowStart);
    mine.push(now);
    this.failures.delete(caller);
    this.failures.set(caller, mine.slice(-this.options.callerMaxFailures));
    if (this.failures.size > MAX_TRACKED_CALLERS) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    this.globalFailures = this.globalFailures.filter((at) => at > windowStart);
    this.globalFailures.push(now);
    if (this.globalFailures.length > this.options.globalMaxFailures) this.globalFailures.shift();

    if (this.globalFailures.length >= this.options.globalMaxFailures) {
      this.globalLockedUntil = now + this.options.lockoutS * 1000;
      this.globalFailures = [];
      return 'global';
    }
    if (mine.length >= this.options.callerMaxFailures) {
      this.lockedUntil.set(caller, now + this.options.lockoutS * 1000);
      if (this.lockedUntil.size > MAX_TRACKED_CALLERS) {
        const oldest = this.lockedUntil.keys().next().value;
        if (oldest !== undefined) this.lockedUntil.delete(oldest);
      }
      this.failures.delete(caller);
      return 'caller';
    }
    return undefined;
  }
}

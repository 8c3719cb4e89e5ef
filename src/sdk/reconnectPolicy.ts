/**
 * When and how often the SDK tries to get a dropped signalling connection back. Delays grow
 * exponentially with random jitter (so that a whole hospital network coming back does not
 * reconnect in lockstep), and the SDK gives up after `maxAttempts` or `maxTotalMs`, whichever
 * comes first. Keep `maxTotalMs` within the server's resume grace period (30 s by default):
 * after it, the server has removed the participant and the resume is rejected anyway.
 */
export interface ReconnectPolicy {
  /** Reconnect at all after an unexpected drop. */
  enabled: boolean;
  /** Attempts before giving up. */
  maxAttempts: number;
  /** Delay before the first attempt. */
  initialDelayMs: number;
  /** Ceiling for any one delay. */
  maxDelayMs: number;
  /** Growth factor between attempts. */
  multiplier: number;
  /** Fraction (0..1) of each delay that is randomised: 0.3 means the delay lands in [0.7 d, d]. */
  jitter: number;
  /** Give up once this long has passed since the drop. */
  maxTotalMs: number;
  /**
   * Try at once when the network is known to be back (the browser's `online` event, a media
   * transport's ICE reconnecting) instead of sleeping out the backoff delay. `false` keeps to the
   * backoff alone.
   */
  wakeOnNetworkReturn: boolean;
}

export const DEFAULT_RECONNECT_POLICY: ReconnectPolicy = Object.freeze({
  enabled: true,
  maxAttempts: 12,
  initialDelayMs: 250,
  maxDelayMs: 5_000,
  multiplier: 2,
  jitter: 0.3,
  maxTotalMs: 30_000,
  wakeOnNetworkReturn: true,
});

/** Merges a partial policy over the defaults, clamping values into sane ranges. */
export function resolveReconnectPolicy(
  input: Partial<ReconnectPolicy> | boolean | undefined,
): ReconnectPolicy {
  if (input === false) return { ...DEFAULT_RECONNECT_POLICY, enabled: false };
  const merged = { ...DEFAULT_RECONNECT_POLICY, ...(typeof input === 'object' ? input : {}) };
  const initialDelayMs = clamp(merged.initialDelayMs, 0, 60_000);
  return {
    enabled: merged.enabled,
    maxAttempts: Math.floor(clamp(merged.maxAttempts, 0, 1_000)),
    initialDelayMs,
    maxDelayMs: clamp(merged.maxDelayMs, initialDelayMs, 300_000),
    multiplier: clamp(merged.multiplier, 1, 10),
    jitter: clamp(merged.jitter, 0, 1),
    maxTotalMs: clamp(merged.maxTotalMs, 0, 3_600_000),
    wakeOnNetworkReturn: merged.wakeOnNetworkReturn !== false,
  };
}

/**
 * The delay before attempt number `attempt` (1-based). `random` returns a number in [0, 1);
 * pass a fixed function to get deterministic delays in tests.
 */
export function reconnectDelay(
  policy: ReconnectPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, attempt - 1);
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.multiplier ** exponent);
  return Math.round(base * (1 - policy.jitter * random()));
}

/** Whether another attempt is allowed after `attemptsMade` attempts and `elapsedMs` since the drop. */
export function mayRetry(policy: ReconnectPolicy, attemptsMade: number, elapsedMs: number): boolean {
  return policy.enabled && attemptsMade < policy.maxAttempts && elapsedMs < policy.maxTotalMs;
}

function clamp(value: number, min: number, max: number): number {
  if (!Number.isFinite(value)) return min;
  return Math.min(max, Math.max(min, value));
}

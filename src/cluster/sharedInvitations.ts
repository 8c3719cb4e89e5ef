import { createHmac } from 'node:crypto';
import type { Redis } from 'ioredis';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { JoinClaims } from '../auth/joinTokens.js';

const claimsCheck = TypeCompiler.Compile(JoinClaims);

/** A code outlives its invitation by this much in Redis, so the expiry check always finds it. */
const EXPIRY_MARGIN_MS = 60_000;

/** Reads a code's claims and deletes them in one step: one node wins a code. */
const TAKE_CODE = `
local value = redis.call('GET', KEYS[1])
if value then redis.call('DEL', KEYS[1]) end
return value`;

/**
 * Invitation access codes shared by the nodes of a cluster, so that a code typed on any node
 * finds its invitation. Redis holds, under a keyed digest of the code (HMAC with the cluster's
 * token secret, never the code), the claims the code stands for, until the invitation expires.
 * Key: `<prefix>code:<hmac>` (docs/cluster.md).
 */
export class SharedInvitations {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly secret: string,
  ) {}

  private key(code: string): string {
    return `${this.prefix}code:${createHmac('sha256', this.secret).update(code).digest('base64url')}`;
  }

  /** Makes a new invitation's code usable on every node until `claims.exp`. */
  async publish(code: string, claims: JoinClaims): Promise<void> {
    const ttlMs = Math.max(1000, claims.exp * 1000 - Date.now() + EXPIRY_MARGIN_MS);
    await this.redis.set(this.key(code), JSON.stringify(claims), 'PX', ttlMs);
  }

  /** The claims a code stands for, without using it; undefined for an unknown or expired code. */
  async find(code: string): Promise<JoinClaims | undefined> {
    return this.valid(await this.redis.get(this.key(code)));
  }

  /** Uses a code: its claims for the one caller that takes it, undefined for every other. */
  async take(code: string): Promise<JoinClaims | undefined> {
    return this.valid((await this.redis.eval(TAKE_CODE, 1, this.key(code))) as string | null);
  }

  private valid(text: string | null): JoinClaims | undefined {
    if (!text) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return undefined;
    }
    // What comes back from Redis is checked like a token's claims before anyone relies on it.
    if (!claimsCheck.Check(value) || value.exp * 1000 <= Date.now()) return undefined;
    return value;
  }
}

import { randomInt, randomUUID, createHash } from 'node:crypto';
import { SfuError } from '../errors/catalogue.js';
import type { Role } from '../protocol/messages.js';
import type { JoinClaims } from './joinTokens.js';

export interface Invitation {
  id: string;
  roomId: string;
  participantId: string;
  role: Role;
  displayName: string | undefined;
  rpps: string | undefined;
  /** jti of the link token issued with it: using the link uses the invitation. */
  tokenId: string;
  expiresAt: number;
  used: boolean;
}

export interface AccessCodePolicy {
  digits: number;
  /** Wrong codes allowed per address within the window before it is locked out. */
  maxFailuresPerAddress: number;
  /** Wrong codes allowed from everyone within the window before all code entry pauses. */
  maxFailuresGlobal: number;
  windowMs: number;
  lockoutMs: number;
}

export const DEFAULT_ACCESS_CODE_POLICY: AccessCodePolicy = {
  digits: 8,
  maxFailuresPerAddress: 5,
  maxFailuresGlobal: 200,
  windowMs: 10 * 60_000,
  lockoutMs: 15 * 60_000,
};

const MAX_INVITATIONS = 100_000;

/** What an invitation's access code lets its holder join as: the claims of its link token. */
export function claimsOf(invitation: Invitation): JoinClaims {
  return {
    room: invitation.roomId,
    sub: invitation.participantId,
    role: invitation.role,
    ...(invitation.displayName !== undefined ? { name: invitation.displayName } : {}),
    ...(invitation.rpps !== undefined ? { rpps: invitation.rpps } : {}),
    jti: invitation.tokenId,
    exp: Math.floor(invitation.expiresAt / 1000),
  };
}

function codeDigest(code: string): Buffer {
  return createHash('sha256').update(code).digest();
}

/**
 * Single-use invitations with their short numeric access codes. A code is only ever compared by
 * digest; wrong codes are counted per address and globally, and past the limit code entry is
 * locked out for a while. Unknown, expired and used codes get the same answer.
 */
export class InvitationStore {
  private readonly byId = new Map<string, Invitation>();
  private readonly byCodeDigest = new Map<string, Invitation>();
  private readonly byTokenId = new Map<string, Invitation>();
  private readonly failures = new Map<string, { count: number; since: number; lockedUntil: number }>();
  private globalFailures = { count: 0, since: 0, lockedUntil: 0 };
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Invitation id -> digest of its code: codes themselves are never kept. */
  private readonly codeKeys = new Map<string, string>();

  constructor(
    private readonly policy: AccessCodePolicy,
    /** Called once for every invitation that reaches its expiry unused. */
    private readonly onExpired: (invitation: Invitation) => void,
    private readonly now: () => number = Date.now,
  ) {}

  create(
    fields: Omit<Invitation, 'id' | 'used' | 'tokenId' | 'expiresAt'> & { tokenId: string; ttlS: number },
  ): {
    invitation: Invitation;
    accessCode: string;
  } {
    if (this.byId.size >= MAX_INVITATIONS) throw new SfuError('LIMIT_EXCEEDED', 'invitations');
    let accessCode: string;
    do {
      accessCode = String(randomInt(0, 10 ** this.policy.digits)).padStart(this.policy.digits, '0');
    } while (this.byCodeDigest.has(codeDigest(accessCode).toString('hex')));
    const invitation: Invitation = {
      id: `inv_${randomUUID()}`,
      roomId: fields.roomId,
      participantId: fields.participantId,
      role: fields.role,
      displayName: fields.displayName,
      rpps: fields.rpps,
      tokenId: fields.tokenId,
      expiresAt: this.now() + fields.ttlS * 1000,
      used: false,
    };
    this.byId.set(invitation.id, invitation);
    const codeKey = codeDigest(accessCode).toString('hex');
    this.byCodeDigest.set(codeKey, invitation);
    this.codeKeys.set(invitation.id, codeKey);
    this.byTokenId.set(invitation.tokenId, invitation);
    const timer = setTimeout(() => this.expire(invitation), fields.ttlS * 1000);
    timer.unref();
    this.timers.set(invitation.id, timer);
    return { invitation, accessCode };
  }

  /** Marks the invitation behind a link token used (a platform-signed token has none). */
  useByTokenId(tokenId: string): void {
    const invitation = this.byTokenId.get(tokenId);
    if (invitation) this.consume(invitation);
  }

  /**
   * Exchanges an access code for the claims of its invitation, once. Wrong codes count towards
   * the lockout of `address`; a locked address or a global pause gets RATE_LIMITED.
   */
  redeem(code: string, address: string): JoinClaims {
    this.checkLockout(address);
    const claims = this.claim(code);
    if (!claims) {
      this.recordWrongCode(address);
      throw new SfuError('ACCESS_DENIED');
    }
    return claims;
  }

  /** RATE_LIMITED while `address`, or code entry as a whole, is locked out. */
  checkLockout(address: string): void {
    const now = this.now();
    if (this.globalFailures.lockedUntil > now) throw new SfuError('RATE_LIMITED', 'access codes paused');
    const entry = this.failures.get(address);
    if (entry && entry.lockedUntil > now) throw new SfuError('RATE_LIMITED', 'too many wrong codes');
  }

  /** Counts a wrong code from `address` towards its lockout and the global pause. */
  recordWrongCode(address: string): void {
    this.countFailure(address, this.now());
  }

  /**
   * Exchanges an access code for the claims of its invitation, once, counting nothing: for a
   * caller that limits attempts itself (the phone gateway's PIN policy, src/phone/pinGuard.ts),
   * so that one attempt is never judged by two policies. Undefined for an unknown, used or
   * expired code.
   */
  claim(code: string): JoinClaims | undefined {
    const now = this.now();
    // Looked up by digest: no comparison of the code itself that timing could reveal.
    const invitation = this.byCodeDigest.get(codeDigest(code).toString('hex'));
    if (invitation === undefined || invitation.used || invitation.expiresAt <= now) return undefined;
    this.consume(invitation);
    return claimsOf(invitation);
  }

  pendingFor(roomId: string): Invitation[] {
    return [...this.byId.values()].filter((i) => i.roomId === roomId && !i.used);
  }

  dropRoom(roomId: string): void {
    for (const invitation of this.pendingFor(roomId)) this.forget(invitation);
  }

  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private countFailure(address: string, now: number): void {
    const entry = this.failures.get(address);
    const fresh = !entry || now - entry.since > this.policy.windowMs;
    const next = fresh ? { count: 1, since: now, lockedUntil: 0 } : { ...entry, count: entry.count + 1 };
    if (next.count >= this.policy.maxFailuresPerAddress) next.lockedUntil = now + this.policy.lockoutMs;
    this.failures.set(address, next);
    if (this.failures.size > MAX_INVITATIONS) {
      for (const [key, value] of this.failures)
        if (value.lockedUntil < now && now - value.since > this.policy.windowMs) this.failures.delete(key);
    }
    if (now - this.globalFailures.since > this.policy.windowMs)
      this.globalFailures = { count: 0, since: now, lockedUntil: 0 };
    this.globalFailures.count++;
    if (this.globalFailures.count >= this.policy.maxFailuresGlobal) {
      this.globalFailures.lockedUntil = now + this.policy.lockoutMs;
    }
  }

  private consume(invitation: Invitation): void {
    invitation.used = true;
    this.forget(invitation);
  }

  private expire(invitation: Invitation): void {
    if (invitation.used || !this.byId.has(invitation.id)) return;
    this.forget(invitation);
    this.onExpired(invitation);
  }

  private forget(invitation: Invitation): void {
    this.byId.delete(invitation.id);
    this.byTokenId.delete(invitation.tokenId);
    const codeKey = this.codeKeys.get(invitation.id);
    if (codeKey) this.byCodeDigest.delete(codeKey);
    this.codeKeys.delete(invitation.id);
    clearTimeout(this.timers.get(invitation.id));
    this.timers.delete(invitation.id);
  }
}

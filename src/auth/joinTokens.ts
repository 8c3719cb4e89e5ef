import fs from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  SignJWT,
  createLocalJWKSet,
  createRemoteJWKSet,
  jwtVerify,
  type JWTVerifyGetKey,
  type JSONWebKeySet,
} from 'jose';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Role } from '../protocol/messages.js';
import type { Config } from '../config/schema.js';
import { SfuError } from '../errors/catalogue.js';

/** What a join token grants: one participant, one room, one role, once, for minutes. */
export const JoinClaims = Type.Object({
  room: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' }),
  sub: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' }),
  role: Role,
  name: Type.Optional(Type.String({ maxLength: 128 })),
  /** Professional identifier (e.g. RPPS) carried for the journal; never logged. */
  rpps: Type.Optional(Type.String({ maxLength: 32 })),
  /** Patient identity status (R.6316-3): checked against an identity proof, or only declared. */
  idStatus: Type.Optional(
    Type.Union([Type.Literal('verified'), Type.Literal('declared'), Type.Literal('unverified')]),
  ),
  jti: Type.String({ minLength: 8, maxLength: 128 }),
  exp: Type.Integer(),
  iat: Type.Optional(Type.Integer()),
});
export type JoinClaims = Static<typeof JoinClaims>;
const claimsCheck = TypeCompiler.Compile(JoinClaims);

/** How far ahead of this server's clock a token's issue time may be (clocks of the platform drift). */
const CLOCK_SKEW_S = 30;

/** Remembers used token ids until they expire, so each token works once. Bounded. */
class UsedTokenIds {
  private readonly expiries = new Map<string, number>();
  constructor(private readonly capacity: number) {}

  /** Returns false if the id was already used. */
  claim(jti: string, expSeconds: number, nowSeconds: number): boolean {
    if (this.expiries.has(jti)) return false;
    if (this.expiries.size >= this.capacity) this.sweep(nowSeconds);
    if (this.expiries.size >= this.capacity) throw new SfuError('RATE_LIMITED', 'join token store full');
    this.expiries.set(jti, expSeconds);
    return true;
  }

  private sweep(nowSeconds: number): void {
    for (const [jti, exp] of this.expiries) if (exp < nowSeconds) this.expiries.delete(jti);
  }
}

export class JoinTokenVerifier {
  private readonly used = new UsedTokenIds(1_000_000);
  private readonly hmacKey: Uint8Array | undefined;
  private readonly keySet: JWTVerifyGetKey | undefined;

  constructor(
    private readonly config: Config['auth'],
    /** Used when no secret is configured: the embedded default signs with a per-process secret. */
    fallbackSecret: Uint8Array,
  ) {
    if (config.jwksFile) {
      this.keySet = createLocalJWKSet(JSON.parse(fs.readFileSync(config.jwksFile, 'utf8')) as JSONWebKeySet);
    } else if (config.jwksUrl) {
      this.keySet = createRemoteJWKSet(new URL(config.jwksUrl));
    }
    this.hmacKey = config.tokenSecret ? new TextEncoder().encode(config.tokenSecret) : fallbackSecret;
  }

  /**
   * Verifies signature, audience, expiry, lifetime and single use. Every failure gives the same
   * ACCESS_DENIED answer, so a caller cannot tell an unknown room from a forbidden one.
   */
  async verify(token: string): Promise<JoinClaims> {
    let payload: unknown;
    try {
      const options = {
        audience: this.config.tokenAudience,
        ...(this.config.tokenIssuer ? { issuer: this.config.tokenIssuer } : {}),
        algorithms: ['HS256', 'RS256', 'ES256'],
      };
      payload = (
        this.keySet && !isHmacToken(token)
          ? await jwtVerify(token, this.keySet, options)
          : await jwtVerify(token, this.hmacKey ?? new Uint8Array(), { ...options, algorithms: ['HS256'] })
      ).payload;
    } catch {
      throw new SfuError('ACCESS_DENIED');
    }
    if (!claimsCheck.Check(payload)) throw new SfuError('ACCESS_DENIED');
    const now = Math.floor(Date.now() / 1000);
    // A token issued "in the future" must not stretch its lifetime: the cap counts from now too.
    if (payload.iat !== undefined && payload.iat > now + CLOCK_SKEW_S) throw new SfuError('ACCESS_DENIED');
    const max = this.config.maxTokenLifetimeS;
    if (payload.exp - (payload.iat ?? now) > max || payload.exp - now > max + CLOCK_SKEW_S)
      throw new SfuError('ACCESS_DENIED');
    if (!this.used.claim(payload.jti, payload.exp, now)) throw new SfuError('ACCESS_DENIED');
    return payload;
  }

  /** Marks a token id used without seeing the token (its invitation was redeemed by access code). */
  markUsed(jti: string, expSeconds: number): void {
    this.used.claim(jti, expSeconds, Math.floor(Date.now() / 1000));
  }
}

function isHmacToken(token: string): boolean {
  try {
    const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as {
      alg?: string;
    };
    return header.alg === 'HS256';
  } catch {
    return false;
  }
}

export interface TokenGrant {
  room: string;
  participantId: string;
  role: Static<typeof Role>;
  displayName?: string;
  rpps?: string;
  ttlS: number;
}

/** Signs join tokens with the shared secret (invitations, the demo page, tests). */
export async function signJoinToken(
  secret: Uint8Array,
  audience: string,
  grant: TokenGrant,
): Promise<string> {
  const claims: Record<string, unknown> = { room: grant.room, role: grant.role };
  if (grant.displayName !== undefined) claims.name = grant.displayName;
  if (grant.rpps !== undefined) claims.rpps = grant.rpps;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(grant.participantId)
    .setAudience(audience)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + grant.ttlS)
    .sign(secret);
}

export function randomSecret(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

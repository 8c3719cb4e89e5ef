import { createHash, randomBytes } from 'node:crypto';

/**
 * Digest access authentication as a SIP client (RFC 2617, RFC 7616 as used by SIP through RFC 8760):
 * MD5 and SHA-256, with or without qop=auth. The gateway answers challenges from the operator's
 * registrar or trunk; it never challenges anyone itself (inbound trust is the source allow-list).
 */

export type DigestAlgorithm = 'MD5' | 'SHA-256';

export interface DigestChallenge {
  readonly realm: string;
  readonly nonce: string;
  readonly algorithm: DigestAlgorithm;
  readonly qop: 'auth' | undefined;
  readonly opaque: string | undefined;
  readonly stale: boolean;
}

export interface DigestCredentials {
  readonly username: string;
  readonly password: string;
}

/** Parses `Digest realm="x", nonce="y", ...`; undefined when the scheme, algorithm or qop is not supported. */
export function parseDigestChallenge(header: string): DigestChallenge | undefined {
  const match = /^\s*Digest\s+(.*)$/is.exec(header);
  if (!match) return undefined;
  const params = parseAuthParams(match[1] ?? '');
  if (!params) return undefined;
  const realm = params.get('realm');
  const nonce = params.get('nonce');
  if (realm === undefined || !nonce) return undefined;
  const algorithmText = (params.get('algorithm') ?? 'MD5').toUpperCase();
  if (algorithmText !== 'MD5' && algorithmText !== 'SHA-256') return undefined;
  const qopList = params.get('qop');
  let qop: 'auth' | undefined;
  if (qopList !== undefined) {
    const offered = qopList.split(',').map((q) => q.trim().toLowerCase());
    if (!offered.includes('auth')) return undefined; // auth-int alone is not supported.
    qop = 'auth';
  }
  return {
    realm,
    nonce,
    algorithm: algorithmText,
    qop,
    opaque: params.get('opaque'),
    stale: (params.get('stale') ?? '').toLowerCase() === 'true',
  };
}

/** `name=value` or `name="quoted"` pairs separated by commas; undefined on syntax errors. */
export function parseAuthParams(text: string): Map<string, string> | undefined {
  const params = new Map<string, string>();
  const pattern = /\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(,|$)/y;
  let index = 0;
  while (index < text.length) {
    pattern.lastIndex = index;
    const match = pattern.exec(text);
    if (!match) return undefined;
    const name = (match[1] ?? '').toLowerCase();
    const value = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : (match[3] ?? '');
    if (params.has(name)) return undefined;
    params.set(name, value);
    index = pattern.lastIndex;
    if (match[4] === '') break;
  }
  return params;
}

function hash(algorithm: DigestAlgorithm, text: string): string {
  return createHash(algorithm === 'MD5' ? 'md5' : 'sha256')
    .update(text, 'utf8')
    .digest('hex');
}

export interface DigestResponseInput {
  readonly challenge: DigestChallenge;
  readonly credentials: DigestCredentials;
  readonly method: string;
  readonly uri: string;
  /** Nonce count (1 for the first use of a nonce). */
  readonly nonceCount: number;
  /** Client nonce; random when omitted. */
  readonly cnonce?: string;
}

/** The `response` value of RFC 2617 3.2.2.1 / RFC 7616 3.4.1. */
export function computeDigestResponse(input: DigestResponseInput & { cnonce: string }): string {
  const { challenge, credentials } = input;
  const ha1 = hash(challenge.algorithm, `${credentials.username}:${challenge.realm}:${credentials.password}`);
  const ha2 = hash(challenge.algorithm, `${input.method}:${input.uri}`);
  if (challenge.qop === 'auth') {
    const nc = formatNonceCount(input.nonceCount);
    return hash(challenge.algorithm, `${ha1}:${challenge.nonce}:${nc}:${input.cnonce}:auth:${ha2}`);
  }
  return hash(challenge.algorithm, `${ha1}:${challenge.nonce}:${ha2}`);
}

function formatNonceCount(count: number): string {
  return count.toString(16).padStart(8, '0');
}

function quote(value: string): string {
  return `"${value.replace(/(["\\])/g, '\\$1')}"`;
}

/** The value of an Authorization or Proxy-Authorization header answering the challenge. */
export function buildAuthorization(input: DigestResponseInput): string {
  const cnonce = input.cnonce ?? randomBytes(12).toString('hex');
  const response = computeDigestResponse({ ...input, cnonce });
  const { challenge } = input;
  const parts = [
    `username=${quote(input.credentials.username)}`,
    `realm=${quote(challenge.realm)}`,
    `nonce=${quote(challenge.nonce)}`,
    `uri=${quote(input.uri)}`,
    `response=${quote(response)}`,
    `algorithm=${challenge.algorithm}`,
  ];
  if (challenge.qop === 'auth')
    parts.push(`qop=auth`, `nc=${formatNonceCount(input.nonceCount)}`, `cnonce=${quote(cnonce)}`);
  if (challenge.opaque !== undefined) parts.push(`opaque=${quote(challenge.opaque)}`);
  return `Digest ${parts.join(', ')}`;
}

/**
 * Picks the challenge to answer among several WWW-/Proxy-Authenticate headers: SHA-256 before MD5
 * (RFC 8760 4: the client uses the strongest algorithm it supports).
 */
export function chooseChallenge(headers: readonly string[]): DigestChallenge | undefined {
  const parsed = headers.map(parseDigestChallenge).filter((c): c is DigestChallenge => c !== undefined);
  return parsed.find((c) => c.algorithm === 'SHA-256') ?? parsed[0];
}

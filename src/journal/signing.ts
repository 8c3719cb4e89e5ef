import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../observability/logger.js';
import { fsyncDirectory } from './durableLog.js';

/**
 * Ed25519 signatures over journal checkpoints. A checkpoint signs (consultation id, sequence
 * number, record hash): everything up to that record is then anchored to the key, so a chain
 * recomputed from the genesis by someone without the key no longer verifies. Node's crypto only.
 */

/** A public key as published at /.well-known/teleconsult-journal-keys.json. */
export interface JournalPublicKey {
  keyId: string;
  alg: 'Ed25519';
  /** The raw 32-byte public key, base64url (the `x` of its JWK). */
  publicKey: string;
}

/** The latest signed point of a consultation's chain, as webhooks carry it. */
export interface SignedHead {
  consultationId: string;
  /** Sequence number and hash of the last record the signature covers. */
  seq: number;
  hash: string;
  keyId: string;
  /** Ed25519 over checkpointPayload(consultationId, seq, hash), base64url. */
  signature: string;
}

export const KEY_ID_PATTERN = /^[0-9a-f]{16}$/;
/** Where the embedded default keeps its generated key, under `journal.dir`. */
export const DEFAULT_SIGNING_KEY_FILE = path.join('keys', 'journal-signing.pem');
const RAW_KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** The exact bytes a checkpoint signs. */
export function checkpointPayload(consultationId: string, seq: number, hash: string): Buffer {
  return Buffer.from(`teleconsult-journal-checkpoint/1\n${consultationId}\n${seq}\n${hash}`, 'utf8');
}

function rawPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new TypeError('not an Ed25519 key');
  return jwk.x;
}

/** First 16 hex digits of SHA-256 over the raw public key: names a key without showing it. */
export function keyIdOf(rawKey: string): string {
  return createHash('sha256').update(Buffer.from(rawKey, 'base64url')).digest('hex').slice(0, 16);
}

export class JournalSigner {
  readonly keyId: string;
  readonly publicKey: JournalPublicKey;

  constructor(private readonly privateKey: KeyObject) {
    if (privateKey.asymmetricKeyType !== 'ed25519')
      throw new TypeError('the journal signing key must be Ed25519');
    const raw = rawPublicKey(createPublicKey(privateKey));
    this.keyId = keyIdOf(raw);
    this.publicKey = { keyId: this.keyId, alg: 'Ed25519', publicKey: raw };
  }

  static generate(): JournalSigner {
    return new JournalSigner(generateKeyPairSync('ed25519').privateKey);
  }

  /** PKCS#8 PEM of the private key (written to the key file, never logged). */
  exportPem(): string {
    return this.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  }

  sign(consultationId: string, seq: number, hash: string): string {
    return sign(null, checkpointPayload(consultationId, seq, hash), this.privateKey).toString('base64url');
  }
}

export type SignatureCheck = 'valid' | 'invalid' | 'unknown-key';

/** The public keys a verifier trusts: the current signing key and retired ones. */
export class JournalKeyring {
  private readonly keys = new Map<string, { entry: JournalPublicKey; key: KeyObject }>();

  constructor(entries: readonly JournalPublicKey[] = []) {
    for (const entry of entries) this.add(entry);
  }

  add(entry: JournalPublicKey): void {
    if (!RAW_KEY_PATTERN.test(entry.publicKey))
      throw new TypeError('a journal public key is 32 bytes, base64url');
    const keyId = keyIdOf(entry.publicKey);
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: entry.publicKey }, format: 'jwk' });
    this.keys.set(keyId, { entry: { keyId, alg: 'Ed25519', publicKey: entry.publicKey }, key });
  }

  get size(): number {
    return this.keys.size;
  }

  list(): JournalPublicKey[] {
    return [...this.keys.values()].map((k) => k.entry);
  }

  check(consultationId: string, seq: number, hash: string, keyId: string, signature: string): SignatureCheck {
    const found = this.keys.get(keyId);
    if (!found) return 'unknown-key';
    const bytes = Buffer.from(signature, 'base64url');
    if (bytes.length !== 64) return 'invalid';
    return verify(null, checkpointPayload(consultationId, seq, hash), found.key, bytes) ? 'valid' : 'invalid';
  }
}

/** The document served at the well-known path; also what `verifyCli --keys` reads. */
export function keySetDocument(keyring: JournalKeyring): { format: string; keys: JournalPublicKey[] } {
  return { format: 'teleconsult-journal-keys/1', keys: keyring.list() };
}

/** Reads a key set document, or a bare list of base64url public keys. Throws on anything else. */
export function parseKeySet(text: string): JournalPublicKey[] {
  const value = JSON.parse(text) as unknown;
  const list = Array.isArray(value) ? value : (value as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list)) throw new TypeError('a key set is {"keys": [...]} or a list');
  return list.map((item) => {
    const raw = typeof item === 'string' ? item : (item as { publicKey?: unknown } | null)?.publicKey;
    if (typeof raw !== 'string' || !RAW_KEY_PATTERN.test(raw))
      throw new TypeError('a key is 32 bytes, base64url');
    return { keyId: keyIdOf(raw), alg: 'Ed25519' as const, publicKey: raw };
  });
}

export interface SigningKeySource {
  /** `journal.signingKey`: a PKCS#8 PEM (from a secret, e.g. SFU_JOURNAL__SIGNING_KEY). */
  pem: string | null;
  /** `journal.signingKeyFile`: must exist when set. */
  file: string | null;
  /** Used when both are null: generated on first start and kept (embedded single node). */
  defaultFile: string;
  logger?: Logger;
}

/**
 * The server's signing key: from the configuration, from the configured file, or from the default
 * file, generated (mode 0600) when absent. Logs which key is in use by its id, never the key.
 */
export async function loadSigningKey(source: SigningKeySource): Promise<JournalSigner> {
  if (source.pem) {
    const signer = new JournalSigner(createPrivateKey(source.pem));
    source.logger?.info({ keyId: signer.keyId, from: 'configuration' }, 'journal signing key loaded');
    return signer;
  }
  const file = source.file ?? source.defaultFile;
  try {
    const signer = new JournalSigner(createPrivateKey(await readFile(file, 'utf8')));
    source.logger?.info({ keyId: signer.keyId, file }, 'journal signing key loaded');
    return signer;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || source.file) throw error;
  }
  const signer = JournalSigner.generate();
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  // 'wx': never overwrite a key another process wrote meanwhile.
  await writeFile(file, signer.exportPem(), { mode: 0o600, flag: 'wx' });
  await fsyncDirectory(path.dirname(file));
  source.logger?.warn(
    { keyId: signer.keyId, file },
    'journal signing key generated; back it up and publish its public key (docs/journal.md)',
  );
  return signer;
}

import { compareBytes, concatBytes, fromBase64Url, own, toBase64Url, utf8 } from './bytes.js';

/**
 * A participant's end-to-end identity for one session: an ECDH P-256 key pair whose private key
 * is not extractable (WebCrypto keeps it). The public key is announced at join (base64url of the
 * raw uncompressed point) and reaches the others through the server, which cannot use it.
 *
 * Sender keys travel wrapped for one recipient at a time:
 *
 *   shared   = ECDH(own private key, recipient public key)
 *   wrap key = HKDF-SHA256(shared, salt = "teleconsult e2ee wrap v1", info = room | from | to | from key | to key)
 *   message  = version(1) | iv(12) | AES-GCM(wrap key, iv, aad = info, generation(4) | sender key(16))
 *
 * Static-static ECDH authenticates the sender: only the holder of the sender's private key can
 * produce a message that opens under the pair's key. `info` binds the direction, the room and both
 * public keys, so a message cannot be replayed to another pair, direction or session.
 */
const WRAP_VERSION = 1;
const IV_BYTES = 12;
export const SENDER_KEY_BYTES = 16;
/** Upper bound of a wrapped message (version + iv + generation + key + tag). */
export const WRAPPED_BYTES = 1 + IV_BYTES + 4 + SENDER_KEY_BYTES + 16;

export class KeyWrapError extends Error {
  override readonly name = 'KeyWrapError';
  constructor(readonly reason: 'malformed' | 'bad-public-key' | 'authentication-failed') {
    super(`E2EE key message: ${reason}`);
  }
}

export interface Identity {
  readonly privateKey: CryptoKey;
  /** base64url of the raw public point (65 bytes). */
  readonly publicKey: string;
}

export async function createIdentity(subtle: SubtleCrypto = globalThis.crypto.subtle): Promise<Identity> {
  const pair = await subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
  const raw = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
  return { privateKey: pair.privateKey, publicKey: toBase64Url(raw) };
}

export interface WrapContext {
  roomId: string;
  fromId: string;
  toId: string;
  /** base64url public keys of the sender and the recipient. */
  fromKey: string;
  toKey: string;
}

function contextBytes(ctx: WrapContext): Uint8Array<ArrayBuffer> {
  return utf8(
    ['teleconsult-e2ee-wrap-v1', ctx.roomId, ctx.fromId, ctx.toId, ctx.fromKey, ctx.toKey].join('|'),
  );
}

async function importPublicKey(subtle: SubtleCrypto, key: string): Promise<CryptoKey> {
  try {
    return await subtle.importKey(
      'raw',
      fromBase64Url(key),
      { name: 'ECDH', namedCurve: 'P-256' },
      false,
      [],
    );
  } catch {
    throw new KeyWrapError('bad-public-key');
  }
}

/** The AES-GCM key of one direction of one pair (`ourKey` is ours, the other side's is `theirKey`). */
async function pairKey(
  subtle: SubtleCrypto,
  own: Identity,
  theirKey: string,
  ctx: WrapContext,
): Promise<CryptoKey> {
  const peer = await importPublicKey(subtle, theirKey);
  const shared = await subtle.deriveBits({ name: 'ECDH', public: peer }, own.privateKey, 256);
  const ikm = await subtle.importKey('raw', shared, 'HKDF', false, ['deriveKey']);
  return subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: utf8('teleconsult e2ee wrap v1'), info: contextBytes(ctx) },
    ikm,
    { name: 'AES-GCM', length: 128 },
    false,
    ['encrypt', 'decrypt'],
  );
}

/** Wraps `senderKey` (generation `generation`) for the recipient named in `ctx`; returns base64url. */
export async function wrapSenderKey(
  identity: Identity,
  ctx: WrapContext,
  generation: number,
  senderKey: Uint8Array,
  subtle: SubtleCrypto = globalThis.crypto.subtle,
): Promise<string> {
  if (senderKey.length !== SENDER_KEY_BYTES) throw new RangeError('sender key must be 16 bytes');
  if (!Number.isInteger(generation) || generation < 0 || generation > 0xffffffff)
    throw new RangeError('generation');
  const key = await pairKey(subtle, identity, ctx.toKey, ctx);
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const body = new Uint8Array(4 + SENDER_KEY_BYTES);
  new DataView(body.buffer).setUint32(0, generation);
  body.set(senderKey, 4);
  const sealed = await subtle.encrypt({ name: 'AES-GCM', iv, additionalData: contextBytes(ctx) }, key, body);
  body.fill(0);
  return toBase64Url(concatBytes(new Uint8Array([WRAP_VERSION]), iv, new Uint8Array(sealed)));
}

/** Opens a wrapped sender key addressed to us; throws `KeyWrapError` when it is not authentic. */
export async function unwrapSenderKey(
  identity: Identity,
  ctx: WrapContext,
  payload: string,
  subtle: SubtleCrypto = globalThis.crypto.subtle,
): Promise<{ generation: number; senderKey: Uint8Array<ArrayBuffer> }> {
  let bytes: Uint8Array;
  try {
    bytes = fromBase64Url(payload);
  } catch {
    throw new KeyWrapError('malformed');
  }
  if (bytes.length !== WRAPPED_BYTES || bytes[0] !== WRAP_VERSION) throw new KeyWrapError('malformed');
  const key = await pairKey(subtle, identity, ctx.fromKey, ctx);
  let body: Uint8Array;
  try {
    body = new Uint8Array(
      await subtle.decrypt(
        { name: 'AES-GCM', iv: own(bytes.subarray(1, 1 + IV_BYTES)), additionalData: contextBytes(ctx) },
        key,
        own(bytes.subarray(1 + IV_BYTES)),
      ),
    );
  } catch {
    throw new KeyWrapError('authentication-failed');
  }
  const generation = new DataView(body.buffer, body.byteOffset).getUint32(0);
  return { generation, senderKey: own(body.subarray(4)) };
}

/**
 * A short authentication string two participants compare out of band (read aloud during the
 * call): six digits from SHA-256 over both public keys in sorted order, so both sides compute the
 * same number and a server that substituted a key cannot make them match (1 chance in a million).
 */
export async function safetyNumber(
  keyA: string,
  keyB: string,
  subtle: SubtleCrypto = globalThis.crypto.subtle,
): Promise<string> {
  const [first, second] = [fromBase64Url(keyA), fromBase64Url(keyB)].sort(compareBytes) as [
    Uint8Array,
    Uint8Array,
  ];
  const digest = new Uint8Array(
    await subtle.digest('SHA-256', concatBytes(utf8('teleconsult-e2ee-sas-v1'), first, second)),
  );
  const value = new DataView(digest.buffer).getUint32(0) % 1_000_000;
  const digits = value.toString().padStart(6, '0');
  return `${digits.slice(0, 3)} ${digits.slice(3)}`;
}

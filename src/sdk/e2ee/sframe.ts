import { concatBytes, own, utf8 } from './bytes.js';

/**
 * SFrame (RFC 9605) with the cipher suite AES_128_GCM_SHA256_128 (0x0004), on WebCrypto only so
 * the same code runs in a browser worker and in Node 20 tests.
 *
 *   ciphertext = header(KID, CTR) || AES-GCM(sframe_key, salt XOR CTR, aad = header || metadata, plaintext)
 *
 * KID and CTR are unsigned integers below 2^53 here (JavaScript numbers): a sender increments CTR
 * once per frame, so 2^53 frames is far beyond any consultation.
 */
export const CIPHER_SUITE_AES_128_GCM_SHA256_128 = 0x0004;
const NK = 16; // key bytes
const NN = 12; // nonce bytes
export const SFRAME_TAG_BYTES = 16;
/** Longest header: config byte + 8-byte KID + 8-byte CTR. */
export const SFRAME_MAX_HEADER_BYTES = 17;

export class SFrameError extends Error {
  override readonly name = 'SFrameError';
  constructor(
    readonly reason: 'malformed-header' | 'unknown-key' | 'authentication-failed' | 'counter-exhausted',
  ) {
    super(`SFrame: ${reason}`);
  }
}

export interface SFrameHeader {
  kid: number;
  ctr: number;
  /** Encoded length in bytes. */
  length: number;
}

/** Minimal big-endian bytes for a value >= 8 (1 to 8 bytes). */
function compactBytes(value: number): Uint8Array<ArrayBuffer> {
  const bytes: number[] = [];
  let v = BigInt(value);
  while (v > 0n) {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  return new Uint8Array(bytes);
}

function checkValue(value: number): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new RangeError('KID and CTR must be safe non-negative integers');
}

/** Encodes the SFrame header (RFC 9605 section 4.3): config byte |X|K|Y|C|, then KID, then CTR. */
export function encodeHeader(kid: number, ctr: number): Uint8Array<ArrayBuffer> {
  checkValue(kid);
  checkValue(ctr);
  const kidBytes = kid < 8 ? new Uint8Array(0) : compactBytes(kid);
  const ctrBytes = ctr < 8 ? new Uint8Array(0) : compactBytes(ctr);
  const k = kid < 8 ? kid : 0x8 | (kidBytes.length - 1);
  const c = ctr < 8 ? ctr : 0x8 | (ctrBytes.length - 1);
  return concatBytes(new Uint8Array([(k << 4) | c]), kidBytes, ctrBytes);
}

/** Decodes the header at the start of `data`; throws `SFrameError('malformed-header')` when truncated or out of range. */
export function decodeHeader(data: Uint8Array): SFrameHeader {
  const config = data[0];
  if (config === undefined) throw new SFrameError('malformed-header');
  let offset = 1;
  const read = (field: number): number => {
    if ((field & 0x8) === 0) return field & 0x7;
    const length = (field & 0x7) + 1;
    if (offset + length > data.length) throw new SFrameError('malformed-header');
    let value = 0n;
    for (let i = 0; i < length; i++) value = (value << 8n) | BigInt(data[offset + i] as number);
    offset += length;
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new SFrameError('malformed-header');
    return Number(value);
  };
  const kid = read(config >> 4);
  const ctr = read(config & 0xf);
  return { kid, ctr, length: offset };
}

/** The 8-byte big-endian form of the KID used in the key derivation labels. */
function kid64(kid: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(kid));
  return out;
}

function suiteBytes(): Uint8Array<ArrayBuffer> {
  return new Uint8Array([
    CIPHER_SUITE_AES_128_GCM_SHA256_128 >> 8,
    CIPHER_SUITE_AES_128_GCM_SHA256_128 & 0xff,
  ]);
}

export function keyLabel(kid: number): Uint8Array<ArrayBuffer> {
  return concatBytes(utf8('SFrame 1.0 Secret key '), kid64(kid), suiteBytes());
}

export function saltLabel(kid: number): Uint8Array<ArrayBuffer> {
  return concatBytes(utf8('SFrame 1.0 Secret salt '), kid64(kid), suiteBytes());
}

/** A derived SFrame key: the AES-GCM key (not extractable) and the salt. */
export interface SFrameKey {
  kid: number;
  key: CryptoKey;
  salt: Uint8Array<ArrayBuffer>;
}

/**
 * derive_key_salt (RFC 9605 section 4.4.2). WebCrypto's HKDF is Extract-then-Expand; with an empty
 * salt it computes exactly HKDF-Expand(HKDF-Extract("", base_key), label, L).
 */
export async function deriveKeySalt(
  kid: number,
  baseKey: Uint8Array,
  subtle: SubtleCrypto = globalThis.crypto.subtle,
): Promise<{ key: Uint8Array<ArrayBuffer>; salt: Uint8Array<ArrayBuffer> }> {
  checkValue(kid);
  const ikm = await subtle.importKey('raw', own(baseKey), 'HKDF', false, ['deriveBits']);
  const expand = async (info: Uint8Array<ArrayBuffer>, bytes: number) =>
    new Uint8Array(
      await subtle.deriveBits(
        { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info },
        ikm,
        bytes * 8,
      ),
    );
  return { key: await expand(keyLabel(kid), NK), salt: await expand(saltLabel(kid), NN) };
}

/** Imports a base key for `kid`: the derived AES key never leaves WebCrypto. */
export async function importSFrameKey(
  kid: number,
  baseKey: Uint8Array,
  subtle: SubtleCrypto = globalThis.crypto.subtle,
): Promise<SFrameKey> {
  const { key, salt } = await deriveKeySalt(kid, baseKey, subtle);
  const aesKey = await subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt', 'decrypt']);
  key.fill(0);
  return { kid, key: aesKey, salt };
}

/** nonce = salt XOR CTR encoded big-endian on Nn bytes. */
export function nonceFor(salt: Uint8Array, ctr: number): Uint8Array<ArrayBuffer> {
  checkValue(ctr);
  const nonce = own(salt);
  let v = BigInt(ctr);
  for (let i = NN - 1; i >= 0 && v > 0n; i--) {
    nonce[i] = (nonce[i] as number) ^ Number(v & 0xffn);
    v >>= 8n;
  }
  return nonce;
}

/** encrypt(CTR, KID, metadata, plaintext) of RFC 9605 section 4.4.3: returns header || ciphertext. */
export async function sframeEncrypt(
  key: SFrameKey,
  ctr: number,
  metadata: Uint8Array,
  plaintext: Uint8Array,
  subtle: SubtleCrypto = globalThis.crypto.subtle,
): Promise<Uint8Array<ArrayBuffer>> {
  const header = encodeHeader(key.kid, ctr);
  const ciphertext = await subtle.encrypt(
    {
      name: 'AES-GCM',
      iv: nonceFor(key.salt, ctr),
      additionalData: concatBytes(header, metadata),
      tagLength: 128,
    },
    key.key,
    own(plaintext),
  );
  return concatBytes(header, new Uint8Array(ciphertext));
}

/**
 * decrypt(metadata, sframe_ciphertext) of RFC 9605 section 4.4.4. `keyFor` picks the key by KID
 * (undefined: no such key). Throws `SFrameError` on a bad header, an unknown KID or a failed tag.
 */
export async function sframeDecrypt(
  keyFor: (kid: number) => SFrameKey | undefined,
  metadata: Uint8Array,
  data: Uint8Array,
  subtle: SubtleCrypto = globalThis.crypto.subtle,
): Promise<{ plaintext: Uint8Array<ArrayBuffer>; kid: number; ctr: number }> {
  const header = decodeHeader(data);
  if (data.length < header.length + SFRAME_TAG_BYTES) throw new SFrameError('malformed-header');
  const key = keyFor(header.kid);
  if (!key) throw new SFrameError('unknown-key');
  let plaintext: ArrayBuffer;
  try {
    plaintext = await subtle.decrypt(
      {
        name: 'AES-GCM',
        iv: nonceFor(key.salt, header.ctr),
        additionalData: concatBytes(data.subarray(0, header.length), metadata),
        tagLength: 128,
      },
      key.key,
      own(data.subarray(header.length)),
    );
  } catch {
    throw new SFrameError('authentication-failed');
  }
  return { plaintext: new Uint8Array(plaintext), kid: header.kid, ctr: header.ctr };
}

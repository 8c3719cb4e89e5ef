import { createCipheriv, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * SRTP (RFC 3711) for the trunk leg, with the one suite SDES trunks commonly offer:
 * AES_CM_128_HMAC_SHA1_80 (AES-128 in counter mode, HMAC-SHA1 tag cut to 80 bits), key derivation
 * rate 0, no MKI. Built on node:crypto only. One context per direction and SSRC-independent master
 * key: protect() for what the gateway sends, unprotect() for what it receives.
 *
 * Used by the media leg when SDES keys were negotiated over SIP TLS (docs/phone.md); tested against
 * the RFC 3711 Appendix B vectors.
 */
export const SRTP_SUITE = 'AES_CM_128_HMAC_SHA1_80';
const MASTER_KEY_BYTES = 16;
const MASTER_SALT_BYTES = 14;
const TAG_BYTES = 10;
const REPLAY_WINDOW = 64n;

export interface SrtpSessionKeys {
  readonly cipherKey: Buffer;
  readonly authKey: Buffer;
  readonly salt: Buffer;
}

/** AES-CM keystream of `length` bytes from a 128-bit initial counter block (RFC 3711 4.1.1). */
export function aesCmKeystream(key: Buffer, iv: Buffer, length: number): Buffer {
  const cipher = createCipheriv('aes-128-ctr', key, iv);
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

/** Session keys from a master key and salt at index 0 (key derivation rate 0; RFC 3711 4.3). */
export function deriveSessionKeys(masterKey: Buffer, masterSalt: Buffer, rtcp = false): SrtpSessionKeys {
  if (masterKey.length !== MASTER_KEY_BYTES || masterSalt.length !== MASTER_SALT_BYTES)
    throw new RangeError('SRTP master key must be 16 bytes and salt 14 bytes');
  const derive = (label: number, length: number) => {
    const iv = Buffer.alloc(16);
    masterSalt.copy(iv, 0);
    // key_id = label || r (r = 0): the label lands in byte 7 of the salt, before the 16-bit counter.
    iv[7] = (iv[7] ?? 0) ^ label;
    return aesCmKeystream(masterKey, iv, length);
  };
  const base = rtcp ? 3 : 0;
  return { cipherKey: derive(base, 16), authKey: derive(base + 1, 20), salt: derive(base + 2, 14) };
}

/** A master key and salt as SDES carries them (`inline:` base64 of key || salt). */
export function parseSdesInline(value: string): { masterKey: Buffer; masterSalt: Buffer } | undefined {
  const match = /^inline:([A-Za-z0-9+/]{40})(?:\|[^|]+)?(?:\|[0-9]+:[0-9]+)?$/.exec(value);
  if (!match) return undefined;
  const bytes = Buffer.from(match[1] ?? '', 'base64');
  if (bytes.length !== MASTER_KEY_BYTES + MASTER_SALT_BYTES) return undefined;
  return { masterKey: bytes.subarray(0, 16), masterSalt: bytes.subarray(16) };
}

/** Offset of the payload (after CSRCs and a header extension); undefined for a malformed header. */
function headerLength(packet: Buffer): number | undefined {
  if (packet.length < 12 || (packet[0] ?? 0) >> 6 !== 2) return undefined;
  let offset = 12 + ((packet[0] ?? 0) & 0x0f) * 4;
  if ((packet[0] ?? 0) & 0x10) {
    if (packet.length < offset + 4) return undefined;
    offset += 4 + packet.readUInt16BE(offset + 2) * 4;
  }
  return offset <= packet.length ? offset : undefined;
}

/** One direction of one SRTP stream: tracks the rollover counter and (on receive) replays. */
export class SrtpContext {
  private readonly keys: SrtpSessionKeys;
  private roc = 0;
  private highestSeq: number | undefined;
  /** Highest packet index accepted, and which of the 64 before it were seen (bit n: index - n). */
  private highestIndex = -1n;
  private seen = 0n;

  constructor(masterKey: Buffer, masterSalt: Buffer) {
    this.keys = deriveSessionKeys(masterKey, masterSalt);
  }

  /** Encrypts and authenticates an RTP packet (returns a new buffer). */
  protect(packet: Buffer): Buffer {
    const offset = headerLength(packet);
    if (offset === undefined) throw new RangeError('not an RTP packet');
    const seq = packet.readUInt16BE(2);
    if (this.highestSeq !== undefined && seq < this.highestSeq && this.highestSeq - seq > 32768) this.roc++;
    this.highestSeq = seq;
    const out = Buffer.alloc(packet.length + TAG_BYTES);
    packet.copy(out, 0, 0, offset);
    const keystream = aesCmKeystream(
      this.keys.cipherKey,
      this.iv(packet.readUInt32BE(8), this.roc, seq),
      packet.length - offset,
    );
    for (let i = offset; i < packet.length; i++) out[i] = (packet[i] ?? 0) ^ (keystream[i - offset] ?? 0);
    this.tag(out.subarray(0, packet.length), this.roc).copy(out, packet.length);
    return out;
  }

  /** Authenticates and decrypts an SRTP packet; undefined when it fails (forged, replayed, malformed). */
  unprotect(packet: Buffer): Buffer | undefined {
    if (packet.length < 12 + TAG_BYTES) return undefined;
    const body = packet.subarray(0, packet.length - TAG_BYTES);
    const offset = headerLength(body);
    if (offset === undefined) return undefined;
    const seq = body.readUInt16BE(2);
    const roc = this.estimateRoc(seq);
    if (roc < 0) return undefined;
    const index = (BigInt(roc) << 16n) | BigInt(seq);
    if (this.isReplay(index)) return undefined;
    const expected = this.tag(body, roc);
    if (!timingSafeEqual(expected, packet.subarray(packet.length - TAG_BYTES))) return undefined;
    const out = Buffer.from(body);
    const keystream = aesCmKeystream(
      this.keys.cipherKey,
      this.iv(body.readUInt32BE(8), roc, seq),
      body.length - offset,
    );
    for (let i = offset; i < body.length; i++) out[i] = (body[i] ?? 0) ^ (keystream[i - offset] ?? 0);
    this.accept(index, roc, seq);
    return out;
  }

  /** IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16) (RFC 3711 4.1.1). */
  private iv(ssrc: number, roc: number, seq: number): Buffer {
    const iv = Buffer.alloc(16);
    this.keys.salt.copy(iv, 0);
    const xor = (at: number, value: number) => (iv[at] = (iv[at] ?? 0) ^ value);
    for (let i = 0; i < 4; i++) xor(4 + i, (ssrc >>> (24 - 8 * i)) & 0xff);
    for (let i = 0; i < 4; i++) xor(8 + i, (roc >>> (24 - 8 * i)) & 0xff);
    xor(12, seq >> 8);
    xor(13, seq & 0xff);
    return iv;
  }

  /** HMAC-SHA1 over the packet and the ROC, cut to 80 bits (RFC 3711 4.2). */
  private tag(authenticated: Buffer, roc: number): Buffer {
    const rocBytes = Buffer.alloc(4);
    rocBytes.writeUInt32BE(roc >>> 0);
    return createHmac('sha1', this.keys.authKey)
      .update(authenticated)
      .update(rocBytes)
      .digest()
      .subarray(0, TAG_BYTES);
  }

  /** The receiver's guess of the sender's ROC for this sequence number (RFC 3711 Appendix A). */
  private estimateRoc(seq: number): number {
    const last = this.highestSeq;
    if (last === undefined) return this.roc;
    if (last < 32768) return seq - last > 32768 ? this.roc - 1 : this.roc;
    return last - 32768 > seq ? this.roc + 1 : this.roc;
  }

  private isReplay(index: bigint): boolean {
    if (index > this.highestIndex) return false;
    const behind = this.highestIndex - index;
    if (behind >= REPLAY_WINDOW) return true;
    return ((this.seen >> behind) & 1n) === 1n;
  }

  private accept(index: bigint, roc: number, seq: number): void {
    if (index > this.highestIndex) {
      const shift = index - this.highestIndex;
      this.seen = shift >= REPLAY_WINDOW ? 1n : ((this.seen << shift) | 1n) & ((1n << REPLAY_WINDOW) - 1n);
      this.highestIndex = index;
      this.roc = roc;
      this.highestSeq = seq;
    } else {
      this.seen |= 1n << (this.highestIndex - index);
    }
  }
}

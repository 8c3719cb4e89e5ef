import { concatBytes } from './bytes.js';
import { SFrameError, importSFrameKey, sframeDecrypt, sframeEncrypt, type SFrameKey } from './sframe.js';

/**
 * Per-frame end-to-end encryption of encoded media, as the SFU must see it:
 *
 *   frame on the wire = clear codec prefix || SFrame header || AES-GCM ciphertext (prefix authenticated)
 *
 * The prefix is what the SFU reads to forward correctly: for VP8 the frame tag (1 byte for a delta
 * frame; 10 bytes for a keyframe: tag, start code, width, height), so mediasoup still recognises
 * keyframes and can switch simulcast layers. Opus gets no prefix. Other codecs are encrypted whole.
 */
export type FrameCodec = 'vp8' | 'opus' | 'other';

/** At most this many key generations are kept per sender (frames in flight across a rotation). */
export const MAX_KEYS_PER_SENDER = 3;
/** Senders whose keys this receiver holds at most (a consultation has a handful of people). */
export const MAX_SENDERS = 64;

export function codecOf(mimeType: string | undefined): FrameCodec {
  const lower = (mimeType ?? '').toLowerCase();
  if (lower.endsWith('/vp8')) return 'vp8';
  if (lower.endsWith('/opus')) return 'opus';
  return 'other';
}

/** Bytes left in clear at the start of a frame. Depends only on clear bytes, so the receiver computes the same. */
export function clearPrefixLength(codec: FrameCodec, frame: Uint8Array): number {
  if (codec !== 'vp8' || frame.length === 0) return 0;
  // VP8 frame tag, RFC 6386 section 9.1: bit 0 of the first byte is 0 for a keyframe.
  const keyframe = ((frame[0] as number) & 0x01) === 0;
  return Math.min(keyframe ? 10 : 1, frame.length);
}

export type DecryptFailure = 'malformed-header' | 'unknown-key' | 'authentication-failed';

export interface CryptorStats {
  encrypted: number;
  decrypted: number;
  /** Frames dropped because they could not be decrypted, by sender participant id. */
  failures: Record<
    string,
    { 'malformed-header': number; 'unknown-key': number; 'authentication-failed': number }
  >;
  /** Frames passed in clear (senders that do not encrypt: a phone participant). */
  passedClear: number;
}

/**
 * The key state of one participant's media: its own sending key (with the frame counter) and the
 * keys received from the others. Lives in the transform worker; pure enough to test in Node.
 */
export class FrameCryptor {
  private sendKey: { key: SFrameKey; ctr: number } | undefined;
  private readonly receiveKeys = new Map<string, Map<number, SFrameKey>>();
  /** Senders whose media is not end-to-end encrypted (phone): frames pass unchanged. */
  private readonly clearSenders = new Set<string>();
  /**
   * Phone downgrade, accepted by this participant: audio that is not SFrame is played as it is
   * (the others send their audio in clear so the phone leg can hear it).
   */
  acceptClearAudio = false;
  readonly stats: CryptorStats = { encrypted: 0, decrypted: 0, failures: {}, passedClear: 0 };

  constructor(private readonly subtle: SubtleCrypto = globalThis.crypto.subtle) {}

  /** Installs the key this participant encrypts with from now on; its counter starts at 0. */
  async setSendKey(kid: number, baseKey: Uint8Array): Promise<void> {
    const key = await importSFrameKey(kid, baseKey, this.subtle);
    this.sendKey = { key, ctr: 0 };
  }

  get sendKid(): number | undefined {
    return this.sendKey?.key.kid;
  }

  async addReceiveKey(senderId: string, kid: number, baseKey: Uint8Array): Promise<void> {
    const key = await importSFrameKey(kid, baseKey, this.subtle);
    let keys = this.receiveKeys.get(senderId);
    if (!keys) {
      if (this.receiveKeys.size >= MAX_SENDERS) return;
      keys = new Map();
      this.receiveKeys.set(senderId, keys);
    }
    keys.set(kid, key);
    // Keep the newest generations only: an old key must not decrypt for ever.
    const kids = [...keys.keys()].sort((a, b) => a - b);
    while (kids.length > MAX_KEYS_PER_SENDER) keys.delete(kids.shift() as number);
  }

  removeSender(senderId: string): void {
    this.receiveKeys.delete(senderId);
    this.clearSenders.delete(senderId);
  }

  setSenderClear(senderId: string, clear: boolean): void {
    if (clear) this.clearSenders.add(senderId);
    else this.clearSenders.delete(senderId);
  }

  /** Encrypts one encoded frame; undefined when no sending key exists yet (the frame is dropped, never sent in clear). */
  async encrypt(codec: FrameCodec, frame: Uint8Array): Promise<Uint8Array<ArrayBuffer> | undefined> {
    const send = this.sendKey;
    if (!send) return undefined;
    // Take the counter before awaiting: concurrent frames never share a nonce.
    const ctr = send.ctr++;
    const prefixLength = clearPrefixLength(codec, frame);
    const prefix = frame.subarray(0, prefixLength);
    const sealed = await sframeEncrypt(send.key, ctr, prefix, frame.subarray(prefixLength), this.subtle);
    this.stats.encrypted++;
    return concatBytes(prefix, sealed);
  }

  /** Decrypts a frame from `senderId`; undefined (and counted) when it cannot be authenticated. */
  async decrypt(
    senderId: string,
    codec: FrameCodec,
    frame: Uint8Array,
  ): Promise<Uint8Array<ArrayBuffer> | undefined> {
    if (this.clearSenders.has(senderId)) {
      this.stats.passedClear++;
      return new Uint8Array(frame);
    }
    const prefixLength = clearPrefixLength(codec, frame);
    const prefix = frame.subarray(0, prefixLength);
    try {
      const keys = this.receiveKeys.get(senderId);
      const { plaintext } = await sframeDecrypt(
        (kid) => keys?.get(kid),
        prefix,
        frame.subarray(prefixLength),
        this.subtle,
      );
      this.stats.decrypted++;
      return concatBytes(prefix, plaintext);
    } catch (err) {
      if (!(err instanceof SFrameError)) throw err;
      if (this.acceptClearAudio && codec === 'opus') {
        this.stats.passedClear++;
        return new Uint8Array(frame);
      }
      const reason: DecryptFailure = err.reason === 'counter-exhausted' ? 'malformed-header' : err.reason;
      const counts = (this.stats.failures[senderId] ??= {
        'malformed-header': 0,
        'unknown-key': 0,
        'authentication-failed': 0,
      });
      counts[reason]++;
      return undefined;
    }
  }
}

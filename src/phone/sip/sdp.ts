/**
 * SDP offer/answer (RFC 3264) for one audio stream: G.711 (PCMU, PCMA) and telephone-event (RFC 4733).
 * RTP/AVP, or RTP/SAVP with SDES keys (RFC 4568, AES_CM_128_HMAC_SHA1_80 only), over IPv4 or IPv6;
 * anything else yields no usable description.
 */
import { SRTP_SUITE, parseSdesInline } from '../media/srtp.js';

export type G711Codec = 'PCMU' | 'PCMA';

/** The static payload types of RFC 3551. */
export const STATIC_PAYLOAD_TYPES: Readonly<Record<G711Codec, number>> = { PCMU: 0, PCMA: 8 };
export const DEFAULT_TELEPHONE_EVENT_PT = 101;

export interface AudioOffer {
  readonly address: string;
  readonly port: number;
  /** Payload types in the offerer's order of preference, with what each maps to. */
  readonly formats: readonly { pt: number; encoding: string; clockRate: number }[];
  readonly direction: 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
  /** RTP/SAVP: the SDES crypto attributes offered, in order. */
  readonly secure: boolean;
  readonly crypto: readonly { tag: number; suite: string; keyParams: string }[];
}

/** The remote side's SRTP master key (what it encrypts with) and the crypto tag chosen. */
export interface NegotiatedSrtp {
  readonly tag: number;
  readonly masterKey: Buffer;
  readonly masterSalt: Buffer;
}

export interface NegotiatedAudio {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly codec: G711Codec;
  readonly payloadType: number;
  /** Payload type of telephone-event when both sides use it. */
  readonly telephoneEventPt: number | undefined;
  readonly direction: AudioOffer['direction'];
  /** Present when the stream is SRTP (RTP/SAVP). */
  readonly srtp?: NegotiatedSrtp;
}

export type SdpResult<T> = { ok: true; value: T } | { ok: false; reason: string };

const MAX_SDP_BYTES = 16 * 1024;

/** Parses the first audio media section of a session description. */
export function parseAudioSdp(text: string): SdpResult<AudioOffer> {
  if (text.length > MAX_SDP_BYTES) return { ok: false, reason: 'description too large' };
  const lines = text.split(/\r?\n/).filter((line) => line.length > 0);
  if (lines[0] !== 'v=0') return { ok: false, reason: 'missing v=0' };
  let sessionAddress: string | undefined;
  let inAudio = false;
  let seenAudio = false;
  let mediaAddress: string | undefined;
  let port = -1;
  let pts: number[] = [];
  const rtpmaps = new Map<number, { encoding: string; clockRate: number }>();
  let direction: AudioOffer['direction'] = 'sendrecv';
  let secure = false;
  const crypto: { tag: number; suite: string; keyParams: string }[] = [];
  for (const line of lines) {
    if (!/^[a-z]=/.test(line)) return { ok: false, reason: 'malformed line' };
    const type = line[0];
    const value = line.slice(2);
    if (type === 'm') {
      if (seenAudio) {
        inAudio = false;
        continue;
      }
      const media = /^audio ([0-9]{1,5}) (RTP\/S?AVP) ([0-9 ]+)$/.exec(value);
      if (!media) {
        inAudio = false;
        if (value.startsWith('audio ')) return { ok: false, reason: 'unsupported audio transport' };
        continue;
      }
      inAudio = true;
      seenAudio = true;
      secure = media[2] === 'RTP/SAVP';
      port = Number(media[1]);
      pts = (media[3] ?? '')
        .split(' ')
        .filter((p) => p.length > 0)
        .map(Number);
      if (pts.some((pt) => pt > 127)) return { ok: false, reason: 'bad payload type' };
    } else if (type === 'c') {
      const connection = /^IN IP[46] ([0-9A-Fa-f.:]+)$/.exec(value);
      if (!connection) return { ok: false, reason: 'unsupported connection line' };
      if (inAudio) mediaAddress = connection[1];
      else if (!seenAudio) sessionAddress = connection[1];
    } else if (type === 'a' && inAudio) {
      const rtpmap = /^rtpmap:([0-9]{1,3}) ([A-Za-z0-9_.-]+)\/([0-9]+)(?:\/[0-9]+)?$/.exec(value);
      if (rtpmap) rtpmaps.set(Number(rtpmap[1]), { encoding: rtpmap[2] ?? '', clockRate: Number(rtpmap[3]) });
      const sdes = /^crypto:([0-9]{1,9}) ([A-Za-z0-9_]+) (\S+)(?: .*)?$/.exec(value);
      if (sdes && crypto.length < 16)
        crypto.push({ tag: Number(sdes[1]), suite: sdes[2] ?? '', keyParams: sdes[3] ?? '' });
      if (value === 'sendrecv' || value === 'sendonly' || value === 'recvonly' || value === 'inactive')
        direction = value;
    } else if (type === 'a' && !seenAudio) {
      if (value === 'sendrecv' || value === 'sendonly' || value === 'recvonly' || value === 'inactive')
        direction = value;
    }
  }
  if (!seenAudio) return { ok: false, reason: 'no audio stream' };
  const address = mediaAddress ?? sessionAddress;
  if (!address) return { ok: false, reason: 'no connection address' };
  const formats = pts.map((pt) => {
    const mapped = rtpmaps.get(pt);
    if (mapped) return { pt, ...mapped };
    if (pt === 0) return { pt, encoding: 'PCMU', clockRate: 8000 };
    if (pt === 8) return { pt, encoding: 'PCMA', clockRate: 8000 };
    return { pt, encoding: '', clockRate: 0 };
  });
  return { ok: true, value: { address, port, formats, direction, secure, crypto } };
}

/**
 * Chooses what to use from a remote description: the first G.711 format in its order that we accept,
 * and telephone-event at 8 kHz when present. Port 0 (a declined stream) is refused.
 */
export function negotiateAudio(
  remote: AudioOffer,
  accepted: readonly G711Codec[],
): SdpResult<NegotiatedAudio> {
  if (remote.port === 0) return { ok: false, reason: 'audio stream declined' };
  const chosen = remote.formats.find(
    (f) => f.clockRate === 8000 && accepted.includes(f.encoding.toUpperCase() as G711Codec),
  );
  if (!chosen) return { ok: false, reason: 'no common codec' };
  const events = remote.formats.find(
    (f) => f.encoding.toLowerCase() === 'telephone-event' && f.clockRate === 8000,
  );
  let srtp: NegotiatedSrtp | undefined;
  if (remote.secure) {
    for (const attribute of remote.crypto) {
      const key = attribute.suite === SRTP_SUITE ? parseSdesInline(attribute.keyParams) : undefined;
      if (key) {
        srtp = { tag: attribute.tag, ...key };
        break;
      }
    }
    if (!srtp) return { ok: false, reason: 'no usable SRTP crypto attribute' };
  }
  return {
    ok: true,
    value: {
      remoteAddress: remote.address,
      remotePort: remote.port,
      codec: chosen.encoding.toUpperCase() as G711Codec,
      payloadType: chosen.pt,
      telephoneEventPt: events?.pt,
      direction: remote.direction,
      ...(srtp ? { srtp } : {}),
    },
  };
}

export interface LocalAudioDescription {
  readonly sessionId: string;
  readonly version: number;
  readonly address: string;
  readonly port: number;
  /** Formats in order; a single one in an answer. */
  readonly codecs: readonly { codec: G711Codec; pt: number }[];
  readonly telephoneEventPt: number | undefined;
  readonly direction?: AudioOffer['direction'];
  /** SRTP: the crypto attribute with our own master key (key || salt, 30 bytes). */
  readonly crypto?: { readonly tag: number; readonly keyAndSalt: Buffer };
}

/** Writes our offer or answer. */
export function buildAudioSdp(local: LocalAudioDescription): string {
  const ipVersion = local.address.includes(':') ? 'IP6' : 'IP4';
  const pts = local.codecs.map((c) => c.pt);
  if (local.telephoneEventPt !== undefined) pts.push(local.telephoneEventPt);
  const lines = [
    'v=0',
    `o=- ${local.sessionId} ${local.version} IN ${ipVersion} ${local.address}`,
    's=-',
    `c=IN ${ipVersion} ${local.address}`,
    't=0 0',
    `m=audio ${local.port} ${local.crypto ? 'RTP/SAVP' : 'RTP/AVP'} ${pts.join(' ')}`,
    ...local.codecs.map((c) => `a=rtpmap:${c.pt} ${c.codec}/8000`),
  ];
  if (local.crypto)
    lines.push(
      `a=crypto:${local.crypto.tag} ${SRTP_SUITE} inline:${local.crypto.keyAndSalt.toString('base64')}`,
    );
  if (local.telephoneEventPt !== undefined)
    lines.push(
      `a=rtpmap:${local.telephoneEventPt} telephone-event/8000`,
      `a=fmtp:${local.telephoneEventPt} 0-15`,
    );
  lines.push('a=ptime:20', `a=${local.direction ?? 'sendrecv'}`);
  return `${lines.join('\r\n')}\r\n`;
}

/** The direction we answer with for a remote direction (RFC 3264 6.1). */
export function answerDirection(remote: AudioOffer['direction']): AudioOffer['direction'] {
  if (remote === 'sendonly') return 'recvonly';
  if (remote === 'recvonly') return 'sendonly';
  return remote;
}

/**
 * Minimal RTP/RTCP writing and parsing for synthetic peers: just what a load generator needs to
 * send media a mediasoup worker accepts and to read back what it forwards. Not a general parser.
 */

/** One-byte header extension ids the publisher writes (mediasoup's preferred ids, so SDP and rtpParameters agree). */
export const EXT_ID = {
  mid: 1,
  absSendTime: 4,
  transportWideCc: 5,
  audioLevel: 10,
} as const;

export const EXT_URI = {
  mid: 'urn:ietf:params:rtp-hdrext:sdes:mid',
  absSendTime: 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
  transportWideCc: 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  audioLevel: 'urn:ietf:params:rtp-hdrext:ssrc-audio-level',
} as const;

/**
 * Every synthetic payload ends with a probe: magic, send time and a per-stream sequence. Placing it at
 * the end keeps it codec-agnostic (the server may rewrite codec headers in place, never the tail).
 */
export const PROBE_MAGIC = 0x54434231; // "TCB1"
export const PROBE_SIZE = 16;

export interface ExtensionValues {
  mid?: string;
  /** Milliseconds on the process clock; written as 6.18 fixed-point seconds modulo 64 s. */
  absSendTimeMs?: number;
  transportSeq?: number;
  /** 0..127 dBov, voice activity flag set. */
  audioLevel?: number;
}

export interface RtpHeaderFields {
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  marker: boolean;
}

/** Size of the one-byte-header extension block (including its 4-byte header) for the given values. */
export function extensionBlockSize(ext: ExtensionValues): number {
  let body = 0;
  if (ext.mid !== undefined) body += 1 + Buffer.byteLength(ext.mid);
  if (ext.absSendTimeMs !== undefined) body += 4;
  if (ext.transportSeq !== undefined) body += 3;
  if (ext.audioLevel !== undefined) body += 2;
  if (body === 0) return 0;
  return 4 + Math.ceil(body / 4) * 4;
}

/**
 * Writes an RTP header with one-byte header extensions into `buf` and returns the payload offset.
 * `buf` must be large enough: 12 + extensionBlockSize(ext) bytes at least.
 */
export function writeRtpHeader(buf: Buffer, h: RtpHeaderFields, ext: ExtensionValues): number {
  const extSize = extensionBlockSize(ext);
  buf[0] = extSize > 0 ? 0x90 : 0x80;
  buf[1] = (h.marker ? 0x80 : 0) | (h.payloadType & 0x7f);
  buf.writeUInt16BE(h.sequenceNumber & 0xffff, 2);
  buf.writeUInt32BE(h.timestamp >>> 0, 4);
  buf.writeUInt32BE(h.ssrc >>> 0, 8);
  if (extSize === 0) return 12;
  buf.writeUInt16BE(0xbede, 12);
  buf.writeUInt16BE((extSize - 4) / 4, 14);
  let o = 16;
  if (ext.mid !== undefined) {
    const len = buf.write(ext.mid, o + 1, 'ascii');
    buf[o] = (EXT_ID.mid << 4) | (len - 1);
    o += 1 + len;
  }
  if (ext.absSendTimeMs !== undefined) {
    // 24 bits: 6 bits of seconds and 18 bits of fraction.
    const v = Math.floor((ext.absSendTimeMs / 1000) * (1 << 18)) & 0xffffff;
    buf[o] = (EXT_ID.absSendTime << 4) | 2;
    buf[o + 1] = (v >>> 16) & 0xff;
    buf[o + 2] = (v >>> 8) & 0xff;
    buf[o + 3] = v & 0xff;
    o += 4;
  }
  if (ext.transportSeq !== undefined) {
    buf[o] = (EXT_ID.transportWideCc << 4) | 1;
    buf.writeUInt16BE(ext.transportSeq & 0xffff, o + 1);
    o += 3;
  }
  if (ext.audioLevel !== undefined) {
    buf[o] = EXT_ID.audioLevel << 4;
    buf[o + 1] = 0x80 | (ext.audioLevel & 0x7f);
    o += 2;
  }
  const end = 12 + extSize;
  buf.fill(0, o, end);
  return end;
}

export function writeProbe(buf: Buffer, end: number, sendTimeMs: number, streamSeq: number): void {
  const at = end - PROBE_SIZE;
  buf.writeUInt32BE(PROBE_MAGIC, at);
  buf.writeDoubleBE(sendTimeMs, at + 4);
  buf.writeUInt32BE(streamSeq >>> 0, at + 12);
}

/** RTP and RTCP share a port (rtcp-mux): RTCP packet types 200..206 land in 72..78 once the marker bit is masked. */
export function isRtcp(packet: Buffer): boolean {
  if (packet.length < 2) return false;
  const pt = packet[1]! & 0x7f;
  return pt >= 64 && pt <= 95;
}

export interface ParsedRtp {
  ssrc: number;
  sequenceNumber: number;
  timestamp: number;
  payloadType: number;
  marker: boolean;
  payloadOffset: number;
  /** End of the payload, before any RTP padding. */
  payloadEnd: number;
}

/** Parses the fixed header, CSRCs, extension block and padding; undefined for anything malformed. */
export function parseRtp(packet: Buffer): ParsedRtp | undefined {
  if (packet.length < 12 || packet[0]! >> 6 !== 2) return undefined;
  const b0 = packet[0]!;
  let offset = 12 + (b0 & 0x0f) * 4;
  if (b0 & 0x10) {
    if (packet.length < offset + 4) return undefined;
    offset += 4 + packet.readUInt16BE(offset + 2) * 4;
  }
  let end = packet.length;
  if (b0 & 0x20) end -= packet[packet.length - 1]!;
  if (offset > end) return undefined;
  return {
    ssrc: packet.readUInt32BE(8),
    sequenceNumber: packet.readUInt16BE(2),
    timestamp: packet.readUInt32BE(4),
    payloadType: packet[1]! & 0x7f,
    marker: (packet[1]! & 0x80) !== 0,
    payloadOffset: offset,
    payloadEnd: end,
  };
}

export interface Probe {
  sendTimeMs: number;
  streamSeq: number;
}

export function readProbe(packet: Buffer, rtp: ParsedRtp): Probe | undefined {
  const at = rtp.payloadEnd - PROBE_SIZE;
  if (at < rtp.payloadOffset || packet.readUInt32BE(at) !== PROBE_MAGIC) return undefined;
  return { sendTimeMs: packet.readDoubleBE(at + 4), streamSeq: packet.readUInt32BE(at + 12) };
}

/** NTP timestamp (seconds since 1900) as two 32-bit words, from a Unix time in milliseconds. */
function ntpWords(unixMs: number): [number, number] {
  const seconds = Math.floor(unixMs / 1000) + 2208988800;
  const fraction = Math.floor(((unixMs % 1000) / 1000) * 0x100000000);
  return [seconds >>> 0, fraction >>> 0];
}

/** RTCP sender report without report blocks; lets the server map RTP time to wall time per layer. */
export function buildSenderReport(
  ssrc: number,
  unixMs: number,
  rtpTimestamp: number,
  packetCount: number,
  octetCount: number,
): Buffer {
  const buf = Buffer.alloc(28);
  buf[0] = 0x80;
  buf[1] = 200;
  buf.writeUInt16BE(6, 2);
  buf.writeUInt32BE(ssrc >>> 0, 4);
  const [sec, frac] = ntpWords(unixMs);
  buf.writeUInt32BE(sec, 8);
  buf.writeUInt32BE(frac, 12);
  buf.writeUInt32BE(rtpTimestamp >>> 0, 16);
  buf.writeUInt32BE(packetCount >>> 0, 20);
  buf.writeUInt32BE(octetCount >>> 0, 24);
  return buf;
}

export interface ReportBlock {
  ssrc: number;
  fractionLost: number;
  cumulativeLost: number;
  extendedHighestSeq: number;
  jitter: number;
  lastSr: number;
  delaySinceLastSr: number;
}

/** RTCP receiver report with one block per received stream. */
export function buildReceiverReport(senderSsrc: number, blocks: ReportBlock[]): Buffer {
  const count = Math.min(blocks.length, 31);
  const buf = Buffer.alloc(8 + 24 * count);
  buf[0] = 0x80 | count;
  buf[1] = 201;
  buf.writeUInt16BE(buf.length / 4 - 1, 2);
  buf.writeUInt32BE(senderSsrc >>> 0, 4);
  for (let i = 0; i < count; i++) {
    const b = blocks[i]!;
    const o = 8 + i * 24;
    buf.writeUInt32BE(b.ssrc >>> 0, o);
    buf[o + 4] = b.fractionLost & 0xff;
    const lost = Math.max(-0x800000, Math.min(0x7fffff, b.cumulativeLost)) & 0xffffff;
    buf[o + 5] = (lost >>> 16) & 0xff;
    buf.writeUInt16BE(lost & 0xffff, o + 6);
    buf.writeUInt32BE(b.extendedHighestSeq >>> 0, o + 8);
    buf.writeUInt32BE(b.jitter >>> 0, o + 12);
    buf.writeUInt32BE(b.lastSr >>> 0, o + 16);
    buf.writeUInt32BE(b.delaySinceLastSr >>> 0, o + 20);
  }
  return buf;
}

export interface RtcpSummary {
  /** Media SSRCs for which a keyframe was asked (PLI or FIR). */
  keyframeRequests: number[];
  /** Sender reports seen: SSRC and the middle 32 bits of their NTP time (for LSR). */
  senderReports: { ssrc: number; ntpMiddle: number }[];
}

/** Walks a compound RTCP packet and extracts keyframe requests and sender reports. */
export function parseRtcp(packet: Buffer): RtcpSummary {
  const summary: RtcpSummary = { keyframeRequests: [], senderReports: [] };
  let o = 0;
  while (o + 4 <= packet.length) {
    const fmt = packet[o]! & 0x1f;
    const pt = packet[o + 1]!;
    const len = (packet.readUInt16BE(o + 2) + 1) * 4;
    if (o + len > packet.length) break;
    if (pt === 206 && fmt === 1 && len >= 12) {
      summary.keyframeRequests.push(packet.readUInt32BE(o + 8));
    } else if (pt === 206 && fmt === 4) {
      for (let f = o + 12; f + 8 <= o + len; f += 8) summary.keyframeRequests.push(packet.readUInt32BE(f));
    } else if (pt === 200 && len >= 28) {
      summary.senderReports.push({
        ssrc: packet.readUInt32BE(o + 4),
        ntpMiddle:
          (((packet.readUInt32BE(o + 8) & 0xffff) << 16) | (packet.readUInt32BE(o + 12) >>> 16)) >>> 0,
      });
    }
    o += len;
  }
  return summary;
}

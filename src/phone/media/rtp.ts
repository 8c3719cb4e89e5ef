/** RTP fixed header (RFC 3550 5.1): reading what the gateway needs, writing what it sends. */

export interface RtpPacket {
  readonly payloadType: number;
  readonly marker: boolean;
  readonly sequenceNumber: number;
  readonly timestamp: number;
  readonly ssrc: number;
  readonly payload: Buffer;
}

/** Parses an RTP packet; undefined for RTCP, non-version-2 data or a truncated packet. */
export function parseRtp(buf: Buffer): RtpPacket | undefined {
  if (buf.length < 12) return undefined;
  const first = buf[0] ?? 0;
  const second = buf[1] ?? 0;
  if (first >> 6 !== 2) return undefined;
  // RTCP packet types 192..223 share the port when rtcp-mux is used (RFC 5761 4).
  if (second >= 192 && second <= 223) return undefined;
  const csrcCount = first & 0x0f;
  let offset = 12 + csrcCount * 4;
  if (first & 0x10) {
    if (buf.length < offset + 4) return undefined;
    offset += 4 + buf.readUInt16BE(offset + 2) * 4;
  }
  let end = buf.length;
  if (first & 0x20) {
    const padding = buf[buf.length - 1] ?? 0;
    if (padding === 0) return undefined;
    end -= padding;
  }
  if (offset > end) return undefined;
  return {
    payloadType: second & 0x7f,
    marker: (second & 0x80) !== 0,
    sequenceNumber: buf.readUInt16BE(2),
    timestamp: buf.readUInt32BE(4),
    ssrc: buf.readUInt32BE(8),
    payload: buf.subarray(offset, end),
  };
}

export function buildRtp(packet: RtpPacket): Buffer {
  const out = Buffer.allocUnsafe(12 + packet.payload.length);
  out[0] = 0x80;
  out[1] = (packet.marker ? 0x80 : 0) | (packet.payloadType & 0x7f);
  out.writeUInt16BE(packet.sequenceNumber & 0xffff, 2);
  out.writeUInt32BE(packet.timestamp >>> 0, 4);
  out.writeUInt32BE(packet.ssrc >>> 0, 8);
  packet.payload.copy(out, 12);
  return out;
}

/** Sequence number and timestamp state of one outgoing RTP stream. */
export class RtpSender {
  private sequence: number;
  private timestamp: number;
  private first = true;

  constructor(
    readonly ssrc: number,
    private readonly payloadType: number,
  ) {
    this.sequence = Math.floor(Math.random() * 0x10000);
    this.timestamp = Math.floor(Math.random() * 0x100000000);
  }

  /** Packs one frame of `samples` samples; the marker is set on the first packet of the stream. */
  next(payload: Buffer, samples: number, payloadType = this.payloadType): Buffer {
    const packet = buildRtp({
      payloadType,
      marker: this.first,
      sequenceNumber: this.sequence,
      timestamp: this.timestamp,
      ssrc: this.ssrc,
      payload,
    });
    this.first = false;
    this.sequence = (this.sequence + 1) & 0xffff;
    this.timestamp = (this.timestamp + samples) >>> 0;
    return packet;
  }
}

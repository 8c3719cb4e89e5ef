import type { types } from 'mediasoup';

/**
 * Captures, inside the server, what the SFU forwards for one producer: a DirectTransport consumer
 * on the room's router hands every RTP packet to the test. This is exactly what an operator with
 * full access to the server could record.
 */
export interface RtpPacket {
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  payload: Buffer;
}

export function parseRtp(packet: Buffer): RtpPacket | undefined {
  if (packet.length < 12 || packet[0]! >> 6 !== 2) return undefined;
  const csrcCount = packet[0]! & 0x0f;
  let offset = 12 + 4 * csrcCount;
  if (packet[0]! & 0x10) {
    if (packet.length < offset + 4) return undefined;
    offset += 4 + packet.readUInt16BE(offset + 2) * 4;
  }
  let end = packet.length;
  if (packet[0]! & 0x20) end -= packet[end - 1]!;
  if (offset > end) return undefined;
  return {
    marker: (packet[1]! & 0x80) !== 0,
    payloadType: packet[1]! & 0x7f,
    sequenceNumber: packet.readUInt16BE(2),
    timestamp: packet.readUInt32BE(4),
    ssrc: packet.readUInt32BE(8),
    payload: packet.subarray(offset, end),
  };
}

/** Splits a VP8 RTP payload (RFC 7741) into its descriptor's start-of-frame flag and the VP8 bytes. */
export function parseVp8Payload(payload: Buffer): { start: boolean; data: Buffer } | undefined {
  if (payload.length < 1) return undefined;
  const b0 = payload[0]!;
  let offset = 1;
  if (b0 & 0x80) {
    const b1 = payload[offset++];
    if (b1 === undefined) return undefined;
    if (b1 & 0x80) offset += payload[offset]! & 0x80 ? 2 : 1; // PictureID
    if (b1 & 0x40) offset += 1; // TL0PICIDX
    if (b1 & 0x30) offset += 1; // TID/KEYIDX
  }
  if (offset > payload.length) return undefined;
  return { start: (b0 & 0x10) !== 0 && (b0 & 0x07) === 0, data: payload.subarray(offset) };
}

/** Whole VP8 frames rebuilt from packets (complete runs of sequence numbers from a start to a marker). */
export function vp8Frames(packets: RtpPacket[]): Buffer[] {
  const byTimestamp = new Map<number, RtpPacket[]>();
  for (const p of packets) {
    const list = byTimestamp.get(p.timestamp) ?? [];
    list.push(p);
    byTimestamp.set(p.timestamp, list);
  }
  const frames: Buffer[] = [];
  for (const list of byTimestamp.values()) {
    // Order by sequence number, across a wrap: offsets from a point well before the first packet.
    const reference = (list[0]!.sequenceNumber - 0x4000) & 0xffff;
    const offset = (p: RtpPacket) => (p.sequenceNumber - reference) & 0xffff;
    const unique = [...new Map(list.map((p) => [p.sequenceNumber, p])).values()].sort(
      (a, b) => offset(a) - offset(b),
    );
    const parts = unique.map((p) => parseVp8Payload(p.payload));
    if (parts.some((p) => !p) || !parts[0]?.start || !unique[unique.length - 1]?.marker) continue;
    const contiguous = unique.every(
      (p, i) => i === 0 || p.sequenceNumber === ((unique[i - 1]!.sequenceNumber + 1) & 0xffff),
    );
    if (!contiguous) continue;
    frames.push(Buffer.concat(parts.map((p) => p!.data)));
  }
  return frames;
}

export class ProducerCapture {
  readonly packets: RtpPacket[] = [];
  private constructor(
    private readonly transport: types.DirectTransport,
    private readonly consumer: types.Consumer,
  ) {
    consumer.on('rtp', (packet: Buffer) => {
      const parsed = parseRtp(Buffer.from(packet));
      if (parsed && this.packets.length < 20_000) this.packets.push(parsed);
    });
  }

  static async start(router: types.Router, producerId: string): Promise<ProducerCapture> {
    const transport = await router.createDirectTransport();
    // One simulcast stream for the whole capture: a layer switch in the middle (which mediasoup
    // 3.27 does as soon as a higher stream's keyframe comes) would splice two streams' frames.
    const consumer = await transport.consume({
      producerId,
      rtpCapabilities: router.rtpCapabilities,
      preferredLayers: { spatialLayer: 0 },
    });
    return new ProducerCapture(transport, consumer);
  }

  /** Forgets what was captured so far. */
  clear(): void {
    this.packets.length = 0;
  }

  close(): void {
    this.consumer.close();
    this.transport.close();
  }
}

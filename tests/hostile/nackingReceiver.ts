import nodeDataChannel from 'node-datachannel';
import type { Track } from 'node-datachannel';
import type { types } from 'mediasoup';
import { PeerLink } from '../../bench/peer/link.js';
import { isRtcp, parseRtp } from '../../bench/peer/rtp.js';
import type { RemoteTransportParams } from '../../bench/peer/index.js';

/**
 * A receive-only peer for one video consumer that does what a browser does on loss and the bench
 * peer does not: it sends RTCP Generic NACKs (RFC 4585 6.2.1) for missing sequence numbers, again
 * until they arrive or are too old. It counts what arrived, what was repaired, and what stayed lost.
 */
const NACK_DELAY_MS = 10;
const NACK_RETRY_MS = 40;
const NACK_MAX_TRIES = 5;

export class NackingReceiver {
  readonly dtlsParameters: types.DtlsParameters;
  private readonly link: PeerLink;
  private readonly track: Track;
  private readonly senderSsrc = 0x1234abcd;
  private readonly received = new Set<number>();
  /** Extended sequence number -> { first noticed missing, NACKs sent }. */
  private readonly missing = new Map<number, { since: number; tries: number; lastAt: number }>();
  private baseSeq: number | undefined;
  private maxSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  nacksSent = 0;
  repaired = 0;
  duplicates = 0;
  firstPacketAt: number | undefined;

  constructor(private readonly consumer: { kind: 'video'; rtpParameters: types.RtpParameters }) {
    this.link = new PeerLink({ name: 'nacking-receiver', bindAddress: '127.0.0.1' });
    const codec = consumer.rtpParameters.codecs[0]!;
    const media = new nodeDataChannel.Video(consumer.rtpParameters.mid ?? 'v0', 'RecvOnly');
    media.addVP8Codec(codec.payloadType);
    this.track = this.link.addTrack(media);
    this.track.onMessage((packet) => this.onPacket(packet));
    this.dtlsParameters = this.link.offer();
  }

  get mediaSsrc(): number {
    return this.consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0;
  }

  connect(transport: RemoteTransportParams): void {
    const params = this.consumer.rtpParameters;
    this.link.answer(transport, [
      {
        mid: params.mid ?? 'v0',
        kind: 'video',
        direction: 'sendonly',
        codecs: params.codecs.map((c) => ({ ...c })),
        headerExtensions: params.headerExtensions ?? [],
        ssrcs: [{ ssrc: this.mediaSsrc, cname: params.rtcp?.cname ?? 'mediasoup' }],
      },
    ]);
    this.timer = setInterval(() => this.sendNacks(), 5);
  }

  waitConnected(timeoutMs: number): Promise<void> {
    return this.link.waitConnected(timeoutMs);
  }

  /** Loss over the sequence range seen, leaving out the last `settleMs` worth still being repaired. */
  stats(): { expected: number; received: number; lost: number; repaired: number; nacksSent: number } {
    const horizon = performance.now() - 500;
    let lost = 0;
    for (const [, entry] of this.missing) if (entry.since < horizon) lost++;
    const expected = this.baseSeq === undefined ? 0 : this.maxSeq - this.baseSeq + 1;
    return {
      expected,
      received: this.received.size,
      lost,
      repaired: this.repaired,
      nacksSent: this.nacksSent,
    };
  }

  close(): void {
    clearInterval(this.timer);
    this.link.close();
  }

  private onPacket(packet: Buffer): void {
    if (isRtcp(packet)) return;
    const rtp = parseRtp(packet);
    if (!rtp || rtp.ssrc !== this.mediaSsrc) return;
    const now = performance.now();
    this.firstPacketAt ??= now;
    let seq: number;
    if (this.baseSeq === undefined) {
      this.baseSeq = rtp.sequenceNumber;
      this.maxSeq = rtp.sequenceNumber;
      seq = rtp.sequenceNumber;
    } else {
      const delta = ((rtp.sequenceNumber - (this.maxSeq & 0xffff) + 0x8000) & 0xffff) - 0x8000;
      seq = this.maxSeq + delta;
      if (delta > 1)
        for (let s = this.maxSeq + 1; s < seq; s++) this.missing.set(s, { since: now, tries: 0, lastAt: 0 });
      if (delta > 0) this.maxSeq = seq;
    }
    if (this.received.has(seq)) {
      this.duplicates++;
      return;
    }
    this.received.add(seq);
    if (this.missing.delete(seq)) this.repaired++;
  }

  private sendNacks(): void {
    const now = performance.now();
    const due: number[] = [];
    for (const [seq, entry] of this.missing) {
      if (entry.tries >= NACK_MAX_TRIES) continue;
      if (now - entry.since < NACK_DELAY_MS || now - entry.lastAt < NACK_RETRY_MS) continue;
      entry.tries++;
      entry.lastAt = now;
      due.push(seq);
    }
    if (due.length === 0 || !this.track.isOpen()) return;
    try {
      this.track.sendMessageBinary(this.nackPacket(due));
      this.nacksSent++;
    } catch {
      // The track closed between the check and the send.
    }
  }

  /** RTCP RTPFB, FMT 1 (Generic NACK): one FCI (PID + 16-bit bitmask of the following) per run. */
  private nackPacket(seqs: number[]): Buffer {
    const fcis: Buffer[] = [];
    const sorted = [...seqs].sort((a, b) => a - b);
    for (let i = 0; i < sorted.length;) {
      const pid = sorted[i]!;
      let blp = 0;
      let j = i + 1;
      while (j < sorted.length && sorted[j]! - pid <= 16) {
        blp |= 1 << (sorted[j]! - pid - 1);
        j++;
      }
      const fci = Buffer.alloc(4);
      fci.writeUInt16BE(pid & 0xffff, 0);
      fci.writeUInt16BE(blp, 2);
      fcis.push(fci);
      i = j;
    }
    const header = Buffer.alloc(12);
    header[0] = 0x80 | 1;
    header[1] = 205;
    header.writeUInt16BE(2 + fcis.length, 2);
    header.writeUInt32BE(this.senderSsrc, 4);
    header.writeUInt32BE(this.mediaSsrc, 8);
    return Buffer.concat([header, ...fcis]);
  }
}

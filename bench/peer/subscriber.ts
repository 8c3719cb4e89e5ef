import nodeDataChannel from 'node-datachannel';
import type { DataChannel, Track } from 'node-datachannel';
import type { types } from 'mediasoup';
import { DelayHistogram } from './histogram.js';
import { newSsrc } from './ids.js';
import { PeerLink } from './link.js';
import type { LinkOptions } from './link.js';
import { EXT_ID, EXT_URI, buildReceiverReport, isRtcp, parseRtcp, parseRtp, readProbe } from './rtp.js';
import type { ReportBlock } from './rtp.js';
import { sharedScheduler } from './scheduler.js';
import type { MediaScheduler, Ticking } from './scheduler.js';
import { applicationMid } from './sdp.js';
import type { RemoteSctpParams, RemoteSection, RemoteTransportParams } from './sdp.js';
import { vp8KeyframeWidth } from './vp8.js';

/** What the server returned from transport.consume(): enough to receive and route the stream. */
export interface ConsumerDescription {
  id?: string;
  kind: types.MediaKind;
  rtpParameters: types.RtpParameters;
}

export interface ReceivedStreamStats {
  ssrc: number;
  kind: types.MediaKind;
  /** Consumer id when the caller gave one. */
  consumerId?: string;
  packets: number;
  /** RTP bytes: header, extensions and payload (SRTP overhead excluded). */
  bytes: number;
  /** Packets the sequence numbers say should have arrived since the first one received. */
  expected: number;
  lost: number;
  keyframes: number;
  /** Width of the last VP8 keyframe received: tells which simulcast layer the server forwards. */
  lastKeyframeWidth?: number;
  /** performance.now() of the first packet, if any. */
  firstPacketAt?: number;
}

export interface SubscriberStats {
  streams: ReceivedStreamStats[];
  packets: number;
  bytes: number;
  expected: number;
  lost: number;
  /** Receive time minus the send time the publisher embedded (same process clock). */
  delay: DelayHistogram;
  /** Packets too short or without a probe (not counted for delay). */
  unprobed: number;
}

export interface SubscriberOptions extends LinkOptions {
  consumers: ConsumerDescription[];
  scheduler?: MediaScheduler;
  /** Send RTCP receiver reports every second, as a browser would (default true). */
  receiverReports?: boolean;
  /**
   * The server's SDP offer, for servers that offer to subscribers (Janus): the subscriber answers
   * it instead of offering (`consumers` then describe its m-sections: mid, codec, SSRCs), and
   * `answerSdp()` gives the answer to send back. No connect() call.
   */
  remoteOffer?: string;
  /**
   * Data consumers received on the same transport (pre-negotiated SCTP streams with the ids the
   * server announced); the answer then carries a data-channel section.
   */
  dataStreams?: { streamId: number; label: string }[];
}

/**
 * Capabilities to pass to transport.consume(). No RTX and no bandwidth-estimation extensions
 * (abs-send-time, transport-wide-cc): this peer sends no REMB or transport-cc feedback, and without
 * them the server forwards the preferred (top) simulcast layer instead of the bitrate it estimates.
 * The MID extension is accepted: our m-sections take the consumer's own mid, so they agree.
 */
export function subscriberRtpCapabilities(): types.RtpCapabilities {
  return {
    codecs: [
      {
        kind: 'audio',
        mimeType: 'audio/opus',
        clockRate: 48000,
        channels: 2,
        preferredPayloadType: 111,
        parameters: { minptime: 10, useinbandfec: 1 },
        rtcpFeedback: [],
      },
      {
        kind: 'video',
        mimeType: 'video/VP8',
        clockRate: 90000,
        preferredPayloadType: 96,
        rtcpFeedback: [
          { type: 'nack' },
          { type: 'nack', parameter: 'pli' },
          { type: 'ccm', parameter: 'fir' },
        ],
      },
    ],
    headerExtensions: [
      { kind: 'audio', uri: EXT_URI.mid, preferredId: EXT_ID.mid, direction: 'sendrecv' },
      { kind: 'video', uri: EXT_URI.mid, preferredId: EXT_ID.mid, direction: 'sendrecv' },
      { kind: 'audio', uri: EXT_URI.audioLevel, preferredId: EXT_ID.audioLevel, direction: 'sendrecv' },
    ],
  };
}

interface StreamState {
  ssrc: number;
  kind: types.MediaKind;
  consumerId: string | undefined;
  /** Index of the m-section (track) the stream arrived on. */
  section: number;
  packets: number;
  bytes: number;
  keyframes: number;
  lastKeyframeWidth: number | undefined;
  firstPacketAt: number | undefined;
  /** Extended (wrap-aware) sequence numbers. */
  baseSeq: number;
  maxSeq: number;
  /** For receiver reports: counts at the previous report. */
  priorExpected: number;
  priorPackets: number;
  lastSrMiddle: number;
  lastSrAt: number;
}

interface Section {
  mid: string;
  consumer: ConsumerDescription;
  track: Track;
}

const RR_INTERVAL_MS = 1000;

/**
 * A recvonly peer consuming one or more streams from a mediasoup WebRtcTransport. Routes packets by
 * SSRC (declared in the answer), counts packets and bytes per SSRC, loss from sequence gaps and the
 * delay from the probe each synthetic payload carries.
 */
export class Subscriber implements Ticking {
  readonly dtlsParameters: types.DtlsParameters;
  private readonly link: PeerLink;
  private readonly scheduler: MediaScheduler;
  private readonly sections: Section[] = [];
  private readonly streams = new Map<number, StreamState>();
  private delay = new DelayHistogram();
  private readonly reportSsrc = newSsrc();
  private readonly receiverReports: boolean;
  private nextReportAt = 0;
  private unprobed = 0;
  private mediaWaiters: { kind: types.MediaKind | undefined; resolve: (at: number) => void }[] = [];
  private closed = false;
  /** Kept referenced: native callbacks stop once the channel objects are collected. */
  private readonly dataChannels: DataChannel[] = [];
  private readonly data = { messages: 0, bytes: 0 };
  private dataMid: string | undefined;

  constructor(options: SubscriberOptions) {
    if (options.consumers.length === 0) throw new RangeError('a subscriber needs at least one consumer');
    this.link = new PeerLink(options);
    this.scheduler = options.scheduler ?? sharedScheduler;
    this.receiverReports = options.receiverReports ?? true;
    const usedMids = new Set<string>();
    for (const [index, consumer] of options.consumers.entries()) {
      let mid = consumer.rtpParameters.mid ?? `r${index}`;
      if (usedMids.has(mid)) mid = `r${index}`;
      usedMids.add(mid);
      const codec = consumer.rtpParameters.codecs[0];
      if (!codec) throw new RangeError('consumer has no codec');
      const media =
        consumer.kind === 'audio'
          ? new nodeDataChannel.Audio(mid, 'RecvOnly')
          : new nodeDataChannel.Video(mid, 'RecvOnly');
      if (media instanceof nodeDataChannel.Audio) media.addOpusCodec(codec.payloadType);
      else media.addVP8Codec(codec.payloadType);
      const track = this.link.addTrack(media);
      const kind = consumer.kind;
      const consumerId = consumer.id;
      const sectionIndex = index;
      track.onMessage((message) => this.onPacket(message, kind, consumerId, sectionIndex));
      this.sections.push({ mid, consumer, track });
    }
    for (const spec of options.dataStreams ?? []) {
      const channel = this.link.pc.createDataChannel(spec.label, { negotiated: true, id: spec.streamId });
      channel.onMessage((message) => {
        this.data.messages++;
        this.data.bytes += typeof message === 'string' ? Buffer.byteLength(message) : message.byteLength;
      });
      this.dataChannels.push(channel);
    }
    if (options.remoteOffer === undefined) {
      this.dtlsParameters = this.link.offer();
      if (this.dataChannels.length > 0)
        this.dataMid = applicationMid(this.link.pc.localDescription()?.sdp ?? '');
      return;
    }
    this.dtlsParameters = this.link.answerRemoteOffer(options.remoteOffer);
    if (this.receiverReports) this.scheduler.add(this);
  }

  /** With `remoteOffer`: our answer with its candidates, once ICE gathering is complete. */
  answerSdp(timeoutMs?: number): Promise<string> {
    return this.link.gatheredDescription(timeoutMs);
  }

  /** Applies the server's answer (declaring the consumers' SSRCs); ICE and DTLS start now. */
  connect(transport: RemoteTransportParams & { sctpParameters?: RemoteSctpParams }): void {
    const sections: RemoteSection[] = this.sections.map(({ mid, consumer }) => {
      const params = consumer.rtpParameters;
      return {
        mid,
        kind: consumer.kind,
        direction: 'sendonly',
        codecs: params.codecs.map((c) => ({ ...c })),
        headerExtensions: params.headerExtensions ?? [],
        ssrcs: (params.encodings ?? [])
          .filter((e): e is types.RtpEncodingParameters & { ssrc: number } => typeof e.ssrc === 'number')
          .map((e) => ({ ssrc: e.ssrc, cname: params.rtcp?.cname ?? 'mediasoup' })),
      };
    });
    const application =
      this.dataMid !== undefined && transport.sctpParameters
        ? { mid: this.dataMid, sctp: transport.sctpParameters }
        : undefined;
    this.link.answer(transport, sections, application);
    if (this.receiverReports) this.scheduler.add(this);
  }

  /** Data-channel messages and bytes received so far (all data streams). */
  dataStats(): { messages: number; bytes: number } {
    return { ...this.data };
  }

  waitConnected(timeoutMs?: number): Promise<void> {
    return this.link.waitConnected(timeoutMs);
  }

  get connectedAt(): number | undefined {
    return this.link.connectedAt;
  }

  get connectionState(): string {
    return this.link.connectionState;
  }

  /** performance.now() of the first RTP packet (of a kind, if given), undefined before. */
  firstPacketAt(kind?: types.MediaKind): number | undefined {
    let first: number | undefined;
    for (const s of this.streams.values()) {
      if (kind && s.kind !== kind) continue;
      if (s.firstPacketAt !== undefined && (first === undefined || s.firstPacketAt < first))
        first = s.firstPacketAt;
    }
    return first;
  }

  /** Resolves with the time of the first RTP packet (of a kind, if given); rejects on timeout. */
  waitForMedia(kind?: types.MediaKind, timeoutMs = 10_000): Promise<number> {
    const already = this.firstPacketAt(kind);
    if (already !== undefined) return Promise.resolve(already);
    return new Promise((resolve, reject) => {
      const waiter = {
        kind,
        resolve: (at: number): void => {
          clearTimeout(timer);
          resolve(at);
        },
      };
      const timer = setTimeout(() => {
        this.mediaWaiters = this.mediaWaiters.filter((w) => w !== waiter);
        reject(new Error(`no ${kind ?? 'RTP'} packet within ${timeoutMs} ms`));
      }, timeoutMs);
      this.mediaWaiters.push(waiter);
    });
  }

  stats(): SubscriberStats {
    const streams: ReceivedStreamStats[] = [];
    for (const s of this.streams.values()) {
      const expected = s.maxSeq - s.baseSeq + 1;
      streams.push({
        ssrc: s.ssrc,
        kind: s.kind,
        ...(s.consumerId !== undefined ? { consumerId: s.consumerId } : {}),
        packets: s.packets,
        bytes: s.bytes,
        expected,
        lost: Math.max(0, expected - s.packets),
        keyframes: s.keyframes,
        ...(s.lastKeyframeWidth !== undefined ? { lastKeyframeWidth: s.lastKeyframeWidth } : {}),
        ...(s.firstPacketAt !== undefined ? { firstPacketAt: s.firstPacketAt } : {}),
      });
    }
    return {
      streams,
      packets: streams.reduce((sum, s) => sum + s.packets, 0),
      bytes: streams.reduce((sum, s) => sum + s.bytes, 0),
      expected: streams.reduce((sum, s) => sum + s.expected, 0),
      lost: streams.reduce((sum, s) => sum + s.lost, 0),
      delay: this.delay,
      unprobed: this.unprobed,
    };
  }

  /** Starts a fresh delay histogram (counters stay cumulative: callers take deltas). */
  resetDelay(): void {
    this.delay = new DelayHistogram();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.scheduler.remove(this);
    this.mediaWaiters = [];
    this.link.close();
  }

  tick(now: number): void {
    if (now < this.nextReportAt || this.closed) return;
    this.nextReportAt = now + RR_INTERVAL_MS;
    for (const [index, section] of this.sections.entries()) {
      const blocks: ReportBlock[] = [];
      for (const s of this.streams.values()) {
        if (s.section !== index) continue;
        const expected = s.maxSeq - s.baseSeq + 1;
        const expectedInterval = expected - s.priorExpected;
        const lostInterval = expectedInterval - (s.packets - s.priorPackets);
        s.priorExpected = expected;
        s.priorPackets = s.packets;
        blocks.push({
          ssrc: s.ssrc,
          fractionLost:
            expectedInterval > 0 && lostInterval > 0
              ? Math.floor((lostInterval * 256) / expectedInterval)
              : 0,
          cumulativeLost: expected - s.packets,
          extendedHighestSeq: s.maxSeq,
          jitter: 0,
          lastSr: s.lastSrMiddle,
          delaySinceLastSr: s.lastSrAt > 0 ? Math.round(((now - s.lastSrAt) / 1000) * 65536) : 0,
        });
      }
      if (blocks.length === 0 || !section.track.isOpen()) continue;
      try {
        section.track.sendMessageBinary(buildReceiverReport(this.reportSsrc, blocks));
      } catch {
        // The track closed between the check and the send; the next tick finds it closed.
      }
    }
  }

  private onPacket(
    message: Buffer,
    kind: types.MediaKind,
    consumerId: string | undefined,
    section: number,
  ): void {
    const now = performance.now();
    if (isRtcp(message)) {
      for (const sr of parseRtcp(message).senderReports) {
        const s = this.streams.get(sr.ssrc);
        if (s) {
          s.lastSrMiddle = sr.ntpMiddle;
          s.lastSrAt = now;
        }
      }
      return;
    }
    const rtp = parseRtp(message);
    if (!rtp) {
      this.unprobed++;
      return;
    }
    let s = this.streams.get(rtp.ssrc);
    if (!s) {
      s = {
        ssrc: rtp.ssrc,
        kind,
        consumerId,
        section,
        packets: 0,
        bytes: 0,
        keyframes: 0,
        lastKeyframeWidth: undefined,
        firstPacketAt: now,
        baseSeq: rtp.sequenceNumber,
        maxSeq: rtp.sequenceNumber,
        priorExpected: 0,
        priorPackets: 0,
        lastSrMiddle: 0,
        lastSrAt: 0,
      };
      this.streams.set(rtp.ssrc, s);
      this.notifyMedia(kind, now);
    } else {
      // Extend the 16-bit sequence number to the value nearest the highest seen.
      const delta = ((rtp.sequenceNumber - (s.maxSeq & 0xffff) + 0x8000) & 0xffff) - 0x8000;
      if (delta > 0) s.maxSeq += delta;
    }
    s.packets++;
    s.bytes += message.length;
    if (kind === 'video') {
      const width = vp8KeyframeWidth(message, rtp.payloadOffset, rtp.payloadEnd);
      if (width !== undefined) {
        s.keyframes++;
        s.lastKeyframeWidth = width;
      }
    }
    const probe = readProbe(message, rtp);
    if (probe) this.delay.record(now - probe.sendTimeMs);
    else this.unprobed++;
  }

  private notifyMedia(kind: types.MediaKind, at: number): void {
    if (this.mediaWaiters.length === 0) return;
    const ready = this.mediaWaiters.filter((w) => w.kind === undefined || w.kind === kind);
    this.mediaWaiters = this.mediaWaiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve(at);
  }
}

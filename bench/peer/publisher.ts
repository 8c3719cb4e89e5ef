import nodeDataChannel from 'node-datachannel';
import type { Track } from 'node-datachannel';
import type { types } from 'mediasoup';
import { PeerLink } from './link.js';
import type { LinkOptions } from './link.js';
import { newCname, newSsrc } from './ids.js';
import {
  EXT_ID,
  EXT_URI,
  PROBE_SIZE,
  buildSenderReport,
  isRtcp,
  parseRtcp,
  writeProbe,
  writeRtpHeader,
} from './rtp.js';
import type { ExtensionValues } from './rtp.js';
import { sharedScheduler } from './scheduler.js';
import type { MediaScheduler, Ticking } from './scheduler.js';
import type { RemoteSection, RemoteTransportParams } from './sdp.js';
import { VP8_DESCRIPTOR_SIZE, writeVp8Descriptor, writeVp8FrameHeader } from './vp8.js';

export interface VideoLayerSpec {
  /** Target bitrate in bit/s (frames are sized to it; keyframes are larger). */
  bitrate: number;
  width: number;
  height: number;
}

/** Browser-like three-layer simulcast: about 150, 500 and 1500 kbit/s. */
export const DEFAULT_SIMULCAST: readonly VideoLayerSpec[] = [
  { bitrate: 150_000, width: 320, height: 180 },
  { bitrate: 500_000, width: 640, height: 360 },
  { bitrate: 1_500_000, width: 1280, height: 720 },
];

export interface PublisherOptions extends LinkOptions {
  /** Send Opus-like audio (default true). */
  audio?: boolean;
  /** Simulcast layers, lowest first; false for no video (default DEFAULT_SIMULCAST). */
  video?: readonly VideoLayerSpec[] | false;
  fps?: number;
  /** Periodic keyframes on every layer besides those asked by PLI/FIR; 0 turns them off (default). */
  keyframeIntervalMs?: number;
  scheduler?: MediaScheduler;
  audioPayloadType?: number;
  /** Average audio bitrate in bit/s (default about 48 kbit/s: 80-160 byte payloads every 20 ms). */
  audioBitrate?: number;
  /**
   * Real encoded audio frames (e.g. Opus of a tone) sent in a loop instead of synthetic payloads;
   * such packets carry no delay probe. For tests whose receiver decodes audio (the phone leg).
   */
  audioFrames?: readonly Buffer[];
  videoPayloadType?: number;
}

export interface PublishedStreamStats {
  ssrc: number;
  kind: types.MediaKind;
  /** Simulcast layer index (0 = lowest) for video. */
  layer?: number;
  packets: number;
  /** RTP bytes: header, extensions and payload (SRTP overhead excluded). */
  bytes: number;
  keyframes: number;
  keyframeRequests: number;
}

export interface PublisherStats {
  streams: PublishedStreamStats[];
  packets: number;
  bytes: number;
  /** Packets that node-datachannel refused (track not open or send error). */
  sendFailures: number;
  /** Packets dropped because the pacing queue was full (the generator could not keep up). */
  pacerDrops: number;
  rtcpPackets: number;
}

const AUDIO_MID = '0';
const VIDEO_MID = '1';
const AUDIO_CLOCK = 48_000;
const VIDEO_CLOCK = 90_000;
const AUDIO_FRAME_MS = 20;
const MAX_VIDEO_PAYLOAD = 1100;
const KEYFRAME_FACTOR = 4;
/** Like a browser, answer keyframe requests at most this often per layer. */
const KEYFRAME_MIN_GAP_MS = 250;
const SR_INTERVAL_MS = 1000;
/** Pacing at 2.5x the media rate, as WebRTC's pacer does. */
const PACING_FACTOR = 2.5;
const MAX_QUEUED_PACKETS = 2000;
/** Clock jumps beyond this (a stalled event loop) resynchronise instead of bursting. */
const MAX_CATCH_UP_MS = 200;

interface StreamState extends PublishedStreamStats {
  payloadType: number;
  clockRate: number;
  seq: number;
  /** RTP timestamp origin: RTP time = base + (t - t0) * clock / 1000. */
  tsBase: number;
}

interface LayerState extends StreamState {
  spec: VideoLayerSpec;
  pictureId: number;
  keyframePending: boolean;
  lastKeyframeAt: number;
}

interface QueuedPacket {
  layer: LayerState;
  timestamp: number;
  payloadSize: number;
  /** First packet of a frame: carries the VP8 frame header. */
  start: boolean;
  marker: boolean;
  keyframe: boolean;
  pictureId: number;
}

/**
 * A sendonly peer publishing Opus-like audio and VP8 simulcast into a mediasoup WebRtcTransport.
 * Usage: construct, pass `dtlsParameters` to transport.connect(), call connect() with the
 * transport's parameters, produce() with `audioRtpParameters` / `videoRtpParameters`, then
 * startMedia(). Payloads end with a probe (send time, per-stream sequence) for the subscriber.
 */
export class Publisher implements Ticking {
  readonly dtlsParameters: types.DtlsParameters;
  readonly audioRtpParameters: types.RtpParameters | undefined;
  readonly videoRtpParameters: types.RtpParameters | undefined;
  readonly cname = newCname();

  private readonly link: PeerLink;
  private readonly scheduler: MediaScheduler;
  private readonly audioTrack: Track | undefined;
  private readonly videoTrack: Track | undefined;
  private readonly audio: StreamState | undefined;
  private readonly layers: LayerState[] = [];
  private readonly frameMs: number;
  /** Average audio payload in bytes (each packet varies by +-20 %). */
  private readonly audioPayloadBytes: number;
  private readonly keyframeIntervalMs: number;
  private readonly pacingBytesPerMs: number;
  private readonly queue: QueuedPacket[] = [];
  private queueHead = 0;
  private readonly scratch = Buffer.alloc(1500);
  private transportSeq = 0;
  private t0 = 0;
  private nextAudioAt = 0;
  private nextFrameAt = 0;
  private nextSrAt = 0;
  private lastTickAt = 0;
  private budget = 0;
  private sendFailures = 0;
  private pacerDrops = 0;
  private rtcpPackets = 0;
  private running = false;
  private closed = false;
  private readonly audioFrames: readonly Buffer[] | undefined;

  constructor(options: PublisherOptions) {
    this.audioFrames =
      options.audioFrames && options.audioFrames.length > 0 ? options.audioFrames : undefined;
    this.link = new PeerLink(options);
    this.scheduler = options.scheduler ?? sharedScheduler;
    this.frameMs = 1000 / (options.fps ?? 30);
    this.keyframeIntervalMs = options.keyframeIntervalMs ?? 0;
    const audioPt = options.audioPayloadType ?? 111;
    this.audioPayloadBytes = Math.max(
      40,
      Math.round((options.audioBitrate ?? 48_000) / 8 / (1000 / AUDIO_FRAME_MS)),
    );
    const videoPt = options.videoPayloadType ?? 96;
    const rtcp = { cname: this.cname, reducedSize: true, mux: true };

    if (options.audio !== false) {
      const ssrc = newSsrc();
      this.audio = newStream(ssrc, 'audio', audioPt, AUDIO_CLOCK);
      const media = new nodeDataChannel.Audio(AUDIO_MID, 'SendOnly');
      media.addOpusCodec(audioPt);
      media.addSSRC(ssrc, this.cname, this.cname, 'audio');
      this.audioTrack = this.link.addTrack(media);
      this.audioRtpParameters = {
        mid: AUDIO_MID,
        codecs: [
          {
            mimeType: 'audio/opus',
            payloadType: audioPt,
            clockRate: AUDIO_CLOCK,
            channels: 2,
            parameters: { minptime: 10, useinbandfec: 1 },
            rtcpFeedback: [{ type: 'transport-cc' }],
          },
        ],
        headerExtensions: [
          { uri: EXT_URI.mid, id: EXT_ID.mid },
          { uri: EXT_URI.absSendTime, id: EXT_ID.absSendTime },
          { uri: EXT_URI.transportWideCc, id: EXT_ID.transportWideCc },
          { uri: EXT_URI.audioLevel, id: EXT_ID.audioLevel },
        ],
        encodings: [{ ssrc }],
        rtcp,
      };
    }

    const layers = options.video === false ? [] : (options.video ?? DEFAULT_SIMULCAST);
    if (layers.length > 0) {
      const media = new nodeDataChannel.Video(VIDEO_MID, 'SendOnly');
      media.addVP8Codec(videoPt);
      for (const [index, spec] of layers.entries()) {
        const layer: LayerState = {
          ...newStream(newSsrc(), 'video', videoPt, VIDEO_CLOCK),
          layer: index,
          spec,
          pictureId: Math.floor(Math.random() * 0x7fff),
          keyframePending: true,
          lastKeyframeAt: -Infinity,
        };
        this.layers.push(layer);
        media.addSSRC(layer.ssrc, this.cname, this.cname, 'video');
      }
      // Same RTP clock origin for every layer: frames captured together share a timestamp.
      for (const layer of this.layers) layer.tsBase = this.layers[0]!.tsBase;
      this.videoTrack = this.link.addTrack(media);
      this.videoRtpParameters = {
        mid: VIDEO_MID,
        codecs: [
          {
            mimeType: 'video/VP8',
            payloadType: videoPt,
            clockRate: VIDEO_CLOCK,
            rtcpFeedback: [
              { type: 'transport-cc' },
              { type: 'ccm', parameter: 'fir' },
              { type: 'nack' },
              { type: 'nack', parameter: 'pli' },
            ],
          },
        ],
        headerExtensions: [
          { uri: EXT_URI.mid, id: EXT_ID.mid },
          { uri: EXT_URI.absSendTime, id: EXT_ID.absSendTime },
          { uri: EXT_URI.transportWideCc, id: EXT_ID.transportWideCc },
        ],
        encodings: this.layers.map((layer) => ({
          ssrc: layer.ssrc,
          scalabilityMode: 'L1T1',
          maxBitrate: layer.spec.bitrate,
        })),
        rtcp,
      };
    }
    const mediaBitrate =
      (this.audio ? this.audioPayloadBytes * 8 * (1000 / AUDIO_FRAME_MS) : 0) +
      this.layers.reduce((sum, l) => sum + l.spec.bitrate, 0);
    this.pacingBytesPerMs = (mediaBitrate * PACING_FACTOR) / 8 / 1000;

    for (const track of [this.audioTrack, this.videoTrack]) {
      track?.onMessage((message) => this.onRtcp(message));
    }
    this.dtlsParameters = this.link.offer();
  }

  /** Applies the server's answer; ICE and DTLS start now. Call after transport.connect() has been sent. */
  connect(transport: RemoteTransportParams): void {
    const sections: RemoteSection[] = [];
    for (const params of [this.audioRtpParameters, this.videoRtpParameters]) {
      if (!params?.mid) continue;
      const codec = params.codecs[0]!;
      sections.push({
        mid: params.mid,
        kind: params.mid === AUDIO_MID ? 'audio' : 'video',
        direction: 'recvonly',
        codecs: [codec],
        headerExtensions: params.headerExtensions ?? [],
      });
    }
    this.link.answer(transport, sections);
  }

  /**
   * Our offer as SDP text with its candidates, for servers that negotiate SDP themselves (Janus)
   * instead of taking `dtlsParameters` and RTP parameters. Layers are plain `a=ssrc` lines.
   */
  offerSdp(timeoutMs?: number): Promise<string> {
    return this.link.gatheredDescription(timeoutMs);
  }

  /** Applies the server's own SDP answer to `offerSdp()`; ICE and DTLS start now. */
  acceptAnswer(sdp: string): void {
    this.link.acceptRemoteAnswer(sdp);
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

  /** Starts sending on the shared scheduler; packets before the link is up are simply not sent. */
  startMedia(): void {
    if (this.running || this.closed) return;
    this.running = true;
    const now = performance.now();
    this.t0 = now;
    this.nextAudioAt = now;
    this.nextFrameAt = now;
    this.nextSrAt = now;
    this.lastTickAt = now;
    this.scheduler.add(this);
  }

  stopMedia(): void {
    if (!this.running) return;
    this.running = false;
    this.scheduler.remove(this);
  }

  /** Asks for a keyframe on every layer at the next frame (as a PLI would). */
  requestKeyframe(): void {
    for (const layer of this.layers) layer.keyframePending = true;
  }

  get ssrcs(): { audio?: number; video: number[] } {
    return { ...(this.audio ? { audio: this.audio.ssrc } : {}), video: this.layers.map((l) => l.ssrc) };
  }

  stats(): PublisherStats {
    const streams: PublishedStreamStats[] = [];
    for (const s of [...(this.audio ? [this.audio] : []), ...this.layers]) {
      streams.push({
        ssrc: s.ssrc,
        kind: s.kind,
        ...(s.layer !== undefined ? { layer: s.layer } : {}),
        packets: s.packets,
        bytes: s.bytes,
        keyframes: s.keyframes,
        keyframeRequests: s.keyframeRequests,
      });
    }
    return {
      streams,
      packets: streams.reduce((sum, s) => sum + s.packets, 0),
      bytes: streams.reduce((sum, s) => sum + s.bytes, 0),
      sendFailures: this.sendFailures,
      pacerDrops: this.pacerDrops,
      rtcpPackets: this.rtcpPackets,
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopMedia();
    this.link.close();
  }

  tick(now: number): void {
    if (!this.running) return;
    const audioOpen = this.audioTrack?.isOpen() ?? false;
    const videoOpen = this.videoTrack?.isOpen() ?? false;

    if (this.audio) {
      if (now - this.nextAudioAt > MAX_CATCH_UP_MS) this.nextAudioAt = now;
      while (now >= this.nextAudioAt) {
        const frameIndex = Math.round((this.nextAudioAt - this.t0) / AUDIO_FRAME_MS);
        if (audioOpen) this.sendAudio(this.audio.tsBase + frameIndex * 960, now);
        this.nextAudioAt += AUDIO_FRAME_MS;
      }
    }

    if (this.layers.length > 0) {
      if (now - this.nextFrameAt > MAX_CATCH_UP_MS) this.nextFrameAt = now;
      while (now >= this.nextFrameAt) {
        if (videoOpen) this.enqueueFrame(this.nextFrameAt);
        this.nextFrameAt += this.frameMs;
      }
      this.budget = Math.min(
        this.budget + (now - this.lastTickAt) * this.pacingBytesPerMs,
        this.pacingBytesPerMs * 20,
      );
      while (this.budget > 0 && this.queueHead < this.queue.length) {
        const packet = this.queue[this.queueHead++]!;
        this.budget -= this.sendVideo(packet, now);
      }
      if (this.queueHead === this.queue.length) {
        this.queue.length = 0;
        this.queueHead = 0;
      }
    }
    this.lastTickAt = now;

    if (now >= this.nextSrAt) {
      this.nextSrAt = now + SR_INTERVAL_MS;
      // A stream reports only once it has sent (RFC 3550 senders do). mediasoup 3.27 re-checks a
      // consumer's layers on a stream's first Sender Report only: one that came before the stream's
      // first packet was dropped, and the consumer then never climbed to that layer.
      if (audioOpen && this.audio && this.audio.packets > 0)
        this.sendSenderReport(this.audioTrack!, this.audio, now);
      if (videoOpen)
        for (const layer of this.layers)
          if (layer.packets > 0) this.sendSenderReport(this.videoTrack!, layer, now);
    }
  }

  private rtpTimeAt(stream: StreamState, now: number): number {
    return (stream.tsBase + Math.round(((now - this.t0) * stream.clockRate) / 1000)) >>> 0;
  }

  private extensions(mid: string, now: number, audioLevel?: number): ExtensionValues {
    return {
      mid,
      absSendTimeMs: performance.timeOrigin + now,
      transportSeq: this.transportSeq++ & 0xffff,
      ...(audioLevel !== undefined ? { audioLevel } : {}),
    };
  }

  private sendAudio(timestamp: number, now: number): void {
    const audio = this.audio!;
    const payloadSize = Math.round(this.audioPayloadBytes * (0.8 + Math.random() * 0.4));
    const buf = this.scratch;
    const offset = writeRtpHeader(
      buf,
      {
        payloadType: audio.payloadType,
        sequenceNumber: audio.seq,
        timestamp,
        ssrc: audio.ssrc,
        marker: false,
      },
      this.extensions(AUDIO_MID, now, 30 + Math.floor(Math.random() * 30)),
    );
    if (this.audioFrames) {
      const frame = this.audioFrames[audio.packets % this.audioFrames.length]!;
      frame.copy(buf, offset);
      this.transmit(this.audioTrack!, audio, offset + frame.length);
      return;
    }
    buf[offset] = 0x78; // Opus TOC: SILK-only wideband 20 ms, mono, one frame.
    const end = offset + payloadSize;
    writeProbe(buf, end, performance.now(), audio.packets);
    this.transmit(this.audioTrack!, audio, end);
  }

  private enqueueFrame(frameAt: number): void {
    const timestamp = (this.layers[0]!.tsBase + Math.round(((frameAt - this.t0) * VIDEO_CLOCK) / 1000)) >>> 0;
    for (const layer of this.layers) {
      const periodic =
        this.keyframeIntervalMs > 0 && frameAt - layer.lastKeyframeAt >= this.keyframeIntervalMs;
      const keyframe =
        (layer.keyframePending && frameAt - layer.lastKeyframeAt >= KEYFRAME_MIN_GAP_MS) || periodic;
      if (keyframe) {
        layer.keyframePending = false;
        layer.lastKeyframeAt = frameAt;
        layer.keyframes++;
      }
      layer.pictureId = (layer.pictureId + 1) & 0x7fff;
      const average = layer.spec.bitrate / 8 / (1000 / this.frameMs);
      const frameBytes = Math.round(average * (keyframe ? KEYFRAME_FACTOR : 0.8 + Math.random() * 0.4));
      const count = Math.max(1, Math.ceil(frameBytes / MAX_VIDEO_PAYLOAD));
      if (this.queue.length - this.queueHead + count > MAX_QUEUED_PACKETS) {
        this.pacerDrops += count;
        layer.keyframePending ||= keyframe;
        continue;
      }
      const per = Math.max(PROBE_SIZE + 16, Math.ceil(frameBytes / count));
      for (let i = 0; i < count; i++) {
        this.queue.push({
          layer,
          timestamp,
          payloadSize: per,
          start: i === 0,
          marker: i === count - 1,
          keyframe,
          pictureId: layer.pictureId,
        });
      }
    }
  }

  /** Writes and sends one paced video packet; returns its size for the pacing budget. */
  private sendVideo(packet: QueuedPacket, now: number): number {
    const layer = packet.layer;
    const buf = this.scratch;
    const offset = writeRtpHeader(
      buf,
      {
        payloadType: layer.payloadType,
        sequenceNumber: layer.seq,
        timestamp: packet.timestamp,
        ssrc: layer.ssrc,
        marker: packet.marker,
      },
      this.extensions(VIDEO_MID, now),
    );
    writeVp8Descriptor(buf, offset, packet.start, packet.pictureId);
    if (packet.start) {
      writeVp8FrameHeader(
        buf,
        offset + VP8_DESCRIPTOR_SIZE,
        packet.keyframe,
        layer.spec.width,
        layer.spec.height,
        Math.min(packet.payloadSize, 4000),
      );
    }
    const end = offset + packet.payloadSize;
    writeProbe(buf, end, performance.now(), layer.packets);
    this.transmit(this.videoTrack!, layer, end);
    return end;
  }

  private transmit(track: Track, stream: StreamState, length: number): void {
    let ok = false;
    try {
      ok = track.sendMessageBinary(this.scratch.subarray(0, length));
    } catch {
      ok = false;
    }
    if (!ok) {
      this.sendFailures++;
      return;
    }
    // Only packets that left advance the sequence: a refused send must not look like loss downstream.
    stream.seq = (stream.seq + 1) & 0xffff;
    stream.packets++;
    stream.bytes += length;
  }

  private sendSenderReport(track: Track, stream: StreamState, now: number): void {
    const report = buildSenderReport(
      stream.ssrc,
      performance.timeOrigin + now,
      this.rtpTimeAt(stream, now),
      stream.packets,
      stream.bytes,
    );
    try {
      track.sendMessageBinary(report);
    } catch {
      this.sendFailures++;
    }
  }

  private onRtcp(message: Buffer): void {
    if (!isRtcp(message)) return;
    this.rtcpPackets++;
    for (const ssrc of parseRtcp(message).keyframeRequests) {
      const layer = this.layers.find((l) => l.ssrc === ssrc);
      if (!layer) continue;
      layer.keyframeRequests++;
      layer.keyframePending = true;
    }
  }
}

function newStream(ssrc: number, kind: types.MediaKind, payloadType: number, clockRate: number): StreamState {
  return {
    ssrc,
    kind,
    payloadType,
    clockRate,
    seq: Math.floor(Math.random() * 0x10000),
    tsBase: Math.floor(Math.random() * 0xffffffff),
    packets: 0,
    bytes: 0,
    keyframes: 0,
    keyframeRequests: 0,
  };
}

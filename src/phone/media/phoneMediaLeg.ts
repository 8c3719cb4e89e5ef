import { EventEmitter } from 'node:events';
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import type { types } from 'mediasoup';
import type { Logger } from '../../observability/logger.js';
import type { NegotiatedAudio } from '../sip/sdp.js';
import { decodeG711, encodeG711, type G711Law } from './g711.js';
import { AudioMixer } from './mixer.js';
import { OpusToNarrowband } from './opusDecoder.js';
import { DtmfReceiver, type DtmfDigit } from './rfc4733.js';
import { RtpSender, parseRtp } from './rtp.js';
import type { SrtpContext } from './srtp.js';

const FRAME_MS = 20;
const FRAME_SAMPLES = 160;
/** Beyond this lag the clock skips ahead instead of bursting packets to catch up. */
const MAX_LAG_FRAMES = 5;
/**
 * Symmetric RTP: after the latched source has been silent this long, the same stream (same SSRC)
 * from a new address is followed there (a NAT that rebinds mid-call).
 */
export const RELATCH_AFTER_SILENCE_MS = 500;

/** What the phone leg can consume: Opus from browsers, G.711 from other phone legs. */
export const PHONE_LEG_RTP_CAPABILITIES: types.RtpCapabilities = {
  codecs: [
    {
      kind: 'audio',
      mimeType: 'audio/opus',
      clockRate: 48000,
      channels: 2,
      preferredPayloadType: 100,
      rtcpFeedback: [],
    },
    {
      kind: 'audio',
      mimeType: 'audio/PCMU',
      clockRate: 8000,
      channels: 1,
      preferredPayloadType: 0,
      rtcpFeedback: [],
    },
    {
      kind: 'audio',
      mimeType: 'audio/PCMA',
      clockRate: 8000,
      channels: 1,
      preferredPayloadType: 8,
      rtcpFeedback: [],
    },
  ],
  headerExtensions: [],
};

export interface PhoneMediaLegOptions {
  readonly listenHost: string;
  readonly minPort: number;
  readonly maxPort: number;
  /** Loopback address of the relay socket and the mediasoup plain transport. */
  readonly mediasoupListenIp: string;
  /**
   * Symmetric RTP (latching): the first RTP packet after the SDP fixes the address media is
   * accepted from and sent to, whatever the SDP says (a phone or trunk behind NAT).
   */
  readonly symmetric?: boolean;
  readonly log: Logger;
}

export interface PhoneMediaLegEvents {
  digit: [DtmfDigit];
  /** The room's router closed under the leg's plain transport (its worker died): nothing is relayed now. */
  roomDisconnected: [];
}

interface HeardSource {
  readonly consumer: types.Consumer;
  readonly decode: (payload: Buffer) => Int16Array | undefined;
  readonly close: () => void;
}

/**
 * The media of one phone call. The phone talks RTP to the gateway's own socket (not straight to
 * mediasoup) so the gateway can play prompts, read DTMF and keep everything from the room until
 * admission. After admission, the phone's G.711 packets are relayed into a mediasoup PlainTransport
 * producer, and the room's audio, consumed on the same transport, is decoded, mixed and sent back.
 */
export class PhoneMediaLeg extends EventEmitter<PhoneMediaLegEvents> {
  private remote: NegotiatedAudio | undefined;
  /** Where the phone's RTP comes from and goes to: the SDP address, or the latched source. */
  private peer: { address: string; port: number } | undefined;
  private latched = false;
  /** The SSRC of the stream that latched: only it may move to a new address. */
  private latchedSsrc: number | undefined;
  /** SRTP towards the phone, when negotiated: one context per direction. */
  private srtp: { send: SrtpContext; receive: SrtpContext } | undefined;
  private sender: RtpSender | undefined;
  private readonly dtmf = new DtmfReceiver();
  private readonly mixer = new AudioMixer(FRAME_SAMPLES);
  private readonly frame = new Int16Array(FRAME_SAMPLES);
  private readonly discard = new Int16Array(FRAME_SAMPLES);
  private prompt:
    | { samples: Int16Array; offset: number; bargeIn: boolean; done: (how: 'done' | 'interrupted') => void }
    | undefined;
  private clockTimer: NodeJS.Timeout | undefined;
  private clockStart = 0;
  private framesSent = 0;
  private plain: types.PlainTransport | undefined;
  private producer: types.Producer | undefined;
  /**
   * Where and how a phone packet is relayed into the room, read once when the producer is made:
   * mediasoup's getters (`tuple`, `rtpParameters`) copy their value on every read, too dear per packet.
   */
  private toRoom: { payloadType: number; ssrc: number; port: number; ip: string } | undefined;
  private readonly heard = new Map<number, HeardSource>();
  private closed = false;
  /** Last time RTP came from the phone (ms), for media timeouts. */
  lastPhonePacketAt = Date.now();
  /** Counters for tests and logs. */
  readonly stats = { fromPhone: 0, toPhone: 0, relayedToRoom: 0, fromRoom: 0, dropped: 0, latched: 0 };

  private constructor(
    private readonly phoneSocket: dgram.Socket,
    private readonly relaySocket: dgram.Socket,
    private readonly options: PhoneMediaLegOptions,
  ) {
    super();
    phoneSocket.on('message', (data, info) => this.fromPhone(data, info));
    relaySocket.on('message', (data) => this.fromRoom(data));
    phoneSocket.on('error', (error) => options.log.warn({ err: error.message }, 'phone rtp socket error'));
    relaySocket.on('error', (error) => options.log.warn({ err: error.message }, 'relay rtp socket error'));
  }

  static async open(options: PhoneMediaLegOptions): Promise<PhoneMediaLeg> {
    const phoneSocket = await bindInRange(options.listenHost, options.minPort, options.maxPort);
    let relaySocket: dgram.Socket;
    try {
      relaySocket = await bindInRange(options.mediasoupListenIp, 0, 0);
    } catch (error) {
      phoneSocket.close();
      throw error;
    }
    return new PhoneMediaLeg(phoneSocket, relaySocket, options);
  }

  get localPort(): number {
    return this.phoneSocket.address().port;
  }

  get codec(): G711Law | undefined {
    return this.remote?.codec;
  }

  /** Sets (or updates, on a re-INVITE) where the phone receives and what it speaks; starts the clock. */
  setRemote(remote: NegotiatedAudio): void {
    const codecChanged = this.remote?.codec !== remote.codec;
    const before = this.remote;
    const moved =
      before === undefined ||
      before.remoteAddress !== remote.remoteAddress ||
      before.remotePort !== remote.remotePort;
    this.remote = remote;
    if (moved || !this.latched) {
      this.peer = { address: remote.remoteAddress, port: remote.remotePort };
      this.latched = false;
    }
    if (!this.sender || codecChanged)
      this.sender = new RtpSender(randomInt(1, 0xffffffff), remote.payloadType);
    if (!this.clockTimer && !this.closed) {
      this.clockStart = performance.now();
      this.framesSent = 0;
      this.scheduleTick();
    }
  }

  /** From now on, RTP to and from the phone is SRTP with these contexts. */
  setSrtp(send: SrtpContext, receive: SrtpContext): void {
    this.srtp = { send, receive };
  }

  /**
   * Plays a prompt to the phone. With bargeIn, a key press stops it (type-ahead); without, it plays
   * to its end. Resolves when it ends; a new prompt interrupts the current one.
   */
  play(samples: Int16Array, bargeIn: boolean): Promise<'done' | 'interrupted'> {
    this.prompt?.done('interrupted');
    return new Promise((resolve) => {
      this.prompt = { samples, offset: 0, bargeIn, done: resolve };
    });
  }

  stopPrompt(): void {
    const prompt = this.prompt;
    this.prompt = undefined;
    prompt?.done('interrupted');
  }

  /** A DTMF digit from SIP INFO enters the same path as RFC 4733 digits. */
  injectDigit(digit: DtmfDigit): void {
    this.onDigit(digit);
  }

  private onDigit(digit: DtmfDigit): void {
    if (this.prompt?.bargeIn) this.stopPrompt();
    this.emit('digit', digit);
  }

  private fromPhone(received: Buffer, info: dgram.RemoteInfo): void {
    const remote = this.remote;
    const peer = this.peer;
    if (!remote || !peer) {
      this.stats.dropped++;
      return;
    }
    // Only the address the phone announced may send to this socket; with symmetric RTP, the first
    // RTP packet from anywhere latches instead, and only that source is accepted afterwards, until
    // it falls silent and its stream comes back from elsewhere (NAT rebinding).
    const latching = this.options.symmetric === true && !this.latched;
    const portMoved = this.latched && info.port !== peer.port && info.port !== 0;
    let relatching = false;
    if (!latching && (info.address !== peer.address || portMoved)) {
      relatching = this.latched && Date.now() - this.lastPhonePacketAt >= RELATCH_AFTER_SILENCE_MS;
      if (!relatching) {
        this.stats.dropped++;
        return;
      }
    }
    // SRTP: only packets that authenticate with the phone's key count (and latch).
    const data = this.srtp ? this.srtp.receive.unprotect(received) : received;
    if (!data) {
      this.stats.dropped++;
      return;
    }
    const packet = parseRtp(data);
    if (!packet) return;
    if (relatching && packet.ssrc !== this.latchedSsrc) {
      this.stats.dropped++;
      return;
    }
    if (latching || relatching) {
      // Source port 0 means "no reply port" (RFC 768): keep the SDP port then.
      this.peer = { address: info.address, port: info.port === 0 ? peer.port : info.port };
      this.latched = true;
      this.latchedSsrc = packet.ssrc;
      this.stats.latched++;
    }
    this.stats.fromPhone++;
    this.lastPhonePacketAt = Date.now();
    if (remote.telephoneEventPt !== undefined && packet.payloadType === remote.telephoneEventPt) {
      // DTMF stays here: digits (PINs) never reach the room.
      for (const digit of this.dtmf.receive(packet)) this.onDigit(digit);
      return;
    }
    const toRoom = this.toRoom;
    if (packet.payloadType !== remote.payloadType || !toRoom || !this.plain || this.plain.closed) return;
    const relayed = Buffer.from(data);
    relayed[1] = ((relayed[1] ?? 0) & 0x80) | toRoom.payloadType;
    relayed.writeUInt32BE(toRoom.ssrc, 8);
    this.relaySocket.send(relayed, toRoom.port, toRoom.ip, () => undefined);
    this.stats.relayedToRoom++;
  }

  private fromRoom(data: Buffer): void {
    const packet = parseRtp(data);
    if (!packet) return;
    const source = this.heard.get(packet.ssrc);
    if (!source) return;
    this.stats.fromRoom++;
    const samples = source.decode(packet.payload);
    if (samples) this.mixer.push(source.consumer.id, samples);
  }

  private scheduleTick(): void {
    const due = this.clockStart + (this.framesSent + 1) * FRAME_MS;
    this.clockTimer = setTimeout(() => this.tick(), Math.max(0, due - performance.now()));
  }

  private tick(): void {
    if (this.closed) return;
    const behind = Math.floor((performance.now() - this.clockStart) / FRAME_MS) - this.framesSent;
    if (behind > MAX_LAG_FRAMES) this.framesSent += behind - 1;
    this.sendFrame();
    this.framesSent++;
    this.scheduleTick();
  }

  private sendFrame(): void {
    const remote = this.remote;
    const peer = this.peer;
    const sender = this.sender;
    if (!remote || !peer || !sender) return;
    const frame = this.frame;
    const prompt = this.prompt;
    if (prompt) {
      frame.fill(0);
      frame.set(prompt.samples.subarray(prompt.offset, prompt.offset + FRAME_SAMPLES));
      prompt.offset += FRAME_SAMPLES;
      if (prompt.offset >= prompt.samples.length) {
        this.prompt = undefined;
        prompt.done('done');
      }
      // Room audio that arrived meanwhile is dropped, not delayed behind the prompt.
      if (this.mixer.sourceCount > 0) this.mixer.mix(this.discard);
    } else {
      this.mixer.mix(frame);
    }
    if (remote.direction === 'sendonly' || remote.direction === 'inactive') return;
    const plain = sender.next(encodeG711(remote.codec, frame), FRAME_SAMPLES);
    const packet = this.srtp ? this.srtp.send.protect(plain) : plain;
    this.phoneSocket.send(packet, peer.port, peer.address, () => undefined);
    this.stats.toPhone++;
  }

  /**
   * Connects the leg to the room after admission: a plain transport towards the relay socket (the
   * room creates and owns it, `openTransport`), the phone's producer on it, and a consumer per
   * audio producer the phone should hear.
   */
  async connectRoom(
    openTransport: (listenIp: string) => Promise<types.PlainTransport>,
    appData: Record<string, unknown>,
  ): Promise<types.Producer> {
    const codec = this.remote?.codec;
    if (!codec) throw new Error('no negotiated codec');
    if (this.producer) return this.producer;
    const plain = await openTransport(this.options.mediasoupListenIp);
    if (this.closed) {
      plain.close();
      throw new Error('leg closed');
    }
    this.plain = plain;
    let routerGone = false;
    plain.once('routerclose', () => (routerGone = true));
    plain.observer.once('close', () => {
      if (this.plain !== plain) return; // closed on purpose (disconnectRoom, close)
      this.forgetRoom();
      // The router went (its worker died): the call waits for the room to move. Closed by the
      // room itself (removal, the room's end), the call is told through the port and hangs up.
      if (routerGone && !this.closed) this.emit('roomDisconnected');
    });
    const relay = this.relaySocket.address();
    await plain.connect({ ip: relay.address, port: relay.port });
    this.producer = await plain.produce({
      kind: 'audio',
      rtpParameters: {
        codecs: [
          {
            mimeType: `audio/${codec}`,
            payloadType: codec === 'PCMU' ? 0 : 8,
            clockRate: 8000,
            channels: 1,
            rtcpFeedback: [],
          },
        ],
        encodings: [{ ssrc: randomInt(1, 0xffffffff) }],
      },
      appData,
    });
    const parameters = this.producer.rtpParameters;
    const tuple = plain.tuple;
    this.toRoom = {
      payloadType: parameters.codecs[0]?.payloadType ?? 0,
      ssrc: parameters.encodings?.[0]?.ssrc ?? 0,
      port: tuple.localPort,
      ip: tuple.localIp,
    };
    return this.producer;
  }

  /** Starts hearing a producer of the room (idempotent per producer). */
  async hear(router: types.Router, producer: types.Producer): Promise<void> {
    const plain = this.plain;
    if (!plain || this.closed || producer.id === this.producer?.id) return;
    if ([...this.heard.values()].some((source) => source.consumer.producerId === producer.id)) return;
    if (!router.canConsume({ producerId: producer.id, rtpCapabilities: PHONE_LEG_RTP_CAPABILITIES })) {
      this.options.log.warn({ producerId: producer.id }, 'phone leg cannot consume producer');
      return;
    }
    const consumer = await plain.consume({
      producerId: producer.id,
      rtpCapabilities: PHONE_LEG_RTP_CAPABILITIES,
    });
    const ssrc = consumer.rtpParameters.encodings?.[0]?.ssrc;
    const mime = consumer.rtpParameters.codecs[0]?.mimeType.toLowerCase();
    if (ssrc === undefined || this.closed) {
      consumer.close();
      return;
    }
    let source: HeardSource;
    if (mime === 'audio/opus') {
      const decoder = new OpusToNarrowband();
      source = { consumer, decode: (payload) => decoder.decode(payload), close: () => decoder.close() };
    } else {
      const law: G711Law = mime === 'audio/pcma' ? 'PCMA' : 'PCMU';
      source = { consumer, decode: (payload) => decodeG711(law, payload), close: () => undefined };
    }
    this.heard.set(ssrc, source);
    this.mixer.addSource(consumer.id);
    const forget = () => this.stopHearing(producer.id);
    consumer.on('producerclose', forget);
    consumer.on('transportclose', forget);
  }

  stopHearing(producerId: string): void {
    for (const [ssrc, source] of this.heard) {
      if (source.consumer.producerId !== producerId) continue;
      this.heard.delete(ssrc);
      this.mixer.removeSource(source.consumer.id);
      source.consumer.close();
      source.close();
    }
  }

  /** Closes the leg's transport on the room's router (before connecting to another router). */
  disconnectRoom(): void {
    const plain = this.plain;
    this.forgetRoom();
    plain?.close();
  }

  private forgetRoom(): void {
    this.plain = undefined;
    this.producer = undefined;
    this.toRoom = undefined;
    for (const producerId of [...this.heard.values()].map((s) => s.consumer.producerId))
      this.stopHearing(producerId);
  }

  get hearing(): number {
    return this.heard.size;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.clockTimer);
    this.stopPrompt();
    this.disconnectRoom();
    this.phoneSocket.close();
    this.relaySocket.close();
    this.removeAllListeners();
  }
}

/** Binds a UDP socket on a free port of the range (0..0: any free port). */
async function bindInRange(host: string, minPort: number, maxPort: number): Promise<dgram.Socket> {
  const type = host.includes(':') ? 'udp6' : 'udp4';
  const tryBind = (port: number) =>
    new Promise<dgram.Socket | undefined>((resolve) => {
      const socket = dgram.createSocket(type);
      socket.once('error', () => {
        socket.close();
        resolve(undefined);
      });
      socket.bind(port, host, () => {
        socket.removeAllListeners('error');
        resolve(socket);
      });
    });
  if (minPort === 0 && maxPort === 0) {
    const socket = await tryBind(0);
    if (!socket) throw new Error('no free RTP port');
    return socket;
  }
  // RTP ports are even by convention (RFC 3550 11); start at a random one to spread reuse.
  const first = minPort + (minPort % 2);
  const slots = Math.floor((maxPort - first) / 2) + 1;
  const offset = randomInt(0, Math.max(1, slots));
  for (let i = 0; i < slots; i++) {
    const socket = await tryBind(first + ((offset + i) % slots) * 2);
    if (socket) return socket;
  }
  throw new Error('no free RTP port in range');
}

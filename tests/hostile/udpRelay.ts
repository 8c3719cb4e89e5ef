import dgram from 'node:dgram';
import type { RemoteTransportParams } from '../../bench/peer/index.js';

/**
 * A user-space UDP relay on loopback between one WebRTC peer and the server's WebRtcServer port:
 * the peer is given the relay's address as the server's ICE candidate. SRTP keeps RTP headers in
 * clear, so the relay can tell RTP from RTCP, STUN and DTLS, read SSRCs and sequence numbers,
 * drop what a policy says, keep copies of what the peer sent, and inject packets towards the
 * server from the peer's own (ICE-validated) 5-tuple.
 */
export type PacketKind = 'stun' | 'dtls' | 'rtp' | 'rtcp' | 'other';

/** RFC 7983 demultiplexing by first byte, RFC 5761 for RTP versus RTCP. */
export function packetKind(packet: Buffer): PacketKind {
  const b0 = packet[0] ?? 0;
  if (b0 <= 3) return 'stun';
  if (b0 >= 20 && b0 <= 63) return 'dtls';
  if (b0 >= 128 && b0 <= 191 && packet.length >= 12) {
    const pt = (packet[1] ?? 0) & 0x7f;
    return pt >= 64 && pt <= 95 ? 'rtcp' : 'rtp';
  }
  return 'other';
}

export interface RelayCounters {
  toServer: Record<PacketKind, number>;
  toPeer: Record<PacketKind, number>;
  droppedToPeer: number;
  droppedToServer: number;
  injected: number;
}

const zero = (): Record<PacketKind, number> => ({ stun: 0, dtls: 0, rtp: 0, rtcp: 0, other: 0 });

export class UdpRelay {
  private readonly front = dgram.createSocket('udp4');
  private back: dgram.Socket | undefined;
  private peer: { address: string; port: number } | undefined;
  readonly counters: RelayCounters = {
    toServer: zero(),
    toPeer: zero(),
    droppedToPeer: 0,
    droppedToServer: 0,
    injected: 0,
  };
  /** Copies of the peer's RTP packets (bounded), for replay attacks. */
  readonly captured: Buffer[] = [];
  dropToPeer: (packet: Buffer, kind: PacketKind) => boolean = () => false;
  dropToServer: (packet: Buffer, kind: PacketKind) => boolean = () => false;
  /** Called for each RTP packet forwarded to the peer. */
  onRtpToPeer: ((packet: Buffer) => void) | undefined;

  private constructor(private readonly server: { address: string; port: number }) {}

  static async start(server: { address: string; port: number }): Promise<UdpRelay> {
    const relay = new UdpRelay(server);
    relay.front.on('message', (packet, from) => relay.fromPeer(packet, from));
    await new Promise<void>((resolve) => relay.front.bind(0, '127.0.0.1', resolve));
    return relay;
  }

  get port(): number {
    return this.front.address().port;
  }

  /** The transport parameters with the relay as the only (UDP) candidate. */
  rewrite<T extends RemoteTransportParams>(transport: T): T {
    const udp = transport.iceCandidates.find((c) => c.protocol === 'udp');
    if (!udp) throw new Error('no UDP candidate to relay');
    return {
      ...transport,
      iceCandidates: [{ ...udp, ip: '127.0.0.1', address: '127.0.0.1', port: this.port }],
    };
  }

  /** Sends a packet to the server as if the peer had sent it (same 5-tuple on the server's side). */
  inject(packet: Buffer): void {
    if (!this.back) return;
    this.counters.injected++;
    this.back.send(packet, this.server.port, this.server.address);
  }

  close(): void {
    this.front.close();
    this.back?.close();
  }

  private fromPeer(packet: Buffer, from: dgram.RemoteInfo): void {
    if (!this.back) {
      this.peer = { address: from.address, port: from.port };
      this.back = dgram.createSocket('udp4');
      this.back.on('message', (reply) => this.fromServer(reply));
      this.back.bind(0, '127.0.0.1');
    }
    const kind = packetKind(packet);
    if (this.dropToServer(packet, kind)) {
      this.counters.droppedToServer++;
      return;
    }
    this.counters.toServer[kind]++;
    if (kind === 'rtp' && this.captured.length < 5000) this.captured.push(Buffer.from(packet));
    this.back.send(packet, this.server.port, this.server.address);
  }

  private fromServer(packet: Buffer): void {
    if (!this.peer) return;
    const kind = packetKind(packet);
    if (this.dropToPeer(packet, kind)) {
      this.counters.droppedToPeer++;
      return;
    }
    this.counters.toPeer[kind]++;
    if (kind === 'rtp') this.onRtpToPeer?.(packet);
    this.front.send(packet, this.peer.port, this.peer.address);
  }
}

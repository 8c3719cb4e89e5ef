import type { DataChannel } from 'node-datachannel';
import type { types } from 'mediasoup';
import { PeerLink } from './link.js';
import { applicationMid, buildRemoteDataAnswer, localDtlsParameters } from './sdp.js';
import type { RemoteSctpParams, RemoteTransportParams } from './sdp.js';

/** One SCTP stream the peer sends or receives on; negotiated out of band (the server says its id). */
export interface DataStreamSpec {
  streamId: number;
  label: string;
  protocol?: string;
}

export interface DataStreamStats {
  messages: number;
  bytes: number;
  /** The last messages received, oldest first (at most `keep`). */
  last: Buffer[];
  /** Messages node-datachannel refused to send (channel not open or buffer full). */
  refused: number;
}

export interface DataPeerOptions {
  name: string;
  streams: DataStreamSpec[];
  /** Messages kept per stream for inspection (default 1000): memory stays bounded. */
  keep?: number;
}

/**
 * A node-datachannel peer with data channels only, tied to one mediasoup WebRtcTransport created
 * with SCTP: a device holder's data producers on its send transport, or a receiver's data
 * consumers on its receive transport. Channels are pre-negotiated with the stream ids mediasoup
 * uses (the `sctpStreamParameters.streamId` of a data producer we declare, or of a data consumer
 * the server announces), so no in-band DCEP is needed.
 */
export class DataPeer {
  private readonly link: PeerLink;
  private readonly channels = new Map<number, DataChannel>();
  private readonly stats = new Map<number, DataStreamStats>();
  private readonly keep: number;
  private mid = '0';

  constructor(options: DataPeerOptions) {
    this.link = new PeerLink({ name: options.name });
    this.keep = options.keep ?? 1000;
    for (const spec of options.streams) {
      const channel = this.link.pc.createDataChannel(spec.label, {
        negotiated: true,
        id: spec.streamId,
        ...(spec.protocol ? { protocol: spec.protocol } : {}),
      });
      const stats: DataStreamStats = { messages: 0, bytes: 0, last: [], refused: 0 };
      channel.onMessage((message) => {
        const data = typeof message === 'string' ? Buffer.from(message) : Buffer.from(message as Buffer);
        stats.messages++;
        stats.bytes += data.length;
        stats.last.push(data);
        if (stats.last.length > this.keep) stats.last.shift();
      });
      this.channels.set(spec.streamId, channel);
      this.stats.set(spec.streamId, stats);
    }
  }

  /** Creates the offer; returns the DTLS parameters for the server's `connectTransport`. */
  offer(): types.DtlsParameters {
    const dtls = this.link.offer();
    this.mid = applicationMid(this.link.pc.localDescription()?.sdp ?? '');
    return dtls;
  }

  /** Applies the transport's answer: ICE, DTLS and SCTP start. */
  connect(transport: RemoteTransportParams & { sctpParameters: RemoteSctpParams }): void {
    this.link.pc.setRemoteDescription(
      buildRemoteDataAnswer(transport, transport.sctpParameters, this.mid),
      'answer',
    );
  }

  /** Resolves once the stream's channel is open (SCTP up). */
  async waitOpen(streamId: number, timeoutMs = 10_000): Promise<void> {
    const channel = this.channel(streamId);
    const deadline = performance.now() + timeoutMs;
    while (!channel.isOpen()) {
      if (performance.now() > deadline)
        throw new Error(`data stream ${streamId} not open after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Sends one message (binary); false when node-datachannel refused it. */
  send(streamId: number, data: Buffer | string): boolean {
    const channel = this.channel(streamId);
    let sent = false;
    try {
      sent =
        channel.isOpen() && channel.sendMessageBinary(typeof data === 'string' ? Buffer.from(data) : data);
    } catch {
      sent = false;
    }
    if (!sent) this.stats.get(streamId)!.refused++;
    return sent;
  }

  /** Bytes queued in node-datachannel for the stream, not yet sent. */
  bufferedAmount(streamId: number): number {
    return this.channel(streamId).bufferedAmount();
  }

  received(streamId: number): DataStreamStats {
    const stats = this.stats.get(streamId);
    if (!stats) throw new Error(`no data stream ${streamId}`);
    return stats;
  }

  get dtlsParameters(): types.DtlsParameters {
    return localDtlsParameters(this.link.pc.localDescription()?.sdp ?? '');
  }

  waitConnected(timeoutMs?: number): Promise<void> {
    return this.link.waitConnected(timeoutMs);
  }

  close(): void {
    for (const channel of this.channels.values()) {
      try {
        channel.close();
      } catch {
        // Already closed with the connection.
      }
    }
    this.link.close();
  }

  private channel(streamId: number): DataChannel {
    const channel = this.channels.get(streamId);
    if (!channel) throw new Error(`no data stream ${streamId}`);
    return channel;
  }
}

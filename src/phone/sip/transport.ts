import { EventEmitter } from 'node:events';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import {
  SIP_LIMITS,
  buildResponse,
  parseSipMessage,
  serializeSipMessage,
  type ParseResult,
  type SipMessage,
} from './message.js';
import { SipStreamFramer } from './streamFramer.js';

export type SipTransportName = 'udp' | 'tcp' | 'tls';

/** Where a message came from, or where one goes. */
export interface SipPeer {
  readonly transport: SipTransportName;
  readonly address: string;
  readonly port: number;
  /** TLS: the host name the peer's certificate must carry (when it was dialled by name). */
  readonly serverName?: string;
}

export interface SipTransportEvents {
  message: [SipMessage, SipPeer];
  /** A message was refused; `answered` tells whether a 400 went back. */
  malformed: [{ peer: SipPeer; reason: string; answered: boolean }];
  /** A connection we opened (TCP, TLS) failed before it was up: refused, or a certificate refused. */
  connectFailed: [{ peer: SipPeer; code: string }];
  error: [Error];
}

export interface SipTransportOptions {
  readonly host: string;
  readonly udpPort: number | null;
  readonly tcpPort: number | null;
  readonly tlsPort: number | null;
  readonly tlsCertFile: string | null;
  readonly tlsKeyFile: string | null;
  /** CAs trusted for the TLS connections we open; the system's when null. */
  readonly tlsCaFile?: string | null;
  readonly maxConnections: number;
  /** Stream connections with no traffic for this long are closed. */
  readonly idleTimeoutMs?: number;
}

/** Bound on bytes queued towards one stream connection; a peer that does not read is dropped. */
const MAX_STREAM_BACKLOG = 1024 * 1024;

/**
 * SIP over UDP, TCP and TLS: receives and frames messages, refuses malformed ones (400 when the
 * request can still be answered), sends messages to peers, reusing stream connections both ways.
 */
export class SipTransport extends EventEmitter<SipTransportEvents> {
  private udp: dgram.Socket | undefined;
  private tcpServer: net.Server | undefined;
  private tlsServer: tls.Server | undefined;
  private readonly connections = new Map<string, net.Socket>();
  private closed = false;
  /** Read once at start: a missing CA file fails the start, not the first call. */
  private readonly tlsCa: Buffer | undefined;

  private constructor(private readonly options: SipTransportOptions) {
    super();
    this.tlsCa = options.tlsCaFile ? fs.readFileSync(options.tlsCaFile) : undefined;
  }

  static async start(options: SipTransportOptions): Promise<SipTransport> {
    const transport = new SipTransport(options);
    try {
      await transport.listen();
    } catch (error) {
      transport.close();
      throw error;
    }
    return transport;
  }

  /** The bound ports (useful when 0 was asked). */
  get ports(): { udp: number | undefined; tcp: number | undefined; tls: number | undefined } {
    const port = (server: net.Server | undefined) => {
      const address = server?.address();
      return address && typeof address === 'object' ? address.port : undefined;
    };
    return { udp: this.udp?.address().port, tcp: port(this.tcpServer), tls: port(this.tlsServer) };
  }

  private async listen(): Promise<void> {
    const { host } = this.options;
    if (this.options.udpPort !== null) {
      const socket = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
      this.udp = socket;
      socket.on('message', (data, info) =>
        this.receiveDatagram(data, { transport: 'udp', address: info.address, port: info.port }),
      );
      socket.on('error', (error) => this.emit('error', error));
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(this.options.udpPort ?? 0, host, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    }
    if (this.options.tcpPort !== null) {
      this.tcpServer = net.createServer((socket) => this.adoptStream(socket, 'tcp'));
      await listenServer(this.tcpServer, this.options.tcpPort, host);
    }
    if (this.options.tlsPort !== null && this.options.tlsCertFile && this.options.tlsKeyFile) {
      this.tlsServer = tls.createServer(
        {
          cert: fs.readFileSync(this.options.tlsCertFile),
          key: fs.readFileSync(this.options.tlsKeyFile),
          minVersion: 'TLSv1.2',
        },
        (socket) => this.adoptStream(socket, 'tls'),
      );
      await listenServer(this.tlsServer, this.options.tlsPort, host);
    }
  }

  private receiveDatagram(data: Buffer, peer: SipPeer): void {
    // Keep-alive pings (CRLF) carry no message.
    if (data.length <= 4 && data.toString('latin1').trim() === '') return;
    this.deliver(parseSipMessage(data, false), peer);
  }

  private deliver(result: ParseResult, peer: SipPeer): void {
    if (result.ok) {
      this.emit('message', result.message, peer);
      return;
    }
    let answered = false;
    if (result.respondTo) {
      answered = this.send(buildResponse(result.respondTo, 400, 'Bad Request'), peer);
    }
    this.emit('malformed', { peer, reason: result.reason, answered });
  }

  private adoptStream(socket: net.Socket, transport: 'tcp' | 'tls'): void {
    if (this.closed || this.connections.size >= this.options.maxConnections) {
      socket.destroy();
      return;
    }
    const peer: SipPeer = { transport, address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    this.watchStream(socket, peer);
  }

  private watchStream(socket: net.Socket, peer: SipPeer): void {
    const key = peerKey(peer);
    this.connections.set(key, socket);
    const framer = new SipStreamFramer();
    socket.setTimeout(this.options.idleTimeoutMs ?? 600_000);
    socket.on('timeout', () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      if (this.connections.get(key) === socket) this.connections.delete(key);
    });
    socket.on('data', (chunk: Buffer) => {
      for (const event of framer.push(chunk)) {
        if (event.type === 'message') {
          this.deliver(parseSipMessage(event.bytes, true), peer);
        } else {
          // Framing is lost: answer if the request can be read, then drop the connection.
          const result = parseSipMessage(event.bytes.subarray(0, SIP_LIMITS.maxMessageBytes), true);
          this.deliver(
            result.ok ? { ok: false, reason: event.reason } : { ...result, reason: event.reason },
            peer,
          );
          socket.end();
          socket.destroySoon();
        }
      }
    });
  }

  /** Sends a message; false when it could not be queued (no socket, peer gone, backlog full). */
  send(message: SipMessage, peer: SipPeer): boolean {
    if (this.closed) return false;
    const bytes = serializeSipMessage(message);
    if (peer.transport === 'udp') {
      if (!this.udp) return false;
      this.udp.send(bytes, peer.port, peer.address, () => undefined);
      return true;
    }
    let socket = this.connections.get(peerKey(peer));
    if (!socket || socket.destroyed) {
      if (this.connections.size >= this.options.maxConnections) return false;
      socket =
        peer.transport === 'tls'
          ? tls.connect({
              host: peer.address,
              port: peer.port,
              // The identity checked is the name dialled; an address is checked as an address.
              servername: peer.serverName ?? (net.isIP(peer.address) ? undefined : peer.address),
              minVersion: 'TLSv1.2',
              ...(this.tlsCa ? { ca: this.tlsCa } : {}),
            })
          : net.connect({ host: peer.address, port: peer.port });
      this.watchStream(socket, peer);
      const opened = socket;
      const up = peer.transport === 'tls' ? 'secureConnect' : 'connect';
      const failed = (error: NodeJS.ErrnoException) =>
        this.emit('connectFailed', { peer, code: error.code ?? 'error' });
      opened.once('error', failed);
      opened.once(up, () => opened.off('error', failed));
    }
    if (socket.writableLength > MAX_STREAM_BACKLOG) {
      socket.destroy();
      return false;
    }
    socket.write(bytes);
    return true;
  }

  /** Whether a message can go to this peer over this transport. */
  supports(transport: SipTransportName): boolean {
    if (transport === 'udp') return this.udp !== undefined;
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.udp?.close();
    this.tcpServer?.close();
    this.tlsServer?.close();
    for (const socket of this.connections.values()) socket.destroy();
    this.connections.clear();
  }
}

export function peerKey(peer: SipPeer): string {
  return `${peer.transport}|${peer.address}|${peer.port}`;
}

async function listenServer(server: net.Server, port: number, host: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

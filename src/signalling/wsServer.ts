import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { PROTOCOL_SUBPROTOCOL } from '../protocol/messages.js';
import type { SignallingContext } from './context.js';
import { SignallingConnection } from './connection.js';
import { ConnectionCounter } from './rateLimiter.js';

export const SIGNALLING_PATH = '/ws';

/** Accepts signalling WebSockets on the HTTP server's upgrade path, with per-address limits. */
export class SignallingServer {
  private readonly wss: WebSocketServer;
  private readonly perAddress: ConnectionCounter;

  constructor(private readonly ctx: SignallingContext) {
    this.perAddress = new ConnectionCounter(ctx.config.limits.connectionsPerAddress);
    this.wss = new WebSocketServer({
      noServer: true,
      // Hard cap well above the per-message limit, so oversize messages get a typed error first.
      maxPayload: ctx.config.limits.wsMaxPayloadBytes * 4,
      perMessageDeflate: false,
      clientTracking: true,
      handleProtocols: (protocols) => (protocols.has(PROTOCOL_SUBPROTOCOL) ? PROTOCOL_SUBPROTOCOL : false),
    });
  }

  get connections(): number {
    return this.wss.clients.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const address = req.socket.remoteAddress ?? 'unknown';
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!offered.includes(PROTOCOL_SUBPROTOCOL)) {
      this.ctx.metrics.rejections.inc({ code: 'PROTOCOL_VERSION_UNSUPPORTED' });
      socket.end(
        'HTTP/1.1 426 Upgrade Required\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n' +
          JSON.stringify({
            code: 'PROTOCOL_VERSION_UNSUPPORTED',
            message: `Use subprotocol ${PROTOCOL_SUBPROTOCOL}.`,
          }),
      );
      return;
    }
    if (!this.perAddress.tryOpen(address)) {
      this.ctx.metrics.rejections.inc({ code: 'TOO_MANY_CONNECTIONS' });
      socket.end('HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\n\r\n');
      return;
    }
    // The slot is taken before the handshake: give it back when the socket goes, whether the
    // handshake succeeded or the library refused it (bad key or version never reach the callback).
    let released = false;
    socket.once('close', () => {
      if (released) return;
      released = true;
      this.perAddress.close(address);
    });
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.ctx.metrics.wsConnections.inc();
      ws.once('close', () => this.ctx.metrics.wsConnections.dec());
      new SignallingConnection(ws, this.ctx, address);
    });
  }

  /** Closes every connection (shutdown). */
  close(): void {
    for (const ws of this.wss.clients) ws.close(1001, 'server shutdown');
    this.wss.close();
  }
}

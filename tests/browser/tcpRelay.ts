import net from 'node:net';

/**
 * A TCP relay on loopback between a client and the real server, to make the network misbehave
 * on demand: freeze traffic (requests go unanswered), cut every connection (as a lost Wi-Fi
 * would), or refuse new connections (server unreachable).
 */
export class TcpRelay {
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private frozen = false;
  private refusing = false;

  private constructor(
    private readonly server: net.Server,
    private readonly targetPort: number,
  ) {
    server.on('connection', (client) => this.onConnection(client));
  }

  static async start(targetPort: number): Promise<TcpRelay> {
    const server = net.createServer();
    const relay = new TcpRelay(server, targetPort);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return relay;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get connections(): number {
    return this.pairs.size;
  }

  /** Stops moving bytes in both directions (they wait in the kernel) until `thaw()`. */
  freeze(): void {
    this.frozen = true;
    for (const pair of this.pairs) this.stopFlow(pair);
  }

  thaw(): void {
    this.frozen = false;
    for (const { client, upstream } of this.pairs) {
      client.pipe(upstream);
      upstream.pipe(client);
    }
  }

  /** Cuts every current connection abruptly (no WebSocket close handshake). */
  cutAll(): void {
    for (const { client, upstream } of this.pairs) {
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    }
    this.pairs.clear();
  }

  /** While on, new connections are closed at once. */
  refuse(on: boolean): void {
    this.refusing = on;
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(client: net.Socket): void {
    if (this.refusing) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    const pair = { client, upstream };
    this.pairs.add(pair);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    if (this.frozen) {
      this.stopFlow(pair);
    } else {
      client.pipe(upstream);
      upstream.pipe(client);
    }
  }

  private stopFlow({ client, upstream }: { client: net.Socket; upstream: net.Socket }): void {
    client.unpipe(upstream);
    upstream.unpipe(client);
    client.pause();
    upstream.pause();
  }
}

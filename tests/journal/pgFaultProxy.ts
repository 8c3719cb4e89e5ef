import net from 'node:net';

/**
 * A TCP relay in front of PostgreSQL that can, once armed, end the next new connection the way an
 * administrator's `pg_terminate_backend` does, but at the worst moment: the FATAL 57P01 error is
 * written in the same chunk as the ReadyForQuery that completes the connection, so the client
 * reads both in one go.
 */
export interface PgFaultProxy {
  port: number;
  /** The next connection is terminated the moment it becomes ready. */
  armOnce(): void;
  injected(): number;
  close(): Promise<void>;
}

function terminationMessage(): Buffer {
  const fields = Buffer.concat([
    Buffer.from('SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0'),
    Buffer.from([0]),
  ]);
  const header = Buffer.alloc(5);
  header.write('E', 0);
  header.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([header, fields]);
}

export async function startPgFaultProxy(upstreamPort: number): Promise<PgFaultProxy> {
  let armed = false;
  let injected = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    const forget = (): void => {
      sockets.delete(client);
      sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', forget).on('close', forget);
    upstream.on('error', forget).on('close', forget);
    client.pipe(upstream);
    const terminate = armed;
    armed = false;
    if (!terminate) {
      upstream.pipe(client);
      return;
    }
    // Hold the server's messages until the first ReadyForQuery ('Z'), then send them with the error.
    let held = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      held = Buffer.concat([held, chunk]);
      let offset = 0;
      while (held.length - offset >= 5) {
        const type = String.fromCharCode(held[offset] as number);
        const end = offset + 1 + held.readInt32BE(offset + 1);
        if (end > held.length) return;
        offset = end;
        if (type === 'Z') {
          injected++;
          client.end(Buffer.concat([held.subarray(0, end), terminationMessage()]));
          upstream.destroy();
          return;
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    armOnce: () => {
      armed = true;
    },
    injected: () => injected,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A real PostgreSQL 15 from Debian's packages for tests: initdb and pg_ctl into a temporary folder,
 * listening on 127.0.0.1 on a random port. PostgreSQL refuses to run as root, so as root it runs as
 * `nobody` (runuser) in a folder that user owns.
 */

const BIN = '/usr/lib/postgresql/15/bin';

export interface TestPostgres {
  url: string;
  port: number;
  /** Ends the server at once (as a crash would) and removes its folder. */
  stop(): void;
}

/** Why PostgreSQL cannot be started here, or null when it can. */
export function postgresUnavailable(): string | null {
  if (!fs.existsSync(path.join(BIN, 'initdb')) || !fs.existsSync(path.join(BIN, 'pg_ctl'))) {
    return `PostgreSQL 15 is not installed (${BIN}/initdb missing; scripts/setup.sh installs postgresql)`;
  }
  if (process.getuid?.() === 0 && spawnSync('runuser', ['--help']).error) {
    return 'running as root without runuser: PostgreSQL refuses to run as root';
  }
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function startPostgres(): Promise<TestPostgres> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'journal-pg-'));
  fs.chmodSync(root, 0o755);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['nobody:nogroup', root]);
  const run = (bin: string, args: string[]) => {
    const command = asRoot ? 'runuser' : path.join(BIN, bin);
    const full = asRoot ? ['-u', 'nobody', '--', path.join(BIN, bin), ...args] : args;
    execFileSync(command, full, { stdio: ['ignore', 'ignore', 'pipe'], cwd: root, timeout: 120_000 });
  };
  const data = path.join(root, 'data');
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  const options = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c max_connections=200`;
  run('pg_ctl', ['-D', data, '-o', options, '-l', path.join(root, 'log'), '-w', '-t', '60', 'start']);
  let stopped = false;
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already gone
      }
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

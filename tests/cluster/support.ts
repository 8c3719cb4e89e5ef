import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { signJoinToken, type TokenGrant } from '../../src/auth/joinTokens.js';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const TOKEN_SECRET = 'cluster-test-secret-0123456789abcdef';
export const API_KEY = 'cluster-test-api-key-0123456789';
export const AUDIENCE = 'teleconsult-sfu';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A loopback port free for TCP (and, with `udp`, for UDP too) at the time of asking. */
export async function freePort(udp = false): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    if (!udp) return port;
    const udpFree = await new Promise<boolean>((resolve) => {
      const socket = dgram.createSocket('udp4');
      socket.once('error', () => resolve(false));
      socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no free port');
}

/** Polls until `check` holds or the time is up. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await sleep(intervalMs);
  }
}

export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** A throw-away redis-server (Debian's package) on a free loopback port, no persistence. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfu-redis-'));
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await eventually(
    'redis to accept connections',
    () => output.includes('Ready to accept connections'),
    10_000,
  );
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    async stop() {
      await stopChild(child, 'SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  await Promise.race([exited, sleep(5000)]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
}

export interface NodeProcess {
  id: string;
  /** http://127.0.0.1:PORT: the node's own URL, advertised to the cluster. */
  url: string;
  wsUrl: string;
  child: ChildProcess;
  logs: string[];
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
  token(grant: Omit<TokenGrant, 'ttlS'>): Promise<string>;
  /** REST call on this node, not following redirects. */
  rest<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T; location: string | null }>;
  kill(signal: NodeJS.Signals): void;
  stop(): Promise<void>;
}

/** Starts `node dist/src/main.js` as one cluster node, loopback only, and waits until it is ready. */
export async function startNode(
  id: string,
  redisUrl: string,
  env: Record<string, string> = {},
): Promise<NodeProcess> {
  const port = await freePort();
  const mediaPort = await freePort(true);
  const url = `http://127.0.0.1:${port}`;
  const journal = fs.mkdtempSync(path.join(os.tmpdir(), `sfu-${id}-`));
  const child = spawn(process.execPath, [path.join(projectRoot, 'dist', 'src', 'main.js')], {
    cwd: projectRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      SFU_SERVER__LISTEN_HOST: '127.0.0.1',
      SFU_SERVER__PORT: String(port),
      SFU_SERVER__DEMO_PAGE: 'false',
      SFU_SERVER__SHUTDOWN_DEADLINE_S: '60',
      SFU_MEDIA__WORKERS: '1',
      SFU_MEDIA__LISTEN_IP: '127.0.0.1',
      SFU_MEDIA__WEB_RTC_SERVER_PORT: String(mediaPort),
      SFU_AUTH__TOKEN_SECRET: TOKEN_SECRET,
      SFU_AUTH__API_KEYS: JSON.stringify([API_KEY]),
      SFU_JOURNAL__DIR: journal,
      SFU_LOG__LEVEL: 'info',
      SFU_CLUSTER__ENABLED: 'true',
      SFU_CLUSTER__REDIS_URL: redisUrl,
      SFU_CLUSTER__NODE_ID: id,
      SFU_CLUSTER__NODE_URL: url,
      SFU_CLUSTER__HEARTBEAT_MS: '300',
      SFU_CLUSTER__NODE_TTL_MS: '1500',
      ...env,
    },
  });
  const logs: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim()) logs.push(line);
    if (logs.length > 2000) logs.splice(0, logs.length - 2000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const ready = eventually(
    `node ${id} to join the cluster`,
    () => logs.some((line) => line.includes('joined the cluster')),
    30_000,
  );
  const failed = exited.then((code) => {
    throw new Error(`node ${id} exited (${code}): ${logs.slice(-5).join('\n')}`);
  });
  await Promise.race([ready, failed]);
  failed.catch(() => undefined);
  const node: NodeProcess = {
    id,
    url,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    child,
    logs,
    exited,
    token: (grant) =>
      signJoinToken(new TextEncoder().encode(TOKEN_SECRET), AUDIENCE, { ttlS: 300, ...grant }),
    async rest<T>(method: string, restPath: string, body?: unknown) {
      const res = await fetch(url + restPath, {
        method,
        redirect: 'manual',
        headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      return {
        status: res.status,
        body: (text ? JSON.parse(text) : undefined) as T,
        location: res.headers.get('location'),
      };
    },
    kill(signal) {
      child.kill(signal);
    },
    async stop() {
      await stopChild(child, 'SIGTERM');
      fs.rmSync(journal, { recursive: true, force: true });
    },
  };
  return node;
}

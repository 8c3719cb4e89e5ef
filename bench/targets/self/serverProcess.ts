import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TargetError } from '../../harness/target.js';

/** Compiled beside this file: dist/bench/targets/self -> dist/src/main.js. */
const MAIN_PATH = fileURLToPath(new URL('../../../src/main.js', import.meta.url));
const START_TIMEOUT_MS = 30_000;
/** Kept from the child's output for the error message when it fails to start. */
const OUTPUT_TAIL_CHARS = 4000;

export interface ServerProcessOptions {
  workers: number;
  /** Extra SFU_* variables (limits for a scenario, for instance). */
  env?: Record<string, string>;
  /** Where V8 writes the server's CPU profile when it exits (none when absent). */
  profileDir?: string | undefined;
  log: (line: string) => void;
}

/**
 * Our real server (`node dist/src/main.js`) as a child process configured through SFU_*
 * variables: loopback only, a free HTTP port, free consecutive UDP ports for the workers'
 * WebRtcServers, a throwaway journal directory, warn-level logs. Its CPU and memory, and those of
 * its mediasoup workers, are what the benchmark measures.
 */
export class ServerProcess {
  readonly apiKey = `bench-${randomBytes(16).toString('hex')}`;
  readonly tokenSecret = randomBytes(32).toString('hex');
  readonly tokenAudience = 'teleconsult-sfu';
  url = '';
  wsUrl = '';
  workerPids: number[] = [];
  private child: ChildProcess | undefined;
  private journalDir: string | undefined;
  private outputTail = '';

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(options: ServerProcessOptions): Promise<void> {
    const port = await freeTcpPort();
    const mediaPort = await freeUdpPorts(options.workers);
    this.journalDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-journal-'));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      SFU_SERVER__LISTEN_HOST: '127.0.0.1',
      SFU_SERVER__PORT: String(port),
      SFU_SERVER__SHUTDOWN_DEADLINE_S: '0',
      SFU_SERVER__DEMO_PAGE: 'false',
      SFU_MEDIA__WORKERS: String(options.workers),
      SFU_MEDIA__LISTEN_IP: '127.0.0.1',
      SFU_MEDIA__WEB_RTC_SERVER_PORT: String(mediaPort),
      SFU_AUTH__API_KEYS: JSON.stringify([this.apiKey]),
      SFU_AUTH__TOKEN_SECRET: this.tokenSecret,
      SFU_AUTH__TOKEN_AUDIENCE: this.tokenAudience,
      SFU_JOURNAL__DIR: this.journalDir,
      SFU_LOG__LEVEL: 'warn',
      // Every participant of the load comes from loopback: the per-address cap would refuse most.
      SFU_LIMITS__CONNECTIONS_PER_ADDRESS: '1000000',
      ...options.env,
    };
    // A config file named in the operator's environment must not change what is measured.
    delete env.SFU_CONFIG;
    const nodeArgs = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : [];
    const child = spawn(process.execPath, [...nodeArgs, MAIN_PATH], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const keep = (chunk: Buffer): void => {
      this.outputTail = (this.outputTail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('exit', (code, signal) => {
      if (this.child === child) {
        this.child = undefined;
        options.log(`server exited (${signal ?? code ?? 'unknown'})`);
      }
    });
    this.url = `http://127.0.0.1:${port}`;
    this.wsUrl = `ws://127.0.0.1:${port}/ws`;
    try {
      await this.waitReady();
      this.workerPids = await this.waitWorkers(options.workers);
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    // Workers are killed by mediasoup when the server exits; make sure none outlives it.
    for (const pid of this.workerPids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    if (this.journalDir) fs.rmSync(this.journalDir, { recursive: true, force: true });
    this.journalDir = undefined;
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (!this.child) throw new TargetError(`server failed to start: ${this.outputTail.trim()}`);
      try {
        const res = await fetch(`${this.url}/readyz`);
        await res.arrayBuffer();
        if (res.ok) return;
      } catch {
        // Not listening yet.
      }
      await sleep(100);
    }
    throw new TargetError(`server not ready within ${START_TIMEOUT_MS} ms: ${this.outputTail.trim()}`);
  }

  /** The mediasoup workers are the server's child processes. */
  private async waitWorkers(expected: number): Promise<number[]> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const pids = this.child?.pid !== undefined ? childPids(this.child.pid) : [];
      if (pids.length >= expected || Date.now() > deadline) {
        if (pids.length < expected)
          throw new TargetError(`found ${pids.length} of ${expected} mediasoup workers under the server`);
        return pids;
      }
      await sleep(100);
    }
  }
}

/** Child processes of `pid`, from /proc/<pid>/task/<tid>/children. */
export function childPids(pid: number): number[] {
  const pids: number[] = [];
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return pids;
  }
  for (const task of tasks) {
    try {
      const text = fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text) pids.push(...text.split(/\s+/).map(Number));
    } catch {
      // The thread ended while we listed them.
    }
  }
  return pids;
}

function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function bindUdp(port: number): Promise<dgram.Socket | undefined> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(undefined);
    });
    socket.bind(port, '127.0.0.1', () => resolve(socket));
  });
}

/** A base port such that `count` consecutive UDP ports from it are free on 127.0.0.1 right now. */
async function freeUdpPorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Away from the tests' 41000-42000 band; bound right away, so a clash is unlikely.
    const base = 43000 + Math.floor(Math.random() * 750) * 8;
    const sockets: dgram.Socket[] = [];
    let ok = true;
    for (let i = 0; i < count && ok; i++) {
      const socket = await bindUdp(base + i);
      if (socket) sockets.push(socket);
      else ok = false;
    }
    for (const socket of sockets) socket.close();
    if (ok) return base;
  }
  throw new TargetError('no free consecutive UDP ports for the WebRtcServers');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

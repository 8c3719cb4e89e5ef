import { fork } from 'node:child_process';
import { resolveConfig } from '../../../src/config/load.js';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { types } from 'mediasoup';
import type {
  ConsumerInfo,
  ParticipantSignalling,
  ServerPids,
  SessionHandles,
  Target,
  TargetStartOptions,
  TransportInfo,
} from '../../harness/target.js';
import { TargetError } from '../../harness/target.js';
import type { DriverEvent, DriverMethod, DriverRequest, DriverResponse, DriverResults } from './protocol.js';

const REQUEST_TIMEOUT_MS = 15_000;
const DRIVER_PATH = fileURLToPath(new URL('./driver.js', import.meta.url));

type ParamsOf<M extends DriverMethod> = Extract<DriverRequest, { method: M }>['params'];

/** Which mediasoup drives the bare target: the one the server uses, or the engine it replaced. */
export type BareEngine = 'current' | 'legacy';

/** The replaced engine: mediasoup 3.12.16 (npm alias mediasoup-legacy) and its worker. */
const LEGACY_VERSION = '3.12.16';
/** The environment variable the 3.12.16 worker build of this project read for its UDP receive buffer. */
const LEGACY_RECV_BUFFER_ENV = 'TELECONSULT_UDP_RECV_BUFFER_BYTES';

/**
 * The 3.12.16 worker that the previous scripts/build-worker.mjs cached (it read its receive buffer
 * size from LEGACY_RECV_BUFFER_ENV), or BENCH_LEGACY_WORKER_BIN.
 */
export function legacyWorkerBin(): string {
  if (process.env.BENCH_LEGACY_WORKER_BIN) return process.env.BENCH_LEGACY_WORKER_BIN;
  const cacheRoot =
    process.env.MEDIASOUP_WORKER_CACHE ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'teleconsult-sfu');
  const dir = fs.existsSync(cacheRoot)
    ? fs.readdirSync(cacheRoot).find((d) => d.startsWith(`mediasoup-worker-${LEGACY_VERSION}-`))
    : undefined;
  const bin = dir && path.join(cacheRoot, dir, 'mediasoup-worker');
  if (!bin || !fs.existsSync(bin))
    throw new TargetError(
      `bare-legacy needs a mediasoup ${LEGACY_VERSION} worker: set BENCH_LEGACY_WORKER_BIN or keep the cached one in ${cacheRoot}`,
    );
  return bin;
}

/**
 * Target `bare`: the same mediasoup worker, driven by a minimal child process with no signalling
 * core. The baseline every other target is compared with: what the worker costs on its own.
 * `bare-legacy` is the same with the engine this project ran before (mediasoup 3.12.16), so that
 * `--compare --targets bare-legacy,bare` measures an engine upgrade under one load, side by side.
 */
export class BareTarget implements Target {
  readonly name: string;

  constructor(private readonly engine: BareEngine = 'current') {
    this.name = engine === 'legacy' ? 'bare-legacy' : 'bare';
  }
  private child: ChildProcess | undefined;
  private workerPids: number[] = [];
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }
  >();
  private log: (line: string) => void = () => undefined;

  async start(options: TargetStartOptions): Promise<void> {
    this.log = options.log;
    // The same worker socket settings as our server's defaults: the baseline differs only by the signalling core.
    const media = resolveConfig({}).media;
    const env: NodeJS.ProcessEnv =
      this.engine === 'legacy'
        ? {
            ...process.env,
            BENCH_MEDIASOUP_MODULE: 'mediasoup-legacy',
            MEDIASOUP_WORKER_BIN: legacyWorkerBin(),
            [LEGACY_RECV_BUFFER_ENV]: String(media.udpReceiveBufferBytes),
          }
        : { ...process.env, BENCH_MEDIASOUP_MODULE: 'mediasoup' };
    const child = fork(DRIVER_PATH, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env });
    this.child = child;
    child.on('message', (message: unknown) => this.onMessage(message));
    child.on('exit', (code, signal) => {
      this.child = undefined;
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new TargetError(`bare driver exited (${signal ?? code ?? 'unknown'})`));
        this.pending.delete(id);
      }
    });
    // Same default as the server's worker pool: one worker per CPU.
    const workers = options.workers > 0 ? options.workers : os.availableParallelism();
    const { workerPids, version } = await this.request('start', {
      workers,
      listenIp: '127.0.0.1',
      // The legacy worker takes the size from its environment (set above) and has no such option.
      recvBufferBytes: this.engine === 'legacy' ? 0 : media.udpReceiveBufferBytes,
    });
    this.workerPids = workerPids;
    this.log(`${this.name}: mediasoup ${version}`);
  }

  async openSession(_index: number): Promise<SessionHandles> {
    const { routerId } = await this.request('createRouter', {});
    const participant: ParticipantSignalling = {
      createTransport: (_direction): Promise<TransportInfo> => this.request('createTransport', { routerId }),
      connectTransport: async (transportId, dtlsParameters): Promise<void> => {
        await this.request('connectTransport', { transportId, dtlsParameters });
      },
      produce: async (transportId, kind, rtpParameters): Promise<string> =>
        (await this.request('produce', { transportId, kind, rtpParameters })).producerId,
      consume: (
        transportId: string,
        producerId: string,
        rtpCapabilities: types.RtpCapabilities,
      ): Promise<ConsumerInfo> => this.request('consume', { transportId, producerId, rtpCapabilities }),
      resumeConsumer: async (consumerId): Promise<void> => {
        await this.request('resumeConsumer', { consumerId });
      },
    };
    return {
      // No rooms, tokens or admission here: every participant talks straight to the router.
      join: () => Promise.resolve(participant),
      close: async () => {
        await this.request('closeRouter', { routerId });
      },
    };
  }

  serverPids(): ServerPids {
    return { ...(this.child?.pid !== undefined ? { server: this.child.pid } : {}), workers: this.workerPids };
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await this.request('stop', {});
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  private request<M extends DriverMethod>(method: M, params: ParamsOf<M>): Promise<DriverResults[M]> {
    const child = this.child;
    if (!child?.connected) return Promise.reject(new TargetError('bare driver is not running'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TargetError(`bare driver: ${method} timed out`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      child.send({ id, method, params });
    });
  }

  private onMessage(message: unknown): void {
    if (typeof message !== 'object' || message === null) return;
    if ('event' in message) {
      const event = message as DriverEvent;
      this.log(`bare driver: mediasoup worker ${event.pid} died`);
      return;
    }
    const response = message as DriverResponse;
    const pending = this.pending.get(response.id);
    if (!pending) return;
    this.pending.delete(response.id);
    clearTimeout(pending.timer);
    if (response.ok) pending.resolve(response.result);
    else pending.reject(new TargetError(`${response.error.code}: ${response.error.message}`));
  }
}

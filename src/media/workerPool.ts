import { EventEmitter } from 'node:events';
import os from 'node:os';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { useCheapCopiesInMediasoup } from './plainDataClone.js';
import { kernelReceiveBufferCap, udpReceiveBufferOption } from './socketBuffers.js';

/** One worker process with its WebRtcServer (one UDP and one TCP port) and its current load. */
export interface WorkerSlot {
  readonly index: number;
  worker: types.Worker;
  webRtcServer: types.WebRtcServer | undefined;
  /** Routers plus consumers hosted: consumers dominate forwarding cost. */
  load: number;
  routers: number;
}

export interface WorkerPoolEvents {
  /** A worker died; rooms whose routers lived on it have lost their media. */
  workerDied: [{ index: number; pid: number }];
  /** A replacement worker is running in the dead worker's slot. */
  workerReplaced: [{ index: number; pid: number }];
}

const REPLACE_RETRY_MS = 1000;

export class WorkerPool extends EventEmitter<WorkerPoolEvents> {
  private readonly slots: WorkerSlot[] = [];
  private closed = false;

  private constructor(
    private readonly config: Config['media'],
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    super();
  }

  static async start(config: Config['media'], log: Logger, metrics: Metrics): Promise<WorkerPool> {
    const pool = new WorkerPool(config, log.child({ module: 'worker-pool' }), metrics);
    const count = config.workers > 0 ? config.workers : os.availableParallelism();
    if (!useCheapCopiesInMediasoup())
      pool.log.warn("this mediasoup's parameter copies could not be replaced: joins cost more control CPU");
    const cap = kernelReceiveBufferCap();
    if (cap !== undefined && config.udpReceiveBufferBytes > cap)
      pool.log.warn(
        { wantedBytes: config.udpReceiveBufferBytes, rmemMaxBytes: cap },
        "net.core.rmem_max caps the media sockets' receive buffer below media.udpReceiveBufferBytes: raise it on media hosts",
      );
    try {
      for (let index = 0; index < count; index++) {
        const slot: WorkerSlot = { index, ...(await pool.launch(index)), load: 0, routers: 0 };
        pool.watch(slot);
        pool.slots.push(slot);
      }
    } catch (err) {
      await pool.close();
      throw err;
    }
    pool.metrics.workersAlive.set(pool.slots.length);
    return pool;
  }

  get size(): number {
    return this.slots.length;
  }

  get allAlive(): boolean {
    return this.slots.length > 0 && this.slots.every((slot) => !slot.worker.closed);
  }

  list(): readonly WorkerSlot[] {
    return this.slots;
  }

  /** The live worker with the least load; new rooms go there. */
  leastLoaded(avoidPid?: number): WorkerSlot | undefined {
    let best: WorkerSlot | undefined;
    for (const slot of this.slots) {
      if (slot.worker.closed) continue;
      // A room spanning workers wants another worker than its own, when there is one.
      if (slot.worker.pid === avoidPid && this.slots.some((o) => o !== slot && !o.worker.closed)) continue;
      if (!best || slot.load < best.load) best = slot;
    }
    return best;
  }

  slotOf(worker: types.Worker): WorkerSlot | undefined {
    return this.slots.find((slot) => slot.worker === worker);
  }

  /** Samples each worker's CPU and memory into the metrics registry. */
  async sampleResourceUsage(): Promise<void> {
    await Promise.all(
      this.slots.map(async (slot) => {
        if (slot.worker.closed) return;
        try {
          const usage = await slot.worker.getResourceUsage();
          const labels = { worker: String(slot.index), pid: String(slot.worker.pid) };
          this.metrics.workerCpuSeconds.set(labels, (usage.ru_utime + usage.ru_stime) / 1000);
          this.metrics.workerMaxRssBytes.set(labels, usage.ru_maxrss * 1024);
          this.metrics.workerRouters.set({ worker: String(slot.index) }, slot.routers);
        } catch {
          // A worker that dies while being sampled is reported by its 'died' handler.
        }
      }),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const slot of this.slots) slot.worker.close();
    this.metrics.workersAlive.set(0);
    await Promise.resolve();
  }

  private async launch(index: number): Promise<Pick<WorkerSlot, 'worker' | 'webRtcServer'>> {
    const worker = await mediasoup.createWorker({
      logLevel: this.config.workerLogLevel,
      rtcMinPort: this.config.rtcMinPort,
      rtcMaxPort: this.config.rtcMaxPort,
      ...(this.config.dtlsCertFile ? { dtlsCertificateFile: this.config.dtlsCertFile } : {}),
      ...(this.config.dtlsKeyFile ? { dtlsPrivateKeyFile: this.config.dtlsKeyFile } : {}),
      appData: { index },
    });
    let webRtcServer: types.WebRtcServer | undefined;
    if (this.config.webRtcServerPort > 0) {
      const port = this.config.webRtcServerPort + index;
      const base = {
        ip: this.config.listenIp,
        ...(this.config.announcedAddress ? { announcedAddress: this.config.announcedAddress } : {}),
        port,
      };
      try {
        webRtcServer = await worker.createWebRtcServer({
          listenInfos: [
            { protocol: 'udp', ...base, ...udpReceiveBufferOption(this.config.udpReceiveBufferBytes) },
            { protocol: 'tcp', ...base },
          ],
        });
      } catch (err) {
        // The port is taken (or the address is wrong): do not leave the worker behind.
        worker.close();
        throw err;
      }
    }
    this.log.info({ worker: index, pid: worker.pid }, 'mediasoup worker started');
    return { worker, webRtcServer };
  }

  /** Counts the slot's load from its current worker's observer, and replaces the worker if it dies. */
  private watch(slot: WorkerSlot): void {
    const worker = slot.worker;
    worker.on('died', (error) => this.onDied(slot, worker, error));
    worker.observer.on('newrouter', (router) => {
      if (slot.worker !== worker) return;
      slot.routers++;
      slot.load++;
      router.observer.on('close', () => {
        if (slot.worker !== worker) return;
        slot.routers--;
        slot.load--;
      });
      router.observer.on('newtransport', (transport) => {
        transport.observer.on('newconsumer', (consumer) => {
          if (slot.worker !== worker) return;
          slot.load++;
          consumer.observer.on('close', () => {
            if (slot.worker === worker) slot.load--;
          });
        });
      });
    });
  }

  private onDied(slot: WorkerSlot, worker: types.Worker, error: Error): void {
    if (this.closed || slot.worker !== worker) return;
    this.metrics.workerDeaths.inc();
    this.metrics.workersAlive.set(this.slots.filter((s) => !s.worker.closed).length);
    this.log.error(
      { worker: slot.index, pid: worker.pid, err: error.message },
      'mediasoup worker died; replacing it',
    );
    this.emit('workerDied', { index: slot.index, pid: worker.pid });
    void this.replace(slot);
  }

  private async replace(slot: WorkerSlot): Promise<void> {
    while (!this.closed) {
      try {
        const fresh = await this.launch(slot.index);
        if (this.closed) {
          fresh.worker.close();
          return;
        }
        slot.worker = fresh.worker;
        slot.webRtcServer = fresh.webRtcServer;
        slot.load = 0;
        slot.routers = 0;
        this.watch(slot);
        this.metrics.workersAlive.set(this.slots.filter((s) => !s.worker.closed).length);
        this.log.warn({ worker: slot.index, pid: fresh.worker.pid }, 'mediasoup worker replaced');
        this.emit('workerReplaced', { index: slot.index, pid: fresh.worker.pid });
        return;
      } catch (err) {
        this.log.error(
          { worker: slot.index, err: (err as Error).message },
          'worker replacement failed; retrying',
        );
        await new Promise((resolve) => setTimeout(resolve, REPLACE_RETRY_MS));
      }
    }
  }
}

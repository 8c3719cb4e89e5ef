import type { Percentiles } from '../peer/index.js';
import type { MediaScheduler } from '../peer/index.js';
import type { ConsultLoad, TrafficTotals } from './consult.js';

/** What a measurement window reads from a load (the 1:1 consult load, the assisted one). */
export type MeasuredLoad = Pick<ConsultLoad, 'totals' | 'resetDelays' | 'delays' | 'videoLayers'> & {
  readonly sessions: readonly unknown[];
};
import { snapshotCpu, sumMemory, udpCounters, udpDrops } from './proc.js';
import type { UdpCounters } from './proc.js';
import type { Target } from './target.js';

/** What one measurement window saw: every target is measured with these same definitions. */
export interface WindowResult {
  sessions: number;
  durationS: number;
  traffic: TrafficTotals;
  lossRatio: number;
  delayMs: Percentiles & { max: number; samples: number };
  cpuS: { server: number; workers: number };
  rssMiB: { server: number; workers: number };
  peakRssMiB: { server: number; workers: number };
  /** The load generator's own CPU over the window (this process): context, never counted as server. */
  generatorCpuS: number;
  /** Share of scheduler ticks that fired late: above a few percent the generator is the bottleneck. */
  generatorLateTickRatio: number;
  /** Stream ticks that threw (a track closed under its stream): should stay 0. */
  generatorTickFailures: number;
  /** Host-wide UDP errors during the window (socket buffer overflows explain loopback loss). */
  udpErrors: UdpCounters;
  /**
   * Datagrams dropped by the kernel on full receive buffers, per owner: the server's sockets (server
   * process and workers) and the generator's. Sockets closed during the window are not counted.
   */
  socketDrops: { server: number; generator: number };
  /** Received video streams, and those whose last keyframe had the top simulcast layer's width. */
  video: { streams: number; topLayer: number };
  /** With --cpu-budget: the cores the target could use, and how long the quota held it back in the window. */
  cpuBudget?: { cores: number; throttledS: number };
}

function delta(after: TrafficTotals, before: TrafficTotals): TrafficTotals {
  const out = { ...after };
  for (const key of Object.keys(out) as (keyof TrafficTotals)[]) out[key] = after[key] - before[key];
  return out;
}

export interface ProgressSink {
  (line: string): void;
}

/**
 * Measures a steady-state window of `durationS` seconds: traffic deltas, delay percentiles from
 * fresh histograms, CPU from /proc at both ends, memory at the end. Writes a progress line every second.
 */
export async function measureWindow(
  load: MeasuredLoad,
  target: Target,
  scheduler: MediaScheduler,
  durationS: number,
  progress: ProgressSink,
  label: string,
): Promise<WindowResult> {
  const pids = target.serverPids();
  load.resetDelays();
  const lateBefore = scheduler.lateTickCounts();
  const trafficStart = load.totals();
  const cpuStart = snapshotCpu(pids);
  const udpStart = udpCounters();
  const owners = {
    server: [...(pids.server !== undefined ? [pids.server] : []), ...pids.workers],
    generator: [process.pid],
  };
  const dropsStart = udpDrops(owners);
  const ownStart = process.cpuUsage();
  let previous = { traffic: trafficStart, cpu: cpuStart };

  const endAt = performance.now() + durationS * 1000;
  while (performance.now() < endAt) {
    await new Promise((resolve) =>
      setTimeout(resolve, Math.min(1000, Math.max(0, endAt - performance.now()))),
    );
    const now = { traffic: load.totals(), cpu: snapshotCpu(pids) };
    const seconds = (now.cpu.at - previous.cpu.at) / 1000 || 1;
    const d = delta(now.traffic, previous.traffic);
    const total = delta(now.traffic, trafficStart);
    const elapsed = Math.min(durationS, (now.cpu.at - cpuStart.at) / 1000);
    progress(
      `${label} ${elapsed.toFixed(0)}/${durationS}s sessions=${load.sessions.length}` +
        ` tx=${Math.round(d.sentPackets / seconds)}pps rx=${Math.round(d.receivedPackets / seconds)}pps` +
        ` rx=${((d.receivedBytes * 8) / seconds / 1e6).toFixed(1)}Mbit/s` +
        ` loss=${(ratio(total.lostPackets, total.expectedPackets) * 100).toFixed(2)}%` +
        ` cpu server=${pct((now.cpu.server - previous.cpu.server) / seconds)}` +
        ` workers=${pct((now.cpu.workers - previous.cpu.workers) / seconds)}`,
    );
    previous = now;
  }

  const cpuEnd = snapshotCpu(pids);
  const udpEnd = udpCounters();
  const dropsEnd = udpDrops(owners);
  const own = process.cpuUsage(ownStart);
  const traffic = delta(load.totals(), trafficStart);
  const delays = load.delays();
  const serverMemory = sumMemory(pids.server !== undefined ? [pids.server] : []);
  const workerMemory = sumMemory(pids.workers);
  const lateAfter = scheduler.lateTickCounts();
  const ticks = lateAfter.ticks - lateBefore.ticks;
  return {
    sessions: load.sessions.length,
    durationS: (cpuEnd.at - cpuStart.at) / 1000,
    traffic,
    lossRatio: ratio(traffic.lostPackets, traffic.expectedPackets),
    delayMs: { ...delays.percentiles(), max: delays.max, samples: delays.count },
    cpuS: { server: cpuEnd.server - cpuStart.server, workers: cpuEnd.workers - cpuStart.workers },
    rssMiB: { server: serverMemory.rssMiB, workers: workerMemory.rssMiB },
    peakRssMiB: { server: serverMemory.peakRssMiB, workers: workerMemory.peakRssMiB },
    generatorCpuS: (own.user + own.system) / 1e6,
    generatorLateTickRatio: ticks > 0 ? (lateAfter.late - lateBefore.late) / ticks : 0,
    generatorTickFailures: lateAfter.failures - lateBefore.failures,
    udpErrors: {
      rcvbufErrors: udpEnd.rcvbufErrors - udpStart.rcvbufErrors,
      sndbufErrors: udpEnd.sndbufErrors - udpStart.sndbufErrors,
      inErrors: udpEnd.inErrors - udpStart.inErrors,
    },
    socketDrops: {
      server: (dropsEnd.server ?? 0) - (dropsStart.server ?? 0),
      generator: (dropsEnd.generator ?? 0) - (dropsStart.generator ?? 0),
    },
    video: load.videoLayers(),
  };
}

function ratio(part: number, whole: number): number {
  return whole > 0 ? Math.max(0, part) / whole : 0;
}

function pct(cores: number): string {
  return `${Math.round(cores * 100)}%`;
}

import os from 'node:os';
import type { Percentiles } from '../peer/index.js';
import { snapshotCpu, sumMemory } from './proc.js';
import type { ServerPids } from './target.js';

/** Server resources over one phase of a scenario: CPU from /proc at both ends, memory at the end. */
export interface ServerUsage {
  seconds: number;
  cpuS: { server: number; workers: number };
  /** CPU per second of wall time (1 = one full core). */
  cpuCores: { server: number; workers: number; total: number };
  rssMiB: { server: number; workers: number };
  peakRssMiB: { server: number; workers: number };
}

/** Starts a phase; `end()` returns what the server used during it. */
export function measureServer(pids: ServerPids): { end: () => ServerUsage } {
  const start = snapshotCpu(pids);
  return {
    end: () => {
      const end = snapshotCpu(pids);
      const seconds = (end.at - start.at) / 1000 || 1;
      const cpuS = { server: end.server - start.server, workers: end.workers - start.workers };
      const server = sumMemory(pids.server !== undefined ? [pids.server] : []);
      const workers = sumMemory(pids.workers);
      return {
        seconds,
        cpuS,
        cpuCores: {
          server: cpuS.server / seconds,
          workers: cpuS.workers / seconds,
          total: (cpuS.server + cpuS.workers) / seconds,
        },
        rssMiB: { server: server.rssMiB, workers: workers.rssMiB },
        peakRssMiB: { server: server.peakRssMiB, workers: workers.peakRssMiB },
      };
    },
  };
}

/**
 * The report every scenario other than `consult` writes: common fields, then the scenario's own
 * figures (`results`), its latency distributions in milliseconds (`latenciesMs`, charted), and
 * server usage per phase.
 */
export interface ScenarioReport<R extends object = object> {
  scenario: string;
  target: string;
  workers: number;
  startedAt: string;
  /** Wall time of the whole scenario, setup included. */
  elapsedS: number;
  host: { cpus: number; node: string; platform: string; loadAverage: number[] };
  /** The options the scenario ran with (sizes, rates, durations). */
  parameters: Record<string, number | string | boolean>;
  results: R;
  latenciesMs: Record<string, Percentiles & { samples: number; max?: number }>;
  server: Record<string, ServerUsage>;
  /** Operations that failed, counted; the first few messages are in `errors`. */
  failures: number;
  errors: string[];
  /** What the reader must know to judge the figures (definitions, limits raised for the run). */
  notes: string[];
}

export function hostInfo(): ScenarioReport['host'] {
  return {
    cpus: os.availableParallelism(),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** Keeps the first few distinct failure messages of a run. */
export class ErrorLog {
  readonly messages: string[] = [];
  count = 0;

  note(error: unknown): void {
    this.count++;
    const message = error instanceof Error ? error.message : String(error);
    if (this.messages.length < 20 && !this.messages.includes(message)) this.messages.push(message);
  }
}

const f2 = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(2));

function flatten(prefix: string, value: unknown, out: [string, string][]): void {
  if (typeof value === 'number') out.push([prefix, f2(value)]);
  else if (typeof value === 'string' || typeof value === 'boolean') out.push([prefix, String(value)]);
  else if (Array.isArray(value) && value.some((v) => typeof v === 'object' && v !== null))
    value.forEach((v, i) => flatten(`${prefix}[${i}]`, v, out));
  else if (Array.isArray(value))
    out.push([prefix, value.map((v) => (typeof v === 'number' ? f2(v) : String(v))).join(' / ')]);
  else if (value && typeof value === 'object')
    for (const [key, inner] of Object.entries(value)) flatten(prefix ? `${prefix}.${key}` : key, inner, out);
}

/** Human summary written beside the JSON report. */
export function renderScenarioMarkdown(r: ScenarioReport): string {
  const results: [string, string][] = [];
  flatten('', r.results, results);
  const lines = [
    `# Benchmark: ${r.scenario} on ${r.target}`,
    '',
    `${r.workers} mediasoup worker(s); ${r.host.cpus} CPUs, Node ${r.host.node}; load average ` +
      `${r.host.loadAverage.join(' / ')}; started ${r.startedAt}; ${r.elapsedS.toFixed(1)} s in all.`,
    '',
    `Parameters: ${Object.entries(r.parameters)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}.`,
    '',
    '| result | value |',
    '| --- | --- |',
    ...results.map(([k, v]) => `| ${k} | ${v} |`),
    '',
    '| latency (ms) | p50 | p95 | p99 | samples |',
    '| --- | --- | --- | --- | --- |',
    ...Object.entries(r.latenciesMs).map(
      ([k, p]) => `| ${k} | ${p.p50.toFixed(1)} | ${p.p95.toFixed(1)} | ${p.p99.toFixed(1)} | ${p.samples} |`,
    ),
    '',
    '| server during | seconds | CPU server / workers (cores) | RSS server / workers (MiB) |',
    '| --- | --- | --- | --- |',
    ...Object.entries(r.server).map(
      ([k, u]) =>
        `| ${k} | ${u.seconds.toFixed(1)} | ${u.cpuCores.server.toFixed(2)} / ${u.cpuCores.workers.toFixed(2)} | ` +
        `${u.rssMiB.server.toFixed(1)} / ${u.rssMiB.workers.toFixed(1)} |`,
    ),
    '',
    `Failures: ${r.failures}.`,
  ];
  if (r.notes.length > 0) lines.push('', '## Notes', '', ...r.notes.map((n) => `- ${n}`));
  if (r.errors.length > 0) lines.push('', '## Errors', '', ...r.errors.map((e) => `- ${e}`));
  return lines.join('\n') + '\n';
}

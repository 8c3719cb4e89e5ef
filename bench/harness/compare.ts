import type { BenchReport } from './report.js';

/** One target's headline figures in a comparison. */
export interface ComparedTarget {
  target: string;
  /** Set when the target could not run: the reason, and no figures. */
  skipped?: string;
  sessions?: number;
  lossRatio?: number;
  delayP99Ms?: number;
  joinP95Ms?: number;
  cpuCoresPerSession?: number;
  cpuMsPerForwardedMbit?: number;
  forwardedMbps?: number;
  rssMiB?: number;
  /** Last good ramp level, with --ramp. */
  capacitySessions?: number;
  /** Each figure divided by the baseline's (the first target that ran). */
  ratios?: {
    cpuPerSession: number;
    cpuPerForwardedMbit: number;
    capacity?: number;
  };
}

export interface Comparison {
  scenario: string;
  baseline: string;
  startedAt: string;
  loadAverage: number[];
  targets: ComparedTarget[];
}

function ratio(value: number, base: number): number {
  return base > 0 ? value / base : 0;
}

/** Side-by-side figures of the same load on each target, as ratios to the first one that ran. */
export function compareReports(
  runs: { target: string; report?: BenchReport; skipped?: string }[],
  startedAt: Date,
  loadAverage: number[],
): Comparison {
  const base = runs.find((r) => r.report)?.report;
  const targets = runs.map((run): ComparedTarget => {
    const r = run.report;
    if (!r) return { target: run.target, skipped: run.skipped ?? 'did not run' };
    const capacity = r.ramp?.lastGoodSessions;
    const baseCapacity = base?.ramp?.lastGoodSessions;
    return {
      target: run.target,
      sessions: r.sessions,
      lossRatio: r.lossRatio,
      delayP99Ms: r.delayMs.p99,
      joinP95Ms: r.joinMs.p95,
      cpuCoresPerSession: r.cpuCoresPerSession,
      cpuMsPerForwardedMbit: r.cpuMsPerForwardedMbit,
      forwardedMbps: r.forwardedMbps,
      rssMiB: r.rssMiB.server + r.rssMiB.workers,
      ...(capacity !== undefined ? { capacitySessions: capacity } : {}),
      ...(base
        ? {
            ratios: {
              cpuPerSession: ratio(r.cpuCoresPerSession, base.cpuCoresPerSession),
              cpuPerForwardedMbit: ratio(r.cpuMsPerForwardedMbit, base.cpuMsPerForwardedMbit),
              ...(capacity !== undefined && baseCapacity !== undefined
                ? { capacity: ratio(capacity, baseCapacity) }
                : {}),
            },
          }
        : {}),
    };
  });
  return {
    scenario: base?.scenario ?? 'consult',
    baseline: base?.target ?? '',
    startedAt: startedAt.toISOString(),
    loadAverage,
    targets,
  };
}

const f2 = (n: number | undefined): string => (n === undefined ? '-' : n.toFixed(2));

export function renderComparison(c: Comparison): string {
  const ramp = c.targets.some((t) => t.capacitySessions !== undefined);
  const lines = [
    `# Comparison: ${c.scenario}, baseline ${c.baseline || '(none ran)'}`,
    '',
    `Started ${c.startedAt}; load average at the end ${c.loadAverage.join(' / ')}. Ratios are to the baseline ` +
      '(1.00 = same cost; above 1 costs more).',
    '',
    `| target | sessions | loss | delay p99 ms | join p95 ms | CPU/session % | CPU ms/Mbit | Mbit/s | RSS MiB | CPU/session ratio | CPU/Mbit ratio |${ramp ? ' capacity | capacity ratio |' : ''}`,
    `| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |${ramp ? ' --- | --- |' : ''}`,
    ...c.targets.map((t) =>
      t.skipped
        ? `| ${t.target} | skipped: ${t.skipped.replace(/\|/g, '/')} |`
        : `| ${t.target} | ${t.sessions} | ${((t.lossRatio ?? 0) * 100).toFixed(2)} % | ${f2(t.delayP99Ms)} | ` +
          `${f2(t.joinP95Ms)} | ${f2((t.cpuCoresPerSession ?? 0) * 100)} | ${f2(t.cpuMsPerForwardedMbit)} | ` +
          `${f2(t.forwardedMbps)} | ${f2(t.rssMiB)} | ${f2(t.ratios?.cpuPerSession)} | ${f2(t.ratios?.cpuPerForwardedMbit)} |` +
          (ramp ? ` ${t.capacitySessions ?? '-'} | ${f2(t.ratios?.capacity)} |` : ''),
    ),
  ];
  return lines.join('\n') + '\n';
}

import type { BenchReport } from './report.js';

/** One target's headline figures in a comparison (medians over the rounds with --repeat). */
export interface ComparedTarget {
  target: string;
  /** Set when the target could not run: the reason, and no figures. */
  skipped?: string;
  /** Rounds the figures are the median of. */
  rounds?: number;
  sessions?: number;
  lossRatio?: number;
  delayP99Ms?: number;
  joinP95Ms?: number;
  cpuCoresPerSession?: number;
  cpuMsPerForwardedMbit?: number;
  cpuUsPerForwardedPacket?: number;
  forwardedMbps?: number;
  rssMiB?: number;
  /** Last good ramp level, with --ramp. */
  capacitySessions?: number;
  /**
   * Each figure divided by the baseline's (the first target that ran), round by round (the target's
   * k-th round against the baseline's k-th round, run next to it), then the median of those
   * per-round ratios with their spread. A ratio of medians taken from different rounds would mix
   * rounds that ran at different times.
   */
  ratios?: {
    cpuPerSession: RatioSpread;
    cpuPerForwardedMbit: RatioSpread;
    cpuPerForwardedPacket: RatioSpread;
    joinP95: RatioSpread;
    capacity?: RatioSpread;
  };
}

/** A ratio over repeated rounds: the median of the per-round ratios, their range and each of them. */
export interface RatioSpread {
  median: number;
  min: number;
  max: number;
  byRound: number[];
}

export interface Comparison {
  scenario: string;
  baseline: string;
  startedAt: string;
  loadAverage: number[];
  rounds: number;
  targets: ComparedTarget[];
}

/** A target's runs: one report per round, in round order (none when it was skipped). */
export interface TargetRuns {
  target: string;
  reports: BenchReport[];
  skipped?: string;
}

function ratio(value: number, base: number): number {
  return base > 0 ? value / base : 0;
}

/**
 * An engine-upgrade ratio over rounds run back to back: value / base within each round, then the
 * median and range; a round whose base is 0 (CPU below the clock tick) gives none.
 */
export interface PairedRatio {
  median: number | null;
  min: number | null;
  max: number | null;
  perRound: number[];
}

export function pairedRatio<R>(
  base: readonly R[],
  value: readonly R[],
  pick: (round: R) => number,
): PairedRatio {
  const perRound = value
    .map((round, i) => {
      const b = i < base.length ? pick(base[i] as R) : 0;
      return b > 0 ? pick(round) / b : undefined;
    })
    .filter((r): r is number => r !== undefined);
  if (perRound.length === 0) return { median: null, min: null, max: null, perRound };
  return { median: median(perRound), min: Math.min(...perRound), max: Math.max(...perRound), perRound };
}

/** The middle value (the mean of the two middle ones for an even count); 0 for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Per-round ratios of a figure (round k of the target against round k of the baseline), summarised. */
function spreadOf(
  reports: readonly BenchReport[],
  base: readonly BenchReport[],
  pick: (r: BenchReport) => number,
): RatioSpread {
  const byRound = reports.flatMap((r, i) => {
    const b = base[i];
    return b ? [ratio(pick(r), pick(b))] : [];
  });
  return {
    median: median(byRound),
    min: byRound.length ? Math.min(...byRound) : 0,
    max: byRound.length ? Math.max(...byRound) : 0,
    byRound,
  };
}

/**
 * Side-by-side figures of the same load on each target, as ratios to the first one that ran.
 * With several rounds each figure is the median over the rounds, which keeps one disturbed round
 * on a shared host from deciding the ratio.
 */
export function compareReports(runs: TargetRuns[], startedAt: Date, loadAverage: number[]): Comparison {
  const baseRuns = runs.find((r) => r.reports.length > 0);
  const base = baseRuns?.reports;
  const of = (reports: BenchReport[], pick: (r: BenchReport) => number): number => median(reports.map(pick));
  const targets = runs.map((run): ComparedTarget => {
    const reports = run.reports;
    const first = reports[0];
    if (!first) return { target: run.target, skipped: run.skipped ?? 'did not run' };
    const capacity = first.ramp ? of(reports, (r) => r.ramp?.lastGoodSessions ?? 0) : undefined;
    const cpuPerSession = of(reports, (r) => r.cpuCoresPerSession);
    const cpuPerMbit = of(reports, (r) => r.cpuMsPerForwardedMbit);
    return {
      target: run.target,
      rounds: reports.length,
      sessions: first.sessions,
      lossRatio: of(reports, (r) => r.lossRatio),
      delayP99Ms: of(reports, (r) => r.delayMs.p99),
      joinP95Ms: of(reports, (r) => r.joinMs.p95),
      cpuCoresPerSession: cpuPerSession,
      cpuMsPerForwardedMbit: cpuPerMbit,
      cpuUsPerForwardedPacket: of(reports, (r) => r.cpuUsPerForwardedPacket),
      forwardedMbps: of(reports, (r) => r.forwardedMbps),
      rssMiB: of(reports, (r) => r.rssMiB.server + r.rssMiB.workers),
      ...(capacity !== undefined ? { capacitySessions: capacity } : {}),
      ...(base
        ? {
            ratios: {
              cpuPerSession: spreadOf(reports, base, (r) => r.cpuCoresPerSession),
              cpuPerForwardedMbit: spreadOf(reports, base, (r) => r.cpuMsPerForwardedMbit),
              cpuPerForwardedPacket: spreadOf(reports, base, (r) => r.cpuUsPerForwardedPacket),
              joinP95: spreadOf(reports, base, (r) => r.joinMs.p95),
              ...(capacity !== undefined && base[0]?.ramp
                ? { capacity: spreadOf(reports, base, (r) => r.ramp?.lastGoodSessions ?? 0) }
                : {}),
            },
          }
        : {}),
    };
  });
  return {
    scenario: base?.[0]?.scenario ?? 'consult',
    baseline: baseRuns?.target ?? '',
    startedAt: startedAt.toISOString(),
    loadAverage,
    rounds: Math.max(0, ...runs.map((r) => r.reports.length)),
    targets,
  };
}

const f2 = (n: number | undefined): string => (n === undefined ? '-' : n.toFixed(2));
/** A ratio as printed: the median, and its range when the rounds disagree. */
const spread = (r: RatioSpread | undefined): string =>
  r === undefined ? '-' : r.min === r.max ? f2(r.median) : `${f2(r.median)} (${f2(r.min)}-${f2(r.max)})`;

export function renderComparison(c: Comparison): string {
  const ramp = c.targets.some((t) => t.capacitySessions !== undefined);
  const lines = [
    `# Comparison: ${c.scenario}, baseline ${c.baseline || '(none ran)'}`,
    '',
    `Started ${c.startedAt}; load average at the end ${c.loadAverage.join(' / ')}. Ratios are to the baseline ` +
      '(1.00 = same cost; above 1 costs more).' +
      (c.rounds > 1
        ? ` ${c.rounds} rounds, targets alternating in order; every figure is the median over the rounds, a ratio the median of the per-round ratios (range in brackets).`
        : ''),
    '',
    `| target | sessions | loss | delay p99 ms | join p95 ms | CPU/session % | CPU ms/Mbit | CPU µs/packet | Mbit/s | RSS MiB | CPU/session ratio | CPU/Mbit ratio | CPU/packet ratio | join p95 ratio |${ramp ? ' capacity | capacity ratio |' : ''}`,
    `| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |${ramp ? ' --- | --- |' : ''}`,
    ...c.targets.map((t) =>
      t.skipped
        ? `| ${t.target} | skipped: ${t.skipped.replace(/\|/g, '/')} |`
        : `| ${t.target} | ${t.sessions} | ${((t.lossRatio ?? 0) * 100).toFixed(2)} % | ${f2(t.delayP99Ms)} | ` +
          `${f2(t.joinP95Ms)} | ${f2((t.cpuCoresPerSession ?? 0) * 100)} | ${f2(t.cpuMsPerForwardedMbit)} | ${f2(t.cpuUsPerForwardedPacket)} | ` +
          `${f2(t.forwardedMbps)} | ${f2(t.rssMiB)} | ${spread(t.ratios?.cpuPerSession)} | ${spread(t.ratios?.cpuPerForwardedMbit)} | ` +
          `${spread(t.ratios?.cpuPerForwardedPacket)} | ${spread(t.ratios?.joinP95)} |` +
          (ramp ? ` ${t.capacitySessions ?? '-'} | ${spread(t.ratios?.capacity)} |` : ''),
    ),
  ];
  if (c.rounds > 1) {
    lines.push('', 'CPU per session against the baseline, round by round:', '');
    for (const t of c.targets)
      if (t.ratios)
        lines.push(`- ${t.target}: ${t.ratios.cpuPerSession.byRound.map((r) => f2(r)).join(', ')}`);
  }
  return lines.join('\n') + '\n';
}

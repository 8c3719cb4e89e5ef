import { MediaScheduler } from '../peer/index.js';
import { ConsultLoad } from './consult.js';
import { CpuBudget } from './cpuBudget.js';
import { measureWindow } from './measure.js';
import type { WindowResult } from './measure.js';
import { buildReport, stepOf } from './report.js';
import type { BenchReport, StepReport } from './report.js';
import type { Target } from './target.js';

export interface BenchOptions {
  scenario: 'consult';
  sessions: number;
  durationS: number;
  /** mediasoup workers (0 = the target's default). */
  workers: number;
  ramp: boolean;
  /** Sessions added per ramp step. */
  rampStep: number;
  maxSessions: number;
  maxLossRatio: number;
  maxDelayP99Ms: number;
  joinConcurrency: number;
  joinTimeoutMs: number;
  /** Seconds between the last join and the start of a measurement window. */
  settleS: number;
  /** The whole run, joins and teardown included, must end within this many seconds. */
  timeLimitS: number;
  /** CPU cores the target's processes may use together (a cgroup quota); 0 = no limit. */
  cpuBudgetCores: number;
  /** What each participant publishes: audio and simulcast video, or audio only. */
  media: 'av' | 'audio';
  progress: (line: string) => void;
  log: (line: string) => void;
}

export const DEFAULT_OPTIONS: BenchOptions = {
  scenario: 'consult',
  sessions: 5,
  durationS: 20,
  workers: 0,
  ramp: false,
  rampStep: 0,
  maxSessions: 200,
  maxLossRatio: 0.01,
  maxDelayP99Ms: 50,
  joinConcurrency: 4,
  joinTimeoutMs: 15_000,
  settleS: 2,
  timeLimitS: 0,
  cpuBudgetCores: 0,
  media: 'av',
  progress: () => undefined,
  log: () => undefined,
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts the target, runs the scenario (one level, or a ramp), stops everything, returns the report. */
export async function runBench(target: Target, options: BenchOptions): Promise<BenchReport> {
  const startedAt = new Date();
  const started = performance.now();
  const scheduler = new MediaScheduler();
  const maxSessions = options.ramp ? options.maxSessions : options.sessions;
  let budget: CpuBudget | undefined;
  try {
    await target.start({ workers: options.workers, maxSessions, log: options.log });
    if (options.cpuBudgetCores > 0) {
      budget = CpuBudget.create(options.cpuBudgetCores);
      const pids = target.serverPids();
      for (const pid of [pids.server, ...pids.workers]) if (pid !== undefined) budget.add(pid);
    }
  } catch (error) {
    await target.stop().catch(() => undefined);
    await budget?.close();
    throw error;
  }
  const workers = target.serverPids().workers.length;
  const load = new ConsultLoad({
    target,
    scheduler,
    joinConcurrency: options.joinConcurrency,
    joinTimeoutMs: options.joinTimeoutMs,
    audioOnly: options.media === 'audio',
    log: options.log,
  });
  try {
    const steps: StepReport[] = [];
    let lastGood: WindowResult | undefined;
    let lastWindow: WindowResult | undefined;
    let lastGoodSessions = 0;
    let stopReason = 'single level';
    let level = options.sessions;
    const step = options.rampStep > 0 ? options.rampStep : Math.max(1, options.sessions);
    for (;;) {
      const joinsBefore = load.joinTimes().length;
      const failuresBefore = load.joinFailures;
      await load.growTo(level, (joined, wanted) => options.progress(`joining ${joined}/${wanted} sessions`));
      await sleep(options.settleS * 1000);
      const label = options.ramp ? `ramp ${level}:` : 'measure';
      const throttledBefore = budget?.throttledS() ?? 0;
      const window = await measureWindow(load, target, scheduler, options.durationS, options.progress, label);
      if (budget)
        window.cpuBudget = { cores: budget.cores, throttledS: budget.throttledS() - throttledBefore };
      lastWindow = window;
      const failed = load.joinFailures - failuresBefore;
      const passed =
        failed === 0 &&
        window.sessions === level &&
        window.lossRatio <= options.maxLossRatio &&
        window.delayMs.p99 <= options.maxDelayP99Ms;
      steps.push(stepOf(window, load.joinTimes().slice(joinsBefore), failed, passed));
      if (!options.ramp) break;
      if (!passed) {
        stopReason =
          failed > 0 || window.sessions < level
            ? `${failed} session(s) failed to join at ${level}`
            : window.lossRatio > options.maxLossRatio
              ? `loss ${(window.lossRatio * 100).toFixed(2)} % at ${level} sessions`
              : `delay p99 ${window.delayMs.p99.toFixed(1)} ms at ${level} sessions`;
        break;
      }
      lastGood = window;
      lastGoodSessions = level;
      if (level >= options.maxSessions) {
        stopReason = `reached --max-sessions ${options.maxSessions}`;
        break;
      }
      const elapsedS = (performance.now() - started) / 1000;
      const nextStepS = options.durationS + options.settleS + step * 2 + 10;
      if (options.timeLimitS > 0 && elapsedS + nextStepS > options.timeLimitS * 0.9) {
        stopReason = `time limit ${options.timeLimitS} s`;
        break;
      }
      level = Math.min(options.maxSessions, level + step);
    }
    const reported = options.ramp ? (lastGood ?? lastWindow) : lastWindow;
    return buildReport({
      scenario: options.scenario,
      media: options.media,
      target: target.name,
      workers,
      startedAt,
      participantsPerSession: 2,
      window: reported,
      joins: load.joinTimes(),
      joinFailures: load.joinFailures,
      errors: load.errors,
      ...(options.ramp
        ? {
            ramp: {
              thresholds: { maxLossRatio: options.maxLossRatio, maxDelayP99Ms: options.maxDelayP99Ms },
              steps,
              lastGoodSessions,
              stopReason,
            },
          }
        : {}),
    });
  } finally {
    options.progress('closing sessions');
    await load.close();
    scheduler.stop();
    await target.stop();
    await budget?.close();
  }
}

import { median, pairedRatio, type PairedRatio } from '../harness/compare.js';
import { hostInfo } from '../harness/scenarioReport.js';
import type { ScenarioReport } from '../harness/scenarioReport.js';
import { BareTarget, type BareEngine } from '../targets/bare/target.js';
import { runJoinStorm, type JoinStormResults } from './joinStorm.js';

export interface EngineJoinsOptions {
  /** Consultations per round and engine (two joins each). */
  sessions: number;
  rounds: number;
  joinConcurrency: number;
  holdS: number;
  /** Consultations joined and closed before each measured storm (see JoinStormOptions). */
  warmupSessions: number;
  workers: number;
  joinTimeoutMs: number;
  progress: (line: string) => void;
  log: (line: string) => void;
}

interface RoundFigures {
  joins: number;
  joinP50Ms: number;
  joinP95Ms: number;
  joinP99Ms: number;
  connectedP95Ms: number;
  /** The bare target's control process and its workers, CPU ms per join over the storm. */
  serverCpuMsPerJoin: number;
  workersCpuMsPerJoin: number;
  loadGeneratorCores: number;
}

export interface EngineJoinsResults {
  legacy: RoundFigures[];
  current: RoundFigures[];
  /** current / legacy within each round (the two storms run back to back), then the median. */
  ratios: Record<'joinP50' | 'joinP95' | 'serverCpu' | 'workersCpu', PairedRatio>;
  failedSessions: number;
}

function figuresOf(report: ScenarioReport<JoinStormResults>): RoundFigures {
  const joins = Math.max(1, report.results.joins);
  const storm = report.server.storm;
  return {
    joins: report.results.joins,
    joinP50Ms: report.latenciesMs.joinToFirstRtp?.p50 ?? 0,
    joinP95Ms: report.latenciesMs.joinToFirstRtp?.p95 ?? 0,
    joinP99Ms: report.latenciesMs.joinToFirstRtp?.p99 ?? 0,
    connectedP95Ms: report.latenciesMs.connected?.p95 ?? 0,
    serverCpuMsPerJoin: ((storm?.cpuS.server ?? 0) * 1000) / joins,
    workersCpuMsPerJoin: ((storm?.cpuS.workers ?? 0) * 1000) / joins,
    loadGeneratorCores: report.results.loadGeneratorCores,
  };
}

/**
 * Scenario `engine-joins`: the join-storm scenario on `bare-legacy` (mediasoup 3.12.16) and `bare`
 * (the current engine), back to back in each round, the order alternating between rounds, with no
 * CPU budget. Enough joins per round (2 x sessions) for a p95 that is not one or two joins, the
 * whole join each time (transports, producers, consumers, ICE, DTLS, first RTP), and the CPU the
 * control process and the workers spent per join.
 */
export async function runEngineJoins(
  options: EngineJoinsOptions,
): Promise<ScenarioReport<EngineJoinsResults>> {
  const startedAt = new Date();
  const began = performance.now();
  const rounds: Record<BareEngine, RoundFigures[]> = { legacy: [], current: [] };
  const errors: string[] = [];
  let failedSessions = 0;
  for (let round = 0; round < options.rounds; round++) {
    const order: BareEngine[] = round % 2 === 0 ? ['legacy', 'current'] : ['current', 'legacy'];
    for (const engine of order) {
      options.progress(`round ${round + 1}/${options.rounds}: ${engine}`);
      const report = await runJoinStorm(new BareTarget(engine), {
        sessions: options.sessions,
        rate: 0,
        joinConcurrency: options.joinConcurrency,
        holdS: options.holdS,
        warmupSessions: options.warmupSessions,
        workers: options.workers,
        joinTimeoutMs: options.joinTimeoutMs,
        progress: options.progress,
        log: options.log,
      });
      failedSessions += report.results.failedSessions;
      for (const message of report.errors)
        if (errors.length < 20 && !errors.includes(message)) errors.push(message);
      rounds[engine].push(figuresOf(report));
    }
  }
  // Each percentile of a join, the median over the rounds.
  const joinLatency = (engine: BareEngine) => ({
    p50: median(rounds[engine].map((r) => r.joinP50Ms)),
    p95: median(rounds[engine].map((r) => r.joinP95Ms)),
    p99: median(rounds[engine].map((r) => r.joinP99Ms)),
    samples: rounds[engine].reduce((n, r) => n + r.joins, 0),
  });
  return {
    scenario: 'engine-joins',
    target: 'bare-legacy,bare',
    workers: options.workers,
    startedAt: startedAt.toISOString(),
    elapsedS: (performance.now() - began) / 1000,
    host: hostInfo(),
    parameters: {
      sessions: options.sessions,
      rounds: options.rounds,
      joinConcurrency: options.joinConcurrency,
      holdS: options.holdS,
      warmupSessions: options.warmupSessions,
    },
    results: {
      legacy: rounds.legacy,
      current: rounds.current,
      ratios: {
        joinP50: pairedRatio(rounds.legacy, rounds.current, (r) => r.joinP50Ms),
        joinP95: pairedRatio(rounds.legacy, rounds.current, (r) => r.joinP95Ms),
        serverCpu: pairedRatio(rounds.legacy, rounds.current, (r) => r.serverCpuMsPerJoin),
        workersCpu: pairedRatio(rounds.legacy, rounds.current, (r) => r.workersCpuMsPerJoin),
      },
      failedSessions,
    },
    latenciesMs: {
      joinToFirstRtpLegacy: joinLatency('legacy'),
      joinToFirstRtp: joinLatency('current'),
    },
    server: {},
    failures: failedSessions,
    errors,
    notes: [
      'Each round runs join-storm on bare-legacy and on bare back to back (order alternating), no CPU budget; ' +
        'a join runs from its start to the first RTP packet from the other participant.',
      'Ratios are current / legacy within each round, then the median over the rounds with its range; ' +
        "latencies: each percentile is the median over the rounds of that round's percentile.",
      "CPU per join is the storm window's CPU of the control process (server) and of the workers, divided by the joins; " +
        'it includes the media the sessions send during their hold.',
    ],
  };
}

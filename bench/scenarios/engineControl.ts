import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { percentilesOf } from '../peer/index.js';
import { median, pairedRatio, type PairedRatio } from '../harness/compare.js';
import { hostInfo } from '../harness/scenarioReport.js';
import type { ScenarioReport } from '../harness/scenarioReport.js';
import { legacyWorkerBin } from '../targets/bare/target.js';
import type { EngineControlRound } from './engineControlChild.js';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('./engineControlChild.js', import.meta.url));

export interface EngineControlOptions {
  /** Measured joins per round and engine. */
  joins: number;
  rounds: number;
  /** Joins run first and not measured (JIT, caches, the worker's first allocations). */
  warmup: number;
  progress: (line: string) => void;
  log: (line: string) => void;
}

/** `raw`: the current mediasoup with its own structuredClone copies, not the product's cheaper ones. */
type Engine = 'legacy' | 'current' | 'raw';

interface EngineFigures {
  version: string;
  /** Medians over the rounds of each round's figure. */
  joinP50Ms: number;
  joinP95Ms: number;
  nodeCpuMsPerJoin: number;
  workerCpuMsPerJoin: number;
  cpuMsPerJoin: number;
  /** Median over the rounds of each call kind's p50, in ms. */
  callP50Ms: Record<string, number>;
}

export interface EngineControlResults {
  legacy: EngineFigures;
  /** The current mediasoup as the product runs it (src/media/plainDataClone.ts). */
  current: EngineFigures;
  /** The current mediasoup as published. */
  raw: EngineFigures;
  /** current / legacy, per round (the engines run back to back in each round), then the median. */
  ratios: EngineRatios;
  /** raw / legacy, the same way. */
  rawRatios: EngineRatios;
}

type EngineRatios = Record<'joinP50' | 'joinP95' | 'nodeCpu' | 'workerCpu' | 'cpu', PairedRatio>;

function ratiosOf(legacy: EngineControlRound[], other: EngineControlRound[]): EngineRatios {
  return {
    joinP50: pairedRatio(legacy, other, (r) => percentilesOf(r.joinMs).p50),
    joinP95: pairedRatio(legacy, other, (r) => percentilesOf(r.joinMs).p95),
    nodeCpu: pairedRatio(legacy, other, (r) => r.nodeCpuMsPerJoin),
    workerCpu: pairedRatio(legacy, other, (r) => r.workerCpuMsPerJoin),
    cpu: pairedRatio(legacy, other, (r) => r.nodeCpuMsPerJoin + r.workerCpuMsPerJoin),
  };
}

async function runRound(engine: Engine, options: EngineControlOptions): Promise<EngineControlRound> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (engine === 'legacy') {
    env.BENCH_MEDIASOUP_MODULE = 'mediasoup-legacy';
    env.MEDIASOUP_WORKER_BIN = legacyWorkerBin();
  } else {
    delete env.BENCH_MEDIASOUP_MODULE;
    delete env.MEDIASOUP_WORKER_BIN;
  }
  if (engine === 'raw') env.BENCH_ENGINE_RAW = '1';
  else delete env.BENCH_ENGINE_RAW;
  const { stdout } = await run(process.execPath, [CHILD, String(options.joins), String(options.warmup)], {
    env,
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as EngineControlRound;
}

function figures(rounds: EngineControlRound[]): EngineFigures {
  const per = (pick: (r: EngineControlRound) => number): number => median(rounds.map(pick));
  const callKinds = Object.keys(rounds[0]?.callsMs ?? {});
  return {
    version: rounds[0]?.version ?? 'unknown',
    joinP50Ms: per((r) => percentilesOf(r.joinMs).p50),
    joinP95Ms: per((r) => percentilesOf(r.joinMs).p95),
    nodeCpuMsPerJoin: per((r) => r.nodeCpuMsPerJoin),
    workerCpuMsPerJoin: per((r) => r.workerCpuMsPerJoin),
    cpuMsPerJoin: per((r) => r.nodeCpuMsPerJoin + r.workerCpuMsPerJoin),
    callP50Ms: Object.fromEntries(
      callKinds.map((kind) => [kind, per((r) => percentilesOf(r.callsMs[kind] ?? []).p50)]),
    ),
  };
}

/**
 * Scenario `engine-control`: the control plane of the engine upgrade. Each round runs the calls of
 * `joins` bare joins on mediasoup 3.12.16 and on the current mediasoup (as the product runs it and as
 * published), each in a fresh process, back
 * to back (the order alternates between rounds), with no peer and no media. What a join costs the
 * engine's Node library and its worker, and how long its calls take in a row: the part of the join
 * time the engine itself decides.
 */
export async function runEngineControl(
  options: EngineControlOptions,
): Promise<ScenarioReport<EngineControlResults>> {
  const startedAt = new Date();
  const began = performance.now();
  const rounds: Record<Engine, EngineControlRound[]> = { legacy: [], current: [], raw: [] };
  for (let round = 0; round < options.rounds; round++) {
    const order: Engine[] = round % 2 === 0 ? ['legacy', 'current', 'raw'] : ['raw', 'current', 'legacy'];
    for (const engine of order) {
      options.progress(`round ${round + 1}/${options.rounds}: ${engine}`);
      rounds[engine].push(await runRound(engine, options));
    }
  }
  const pooled = (engine: Engine): number[] => rounds[engine].flatMap((r) => r.joinMs);
  const results: EngineControlResults = {
    legacy: figures(rounds.legacy),
    current: figures(rounds.current),
    raw: figures(rounds.raw),
    ratios: ratiosOf(rounds.legacy, rounds.current),
    rawRatios: ratiosOf(rounds.legacy, rounds.raw),
  };
  return {
    scenario: 'engine-control',
    target: 'bare-legacy,bare',
    workers: 1,
    startedAt: startedAt.toISOString(),
    elapsedS: (performance.now() - began) / 1000,
    host: hostInfo(),
    parameters: { joins: options.joins, rounds: options.rounds, warmup: options.warmup },
    results,
    latenciesMs: {
      [`join ${results.legacy.version}`]: {
        ...percentilesOf(pooled('legacy')),
        samples: pooled('legacy').length,
      },
      [`join ${results.current.version}`]: {
        ...percentilesOf(pooled('current')),
        samples: pooled('current').length,
      },
      [`join ${results.raw.version} raw`]: {
        ...percentilesOf(pooled('raw')),
        samples: pooled('raw').length,
      },
    },
    server: {},
    failures: 0,
    errors: [],
    notes: [
      'A join here is the control calls of one bare participant pair with nothing on the wire: two WebRTC transports, ' +
        'their DTLS parameters, an audio and a three-layer simulcast producer, two consumers (canConsume first), two resumes.',
      'Calls run one after the other in one process per engine and round; CPU is that process (user + system) and its worker, per join.',
      'Ratios are current / legacy within each round (the engines run back to back), then the median over the rounds with its range.',
      'current is the new mediasoup as the product runs it, its parameter copies made by src/media/plainDataClone.ts; raw is the same mediasoup with its own structuredClone copies (rawRatios).',
    ],
  };
}

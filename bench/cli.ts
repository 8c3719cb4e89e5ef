/**
 * Load benchmark: opens real concurrent WebRTC sessions (ICE, DTLS-SRTP, RTP at realistic bitrates)
 * against a target on loopback and reports capacity, loss, delay and join times.
 *   npm run bench -- --scenario consult --sessions 5 --duration 20 --target bare --out results/run.json
 *   npm run bench -- --compare --sessions 5 --targets bare,self
 *   npm run bench -- --scenario join-storm --target self --sessions 20 --rate 20
 * See bench/README.md for every option and the definition of each measure.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { closeAllPeers } from './peer/index.js';
import os from 'node:os';
import { compareReports, renderComparison } from './harness/compare.js';
import type { TargetRuns } from './harness/compare.js';
import { renderBarChart, renderCapacityCurve, renderLatencyChart, renderMarkdown } from './harness/render.js';
import type { BenchReport } from './harness/report.js';
import { DEFAULT_OPTIONS, runBench } from './harness/run.js';
import type { BenchOptions } from './harness/run.js';
import { ProvenanceRecorder, renderProvenance } from './harness/provenance.js';
import { renderScenarioMarkdown } from './harness/scenarioReport.js';
import { TargetError } from './harness/target.js';
import type { Target } from './harness/target.js';
import { runJoinStorm } from './scenarios/joinStorm.js';
import { runBrowserRecovery } from './scenarios/browserRecovery.js';
import { runBrowserAdmission } from './scenarios/browserAdmission.js';
import { runRest } from './scenarios/rest.js';
import { runAssisted } from './scenarios/assisted.js';
import { runSignalling } from './scenarios/signalling.js';
import { runWaitingRoom } from './scenarios/waitingRoom.js';
import { runEngineControl } from './scenarios/engineControl.js';
import { runEngineJoins } from './scenarios/engineJoins.js';
import { TARGETS } from './targets/index.js';
import { SelfTarget } from './targets/self/target.js';

const SCENARIOS = [
  'consult',
  'join-storm',
  'waiting-room',
  'signalling',
  'rest',
  'browser-recovery',
  'browser-admission',
  'engine-control',
  'engine-joins',
  'assisted',
] as const;
type ScenarioName = (typeof SCENARIOS)[number];
/** Scenarios that need our signalling and REST API: they run on `self` only. */
const SELF_ONLY: readonly ScenarioName[] = [
  'waiting-room',
  'signalling',
  'rest',
  'browser-recovery',
  'browser-admission',
  'assisted',
];

const USAGE = `usage: npm run bench -- [options]
  --scenario NAME          ${SCENARIOS.join(' | ')} (default consult)
  --target NAME            ${Object.keys(TARGETS).join(' | ')} (default bare; waiting-room, signalling, rest: self)
  --compare                consult: run the same load on each of --targets in turn and write ratios
  --targets LIST           targets for --compare, comma-separated (default bare,self,janus)
  --repeat N               --compare: N rounds, the targets' order reversed every other round;
                           figures are medians over the rounds (default 1); engine-control: rounds
  --sessions N             consult: sessions (default 5); join-storm: sessions, two joins each (default 20);
                           assisted: consultations per phase, 1:1 then assisted (default 5);
                           waiting-room: patients (default 20); signalling: idle connections (default 1000);
                           browser-recovery: network cuts (default 5);
                           browser-admission: patients admitted, one after the other (default 10);
                           engine-control: measured joins per round and engine (default 500);
                           engine-joins: consultations per round and engine, two joins each (default 100)
  --duration S             consult: seconds measured per level (default 20); signalling: request phase (10);
                           assisted: seconds measured per phase (20);
                           browser-recovery: seconds each cut lasts (15);
                           browser-admission: seconds a patient waits before its admission (3);
                           rest: seconds per endpoint (10)
  --rate R                 join-storm: joins started per second; waiting-room: patients arriving per second
                           (default 0: as fast as allowed / all at once)
  --hold S                 join-storm, waiting-room: seconds a session or patient stays once media flows (1)
  --warmup N               not measured, so that the control process is measured warm: engine-control:
                           joins per round and engine (default 2000); engine-joins, join-storm:
                           consultations joined and closed before the storm (default 100; 0)
  --connections K          rest: HTTP connections (10); signalling: connections sending requests (50)
  --room-size N            signalling: participants per room (default 2)
  --server-env K=V         self: extra SFU_* variable for the server child (repeatable), e.g. to
                           switch a feature off and see what it costs
  --media av|audio         consult: what each participant publishes: audio + 3-layer simulcast
                           (av, default) or audio only (bare and self targets)
  --cpu-budget CORES       consult: confine the target's processes (server and workers, or Janus)
                           to CORES of CPU with a cgroup quota, the same for every target, so
                           that on a small host the target and not the load generator runs out
                           of CPU first (needs root)
  --profile-server DIR     self: write a V8 CPU profile of the server process into DIR when it
                           stops (open it in Chrome DevTools or speedscope)
  --connect-ahead MODE     browser-admission: the patient SDK's connectAhead: on (default), off, or
                           both (rounds alternate off and on, both measured under the same load)
  --fast-recovery MODE     browser-recovery: the patient SDK's reconnect.wakeOnNetworkReturn: on
                           (default), off, or both (the cuts with it off, then with it on)
  --workers N              mediasoup workers (default: one per CPU, as the server)
  --ramp                   raise sessions stepwise until loss > --max-loss or delay p99 > --max-p99
  --step N                 sessions added per ramp step (default: --sessions)
  --max-sessions N         ramp ceiling (default 200)
  --max-loss R             ramp threshold on the loss ratio (default 0.01)
  --max-p99 MS             ramp threshold on delay p99 in ms (default 50)
  --join-concurrency N     sessions joining at once (default 4; signalling: joins in flight, 64)
  --settle S               seconds between joins and measurement (default 2)
  --time-limit S           hard bound on the whole run (default: duration + 120, ramp 900, others 600)
  --out FILE.json          report path; FILE.md and FILE.svg are written beside it
  --quiet                  no progress line`;

class UsageError extends Error {}

function positive(name: string, raw: string | undefined, fallback: number, allowZero = false): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new UsageError(
      `--${name} expects a ${allowZero ? 'non-negative' : 'positive'} number, got "${raw}"`,
    );
  }
  return value;
}

function onOffBoth(flag: string, raw: string | undefined): 'on' | 'off' | 'both' {
  if (raw === undefined || raw === 'on' || raw === 'off' || raw === 'both') return raw ?? 'on';
  throw new UsageError(`--${flag} expects on, off or both, got "${raw}"`);
}

function connectAheadOf(raw: string | undefined): 'on' | 'off' | 'both' {
  return onOffBoth('connect-ahead', raw);
}

function mediaOf(raw: string | undefined): 'av' | 'audio' {
  if (raw === undefined || raw === 'av' || raw === 'audio') return raw ?? 'av';
  throw new UsageError(`--media expects av or audio, got "${raw}"`);
}

interface Parsed {
  scenario: ScenarioName;
  options: BenchOptions;
  targetName: string;
  compare: string[] | undefined;
  repeat: number;
  rate: number;
  holdS: number;
  /** --warmup: undefined leaves each scenario's default. */
  warmup: number | undefined;
  connections: number | undefined;
  roomSize: number;
  serverEnv: Record<string, string>;
  profileDir: string | undefined;
  connectAhead: 'on' | 'off' | 'both';
  fastRecovery: 'on' | 'off' | 'both';
  out: string;
  quiet: boolean;
}

const DEFAULT_SIZE: Record<ScenarioName, number> = {
  consult: DEFAULT_OPTIONS.sessions,
  'join-storm': 20,
  'waiting-room': 20,
  signalling: 1000,
  rest: 0,
  'browser-recovery': 5,
  'browser-admission': 10,
  'engine-control': 500,
  'engine-joins': 100,
  assisted: DEFAULT_OPTIONS.sessions,
};

function parse(argv: string[]): Parsed {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string', default: 'consult' },
      target: { type: 'string' },
      compare: { type: 'boolean', default: false },
      repeat: { type: 'string' },
      targets: { type: 'string', default: 'bare,self,janus' },
      sessions: { type: 'string' },
      duration: { type: 'string' },
      rate: { type: 'string' },
      hold: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      'room-size': { type: 'string' },
      'server-env': { type: 'string', multiple: true },
      'profile-server': { type: 'string' },
      'cpu-budget': { type: 'string' },
      media: { type: 'string' },
      'connect-ahead': { type: 'string' },
      'fast-recovery': { type: 'string' },
      workers: { type: 'string' },
      ramp: { type: 'boolean', default: false },
      step: { type: 'string' },
      'max-sessions': { type: 'string' },
      'max-loss': { type: 'string' },
      'max-p99': { type: 'string' },
      'join-concurrency': { type: 'string' },
      settle: { type: 'string' },
      'time-limit': { type: 'string' },
      out: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) throw new UsageError('');
  const scenario = SCENARIOS.find((s) => s === values.scenario);
  if (!scenario) throw new UsageError(`unknown scenario "${values.scenario}"`);
  const targetName = values.target ?? (SELF_ONLY.includes(scenario) ? 'self' : 'bare');
  if (!(targetName in TARGETS)) throw new UsageError(`unknown target "${targetName}"`);
  if (SELF_ONLY.includes(scenario) && targetName !== 'self')
    throw new UsageError(`scenario ${scenario} needs our signalling: use --target self`);
  const compare = values.compare ? (values.targets ?? '').split(',').filter(Boolean) : undefined;
  if (compare) {
    if (scenario !== 'consult') throw new UsageError('--compare runs the consult scenario only');
    const unknown = compare.find((t) => !(t in TARGETS));
    if (unknown) throw new UsageError(`unknown target "${unknown}" in --targets`);
  }
  const ramp = values.ramp ?? false;
  const repeat = Math.floor(positive('repeat', values.repeat, 1));
  const defaultDuration =
    scenario === 'consult' || scenario === 'assisted'
      ? DEFAULT_OPTIONS.durationS
      : scenario === 'browser-recovery'
        ? 15
        : scenario === 'browser-admission'
          ? 3
          : 10;
  const durationS = positive('duration', values.duration, defaultDuration, scenario === 'signalling');
  const sessions = Math.floor(positive('sessions', values.sessions, DEFAULT_SIZE[scenario] || 1));
  const options: BenchOptions = {
    ...DEFAULT_OPTIONS,
    scenario: 'consult',
    sessions,
    durationS,
    workers: Math.floor(positive('workers', values.workers, 0, true)),
    ramp,
    rampStep: Math.floor(positive('step', values.step, 0, true)),
    maxSessions: Math.floor(positive('max-sessions', values['max-sessions'], DEFAULT_OPTIONS.maxSessions)),
    maxLossRatio: positive('max-loss', values['max-loss'], DEFAULT_OPTIONS.maxLossRatio, true),
    maxDelayP99Ms: positive('max-p99', values['max-p99'], DEFAULT_OPTIONS.maxDelayP99Ms),
    joinConcurrency: Math.floor(
      positive('join-concurrency', values['join-concurrency'], scenario === 'signalling' ? 64 : 4),
    ),
    settleS: positive('settle', values.settle, DEFAULT_OPTIONS.settleS, true),
    cpuBudgetCores: positive('cpu-budget', values['cpu-budget'], 0, true),
    media: mediaOf(values.media),
    timeLimitS: positive(
      'time-limit',
      values['time-limit'],
      scenario !== 'consult'
        ? 600
        : ramp
          ? 900 * (compare?.length ?? 1) * repeat
          : (durationS + 120) * (compare?.length ?? 1) * repeat,
    ),
  };
  const size = scenario === 'rest' ? '' : `-${sessions}`;
  const out =
    values.out ??
    path.join(
      'bench-results',
      compare
        ? `compare-consult${size}${ramp ? '-ramp' : ''}.json`
        : `${scenario}-${targetName}${size}${ramp ? '-ramp' : ''}.json`,
    );
  const serverEnv: Record<string, string> = {};
  for (const pair of values['server-env'] ?? []) {
    const match = /^(SFU_[A-Z0-9_]+)=(.*)$/.exec(pair);
    if (!match) throw new UsageError(`--server-env expects SFU_NAME=value, got "${pair}"`);
    serverEnv[match[1]!] = match[2]!;
  }
  const connections =
    values.connections !== undefined ? Math.floor(positive('connections', values.connections, 1)) : undefined;
  return {
    scenario,
    options,
    targetName,
    compare,
    repeat,
    rate: positive('rate', values.rate, 0, true),
    holdS: positive('hold', values.hold, 1, true),
    warmup: values.warmup !== undefined ? Math.floor(positive('warmup', values.warmup, 0, true)) : undefined,
    connections,
    roomSize: Math.floor(positive('room-size', values['room-size'], 2)),
    serverEnv,
    profileDir: values['profile-server'] !== undefined ? path.resolve(values['profile-server']) : undefined,
    connectAhead: connectAheadOf(values['connect-ahead']),
    fastRecovery: onOffBoth('fast-recovery', values['fast-recovery']),
    out,
    quiet: values.quiet ?? false,
  };
}

/** One live line on a terminal; a line every few seconds when stderr is a file or a pipe. */
function progressPrinter(quiet: boolean): { print: (line: string) => void; done: () => void } {
  if (quiet) return { print: () => undefined, done: () => undefined };
  const tty = process.stderr.isTTY;
  let last = 0;
  let pending = false;
  return {
    print: (line: string) => {
      if (tty) {
        process.stderr.write(`\r\x1b[K[bench] ${line}`);
        pending = true;
        return;
      }
      const now = Date.now();
      if (now - last >= 5000) {
        last = now;
        process.stderr.write(`[bench] ${line}\n`);
      }
    },
    done: () => {
      if (pending) process.stderr.write('\n');
      pending = false;
    },
  };
}

/** Set once the command line is parsed: every report written by this run carries it. */
let provenance: ProvenanceRecorder | undefined;

function writeFiles(out: string, json: object, markdown: string, svg?: string): string {
  const base = out.replace(/\.json$/i, '');
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  const origin = provenance?.finish();
  fs.writeFileSync(
    `${base}.json`,
    JSON.stringify(origin ? { ...json, provenance: origin } : json, null, 2) + '\n',
  );
  fs.writeFileSync(
    `${base}.md`,
    origin ? `${markdown.trimEnd()}\n\n${renderProvenance(origin)}\n` : markdown,
  );
  if (svg !== undefined) fs.writeFileSync(`${base}.svg`, svg);
  return base;
}

function writeConsult(out: string, report: BenchReport): string {
  return writeFiles(
    out,
    report,
    renderMarkdown(report),
    report.ramp ? renderCapacityCurve(report, report.ramp.steps) : renderBarChart(report),
  );
}

function makeTarget(name: string, parsed: Parsed): Target {
  const target = TARGETS[name]!();
  if (target instanceof SelfTarget) target.configure(parsed.serverEnv, parsed.profileDir);
  return target;
}

function selfTarget(parsed: Parsed): SelfTarget {
  const target = makeTarget(parsed.targetName, parsed);
  if (!(target instanceof SelfTarget)) throw new UsageError('this scenario needs --target self');
  return target;
}

async function runScenario(parsed: Parsed, log: (line: string) => void, progress: (line: string) => void) {
  const { options } = parsed;
  const common = { workers: options.workers, progress, log };
  switch (parsed.scenario) {
    case 'join-storm':
      return runJoinStorm(makeTarget(parsed.targetName, parsed), {
        ...common,
        sessions: options.sessions,
        rate: parsed.rate,
        joinConcurrency: options.joinConcurrency,
        holdS: parsed.holdS,
        warmupSessions: parsed.warmup ?? 0,
        audioOnly: options.media === 'audio',
        joinTimeoutMs: options.joinTimeoutMs,
      });
    case 'waiting-room':
      return runWaitingRoom(selfTarget(parsed), {
        ...common,
        patients: options.sessions,
        rate: parsed.rate,
        holdS: parsed.holdS,
        timeoutMs: options.joinTimeoutMs,
      });
    case 'signalling':
      return runSignalling(selfTarget(parsed), {
        ...common,
        connections: options.sessions,
        roomSize: parsed.roomSize,
        requestConnections: parsed.connections ?? 50,
        durationS: options.durationS,
        openConcurrency: options.joinConcurrency,
        timeoutMs: options.joinTimeoutMs,
      });
    case 'browser-recovery':
      return runBrowserRecovery(selfTarget(parsed), {
        ...common,
        rounds: options.sessions,
        cutS: options.durationS,
        fastRecovery: parsed.fastRecovery,
        timeoutMs: options.joinTimeoutMs,
      });
    case 'browser-admission':
      return runBrowserAdmission(selfTarget(parsed), {
        ...common,
        rounds: options.sessions,
        waitS: options.durationS,
        connectAhead: parsed.connectAhead,
        timeoutMs: options.joinTimeoutMs,
      });
    case 'engine-control':
      return runEngineControl({
        progress,
        log,
        joins: options.sessions,
        rounds: parsed.repeat,
        warmup: parsed.warmup ?? 2000,
      });
    case 'engine-joins':
      return runEngineJoins({
        ...common,
        sessions: options.sessions,
        rounds: parsed.repeat,
        joinConcurrency: options.joinConcurrency,
        holdS: parsed.holdS,
        warmupSessions: parsed.warmup ?? 100,
        joinTimeoutMs: options.joinTimeoutMs,
      });
    case 'assisted':
      return runAssisted(selfTarget(parsed), {
        ...common,
        sessions: options.sessions,
        durationS: options.durationS,
        settleS: options.settleS,
        joinConcurrency: options.joinConcurrency,
        timeoutMs: options.joinTimeoutMs,
      });
    case 'rest':
      return runRest(selfTarget(parsed), {
        ...common,
        connections: parsed.connections ?? 10,
        durationS: options.durationS,
      });
    default:
      throw new UsageError(`scenario ${parsed.scenario} is not a scenario report`);
  }
}

async function main(): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parse(process.argv.slice(2));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (message) process.stderr.write(`bench: ${message}\n`);
    process.stderr.write(`${USAGE}\n`);
    return message ? 2 : 0;
  }
  provenance = new ProvenanceRecorder(process.argv.slice(2));
  const { options, targetName, out, quiet } = parsed;
  const progress = progressPrinter(quiet);
  const log = (line: string): void => {
    progress.done();
    process.stderr.write(`[bench] ${line}\n`);
  };
  // Bounded in time whatever happens: the target's child processes exit when this process does.
  const watchdog = setTimeout(() => {
    log(`time limit of ${options.timeLimitS} s reached: aborting`);
    process.exit(3);
  }, options.timeLimitS * 1000);
  watchdog.unref();

  if (parsed.scenario !== 'consult') {
    const report = await runScenario(parsed, log, progress.print);
    progress.done();
    closeAllPeers();
    const markdown = renderScenarioMarkdown(report);
    const base = writeFiles(
      out,
      report,
      markdown,
      renderLatencyChart(`${report.scenario} on ${report.target}`, report.latenciesMs),
    );
    process.stderr.write(markdown);
    process.stderr.write(`[bench] wrote ${base}.json, ${base}.md and ${base}.svg\n`);
    clearTimeout(watchdog);
    return report.failures > 0 && Object.values(report.latenciesMs).every((l) => l.samples === 0) ? 1 : 0;
  }

  if (parsed.compare) {
    const startedAt = new Date();
    const runs: TargetRuns[] = parsed.compare.map((target) => ({ target, reports: [] }));
    for (let round = 0; round < parsed.repeat; round++) {
      // Reversing the order every other round spreads a drift of the host over every target.
      const order = round % 2 === 0 ? runs : [...runs].reverse();
      for (const run of order) {
        if (run.skipped) continue;
        const name = run.target;
        log(
          `compare: running ${name}${parsed.repeat > 1 ? ` (round ${round + 1} of ${parsed.repeat})` : ''}`,
        );
        try {
          const report = await runBench(makeTarget(name, parsed), {
            ...options,
            progress: progress.print,
            log,
          });
          progress.done();
          const suffix = parsed.repeat > 1 ? `-${name}-r${round + 1}` : `-${name}`;
          writeConsult(out.replace(/(\.json)?$/i, `${suffix}.json`), report);
          run.reports.push(report);
        } catch (error) {
          if (!(error instanceof TargetError)) throw error;
          progress.done();
          log(`compare: ${name} skipped: ${error.message}`);
          run.skipped = error.message;
        }
      }
    }
    closeAllPeers();
    const comparison = compareReports(
      runs,
      startedAt,
      os.loadavg().map((l) => Math.round(l * 100) / 100),
    );
    const markdown = renderComparison(comparison);
    const base = writeFiles(out, comparison, markdown);
    process.stderr.write(markdown);
    process.stderr.write(
      `[bench] wrote ${base}.json and ${base}.md (and one report per target beside them)\n`,
    );
    clearTimeout(watchdog);
    return runs.some((r) => r.reports.some((report) => report.joined > 0)) ? 0 : 1;
  }

  const target = makeTarget(targetName, parsed);
  const report = await runBench(target, { ...options, progress: progress.print, log });
  progress.done();
  closeAllPeers();
  const base = writeConsult(out, report);
  process.stderr.write(renderMarkdown(report));
  process.stderr.write(`[bench] wrote ${base}.json, ${base}.md and ${base}.svg\n`);
  clearTimeout(watchdog);
  return report.joined > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`bench: ${error.message}\n`);
      process.exit(2);
    }
    if (error instanceof TargetError) {
      process.stderr.write(`bench: ${error.message}\n`);
      process.exit(1);
    }
    process.stderr.write(
      `bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);

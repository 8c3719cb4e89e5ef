/**
 * Load benchmark: opens real concurrent WebRTC sessions (ICE, DTLS-SRTP, RTP at realistic bitrates)
 * against a target on loopback and reports capacity, loss, delay and join times.
 *   npm run bench -- --scenario consult --sessions 5 --duration 20 --target bare --out results/run.json
 * See bench/README.md for every option and the definition of each measure.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { closeAllPeers } from './peer/index.js';
import { renderBarChart, renderCapacityCurve, renderMarkdown } from './harness/render.js';
import { DEFAULT_OPTIONS, runBench } from './harness/run.js';
import type { BenchOptions } from './harness/run.js';
import { TargetError } from './harness/target.js';
import { TARGETS } from './targets/index.js';

const USAGE = `usage: npm run bench -- [options]
  --scenario consult       one-to-one consultations (the only scenario so far)
  --target NAME            ${Object.keys(TARGETS).join(' | ')} (default bare)
  --sessions N             sessions to run, or the first ramp level (default 5)
  --duration S             seconds measured per level (default 20)
  --workers N              mediasoup workers (default: one per CPU, as the server)
  --ramp                   raise sessions stepwise until loss > --max-loss or delay p99 > --max-p99
  --step N                 sessions added per ramp step (default: --sessions)
  --max-sessions N         ramp ceiling (default 200)
  --max-loss R             ramp threshold on the loss ratio (default 0.01)
  --max-p99 MS             ramp threshold on delay p99 in ms (default 50)
  --join-concurrency N     sessions joining at once (default 4)
  --settle S               seconds between joins and measurement (default 2)
  --time-limit S           hard bound on the whole run (default: duration + 120, ramp 900)
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

function parse(argv: string[]): { options: BenchOptions; targetName: string; out: string; quiet: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string', default: 'consult' },
      target: { type: 'string', default: 'bare' },
      sessions: { type: 'string' },
      duration: { type: 'string' },
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
  if (values.scenario !== 'consult') throw new UsageError(`unknown scenario "${values.scenario}"`);
  if (!values.target || !(values.target in TARGETS))
    throw new UsageError(`unknown target "${values.target}"`);
  const ramp = values.ramp ?? false;
  const durationS = positive('duration', values.duration, DEFAULT_OPTIONS.durationS);
  const sessions = Math.floor(positive('sessions', values.sessions, DEFAULT_OPTIONS.sessions));
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
    joinConcurrency: Math.floor(positive('join-concurrency', values['join-concurrency'], 4)),
    settleS: positive('settle', values.settle, DEFAULT_OPTIONS.settleS, true),
    timeLimitS: positive('time-limit', values['time-limit'], ramp ? 900 : durationS + 120),
  };
  const out =
    values.out ??
    path.join('bench-results', `${options.scenario}-${values.target}-${sessions}${ramp ? '-ramp' : ''}.json`);
  return { options, targetName: values.target, out, quiet: values.quiet ?? false };
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

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(process.argv.slice(2));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (message) process.stderr.write(`bench: ${message}\n`);
    process.stderr.write(`${USAGE}\n`);
    return message ? 2 : 0;
  }
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

  const target = TARGETS[targetName]!();
  const report = await runBench(target, { ...options, progress: progress.print, log });
  progress.done();
  closeAllPeers();

  const base = out.replace(/\.json$/i, '');
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  fs.writeFileSync(`${base}.json`, JSON.stringify(report, null, 2) + '\n');
  fs.writeFileSync(`${base}.md`, renderMarkdown(report));
  fs.writeFileSync(
    `${base}.svg`,
    report.ramp ? renderCapacityCurve(report, report.ramp.steps) : renderBarChart(report),
  );
  process.stderr.write(renderMarkdown(report));
  process.stderr.write(`[bench] wrote ${base}.json, ${base}.md and ${base}.svg\n`);
  clearTimeout(watchdog);
  return report.joined > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
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

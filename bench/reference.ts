/**
 * Regenerates the reference set: every bench run whose figures README.md, bench/README.md and
 * docs/operations.md quote, into bench/reference/<date>/, one after the other (never two at once:
 * they would measure each other). Each report carries its command line, commit, machine and the
 * load average at its start and end (bench/harness/provenance.ts).
 *   npm run bench:reference                      # the whole set, into bench/reference/<today>/
 *   npm run bench:reference -- --only cpu20,rest # some runs (the others are kept)
 *   npm run bench:reference -- --list            # the runs and their commands
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

export interface ReferenceRun {
  /** Report file name (without .json) inside the reference folder. */
  name: string;
  /** What the run is for: the figure it backs. */
  purpose: string;
  /** Arguments of `npm run bench --`, without --out. */
  args: string[];
}

/** The runs behind every figure the documents quote. A doc test checks that cited reports come from here. */
export const REFERENCE_RUNS: readonly ReferenceRun[] = [
  {
    name: 'cpu20',
    purpose: 'CPU per consultation of our server against the bare worker (target: within 5 %)',
    args: [
      '--compare',
      '--targets',
      'bare,self',
      '--repeat',
      '5',
      '--sessions',
      '20',
      '--duration',
      '60',
      '--quiet',
    ],
  },
  {
    name: 'capacity-budget',
    purpose: 'capacity at loss < 1 % and delay p99 < 50 ms, Janus against ours, same CPU budget',
    args: [
      '--compare',
      '--targets',
      'janus,self',
      '--ramp',
      '--cpu-budget',
      '0.5',
      '--sessions',
      '5',
      '--step',
      '5',
      '--duration',
      '10',
      '--quiet',
    ],
  },
  {
    name: 'engine-cpu20',
    purpose:
      'the engine upgrade: mediasoup 3.12.16 (bare-legacy) against 3.27.1 (bare), CPU per forwarded Mbit and join p95',
    args: [
      '--compare',
      '--targets',
      'bare-legacy,bare',
      '--repeat',
      '3',
      '--sessions',
      '20',
      '--duration',
      '60',
      '--quiet',
    ],
  },
  {
    name: 'engine-capacity',
    purpose:
      'the engine upgrade: capacity at loss < 1 % and delay p99 < 50 ms, old against new, same CPU budget',
    args: [
      '--compare',
      '--targets',
      'bare-legacy,bare',
      '--repeat',
      '3',
      '--ramp',
      '--cpu-budget',
      '0.5',
      '--sessions',
      '5',
      '--step',
      '5',
      '--duration',
      '10',
      '--quiet',
    ],
  },
  {
    name: 'engine-control',
    purpose:
      "the engine upgrade's control plane: a join's calls on 3.12.16 against the current engine, CPU and time per join",
    args: [
      '--scenario',
      'engine-control',
      '--sessions',
      '1000',
      '--warmup',
      '2000',
      '--repeat',
      '5',
      '--quiet',
    ],
  },
  {
    name: 'engine-joins',
    purpose:
      'the engine upgrade: whole joins (to first RTP) on 3.12.16 against the current engine, 200 per round, no CPU budget',
    args: [
      '--scenario',
      'engine-joins',
      '--sessions',
      '100',
      '--warmup',
      '100',
      '--repeat',
      '3',
      '--hold',
      '0.5',
      '--quiet',
    ],
  },
  {
    name: 'storm20',
    purpose: 'join to first RTP at 20 joins/s (target: p95 < 250 ms)',
    args: ['--scenario', 'join-storm', '--target', 'self', '--sessions', '100', '--rate', '20', '--quiet'],
  },
  {
    name: 'audio-ramp',
    purpose: 'audio-only consultations: capacity and CPU per consultation',
    args: [
      '--target',
      'self',
      '--media',
      'audio',
      '--ramp',
      '--sessions',
      '50',
      '--step',
      '50',
      '--max-sessions',
      '300',
      '--duration',
      '10',
      '--quiet',
    ],
  },
  {
    name: 'signalling10k',
    purpose: 'memory per idle signalling connection (target: < 30 KiB), join rate, request rate',
    args: ['--scenario', 'signalling', '--sessions', '10000', '--duration', '10', '--quiet'],
  },
  {
    name: 'rest',
    purpose: 'REST API throughput and latency',
    args: ['--scenario', 'rest', '--duration', '10', '--connections', '10', '--quiet'],
  },
  {
    name: 'admission-after',
    purpose:
      'admit to first video frame in Chromium, rounds alternating connect ahead on and off (issue #19 target: ' +
      'p95 < 250 ms); admission-before.json is the scenario run before connect ahead existed (commit 6b36da8)',
    args: [
      '--scenario',
      'browser-admission',
      '--sessions',
      '20',
      '--duration',
      '3',
      '--connect-ahead',
      'both',
      '--quiet',
    ],
  },
  {
    name: 'recovery',
    purpose:
      "network return to signalling connected after a 15 s cut, the patient SDK's fast recovery off then on (issue #19 target: within 1 s)",
    args: [
      '--scenario',
      'browser-recovery',
      '--sessions',
      '5',
      '--duration',
      '15',
      '--fast-recovery',
      'both',
      '--quiet',
    ],
  },
  {
    name: 'assisted',
    purpose:
      'issue #20: CPU per assisted consultation (practitioner, patient, assistant with otoscope, stethoscope and ' +
      'oximeter) beside CPU per 1:1 consultation, both measured on the same server in the same run',
    args: ['--scenario', 'assisted', '--sessions', '10', '--duration', '30', '--quiet'],
  },
  {
    name: 'waiting-room',
    purpose: 'admission latency with 20 patients arriving at once',
    args: ['--scenario', 'waiting-room', '--sessions', '20', '--quiet'],
  },
];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The command a run's report records in its provenance (bench/harness/provenance.ts). */
export function referenceCommand(run: ReferenceRun, out: string): string {
  return ['npm run bench --', ...run.args, '--out', out].join(' ');
}

function runOne(run: ReferenceRun, dir: string): Promise<{ code: number | null; seconds: number }> {
  const out = path.relative(root, path.join(dir, `${run.name}.json`));
  const started = Date.now();
  process.stderr.write(`[reference] ${run.name}: ${referenceCommand(run, out)}\n`);
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [path.join(root, 'dist', 'bench', 'cli.js'), ...run.args, '--out', out],
      {
        cwd: root,
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    child.on('exit', (code) => resolve({ code, seconds: Math.round((Date.now() - started) / 1000) }));
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      date: { type: 'string' },
      list: { type: 'boolean' },
    },
  });
  const date = values.date ?? new Date().toISOString().slice(0, 10);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) {
    process.stderr.write(`bench:reference: --date expects YYYY-MM-DD, got "${date}"\n`);
    return 2;
  }
  const dir = path.join(root, 'bench', 'reference', date);
  if (values.list) {
    for (const run of REFERENCE_RUNS)
      process.stdout.write(
        `${run.name}\t${run.purpose}\n\t${referenceCommand(run, `bench/reference/${date}/${run.name}.json`)}\n`,
      );
    return 0;
  }
  const wanted = values.only?.split(',').map((s) => s.trim()) ?? REFERENCE_RUNS.map((r) => r.name);
  const unknown = wanted.filter((name) => !REFERENCE_RUNS.some((r) => r.name === name));
  if (unknown.length) {
    process.stderr.write(`bench:reference: unknown run(s) ${unknown.join(', ')}; see --list\n`);
    return 2;
  }
  fs.mkdirSync(dir, { recursive: true });
  const indexPath = path.join(dir, 'index.json');
  const index = fs.existsSync(indexPath)
    ? (JSON.parse(fs.readFileSync(indexPath, 'utf8')) as Record<string, unknown>)
    : {};
  let failed = 0;
  for (const run of REFERENCE_RUNS.filter((r) => wanted.includes(r.name))) {
    const { code, seconds } = await runOne(run, dir);
    if (code !== 0) failed++;
    index[run.name] = { purpose: run.purpose, args: run.args, exitCode: code, seconds };
    fs.writeFileSync(indexPath, JSON.stringify(index, null, 2) + '\n');
  }
  process.stderr.write(
    `[reference] done: ${wanted.length - failed} of ${wanted.length} runs succeeded, in ${dir}\n`,
  );
  return failed ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`bench:reference: ${error instanceof Error ? error.stack : String(error)}\n`);
      process.exit(1);
    },
  );
}

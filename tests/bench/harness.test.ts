import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { closeAllPeers } from '../../bench/peer/index.js';
import { DEFAULT_OPTIONS, runBench } from '../../bench/harness/run.js';
import { renderBarChart, renderCapacityCurve, renderMarkdown } from '../../bench/harness/render.js';
import { BareTarget } from '../../bench/targets/bare/target.js';

t.teardown(closeAllPeers);

// Compiled beside this test: dist/tests/bench -> dist/bench/cli.js.
const CLI = fileURLToPath(new URL('../../bench/cli.js', import.meta.url));

void t.test('an audio-only consult run carries audio and no video', async (t) => {
  const report = await runBench(new BareTarget(), {
    ...DEFAULT_OPTIONS,
    sessions: 1,
    durationS: 2,
    workers: 1,
    settleS: 0,
    media: 'audio',
  });
  t.equal(report.media, 'audio');
  t.equal(report.joined, 1);
  t.ok(report.packets.received > 0, 'audio packets were received');
  // Opus every 20 ms: about 50 packets per second and participant, no video on top.
  t.ok(
    report.packets.sent < 2 * 2 * 50 * 1.5 * (report.durationS + 1),
    `${report.packets.sent} packets sent`,
  );
  t.equal(report.videoTopLayerShare, 0, 'no video stream was received');
  t.equal(report.joinPhasesMs.firstVideo.p50, 0, 'no first video time');
  t.ok(report.delayMs.samples > 0, 'delay measured on audio');
  t.match(renderMarkdown(report), /audio only/);
});

void t.test('a two-session consult run against the bare target reports flowing media', async (t) => {
  const target = new BareTarget();
  const report = await runBench(target, {
    ...DEFAULT_OPTIONS,
    sessions: 2,
    durationS: 4,
    workers: 1,
    settleS: 1,
  });

  t.equal(report.scenario, 'consult');
  t.equal(report.target, 'bare');
  t.equal(report.sessions, 2);
  t.equal(report.joined, 2);
  t.equal(report.joinFailures, 0);
  t.equal(report.workers, 1);
  t.ok(report.durationS >= 4, 'the window lasted at least the asked duration');
  t.ok(report.packets.sent > 0 && report.bytes.sent > 0, 'packets were sent');
  t.ok(report.packets.received > 0 && report.bytes.received > 0, 'packets were received');
  t.ok(report.lossRatio < 0.5, `loss ratio ${report.lossRatio}`);
  for (const key of ['p50', 'p95', 'p99'] as const) {
    t.ok(report.delayMs[key] > 0, `delay ${key} measured`);
    t.ok(report.joinMs[key] > 0, `join ${key} measured`);
  }
  t.ok(report.delayMs.samples > 0);
  t.ok(report.videoTopLayerShare > 0, 'video arrives from the top simulcast layer');
  t.equal(report.joinPhasesMs.samples, 4, 'both participants of both sessions have join phases');
  t.ok(
    report.joinPhasesMs.signalling.p50 <= report.joinPhasesMs.firstRtp.p50 + 1e-9 || report.joinMs.p50 > 0,
  );
  t.ok(report.cpuS.workers > 0, 'the workers used CPU');
  t.ok(report.cpuS.server >= 0);
  t.ok(report.rssMiB.server > 0 && report.rssMiB.workers > 0, 'memory read from /proc');
  t.ok(report.cpuCoresPerSession > 0);
  t.ok(report.cpuMsPerForwardedMbit > 0);
  t.same(report.errors, []);

  t.equal(target.serverPids().server, undefined, 'the driver child is gone after the run');

  const markdown = renderMarkdown(report);
  t.match(markdown, /loss ratio/);
  const svg = renderBarChart(report);
  t.match(svg, /^<svg /);
  t.notMatch(svg, /NaN|undefined/, 'the chart has no broken numbers');
  const curve = renderCapacityCurve(report, [
    { ...stepFrom(report), sessions: 2 },
    { ...stepFrom(report), sessions: 4 },
  ]);
  t.notMatch(curve, /NaN|undefined/);
});

void t.test('the CLI refuses a bad option with its usage and exit code 2', (t) => {
  let status = 0;
  let stderr = '';
  try {
    execFileSync(process.execPath, [CLI, '--sessions', 'many'], { encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    const e = error as { status: number; stderr: string };
    status = e.status;
    stderr = e.stderr;
  }
  t.equal(status, 2);
  t.match(stderr, /--sessions expects a positive number/);
  t.match(stderr, /usage: npm run bench/);
  t.end();
});

void t.test('the CLI writes JSON, Markdown and SVG beside each other', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-cli-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'run.json');
  execFileSync(
    process.execPath,
    [
      path.resolve('dist/bench/cli.js'),
      '--sessions',
      '1',
      '--duration',
      '2',
      '--settle',
      '0',
      '--workers',
      '1',
      '--quiet',
      '--out',
      out,
    ],
    { stdio: 'pipe', timeout: 60_000 },
  );
  const report = JSON.parse(fs.readFileSync(out, 'utf8')) as {
    sessions: number;
    packets: { received: number };
  };
  t.equal(report.sessions, 1);
  t.ok(report.packets.received > 0);
  t.ok(fs.existsSync(path.join(dir, 'run.md')));
  t.match(fs.readFileSync(path.join(dir, 'run.svg'), 'utf8'), /<svg /);
  t.end();
});

function stepFrom(report: Awaited<ReturnType<typeof runBench>>) {
  return {
    sessions: report.sessions,
    durationS: report.durationS,
    lossRatio: report.lossRatio,
    delayMs: report.delayMs,
    joinMs: report.joinMs,
    cpuS: report.cpuS,
    cpuCores: report.cpuCores,
    cpuCoresPerSession: report.cpuCoresPerSession,
    cpuMsPerForwardedMbit: report.cpuMsPerForwardedMbit,
    forwardedMbps: report.forwardedMbps,
    rssMiB: report.rssMiB,
    joinFailures: 0,
    passed: true,
  };
}

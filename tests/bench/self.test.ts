import t from 'tap';
import fs from 'node:fs';
import { closeAllPeers } from '../../bench/peer/index.js';
import { compareReports, renderComparison } from '../../bench/harness/compare.js';
import { renderMarkdown } from '../../bench/harness/render.js';
import { DEFAULT_OPTIONS, runBench } from '../../bench/harness/run.js';
import { SelfTarget } from '../../bench/targets/self/target.js';

t.teardown(closeAllPeers);

void t.test('a two-session consult run against our real server reports flowing media', async (t) => {
  const target = new SelfTarget();
  let serverPid: number | undefined;
  let workerPids: number[] = [];
  const report = await runBench(target, {
    ...DEFAULT_OPTIONS,
    sessions: 2,
    durationS: 3,
    workers: 1,
    settleS: 1,
    // The server's pids, noted while it runs, to check that nothing outlives the run.
    progress: () => {
      serverPid ??= target.serverPids().server;
      if (workerPids.length === 0) workerPids = target.serverPids().workers;
    },
  });

  t.equal(report.target, 'self');
  t.equal(report.sessions, 2);
  t.equal(report.joined, 2, 'both consultations went through token, consent and admission');
  t.equal(report.joinFailures, 0);
  t.equal(report.workers, 1, 'one mediasoup worker found under the server process');
  t.ok(report.packets.sent > 0 && report.packets.received > 0, 'packets flowed through the server');
  t.ok(report.lossRatio < 0.5, `loss ratio ${report.lossRatio}`);
  t.ok(report.videoTopLayerShare > 0, 'video arrives from the top simulcast layer');
  t.equal(report.joinPhasesMs.samples, 4);
  t.ok(report.joinPhasesMs.joined.p50 > 0, 'the join answer (and admission) phase is measured');
  t.ok(
    report.joinPhasesMs.joined.p95 <= report.joinPhasesMs.firstRtp.p95,
    'joining comes before the first RTP',
  );
  t.ok(report.cpuS.server > 0, "the server process's CPU is measured");
  t.ok(report.cpuS.workers > 0, "the worker's CPU is measured");
  t.ok(report.rssMiB.server > 0 && report.rssMiB.workers > 0);
  t.ok(report.host.loadAverage.length === 3, 'the load average is in the report');
  t.same(report.errors, []);
  t.match(renderMarkdown(report), /joined \(answer; patient: consent \+ admission\)/);

  t.ok(serverPid !== undefined, 'the server ran as a child process');
  t.equal(target.serverPids().server, undefined, 'the server child is gone after the run');
  for (const pid of [serverPid!, ...workerPids])
    t.notOk(fs.existsSync(`/proc/${pid}/stat`) && !isZombie(pid), `process ${pid} is gone`);

  const comparison = compareReports(
    [
      { target: 'self', reports: [report] },
      { target: 'self-again', reports: [report] },
      { target: 'janus', reports: [], skipped: 'not available' },
    ],
    new Date(),
    [0, 0, 0],
  );
  t.equal(comparison.baseline, 'self');
  t.equal(comparison.targets[1]?.ratios?.cpuPerSession.median, 1, 'a target compared with itself costs 1.00');
  t.match(renderComparison(comparison), /janus \| skipped: not available/);

  const slower = { ...report, cpuCoresPerSession: report.cpuCoresPerSession * 2 };
  const rounds = compareReports(
    [
      { target: 'a', reports: [report, report, report] },
      { target: 'b', reports: [report, slower, report] },
    ],
    new Date(),
    [0, 0, 0],
  );
  t.equal(rounds.rounds, 3);
  t.same(rounds.targets[1]?.ratios?.cpuPerSession.byRound, [1, 2, 1], 'a ratio per round');
  t.equal(rounds.targets[1]?.ratios?.cpuPerSession.median, 1, 'one disturbed round does not move the median');

  // Round k of the target is compared with round k of the baseline (they ran next to each other);
  // the ratio is the median of those per-round ratios, not a ratio of medians of different rounds.
  const withCpu = (cpu: number): typeof report => ({ ...report, cpuCoresPerSession: cpu });
  const drifting = compareReports(
    [
      { target: 'a', reports: [withCpu(1), withCpu(2), withCpu(10)] },
      { target: 'b', reports: [withCpu(2), withCpu(10), withCpu(1)] },
    ],
    new Date(),
    [0, 0, 0],
  );
  const spread = drifting.targets[1]?.ratios?.cpuPerSession;
  t.same(spread?.byRound, [2, 5, 0.1], 'per-round ratios');
  t.equal(spread?.median, 2, 'the median of the per-round ratios (a ratio of medians would say 1)');
  t.equal(spread?.min, 0.1, 'with its spread');
  t.equal(spread?.max, 5);
  t.match(
    renderComparison(drifting),
    /\| 2\.00 \(0\.10-5\.00\) \|/,
    'the report prints the median and the range',
  );
});

function isZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

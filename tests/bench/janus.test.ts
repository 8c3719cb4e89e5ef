import t from 'tap';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { ConsultLoad } from '../../bench/harness/consult.js';
import { renderMarkdown } from '../../bench/harness/render.js';
import { DEFAULT_OPTIONS, runBench } from '../../bench/harness/run.js';
import { MediaScheduler, closeAllPeers } from '../../bench/peer/index.js';
import { JanusTarget } from '../../bench/targets/janus/target.js';
import { networkNamespaces } from '../support/hostCapabilities.js';

t.teardown(closeAllPeers);

/** Why the janus target cannot run here, if it cannot: it needs root (namespace) and the package. */
function unavailable(): string | false {
  const namespaces = networkNamespaces();
  if (namespaces) return `the janus target runs in a network namespace: ${namespaces}`;
  if (fs.existsSync('/usr/bin/janus')) return false;
  // The target installs the package itself; only a package apt cannot offer makes the test skip.
  try {
    const policy = execFileSync('apt-cache', ['policy', 'janus'], { encoding: 'utf8' });
    if (!/Candidate: \d/.test(policy)) return 'janus is not installed and apt offers no candidate';
  } catch {
    return 'janus is not installed and apt-cache is unavailable';
  }
  return false;
}

const skip = unavailable();

function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`jbench-${process.pid}-`));
}

void t.test('janus consultations carry media both ways through the VideoRoom', { skip }, async (t) => {
  const target = new JanusTarget();
  const scheduler = new MediaScheduler();
  const load = new ConsultLoad({
    target,
    scheduler,
    joinConcurrency: 2,
    joinTimeoutMs: 15_000,
    log: () => undefined,
  });
  let janusPid: number | undefined;
  try {
    await target.start({ workers: 0, maxSessions: 2, log: () => undefined });
    janusPid = target.serverPids().server;
    t.ok(janusPid !== undefined, 'janus runs as a child process');
    t.equal(namespaces().length, 1, 'janus runs in a network namespace of ours');
    await load.growTo(2);
    t.equal(load.joinFailures, 0, `no join failed (${load.errors.join('; ')})`);
    t.equal(load.sessions.length, 2);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    for (const session of load.sessions) {
      for (const [p, participant] of session.participants.entries()) {
        const received = participant.subscriber!.stats();
        const kinds = new Set(received.streams.filter((s) => s.packets > 0).map((s) => s.kind));
        t.ok(
          kinds.has('audio') && kinds.has('video'),
          `session ${session.index} participant ${p} hears and sees the other`,
        );
        t.ok(
          participant.publisher.stats().packets > 0,
          `session ${session.index} participant ${p} publishes`,
        );
      }
    }
  } finally {
    await load.close();
    scheduler.stop();
    await target.stop();
  }
  t.equal(target.serverPids().server, undefined, 'the janus child is forgotten after stop');
  t.notOk(
    janusPid !== undefined && fs.existsSync(`/proc/${janusPid}/stat`) && !isZombie(janusPid),
    'janus is gone',
  );
  t.same(namespaces(), [], 'the network namespace is deleted');
});

void t.test(
  'a two-session consult run against janus reports the same fields as the other targets',
  { skip },
  async (t) => {
    const report = await runBench(new JanusTarget(), {
      ...DEFAULT_OPTIONS,
      sessions: 2,
      durationS: 3,
      settleS: 1,
    });
    t.equal(report.target, 'janus');
    t.equal(report.joined, 2);
    t.equal(report.joinFailures, 0);
    t.ok(report.packets.sent > 0 && report.packets.received > 0, 'packets flowed through janus');
    t.ok(report.lossRatio < 0.5, `loss ratio ${report.lossRatio}`);
    t.ok(report.videoTopLayerShare > 0, 'video arrives from the top simulcast layer');
    t.equal(report.joinPhasesMs.samples, 4);
    t.ok(report.delayMs.p99 > 0, 'delay is measured');
    t.ok(report.cpuS.server > 0, "janus's CPU is measured");
    t.ok(report.rssMiB.server > 0, "janus's memory is measured");
    t.equal(report.host.loadAverage.length, 3);
    t.same(report.errors, []);
    t.match(renderMarkdown(report), /consult on janus/);
    t.same(namespaces(), [], 'nothing left behind');
  },
);

function isZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

import t from 'tap';
import { closeAllPeers } from '../../bench/peer/index.js';
import { renderScenarioMarkdown } from '../../bench/harness/scenarioReport.js';
import { renderLatencyChart } from '../../bench/harness/render.js';
import { runJoinStorm } from '../../bench/scenarios/joinStorm.js';
import { runRest } from '../../bench/scenarios/rest.js';
import { runSignalling } from '../../bench/scenarios/signalling.js';
import { runWaitingRoom } from '../../bench/scenarios/waitingRoom.js';
import { runEngineControl } from '../../bench/scenarios/engineControl.js';
import { runEngineJoins } from '../../bench/scenarios/engineJoins.js';
import { runBrowserRecovery } from '../../bench/scenarios/browserRecovery.js';
import { chromiumAvailable } from '../support/browser.js';
import { legacyWorkerBin } from '../../bench/targets/bare/target.js';
import { SelfTarget } from '../../bench/targets/self/target.js';

t.teardown(closeAllPeers);

const quiet = { progress: () => undefined, log: () => undefined };

void t.test(
  'a join storm of two consultations on our server measures every join to its first RTP',
  async (t) => {
    const target = new SelfTarget();
    const report = await runJoinStorm(target, {
      ...quiet,
      sessions: 2,
      rate: 10,
      joinConcurrency: 2,
      holdS: 0.2,
      workers: 1,
      joinTimeoutMs: 15_000,
    });
    t.equal(report.scenario, 'join-storm');
    t.equal(report.results.joins, 4, 'two joins per consultation');
    t.equal(report.results.failedSessions, 0);
    t.ok(report.results.joinsPerS > 0);
    t.equal(report.latenciesMs.joinToFirstRtp!.samples, 4);
    t.ok(report.latenciesMs.joinToFirstRtp!.p95 >= report.latenciesMs.joined!.p95);
    t.ok(report.server.storm!.cpuS.server > 0, "the server's CPU during the storm is measured");
    t.equal(target.serverPids().server, undefined, 'the server is stopped');
    t.match(renderScenarioMarkdown(report), /joinToFirstRtp/);
    t.notMatch(renderLatencyChart('storm', report.latenciesMs), /NaN|undefined/);
  },
);

void t.test(
  'a practitioner admits a queue of three patients one by one and each receives its media',
  async (t) => {
    const report = await runWaitingRoom(new SelfTarget(), {
      ...quiet,
      patients: 3,
      rate: 0,
      holdS: 0.2,
      workers: 1,
      timeoutMs: 15_000,
    });
    t.equal(report.results.admitted, 3);
    t.equal(report.results.failed, 0);
    t.same(report.errors, []);
    const admission = report.latenciesMs.consentToFirstRtp!;
    t.equal(admission.samples, 3);
    t.ok(admission.p50 > 0 && admission.p99 >= admission.p50, 'consent-to-first-RTP percentiles are ordered');
    t.ok(report.latenciesMs.consentToAdmitted!.p99 <= admission.p99);
  },
);

void t.test('idle joined signalling connections are counted, weighed and then send requests', async (t) => {
  const report = await runSignalling(new SelfTarget(), {
    ...quiet,
    connections: 20,
    roomSize: 2,
    requestConnections: 4,
    durationS: 1,
    openConcurrency: 8,
    workers: 1,
    timeoutMs: 15_000,
  });
  t.equal(report.results.connections, 20);
  t.equal(report.results.rooms, 10);
  t.equal(report.failures, 0, 'every connection joined and stayed open');
  t.ok(report.results.joinsPerS > 0);
  t.ok(report.results.rssMiB.withConnections > 0, "the server's memory is read");
  t.type(report.results.serverRssPerConnectionKiB, 'number');
  t.ok(report.results.requests.total > 0, 'requests were answered');
  t.equal(report.results.requests.failed, 0);
  t.equal(report.latenciesMs.request!.samples, report.results.requests.total);
});

void t.test('the REST API is driven by autocannon for room creation and room reads', async (t) => {
  const report = await runRest(new SelfTarget(), { ...quiet, connections: 2, durationS: 1, workers: 1 });
  for (const endpoint of [report.results.createRoom, report.results.readRoom]) {
    t.ok(endpoint.requests > 0, 'requests completed');
    t.equal(endpoint.errors, 0);
    t.equal(endpoint.non2xx, 0, 'every answer was a success');
    t.ok(endpoint.perS > 0);
  }
});

const noLegacyWorker = ((): string | undefined => {
  try {
    legacyWorkerBin();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
})();

void t.test(
  "the engine's control plane is measured on both engines, each in its own process",
  { skip: noLegacyWorker },
  async (t) => {
    const report = await runEngineControl({ ...quiet, joins: 5, rounds: 2, warmup: 2 });
    t.equal(report.results.legacy.version, '3.12.16');
    t.not(report.results.current.version, '3.12.16', 'the current engine is another version');
    t.equal(
      report.results.raw.version,
      report.results.current.version,
      'raw is the current engine as published',
    );
    for (const engine of [report.results.legacy, report.results.current, report.results.raw]) {
      t.ok(engine.nodeCpuMsPerJoin > 0, `${engine.version}: the Node side's CPU is measured`);
      t.ok(engine.joinP50Ms > 0);
      t.same(Object.keys(engine.callP50Ms).sort(), [
        'connectTransport',
        'consume',
        'createTransport',
        'produce',
        'resumeConsumer',
      ]);
    }
    t.equal(report.results.ratios.nodeCpu.perRound.length, 2, 'one ratio per round');
    t.ok(Number.isFinite(report.results.ratios.nodeCpu.median), 'the Node CPU ratio is a number');
    t.ok(Number.isFinite(report.results.rawRatios.nodeCpu.median), "so is the raw engine's");
    t.equal(
      Object.values(report.latenciesMs).reduce((n, p) => n + p.samples, 0),
      30,
      '5 joins x 2 rounds x 3 engines',
    );
    t.notMatch(renderScenarioMarkdown(report), /NaN|undefined/);
  },
);

void t.test(
  'browser recovery measures a network cut with the SDK fast recovery off, then on',
  { skip: (await chromiumAvailable()) ? false : 'chromium is not installed' },
  async (t) => {
    const report = await runBrowserRecovery(new SelfTarget(), {
      ...quiet,
      rounds: 1,
      cutS: 2,
      fastRecovery: 'both',
      workers: 1,
      timeoutMs: 20_000,
    });
    t.equal(report.failures, 0, report.errors.join('; '));
    t.equal(report.latenciesMs.networkReturnToConnected?.samples, 1, 'one cut with fast recovery on');
    t.equal(report.latenciesMs.networkReturnToConnectedOff?.samples, 1, 'one cut with it off');
    t.ok((report.results.triggers.online ?? 0) >= 1, 'on: the online event started an attempt');
    t.notOk(report.results.off?.triggers.online, 'off: no attempt was started by the online event');
    t.ok((report.results.off?.triggers.backoff ?? 0) >= 1, 'off: the backoff timer started the attempts');
  },
);

void t.test(
  'engine joins: whole joins on both engines, round by round, with ratios',
  { skip: noLegacyWorker },
  async (t) => {
    const report = await runEngineJoins({
      ...quiet,
      sessions: 2,
      rounds: 2,
      joinConcurrency: 2,
      holdS: 0.2,
      warmupSessions: 1,
      workers: 1,
      joinTimeoutMs: 15_000,
    });
    t.equal(report.results.failedSessions, 0, report.errors.join('; '));
    t.equal(report.results.legacy.length, 2, 'two rounds on 3.12.16');
    t.equal(report.results.current.length, 2, 'two rounds on the current engine');
    for (const round of [...report.results.legacy, ...report.results.current]) {
      t.equal(round.joins, 4, 'two joins per consultation, the warm-up consultation not counted');
      t.ok(round.joinP95Ms >= round.joinP50Ms && round.joinP50Ms > 0);
      t.ok(round.serverCpuMsPerJoin > 0, "the control process's CPU is measured");
    }
    t.equal(report.results.ratios.joinP95.perRound.length, 2);
    t.equal(report.latenciesMs.joinToFirstRtp?.samples, 8);
    t.notMatch(renderScenarioMarkdown(report), /NaN|undefined|object Object/);
  },
);

import t from 'tap';
import { closeAllPeers } from '../../bench/peer/index.js';
import { renderScenarioMarkdown } from '../../bench/harness/scenarioReport.js';
import { renderLatencyChart } from '../../bench/harness/render.js';
import { runAssisted } from '../../bench/scenarios/assisted.js';
import { SelfTarget } from '../../bench/targets/self/target.js';

t.teardown(closeAllPeers);

/**
 * The assisted-consultation scenario in its smallest form: one 1:1 consultation measured, then one
 * assisted consultation (practitioner, patient, assistant with an otoscope, a stethoscope and an
 * oximeter) measured the same way on the same server. Checks that every source flows where the
 * permission table sends it and that both CPU figures are there; no timing is asserted.
 */
void t.test('one 1:1 and one assisted consultation, measured side by side', async (t) => {
  const target = new SelfTarget();
  const report = await runAssisted(target, {
    sessions: 1,
    durationS: 2,
    settleS: 0.5,
    joinConcurrency: 1,
    workers: 1,
    timeoutMs: 15_000,
    progress: () => undefined,
    log: () => undefined,
  });
  t.equal(report.scenario, 'assisted');
  t.equal(report.failures, 0);
  t.same(report.errors, []);
  const { consult, assisted } = report.results;
  t.equal(consult.sessions, 1);
  t.equal(assisted.sessions, 1);
  t.equal(assisted.participantsPerSession, 3);
  // 1:1: each receives the other's camera. Assisted: the practitioner gets the patient's camera and
  // the examination video, the patient the practitioner's camera, the assistant both cameras.
  t.equal(consult.video.streams, 2);
  t.equal(assisted.video.streams, 5, 'five video streams received in the assisted consultation');
  t.equal(assisted.video.topLayer, 5, 'cameras at their top layer, the examination video at 1920 wide');
  t.ok(assisted.vitalSigns.sent > 0, 'the oximeter sent readings during the window');
  t.ok(assisted.vitalSigns.received > 0, 'the practitioner received them');
  t.ok(consult.cpuCoresPerSession > 0, 'CPU per 1:1 consultation measured');
  t.ok(assisted.cpuCoresPerSession > 0, 'CPU per assisted consultation measured');
  t.ok(assisted.forwardedMbps > consult.forwardedMbps, 'the assisted consultation forwards more');
  t.ok(report.results.cpuPerSessionRatio > 0);
  t.equal(report.latenciesMs.consultJoinToFirstRtp!.samples, 2, 'both 1:1 joins timed');
  t.equal(report.latenciesMs.assistedJoinToFirstRtp!.samples, 3, 'the three assisted joins timed');
  t.ok(report.server.assisted!.cpuS.workers > 0);
  t.equal(target.serverPids().server, undefined, 'the server is stopped');
  t.match(renderScenarioMarkdown(report), /cpuPerSessionRatio/);
  t.notMatch(renderLatencyChart('assisted', report.latenciesMs), /NaN|undefined/);
});

import t from 'tap';
import type { TestServer } from '../support/server.js';
import { releaseNativePeers } from '../support/mediaPeer.js';
import { OUTCOMES, explore, readRegressions, runScenario, startModelServer } from './lifecycleModel.js';

/**
 * The model-based test of a participant's life (tests/model/lifecycleModel.ts): first every
 * regression ever found (tests/model/fixtures/regressions.json), then random sequences for about a
 * minute (MODEL_SECONDS), seeded (MODEL_SEED, else a fresh seed that a failure prints). Longer
 * explorations: `npm run test:model -- --minutes N`, which keeps what it finds as a regression.
 */
let srv: TestServer;
t.before(async () => {
  srv = await startModelServer();
});
t.teardown(async () => {
  await srv.stop();
  releaseNativePeers();
});

t.test('every regression the model ever found still holds', async (t) => {
  t.setTimeout(120_000);
  for (const [index, regression] of readRegressions().entries()) {
    await t.resolves(runScenario(srv, regression.scenario), `#${index}: ${regression.found}`);
  }
});

t.test('random sequences keep every invariant', async (t) => {
  const seconds = Number(process.env.MODEL_SECONDS ?? 60);
  t.setTimeout((seconds + 60) * 1000);
  const seed = Number(process.env.MODEL_SEED ?? Date.now() % 2 ** 31);
  const result = await explore(srv, seconds, seed);
  t.ok(result.runs > 0, `${result.runs} sequences in ${seconds} s (seed ${seed})`);
  const reached = [...OUTCOMES].sort((a, b) => a[0].localeCompare(b[0]));
  t.comment(`steps and answers: ${reached.map(([k, n]) => `${k} x${n}`).join(', ')}`);
  if (result.failure) {
    t.fail(result.failure.error, {
      seed: result.failure.seed,
      keepAsRegression: JSON.stringify({
        found: result.failure.error,
        seed,
        scenario: result.failure.scenario,
      }),
    });
  }
});

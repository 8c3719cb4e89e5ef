import { parseArgs } from 'node:util';
import { explore, keepRegression, startModelServer } from './lifecycleModel.js';

/**
 * `npm run test:model -- --minutes N [--seed S]`: explores random sequences for N minutes; a
 * failure is shrunk, printed and appended to tests/model/fixtures/regressions.json, which the test
 * replays on every run from then on.
 */
const { values } = parseArgs({
  options: { minutes: { type: 'string', default: '5' }, seed: { type: 'string' } },
});
const minutes = Number(values.minutes);
if (!(minutes > 0)) throw new Error('--minutes must be a positive number');
const seed = values.seed !== undefined ? Number(values.seed) : Date.now() % 2 ** 31;

const srv = await startModelServer();
try {
  const result = await explore(srv, minutes * 60, seed);
  if (result.failure) {
    keepRegression({ found: result.failure.error, seed, scenario: result.failure.scenario });
    process.stdout.write(
      `model: FAILED after ${result.runs} sequences (seed ${seed}): ${result.failure.error}\n` +
        `${JSON.stringify(result.failure.scenario, null, 2)}\nkept in tests/model/fixtures/regressions.json\n`,
    );
    process.exitCode = 1;
  } else {
    process.stdout.write(`model: ${result.runs} sequences in ${minutes} min, no violation (seed ${seed})\n`);
  }
} finally {
  await srv.stop();
}
process.exit();

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';

/**
 * scripts/build-worker.mjs picks the worker binary's source in order (docs/engine.md). These
 * checks stop before any compile: an explicit binary is taken (or refused) as is, an empty cache
 * with no source folder fails with a message that says what to set, and a source folder whose
 * files do not match the pinned SHA-256 is refused. MEDIASOUP_OFFLINE=1 keeps the script off the
 * network; a scratch cache and TMPDIR keep it away from the real ones.
 */
const repoRoot = path.resolve(import.meta.dirname, '..', '..', '..');
const script = path.join(repoRoot, 'scripts', 'build-worker.mjs');
const installed = path.join(
  repoRoot,
  'node_modules',
  'mediasoup',
  'worker',
  'out',
  'Release',
  'mediasoup-worker',
);

function run(env: Record<string, string>) {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'build-worker-test-'));
  const result = spawnSync(process.execPath, [script], {
    encoding: 'utf8',
    timeout: 120_000,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: scratch,
      TMPDIR: scratch,
      MEDIASOUP_OFFLINE: '1',
      MEDIASOUP_WORKER_CACHE: path.join(scratch, 'cache'),
      ...env,
    },
  });
  const cached = fs.existsSync(path.join(scratch, 'cache'));
  fs.rmSync(scratch, { recursive: true, force: true });
  return { status: result.status, output: `${result.stdout}${result.stderr}`, cached };
}

t.test(
  'MEDIASOUP_WORKER_BIN is used as is when it is a worker that runs here',
  { skip: !fs.existsSync(installed) && 'needs the installed worker (scripts/setup.sh)' },
  (t) => {
    const { status, output } = run({ MEDIASOUP_WORKER_BIN: installed });
    t.equal(status, 0, output);
    t.match(output, /using MEDIASOUP_WORKER_BIN/);
    t.end();
  },
);

t.test('MEDIASOUP_WORKER_BIN that is not a mediasoup worker is refused', (t) => {
  const { status, output } = run({ MEDIASOUP_WORKER_BIN: '/bin/true' });
  t.not(status, 0);
  t.match(output, /is not a mediasoup worker that runs here/);
  t.end();
});

t.test('offline with nothing cached and no MEDIASOUP_SOURCES: a clear failure, nothing cached', (t) => {
  const { status, output, cached } = run({});
  t.not(status, 0);
  t.match(output, /MEDIASOUP_SOURCES is not set/);
  t.notOk(cached, 'nothing written to the cache');
  t.end();
});

t.test('a source folder whose files differ from the pinned SHA-256 is refused before building', (t) => {
  const sources = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-sources-'));
  t.teardown(() => fs.rmSync(sources, { recursive: true, force: true }));
  fs.writeFileSync(path.join(sources, 'wrapdb-packagefiles.tar.gz'), 'not the pinned tarball');
  const { status, output, cached } = run({ MEDIASOUP_SOURCES: sources });
  t.not(status, 0);
  t.match(output, /wrapdb-packagefiles\.tar\.gz: SHA-256 differs from the pinned one/);
  t.notOk(cached, 'nothing written to the cache');
  t.end();
});

t.test('a relative MEDIASOUP_SOURCES resolves against the repository root', (t) => {
  const { status, output } = run({ MEDIASOUP_SOURCES: 'no-such-folder-here' });
  t.not(status, 0);
  t.match(
    output,
    new RegExp(`MEDIASOUP_SOURCES folder ${path.join(repoRoot, 'no-such-folder-here')} does not exist`),
  );
  t.end();
});

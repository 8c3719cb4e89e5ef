import t from 'tap';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { startTestServer } from '../support/server.js';

t.test('a worker killed with SIGKILL is replaced, and the metric and log say so', async (t) => {
  const logLines: string[] = [];
  const srv = await startTestServer({ media: { workers: 2 } });
  t.teardown(() => srv.stop());
  // Capture the pool's log lines through the server's logger (the test logger is silent otherwise).
  const pool = srv.server.pool;
  const died = once(pool, 'workerDied');
  const replaced = once(pool, 'workerReplaced');
  let diedCount = 0;
  pool.on('workerDied', (event) => {
    diedCount++;
    logLines.push(JSON.stringify(event));
  });
  const victim = pool.list()[0];
  t.ok(victim);
  const oldPid = victim!.worker.pid;
  process.kill(oldPid, 'SIGKILL');
  const [diedEvent] = (await died) as [{ index: number; pid: number }];
  t.equal(diedEvent.pid, oldPid, 'the died event names the killed worker');
  const [replacedEvent] = (await replaced) as [{ index: number; pid: number }];
  t.equal(replacedEvent.index, diedEvent.index, 'the replacement takes the same slot');
  t.not(replacedEvent.pid, oldPid);
  t.equal(pool.size, 2);
  t.ok(pool.allAlive, 'every slot has a live worker again');
  t.equal(diedCount, 1, 'died fires once');

  const metrics = await (await fetch(`${srv.url}/metrics`)).text();
  t.match(metrics, /^sfu_worker_deaths_total 1$/m, 'the death is counted');
  t.match(metrics, /^sfu_workers_alive 2$/m);
  const ready = await fetch(`${srv.url}/readyz`);
  t.equal(ready.status, 200, 'ready again once replaced');

  // The replacement serves rooms: a room can be created on it.
  const room = await srv.rest('POST', '/v1/rooms', {});
  t.equal(room.status, 201);
});

t.test('the pool logs the death with the worker index and pid', async (t) => {
  const { Writable } = await import('node:stream');
  const { createLogger } = await import('../../src/observability/logger.js');
  const { Metrics } = await import('../../src/observability/metrics.js');
  const { WorkerPool } = await import('../../src/media/workerPool.js');
  const { testConfig } = await import('../support/server.js');
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const pool = await WorkerPool.start(
    testConfig({ media: { workers: 1 } }).media,
    createLogger('info', sink),
    new Metrics(),
  );
  t.teardown(() => pool.close());
  const pid = pool.list()[0]!.worker.pid;
  const replaced = once(pool, 'workerReplaced');
  process.kill(pid, 'SIGKILL');
  await replaced;
  const died = lines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.msg === 'mediasoup worker died; replacing it');
  t.ok(died, 'a death line is logged');
  t.equal(died?.pid, pid);
  t.equal(died?.level, 'error');
});

/** The receive buffer of the UDP socket bound to `port`, as the kernel reports it (`ss -m`). */
async function udpReceiveBuffer(port: number): Promise<number | undefined> {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { stdout } = await promisify(execFile)('ss', ['-u', '-a', '-n', '-m', `sport = :${port}`]);
  const match = /skmem:\([^)]*\brb(\d+)/.exec(stdout);
  return match ? Number(match[1]) : undefined;
}

const noSs = !existsSync('/usr/bin/ss') && !existsSync('/bin/ss') ? 'ss (iproute2) is not installed' : false;

t.test("the WebRtcServer's UDP socket gets the configured receive buffer", { skip: noSs }, async (t) => {
  const { Metrics } = await import('../../src/observability/metrics.js');
  const { WorkerPool } = await import('../../src/media/workerPool.js');
  const { createLogger } = await import('../../src/observability/logger.js');
  const { testConfig } = await import('../support/server.js');
  const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
  const rmemDefault = Number(readFileSync('/proc/sys/net/core/rmem_default', 'utf8'));
  // Within the kernel's cap; doubled by the kernel, it differs from the default.
  const wanted = Math.min(rmemMax, 1 << 20);

  for (const [bytes, expected, what] of [
    [wanted, wanted * 2, 'the requested size (the kernel doubles it for its bookkeeping)'],
    [0, rmemDefault, 'the kernel default when the setting is 0'],
  ] as const) {
    const config = testConfig({ media: { workers: 1, udpReceiveBufferBytes: bytes } }).media;
    const pool = await WorkerPool.start(config, createLogger('silent'), new Metrics());
    try {
      t.equal(await udpReceiveBuffer(config.webRtcServerPort), expected, what);
    } finally {
      await pool.close();
    }
  }
});

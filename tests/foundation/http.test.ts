import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { startTestServer } from '../support/server.js';

t.test('healthz and readyz answer 200; metrics show one worker-level series per worker', async (t) => {
  const srv = await startTestServer({ media: { workers: 2 } });
  t.teardown(() => srv.stop());
  t.equal((await fetch(`${srv.url}/healthz`)).status, 200);
  const ready = await fetch(`${srv.url}/readyz`);
  t.equal(ready.status, 200);
  t.same(await ready.json(), { ready: true, draining: false, workers: 2 });
  const metrics = await (await fetch(`${srv.url}/metrics`)).text();
  const cpuSeries = metrics.split('\n').filter((l) => l.startsWith('sfu_worker_cpu_seconds{'));
  t.equal(cpuSeries.length, 2, 'one CPU series per worker');
  t.equal(metrics.split('\n').filter((l) => l.startsWith('sfu_worker_max_rss_bytes{')).length, 2);
  for (const name of [
    'sfu_rooms',
    'sfu_transports',
    'sfu_ws_connections',
    'sfu_process_cpu_user_seconds_total',
  ]) {
    t.match(metrics, new RegExp(`^${name}`, 'm'), `${name} is exported`);
  }
});

t.test('draining turns readiness false and refuses new rooms', async (t) => {
  const srv = await startTestServer();
  t.teardown(() => srv.stop());
  const drain = await srv.rest('POST', '/admin/drain');
  t.equal(drain.status, 202);
  const ready = await fetch(`${srv.url}/readyz`);
  t.equal(ready.status, 503);
  const room = await srv.rest<{ code: string }>('POST', '/v1/rooms', {});
  t.equal(room.status, 503);
  t.equal(room.body.code, 'SERVER_DRAINING');
  t.equal((await fetch(`${srv.url}/healthz`)).status, 200, 'still alive while draining');
});

t.test('the OpenAPI document is served', async (t) => {
  const srv = await startTestServer();
  t.teardown(() => srv.stop());
  const doc = (await (await fetch(`${srv.url}/openapi.json`)).json()) as {
    openapi: string;
    paths: Record<string, unknown>;
  };
  t.equal(doc.openapi, '3.1.0');
  t.ok(doc.paths['/v1/rooms/{roomId}/invitations']);
});

t.test(
  'the server process starts on its defaults, then SIGTERM waits for rooms up to the deadline and exits 0',
  async (t) => {
    const main = fileURLToPath(new URL('../../src/main.js', import.meta.url));
    const child = spawn(process.execPath, [main], {
      env: {
        ...process.env,
        SFU_SERVER__PORT: '0',
        SFU_MEDIA__WORKERS: '1',
        SFU_MEDIA__WEB_RTC_SERVER_PORT: '0',
        SFU_SERVER__SHUTDOWN_DEADLINE_S: '1',
        SFU_AUTH__API_KEYS: '["sigterm-test-key-0123456789"]',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.teardown(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    while (!/"msg":"server listening"/.test(out)) {
      await once(child.stdout, 'data');
    }
    const url = (
      JSON.parse(out.split('\n').find((l) => l.includes('server listening')) ?? '{}') as { url: string }
    ).url;
    const room = await fetch(`${url}/v1/rooms`, {
      method: 'POST',
      headers: { Authorization: 'Bearer sigterm-test-key-0123456789' },
    });
    t.equal(room.status, 201);
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number];
    t.equal(code, 0, 'exits cleanly');
    t.match(out, /draining: no new rooms or joins/);
    t.match(out, /shutdown deadline reached; ending rooms/, 'waited for the open room up to the deadline');
    t.match(out, /server stopped/);
  },
);

t.test(
  "the try-it page's unauthenticated demo endpoint is on only on loopback unless configured",
  async (t) => {
    const { SfuServer } = await import('../../src/server.js');
    const { testConfig } = await import('../support/server.js');
    const on = (server: Record<string, unknown>) => new SfuServer(testConfig({ server })).demoEnabled;
    t.equal(on({ listenHost: '127.0.0.1' }), true, 'auto: on loopback');
    t.equal(on({ listenHost: '0.0.0.0' }), false, 'auto: off on every interface');
    t.equal(on({ listenHost: '0.0.0.0', demoPage: true }), true, 'explicitly on');
    t.equal(on({ listenHost: '127.0.0.1', demoPage: false }), false, 'explicitly off');
  },
);

t.test('REST refusals are counted by code', async (t) => {
  const srv = await startTestServer();
  t.teardown(() => srv.stop());
  t.equal((await fetch(`${srv.url}/v1/rooms`)).status, 401);
  t.equal((await srv.rest('GET', '/v1/rooms/nope')).status, 404);
  const metrics = await (await fetch(`${srv.url}/metrics`)).text();
  t.match(metrics, /^sfu_rejections_total\{code="API_KEY_INVALID"\} 1$/m);
  t.match(metrics, /^sfu_rejections_total\{code="NOT_FOUND"\} 1$/m);
});

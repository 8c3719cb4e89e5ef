import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startPhoneServer } from './fixtures/phoneServer.js';
import { phoneStream, writeRtpPcap } from './fixtures/pcap.js';
import { until } from './fixtures/roomFixture.js';
import { freeUdpPort, runSipp } from './fixtures/sipp.js';

/** Settings documented in docs/phone.md, set through the server configuration, change behaviour. */
void t.test('documented phone settings take effect', async (t) => {
  const srv = await startPhoneServer({ ringTimeoutS: 5, pinMaxAttemptsPerCall: 1, maxCalls: 1 });
  t.teardown(() => srv.stop());
  const gateway = srv.server.phone!;
  const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', {})).body.id;

  await t.test('phone.ringTimeoutS and phone.maxCalls', async (t) => {
    const port = await freeUdpPort();
    const sipp = runSipp({
      scenario: 'callee-cancelled.xml',
      localPort: port,
      mediaPort: await freeUdpPort(),
      values: { WAIT_MS: 30000 },
      timeoutS: 40,
    });
    t.teardown(() => sipp.kill());
    await new Promise((resolve) => setTimeout(resolve, 300));
    const to = `sip:+33600000001@127.0.0.1:${port}`;
    const call = await srv.rest<{ callId: string }>('POST', `/v1/rooms/${roomId}/phone-calls`, { to });
    t.equal(call.status, 201);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const second = await srv.rest<{ callId: string }>('POST', `/v1/rooms/${roomId}/phone-calls`, { to });
    t.ok(
      await until(() => gateway.callStatus(second.body.callId)?.state === 'failed', 5000),
      'with maxCalls 1, a second call fails at once',
    );
    t.match(gateway.callStatus(second.body.callId), { reason: 'busy-here' });
    const run = await sipp.done;
    t.equal(run.exitCode, 0, run.exitCode === 0 ? 'the ringing phone got a CANCEL' : run.output);
    t.match(gateway.callStatus(call.body.callId), { state: 'failed', reason: 'no-answer' });
  });

  await t.test('phone.pinMaxAttemptsPerCall', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phone-settings-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const pcap = path.join(dir, 'wrong.pcap');
    const keys = ['11111111#', '22222222#'].flatMap((pin, n) =>
      [...pin].map((digit, i) => ({ digit, atMs: 600 + n * 3000 + i * 200 })),
    );
    writeRtpPcap(pcap, phoneStream({ durationMs: 8000, keys, voice: false }));
    const sipp = runSipp({
      scenario: 'dial-in-hung-up.xml',
      remote: `127.0.0.1:${gateway.sipPorts.udp}`,
      localPort: await freeUdpPort(),
      mediaPort: await freeUdpPort(),
      values: { PCAP: pcap, CALLER: '0666666666', WAIT_MS: 20000 },
      timeoutS: 30,
    });
    t.teardown(() => sipp.kill());
    const run = await sipp.done;
    t.equal(run.exitCode, 0, run.exitCode === 0 ? 'the gateway hung up' : run.output);
    const rejected = (await srv.server.metrics.sipPinAttempts.get()).values.find(
      (v) => v.labels.outcome === 'rejected',
    );
    t.equal(rejected?.value, 1, 'after one wrong PIN, not the default three');
  });
});

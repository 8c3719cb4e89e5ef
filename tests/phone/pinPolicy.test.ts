import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startPhoneServer } from './fixtures/phoneServer.js';
import type { Counter, Gauge } from 'prom-client';
import { phoneStream, writeRtpPcap } from './fixtures/pcap.js';
import { until } from './fixtures/roomFixture.js';
import { freeUdpPort, runSipp } from './fixtures/sipp.js';

async function total(metric: Counter | Gauge, labels: Record<string, string> = {}): Promise<number> {
  const values = (await metric.get()).values.filter((v) =>
    Object.entries(labels).every(([k, value]) => v.labels[k] === value),
  );
  return values.reduce((sum, v) => sum + v.value, 0);
}

/** Keys for the given PINs, each followed by '#', typed ahead from `fromMs`, then '1' every second. */
function keysFor(pins: string[], fromMs: number, consentUntilMs = 0): { digit: string; atMs: number }[] {
  const keys = pins.flatMap((pin, n) =>
    [...`${pin}#`].map((digit, i) => ({ digit, atMs: fromMs + n * 3000 + i * 200 })),
  );
  for (let atMs = fromMs + pins.length * 3000; atMs < consentUntilMs; atMs += 1000)
    keys.push({ digit: '1', atMs });
  return keys;
}

void t.test('PIN policy through the real server', async (t) => {
  const srv = await startPhoneServer({ maxCalls: 40 });
  t.teardown(() => srv.stop());
  const gateway = srv.server.phone!;
  const { metrics } = srv.server;
  const remote = `127.0.0.1:${gateway.sipPorts.udp}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phone-pin-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: true } }))
    .body.id;
  const invite = async (participantId: string) =>
    (
      await srv.rest<{ accessCode: string }>('POST', `/v1/rooms/${roomId}/invitations`, {
        role: 'patient',
        participantId,
      })
    ).body.accessCode;
  const present = async (participantId: string) =>
    (await srv.rest<{ id: string }[]>('GET', `/v1/rooms/${roomId}/participants`)).body.some(
      (p) => p.id === participantId,
    );
  const wrong = (code: string, n: number) => String((Number(code) + 1 + n * 7919) % 1e8).padStart(8, '0');

  await t.test(
    'three wrong PINs in one call, then two wrong and the right one in the next call: the caller gets in',
    async (t) => {
      const code = await invite('phone-persistent');
      const first = path.join(dir, 'three-wrong.pcap');
      writeRtpPcap(
        first,
        phoneStream({
          durationMs: 12000,
          keys: keysFor(
            [0, 1, 2].map((n) => wrong(code, n)),
            600,
          ),
          voice: false,
        }),
      );
      const call1 = runSipp({
        scenario: 'dial-in-hung-up.xml',
        remote,
        localPort: await freeUdpPort(),
        mediaPort: await freeUdpPort(),
        values: { PCAP: first, CALLER: '0611111111', WAIT_MS: 30000 },
        timeoutS: 45,
      });
      t.teardown(() => call1.kill());
      const run1 = await call1.done;
      t.equal(run1.exitCode, 0, run1.exitCode === 0 ? 'hung up after three wrong PINs' : run1.output);

      const second = path.join(dir, 'two-wrong-then-right.pcap');
      writeRtpPcap(
        second,
        phoneStream({
          durationMs: 45000,
          keys: keysFor([wrong(code, 3), wrong(code, 4), code], 600, 44000),
          voice: true,
        }),
      );
      const call2 = runSipp({
        scenario: 'dial-in.xml',
        remote,
        localPort: await freeUdpPort(),
        mediaPort: await freeUdpPort(),
        values: { PCAP: second, RTP_PORT: await freeUdpPort(), CALLER: '0611111111', CALL_MS: 46000 },
        timeoutS: 80,
      });
      t.teardown(() => call2.kill());
      t.ok(
        await until(() => present('phone-persistent'), 45000),
        'the sixth PIN of that number, the right one, is accepted: it waits in the room',
      );
      call2.kill();
    },
  );

  await t.test(
    'a flood of wrong PINs from many caller numbers slows callers down but lets a caller with a valid PIN in within 60 s',
    async (t) => {
      const code = await invite('phone-legit');
      const floodPcap = path.join(dir, 'flood.pcap');
      const guesses = [0, 1, 2].map(() => String(crypto.randomInt(0, 1e8)).padStart(8, '0'));
      writeRtpPcap(floodPcap, phoneStream({ durationMs: 10000, keys: keysFor(guesses, 600), voice: false }));
      // Forged caller numbers: a different random one for every call (sipp injection file).
      const numbers = path.join(dir, 'numbers.csv');
      fs.writeFileSync(
        numbers,
        `SEQUENTIAL\n${Array.from({ length: 60 }, () => `06${crypto.randomInt(0, 1e8).toString().padStart(8, '0')};`).join('\n')}\n`,
      );
      const flood = runSipp({
        scenario: 'dial-in-hung-up.xml',
        remote,
        localPort: await freeUdpPort(),
        mediaPort: await freeUdpPort(),
        values: { PCAP: floodPcap, CALLER: '[field0]', WAIT_MS: 150000 },
        calls: 60,
        timeoutS: 200,
        extraArgs: ['-inf', numbers, '-l', '20', '-r', '5'],
      });
      t.teardown(() => flood.kill());
      // Start the legitimate call once the flood is beyond what the budget lets through at once
      // (or, without a budget, beyond the old global lockout threshold of 100 wrong PINs).
      await until(
        async () =>
          (await total(metrics.sipPinAttempts, { outcome: 'rejected' })) >= 100 ||
          (await total(metrics.sipPinThrottled)) >= 10,
        60000,
      );
      t.equal(await total(metrics.sipPinBudgetExhausted), 1, 'the budget-exhausted alert is raised');

      const legitPcap = path.join(dir, 'legit.pcap');
      writeRtpPcap(
        legitPcap,
        phoneStream({ durationMs: 70000, keys: keysFor([code], 600, 69000), voice: true }),
      );
      const startedAt = Date.now();
      const legit = runSipp({
        scenario: 'dial-in.xml',
        remote,
        localPort: await freeUdpPort(),
        mediaPort: await freeUdpPort(),
        values: { PCAP: legitPcap, RTP_PORT: await freeUdpPort(), CALLER: '0622222222', CALL_MS: 70000 },
        timeoutS: 100,
      });
      t.teardown(() => legit.kill());
      const admittedToWaitingRoom = await until(() => present('phone-legit'), 60000);
      t.ok(admittedToWaitingRoom, 'the caller with the valid PIN reaches the waiting room within 60 s');
      t.comment(`legitimate caller waited ${Math.round((Date.now() - startedAt) / 1000)} s during the flood`);
      t.ok((await total(metrics.sipPinThrottled)) > 0, 'flooded checks waited for the budget');
      t.equal(await total(metrics.sipPinLockouts), 0, 'nobody was locked out: every number was new');
      legit.kill();
      flood.kill();
    },
  );
});

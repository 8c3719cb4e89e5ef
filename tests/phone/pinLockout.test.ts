import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Counter } from 'prom-client';
import { beepPrompts, startGateway } from './fixtures/gatewayFixture.js';
import { phoneStream, writeRtpPcap } from './fixtures/pcap.js';
import { FixtureRoomPort } from './fixtures/roomFixture.js';
import { freeUdpPort, runSipp } from './fixtures/sipp.js';

async function countsBy(counter: Counter, label: string): Promise<Record<string, number>> {
  const values = (await counter.get()).values;
  return Object.fromEntries(values.map((v) => [String(v.labels[label]), v.value]));
}

void t.test(
  'wrong PINs: three per call then a hang-up, then that caller number is locked out, and nobody else',
  async (t) => {
    const room = await FixtureRoomPort.create();
    t.teardown(() => room.close());
    room.pins.set('1234', { roomId: 'room-1', participantId: 'phone-1', role: 'patient' });
    const { gateway, metrics } = await startGateway(
      room,
      {
        pin: {
          length: 4,
          maxAttemptsPerCall: 3,
          callerMaxFailures: 5,
          callerWindowS: 600,
          callerLockoutS: 600,
        },
      },
      beepPrompts(),
    );
    t.teardown(() => gateway.close());
    const remote = `127.0.0.1:${gateway.sipPorts.udp}`;

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phone-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const pcap = path.join(dir, 'wrong-pins.pcap');
    // Three wrong 4-digit PINs, each followed by '#' (ignored: the PIN is complete at 4 digits).
    const keys = ['9999#', '8888#', '7777#'].flatMap((pin, n) =>
      [...pin].map((digit, i) => ({ digit, atMs: 600 + n * 1800 + i * 250 })),
    );
    writeRtpPcap(pcap, phoneStream({ durationMs: 7000, keys, voice: false }));

    const callUntilHangup = async (caller: string) => {
      const sipp = runSipp({
        scenario: 'dial-in-hung-up.xml',
        remote,
        localPort: await freeUdpPort(),
        mediaPort: await freeUdpPort(),
        values: { PCAP: pcap, CALLER: caller, WAIT_MS: 15000 },
        timeoutS: 30,
      });
      t.teardown(() => sipp.kill());
      return sipp.done;
    };
    const refusedInvite = async (caller: string, status: number) => {
      const sipp = runSipp({
        scenario: 'rejected-invite.xml',
        remote,
        localPort: await freeUdpPort(),
        mediaPort: await freeUdpPort(),
        values: { CALLER: caller, STATUS: status },
        timeoutS: 15,
      });
      t.teardown(() => sipp.kill());
      return sipp.done;
    };
    const attempts = () => countsBy(metrics.sipPinAttempts, 'outcome');

    const first = await callUntilHangup('0600000001');
    t.equal(
      first.exitCode,
      0,
      first.exitCode === 0 ? 'the gateway hangs up after three wrong PINs' : first.output,
    );
    t.same(
      room.pinLookups.map((l) => l.pin),
      ['9999', '8888', '7777'],
    );
    t.same(await attempts(), { rejected: 3 });

    const second = await callUntilHangup('0600000001');
    t.equal(
      second.exitCode,
      0,
      second.exitCode === 0 ? 'the same caller is hung up at the lockout' : second.output,
    );
    t.equal(room.pinLookups.length, 5, 'the lockout starts at the fifth wrong PIN of that caller');

    const third = await refusedInvite('0600000001', 403);
    t.equal(
      third.exitCode,
      0,
      third.exitCode === 0 ? 'a locked-out caller is refused with 403' : third.output,
    );

    const other = await callUntilHangup('0600000002');
    t.equal(
      other.exitCode,
      0,
      other.exitCode === 0 ? 'a second caller is hung up after their wrong PINs' : other.output,
    );
    t.equal(room.pinLookups.length, 8, 'another caller still gets to try');

    const anonymous = await callUntilHangup('anonymous');
    t.equal(
      anonymous.exitCode,
      0,
      anonymous.exitCode === 0 ? 'an anonymous caller may try' : anonymous.output,
    );
    const anonymousAgain = await callUntilHangup('anonymous');
    t.equal(
      anonymousAgain.exitCode,
      0,
      anonymousAgain.exitCode === 0
        ? 'anonymous callers are not locked out by number (that would lock out all of them)'
        : anonymousAgain.output,
    );
    t.equal(room.pinLookups.length, 14, 'every caller but the locked-out number still gets to try');

    t.same(await attempts(), { rejected: 14 });
    const lockouts = await countsBy(metrics.sipPinLockouts, 'scope');
    t.same(lockouts, { caller: 1 });
    t.same(room.consents, [], 'nobody reached the consent step');
    t.same(room.participants.size, 0, 'nobody joined the room');
  },
);

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { beepPrompts, startGateway } from './fixtures/gatewayFixture.js';
import { phoneStream, writeRtpPcap } from './fixtures/pcap.js';
import { FixtureRoomPort, until } from './fixtures/roomFixture.js';
import { freeUdpPort, runSipp } from './fixtures/sipp.js';

void t.test(
  'dial-out calls sipp as the phone through a digest-authenticated trunk and completes the call',
  async (t) => {
    const room = await FixtureRoomPort.create();
    t.teardown(() => room.close());
    const { gateway } = await startGateway(
      room,
      { trunk: { authUsername: 'gateway-user', authPassword: 's3cret-pass' } },
      beepPrompts(),
    );
    t.teardown(() => gateway.close());

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phone-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const pcap = path.join(dir, 'answer.pcap');
    const keys = Array.from({ length: 10 }, (_, i) => ({ digit: '1', atMs: 800 + i * 500 }));
    writeRtpPcap(pcap, phoneStream({ durationMs: 12000, keys, voice: true }));

    const phonePort = await freeUdpPort();
    const sipp = runSipp({
      scenario: 'called-phone.xml',
      localPort: phonePort,
      mediaPort: await freeUdpPort(),
      values: {
        PCAP: pcap,
        USER: 'gateway-user',
        PASSWORD: 's3cret-pass',
        NONCE: 'nonce-4f2a',
        WAIT_MS: 20000,
      },
      timeoutS: 40,
    });
    t.teardown(() => sipp.kill());
    await new Promise((resolve) => setTimeout(resolve, 300)); // sipp binds its port

    const call = gateway.dialOut({
      to: `sip:+33612345678@127.0.0.1:${phonePort}`,
      roomId: 'room-9',
      participantId: 'phone-9',
    });
    await t.resolves(call.answered, 'the phone answers after the gateway authenticated with the trunk');

    const flowing = await until(async () => {
      const producer = room.participants.get('phone-9')?.producer;
      if (!producer || producer.closed) return false;
      return (await producer.getStats()).some((s) => s.packetCount > 25);
    }, 15000);
    t.ok(
      flowing,
      "after the key 1, the called phone joins the room and its producer receives the phone's audio",
    );
    t.match(room.consents, [
      { roomId: 'room-9', participantId: 'phone-9', accepted: true, direction: 'dial-out' },
    ]);

    gateway.hangup(call.callId);
    const run = await sipp.done;
    t.equal(
      run.exitCode,
      0,
      run.exitCode === 0 ? 'sipp saw the whole call, ending with our BYE' : run.output,
    );
    await until(() => room.leaves.length > 0, 2000);
    t.match(room.leaves, [{ participantId: 'phone-9', reason: 'ended' }]);
  },
);

void t.test('dial-out to a phone that never answers fails without leaving a call behind', async (t) => {
  const room = await FixtureRoomPort.create();
  t.teardown(() => room.close());
  const { gateway } = await startGateway(room, { ringTimeoutS: 2 }, beepPrompts());
  t.teardown(() => gateway.close());
  const silent = await freeUdpPort(); // nothing listens there
  const call = gateway.dialOut({ to: `sip:0600000000@127.0.0.1:${silent}`, roomId: 'r', participantId: 'p' });
  await t.rejects(call.answered, { name: 'DialOutError' });
  t.equal(gateway.activeCalls, 0);
  const invalid = await gateway
    .dialOut({ to: 'mailto:x', roomId: 'r', participantId: 'p' })
    .answered.catch((error: unknown) => error);
  t.match(
    invalid,
    { name: 'DialOutError', reason: 'invalid-target' },
    'a target that is not a SIP URI is refused',
  );
});

void t.test('the gateway registers with digest authentication and unregisters when it closes', async (t) => {
  const room = await FixtureRoomPort.create();
  t.teardown(() => room.close());
  const registrarPort = await freeUdpPort();
  const sipp = runSipp({
    scenario: 'registrar.xml',
    localPort: registrarPort,
    mediaPort: await freeUdpPort(),
    values: { USER: 'gw', PASSWORD: 'reg-pass', NONCE: 'n0nce' },
    timeoutS: 20,
  });
  t.teardown(() => sipp.kill());
  await new Promise((resolve) => setTimeout(resolve, 300));
  const { gateway, metrics } = await startGateway(
    room,
    {
      trunk: { allowedSources: [], authUsername: 'gw', authPassword: 'reg-pass' },
      registration: {
        registrar: `sip:127.0.0.1:${registrarPort}`,
        aor: 'sip:gw@registrar.test',
        expiresS: 600,
      },
    },
    beepPrompts(),
  );
  t.teardown(() => gateway.close());
  t.ok(await until(() => gateway.isRegistered, 5000), 'the registration succeeds');
  t.equal((await metrics.sipRegistered.get()).values[0]?.value, 1);
  await gateway.close();
  const run = await sipp.done;
  t.equal(
    run.exitCode,
    0,
    run.exitCode === 0
      ? 'the registrar saw REGISTER, the authenticated REGISTER and the un-REGISTER'
      : run.output,
  );
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { types } from 'mediasoup';
import { startPhoneServer } from './fixtures/phoneServer.js';
import { phoneStream, writeRtpPcap } from './fixtures/pcap.js';
import { beepPrompts, startGateway } from './fixtures/gatewayFixture.js';
import { FixtureRoomPort, until } from './fixtures/roomFixture.js';
import { freeUdpPort, runSipp } from './fixtures/sipp.js';

async function packetsOf(producers: Iterable<types.Producer>): Promise<number> {
  let packets = 0;
  for (const producer of producers) {
    if (producer.closed) continue;
    for (const stat of await producer.getStats()) packets += stat.packetCount;
  }
  return packets;
}

void t.test(
  "when the room's worker is killed, the phone leg follows the room to its new router",
  async (t) => {
    const srv = await startPhoneServer({}, { media: { workers: 2 } });
    t.teardown(() => srv.stop());
    const gateway = srv.server.phone!;
    const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } }))
      .body.id;
    const { accessCode } = (
      await srv.rest<{ accessCode: string }>('POST', `/v1/rooms/${roomId}/invitations`, {
        role: 'patient',
        participantId: 'phone-patient',
      })
    ).body;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phone-worker-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const pcap = path.join(dir, 'phone.pcap');
    const keys = [...`${accessCode}#`].map((digit, i) => ({ digit, atMs: 800 + i * 200 }));
    for (let atMs = 4000; atMs < 30000; atMs += 1000) keys.push({ digit: '1', atMs });
    writeRtpPcap(pcap, phoneStream({ durationMs: 80000, keys, voice: true }));
    const sipp = runSipp({
      scenario: 'dial-in.xml',
      remote: `127.0.0.1:${gateway.sipPorts.udp}`,
      localPort: await freeUdpPort(),
      mediaPort: await freeUdpPort(),
      values: { PCAP: pcap, RTP_PORT: await freeUdpPort(), CALLER: '0644444444', CALL_MS: 81000 },
      timeoutS: 120,
    });
    t.teardown(() => sipp.kill());

    const room = srv.server.rooms.get(roomId)!;
    const phone = () => room.participants.get('phone-patient');
    t.ok(
      await until(async () => (await packetsOf(phone()?.producers.values() ?? [])) > 25, 45000),
      "admitted without a waiting room, the phone's producer receives its audio",
    );
    const [callId] = [...(gateway as unknown as { calls: Map<string, unknown> }).calls.keys()];
    const before = room.currentRouter;
    const pid = room.workerPid!;
    process.kill(pid, 'SIGKILL');
    t.ok(
      await until(() => room.currentRouter !== before && !room.currentRouter.closed, 20000),
      'the room moved',
    );
    const producerOnNewRouter = await until(async () => {
      const producers = [...(phone()?.producers.values() ?? [])];
      return producers.length > 0 && (await packetsOf(producers)) > 25;
    }, 20000);
    t.ok(producerOnNewRouter, "the phone's audio reaches the room again, on the new worker");
    t.ok(
      await until(() => gateway.callStatus(callId as string)?.state === 'in-call', 15000),
      `the call is still up (${gateway.callStatus(callId as string)?.state})`,
    );
    t.equal(gateway.activeCalls, 1);
    sipp.kill();
  },
);

void t.test(
  "when the room's worker dies and the room never comes back, the call ends after the wait (BYE, leave 'error')",
  async (t) => {
    const room = await FixtureRoomPort.create();
    t.teardown(() => room.close());
    room.pins.set('86420864', { roomId: 'room-lost', participantId: 'phone-lost', role: 'patient' });
    const { gateway } = await startGateway(room, {}, beepPrompts());
    t.teardown(() => gateway.close());
    let callId = '';
    gateway.on('callStarted', (started) => (callId = started.callId));
    const states: string[] = [];
    gateway.on('callState', ({ state }) => states.push(state));
    const ended = new Promise<{ reason: string; at: number }>((resolve) =>
      gateway.on('callEnded', ({ reason }) => resolve({ reason, at: Date.now() })),
    );

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phone-room-lost-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const pcap = path.join(dir, 'phone.pcap');
    const keys = [...'86420864#'].map((digit, i) => ({ digit, atMs: 800 + i * 200 }));
    for (let atMs = 4000; atMs < 9000; atMs += 700) keys.push({ digit: '1', atMs });
    writeRtpPcap(pcap, phoneStream({ durationMs: 45000, keys, voice: true }));
    const sipp = runSipp({
      scenario: 'dial-in-hung-up.xml',
      remote: `127.0.0.1:${gateway.sipPorts.udp}`,
      localPort: await freeUdpPort(),
      mediaPort: await freeUdpPort(),
      values: { PCAP: pcap, RTP_PORT: await freeUdpPort(), CALLER: '0633333333', WAIT_MS: 60000 },
      timeoutS: 90,
    });
    t.teardown(() => sipp.kill());

    const stats = () => gateway.callMediaStats(callId);
    t.ok(
      await until(() => states.includes('in-call') && (stats()?.relayedToRoom ?? 0) > 25, 20000),
      "in the call, the phone's audio relayed to the room",
    );
    process.kill(room.worker.pid, 'SIGKILL');
    const killedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const relayedAfterDeath = stats()?.relayedToRoom ?? 0;
    const heardAfterDeath = stats()?.fromPhone ?? 0;
    await new Promise((resolve) => setTimeout(resolve, 4000));
    t.ok((stats()?.fromPhone ?? 0) > heardAfterDeath + 100, 'the phone keeps sending');
    t.equal(stats()?.relayedToRoom, relayedAfterDeath, 'nothing is relayed into the dead transport');
    t.equal(gateway.callStatus(callId)?.state, 'in-call', 'the call waits for the room meanwhile');

    const { reason, at } = await ended;
    t.equal(reason, 'error', 'the call ended as an error');
    t.ok(at - killedAt >= 14000, `after the 15 s wait for the room (${at - killedAt} ms)`);
    const run = await sipp.done;
    t.equal(run.exitCode, 0, run.exitCode === 0 ? 'the phone got the BYE and answered it' : run.output);
    t.same(
      room.leaves.map((leave) => [leave.participantId, leave.reason]),
      [['phone-lost', 'error']],
      'the room was told once',
    );
  },
);

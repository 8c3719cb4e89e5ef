import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { types } from 'mediasoup';
import { startPhoneServer } from './fixtures/phoneServer.js';
import { phoneStream, writeRtpPcap } from './fixtures/pcap.js';
import { until } from './fixtures/roomFixture.js';
import { freeUdpPort, runSipp, sippAvailable } from './fixtures/sipp.js';
import type { TestServer } from '../support/server.js';

/**
 * The room owns the phone leg's plain transport like a WebRTC one (docs/closures.md): removing
 * the phone participant or ending the room closes it at once, on the server's side, before the
 * gateway has played its goodbye; the phone then gets a BYE.
 */
const skip = !sippAvailable() ? 'sipp is not installed (scripts/setup.sh installs it)' : false;

/** Dials in with a patient's code to a room without a waiting room; resolves once it publishes. */
async function dialInAdmitted(t: Test, srv: TestServer, roomId: string) {
  const gateway = srv.server.phone!;
  const { accessCode } = (
    await srv.rest<{ accessCode: string }>('POST', `/v1/rooms/${roomId}/invitations`, {
      role: 'patient',
      participantId: 'phone-patient',
    })
  ).body;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phone-owned-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pcap = path.join(dir, 'phone.pcap');
  const keys = [...`${accessCode}#`].map((digit, i) => ({ digit, atMs: 800 + i * 200 }));
  for (let atMs = 4000; atMs < 30000; atMs += 1000) keys.push({ digit: '1', atMs });
  writeRtpPcap(pcap, phoneStream({ durationMs: 40000, keys, voice: true }));
  // The phone never hangs up: it waits for the gateway's BYE and answers it.
  const sipp = runSipp({
    scenario: 'dial-in-hung-up.xml',
    remote: `127.0.0.1:${gateway.sipPorts.udp}`,
    localPort: await freeUdpPort(),
    mediaPort: await freeUdpPort(),
    values: { PCAP: pcap, RTP_PORT: await freeUdpPort(), CALLER: '0655555555', WAIT_MS: 60000 },
    timeoutS: 90,
  });
  t.teardown(() => sipp.kill());
  const room = srv.server.rooms.get(roomId)!;
  const phone = () => room.participants.get('phone-patient');
  const publishing = await until(() => (phone()?.producers.size ?? 0) > 0, 45000);
  t.ok(publishing, 'the phone participant is admitted and publishes');
  return { sipp, room, participant: phone()! };
}

async function transportsOn(router: types.Router): Promise<string[]> {
  return (await router.dump()).transportIds;
}

void t.test(
  'removing a phone participant closes its plain transport at once, and the phone gets a BYE',
  { skip },
  async (t) => {
    const srv = await startPhoneServer();
    t.teardown(() => srv.stop());
    const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } }))
      .body.id;
    const { sipp, room, participant } = await dialInAdmitted(t, srv, roomId);
    const router = room.currentRouter;
    t.equal(
      (await transportsOn(router)).length,
      1,
      "the phone leg's plain transport is on the room's router",
    );
    t.equal(participant.plainTransports.size, 1, "and is the participant's own");

    const removed = await srv.rest('DELETE', `/v1/rooms/${roomId}/participants/phone-patient`);
    t.equal(removed.status, 204, 'removed by REST');
    t.same(await transportsOn(router), [], 'no transport is left on the router when REST answers');
    t.equal(participant.plainTransports.size, 0, 'the participant holds none');
    const run = await sipp.done;
    t.equal(run.exitCode, 0, run.exitCode === 0 ? 'the phone got the BYE and answered it' : run.output);
    t.equal(srv.server.phone!.activeCalls, 0, 'the call is over');
  },
);

void t.test('ending the room closes the phone leg and the phone gets a BYE', { skip }, async (t) => {
  const srv = await startPhoneServer();
  t.teardown(() => srv.stop());
  const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } }))
    .body.id;
  const { sipp, room, participant } = await dialInAdmitted(t, srv, roomId);
  const [plain] = [...participant.plainTransports.values()];
  t.ok(plain, 'the phone leg has its plain transport');
  const ended = await srv.rest('DELETE', `/v1/rooms/${roomId}`);
  t.equal(ended.status, 204, 'the room ended by REST');
  t.equal(plain?.closed, true, 'its plain transport is closed');
  t.equal(room.currentRouter.closed, true, "and the room's router");
  const run = await sipp.done;
  t.equal(run.exitCode, 0, run.exitCode === 0 ? 'the phone got the BYE and answered it' : run.output);
  t.equal(srv.server.phone!.activeCalls, 0, 'the call is over');
});

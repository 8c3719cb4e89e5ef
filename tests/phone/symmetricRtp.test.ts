import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { beepPrompts, startGateway } from './fixtures/gatewayFixture.js';
import { phoneStream, writeRtpPcap } from './fixtures/pcap.js';
import { FixtureRoomPort, until } from './fixtures/roomFixture.js';
import { freeUdpPort, runSipp } from './fixtures/sipp.js';

/**
 * A phone behind NAT: its SDP says 127.0.0.2, its RTP comes from 127.0.0.1 (sipp's media address).
 * Only with symmetric RTP does the gateway hear it (and then send back to where it came from).
 */
for (const symmetric of [true, false]) {
  void t.test(
    symmetric
      ? 'with symmetric RTP, media from another address than the SDP one is latched onto and heard'
      : 'without symmetric RTP, media from another address than the SDP one is dropped',
    async (t) => {
      const room = await FixtureRoomPort.create();
      t.teardown(() => room.close());
      room.pins.set('24681357', { roomId: 'room-nat', participantId: 'phone-nat', role: 'patient' });
      const { gateway } = await startGateway(room, { rtp: { symmetric } }, beepPrompts());
      t.teardown(() => gateway.close());

      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phone-nat-'));
      t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
      const pcap = path.join(dir, 'nat.pcap');
      const keys = [...'24681357#'].map((digit, i) => ({ digit, atMs: 600 + i * 200 }));
      for (let atMs = 3000; atMs < 9000; atMs += 500) keys.push({ digit: '1', atMs });
      writeRtpPcap(pcap, phoneStream({ durationMs: 10000, keys, voice: true }));
      const sipp = runSipp({
        scenario: 'dial-in-nat.xml',
        remote: `127.0.0.1:${gateway.sipPorts.udp}`,
        localPort: await freeUdpPort(),
        mediaPort: await freeUdpPort(),
        values: {
          PCAP: pcap,
          SDP_IP: '127.0.0.2',
          RTP_PORT: await freeUdpPort(),
          CALLER: '0655555555',
          CALL_MS: 11000,
        },
        timeoutS: 30,
      });
      t.teardown(() => sipp.kill());
      const run = await sipp.done;
      t.equal(run.exitCode, 0, run.exitCode === 0 ? 'sipp completed the call' : run.output);
      if (symmetric) {
        t.same(
          room.pinLookups.map((l) => l.pin),
          ['24681357'],
          'the PIN typed behind NAT was read',
        );
        t.ok(await until(() => room.consents.length === 1, 2000), 'and the consent');
        t.equal(room.leaves.length, 1, 'the phone joined the room (and left at its BYE)');
      } else {
        t.same(room.pinLookups, [], 'nothing typed was heard');
      }
    },
  );
}

import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createLogger } from '../../src/observability/logger.js';
import { PhoneMediaLeg, RELATCH_AFTER_SILENCE_MS } from '../../src/phone/media/phoneMediaLeg.js';
import { buildRtp } from '../../src/phone/media/rtp.js';
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

void t.test(
  'with symmetric RTP, a NAT that rebinds mid-call: the same stream from a new address is followed once the old one is silent',
  async (t) => {
    const leg = await PhoneMediaLeg.open({
      listenHost: '127.0.0.1',
      minPort: 0,
      maxPort: 0,
      mediasoupListenIp: '127.0.0.1',
      symmetric: true,
      log: createLogger('silent'),
    });
    t.teardown(() => leg.close());
    // The SDP names an address the packets never come from (the phone's private one).
    leg.setRemote({
      remoteAddress: '127.0.0.2',
      remotePort: 4000,
      codec: 'PCMU',
      payloadType: 0,
      telephoneEventPt: 101,
      direction: 'sendrecv',
    });
    const sockets = await Promise.all(
      ['before', 'after', 'stranger'].map(async () => {
        const socket = dgram.createSocket('udp4');
        await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
        t.teardown(() => socket.close());
        const heard = { packets: 0 };
        socket.on('message', () => heard.packets++);
        return { socket, heard };
      }),
    );
    const [before, after, stranger] = sockets as [
      (typeof sockets)[0],
      (typeof sockets)[0],
      (typeof sockets)[0],
    ];
    let sequenceNumber = 0;
    const send = async (from: dgram.Socket, ssrc: number, count: number) => {
      for (let i = 0; i < count; i++) {
        const packet = buildRtp({
          payloadType: 0,
          marker: false,
          sequenceNumber: sequenceNumber++,
          timestamp: sequenceNumber * 160,
          ssrc,
          payload: Buffer.alloc(160, 0xff),
        });
        from.send(packet, leg.localPort, '127.0.0.1');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const stream = 0x1234abcd;

    await send(before.socket, stream, 10);
    t.ok(
      await until(() => leg.stats.fromPhone === 10 && before.heard.packets > 0, 2000),
      'latched onto the first source',
    );
    await send(after.socket, stream, 3);
    t.equal(leg.stats.fromPhone, 10, 'while the latched source is active, another one is dropped');
    await send(before.socket, stream, 5);

    await new Promise((resolve) => setTimeout(resolve, RELATCH_AFTER_SILENCE_MS + 200));
    await send(stranger.socket, 0x0badf00d, 3);
    t.equal(leg.stats.fromPhone, 15, 'after the silence, another stream from elsewhere is still dropped');
    await send(after.socket, stream, 10);
    t.equal(leg.stats.fromPhone, 25, "the phone's own stream from its new address is heard");
    t.equal(leg.stats.latched, 2, 'and latched onto');
    const beforeHeard = before.heard.packets;
    const afterHeard = after.heard.packets;
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.ok(after.heard.packets > afterHeard + 5, 'the gateway now sends to the new address');
    t.ok(before.heard.packets <= beforeHeard + 1, 'and no longer to the old one');
    t.equal(stranger.heard.packets, 0, 'never to the stranger');
  },
);

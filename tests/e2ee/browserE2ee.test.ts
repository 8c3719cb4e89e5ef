import t from 'tap';
import type { types } from 'mediasoup';
import type { Page } from 'playwright-core';
import type * as Sdk from '../../src/sdk/index.js';
import { fromHex } from '../../src/sdk/e2ee/bytes.js';
import { FrameCryptor, clearPrefixLength } from '../../src/sdk/e2ee/frameCrypto.js';
import { decodeHeader } from '../../src/sdk/e2ee/sframe.js';
import { buildSdkBundle, waitFor } from '../browser/harness.js';
import { chromiumAvailable, launchBrowser, localhostUrl, type TestPage } from '../support/browser.js';
import { startTestServer } from '../support/server.js';
import { ProducerCapture, vp8Frames, type RtpPacket } from './rtpCapture.js';

/** What a page records, read by the test. */
interface E2eeRecord {
  errors: string[];
  warnings: string[];
  layers: (number | null)[];
  rotations: number[];
}

declare global {
  interface Window {
    e2eeTest?: { room: Sdk.Room; record: E2eeRecord };
  }
}

const skip = (await chromiumAvailable()) ? false : 'chromium is not installed';

async function joinWithE2ee(
  page: Page,
  url: string,
  token: string,
  options: { publish: boolean; tamperReceivedKeys?: boolean },
): Promise<string> {
  return page.evaluate(
    async ({ url, token, options }) => {
      const sdk = (await import(['/sdk', 'teleconsult-sdk.js'].join('/'))) as typeof Sdk;
      const room = await sdk.connect(url, token, {
        handlerName: 'Chrome111',
        locale: 'en',
        e2ee: { __testing: { tamperReceivedKeys: options.tamperReceivedKeys === true } },
      });
      const record: E2eeRecord = { errors: [], warnings: [], layers: [], rotations: [] };
      room.on('error', (error) => record.errors.push(`${error.code}: ${error.detail ?? ''}`));
      room.on('layersChanged', (track) => record.layers.push(track.layers?.spatialLayer ?? null));
      room.e2ee?.on('warning', (warning) => record.warnings.push(warning));
      room.e2ee?.on('keyRotated', (generation) => record.rotations.push(generation));
      window.e2eeTest = { room, record };
      if (options.publish) {
        await room.publishCamera({ width: 1280, height: 720 });
        await room.publishMicrophone();
      }
      return room.self.id;
    },
    { url, token, options },
  );
}

function inPage<T>(page: Page, fn: (room: Sdk.Room, record: E2eeRecord) => T | Promise<T>): Promise<T> {
  return page.evaluate(async (source) => {
    const test = window.e2eeTest;
    if (!test) throw new Error('not joined');
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    const run = new Function('room', 'record', `return (${source})(room, record);`) as (
      room: Sdk.Room,
      record: E2eeRecord,
    ) => unknown;
    return run(test.room, test.record);
  }, fn.toString()) as Promise<T>;
}

interface InboundVideo {
  framesDecoded: number;
  frameWidth: number;
  srtpCipher: string | undefined;
}

function inboundVideo(page: Page): Promise<InboundVideo> {
  return inPage(page, async (room) => {
    const { recv } = await room.getStats();
    const out = { framesDecoded: 0, frameWidth: 0, srtpCipher: undefined as string | undefined };
    recv?.forEach(
      (r: {
        type?: string;
        kind?: string;
        framesDecoded?: number;
        frameWidth?: number;
        srtpCipher?: string;
      }) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video') {
          out.framesDecoded += r.framesDecoded ?? 0;
          out.frameWidth = Math.max(out.frameWidth, r.frameWidth ?? 0);
        }
        if (r.type === 'transport' && r.srtpCipher) out.srtpCipher = r.srtpCipher;
      },
    );
    return out;
  });
}

function exportKeys(page: Page): Promise<Sdk.ExportedKeys> {
  return inPage(page, (room) => {
    if (!room.e2ee?.testing) throw new Error('no test hooks');
    return room.e2ee.testing.exportKeys();
  });
}

function details(...pages: TestPage[]): string {
  return pages
    .map((p, i) => `page ${i}: ${p.problems.slice(0, 8).join(' | ') || 'no console errors'}`)
    .join('\n');
}

/** Tries every key on every captured Opus packet; returns how many packets each key opened. */
async function openAudio(packets: RtpPacket[], keys: { generation: number; key: string }[]): Promise<number> {
  const cryptor = new FrameCryptor();
  for (const k of keys) await cryptor.addReceiveKey(`g${k.generation}`, k.generation, fromHex(k.key));
  let opened = 0;
  for (const packet of packets) {
    for (const k of keys) {
      if (await cryptor.decrypt(`g${k.generation}`, 'opus', packet.payload)) {
        opened++;
        break;
      }
    }
  }
  return opened;
}

t.test(
  'end-to-end encrypted consultation in Chromium: the server forwards only ciphertext',
  { skip },
  async (t) => {
    await buildSdkBundle();
    const server = await startTestServer();
    t.teardown(() => server.stop());
    const browser = await launchBrowser();
    t.teardown(() => browser.close());
    const origin = localhostUrl(server.url);
    const created = await server.rest<{ id: string }>('POST', '/v1/rooms', {
      options: { waitingRoom: false, e2eeRequired: true },
    });
    const roomId = created.body.id;
    const token = (participantId: string, role: 'practitioner' | 'patient' | 'assistant') =>
      server.token({ room: roomId, participantId, role });

    const doctor = await browser.openPage(`${origin}/`);
    const patient = await browser.openPage(`${origin}/`);
    const pages = [doctor, patient];
    await joinWithE2ee(doctor.page, origin, await token('doc', 'practitioner'), { publish: true });
    await joinWithE2ee(patient.page, origin, await token('pat', 'patient'), { publish: true });
    // The patient consents to the teleconsultation; the doctor admits it (waiting room rules).
    await inPage(patient.page, async (room) => {
      const text = (await room.getConsentTexts()).find((x) => x.purpose === 'teleconsultation');
      if (!text) throw new Error('no consent text');
      await room.giveConsent(text);
    });
    // A room without waiting room admits on consent by itself; otherwise the doctor does.
    await doctor.page.evaluate(() => window.e2eeTest?.room.admit('pat').catch(() => undefined));
    const serverRoom = server.server.rooms.get(roomId);
    // The router is private to the room: reached here only to record what the SFU forwards.
    const router = (serverRoom as unknown as { router: types.Router }).router;
    const producerOf = (participantId: string, kind: 'audio' | 'video') =>
      [...(serverRoom?.participants.get(participantId)?.producers.values() ?? [])].find(
        (p) => p.kind === kind,
      );

    await t.test('a client without E2EE is refused by a room that requires it', async (t) => {
      const page = await browser.openPage(`${origin}/`);
      const code = await page.page.evaluate(
        async ({ url, token }) => {
          const sdk = (await import(['/sdk', 'teleconsult-sdk.js'].join('/'))) as typeof Sdk;
          return sdk.connect(url, token, { handlerName: 'Chrome111', locale: 'en' }).then(
            () => 'joined',
            (err: Sdk.TeleconsultError) => err.code,
          );
        },
        { url: origin, token: await token('plain', 'assistant') },
      );
      t.equal(code, 'E2EE_REQUIRED');
      t.equal(
        await page.page.evaluate(async () =>
          ((await import(['/sdk', 'teleconsult-sdk.js'].join('/'))) as typeof Sdk).isE2eeSupported(),
        ),
        true,
        'this Chromium can do E2EE',
      );
      await page.page.close();
    });

    await t.test(
      'both sides decode each other’s encrypted video and agree on the safety number',
      async (t) => {
        for (const [name, side] of [
          ['doctor', doctor],
          ['patient', patient],
        ] as const) {
          const stats = await waitFor(`${name} to decode video`, async () => {
            const s = await inboundVideo(side.page);
            return s.framesDecoded > 10 ? s : undefined;
          }).catch((err: Error) => {
            throw new Error(`${err.message}\n${details(...pages)}`);
          });
          t.ok(stats.framesDecoded > 10, `${name} decoded ${stats.framesDecoded} frames`);
          t.comment(`${name}: DTLS-SRTP cipher ${stats.srtpCipher ?? 'unknown'}`);
          t.match(stats.srtpCipher ?? '', /GCM/, `${name}'s SRTP uses an AEAD (AES-GCM) profile`);
        }
        const states = await inPage(doctor.page, (room) =>
          Object.fromEntries(room.e2ee?.participantStates ?? []),
        );
        t.same(states, { pat: 'encrypted' }, 'the doctor sees the patient as encrypted');
        const a = await inPage(doctor.page, (room) => room.e2ee?.safetyNumber('pat'));
        const b = await inPage(patient.page, (room) => room.e2ee?.safetyNumber('doc'));
        t.match(a, /^\d{3} \d{3}$/, 'six digits');
        t.equal(a, b, 'both sides compute the same safety number');
      },
    );

    await t.test('inside the server, video and audio payloads are SFrame ciphertext', async (t) => {
      const video = await ProducerCapture.start(router, producerOf('doc', 'video')!.id);
      const audio = await ProducerCapture.start(router, producerOf('doc', 'audio')!.id);
      t.teardown(() => {
        video.close();
        audio.close();
      });
      await waitFor('a captured keyframe among more than 5 whole frames', async () => {
        const frames = vp8Frames(video.packets);
        return frames.length > 5 && frames.some((f) => (f[0]! & 1) === 0) && audio.packets.length > 50;
      });
      const keys = await exportKeys(doctor.page);
      const frames = vp8Frames(video.packets);
      const keyframes = frames.filter((f) => (f[0]! & 1) === 0);
      t.ok(frames.length > 5, `${frames.length} whole VP8 frames captured`);
      t.ok(
        keyframes.every((f) => f.subarray(3, 6).equals(Buffer.from([0x9d, 0x01, 0x2a]))),
        'keyframe headers stay readable by the SFU',
      );
      const cryptor = new FrameCryptor();
      for (const k of keys.sent) await cryptor.addReceiveKey('doc', k.generation, fromHex(k.key));
      let opened = 0;
      for (const frame of frames) {
        const header = decodeHeader(frame.subarray(clearPrefixLength('vp8', frame)));
        if (!keys.sent.some((k) => k.generation === header.kid)) t.fail(`unknown KID ${header.kid}`);
        const plain = await cryptor.decrypt('doc', 'vp8', frame);
        if (plain) opened++;
      }
      t.equal(
        opened,
        frames.length,
        'every captured video frame is AES-GCM ciphertext under the doctor’s sender key',
      );
      const audioOpened = await openAudio(audio.packets, keys.sent);
      t.equal(audioOpened, audio.packets.length, 'every captured Opus packet is an SFrame ciphertext');
    });

    await t.test('simulcast layers still switch on encrypted video', async (t) => {
      const videoTrackId = await inPage(
        patient.page,
        (room) => room.remoteTracks.find((r) => r.kind === 'video')?.id,
      );
      t.ok(videoTrackId, 'the patient receives the doctor’s video');
      const high = await waitFor('the top layer', async () => {
        const s = await inboundVideo(patient.page);
        return s.frameWidth >= 1280 ? s.frameWidth : undefined;
      }).catch(async () => (await inboundVideo(patient.page)).frameWidth);
      await patient.page.evaluate((id) => window.e2eeTest?.room.setPreferredLayers(id!, 0), videoTrackId);
      await waitFor('layersChanged to spatial layer 0', async () =>
        (await inPage(patient.page, (_room, record) => record.layers)).includes(0),
      );
      const low = await waitFor('smaller decoded frames', async () => {
        const s = await inboundVideo(patient.page);
        return s.frameWidth > 0 && s.frameWidth < high ? s.frameWidth : undefined;
      });
      t.ok(low < high, `decoded width went from ${high} to ${low} px`);
      await patient.page.evaluate((id) => window.e2eeTest?.room.setPreferredLayers(id!, 2), videoTrackId);
      const back = await waitFor('larger decoded frames again', async () => {
        const s = await inboundVideo(patient.page);
        return s.frameWidth > low ? s.frameWidth : undefined;
      });
      t.ok(back > low, `and back up to ${back} px`);
    });

    await t.test(
      'a client with wrong keys decodes nothing; after it left, none of its keys opens the media',
      async (t) => {
        const intruder = await browser.openPage(`${origin}/`);
        pages.push(intruder);
        await joinWithE2ee(intruder.page, origin, await token('aux', 'assistant'), {
          publish: false,
          tamperReceivedKeys: true,
        });
        await waitFor('the patient to consent to the assistant', async () =>
          inPage(patient.page, async (room) => {
            const text = (await room.getConsentTexts()).find((x) => x.purpose === 'third-party');
            if (!text || !room.participants.has('aux')) return false;
            await room.giveConsent(text, { coversParticipantId: 'aux' });
            return true;
          }),
        );
        await doctor.page.evaluate(() => window.e2eeTest?.room.admit('aux').catch(() => undefined));
        const before = await inPage(doctor.page, (room) => room.e2ee?.keyGeneration ?? 0);
        await waitFor(
          'the doctor to rotate for the newcomer',
          async () => (await inPage(doctor.page, (room) => room.e2ee?.keyGeneration ?? 0)) > before,
        );
        await waitFor('the wrong-key client to refuse frames', async () => {
          const stats = await inPage(intruder.page, (room) => room.e2ee?.getStats());
          const failures = Object.values(stats?.failures ?? {}).reduce(
            (n, f) => n + f['authentication-failed'],
            0,
          );
          return failures > 20;
        });
        const intruderVideo = await inboundVideo(intruder.page);
        t.equal(intruderVideo.framesDecoded, 0, 'the client with wrong keys decoded no frame');
        const patientBefore = (await inboundVideo(patient.page)).framesDecoded;
        await waitFor(
          'the patient to keep decoding across the rotation',
          async () => (await inboundVideo(patient.page)).framesDecoded > patientBefore + 30,
        );
        t.pass('the patient kept decoding after the newcomer’s rotation');

        const intruderKeys = await exportKeys(intruder.page);
        const doctorKeys = await exportKeys(doctor.page);
        const fromDoctor = intruderKeys.received.filter((k) => k.from === 'doc');
        t.ok(fromDoctor.length > 0, 'the newcomer did receive the doctor’s key');
        t.ok(
          fromDoctor.every((k) =>
            doctorKeys.sent.some((s) => s.generation === k.generation && s.key === k.key),
          ),
          'and it was the genuine one (the test then corrupted it)',
        );
        const lastKnown = Math.max(...fromDoctor.map((k) => k.generation));

        await intruder.page.evaluate(() => window.e2eeTest?.room.leave());
        await waitFor(
          'the doctor to rotate after the departure',
          async () => (await inPage(doctor.page, (room) => room.e2ee?.keyGeneration ?? 0)) > lastKnown,
        );
        const audio = await ProducerCapture.start(router, producerOf('doc', 'audio')!.id);
        t.teardown(() => audio.close());
        await waitFor('audio captured after the departure', async () => audio.packets.length > 100);
        const departedKeys = [
          ...intruderKeys.received.map((k) => ({ generation: k.generation, key: k.key })),
          ...intruderKeys.sent,
        ];
        t.equal(
          await openAudio(audio.packets, departedKeys),
          0,
          'no key the departed participant held opens any later packet',
        );
        const current = (await exportKeys(doctor.page)).sent;
        t.equal(
          await openAudio(audio.packets, current),
          audio.packets.length,
          'while the doctor’s current key opens them all',
        );
        const kids = new Set(audio.packets.map((p) => decodeHeader(p.payload).kid));
        t.ok(
          [...kids].every((kid) => kid > lastKnown),
          `the packets use generations ${[...kids].join(',')} only`,
        );
      },
    );

    await t.test('no page saw an SDK error', async (t) => {
      for (const [name, side] of [
        ['doctor', doctor],
        ['patient', patient],
      ] as const) {
        const record = await inPage(side.page, (_room, record) => record);
        t.same(record.errors, [], `${name}: no error`);
        t.same(record.warnings, [], `${name}: no E2EE warning`);
      }
    });
  },
);

import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { types } from 'mediasoup';
import type { Page } from 'playwright-core';
import type * as Sdk from '../../src/sdk/index.js';
import { buildSdkBundle, waitFor } from '../browser/harness.js';
import { chromiumAvailable, launchBrowser } from '../support/browser.js';
import { networkNamespaces } from '../support/hostCapabilities.js';
import { startTestServer } from '../support/server.js';
import { ImpairedLink, launchInNamespace } from '../quality/impairedLink.js';
import { CLIP_HEIGHT as HEIGHT, CLIP_WIDTH as WIDTH, writeFineDetailClip } from './fineDetailClip.js';

/**
 * Done-when test of the examination video's protection (docs/devices.md): the patient holds an
 * examination camera and publishes it beside its camera (three simulcast layers), both from a
 * fine-detail Y4M clip the test writes; the practitioner's Chromium runs in a network namespace
 * whose downlink gets a tbf cap. Under the cap the camera falls to its lowest layer (or is paused:
 * audio-only for the camera), while the examination video keeps flowing at the resolution sent.
 *
 * The cap: the examination video's bitrate as the server measured it before the cap, plus the
 * audio, plus 325 kbit/s, halfway between the camera's lowest (150 kbit/s) and middle (500 kbit/s)
 * layer ceilings. What the bandwidth estimate leaves beside the examination video then carries the
 * camera's lowest layer at most; a fixed cap would not, since the examination video's bitrate
 * depends on the clip and on the encoder.
 */
const skip = !(await chromiumAvailable()) ? 'chromium is not installed' : networkNamespaces({ tbf: true });

/** Dwell times a little longer than the defaults' downDwellMs: an estimate behind tbf swings. */
const QUALITY = { downDwellMs: 2000, upDwellMs: 4000, audioOnlyUpDwellMs: 8000, reportIntervalMs: 1000 };
/** Halfway between the camera's lowest and middle layer ceilings (src/sdk/publishing.ts). */
const CAMERA_ROOM_KBIT = (150 + 500) / 2;

interface InboundVideo {
  frameWidth: number | undefined;
  frameHeight: number | undefined;
  framesDecoded: number;
}

declare global {
  interface Window {
    examTest?: { room: Sdk.Room; errors: string[] };
  }
}

async function join(page: Page, origin: string, token: string): Promise<void> {
  await page.evaluate(
    async ({ origin, token }) => {
      const sdk = (await import(['/sdk', 'teleconsult-sdk.js'].join('/'))) as typeof Sdk;
      const room = await sdk.connect(origin, token, { handlerName: 'Chrome111', locale: 'en' });
      const errors: string[] = [];
      room.on('error', (error) => errors.push(`${error.code}: ${error.detail ?? ''}`));
      // A large tile: the render size never caps the camera's layer in this test.
      room.on('trackAdded', (track) => {
        if (track.kind === 'video') void room.setRenderSize(track, 1280, 720);
      });
      window.examTest = { room, errors };
    },
    { origin, token },
  );
}

/** The practitioner's inbound video stats for the remote track of `source`. */
function inbound(page: Page, source: string): Promise<InboundVideo | undefined> {
  return page.evaluate(async (source) => {
    const test = window.examTest;
    if (!test) throw new Error('not joined');
    const remote = test.room.remoteTracks.find((r) => r.source === source);
    if (!remote) return undefined;
    const { recv } = await test.room.getStats();
    let found: InboundVideo | undefined;
    recv?.forEach(
      (report: {
        type?: string;
        kind?: string;
        trackIdentifier?: string;
        frameWidth?: number;
        frameHeight?: number;
        framesDecoded?: number;
      }) => {
        if (report.type !== 'inbound-rtp' || report.kind !== 'video') return;
        if (report.trackIdentifier !== remote.track.id) return;
        found = {
          frameWidth: report.frameWidth,
          frameHeight: report.frameHeight,
          framesDecoded: report.framesDecoded ?? 0,
        };
      },
    );
    return found;
  }, source);
}

t.test(
  'under a tbf cap the camera drops to its lowest layer while the examination video keeps its resolution',
  { skip },
  async (t) => {
    const clip = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'exam-clip-')), 'eardrum.y4m');
    writeFineDetailClip(clip);
    t.teardown(() => fs.rmSync(path.dirname(clip), { recursive: true, force: true }));
    await buildSdkBundle();
    const link = await ImpairedLink.create();
    t.teardown(() => link.remove());
    const server = await startTestServer({
      server: { listenHost: link.rootAddress },
      media: { listenIp: link.rootAddress },
      quality: QUALITY,
    });
    t.teardown(() => server.stop());
    const origin = `http://${link.rootAddress}:${server.server.address.port}`;
    // The server listens on the veth's root-side address only.
    const created = await fetch(`${origin}/v1/rooms`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${server.apiKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ options: { waitingRoom: false } }),
    });
    const roomId = ((await created.json()) as { id: string }).id;

    // The device holder (the patient) on the root side: its uplink is not capped.
    const holderBrowser = await launchBrowser([
      `--use-file-for-fake-video-capture=${clip}`,
      `--unsafely-treat-insecure-origin-as-secure=${origin}`,
    ]);
    t.teardown(() => holderBrowser.close());
    // The practitioner inside the namespace: what it receives crosses the cap.
    const doctorBrowser = await launchInNamespace(link, origin);
    t.teardown(() => doctorBrowser.close());
    const doctor = await doctorBrowser.openPage(`${origin}/`);
    const holder = (await holderBrowser.openPage(`${origin}/`)).page;
    await join(
      doctor,
      origin,
      await server.token({ room: roomId, participantId: 'doc', role: 'practitioner' }),
    );
    await join(holder, origin, await server.token({ room: roomId, participantId: 'pat', role: 'patient' }));
    await holder.evaluate(async () => {
      const room = window.examTest!.room;
      const text = (await room.getConsentTexts()).find((x) => x.purpose === 'teleconsultation');
      if (!text) throw new Error('no teleconsultation consent text');
      await room.giveConsent(text);
    });
    await waitFor('the patient admitted', () =>
      holder.evaluate(() => window.examTest!.room.admissionState === 'admitted'),
    );
    await holder.evaluate(async () => {
      const room = window.examTest!.room;
      await room.publishMicrophone();
      await room.publishCamera();
      await room.publishExaminationVideo({ deviceType: 'otoscope' });
    });

    const consumerOf = (source: string): types.Consumer | undefined => {
      const doc = server.server.rooms.get(roomId)?.participants.get('doc');
      return doc
        ? [...doc.consumers.values()].find(
            (c) => !c.closed && (c.appData as { source?: string }).source === source,
          )
        : undefined;
    };
    const producerOf = (source: string): types.Producer | undefined => {
      const pat = server.server.rooms.get(roomId)?.participants.get('pat');
      return pat
        ? [...pat.producers.values()].find(
            (p) => !p.closed && (p.appData as { source?: string }).source === source,
          )
        : undefined;
    };
    const state = () => {
      const camera = consumerOf('camera');
      const exam = consumerOf('examination-video');
      return (
        `camera spatial=${camera?.currentLayers?.spatialLayer ?? '-'} preferred=${camera?.preferredLayers?.spatialLayer ?? '-'} ` +
        `paused=${camera?.paused ?? '-'}; examination paused=${exam?.paused ?? '-'}`
      );
    };
    // One line a second of what the server forwards: printed at the end, to read a failure.
    const trace: string[] = [];
    const started = Date.now();
    const tracer = setInterval(() => {
      trace.push(`${((Date.now() - started) / 1000).toFixed(0)}s ${state()}`);
      if (trace.length > 300) trace.shift();
    }, 1000);
    t.teardown(() => {
      clearInterval(tracer);
      t.comment(`trace:\n${trace.join('\n')}`);
    });

    // What the holder sends: the examination video at the clip's resolution, one encoding.
    const sent = await waitFor(
      'the examination video sent at the clip resolution',
      () =>
        holder.evaluate(async () => {
          const { send } = await window.examTest!.room.getStats();
          let size: { width: number; height: number } | undefined;
          // The camera's three encodings carry a rid; the examination video's one encoding none.
          send?.forEach(
            (report: {
              type?: string;
              kind?: string;
              rid?: string;
              frameWidth?: number;
              frameHeight?: number;
            }) => {
              if (report.type !== 'outbound-rtp' || report.kind !== 'video' || report.rid) return;
              if (report.frameWidth) size = { width: report.frameWidth, height: report.frameHeight ?? 0 };
            },
          );
          return size;
        }),
      30_000,
    );
    t.same(sent, { width: WIDTH, height: HEIGHT }, `the holder sends ${WIDTH}x${HEIGHT}`);
    t.equal(
      producerOf('examination-video')?.rtpParameters.encodings?.length,
      1,
      'one encoding: no lower layer',
    );

    await t.test(
      'uncapped: the camera at its top layer, the examination video at full resolution',
      async (t) => {
        await waitFor(
          'the camera forwarded at its top layer',
          async () => consumerOf('camera')?.currentLayers?.spatialLayer === 2,
          60_000,
        ).catch((err: Error) => {
          throw new Error(`${err.message}; ${state()}`);
        });
        const exam = await waitFor(
          'examination frames decoded at the practitioner',
          async () => {
            const stats = await inbound(doctor, 'examination-video');
            return stats && stats.framesDecoded > 0 && stats.frameWidth ? stats : undefined;
          },
          30_000,
        );
        t.equal(exam.frameWidth, WIDTH, 'examination frame width at the practitioner');
        t.equal(exam.frameHeight, HEIGHT, 'examination frame height at the practitioner');
      },
    );

    // The examination video's bitrate as the server measures it, once its sender has ramped up
    // (the holder's uplink is not capped): the highest of ten one-second samples after ten seconds.
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    const samples: number[] = [];
    for (let i = 0; i < 10; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const stats = (await producerOf('examination-video')?.getStats()) ?? [];
      const bps = stats.filter((s) => s.type === 'inbound-rtp').reduce((sum, s) => sum + s.bitrate, 0);
      if (bps > 0) samples.push(bps / 1000);
    }
    const examKbps = Math.max(0, ...samples);
    t.ok(
      examKbps > 0,
      `the examination video measured at ${Math.round(examKbps)} kbit/s (samples ${samples.map(Math.round).join(', ')})`,
    );
    const audioKbps = 64;
    const capKbit = Math.round(examKbps + audioKbps + CAMERA_ROOM_KBIT);

    await t.test(`capped at ${capKbit} kbit/s: the camera falls, the examination video stays`, async (t) => {
      await link.setRate(capKbit);
      const cameraDown = () => {
        const camera = consumerOf('camera');
        return camera !== undefined && (camera.paused || camera.currentLayers?.spatialLayer === 0);
      };
      let since: number | undefined;
      await waitFor(
        'the camera at its lowest layer or paused for 5 s',
        async () => {
          if (!cameraDown()) since = undefined;
          else since ??= Date.now();
          return since !== undefined && Date.now() - since >= 5000;
        },
        90_000,
        200,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; ${state()}`);
      });
      const camera = consumerOf('camera')!;
      t.ok(
        camera.paused || camera.currentLayers?.spatialLayer === 0,
        `the camera consumer: ${camera.paused ? 'paused (audio-only for the camera)' : 'lowest layer'}`,
      );
      const exam = consumerOf('examination-video');
      t.equal(exam?.paused, false, 'the examination consumer is not paused');
      t.equal(exam?.type, 'simple', 'and forwards its one full-resolution encoding');
      const before = await inbound(doctor, 'examination-video');
      await new Promise((resolve) => setTimeout(resolve, 4000));
      const after = await inbound(doctor, 'examination-video');
      t.ok(
        before && after && after.framesDecoded > before.framesDecoded,
        `examination frames keep being decoded (${before?.framesDecoded} then ${after?.framesDecoded})`,
      );
      t.equal(after?.frameWidth, WIDTH, 'examination frame width at the practitioner under the cap');
      t.equal(after?.frameHeight, HEIGHT, 'examination frame height at the practitioner under the cap');
      const errors = await doctor.evaluate(() => window.examTest!.errors);
      t.same(errors, [], 'no SDK errors at the practitioner');
    });
  },
);

import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import type * as Sdk from '../../src/sdk/index.js';
import { buildSdkBundle, waitFor } from '../browser/harness.js';
import { chromiumAvailable, launchBrowser, localhostUrl } from '../support/browser.js';
import { startTestServer } from '../support/server.js';
import { SignallingClient } from '../support/signallingClient.js';
import { CLIP_HEIGHT, CLIP_WIDTH, writeFineDetailClip } from './fineDetailClip.js';

/**
 * A still of an examination video at full resolution (docs/devices.md): the patient publishes an
 * otoscope from a fine-detail Y4M clip; the practitioner's SDK takes a still, whose size is the
 * size sent, as a PNG. The server journals the act (never the image) and refuses it to anyone but
 * the practitioner.
 */
const skip = (await chromiumAvailable()) ? false : 'chromium is not installed';

declare global {
  interface Window {
    stillTest?: { room: Sdk.Room };
  }
}

async function join(page: Page, origin: string, token: string): Promise<void> {
  await page.evaluate(
    async ({ origin, token }) => {
      const sdk = (await import(['/sdk', 'teleconsult-sdk.js'].join('/'))) as typeof Sdk;
      const room = await sdk.connect(origin, token, { handlerName: 'Chrome111', locale: 'en' });
      window.stillTest = { room };
    },
    { origin, token },
  );
}

interface Journal {
  records: { type: string; data: Record<string, unknown> }[];
}

t.test('the practitioner takes a full-resolution still of the examination video', { skip }, async (t) => {
  const clip = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'exam-still-')), 'eardrum.y4m');
  writeFineDetailClip(clip);
  t.teardown(() => fs.rmSync(path.dirname(clip), { recursive: true, force: true }));
  await buildSdkBundle();
  const server = await startTestServer({ quality: { enabled: false } });
  t.teardown(() => server.stop());
  const browser = await launchBrowser([`--use-file-for-fake-video-capture=${clip}`]);
  t.teardown(() => browser.close());
  const origin = localhostUrl(server.url);
  const roomId = (await server.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } }))
    .body.id;
  const doctor = (await browser.openPage(`${origin}/`)).page;
  const patient = (await browser.openPage(`${origin}/`)).page;
  await join(
    doctor,
    origin,
    await server.token({ room: roomId, participantId: 'doc', role: 'practitioner' }),
  );
  await join(patient, origin, await server.token({ room: roomId, participantId: 'pat', role: 'patient' }));
  await patient.evaluate(async () => {
    const room = window.stillTest!.room;
    const text = (await room.getConsentTexts()).find((x) => x.purpose === 'teleconsultation');
    if (!text) throw new Error('no teleconsultation consent text');
    await room.giveConsent(text);
  });
  await waitFor('the patient admitted', () =>
    patient.evaluate(() => window.stillTest!.room.admissionState === 'admitted'),
  );
  const producerId = await patient.evaluate(async () => {
    const local = await window.stillTest!.room.publishExaminationVideo({ deviceType: 'otoscope' });
    return local.producerId;
  });
  if (!producerId) throw new Error('the examination video was not published');
  await waitFor('the examination video at the practitioner', () =>
    doctor.evaluate(() => window.stillTest!.room.remoteTracks.some((r) => r.source === 'examination-video')),
  );

  await t.test('the still has the size sent, as a PNG', async (t) => {
    const still = await doctor.evaluate(async (producerId) => {
      const taken = await window.stillTest!.room.captureExaminationStill(producerId);
      const bitmap = await createImageBitmap(taken.image);
      return {
        width: taken.width,
        height: taken.height,
        bitmap: [bitmap.width, bitmap.height],
        type: taken.image.type,
        bytes: taken.image.size,
        producerId: taken.producerId,
      };
    }, producerId);
    t.equal(still.width, CLIP_WIDTH, 'width of the frame decoded');
    t.equal(still.height, CLIP_HEIGHT, 'height of the frame decoded');
    t.same(still.bitmap, [CLIP_WIDTH, CLIP_HEIGHT], 'the PNG decodes to the size sent');
    t.equal(still.type, 'image/png');
    t.ok(still.bytes > 10_000, `a detailed image (${still.bytes} bytes), not a blank one`);
    t.equal(still.producerId, producerId);
  });

  await t.test('anyone but the practitioner gets FORBIDDEN_FOR_ROLE', async (t) => {
    const nurse = await SignallingClient.open(server.url.replace(/^http/, 'ws') + '/ws');
    t.teardown(() => nurse.close());
    await nurse.request('join', {
      token: await server.token({ room: roomId, participantId: 'nurse', role: 'assistant' }),
    });
    const refused = await nurse.request('captureExaminationStill', { producerId }).then(
      () => 'accepted',
      (err: Error & { code?: string }) => err.code ?? err.message,
    );
    t.equal(refused, 'FORBIDDEN_FOR_ROLE', 'an assistant is refused');
    const byPatient = await patient.evaluate(async (producerId) => {
      const room = window.stillTest!.room;
      return room.captureExaminationStill(producerId).then(
        () => 'accepted',
        (err: { code?: string }) => err.code ?? 'no code',
      );
    }, producerId);
    t.equal(byPatient, 'NOT_FOUND', "the patient's SDK: it receives no examination video");
  });

  await t.test('a paused examination video is refused at once, not waited for', async (t) => {
    await patient.evaluate(() => window.stillTest!.room.mute('examination-video'));
    const received = () =>
      [...(server.server.rooms.get(roomId)?.participants.get('doc')?.consumers.values() ?? [])].find(
        (c) => c.producerId === producerId,
      );
    await waitFor('the pause at the server', () => Promise.resolve(received()?.producerPaused === true));
    const refused = await doctor.evaluate(
      (producerId) =>
        window.stillTest!.room.captureExaminationStill(producerId).then(
          () => 'accepted',
          (err: { code?: string }) => err.code ?? 'no code',
        ),
      producerId,
    );
    t.equal(refused, 'INVALID_STATE', 'the SDK gets INVALID_STATE, not a timeout');
    await patient.evaluate(() => window.stillTest!.room.unmute('examination-video'));
  });

  await t.test('the journal records the still, not the image', async (t) => {
    let records: Journal['records'] = [];
    await waitFor('device.still in the journal', async () => {
      records = (await server.rest<Journal>('GET', `/v1/rooms/${roomId}/journal`)).body.records;
      return records.some((r) => r.type === 'device.still');
    });
    const stills = records.filter((r) => r.type === 'device.still').map((r) => r.data);
    t.same(stills, [{ takenBy: 'doc', participantId: 'pat', producerId, deviceType: 'otoscope' }]);
  });
});

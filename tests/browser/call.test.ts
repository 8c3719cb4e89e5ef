import t from 'tap';
import type { DataSender } from '../../src/sdk/index.js';
import { startTestServer, type TestServer } from '../support/server.js';
import {
  chromiumAvailable,
  launchBrowser,
  localhostUrl,
  type TestBrowser,
  type TestPage,
} from '../support/browser.js';
import {
  buildSdkBundle,
  framesDecoded,
  joinInPage,
  pageRecord,
  publishCameraAndMicrophone,
  waitFor,
} from './harness.js';

declare global {
  interface Window {
    oximeter?: DataSender;
  }
}

interface Consultation {
  roomId: string;
  tokens: { practitioner: string; patient: string };
}

async function createConsultation(server: TestServer): Promise<Consultation> {
  const res = await fetch(`${server.url}/demo/consultations`, { method: 'POST' });
  if (res.status !== 201) throw new Error(`demo endpoint answered ${res.status}`);
  return (await res.json()) as Consultation;
}

function details(...pages: TestPage[]): string {
  return pages
    .map((p, i) => `page ${i}: ${p.problems.slice(0, 10).join(' | ') || 'no console errors'}`)
    .join('\n');
}

const skip = (await chromiumAvailable()) ? false : 'chromium is not installed';

/** Waits until the page decodes more video frames than `after` (fails with the pages' console errors). */
async function decodesMoreThan(
  page: TestPage,
  after: number,
  what: string,
  ...all: TestPage[]
): Promise<number> {
  return waitFor(what, async () => {
    const frames = await framesDecoded(page.page);
    return frames > after ? frames : undefined;
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n${details(...all)}`);
  });
}

t.test('a consultation through the SDK in Chromium', { skip }, async (t) => {
  await buildSdkBundle();
  const server = await startTestServer();
  t.teardown(() => server.stop());
  const browser: TestBrowser = await launchBrowser();
  t.teardown(() => browser.close());
  const origin = localhostUrl(server.url);
  const consultation = await createConsultation(server);

  const practitioner = await browser.openPage(`${origin}/`);
  const patient = await browser.openPage(`${origin}/`);
  const sides = [
    ['patient', patient],
    ['practitioner', practitioner],
  ] as const;
  let patientId = '';

  await t.test('the waiting patient receives nothing before admission', async (t) => {
    const joinedPractitioner = await joinInPage(practitioner.page, origin, consultation.tokens.practitioner);
    t.equal(joinedPractitioner.state, 'admitted', 'the practitioner is admitted on joining');
    t.same(
      await publishCameraAndMicrophone(practitioner.page),
      ['published', 'published'],
      'the practitioner publishes at once',
    );
    const joinedPatient = await joinInPage(patient.page, origin, consultation.tokens.patient);
    patientId = joinedPatient.selfId;
    t.equal(joinedPatient.state, 'waiting', 'the patient starts in the waiting room');
    t.same(
      await publishCameraAndMicrophone(patient.page),
      ['queued', 'queued'],
      'publication waits for admission',
    );

    await waitFor('the practitioner to see the patient waiting', async () =>
      (await pageRecord(practitioner.page)).events.includes(`participantJoined:${patientId}:waiting`),
    );
    // Give wrongly-routed media every chance to arrive before checking that none did.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    t.same((await pageRecord(patient.page)).tracks, [], 'the waiting patient received no track');
    const waiting = server.server.rooms.get(consultation.roomId)?.participants.get(patientId);
    t.equal(waiting?.transports.size, 0, 'the server holds no transport for the waiting patient');
    t.same(
      (await pageRecord(practitioner.page)).tracks,
      [],
      'the practitioner received nothing from the patient',
    );
  });

  await t.test("once admitted, each side decodes the other side's video", async (t) => {
    await practitioner.page.evaluate((id) => window.tc?.room.admit(id), patientId);
    await waitFor('the patient to learn it is admitted', async () =>
      (await pageRecord(patient.page)).admission.includes('admitted'),
    );
    for (const [name, side] of sides) {
      const tracks = await waitFor(`${name} to receive audio and video`, async () => {
        const { tracks } = await pageRecord(side.page);
        return tracks.length >= 2 ? tracks : undefined;
      }).catch((err: Error) => {
        throw new Error(`${err.message}\n${details(practitioner, patient)}`);
      });
      t.same(
        tracks.map((track) => track.kind).sort(),
        ['audio', 'video'],
        `${name} receives audio and video`,
      );
      const frames = await decodesMoreThan(side, 0, `${name} to decode video`, practitioner, patient);
      t.ok(frames > 0, `${name} decoded ${frames} video frames from the other side`);
    }
  });

  await t.test(
    'muting, unsubscribing, resubscribing and choosing a layer reach the other side',
    async (t) => {
      await patient.page.evaluate(() => window.tc?.room.mute('microphone'));
      await waitFor('the practitioner to see the microphone muted', async () =>
        (await pageRecord(practitioner.page)).events.includes('trackMuted:audio'),
      );
      await patient.page.evaluate(() => window.tc?.room.unmute('microphone'));
      await waitFor('the practitioner to see the microphone back', async () =>
        (await pageRecord(practitioner.page)).events.includes('trackUnmuted:audio'),
      );
      t.pass('mute and unmute reach the practitioner as trackMuted / trackUnmuted');

      const resubscribed = await practitioner.page.evaluate(async () => {
        const room = window.tc?.room;
        const video = room?.remoteTracks.find((track) => track.kind === 'video');
        if (!room || !video) throw new Error('no remote video');
        await room.unsubscribe(video);
        const afterUnsubscribe = room.remoteTracks.map((track) => track.kind);
        const again = await room.subscribe(video.producerId);
        return {
          afterUnsubscribe,
          sameProducer: again.producerId === video.producerId,
          newConsumer: again.id !== video.id,
          live: again.track.readyState === 'live',
        };
      });
      t.same(resubscribed.afterUnsubscribe, ['audio'], 'after unsubscribe only the audio remains');
      t.ok(resubscribed.sameProducer && resubscribed.newConsumer, 'subscribe brings the same producer back');
      t.ok(resubscribed.live, 'with a live track');
      const before = await framesDecoded(practitioner.page);
      await decodesMoreThan(
        practitioner,
        before,
        'the practitioner to decode the resubscribed video',
        patient,
      );

      await practitioner.page.evaluate(async () => {
        const room = window.tc?.room;
        const video = room?.remoteTracks.find((track) => track.kind === 'video');
        if (!room || !video) throw new Error('no remote video');
        await room.setPreferredLayers(video, 0);
      });
      await waitFor('the practitioner to receive the lowest layer', async () =>
        (await pageRecord(practitioner.page)).events.includes('layersChanged:0'),
      );
      t.pass('setPreferredLayers(0) switches the received video to the lowest simulcast layer');
    },
  );

  await t.test("a patient's data channel reaches the practitioner", async (t) => {
    await patient.page.evaluate(async () => {
      const room = window.tc?.room;
      if (!room) throw new Error('not joined');
      window.oximeter = await room.publishData('oximeter');
    });
    const expected = `dataMessage:${patientId}:oximeter:{"spo2":97}`;
    // The channel opens asynchronously on both sides: send readings until one lands.
    await waitFor(
      'the practitioner to receive a reading',
      async () => {
        await patient.page.evaluate(() => window.oximeter?.send(JSON.stringify({ spo2: 97 })));
        return (await pageRecord(practitioner.page)).events.includes(expected);
      },
      60_000,
      500,
    );
    t.pass('the reading arrived as a dataMessage event');
    t.equal(
      await patient.page.evaluate(() => window.oximeter?.send('x')),
      true,
      'send() reports true once the channel is open',
    );
  });

  await t.test('after a signalling drop the session resumes and video keeps flowing', async (t) => {
    await patient.page.evaluate(() => window.tc?.room.simulateConnectionDrop());
    await waitFor('the patient to reconnect', async () => {
      const { connection } = await pageRecord(patient.page);
      return connection.join(',').endsWith('reconnecting,connected');
    });
    t.pass('the patient went through reconnecting back to connected');
    for (const [name, side] of sides) {
      const before = await framesDecoded(side.page);
      const after = await decodesMoreThan(side, before, `${name} to keep decoding`, practitioner, patient);
      t.ok(after > before, `${name} keeps decoding (${before} -> ${after} frames)`);
    }
    t.equal(
      (await pageRecord(patient.page)).tracks.length,
      2,
      'the patient kept its two tracks (no duplicate subscription)',
    );
  });

  await t.test('when the media worker dies, the SDK rebuilds its media and video comes back', async (t) => {
    const pid = server.server.rooms.get(consultation.roomId)?.workerPid;
    t.type(pid, 'number', 'the room runs on a worker');
    process.kill(pid as number, 'SIGKILL');
    for (const [name, side] of sides) {
      await waitFor(`${name} to be told of the media reset`, async () =>
        (await pageRecord(side.page)).events.includes('mediaReset'),
      );
      const frames = await decodesMoreThan(side, 0, `${name} to decode video again`, practitioner, patient);
      t.ok(frames > 0, `${name} decodes video again on new transports (${frames} frames)`);
    }
    const reading = `dataMessage:${patientId}:oximeter:{"spo2":98}`;
    await waitFor(
      'a reading over the data channel reopened after the reset',
      async () => {
        await patient.page.evaluate(() => window.oximeter?.send(JSON.stringify({ spo2: 98 })));
        return (await pageRecord(practitioner.page)).events.includes(reading);
      },
      60_000,
      500,
    );
    t.pass('the SDK reopened the data channel on the new transports');
  });

  await t.test('no side saw an unexpected SDK error, and leaving is seen by the other side', async (t) => {
    t.same((await pageRecord(patient.page)).errors, [], 'the patient saw no SDK error');
    t.same((await pageRecord(practitioner.page)).errors, [], 'the practitioner saw no SDK error');
    await patient.page.evaluate(() => window.tc?.room.leave());
    await waitFor('the practitioner to see the patient leave', async () => {
      const left = await practitioner.page.evaluate(() => window.tc?.room.participants.size === 0);
      return left || undefined;
    });
    t.pass('the patient left and the practitioner saw it');
  });
});

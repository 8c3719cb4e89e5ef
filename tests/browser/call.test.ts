import t from 'tap';
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

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

t.test(
  'a practitioner and an admitted patient see each other through the SDK in Chromium',
  { skip },
  async (t) => {
    await buildSdkBundle();
    const server = await startTestServer();
    t.teardown(() => server.stop());
    const browser: TestBrowser = await launchBrowser();
    t.teardown(() => browser.close());
    const origin = localhostUrl(server.url);
    const consultation = await createConsultation(server);

    const practitioner = await browser.openPage(`${origin}/`);
    const patient = await browser.openPage(`${origin}/`);
    const joinedPractitioner = await joinInPage(practitioner.page, origin, consultation.tokens.practitioner);
    t.equal(joinedPractitioner.state, 'admitted', 'the practitioner is admitted on joining');
    t.same(
      await publishCameraAndMicrophone(practitioner.page),
      ['published', 'published'],
      'the practitioner publishes at once',
    );

    const joinedPatient = await joinInPage(patient.page, origin, consultation.tokens.patient);
    t.equal(joinedPatient.state, 'waiting', 'the patient starts in the waiting room');
    t.same(
      await publishCameraAndMicrophone(patient.page),
      ['queued', 'queued'],
      'publication waits for admission',
    );

    await waitFor('the practitioner to see the patient waiting', async () =>
      (await pageRecord(practitioner.page)).events.includes(
        `participantJoined:${joinedPatient.selfId}:waiting`,
      ),
    );
    // Give wrongly-routed media every chance to arrive before checking that none did.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const beforeAdmission = await pageRecord(patient.page);
    t.same(beforeAdmission.tracks, [], 'the waiting patient received no track');
    const waiting = server.server.rooms.get(consultation.roomId)?.participants.get(joinedPatient.selfId);
    t.equal(waiting?.transports.size, 0, 'the server holds no transport for the waiting patient');
    t.same(
      (await pageRecord(practitioner.page)).tracks,
      [],
      'the practitioner received nothing from the waiting patient',
    );

    await practitioner.page.evaluate((id) => window.tc?.room.admit(id), joinedPatient.selfId);
    await waitFor('the patient to learn it is admitted', async () =>
      (await pageRecord(patient.page)).admission.includes('admitted'),
    );

    for (const [name, side] of [
      ['patient', patient],
      ['practitioner', practitioner],
    ] as const) {
      const tracks = await waitFor(`${name} to receive audio and video`, async () => {
        const { tracks } = await pageRecord(side.page);
        return tracks.length >= 2 ? tracks : undefined;
      }).catch((err: Error) => {
        throw new Error(`${err.message}\n${details(practitioner, patient)}`);
      });
      t.same(
        tracks.map((track) => track.kind).sort(),
        ['audio', 'video'],
        `${name} receives one audio and one video track`,
      );
      const frames = await waitFor(`${name} to decode video`, async () => {
        const frames = await framesDecoded(side.page);
        return frames > 0 ? frames : undefined;
      }).catch((err: Error) => {
        throw new Error(`${err.message}\n${details(practitioner, patient)}`);
      });
      t.ok(frames > 0, `${name} decoded ${frames} video frames from the other side`);
    }
    t.same((await pageRecord(patient.page)).errors, [], 'the patient saw no SDK error');
    t.same((await pageRecord(practitioner.page)).errors, [], 'the practitioner saw no SDK error');

    await patient.page.evaluate(() => window.tc?.room.leave());
    await waitFor('the practitioner to see the patient leave', async () => {
      const left = await practitioner.page.evaluate(() => window.tc?.room.participants.size === 0);
      return left || undefined;
    });
    t.pass('the patient left and the practitioner saw it');
  },
);

import type { Page } from 'playwright-core';
import type * as Sdk from '../../src/sdk/index.js';
import { launchBrowser, localhostUrl, type TestBrowser } from '../../tests/support/browser.js';
import { percentilesOf } from '../peer/index.js';
import { ErrorLog, hostInfo, measureServer } from '../harness/scenarioReport.js';
import type { ScenarioReport } from '../harness/scenarioReport.js';
import type { SelfTarget } from '../targets/self/target.js';

export interface BrowserAdmissionOptions {
  /** Patients admitted, one consultation each, one after the other. */
  rounds: number;
  /** Seconds a patient waits (consented, camera and microphone queued) before the admission. */
  waitS: number;
  /**
   * The patient SDK's `connectAhead`: on, off, or `both`: rounds alternate off and on (odd rounds
   * off), so that both are measured under the same load; the off rounds' latencies end in `Off`.
   */
  connectAhead: 'on' | 'off' | 'both';
  workers: number;
  timeoutMs: number;
  progress: (line: string) => void;
  log: (line: string) => void;
}

export interface BrowserAdmissionResults {
  rounds: number;
  admitted: number;
}

/** What a page records, in wall-clock milliseconds (both pages and the bench share the clock). */
interface Recorded {
  admitAt?: number;
  /** The SDK's admissionChanged('admitted'). */
  admittedAt?: number;
  /** The SDK's trackAdded for the other's video. */
  trackAt?: number;
  firstFrameAt?: number;
}

declare global {
  interface Window {
    admission?: Recorded;
    admissionRoom?: { leave(): Promise<void>; admit(participantId: string): Promise<void> };
  }
}

/** One distribution per measure, for the rounds of one connect-ahead setting. */
class Samples {
  readonly patientAdmitted: number[] = [];
  readonly patientTrack: number[] = [];
  readonly patientFrame: number[] = [];
  readonly practitionerFrame: number[] = [];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Joins through the served SDK bundle, publishes camera and microphone, records the first remote video frame. */
async function join(page: Page, signallingUrl: string, token: string, connectAhead: boolean): Promise<void> {
  await page.evaluate(
    async ({ signallingUrl, token, connectAhead }) => {
      const sdk = (await import(['/sdk', 'teleconsult-sdk.js'].join('/'))) as typeof Sdk;
      const recorded: Recorded = {};
      window.admission = recorded;
      const room = await sdk.connect(signallingUrl, token, {
        handlerName: 'Chrome111',
        locale: 'en',
        connectAhead,
      });
      window.admissionRoom = room;
      room.on('admissionChanged', (state) => {
        if (state === 'admitted') recorded.admittedAt ??= Date.now();
      });
      room.on('trackAdded', (remote) => {
        if (remote.kind !== 'video') return;
        recorded.trackAt ??= Date.now();
        const video = document.createElement('video');
        video.muted = true;
        video.autoplay = true;
        video.srcObject = new MediaStream([remote.track]);
        document.body.append(video);
        // The first frame handed to the compositor: decoded and ready to show.
        video.requestVideoFrameCallback(() => {
          recorded.firstFrameAt ??= Date.now();
        });
        void video.play().catch(() => undefined);
      });
      const text = (await room.getConsentTexts()).find((t) => t.purpose === 'teleconsultation');
      if (text && room.self.role === 'patient') await room.giveConsent(text);
      await room.publishCamera();
      await room.publishMicrophone();
    },
    { signallingUrl, token, connectAhead },
  );
}

async function recorded(page: Page): Promise<Recorded> {
  return (await page.evaluate(() => window.admission)) ?? {};
}

/**
 * Scenario `browser-admission`: the practitioner's and the patient's headless Chromium pages (the
 * served SDK bundle) in a consultation with a waiting room. Each round the patient joins, consents
 * and publishes (queued until admission), waits `waitS` seconds, then the practitioner admits it.
 * From the practitioner's admit call to the first video frame decoded on each side (the doctor's
 * video on the patient's page, the patient's on the practitioner's).
 */
export async function runBrowserAdmission(
  target: SelfTarget,
  options: BrowserAdmissionOptions,
): Promise<ScenarioReport<BrowserAdmissionResults>> {
  const startedAt = new Date();
  const began = performance.now();
  const errors = new ErrorLog();
  await target.start({ workers: options.workers, maxSessions: 1, log: options.log });
  const workers = target.serverPids().workers.length;
  let browser: TestBrowser | undefined;
  try {
    const api = target.platform;
    const origin = localhostUrl(target.server.url);
    browser = await launchBrowser();
    const usage = measureServer(target.serverPids());
    const measured = { on: new Samples(), off: new Samples() };
    for (let round = 1; round <= options.rounds; round++) {
      const ahead = options.connectAhead === 'both' ? round % 2 === 0 : options.connectAhead === 'on';
      const samples = ahead ? measured.on : measured.off;
      options.progress(`browser admission: round ${round}/${options.rounds}`);
      const roomId = await api.createRoom({ waitingRoom: true, maxParticipants: 2 });
      const doctor = await api.invite(roomId, 'practitioner', `doc-${round}`);
      const patient = await api.invite(roomId, 'patient', `pat-${round}`);
      const doctorPage = await browser.openPage(`${origin}/`);
      const patientPage = await browser.openPage(`${origin}/`);
      try {
        await join(doctorPage.page, origin, doctor.token, true);
        await join(patientPage.page, origin, patient.token, ahead);
        await sleep(options.waitS * 1000);
        await doctorPage.page.evaluate(async (participantId) => {
          const admission = window.admission!;
          admission.admitAt = Date.now();
          await window.admissionRoom!.admit(participantId);
        }, patient.participantId);
        const admitAt = (await recorded(doctorPage.page)).admitAt!;
        const deadline = Date.now() + options.timeoutMs;
        let atPatient: number | undefined;
        let atDoctor: number | undefined;
        while ((atPatient === undefined || atDoctor === undefined) && Date.now() < deadline) {
          atPatient = (await recorded(patientPage.page)).firstFrameAt;
          atDoctor = (await recorded(doctorPage.page)).firstFrameAt;
          if (atPatient === undefined || atDoctor === undefined) await sleep(20);
        }
        if (atPatient === undefined || atDoctor === undefined) {
          errors.note(
            new Error(`round ${round}: no frame on both sides ${options.timeoutMs} ms after admit`),
          );
          continue;
        }
        samples.patientFrame.push(atPatient - admitAt);
        const patientSide = await recorded(patientPage.page);
        if (patientSide.admittedAt !== undefined)
          samples.patientAdmitted.push(patientSide.admittedAt - admitAt);
        if (patientSide.trackAt !== undefined) samples.patientTrack.push(patientSide.trackAt - admitAt);
        samples.practitionerFrame.push(atDoctor - admitAt);
        options.log(
          `round ${round} (connect ahead ${ahead ? 'on' : 'off'}): patient's first frame ${atPatient - admitAt} ms, practitioner's ${atDoctor - admitAt} ms after admit`,
        );
      } catch (err) {
        errors.note(err);
      } finally {
        for (const page of [patientPage.page, doctorPage.page])
          await page.evaluate(() => window.admissionRoom?.leave()).catch(() => undefined);
        await patientPage.page.close().catch(() => undefined);
        await doctorPage.page.close().catch(() => undefined);
        await api.deleteRoom(roomId).catch(() => undefined);
      }
    }
    const phase = usage.end();
    const distribution = (values: number[]) => ({
      ...percentilesOf(values),
      samples: values.length,
      max: Math.max(0, ...values),
    });
    const latencies = (s: Samples, suffix: string) =>
      s.patientFrame.length === 0
        ? {}
        : {
            [`admitToPatientAdmitted${suffix}`]: distribution(s.patientAdmitted),
            [`admitToPatientTrack${suffix}`]: distribution(s.patientTrack),
            [`admitToPatientFirstFrame${suffix}`]: distribution(s.patientFrame),
            [`admitToPractitionerFirstFrame${suffix}`]: distribution(s.practitionerFrame),
          };
    return {
      scenario: 'browser-admission',
      target: target.name,
      workers,
      startedAt: startedAt.toISOString(),
      elapsedS: (performance.now() - began) / 1000,
      host: hostInfo(),
      parameters: { rounds: options.rounds, waitS: options.waitS, connectAhead: options.connectAhead },
      results: {
        rounds: options.rounds,
        admitted: measured.on.patientFrame.length + measured.off.patientFrame.length,
      },
      latenciesMs: { ...latencies(measured.on, ''), ...latencies(measured.off, 'Off') },
      server: { rounds: phase },
      failures: errors.count,
      errors: errors.messages,
      notes: [
        "From the practitioner's admit call (its page's clock) to the patient's SDK events " +
          "(admissionChanged('admitted'), trackAdded of the practitioner's video) and " +
          'to the first video frame presented ' +
          "(requestVideoFrameCallback) on the patient's page (the practitioner's camera) and on the " +
          "practitioner's page (the patient's camera); Chromium's fake camera, loopback.",
        'One consultation per round, one round after the other; the patient consented and queued ' +
          'its camera and microphone before waiting.',
        'The SDK bundle is the one built from this tree (dist/sdk) when the scenario ran. ' +
          'Latencies ending in Off: rounds whose patient joined with connectAhead: false (with --connect-ahead both, odd rounds).',
      ],
    };
  } finally {
    options.progress('closing');
    await browser?.close();
    await target.stop();
  }
}

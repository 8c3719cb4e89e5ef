import t, { type Test } from 'tap';
import type { Page } from 'playwright-core';
import { startTestServer } from '../support/server.js';
import { chromiumAvailable, launchBrowser, localhostUrl } from '../support/browser.js';
import { buildSdkBundle, waitFor } from './harness.js';

const skip = (await chromiumAvailable()) ? false : 'chromium is not installed';

/** Width of the first remote video that is actually playing, or 0. */
function playingVideoWidth(page: Page, selector = 'video[data-role="remote-video"]'): Promise<number> {
  return page.evaluate((selector) => {
    for (const video of document.querySelectorAll<HTMLVideoElement>(selector)) {
      if (video.videoWidth > 0 && !video.paused && video.readyState >= 2) return video.videoWidth;
    }
    return 0;
  }, selector);
}

async function expectPlaying(
  t: Test,
  page: Page,
  name: string,
  problems: string[],
  selector?: string,
): Promise<void> {
  const width = await waitFor(`${name} to play the video`, async () => {
    const width = await playingVideoWidth(page, selector);
    return width > 0 ? width : undefined;
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n${problems.join('\n')}`);
  });
  t.ok(width > 0, `${name} plays the video (${width} px wide)`);
}

function watch(page: Page, problems: string[]): void {
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
}

t.test(
  'the try-it page runs the waiting room: consent, pre-call check, hold message, admission, call',
  { skip },
  async (t) => {
    await buildSdkBundle();
    const server = await startTestServer();
    t.teardown(() => server.stop());
    const browser = await launchBrowser();
    t.teardown(() => browser.close());
    const origin = localhostUrl(server.url);

    const { page: landing, problems } = await browser.openPage(`${origin}/`);
    t.equal(
      await landing.textContent('#create'),
      'Créer une consultation de test',
      'the page speaks French by default',
    );
    await landing.click('#language');
    t.equal(await landing.textContent('#create'), 'Create a test consultation', 'and English on request');
    await landing.click('#language');
    t.equal(await landing.textContent('#create'), 'Créer une consultation de test', 'and French again');

    await landing.click('#create');
    await landing.waitForSelector('#links:not([hidden])', { timeout: 30_000 });
    const practitionerHref = await landing.getAttribute('#practitioner-link', 'href');
    const patientHref = await landing.getAttribute('#patient-link', 'href');
    t.match(
      practitionerHref,
      /^\/#role=practitioner&token=/,
      'a practitioner link is shown, its token in the fragment',
    );
    t.match(patientHref, /^\/#role=patient&token=/, 'a patient link is shown, its token in the fragment');

    // Both links open in new tabs, as a newcomer would open them.
    const [practitioner] = await Promise.all([
      browser.context.waitForEvent('page'),
      landing.click('#practitioner-link'),
    ]);
    const [patient] = await Promise.all([
      browser.context.waitForEvent('page'),
      landing.click('#patient-link'),
    ]);
    const pageProblems: string[] = [...problems];
    for (const page of [practitioner, patient]) {
      watch(page, pageProblems);
      await page.waitForLoadState('load');
    }

    await t.test('the patient waits and is shown the consent text in French', async (t) => {
      await patient.waitForSelector('#status[data-state="waiting"]', { timeout: 60_000 });
      await patient.waitForSelector('#consent:not([hidden])', { timeout: 30_000 });
      t.match(await patient.textContent('#consent-text'), /téléconsultation/, 'the consent text is shown');
      t.equal(await patient.textContent('#consent-accept'), "J'accepte", 'with an explicit "J\'accepte"');
      t.match(await patient.textContent('#status'), /salle d'attente/, 'the waiting state is shown');
      t.notOk(await patient.locator('#waiting-list').isVisible(), 'the patient sees no waiting list');
    });

    const entry = practitioner.locator('#waiting li[data-participant-id="patient-1"]');
    const admit = entry.locator('button[data-action="admit"]');

    await t.test('the practitioner sees who waits, and cannot admit before consent', async (t) => {
      await admit.waitFor({ timeout: 60_000 });
      t.match(await entry.textContent(), /Patient/, 'the waiting patient is listed');
      t.match(
        await entry.locator('[data-field="facts"]').textContent(),
        /en attente depuis \d{2}:\d{2} · consentement pas encore donné/,
        'since when, and that consent is not given yet',
      );
      t.equal(
        await entry.locator('[data-field="precheck"]').textContent(),
        'pas de test technique',
        'no pre-call check yet',
      );
      t.ok(await admit.isDisabled(), 'Admit is disabled until consent');
    });

    await t.test('the pre-call check shows the camera through the server and its result', async (t) => {
      t.equal(
        await patient.textContent('#precheck-run'),
        'Tester ma caméra et mon réseau',
        'the patient is offered the check',
      );
      await patient.click('#precheck-run');
      await expectPlaying(t, patient, 'the looped-back preview', pageProblems, '#precheck-video');
      await patient.waitForSelector('#precheck-result:not([hidden])', { timeout: 60_000 });
      t.equal(
        await patient.getAttribute('#precheck-result [data-field="camera"]', 'data-ok'),
        'true',
        'the camera passes',
      );
      t.equal(
        await patient.getAttribute('#precheck-result [data-field="microphone"]', 'data-ok'),
        'true',
        'the microphone passes',
      );
      t.match(
        await patient.textContent('#precheck-result'),
        /Aller-retour.*ms.*Pertes.*%.*Débit montant.*kbit\/s/,
        'with round trip, loss and upload figures',
      );
      await waitFor('the practitioner to see the pre-call result', async () =>
        /^test : caméra OK, micro OK/.test(
          (await entry.locator('[data-field="precheck"]').textContent()) ?? '',
        ),
      );
      t.pass('the practitioner sees the pre-call result in the waiting list');
    });

    await t.test('a hold message reaches the patient', async (t) => {
      await entry.locator('input[data-field="hold-message"]').fill('Encore cinq minutes, merci.');
      await entry.locator('button[data-action="hold"]').click();
      await patient.waitForSelector('#held-message:not([hidden])', { timeout: 30_000 });
      t.equal(
        await patient.textContent('#held-message'),
        'Encore cinq minutes, merci.',
        'shown to the patient',
      );
      await waitFor('the waiting list to show the message sent', async () =>
        (
          (await entry
            .locator('[data-field="held"]')
            .textContent()
            .catch(() => '')) ?? ''
        ).includes('Encore'),
      );
      t.pass('and noted in the waiting list');
    });

    await t.test('after "J\'accepte" the practitioner admits and both views see each other', async (t) => {
      await patient.click('#consent-accept');
      await patient.waitForSelector('#consent-given:not([hidden])', { timeout: 30_000 });
      t.match(await patient.textContent('#status'), /consentement est enregistré/, 'the patient is told');
      await waitFor('Admit to be enabled', async () => !(await admit.isDisabled()));
      t.match(
        await entry.locator('[data-field="facts"]').textContent(),
        /consentement donné/,
        'the practitioner sees the consent',
      );
      await admit.click();
      for (const [name, page] of [
        ['practitioner view', practitioner],
        ['patient view', patient],
      ] as const) {
        await expectPlaying(t, page, name, pageProblems);
      }
      t.match(
        await patient.getAttribute('#status', 'data-state'),
        /^(admitted|in-call)$/,
        'the patient view shows the call',
      );
      t.ok(await patient.locator('#consent').isHidden(), 'the consent panel is gone');
      t.ok(await patient.locator('#held-message').isHidden(), 'and the hold message');
      t.equal(await patient.getAttribute('#connection', 'data-state'), 'connected', 'connected');
      t.ok(await practitioner.locator('#waiting-empty').isVisible(), 'nobody waits any more');
      t.notOk(await practitioner.locator('#call-error').isVisible(), 'the practitioner view shows no error');
      t.notOk(await patient.locator('#call-error').isVisible(), 'the patient view shows no error');
    });
    await Promise.all([patient.close(), practitioner.close(), landing.close()]);
  },
);

t.test('a patient joins from the try-it page with an access code', { skip }, async (t) => {
  await buildSdkBundle();
  const server = await startTestServer();
  t.teardown(() => server.stop());
  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const origin = localhostUrl(server.url);
  const problems: string[] = [];

  const demo = (await (await fetch(`${server.url}/demo/consultations`, { method: 'POST' })).json()) as {
    roomId: string;
    tokens: { practitioner: string };
  };
  // The platform's backend creates the invitation; the patient gets its 8-digit code.
  const invitation = await server.rest<{ accessCode: string; participantId: string }>(
    'POST',
    `/v1/rooms/${demo.roomId}/invitations`,
    { role: 'patient', displayName: 'Patient par code' },
  );
  t.match(invitation.body.accessCode, /^\d{8}$/, 'the invitation has an access code');

  const { page: practitioner } = await browser.openPage(
    `${origin}/#role=practitioner&token=${encodeURIComponent(demo.tokens.practitioner)}`,
  );
  const { page: patient } = await browser.openPage(`${origin}/`);
  watch(practitioner, problems);
  watch(patient, problems);
  t.equal(
    await patient.textContent('label[for="access-code"]'),
    "Vous avez un code d'accès ? Saisissez-le :",
    'the landing page offers to type a code',
  );
  const code = invitation.body.accessCode;
  await patient.fill('#access-code', `${code.slice(0, 4)} ${code.slice(4)}`);
  await patient.click('#join-code');
  await patient.waitForSelector('#status[data-state="waiting"]', { timeout: 60_000 });
  t.pass('the code joins the waiting room');
  await patient.waitForSelector('#consent-accept:not([hidden])', { timeout: 30_000 });
  await patient.click('#consent-accept');
  const admit = practitioner.locator(
    `#waiting li[data-participant-id="${invitation.body.participantId}"] button[data-action="admit"]`,
  );
  await admit.waitFor({ timeout: 60_000 });
  await waitFor('Admit to be enabled', async () => !(await admit.isDisabled()));
  await admit.click();
  await expectPlaying(t, patient, 'the patient view', problems);
  await expectPlaying(t, practitioner, 'the practitioner view', problems);
  t.notOk(await patient.locator('#call-error').isVisible(), 'the patient view shows no error');
});

t.test(
  'the assisted-consultation mode: the practitioner requests, sees, hears and reads the simulated devices',
  { skip },
  async (t) => {
    await buildSdkBundle();
    const server = await startTestServer();
    t.teardown(() => server.stop());
    const browser = await launchBrowser();
    t.teardown(() => browser.close());
    const origin = localhostUrl(server.url);

    const { page: landing, problems } = await browser.openPage(`${origin}/`);
    await landing.click('#create-assisted');
    await landing.waitForSelector('#links:not([hidden])', { timeout: 30_000 });
    t.match(
      await landing.getAttribute('#practitioner-link', 'href'),
      /^\/#role=practitioner&token=[^&]+&mode=assisted$/,
      'the practitioner link opens the assisted mode',
    );
    t.match(
      await landing.getAttribute('#patient-link', 'href'),
      /^\/#role=patient&token=[^&]+&mode=assisted$/,
      'and the patient link',
    );
    const [practitioner] = await Promise.all([
      browser.context.waitForEvent('page'),
      landing.click('#practitioner-link'),
    ]);
    const [patient] = await Promise.all([
      browser.context.waitForEvent('page'),
      landing.click('#patient-link'),
    ]);
    const pageProblems: string[] = [...problems];
    for (const page of [practitioner, patient]) {
      watch(page, pageProblems);
      await page.waitForLoadState('load');
    }
    await patient.waitForSelector('#consent-accept:not([hidden])', { timeout: 60_000 });
    await patient.click('#consent-accept');
    const admit = practitioner.locator(
      '#waiting li[data-participant-id="patient-1"] button[data-action="admit"]',
    );
    await admit.waitFor({ timeout: 60_000 });
    await waitFor('Admit to be enabled', async () => !(await admit.isDisabled()));
    await admit.click();
    await expectPlaying(t, practitioner, 'the practitioner view (camera)', pageProblems);

    t.ok(await practitioner.locator('#device-viewer').isVisible(), 'the practitioner sees the devices panel');
    t.ok(await patient.locator('#device-holder').isVisible(), 'the patient holds the simulated devices');
    t.notOk(await practitioner.locator('#device-holder').isVisible(), 'the practitioner holds none');

    // "Show me": the practitioner asks for the examination camera; the patient's view shows it.
    await practitioner.click('button[data-request="examination-video"]');
    await patient.waitForSelector('#device-requests li[data-source="examination-video"]', {
      timeout: 30_000,
    });
    t.equal(
      await patient.getAttribute('#device-examination-video', 'data-requested'),
      'true',
      'the patient sees the request on the examination camera button',
    );
    await patient.click('#device-examination-video');
    await patient.click('#device-stethoscope');
    await waitFor('the oximeter to be offered after admission', async () =>
      patient.locator('#device-oximeter').isEnabled(),
    );
    await patient.click('#device-oximeter');
    t.equal(
      await patient.locator('#device-requests li').count(),
      0,
      'the request is answered by sharing the device',
    );

    await expectPlaying(
      t,
      practitioner,
      'the examination video',
      pageProblems,
      'video[data-role="examination-video"]',
    );
    // The canvas is 1280 px wide: the examination profile keeps its full resolution.
    t.equal(
      await waitFor('the examination video at full width', async () =>
        (await playingVideoWidth(practitioner, 'video[data-role="examination-video"]')) === 1280
          ? 1280
          : undefined,
      ).catch(() => playingVideoWidth(practitioner, 'video[data-role="examination-video"]')),
      1280,
      'the examination video arrives at its full 1280 px width',
    );
    const received = await waitFor('the examination video and the stethoscope to arrive', () =>
      practitioner.evaluate(() => {
        const room = (
          window as unknown as {
            teleconsultRoom: { remoteTracks: { source: string; track: MediaStreamTrack }[] };
          }
        ).teleconsultRoom;
        const video = room.remoteTracks.find((r) => r.source === 'examination-video');
        const audio = room.remoteTracks.find((r) => r.source === 'examination-audio');
        const shown = (id: string) =>
          ((document.getElementById(id) as HTMLMediaElement).srcObject as MediaStream | null)?.getTracks()[0];
        if (!video || !audio) return undefined;
        return {
          videoShown: shown('examination-video') === video.track,
          audioPlayed: shown('stethoscope-audio') === audio.track,
          audioLive: audio.track.readyState === 'live',
        };
      }),
    );
    t.same(
      received,
      { videoShown: true, audioPlayed: true, audioLive: true },
      'the examination video track is shown and the stethoscope track is played',
    );
    t.equal(
      await practitioner.getAttribute('#stethoscope-state', 'data-state'),
      'receiving',
      'the stethoscope is shown as received',
    );
    // What the practitioner hears: the heart-like sound, its energy below 200 Hz.
    const heard = await practitioner.evaluate(async () => {
      const element = document.getElementById('stethoscope-audio') as HTMLAudioElement;
      const ctx = new AudioContext();
      await ctx.resume();
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 8192;
      analyser.smoothingTimeConstant = 0;
      ctx.createMediaStreamSource(element.srcObject as MediaStream).connect(analyser);
      const bins = new Float32Array(analyser.frequencyBinCount);
      const hz = ctx.sampleRate / analyser.fftSize;
      let low = 0;
      let high = 0;
      for (let i = 0; i < 40; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        analyser.getFloatFrequencyData(bins);
        bins.forEach((db, b) => {
          const power = 10 ** (db / 10);
          if (b * hz >= 20 && b * hz <= 200) low += power;
          else if (b * hz > 200) high += power;
        });
      }
      await ctx.close();
      return { lowDb: 10 * Math.log10(low / 40), highDb: 10 * Math.log10(high / 40) };
    });
    t.ok(
      heard.lowDb > -60 && heard.lowDb > heard.highDb + 10,
      `the practitioner hears the heart sound: 20-200 Hz at ${heard.lowDb.toFixed(1)} dB, ` +
        `above 200 Hz at ${heard.highDb.toFixed(1)} dB`,
    );

    const readings = await waitFor(
      'six readings',
      async () => {
        const seqs = await practitioner.$$eval('#vital-log li', (items) =>
          items.map((item) => ({ seq: Number(item.dataset.seq), kind: item.dataset.kind })),
        );
        return seqs.length >= 6 ? seqs : undefined;
      },
      30_000,
    );
    t.same(
      readings.map((r) => r.seq),
      readings.map((_, i) => readings[0]!.seq + i),
      `the readings arrive in order, none missing (${readings.length})`,
    );
    t.same([...new Set(readings.map((r) => r.kind))].sort(), ['pulse-rate', 'spo2'], 'SpO2 and pulse rate');
    t.match(
      await practitioner.textContent('#vital-latest dd[data-kind="spo2"]'),
      /^\d{2,3} %$/,
      'the latest SpO2 is shown',
    );
    // (Console lines are not judged: the browser's own favicon request is a 404 here.)
    t.same(
      pageProblems.filter((problem) => problem.startsWith('pageerror')),
      [],
      'no uncaught error in the pages',
    );
    t.notOk(await practitioner.locator('#call-error').isVisible(), 'the practitioner view shows no error');
    t.notOk(await patient.locator('#call-error').isVisible(), 'the patient view shows no error');
    await Promise.all([patient.close(), practitioner.close(), landing.close()]);
  },
);

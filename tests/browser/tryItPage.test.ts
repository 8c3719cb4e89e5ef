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

import t from 'tap';
import type { Page } from 'playwright-core';
import { startTestServer } from '../support/server.js';
import { chromiumAvailable, launchBrowser, localhostUrl } from '../support/browser.js';
import { buildSdkBundle, waitFor } from './harness.js';

const skip = (await chromiumAvailable()) ? false : 'chromium is not installed';

/** Width of the first remote video that is actually playing, or 0. */
function playingRemoteVideoWidth(page: Page): Promise<number> {
  return page.evaluate(() => {
    for (const video of document.querySelectorAll<HTMLVideoElement>('video[data-role="remote-video"]')) {
      if (video.videoWidth > 0 && !video.paused && video.readyState >= 2) return video.videoWidth;
    }
    return 0;
  });
}

t.test('the try-it page creates a consultation whose two views see each other', { skip }, async (t) => {
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

  await landing.click('#create');
  await landing.waitForSelector('#links:not([hidden])', { timeout: 30_000 });
  const practitionerHref = await landing.getAttribute('#practitioner-link', 'href');
  const patientHref = await landing.getAttribute('#patient-link', 'href');
  t.match(practitionerHref, /^\/\?role=practitioner&token=/, 'a practitioner link is shown');
  t.match(patientHref, /^\/\?role=patient&token=/, 'a patient link is shown');

  // Both links open in new tabs, as a newcomer would open them.
  const [practitioner] = await Promise.all([
    browser.context.waitForEvent('page'),
    landing.click('#practitioner-link'),
  ]);
  const [patient] = await Promise.all([browser.context.waitForEvent('page'), landing.click('#patient-link')]);
  const pageProblems: string[] = [...problems];
  for (const page of [practitioner, patient]) {
    page.on('pageerror', (error) => pageProblems.push(error.message));
    await page.waitForLoadState('load');
  }

  await patient.waitForSelector('#status[data-state="waiting"]', { timeout: 60_000 });
  t.pass('the patient view shows the waiting room');
  t.notOk(await patient.locator('#waiting-list').isVisible(), 'the patient sees no waiting list');

  const admit = practitioner.locator('#waiting button[data-action="admit"]');
  await admit.waitFor({ timeout: 60_000 });
  t.pass('the practitioner view lists the waiting patient');
  await admit.click();

  for (const [name, page] of [
    ['practitioner', practitioner],
    ['patient', patient],
  ] as const) {
    const width = await waitFor(`${name} view to play the remote video`, async () => {
      const width = await playingRemoteVideoWidth(page);
      return width > 0 ? width : undefined;
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${pageProblems.join('\n')}`);
    });
    t.ok(width > 0, `the ${name} view plays the other side's video (${width} px wide)`);
  }
  t.match(
    await patient.getAttribute('#status', 'data-state'),
    /^(admitted|in-call)$/,
    'the patient view shows the call',
  );
  t.equal(await patient.getAttribute('#connection', 'data-state'), 'connected', 'and a connected state');
  t.notOk(await practitioner.locator('#call-error').isVisible(), 'the practitioner view shows no error');
  t.notOk(await patient.locator('#call-error').isVisible(), 'the patient view shows no error');
});

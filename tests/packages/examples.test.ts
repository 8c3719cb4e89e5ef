import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import t from 'tap';
import type * as Sdk from '../../src/sdk/index.js';
import { waitFor } from '../browser/harness.js';
import { chromiumAvailable, launchBrowser, localhostUrl } from '../support/browser.js';
import { startTestServer } from '../support/server.js';

declare global {
  interface Window {
    platformRoom?: Sdk.Room;
  }
}

/**
 * The examples in examples/platform run as a platform team would wire them: the backend (Node,
 * @teleconsult/server) books a consultation and receives webhooks; the front end (bundled with
 * esbuild from @teleconsult/sdk, both packages resolved by name from node_modules) is opened from
 * the join links in Chromium, and the patient waits, consents, is admitted and sees the video.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const skip = (await chromiumAvailable()) ? false : 'chromium is not installed';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** An app directory whose node_modules has the two packages, as `npm install` would leave them. */
async function appDirectory(): Promise<string> {
  const dir = path.join(root, 'dist', 'example-platform');
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(path.join(dir, 'node_modules', '@teleconsult'), { recursive: true });
  for (const name of ['sdk', 'server'])
    await fs.symlink(path.join(root, 'packages', name), path.join(dir, 'node_modules', '@teleconsult', name));
  for (const file of ['backend.mjs', 'frontend.js'])
    await fs.copyFile(path.join(root, 'examples', 'platform', file), path.join(dir, file));
  return dir;
}

t.test(
  'the example backend and front end, wired to the packages, run a consultation',
  { skip },
  async (t) => {
    const dir = await appDirectory();
    await build({
      entryPoints: [path.join(dir, 'frontend.js')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: ['chrome110'],
      outfile: path.join(dir, 'app.js'),
      // mediasoup-client, the SDK package's dependency, is installed at the repository's root.
      nodePaths: [path.join(root, 'node_modules')],
      logLevel: 'warning',
    });
    const backendPort = await freePort();
    const backendOrigin = `http://localhost:${backendPort}`;
    const secret = 'example-webhook-secret-0123456789';
    const server = await startTestServer({
      server: { joinBaseUrl: `${backendOrigin}/consultation` },
      webhooks: { url: `http://127.0.0.1:${backendPort}/webhooks`, secret },
    });
    t.teardown(() => server.stop());
    const backend: ChildProcess = spawn(process.execPath, [path.join(dir, 'backend.mjs')], {
      env: {
        ...process.env,
        PORT: String(backendPort),
        SFU_URL: localhostUrl(server.url),
        SFU_API_KEY: server.apiKey,
        SFU_WEBHOOK_SECRET: secret,
        FRONTEND_BUNDLE: path.join(dir, 'app.js'),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.teardown(() => void backend.kill('SIGTERM'));
    await new Promise<void>((resolve, reject) => {
      backend.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('listening')) resolve();
      });
      backend.once('exit', (code) => reject(new Error(`backend exited with ${code}`)));
    });

    const booked = await fetch(`${backendOrigin}/consultations`, { method: 'POST' });
    t.equal(booked.status, 201, 'the backend booked a consultation through the REST client');
    const links = (await booked.json()) as { roomId: string; practitionerUrl: string; patientUrl: string };
    t.ok(
      links.patientUrl.startsWith(`${backendOrigin}/consultation#`),
      'the join link opens the platform page',
    );

    const browser = await launchBrowser();
    t.teardown(() => browser.close());
    const patient = await browser.openPage(links.patientUrl);
    await waitFor('the backend to receive participant.waiting', async () => {
      const events = (await (await fetch(`${backendOrigin}/events`)).json()) as string[];
      return events.includes('participant.waiting');
    });
    t.pass('the backend verified and handled the participant.waiting webhook');
    const practitioner = await browser.openPage(links.practitionerUrl);
    for (const [name, side] of [
      ['patient', patient],
      ['practitioner', practitioner],
    ] as const) {
      const frames = await waitFor(`the ${name} page to decode video`, async () => {
        const decoded = await side.page.evaluate(async () => {
          const stats = await window.platformRoom?.getStats();
          let n = 0;
          stats?.recv?.forEach((r: { type?: string; kind?: string; framesDecoded?: number }) => {
            if (r.type === 'inbound-rtp' && r.kind === 'video') n += r.framesDecoded ?? 0;
          });
          return n;
        });
        return decoded > 10 ? decoded : undefined;
      }).catch((err: Error) => {
        throw new Error(`${err.message}: ${[...patient.problems, ...practitioner.problems].join(' | ')}`);
      });
      t.ok(frames > 10, `the ${name} page decodes the other side's video`);
    }
    t.equal(await patient.page.textContent('#status'), 'admitted', 'the patient was admitted');
    t.notMatch(patient.page.url(), /token/, 'the page removed the token from the address bar');
  },
);

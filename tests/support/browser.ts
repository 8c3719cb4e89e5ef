import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium (apt package `chromium`); playwright-core drives it, nothing is downloaded. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Headless Chromium on this machine: no sandbox (root), no network of its own, hidden tabs kept running. */
export const HEADLESS_CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  // Keep the browser off the network: tests talk to loopback only.
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // A hidden tab must keep decoding video: headless pages are never "visible".
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

const CHROMIUM_ARGS = [
  // Synthetic camera (a moving pattern) and microphone (a beep), and no permission prompt.
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  ...HEADLESS_CHROMIUM_ARGS,
];

/**
 * What the test harness needs of a page, whichever browser drives it (playwright-core's Chromium
 * page, or Firefox through puppeteer-core): run a function in the page with one serialisable argument.
 */
export interface ScriptPage {
  evaluate<R>(fn: () => R | Promise<R>): Promise<R>;
  evaluate<R, A>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R>;
}

export interface TestPage {
  page: Page;
  /** Console errors and uncaught exceptions seen on the page (for failure messages). */
  problems: string[];
}

export interface TestBrowser {
  context: BrowserContext;
  /** Opens a new tab on `url` (use `localhostUrl()`: pages must be a secure context). */
  openPage(url: string): Promise<TestPage>;
  /** Closes the browser and deletes its profile directory. Idempotent. */
  close(): Promise<void>;
}

export async function chromiumAvailable(): Promise<boolean> {
  return fs
    .access(CHROMIUM_PATH)
    .then(() => true)
    .catch(() => false);
}

/**
 * Launches headless Chromium with fake media devices and a fresh profile. `extraArgs` adds flags,
 * e.g. `--use-file-for-fake-audio-capture=FILE.wav` for a microphone that plays a known signal.
 */
export async function launchBrowser(extraArgs: string[] = []): Promise<TestBrowser> {
  const profile = await fs.mkdtemp(path.join(os.tmpdir(), 'teleconsult-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS, ...extraArgs],
      viewport: { width: 1280, height: 800 },
      timeout: 60_000,
    });
  } catch (err) {
    await fs.rm(profile, { recursive: true, force: true });
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    context,
    async openPage(url) {
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(`console: ${message.text()}`);
      });
      page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
      await page.goto(url, { waitUntil: 'load', timeout: 60_000 });
      return { page, problems };
    },
    close() {
      closing ??= (async () => {
        await context.close().catch(() => undefined);
        await fs.rm(profile, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}

/**
 * The server listens on 127.0.0.1, but Chromium grants `navigator.mediaDevices` only to secure
 * contexts: `http://localhost` is one, `http://127.0.0.1` may not be. Same port, same machine.
 */
export function localhostUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.hostname === '127.0.0.1') parsed.hostname = 'localhost';
  return parsed.toString().replace(/\/$/, '');
}

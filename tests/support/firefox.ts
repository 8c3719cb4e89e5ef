import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Browser, Page, PuppeteerNode } from 'puppeteer-core';
import type { ScriptPage } from './browser.js';

/**
 * Debian's Firefox ESR (apt package `firefox-esr`), driven headless over WebDriver BiDi by
 * puppeteer-core: playwright-core only drives its own patched Firefox builds, and its BiDi path
 * sends commands that Firefox ESR 153 does not know. Nothing is downloaded.
 */
/**
 * Loaded through require(): tap's ESM loader resolves chromium-bidi's `exports` patterns to a file
 * that does not exist (BidiMapper.js.js), while Node's CommonJS resolution gets them right.
 */
const puppeteer = createRequire(import.meta.url)('puppeteer-core') as PuppeteerNode;

export const FIREFOX_PATH = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';

/** Fake camera and microphone without a prompt; ICE over loopback; no traffic beyond loopback. */
const FIREFOX_PREFS: Record<string, unknown> = {
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  // Firefox leaves loopback out of ICE unless told; the test server listens on 127.0.0.1 only.
  'media.peerconnection.ice.loopback': true,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  // A page in a background tab keeps its timers (headless tabs are never in front).
  'dom.min_background_timeout_value': 4,
  'dom.timeout.enable_budget_timer_throttling': false,
  // Keep the browser off the network: tests talk to loopback only.
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'app.update.enabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.enabled': false,
};

export interface FirefoxPage {
  /** Evaluates in the page (the harness's functions take this). */
  page: ScriptPage;
  /** Console errors and uncaught exceptions seen on the page (for failure messages). */
  problems: string[];
  close(): Promise<void>;
}

export interface TestFirefox {
  version: string;
  openPage(url: string): Promise<FirefoxPage>;
  close(): Promise<void>;
}

/**
 * Starts headless Firefox ESR, or says precisely why it cannot (to skip the tests that need it):
 * the binary is missing, or it did not start.
 */
export async function startFirefox(): Promise<{ firefox: TestFirefox } | { skip: string }> {
  const present = await fs
    .access(FIREFOX_PATH)
    .then(() => true)
    .catch(() => false);
  if (!present) return { skip: `${FIREFOX_PATH} is missing (scripts/setup.sh installs firefox-esr)` };
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath: FIREFOX_PATH,
      headless: true,
      extraPrefsFirefox: FIREFOX_PREFS,
      timeout: 60_000,
      protocolTimeout: 120_000,
    });
  } catch (err) {
    return { skip: `firefox-esr did not start: ${(err as Error).message.split('\n')[0] ?? ''}` };
  }
  const version = await browser.version();
  let closing: Promise<void> | undefined;
  return {
    firefox: {
      version,
      async openPage(url) {
        const page = await browser.newPage();
        const problems: string[] = [];
        page.on('console', (message) => {
          if (message.type() === 'error') problems.push(`console: ${message.text()}`);
        });
        page.on('pageerror', (error) => problems.push(`pageerror: ${String(error)}`));
        await page.goto(url, { waitUntil: 'load', timeout: 60_000 });
        return { page: scriptPage(page), problems, close: () => page.close() };
      },
      close() {
        closing ??= browser.close().catch(() => undefined);
        return closing;
      },
    },
  };
}

/** puppeteer's `evaluate(fn, ...args)` seen through the one-argument form the harness uses. */
function scriptPage(page: Page): ScriptPage {
  return {
    evaluate<R, A>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R> {
      return page.evaluate(fn as (arg: unknown) => Promise<R>, arg);
    },
  };
}

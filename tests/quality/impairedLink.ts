import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { HEADLESS_CHROMIUM_ARGS } from '../support/browser.js';

const run = promisify(execFile);

/**
 * A network namespace joined to the root namespace by a veth pair, with a private /30 used only
 * here, and a rate cap (tbf) on the root side: what the namespace receives goes through it.
 * A receiver run inside the namespace therefore sees a real, congestible downlink.
 */
export class ImpairedLink {
  /** Address of the root side (the server listens here). */
  readonly rootAddress: string;
  /** Address inside the namespace. */
  readonly nsAddress: string;
  private removed = false;

  private constructor(
    readonly namespace: string,
    readonly rootDevice: string,
    subnet: number,
  ) {
    this.rootAddress = `10.203.${subnet}.1`;
    this.nsAddress = `10.203.${subnet}.2`;
  }

  static async create(): Promise<ImpairedLink> {
    await ImpairedLink.removeStale();
    const tag = process.pid.toString(36);
    const link = new ImpairedLink(`tq-${tag}`, `tqr${tag}`, process.pid % 250);
    const nsDevice = `tqn${tag}`;
    try {
      await ip('netns', 'add', link.namespace);
      await ip('link', 'add', link.rootDevice, 'type', 'veth', 'peer', 'name', nsDevice);
      await ip('link', 'set', nsDevice, 'netns', link.namespace);
      await ip('addr', 'add', `${link.rootAddress}/30`, 'dev', link.rootDevice);
      await ip('link', 'set', link.rootDevice, 'up');
      await ip('netns', 'exec', link.namespace, 'ip', 'addr', 'add', `${link.nsAddress}/30`, 'dev', nsDevice);
      await ip('netns', 'exec', link.namespace, 'ip', 'link', 'set', nsDevice, 'up');
      await ip('netns', 'exec', link.namespace, 'ip', 'link', 'set', 'lo', 'up');
    } catch (err) {
      await link.remove();
      throw err;
    }
    return link;
  }

  /** Namespaces a killed run of this test left behind (their creator's pid is gone). */
  static async removeStale(): Promise<void> {
    const { stdout } = await run('ip', ['netns', 'list']);
    for (const match of stdout.matchAll(/^tq-([0-9a-z]+)\b/gm)) {
      const tag = match[1]!;
      const pid = parseInt(tag, 36);
      if (pid === process.pid || processAlive(pid)) continue;
      await run('tc', ['qdisc', 'del', 'dev', `tqr${tag}`, 'root']).catch(() => undefined);
      await ip('link', 'del', `tqr${tag}`).catch(() => undefined);
      await ip('netns', 'del', `tq-${tag}`).catch(() => undefined);
    }
  }

  /**
   * Caps what the namespace receives to `kbit` kbit/s (token bucket, 300 ms of queue, like a
   * mobile operator's buffer), or lifts the cap when null.
   */
  async setRate(kbit: number | null): Promise<void> {
    await run('tc', ['qdisc', 'del', 'dev', this.rootDevice, 'root']).catch(() => undefined);
    if (kbit === null) return;
    const burstBytes = Math.max(3000, Math.round((kbit * 1000) / 8 / 50));
    await run('tc', [
      'qdisc',
      'add',
      'dev',
      this.rootDevice,
      'root',
      'tbf',
      'rate',
      `${kbit}kbit`,
      'burst',
      String(burstBytes),
      'latency',
      '300ms',
    ]);
  }

  /** Deletes the qdisc, the veth pair and the namespace; idempotent, never throws. */
  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    await run('tc', ['qdisc', 'del', 'dev', this.rootDevice, 'root']).catch(() => undefined);
    await ip('link', 'del', this.rootDevice).catch(() => undefined);
    await ip('netns', 'del', this.namespace).catch(() => undefined);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function ip(...args: string[]): Promise<void> {
  await run('ip', args);
}

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export interface NamespacedBrowser {
  context: BrowserContext;
  openPage(url: string): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Headless Chromium running inside the namespace (through a wrapper: `ip netns exec NS chromium`),
 * so its WebRTC traffic and congestion-control feedback cross the capped link. The page is served
 * over plain HTTP from the root-side address, which Chromium is told to treat as secure.
 */
export async function launchInNamespace(link: ImpairedLink, origin: string): Promise<NamespacedBrowser> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'teleconsult-netns-chromium-'));
  const wrapper = path.join(dir, 'chromium-in-netns.sh');
  await fs.writeFile(wrapper, `#!/bin/sh\nexec ip netns exec ${link.namespace} ${CHROMIUM} "$@"\n`, {
    mode: 0o755,
  });
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
      executablePath: wrapper,
      headless: true,
      timeout: 60_000,
      args: [...HEADLESS_CHROMIUM_ARGS, `--unsafely-treat-insecure-origin-as-secure=${origin}`],
    });
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true });
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    context,
    async openPage(url) {
      const page = await context.newPage();
      await page.goto(url, { waitUntil: 'load', timeout: 60_000 });
      return page;
    },
    close() {
      closing ??= (async () => {
        await context.close().catch(() => undefined);
        await fs.rm(dir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}

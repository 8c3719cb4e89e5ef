import type { Page } from 'playwright-core';
import type * as Sdk from '../../src/sdk/index.js';
import { TcpRelay } from '../../tests/browser/tcpRelay.js';
import { launchBrowser, localhostUrl, type TestBrowser } from '../../tests/support/browser.js';
import { percentilesOf } from '../peer/index.js';
import { ErrorLog, hostInfo, measureServer } from '../harness/scenarioReport.js';
import type { ScenarioReport } from '../harness/scenarioReport.js';
import { TargetError } from '../harness/target.js';
import type { SelfTarget } from '../targets/self/target.js';

export interface BrowserRecoveryOptions {
  /** Network cuts, one after the other. */
  rounds: number;
  /** Seconds each cut lasts. */
  cutS: number;
  /**
   * The patient SDK's `reconnect.wakeOnNetworkReturn`: 'on' (the default SDK), 'off' (backoff
   * alone, the SDK before fast recovery), or 'both': `rounds` cuts with it off, then `rounds` with it
   * on, each on a consultation of its own.
   */
  fastRecovery?: 'on' | 'off' | 'both';
  workers: number;
  timeoutMs: number;
  progress: (line: string) => void;
  log: (line: string) => void;
}

export interface BrowserRecoveryResults {
  rounds: number;
  recovered: number;
  /** Attempt triggers of the SDK (`reconnectAttempt` events; empty with an SDK that has none). */
  triggers: Record<string, number>;
  /** The same for the rounds with fast recovery off (with fastRecovery 'off' or 'both'). */
  off?: { recovered: number; triggers: Record<string, number> };
}

/** What the patient's page records, with wall-clock times (the page and the bench share the clock). */
interface Recorded {
  connection: { state: string; at: number }[];
  triggers: string[];
}

declare global {
  interface Window {
    recovery?: Recorded;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function join(
  page: Page,
  signallingUrl: string,
  token: string,
  record: boolean,
  wakeOnNetworkReturn = true,
): Promise<void> {
  await page.evaluate(
    async ({ signallingUrl, token, record, wakeOnNetworkReturn }) => {
      const sdk = (await import(['/sdk', 'teleconsult-sdk.js'].join('/'))) as typeof Sdk;
      const room = await sdk.connect(signallingUrl, token, {
        handlerName: 'Chrome111',
        locale: 'en',
        reconnect: { wakeOnNetworkReturn },
      });
      if (record) {
        const recorded: Recorded = { connection: [], triggers: [] };
        room.on('connectionStateChanged', (state) => recorded.connection.push({ state, at: Date.now() }));
        // Absent from SDKs before fast recovery: then nothing is recorded.
        (room as unknown as { on(e: string, l: (i: { trigger: string }) => void): void }).on(
          'reconnectAttempt',
          (info) => recorded.triggers.push(info.trigger),
        );
        window.recovery = recorded;
      }
      const text = (await room.getConsentTexts()).find((t) => t.purpose === 'teleconsultation');
      if (text && room.self.role === 'patient') await room.giveConsent(text);
      await room.publishCamera();
      await room.publishMicrophone();
    },
    { signallingUrl, token, record, wakeOnNetworkReturn },
  );
}

interface Phase {
  recoveries: number[];
  triggers: Record<string, number>;
}

/** One consultation, `rounds` cuts of the patient's network; the browsers and relay closed after. */
async function runPhase(
  target: SelfTarget,
  options: BrowserRecoveryOptions,
  wakeOnNetworkReturn: boolean,
  errors: ErrorLog,
): Promise<Phase> {
  const label = wakeOnNetworkReturn ? 'fast recovery on' : 'fast recovery off';
  const browsers: TestBrowser[] = [];
  let relay: TcpRelay | undefined;
  try {
    const api = target.platform;
    const roomId = await api.createRoom({ waitingRoom: false, maxParticipants: 2 });
    const doctor = await api.invite(roomId, 'practitioner', 'doc');
    const patient = await api.invite(roomId, 'patient', 'pat');
    const origin = localhostUrl(target.server.url);
    relay = await TcpRelay.start(Number(new URL(target.server.url).port));
    // One browser each: going offline is per browser context.
    const doctorBrowser = await launchBrowser();
    browsers.push(doctorBrowser);
    const patientBrowser = await launchBrowser();
    browsers.push(patientBrowser);
    const doctorPage = await doctorBrowser.openPage(`${origin}/`);
    const patientPage = await patientBrowser.openPage(`${origin}/`);
    await join(doctorPage.page, origin, doctor.token, false);
    await join(patientPage.page, `ws://127.0.0.1:${relay.port}/ws`, patient.token, true, wakeOnNetworkReturn);
    const recoveries: number[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      options.progress(`browser recovery (${label}): round ${round}/${options.rounds}, network cut`);
      const seen = (await patientPage.page.evaluate(() => window.recovery?.connection.length)) ?? 0;
      relay.refuse(true);
      relay.cutAll();
      await patientBrowser.context.setOffline(true);
      await sleep(options.cutS * 1000);
      relay.refuse(false);
      const restoredAt = Date.now();
      await patientBrowser.context.setOffline(false);
      const deadline = Date.now() + options.timeoutMs;
      let connectedAt: number | undefined;
      while (connectedAt === undefined && Date.now() < deadline) {
        const states = (await patientPage.page.evaluate(() => window.recovery?.connection)) ?? [];
        const back = states.slice(seen).find((s) => s.state === 'connected' && s.at >= restoredAt);
        const ended = states.slice(seen).find((s) => s.state === 'disconnected');
        if (ended) throw new TargetError(`${label}, round ${round}: the SDK gave up (disconnected)`);
        connectedAt = back?.at;
        if (connectedAt === undefined) await sleep(20);
      }
      if (connectedAt === undefined) {
        errors.note(
          new Error(
            `${label}, round ${round}: not connected ${options.timeoutMs} ms after the network returned`,
          ),
        );
        continue;
      }
      recoveries.push(connectedAt - restoredAt);
      options.log(
        `${label}, round ${round}: connected ${connectedAt - restoredAt} ms after the network returned`,
      );
      await sleep(2_000);
    }
    const triggers: Record<string, number> = {};
    for (const trigger of (await patientPage.page.evaluate(() => window.recovery?.triggers)) ?? [])
      triggers[trigger] = (triggers[trigger] ?? 0) + 1;
    return { recoveries, triggers };
  } finally {
    for (const browser of browsers) await browser.close();
    await relay?.close();
  }
}

const latency = (values: number[]) => ({
  ...percentilesOf(values),
  samples: values.length,
  max: Math.max(0, ...values),
});

/**
 * Scenario `browser-recovery`: a consultation between two headless Chromium pages (the served SDK
 * bundle); the patient's signalling goes through a TCP relay. Each round cuts the patient's
 * network for `cutS` seconds: the relay resets its connections and refuses new ones, and the
 * patient's browser goes offline (DevTools network emulation, which also fires `offline`). Then
 * both come back at once (the browser fires `online`) and the round measures from that moment to
 * the SDK's `connectionStateChanged('connected')`. With `fastRecovery: 'both'` the same is run on a
 * second consultation whose patient SDK keeps to its backoff (`wakeOnNetworkReturn: false`), first.
 */
export async function runBrowserRecovery(
  target: SelfTarget,
  options: BrowserRecoveryOptions,
): Promise<ScenarioReport<BrowserRecoveryResults>> {
  const startedAt = new Date();
  const began = performance.now();
  const errors = new ErrorLog();
  const mode = options.fastRecovery ?? 'on';
  await target.start({ workers: options.workers, maxSessions: 2, log: options.log });
  const workers = target.serverPids().workers.length;
  try {
    const usage = measureServer(target.serverPids());
    const off = mode === 'on' ? undefined : await runPhase(target, options, false, errors);
    const on = mode === 'off' ? undefined : await runPhase(target, options, true, errors);
    const phase = usage.end();
    const main = on ?? off ?? { recoveries: [], triggers: {} };
    const latenciesMs: ScenarioReport['latenciesMs'] = {};
    if (on) latenciesMs.networkReturnToConnected = latency(on.recoveries);
    if (off) latenciesMs.networkReturnToConnectedOff = latency(off.recoveries);
    return {
      scenario: 'browser-recovery',
      target: target.name,
      workers,
      startedAt: startedAt.toISOString(),
      elapsedS: (performance.now() - began) / 1000,
      host: hostInfo(),
      parameters: { rounds: options.rounds, cutS: options.cutS, fastRecovery: mode },
      results: {
        rounds: options.rounds,
        recovered: main.recoveries.length,
        triggers: main.triggers,
        ...(off && on ? { off: { recovered: off.recoveries.length, triggers: off.triggers } } : {}),
      },
      latenciesMs,
      server: { cuts: phase },
      failures: errors.count,
      errors: errors.messages,
      notes: [
        "From the network's return (relay accepting again, browser back online) to the SDK's " +
          "connectionStateChanged('connected'), read from the page's own clock.",
        'Only signalling is cut (the relay); media goes over UDP to the server and is not interrupted, ' +
          'so the ICE trigger does not take part here: the online event does.',
        'Latencies ending in Off: the patient SDK joined with reconnect.wakeOnNetworkReturn false ' +
          '(backoff delays alone, up to 5 s), on a consultation of its own, before the rounds with it on.',
        `The SDK bundle is the one built from this tree (dist/sdk) when the scenario ran.`,
      ],
    };
  } finally {
    options.progress('closing');
    await target.stop();
  }
}

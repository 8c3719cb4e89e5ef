import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ScriptPage } from '../support/browser.js';
import type * as Sdk from '../../src/sdk/index.js';
import type { ConnectOptions, JoinCredentials, PrecheckReport, Room } from '../../src/sdk/index.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Bundles the SDK (what the server serves at /sdk/teleconsult-sdk.js) from the current sources. */
export async function buildSdkBundle(): Promise<void> {
  await promisify(execFile)(process.execPath, [path.join(projectRoot, 'scripts', 'build-sdk.mjs')], {
    cwd: projectRoot,
  });
}

/** What a page records about its room, readable from the test with `pageState()`. */
export interface PageRecord {
  events: string[];
  tracks: { participantId: string; kind: string; source: string }[];
  admission: string[];
  /** Messages that came with `admissionChanged` (a practitioner's hold message). */
  admissionMessages: string[];
  /** Practitioners: the latest waiting list, as `participantId:consents:precheck` strings. */
  waitingList: string[];
  /** Patients: `consentRequested` events, as `purpose:participantId`. */
  consentRequests: string[];
  errors: string[];
  connection: string[];
  /** End-to-end encryption: `participantId:state` for each `stateChanged`. */
  e2ee: string[];
}

export type JoinInPageOptions = Pick<ConnectOptions, 'reconnect' | 'e2ee'> & {
  /** Let mediasoup-client pick its handler from the user agent (Firefox) instead of 'Chrome111'. */
  detectHandler?: boolean;
};

declare global {
  interface Window {
    tc?: { room: Room; record: PageRecord; precheck?: Promise<PrecheckReport> };
  }
}

/**
 * Joins from inside the page with the served SDK bundle (a token, or `{ accessCode }`); the room
 * lands in `window.tc`.
 */
export async function joinInPage(
  page: ScriptPage,
  url: string,
  credentials: string | JoinCredentials,
  options: JoinInPageOptions = {},
): Promise<{ selfId: string; state: string }> {
  return page.evaluate(
    async ({ url, credentials, options }) => {
      const bundle = '/sdk/teleconsult-sdk.js';
      const sdk = (await import(bundle)) as typeof Sdk;
      const { detectHandler, ...connectOptions } = options;
      const room = await sdk.connect(url, credentials, {
        // Headless Chromium's user agent is not recognised; Firefox's is (see docs/sdk.md).
        ...(detectHandler ? {} : { handlerName: 'Chrome111' as const }),
        locale: 'en',
        ...connectOptions,
      });
      const record: PageRecord = {
        events: [],
        tracks: [],
        admission: [],
        admissionMessages: [],
        waitingList: [],
        consentRequests: [],
        errors: [],
        connection: [],
        e2ee: [],
      };
      room.e2ee?.on('stateChanged', (id, state) => record.e2ee.push(`${id}:${state}`));
      room.on('trackAdded', (t) => {
        record.tracks.push({ participantId: t.participantId, kind: t.kind, source: t.source });
        record.events.push(`trackAdded:${t.kind}`);
      });
      room.on('trackRemoved', (t) => record.events.push(`trackRemoved:${t.kind}`));
      room.on('admissionChanged', (state, message) => {
        record.admission.push(state);
        if (message !== undefined) record.admissionMessages.push(message);
      });
      room.on('waitingListChanged', (entries) => {
        record.waitingList = entries.map(
          (e) =>
            `${e.participant.id}:${e.consents.join('+') || 'none'}:${e.precheck ? 'precheck' : 'no-precheck'}`,
        );
      });
      room.on('consentRequested', (r) => record.consentRequests.push(`${r.purpose}:${r.participantId}`));
      room.on('connectionStateChanged', (state) => record.connection.push(state));
      room.on('participantJoined', (p) => record.events.push(`participantJoined:${p.id}:${p.state}`));
      room.on('participantUpdated', (p) => record.events.push(`participantUpdated:${p.id}:${p.state}`));
      room.on('mediaReset', () => record.events.push('mediaReset'));
      room.on('mediaModeChanged', (mode, reason) => record.events.push(`mediaMode:${mode}:${reason}`));
      room.on('trackMuted', (t) => record.events.push(`trackMuted:${t.kind}`));
      room.on('trackUnmuted', (t) => record.events.push(`trackUnmuted:${t.kind}`));
      room.on('layersChanged', (t) =>
        record.events.push(`layersChanged:${t.layers?.spatialLayer ?? 'none'}`),
      );
      room.on('dataMessage', (m) =>
        record.events.push(
          `dataMessage:${m.participantId}:${m.label}:${typeof m.data === 'string' ? m.data : 'binary'}`,
        ),
      );
      room.on('error', (error) => record.errors.push(`${error.code}: ${error.detail ?? error.message}`));
      window.tc = { room, record };
      return { selfId: room.self.id, state: room.self.state };
    },
    { url, credentials, options },
  );
}

/** The patient accepts the current teleconsultation consent text through the SDK; resolves with its version. */
export function consentInPage(page: ScriptPage): Promise<string> {
  return page.evaluate(async () => {
    if (!window.tc) throw new Error('not joined');
    const texts = await window.tc.room.getConsentTexts();
    const text = texts.find((t) => t.purpose === 'teleconsultation');
    if (!text) throw new Error('no teleconsultation consent text');
    await window.tc.room.giveConsent(text);
    return text.version;
  });
}

export function pageRecord(page: ScriptPage): Promise<PageRecord> {
  return page.evaluate(() => {
    if (!window.tc) throw new Error('not joined');
    return window.tc.record;
  });
}

/** Publishes the fake camera (simulcast) and microphone; resolves with each publication's state. */
export function publishCameraAndMicrophone(page: ScriptPage): Promise<string[]> {
  return page.evaluate(async () => {
    if (!window.tc) throw new Error('not joined');
    const camera = await window.tc.room.publishCamera();
    const microphone = await window.tc.room.publishMicrophone();
    return [camera.state, microphone.state];
  });
}

/** Sum of `framesDecoded` over the inbound video streams of the page's receiving connection. */
export function framesDecoded(page: ScriptPage): Promise<number> {
  return page.evaluate(async () => {
    if (!window.tc) throw new Error('not joined');
    const { recv } = await window.tc.room.getStats();
    let frames = 0;
    recv?.forEach((report: { type?: string; kind?: string; framesDecoded?: number }) => {
      if (report.type === 'inbound-rtp' && report.kind === 'video') frames += report.framesDecoded ?? 0;
    });
    return frames;
  });
}

/** Sum of `packetsReceived` over the inbound audio streams of the page's receiving connection. */
export function audioPacketsReceived(page: ScriptPage): Promise<number> {
  return page.evaluate(async () => {
    if (!window.tc) throw new Error('not joined');
    const { recv } = await window.tc.room.getStats();
    let packets = 0;
    recv?.forEach((report: { type?: string; kind?: string; packetsReceived?: number }) => {
      if (report.type === 'inbound-rtp' && report.kind === 'audio') packets += report.packetsReceived ?? 0;
    });
    return packets;
  });
}

/** Polls `check` until it returns a value that is not undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

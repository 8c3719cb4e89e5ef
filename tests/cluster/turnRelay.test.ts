import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Page } from 'playwright-core';
import type * as Sdk from '../../src/sdk/index.js';
import type { Room } from '../../src/sdk/index.js';
import { startTestServer } from '../support/server.js';
import { chromiumAvailable, launchBrowser, localhostUrl } from '../support/browser.js';
import { buildSdkBundle, waitFor } from '../browser/harness.js';
import { eventually, freePort, sleep } from './support.js';

const TURN_SECRET = 'turn-test-shared-secret-0123456789';
const hasTurnserver = fs.existsSync('/usr/bin/turnserver');
const skip = !(await chromiumAvailable())
  ? 'chromium is not installed'
  : !hasTurnserver
    ? 'coturn is not installed (scripts/setup.sh installs it)'
    : false;

declare global {
  interface Window {
    relayRoom?: Room;
  }
}

/**
 * coturn on loopback for this test only. `allow-loopback-peers` is what lets it relay to the
 * mediasoup worker on 127.0.0.1; production configuration (docs/cluster.md) denies loopback and
 * every private range instead, so that the relay can never reach the operator's own network.
 */
async function startCoturn(): Promise<{ port: number; log: () => string; stop: () => Promise<void> }> {
  const port = await freePort(true);
  const relayBase = 49160 + Math.floor(Math.random() * 200) * 10;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfu-coturn-'));
  const config = [
    'listening-ip=127.0.0.1',
    'relay-ip=127.0.0.1',
    `listening-port=${port}`,
    `min-port=${relayBase}`,
    `max-port=${relayBase + 9}`,
    'use-auth-secret',
    `static-auth-secret=${TURN_SECRET}`,
    'realm=teleconsult.test',
    'fingerprint',
    'no-tls',
    'no-dtls',
    'no-cli',
    'no-multicast-peers',
    'allow-loopback-peers',
    `userdb=${path.join(dir, 'turndb')}`,
    `pidfile=${path.join(dir, 'turnserver.pid')}`,
    'log-file=stdout',
    'simple-log',
    'verbose',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'turnserver.conf'), config);
  const child = spawn('turnserver', ['-c', path.join(dir, 'turnserver.conf')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-200_000)));
  child.stderr.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-200_000)));
  await eventually(
    'coturn to listen',
    () => /listener opened on|Total General servers/i.test(output),
    10_000,
  );
  return {
    port,
    log: () => output,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(3000)]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Joins in the page with relay-only ICE and the TURN servers the join result gave. */
function joinRelayOnly(page: Page, url: string, token: string): Promise<void> {
  return page.evaluate(
    async ({ url, token }) => {
      const bundle = '/sdk/teleconsult-sdk.js';
      const sdk = (await import(bundle)) as typeof Sdk;
      const room = await sdk.connect(url, token, {
        handlerName: 'Chrome111',
        locale: 'en',
        iceTransportPolicy: 'relay',
      });
      window.relayRoom = room;
      await room.publishCamera();
      await room.publishMicrophone();
    },
    { url, token },
  );
}

/** Video frames decoded so far on the page's receiving connection. */
function framesDecoded(page: Page): Promise<number> {
  return page.evaluate(async () => {
    const room = window.relayRoom;
    if (!room) throw new Error('not joined');
    const { recv } = await room.getStats();
    let frames = 0;
    recv?.forEach((report: { type?: string; kind?: string; framesDecoded?: number }) => {
      if (report.type === 'inbound-rtp' && report.kind === 'video') frames += report.framesDecoded ?? 0;
    });
    return frames;
  });
}

/** Candidate types of the selected pairs of the page's transports (e.g. ['relay', 'relay']). */
function selectedCandidateTypes(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    const room = window.relayRoom;
    if (!room) throw new Error('not joined');
    const { send, recv } = await room.getStats();
    const types: string[] = [];
    for (const report of [send, recv]) {
      if (!report) continue;
      const byId = new Map<string, { type?: string; candidateType?: string; localCandidateId?: string }>();
      report.forEach((entry: { id: string; candidateType?: string }) => byId.set(entry.id, entry));
      report.forEach(
        (entry: { type?: string; state?: string; nominated?: boolean; localCandidateId?: string }) => {
          if (entry.type !== 'candidate-pair' || entry.state !== 'succeeded' || !entry.nominated) return;
          const local = byId.get(entry.localCandidateId ?? '');
          if (local?.candidateType) types.push(local.candidateType);
        },
      );
    }
    return types;
  });
}

t.test(
  'a call connects through coturn with relay-only ICE and server-issued credentials',
  { skip },
  async (t) => {
    await buildSdkBundle();
    const turn = await startCoturn();
    t.teardown(() => turn.stop());
    const server = await startTestServer({
      turn: {
        urls: [`turn:127.0.0.1:${turn.port}?transport=udp`],
        sharedSecret: TURN_SECRET,
        credentialTtlS: 600,
      },
    });
    t.teardown(() => server.stop());
    const browser = await launchBrowser();
    t.teardown(() => browser.close());
    const origin = localhostUrl(server.url);

    const created = await server.rest<{ id: string }>('POST', '/v1/rooms', {
      options: { waitingRoom: false },
    });
    const roomId = created.body.id;
    const practitioner = await browser.openPage(`${origin}/`);
    const patient = await browser.openPage(`${origin}/`);

    await joinRelayOnly(
      practitioner.page,
      origin,
      await server.token({ room: roomId, participantId: 'doc', role: 'practitioner' }),
    );
    // The patient gives its consent, then is admitted automatically (room without waiting room).
    await patient.page.evaluate(
      async ({ url, token }) => {
        const bundle = '/sdk/teleconsult-sdk.js';
        const sdk = (await import(bundle)) as typeof Sdk;
        const room = await sdk.connect(url, token, {
          handlerName: 'Chrome111',
          locale: 'en',
          iceTransportPolicy: 'relay',
        });
        window.relayRoom = room;
        const text = (await room.getConsentTexts()).find((c) => c.purpose === 'teleconsultation');
        if (!text) throw new Error('no consent text');
        await room.giveConsent(text);
        await room.publishCamera();
        await room.publishMicrophone();
      },
      { url: origin, token: await server.token({ room: roomId, participantId: 'pat', role: 'patient' }) },
    );

    for (const [name, side] of [
      ['practitioner', practitioner],
      ['patient', patient],
    ] as const) {
      await waitFor(
        `${name} to decode video through the relay`,
        async () => (await framesDecoded(side.page)) > 10,
        45_000,
      ).catch((err: Error) => {
        throw new Error(
          `${err.message}\n${side.problems.slice(0, 10).join('\n')}\n${turn.log().slice(-3000)}`,
        );
      });
      const types = await selectedCandidateTypes(side.page);
      t.ok(
        types.length >= 1 && types.every((type) => type === 'relay'),
        `${name}'s media goes through TURN (${types.join(',')})`,
      );
    }
    t.match(turn.log(), /\d{10}:doc/, "coturn authenticated the practitioner's <expiry>:<participant id>");
    t.match(turn.log(), /\d{10}:pat/, "and the patient's");
  },
);

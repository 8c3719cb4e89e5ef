import t from 'tap';
import { startTestServer } from '../support/server.js';
import { chromiumAvailable, launchBrowser, localhostUrl } from '../support/browser.js';
import {
  buildSdkBundle,
  consentInPage,
  framesDecoded,
  joinInPage,
  publishCameraAndMicrophone,
  waitFor,
} from './harness.js';

/**
 * Media over ICE-TCP: a network that blocks UDP leaves the worker's TCP candidates (each worker's
 * WebRtcServer listens on TCP too). The pages drop every UDP candidate the server offers before
 * Chromium sees it, so the only path left is TCP; video must decode both ways over it.
 */
const skip = (await chromiumAvailable()) ? false : 'chromium is not installed';

/** Runs in the page before any script: removes the UDP candidates from every remote description. */
function keepTcpCandidatesOnly(): void {
  // Taken off the prototype on purpose, to be called with each connection as `this`.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const original = RTCPeerConnection.prototype.setRemoteDescription as (
    this: RTCPeerConnection,
    description?: RTCSessionDescriptionInit,
  ) => Promise<void>;
  RTCPeerConnection.prototype.setRemoteDescription = function (
    this: RTCPeerConnection,
    description?: RTCSessionDescriptionInit,
  ) {
    const sdp = description?.sdp
      ?.split('\r\n')
      .filter((line) => !/^a=candidate:\S+ \d+ udp /i.test(line))
      .join('\r\n');
    return original.call(this, description && sdp !== undefined ? { ...description, sdp } : description);
  };
}

/** The transport protocol of every nominated candidate pair the page's connections use. */
function selectedProtocols(): Promise<string[]> {
  return new Promise((resolve) => {
    const pcs = (window as unknown as { __pcs?: RTCPeerConnection[] }).__pcs ?? [];
    void Promise.all(pcs.map((pc) => pc.getStats())).then((reports) => {
      const protocols: string[] = [];
      for (const report of reports) {
        const stats = [...report.values()] as { type: string; [key: string]: unknown }[];
        for (const pair of stats.filter((s) => s.type === 'candidate-pair' && s.nominated === true)) {
          const local = stats.find((s) => s.id === pair.localCandidateId);
          if (local) protocols.push(String(local.protocol));
        }
      }
      resolve(protocols);
    });
  });
}

/** Keeps every RTCPeerConnection the page makes, for `selectedProtocols`. */
function trackPeerConnections(): void {
  const Native = window.RTCPeerConnection;
  const pcs: RTCPeerConnection[] = [];
  (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs = pcs;
  window.RTCPeerConnection = class extends Native {
    constructor(config?: RTCConfiguration) {
      super(config);
      pcs.push(this);
    }
  };
}

t.test('a consultation whose media can only go over ICE-TCP', { skip }, async (t) => {
  await buildSdkBundle();
  const server = await startTestServer();
  t.teardown(() => server.stop());
  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  await browser.context.addInitScript(keepTcpCandidatesOnly);
  await browser.context.addInitScript(trackPeerConnections);
  const origin = localhostUrl(server.url);
  const res = await fetch(`${server.url}/demo/consultations`, { method: 'POST' });
  const consultation = (await res.json()) as { tokens: { practitioner: string; patient: string } };

  const practitioner = await browser.openPage(`${origin}/`);
  const patient = await browser.openPage(`${origin}/`);
  await joinInPage(practitioner.page, origin, consultation.tokens.practitioner);
  await publishCameraAndMicrophone(practitioner.page);
  const joined = await joinInPage(patient.page, origin, consultation.tokens.patient);
  await consentInPage(patient.page);
  await practitioner.page.evaluate((id) => window.tc?.room.admit(id), joined.selfId);
  await publishCameraAndMicrophone(patient.page);

  for (const [name, side] of [
    ['patient', patient],
    ['practitioner', practitioner],
  ] as const) {
    const frames = await waitFor(`the ${name} to decode video`, async () => {
      const decoded = await framesDecoded(side.page);
      return decoded > 10 ? decoded : undefined;
    }).catch((err: Error) => {
      throw new Error(`${err.message}; page problems: ${side.problems.slice(0, 5).join(' | ')}`);
    });
    t.ok(frames > 10, `the ${name} decoded ${frames} frames`);
    const protocols = await side.page.evaluate(selectedProtocols);
    t.ok(protocols.length >= 2, `the ${name}'s send and receive transports each chose a path`);
    t.same([...new Set(protocols)], ['tcp'], `every path the ${name} uses is TCP`);
  }
});

import t, { type Test } from 'tap';
import type { types } from 'mediasoup';
import type * as Sdk from '../../src/sdk/index.js';
import { fromHex } from '../../src/sdk/e2ee/bytes.js';
import { FrameCryptor } from '../../src/sdk/e2ee/frameCrypto.js';
import { ProducerCapture, vp8Frames } from '../e2ee/rtpCapture.js';
import {
  chromiumAvailable,
  launchBrowser,
  localhostUrl,
  type ScriptPage,
  type TestBrowser,
} from '../support/browser.js';
import { startFirefox, type TestFirefox } from '../support/firefox.js';
import { ImpairedLink } from '../quality/impairedLink.js';
import { startTestServer, type TestServer } from '../support/server.js';
import {
  audioPacketsReceived,
  buildSdkBundle,
  consentInPage,
  framesDecoded,
  joinInPage,
  pageRecord,
  publishCameraAndMicrophone,
  waitFor,
  type JoinInPageOptions,
} from './harness.js';

/**
 * Firefox ESR (Debian's package, headless over WebDriver BiDi) against Chromium through the real
 * server: the SDK's Firefox120 handler, simulcast from Firefox, SFrame interop and resumes.
 */

interface Side {
  name: string;
  page: ScriptPage;
  problems: string[];
}

let firefox: TestFirefox | undefined;
/**
 * Firefox ESR 153 gathers no loopback ICE candidates here (media.peerconnection.ice.loopback has
 * no effect) and does not pair its host candidates with a loopback server address: the server's
 * media listens on the root end of a veth pair this test creates (local delivery, like loopback).
 */
let link: ImpairedLink | undefined;
let skip: string | false = (await chromiumAvailable()) ? false : 'chromium is not installed';
if (!skip) {
  link = await ImpairedLink.create().catch((err: Error) => {
    skip = `Firefox needs a non-loopback server address for ICE, and a veth pair could not be created: ${err.message.split('\n')[0] ?? ''}`;
    return undefined;
  });
}
if (!skip) {
  const started = await startFirefox();
  if ('skip' in started) skip = started.skip;
  else firefox = started.firefox;
}
t.teardown(async () => {
  await firefox?.close();
  await link?.remove();
});

function details(...sides: Side[]): string {
  return sides
    .map((s) => `${s.name}: ${s.problems.slice(0, 8).join(' | ') || 'no console errors'}`)
    .join('\n');
}

async function openChromium(browser: TestBrowser, origin: string, name: string): Promise<Side> {
  const { page, problems } = await browser.openPage(`${origin}/`);
  return { name, page, problems };
}

async function openFirefox(origin: string, name: string): Promise<Side> {
  if (!firefox) throw new Error('firefox is not running');
  const { page, problems } = await firefox.openPage(`${origin}/`);
  return { name, page, problems };
}

/** Firefox lets mediasoup-client recognise it; headless Chromium needs the handler named. */
function joinOptions(side: Side, extra: JoinInPageOptions = {}): JoinInPageOptions {
  return { ...extra, detectHandler: side.name.startsWith('firefox') };
}

/** Waits until `side` has decoded more than `frames` video frames and received more than `packets` audio packets. */
async function receivesMedia(side: Side, others: Side[], frames = 10, packets = 50): Promise<void> {
  await waitFor(`${side.name} to decode video and receive audio`, async () => {
    const decoded = await framesDecoded(side.page);
    const audio = await audioPacketsReceived(side.page);
    return decoded > frames && audio > packets;
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n${details(side, ...others)}`);
  });
}

async function createConsultation(
  server: TestServer,
): Promise<{ roomId: string; tokens: Record<string, string> }> {
  const res = await fetch(`${server.url}/demo/consultations`, { method: 'POST' });
  if (res.status !== 201) throw new Error(`demo endpoint answered ${res.status}`);
  return (await res.json()) as { roomId: string; tokens: Record<string, string> };
}

async function withServerAndChromium(
  t: Test,
): Promise<{ server: TestServer; chromium: TestBrowser; origin: string }> {
  await buildSdkBundle();
  if (!link) throw new Error('no veth link');
  const server = await startTestServer({ media: { listenIp: link.rootAddress } });
  t.teardown(() => server.stop());
  const chromium = await launchBrowser();
  t.teardown(() => chromium.close());
  return { server, chromium, origin: localhostUrl(server.url) };
}

/**
 * A consultation with a waiting room: the practitioner joins and publishes, the patient waits with
 * queued publications, receives nothing and holds only its transports connected ahead, consents,
 * is admitted; then each side decodes the other's video and receives its audio, and a patient's
 * signalling drop is resumed.
 */
async function consultation(
  t: Test,
  server: TestServer,
  origin: string,
  practitioner: Side,
  patient: Side,
): Promise<void> {
  const { roomId, tokens } = await createConsultation(server);
  const sides = [practitioner, patient];
  await joinInPage(practitioner.page, origin, tokens.practitioner!, joinOptions(practitioner));
  t.same(await publishCameraAndMicrophone(practitioner.page), ['published', 'published']);
  const joined = await joinInPage(patient.page, origin, tokens.patient!, joinOptions(patient));
  t.equal(joined.state, 'waiting', `the ${patient.name} patient waits`);
  t.same(await publishCameraAndMicrophone(patient.page), ['queued', 'queued'], 'its publications wait');
  await waitFor('the practitioner to see the patient waiting', async () =>
    (await pageRecord(practitioner.page)).events.includes(`participantJoined:${joined.selfId}:waiting`),
  );
  // Give wrongly-routed media every chance to arrive before checking that none did.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  t.same((await pageRecord(patient.page)).tracks, [], 'the waiting patient received no track');
  const onServer = server.server.rooms.get(roomId)?.participants.get(joined.selfId);
  if (!onServer) throw new Error('the waiting patient is not on the server');
  // Connect ahead: its two room transports finished ICE and DTLS while it waits, and carry nothing.
  await waitFor(`the ${patient.name} patient to connect its transports ahead`, () =>
    Promise.resolve(
      onServer.transports.size === 2 &&
        [...onServer.transports.values()].every((transport) => transport.dtlsState === 'connected'),
    ),
  );
  t.equal(
    onServer.consumers.size + onServer.producers.size,
    0,
    'the waiting patient holds transports connected ahead, with nothing on them',
  );

  await consentInPage(patient.page);
  await practitioner.page.evaluate((id) => window.tc?.room.admit(id), joined.selfId);
  await waitFor('the patient to be admitted', async () =>
    (await pageRecord(patient.page)).admission.includes('admitted'),
  );
  for (const side of sides) await receivesMedia(side, sides);
  t.pass(`${practitioner.name} and ${patient.name} decode each other's video and receive each other's audio`);

  const before = await framesDecoded(practitioner.page);
  await patient.page.evaluate(() => window.tc?.room.simulateConnectionDrop());
  await waitFor(`the ${patient.name} patient to resume`, async () =>
    (await pageRecord(patient.page)).connection.join(',').endsWith('reconnecting,connected'),
  );
  await receivesMedia(practitioner, sides, before + 30);
  t.pass(`after the ${patient.name} patient's signalling drop, video keeps flowing`);
  for (const side of sides) {
    t.same((await pageRecord(side.page)).errors, [], `${side.name}: no SDK error`);
    await side.page.evaluate(() => window.tc?.room.leave());
  }
}

t.test('Firefox ESR and Chromium in one consultation, both ways', { skip }, async (t) => {
  const { server, chromium, origin } = await withServerAndChromium(t);
  t.comment(`Firefox ${firefox?.version ?? '?'}`);

  await t.test('Chromium practitioner, Firefox patient', async (t) => {
    const practitioner = await openChromium(chromium, origin, 'chromium');
    const patient = await openFirefox(origin, 'firefox');
    await consultation(t, server, origin, practitioner, patient);
  });

  await t.test('Firefox practitioner, Chromium patient', async (t) => {
    const practitioner = await openFirefox(origin, 'firefox');
    const patient = await openChromium(chromium, origin, 'chromium');
    await consultation(t, server, origin, practitioner, patient);
  });
});

t.test('Firefox publishes its camera as three simulcast layers', { skip }, async (t) => {
  const { server, chromium, origin } = await withServerAndChromium(t);
  const { roomId, tokens } = await createConsultation(server);
  const practitioner = await openFirefox(origin, 'firefox');
  const viewer = await openChromium(chromium, origin, 'chromium');
  await joinInPage(practitioner.page, origin, tokens.practitioner!, joinOptions(practitioner));
  await publishCameraAndMicrophone(practitioner.page);
  const producer = [
    ...(server.server.rooms.get(roomId)?.participants.get('practitioner-1')?.producers.values() ?? []),
  ].find((p) => p.kind === 'video');
  if (!producer) throw new Error("the practitioner's video producer is not on the server");
  t.same(
    producer.rtpParameters.encodings?.map((e) => e.rid),
    ['r0', 'r1', 'r2'],
    'the server got three RID-identified encodings from Firefox',
  );
  const sending = await waitFor('RTP on every layer', async () => {
    const stats = await producer.getStats();
    const active = stats.filter((s) => s.byteCount > 0).map((s) => s.rid);
    return active.length === 3 ? active.sort() : undefined;
  });
  t.same(sending, ['r0', 'r1', 'r2'], 'the server receives RTP on all three layers');

  // A Chromium viewer receives the layer it asks for.
  const patient = await joinInPage(viewer.page, origin, tokens.patient!, joinOptions(viewer));
  await consentInPage(viewer.page);
  await practitioner.page.evaluate((id) => window.tc?.room.admit(id), patient.selfId);
  await receivesMedia(viewer, [practitioner, viewer], 10, 0);
  const trackId = await viewer.page.evaluate(
    () => window.tc?.room.remoteTracks.find((r) => r.kind === 'video')?.id,
  );
  await viewer.page.evaluate((id) => window.tc?.room.setPreferredLayers(id!, 0), trackId);
  await waitFor('the viewer to switch to the lowest layer', async () =>
    (await pageRecord(viewer.page)).events.includes('layersChanged:0'),
  );
  t.pass('the Chromium viewer was switched to layer 0 of the Firefox simulcast');
});

t.test('end-to-end encryption (SFrame) between Firefox ESR and Chromium, both ways', { skip }, async (t) => {
  const { server, chromium, origin } = await withServerAndChromium(t);
  const created = await server.rest<{ id: string }>('POST', '/v1/rooms', {
    options: { waitingRoom: false, e2eeRequired: true },
  });
  const roomId = created.body.id;
  const fox = await openFirefox(origin, 'firefox');
  const chrome = await openChromium(chromium, origin, 'chromium');
  const sides = [fox, chrome];
  t.equal(
    await fox.page.evaluate(async () =>
      ((await import(['/sdk', 'teleconsult-sdk.js'].join('/'))) as typeof Sdk).isE2eeSupported(),
    ),
    true,
    'Firefox ESR offers RTCRtpScriptTransform: the SDK can encrypt there',
  );
  const e2ee = { e2ee: { __testing: true } } as const;
  await joinInPage(
    fox.page,
    origin,
    await server.token({ room: roomId, participantId: 'fox', role: 'practitioner' }),
    joinOptions(fox, e2ee),
  );
  await joinInPage(
    chrome.page,
    origin,
    await server.token({ room: roomId, participantId: 'chrome', role: 'patient' }),
    joinOptions(chrome, e2ee),
  );
  await consentInPage(chrome.page);
  for (const side of sides) await publishCameraAndMicrophone(side.page);
  for (const side of sides) await receivesMedia(side, sides);
  t.pass('each side decodes the other side’s encrypted video and receives its audio');
  for (const [side, other] of [
    [fox, 'chrome'],
    [chrome, 'fox'],
  ] as const) {
    await waitFor(`${side.name} to mark ${other} encrypted`, async () =>
      (await pageRecord(side.page)).e2ee.includes(`${other}:encrypted`),
    );
  }
  t.pass('each side reports the other as encrypted');

  // Inside the server, what each browser sends is ciphertext under its own sender key.
  const serverRoom = server.server.rooms.get(roomId);
  const router = (serverRoom as unknown as { router: types.Router }).router;
  for (const [side, id] of [
    [fox, 'fox'],
    [chrome, 'chrome'],
  ] as const) {
    const video = [...(serverRoom?.participants.get(id)?.producers.values() ?? [])].find(
      (p) => p.kind === 'video',
    );
    if (!video) throw new Error(`no video producer for ${id}`);
    const capture = await ProducerCapture.start(router, video.id);
    await waitFor(`whole frames from ${side.name}`, async () =>
      Promise.resolve(vp8Frames(capture.packets).length > 10),
    );
    capture.close();
    const keys = await side.page.evaluate(() => window.tc?.room.e2ee?.testing?.exportKeys());
    const cryptor = new FrameCryptor();
    for (const k of keys?.sent ?? []) await cryptor.addReceiveKey(id, k.generation, fromHex(k.key));
    const frames = vp8Frames(capture.packets);
    let opened = 0;
    for (const frame of frames) if (await cryptor.decrypt(id, 'vp8', frame)) opened++;
    t.equal(
      opened,
      frames.length,
      `every captured ${side.name} frame is SFrame ciphertext under its sender key`,
    );
  }
  for (const side of sides) t.same((await pageRecord(side.page)).errors, [], `${side.name}: no SDK error`);
});

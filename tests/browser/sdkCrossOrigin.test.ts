import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import type * as Sdk from '../../src/sdk/index.js';
import { chromiumAvailable, launchBrowser, localhostUrl } from '../support/browser.js';
import { startTestServer } from '../support/server.js';
import { buildSdkBundle } from './harness.js';

/**
 * A platform's own front end, on another origin than the media server: it imports the served SDK
 * bundle (CORS), and opens invitation links whose token is in the fragment.
 */

interface PlatformSite {
  origin: string;
  /** Every request line the platform's web server saw (to show the token never reached it). */
  requests: string[];
  close(): Promise<void>;
}

/** A stand-in for the platform's web server: one consultation page, whatever the path. */
async function startPlatformSite(): Promise<PlatformSite> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url} referer=${req.headers.referer ?? ''}`);
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Consultation</title><p>platform page</p>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://localhost:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const skip = (await chromiumAvailable()) ? false : 'chromium is not installed';

t.test('the SDK bundle answers HEAD and CORS only for configured origins', async (t) => {
  await buildSdkBundle();
  const allowed = 'https://care.example.fr';
  const server = await startTestServer({ server: { sdkCorsOrigins: [allowed] } });
  t.teardown(() => server.stop());
  const bundle = `${server.url}/sdk/teleconsult-sdk.js`;

  const get = await fetch(bundle, { headers: { Origin: allowed } });
  const body = await get.arrayBuffer();
  t.equal(get.status, 200);
  t.equal(get.headers.get('access-control-allow-origin'), allowed, 'the allowed origin may read it');
  t.equal(get.headers.get('vary'), 'Origin', 'caches keep one answer per origin');

  const head = await fetch(bundle, { method: 'HEAD', headers: { Origin: allowed } });
  t.equal(head.status, 200, 'HEAD answers like GET');
  t.equal(Number(head.headers.get('content-length')), body.byteLength, 'with the same length');
  t.equal((await head.arrayBuffer()).byteLength, 0, 'and no body');
  t.equal(head.headers.get('access-control-allow-origin'), allowed);

  const other = await fetch(bundle, { headers: { Origin: 'https://evil.example' } });
  await other.arrayBuffer();
  t.equal(other.headers.get('access-control-allow-origin'), null, 'another origin gets no CORS grant');
  const missing = await fetch(`${server.url}/sdk/nothing-here.js`, { method: 'HEAD' });
  t.equal(missing.status, 404, 'HEAD of a missing file is 404');

  const open = await startTestServer({ server: { sdkCorsOrigins: ['*'] } });
  t.teardown(() => open.stop());
  const any = await fetch(`${open.url}/sdk/teleconsult-sdk.js`, { headers: { Origin: 'https://x.example' } });
  await any.arrayBuffer();
  t.equal(any.headers.get('access-control-allow-origin'), '*', "'*' lets any origin import it");

  const closed = await startTestServer();
  t.teardown(() => closed.stop());
  const none = await fetch(`${closed.url}/sdk/teleconsult-sdk.js`, { headers: { Origin: allowed } });
  await none.arrayBuffer();
  t.equal(none.headers.get('access-control-allow-origin'), null, 'none configured: same origin only');
});

t.test(
  'a platform page on another origin imports the SDK and joins from a link whose token is in the fragment',
  { skip },
  async (t) => {
    await buildSdkBundle();
    const site = await startPlatformSite();
    t.teardown(() => site.close());
    const stranger = await startPlatformSite();
    t.teardown(() => stranger.close());
    const server = await startTestServer({
      server: { sdkCorsOrigins: [site.origin], joinBaseUrl: `${site.origin}/consultation` },
    });
    t.teardown(() => server.stop());
    const sfu = localhostUrl(server.url);
    const browser = await launchBrowser();
    t.teardown(() => browser.close());

    const created = await server.rest<{ id: string }>('POST', '/v1/rooms', {
      options: { waitingRoom: true },
    });
    const invitation = await server.rest<{ joinUrl: string; token: string; participantId: string }>(
      'POST',
      `/v1/rooms/${created.body.id}/invitations`,
      { role: 'practitioner', displayName: 'Dr Test' },
    );
    t.equal(invitation.status, 201);
    const link = new URL(invitation.body.joinUrl);
    t.equal(
      `${link.origin}${link.pathname}`,
      `${site.origin}/consultation`,
      'joinUrl opens the platform page',
    );

    // The platform page reads the token from location.hash and imports the SDK from the media server.
    const { page, problems } = await browser.openPage(invitation.body.joinUrl);
    const joined = await page.evaluate(async (sfu) => {
      const token = new URLSearchParams(location.hash.slice(1)).get('token');
      if (!token) throw new Error('no token in the fragment');
      history.replaceState(null, '', location.pathname);
      const sdk = (await import(`${sfu}/sdk/teleconsult-sdk.js`)) as typeof Sdk;
      const room = await sdk.connect(sfu, token, { handlerName: 'Chrome111', locale: 'en' });
      const state = room.self.state;
      await room.leave();
      return { state, address: location.href };
    }, sfu);
    t.equal(joined.state, 'admitted', `the page joined (${problems.join(' | ') || 'no console errors'})`);
    t.notMatch(joined.address, /token/, 'the page removed the token from the address bar');
    t.ok(site.requests.length > 0, 'the platform server served its page');
    t.notOk(
      site.requests.some((r) => r.includes(invitation.body.token)),
      'the token never reached the platform server (neither in a URL nor in a Referer)',
    );

    // A page on an origin the server does not list cannot import the bundle.
    const { page: other } = await browser.openPage(`${stranger.origin}/`);
    const refused = await other.evaluate(async (sfu) => {
      try {
        await import(`${sfu}/sdk/teleconsult-sdk.js`);
        return 'imported';
      } catch (err) {
        return (err as Error).name;
      }
    }, sfu);
    t.equal(refused, 'TypeError', 'another origin is refused by the browser (no CORS grant)');
  },
);

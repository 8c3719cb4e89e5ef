import t from 'tap';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { randomUUID } from 'node:crypto';
import type { RequestError } from '../support/signallingClient.js';
import { SignallingClient } from '../support/signallingClient.js';
import { startTestServer } from '../support/server.js';

async function platformKeys(alg: 'RS256' | 'ES256', kid: string) {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  const sign = (claims: Record<string, unknown>, options: { ttlS?: number; audience?: string } = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg, kid })
      .setAudience(options.audience ?? 'teleconsult-sfu')
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + (options.ttlS ?? 120))
      .sign(privateKey);
  return { jwk, sign };
}

async function tryJoin(wsUrl: string, token: string): Promise<string> {
  const client = await SignallingClient.open(wsUrl);
  try {
    const joined = await client.request('join', { token });
    return `joined as ${joined.self.role}`;
  } catch (err) {
    return (err as RequestError).code;
  } finally {
    client.close();
  }
}

t.test('platform tokens signed with RS256 and ES256 verify against a JWKS file', async (t) => {
  const rsa = await platformKeys('RS256', 'rsa-1');
  const ec = await platformKeys('ES256', 'ec-1');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jwks-'));
  const jwksFile = path.join(dir, 'jwks.json');
  fs.writeFileSync(jwksFile, JSON.stringify({ keys: [rsa.jwk, ec.jwk] }));
  const srv = await startTestServer({ auth: { jwksFile } });
  t.teardown(async () => {
    await srv.stop();
    fs.rmSync(dir, { recursive: true });
  });
  const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', {})).body.id;
  t.equal(
    await tryJoin(
      srv.wsUrl,
      await rsa.sign({ room: roomId, sub: 'doc', role: 'practitioner', rpps: '10101010101' }),
    ),
    'joined as practitioner',
  );
  t.equal(
    await tryJoin(srv.wsUrl, await ec.sign({ room: roomId, sub: 'pat', role: 'patient' })),
    'joined as patient',
  );
  const stranger = await platformKeys('ES256', 'ec-1');
  t.equal(
    await tryJoin(srv.wsUrl, await stranger.sign({ room: roomId, sub: 'x', role: 'patient' })),
    'ACCESS_DENIED',
    'a key outside the JWKS is refused',
  );
  t.equal(
    await tryJoin(
      srv.wsUrl,
      await ec.sign({ room: roomId, sub: 'y', role: 'patient' }, { audience: 'another-service' }),
    ),
    'ACCESS_DENIED',
    'a token for another audience is refused',
  );
  t.equal(
    await tryJoin(srv.wsUrl, await ec.sign({ room: roomId, sub: 'z', role: 'patient' }, { ttlS: 3600 })),
    'ACCESS_DENIED',
    'a token living longer than auth.maxTokenLifetimeS is refused',
  );
  t.equal(
    await tryJoin(srv.wsUrl, await ec.sign({ room: roomId, sub: 'w', role: 'surgeon' })),
    'ACCESS_DENIED',
    'an unknown role is refused',
  );
});

t.test('platform tokens verify against a JWKS URL', async (t) => {
  const ec = await platformKeys('ES256', 'ec-url');
  let fetches = 0;
  const jwksServer = http.createServer((_req, res) => {
    fetches++;
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: [ec.jwk] }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  t.teardown(() => jwksServer.close());
  const srv = await startTestServer({
    auth: { jwksUrl: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json` },
  });
  t.teardown(() => srv.stop());
  const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', {})).body.id;
  t.equal(
    await tryJoin(srv.wsUrl, await ec.sign({ room: roomId, sub: 'doc', role: 'practitioner' })),
    'joined as practitioner',
  );
  t.ok(fetches >= 1, 'the key set was fetched from the URL');
  // HS256 invitations issued by the server itself keep working beside the platform's keys.
  const invitation = await srv.rest<{ token: string }>('POST', `/v1/rooms/${roomId}/invitations`, {
    role: 'patient',
  });
  t.equal(await tryJoin(srv.wsUrl, invitation.body.token), 'joined as patient');
});

import { execFileSync } from 'node:child_process';
import t from 'tap';
import { turnCredentials } from '../../src/cluster/turnCredentials.js';

const turn = {
  urls: ['turn:turn.example.fr:3478?transport=udp'],
  sharedSecret: 'north-wind',
  credentialTtlS: 3600,
};

t.test('TURN credentials follow the coturn REST API scheme', async (t) => {
  const now = Date.UTC(2026, 0, 15, 9, 30, 0);
  const servers = turnCredentials(turn, 'p_42', now);
  t.equal(servers?.length, 1);
  const [server] = servers ?? [];
  t.same(server?.urls, turn.urls);
  t.equal(
    server?.username,
    `${now / 1000 + 3600}:p_42`,
    'username is <expiry unix seconds>:<participant id>',
  );
  // Computed independently by openssl: base64(HMAC-SHA1(secret, username)).
  const expected = execFileSync('sh', [
    '-c',
    `printf '%s' '${server?.username}' | openssl dgst -sha1 -hmac '${turn.sharedSecret}' -binary | base64`,
  ])
    .toString()
    .trim();
  t.equal(server?.credential, expected, 'password is base64(HMAC-SHA1(shared secret, username))');
});

t.test('no TURN server is handed out without URLs or without a shared secret', async (t) => {
  t.equal(turnCredentials({ ...turn, urls: [] }, 'p_1'), undefined);
  t.equal(turnCredentials({ ...turn, sharedSecret: null }, 'p_1'), undefined);
});

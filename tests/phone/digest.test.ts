import t, { type Test } from 'tap';
import {
  buildAuthorization,
  chooseChallenge,
  computeDigestResponse,
  parseAuthParams,
  parseDigestChallenge,
} from '../../src/phone/sip/digest.js';

/** A synchronous subtest, ended when its body returns. */
function check(name: string, body: (t: Test) => void): void {
  void t.test(name, (t) => {
    body(t);
    t.end();
  });
}

check('the MD5 response matches the example of RFC 2617 3.5', (t) => {
  const challenge = parseDigestChallenge(
    'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
  );
  if (!challenge) return void t.fail('challenge did not parse');
  t.equal(challenge.algorithm, 'MD5');
  t.equal(challenge.qop, 'auth');
  const response = computeDigestResponse({
    challenge,
    credentials: { username: 'Mufasa', password: 'Circle Of Life' },
    method: 'GET',
    uri: '/dir/index.html',
    nonceCount: 1,
    cnonce: '0a4f113b',
  });
  t.equal(response, '6629fae49393a05397450978507c4ef1');
});

check('the SHA-256 and MD5 responses match the examples of RFC 7616 3.9.1', (t) => {
  const base =
    'realm="http-auth@example.org", qop="auth, auth-int", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"';
  const input = {
    credentials: { username: 'Mufasa', password: 'Circle of Life' },
    method: 'GET',
    uri: '/dir/index.html',
    nonceCount: 1,
    cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
  };
  const sha = parseDigestChallenge(`Digest ${base}, algorithm=SHA-256`);
  const md5 = parseDigestChallenge(`Digest ${base}, algorithm=MD5`);
  if (!sha || !md5) return void t.fail('challenges did not parse');
  t.equal(
    computeDigestResponse({ ...input, challenge: sha }),
    '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
  );
  t.equal(computeDigestResponse({ ...input, challenge: md5 }), '8ca523f5e9506fed4657c9700eebdbec');
});

check('a challenge without qop uses the RFC 2069 form', (t) => {
  const challenge = parseDigestChallenge('Digest realm="sip.example", nonce="abc"');
  if (!challenge) return void t.fail('did not parse');
  const header = buildAuthorization({
    challenge,
    credentials: { username: 'gw', password: 'secret' },
    method: 'REGISTER',
    uri: 'sip:sip.example',
    nonceCount: 1,
  });
  t.match(
    header,
    /^Digest username="gw", realm="sip.example", nonce="abc", uri="sip:sip.example", response="[0-9a-f]{32}", algorithm=MD5$/,
  );
  t.notMatch(header, /qop|cnonce/);
});

check('the authorization header carries qop, nc, cnonce and opaque when challenged with them', (t) => {
  const challenge = parseDigestChallenge(
    'Digest realm="r", nonce="n", qop="auth", opaque="o", algorithm=SHA-256',
  );
  if (!challenge) return void t.fail('did not parse');
  const header = buildAuthorization({
    challenge,
    credentials: { username: 'u', password: 'p' },
    method: 'INVITE',
    uri: 'sip:x@y',
    nonceCount: 1,
    cnonce: 'c',
  });
  t.match(header, /response="[0-9a-f]{64}"/);
  t.match(header, /algorithm=SHA-256, qop=auth, nc=00000001, cnonce="c", opaque="o"/);
});

check('SHA-256 is preferred over MD5 when both are offered (RFC 8760)', (t) => {
  const chosen = chooseChallenge([
    'Digest realm="r", nonce="1", algorithm=MD5',
    'Digest realm="r", nonce="2", algorithm=SHA-256',
  ]);
  t.equal(chosen?.algorithm, 'SHA-256');
});

check('unsupported schemes, algorithms, qop and broken parameter lists are refused', (t) => {
  t.equal(parseDigestChallenge('Basic realm="r"'), undefined);
  t.equal(parseDigestChallenge('Digest realm="r", nonce="n", algorithm=SHA-512-256'), undefined);
  t.equal(parseDigestChallenge('Digest realm="r", nonce="n", qop="auth-int"'), undefined);
  t.equal(parseDigestChallenge('Digest realm="r"'), undefined);
  t.equal(parseAuthParams('realm="unterminated'), undefined);
  t.equal(parseAuthParams('realm="a", realm="b"'), undefined);
  t.equal(parseAuthParams('a="x\\"y", b=z')?.get('a'), 'x"y');
});

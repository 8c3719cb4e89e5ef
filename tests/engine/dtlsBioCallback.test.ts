import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';

/**
 * The DTLS crash of mediasoup >= 3.13.23 against Debian's OpenSSL, reduced to OpenSSL calls
 * (fixtures/dtls-bio-callback.cpp, built here against the system libssl): with mediasoup's BIO
 * callback the first handshake record crashes libssl (kernel TLS makes it trust the callback's
 * answer to BIO_get_ktls_send and allocate no write buffer); with the fix scripts/build-worker.mjs
 * applies, both sides finish and agree on an SRTP profile. docs/engine.md explains it.
 */
const repoRoot = path.resolve(import.meta.dirname, '..', '..', '..');
const source = path.join(repoRoot, 'tests', 'engine', 'fixtures', 'dtls-bio-callback.cpp');
const compilerMissing = spawnSync('g++', ['--version']).status !== 0 && 'needs g++ (scripts/setup.sh)';
const headersMissing = !fs.existsSync('/usr/include/openssl/ssl.h') && 'needs libssl-dev (scripts/setup.sh)';

t.test(
  "mediasoup's BIO callback and the patched one, against this OpenSSL",
  { skip: compilerMissing || headersMissing },
  (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dtls-bio-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const bin = path.join(dir, 'dtls-bio-callback');
    execFileSync('g++', ['-std=c++20', '-O1', source, '-o', bin, '-lssl', '-lcrypto'], { stdio: 'pipe' });

    const patched = spawnSync(bin, ['patched'], { encoding: 'utf8', timeout: 30_000 });
    t.equal(patched.status, 0, 'the patched callback completes both handshakes');
    t.match(
      patched.stdout,
      /handshake done SRTP_AEAD_AES_(256|128)_GCM/,
      'and negotiates an AES-GCM SRTP profile',
    );

    const upstream = spawnSync(bin, ['upstream'], { encoding: 'utf8', timeout: 30_000 });
    // Debian keeps configuration.h under the multiarch include directory.
    const configuration = [
      '/usr/include/openssl/configuration.h',
      ...fs
        .readdirSync('/usr/include')
        .map((d) => path.join('/usr/include', d, 'openssl', 'configuration.h')),
    ].find((f) => fs.existsSync(f));
    const kernelTls =
      configuration !== undefined &&
      !/#\s*define OPENSSL_NO_KTLS/.test(fs.readFileSync(configuration, 'utf8'));
    if (kernelTls)
      t.equal(upstream.signal, 'SIGSEGV', "mediasoup's callback crashes libssl built with kernel TLS");
    else t.equal(upstream.status, 0, 'without kernel TLS in libssl the upstream callback happens to work');
    t.end();
  },
);

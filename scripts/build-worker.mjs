#!/usr/bin/env node
// Provides the mediasoup-worker binary of the installed mediasoup package. In order:
//   1. MEDIASOUP_WORKER_BIN: a binary the operator built or vetted; mediasoup runs it as is.
//   2. The binary cache (~/.cache/teleconsult-sfu or $MEDIASOUP_WORKER_CACHE), keyed by mediasoup
//      version and by the hash of this script (it holds every patch and stand-in applied).
//   3. Where the internet is reachable: mediasoup's own prebuilt binary from its GitHub release,
//      else mediasoup's meson build with meson's normal downloads of its dependencies. Skipped
//      without even a probe when MEDIASOUP_OFFLINE=1 (air-gapped pipelines, tests).
//   4. A source folder, MEDIASOUP_SOURCES (relative paths resolve against the repository root): the
//      tarballs of meson and of every dependency the worker's meson wraps name, for air-gapped
//      build pipelines (CI here: ../shared/vendor/mediasoup-worker-sources). Each file is checked
//      against the SHA-256 pinned below before use.
// The binary is then copied where mediasoup looks for it by default, so nothing needs
// MEDIASOUP_WORKER_BIN at run time.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const mediasoupDir = path.join(root, 'node_modules', 'mediasoup');
const { version } = JSON.parse(fs.readFileSync(path.join(mediasoupDir, 'package.json'), 'utf8'));
const selfHash = createHash('sha256')
  .update(fs.readFileSync(fileURLToPath(import.meta.url)))
  .digest('hex')
  .slice(0, 12);
const cacheRoot =
  process.env.MEDIASOUP_WORKER_CACHE ??
  path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'teleconsult-sfu');
const cacheDir = path.join(cacheRoot, `mediasoup-worker-${version}-${selfHash}`);
const cachedBin = path.join(cacheDir, 'mediasoup-worker');
const defaultBin = path.join(mediasoupDir, 'worker', 'out', 'Release', 'mediasoup-worker');

/**
 * The source folder's files this script may use, by SHA-256. abseil, flatbuffers and
 * unordered_dense are byte-identical to the wraps' source_hash; the others are `git archive`
 * snapshots of the named tag or commit (see the folder's README).
 */
const SOURCE_FILES = {
  'meson-1.12.0.tar.gz': '5ab1c86446d9dfe073f07141088cde545e43f8ddb2f97ebe3f600ab12e77ca1f',
  'abseil-cpp-20240722.0.tar.gz': 'f50e5ac311a81382da7fa75b97310e4b9006474f9560ac46f54a9967f07d4ae3',
  'flatbuffers-24.3.25.tar.gz': '4157c5cacdb59737c5d627e47ac26b140e9ee28b1102f812b36068aab728c1ed',
  'unordered_dense-4.8.1.tar.gz': '9f7202ec6d8353932ef865d33f5872e4b7a1356e9032da7cd09c3a0c5bb2b7de',
  'libuv-v1.51.0.tar.gz': '456a7b89cca4dbdaca84eb6eb8b8aa1beb25fda9a362062c1d0c7e4e0bc78c6b',
  'libsrtp-3.0.0-beta.tar.gz': '2033ce04de794376c5428f31a17259ab1cfc8c0c4e45564091d550abece807ac',
  'libsrtp-policy-api-11bec2b.tar.gz': 'af813b84779e14d9c96b092c666ee293bd0b9f99a0d3e73884253f78f9d785c3',
  'wrapdb-packagefiles.tar.gz': '29722e51284f6001d0caca84e188c7e59b1ff8cb67c59ee7d417de7d3bff72ba',
};

/**
 * Which tarball (and which meson build files) fills each wrap's `directory`. An unpacked folder
 * under subprojects/ is what meson uses before it would download anything, so the wrap files
 * themselves stay untouched. `overlay` is a folder of wrapdb-packagefiles.tar.gz (what the wrap's
 * patch_* lines would download) or, with `packageOverlay`, of the package's own packagefiles.
 */
const WRAP_SOURCES = {
  'abseil-cpp-20240722.0': { tarball: 'abseil-cpp-20240722.0.tar.gz', overlay: 'abseil-cpp' },
  'flatbuffers-24.3.25': { tarball: 'flatbuffers-24.3.25.tar.gz', overlay: 'flatbuffers' },
  'unordered_dense-4.8.1': {
    tarball: 'unordered_dense-4.8.1.tar.gz',
    packageOverlay: 'ankerl-unordered-dense',
  },
  // The git tag, not the dist tarball the wrap names (whose hash differs); same sources.
  'libuv-v1.51.0': { tarball: 'libuv-v1.51.0.tar.gz', overlay: 'libuv' },
  // mediasoup 3.21 to 3.23.
  'libsrtp-3.0.0-beta': { tarball: 'libsrtp-3.0.0-beta.tar.gz' },
  // mediasoup >= 3.24 pins versatica's commit 2fc078db, of which no snapshot is at hand: a cisco
  // libsrtp branch with the same srtp_policy_create API stands in (the folder's README).
  'libsrtp-3.0.0-beta-2fc078db': { tarball: 'libsrtp-policy-api-11bec2b.tar.gz' },
};

/**
 * The openssl wrap builds OpenSSL 3.0.8 from source. This stand-in gives the worker Debian's
 * OpenSSL instead (headers and shared libssl/libcrypto of one package, kept patched by Debian's
 * security updates). The worker's meson.build reads libssl_lib and libcrypto_lib for its
 * link_whole list (used only by the libmediasoup-worker library, not by the executable): empty
 * static libraries keep that file unchanged without linking a second OpenSSL.
 */
const OPENSSL_STANDIN = `project('openssl', 'c')
libssl_dep = dependency('libssl', version: '>= 3.0.0', allow_fallback: false)
libcrypto_dep = dependency('libcrypto', version: '>= 3.0.0', allow_fallback: false)
openssl_dep = declare_dependency(dependencies: [libssl_dep, libcrypto_dep])
libssl_lib = static_library('ssl_standin', 'standin.c')
libcrypto_lib = static_library('crypto_standin', 'standin.c')
meson.override_dependency('openssl', openssl_dep)
`;

function log(msg) {
  process.stdout.write(`[build-worker] ${msg}\n`);
}

function fail(msg) {
  process.stderr.write(`[build-worker] ${msg}\n`);
  process.exit(1);
}

/** The binary answers like a mediasoup worker: run without its environment, it exits with 41. */
function runsHere(bin) {
  try {
    execFileSync(bin, [], { stdio: 'ignore', env: {}, timeout: 10_000 });
    return false;
  } catch (error) {
    return /** @type {{ status?: number }} */ (error).status === 41;
  }
}

function installIntoPackage(bin) {
  fs.mkdirSync(path.dirname(defaultBin), { recursive: true });
  fs.rmSync(defaultBin, { force: true });
  fs.copyFileSync(bin, defaultBin);
  fs.chmodSync(defaultBin, 0o755);
  log(`worker ready at ${defaultBin}`);
}

function storeInCache(bin) {
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmpBin = `${cachedBin}.tmp-${process.pid}`;
  fs.copyFileSync(bin, tmpBin);
  fs.chmodSync(tmpBin, 0o755);
  fs.renameSync(tmpBin, cachedBin);
  log(`cached ${cachedBin}`);
}

function run(cmd, args, cwd) {
  execFileSync(cmd, args, { cwd, stdio: 'inherit' });
}

function ninjaArgs() {
  return ['-C', 'out', '-j', String(Math.max(1, os.availableParallelism())), 'mediasoup-worker'];
}

/** Build and download folders, removed once the binary is cached (kept for diagnosis on failure). */
const tempDirs = [];

function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** A fresh copy of the package's worker sources, without build output. */
function copyWorkerSources() {
  const buildDir = tempDir('ms-worker-');
  fs.cpSync(path.join(mediasoupDir, 'worker'), buildDir, { recursive: true });
  fs.rmSync(path.join(buildDir, 'out'), { recursive: true, force: true });
  return buildDir;
}

/**
 * mediasoup's DTLS transport (>= 3.14) watches its outgoing memory BIO with a BIO_set_callback_ex
 * callback that answers 1 to every call after the operation, because it tests
 * `operationType == BIO_CB_RETURN` while OpenSSL passes `operation | BIO_CB_RETURN`. For BIO_ctrl
 * that replaces the BIO's real answer. With an OpenSSL built with kernel TLS (Debian's is; the
 * OpenSSL mediasoup builds from its wrap is not), `BIO_get_ktls_send()` on that BIO is then
 * true, libssl allocates no record write buffer, and the first DTLS record written crashes
 * (SIGSEGV in libssl under SSL_read or SSL_do_handshake). Testing the flag returns the real
 * answer after every operation. docs/engine.md has the evidence.
 */
function patchDtlsTransport(buildDir) {
  const file = path.join(buildDir, 'src', 'RTC', 'DtlsTransport.cpp');
  const from = '(operationType == BIO_CB_RETURN) ? static_cast<long>(ret) : 1';
  const to = '(operationType & BIO_CB_RETURN) ? static_cast<long>(ret) : 1';
  const text = fs.readFileSync(file, 'utf8');
  if (!text.includes(from)) fail(`${file}: the BIO callback line to patch is not there`);
  fs.writeFileSync(file, text.replace(from, to));
}

// --- 3. Internet --------------------------------------------------------------------------------

async function reachable(url) {
  try {
    await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(4000) });
    return true;
  } catch {
    return false;
  }
}

async function fromPrebuilt() {
  const pkg = JSON.parse(fs.readFileSync(path.join(mediasoupDir, 'package.json'), 'utf8'));
  const repo = String(pkg.repository?.url ?? 'https://github.com/versatica/mediasoup')
    .replace(/^git\+/, '')
    .replace(/\.git$/, '');
  const kernel = Number(os.release().split('.')[0]);
  const name = `mediasoup-worker-${version}-${os.platform()}-${os.arch()}-kernel${kernel}.tgz`;
  const res = await fetch(`${repo}/releases/download/${version}/${name}`, {
    signal: AbortSignal.timeout(60_000),
  }).catch(() => undefined);
  if (!res?.ok) return undefined;
  const dir = tempDir('ms-prebuilt-');
  fs.writeFileSync(path.join(dir, name), Buffer.from(await res.arrayBuffer()));
  run('tar', ['xzf', name], dir);
  const bin = path.join(dir, 'mediasoup-worker');
  if (!fs.existsSync(bin) || !runsHere(bin)) {
    log(`prebuilt ${name} does not run on this host`);
    return undefined;
  }
  log(`using mediasoup's prebuilt ${name}`);
  return bin;
}

function mesonCommand(sourcesDir, buildDir) {
  if (sourcesDir) {
    unpackInto(checkedSource(sourcesDir, 'meson-1.12.0.tar.gz'), path.join(buildDir, '.meson'));
    return ['python3', [path.join(buildDir, '.meson', 'meson.py')]];
  }
  return ['meson', []];
}

function fromMesonDownloads(sourcesDir) {
  const buildDir = copyWorkerSources();
  log(`building mediasoup-worker ${version} in ${buildDir} with meson's downloads`);
  patchDtlsTransport(buildDir);
  const [meson, pre] = mesonCommand(sourcesDir, buildDir);
  run(meson, [...pre, 'setup', 'out', '--buildtype=release', '-Db_ndebug=true'], buildDir);
  run('ninja', ninjaArgs(), buildDir);
  return path.join(buildDir, 'out', 'mediasoup-worker');
}

// --- 4. Source folder ---------------------------------------------------------------------------

function sha256(file) {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function checkedSource(sourcesDir, name) {
  const file = path.join(sourcesDir, name);
  if (!fs.existsSync(file)) fail(`${name} is missing from MEDIASOUP_SOURCES (${sourcesDir})`);
  if (sha256(file) !== SOURCE_FILES[name]) fail(`${file}: SHA-256 differs from the pinned one`);
  return file;
}

function wrapDirectory(wrapFile) {
  const match = /^directory\s*=\s*(\S+)\s*$/m.exec(fs.readFileSync(wrapFile, 'utf8'));
  if (!match) fail(`${wrapFile}: no directory line`);
  return match[1];
}

function unpackInto(tarball, dest) {
  fs.mkdirSync(dest, { recursive: true });
  run('tar', ['xzf', tarball, '-C', dest, '--strip-components=1'], dest);
}

/** Fills subprojects/ from the source folder so that meson never needs to download. */
function fillSubprojects(sourcesDir, buildDir) {
  const subprojects = path.join(buildDir, 'subprojects');
  const packagefiles = path.join(buildDir, '.wrapdb-packagefiles');
  fs.mkdirSync(packagefiles);
  run(
    'tar',
    [
      'xzf',
      checkedSource(sourcesDir, 'wrapdb-packagefiles.tar.gz'),
      '-C',
      packagefiles,
      '--strip-components=1',
    ],
    buildDir,
  );
  for (const wrap of ['abseil-cpp', 'flatbuffers', 'unordered-dense', 'libuv', 'libsrtp3']) {
    const wrapFile = path.join(subprojects, `${wrap}.wrap`);
    if (!fs.existsSync(wrapFile)) continue;
    const directory = wrapDirectory(wrapFile);
    const source = WRAP_SOURCES[directory];
    if (!source) fail(`no source in MEDIASOUP_SOURCES known for ${wrap}.wrap (${directory})`);
    const dest = path.join(subprojects, directory);
    unpackInto(checkedSource(sourcesDir, source.tarball), dest);
    if (source.overlay) fs.cpSync(path.join(packagefiles, source.overlay), dest, { recursive: true });
    if (source.packageOverlay)
      fs.cpSync(path.join(subprojects, 'packagefiles', source.packageOverlay), dest, {
        recursive: true,
      });
  }
  const openssl = path.join(subprojects, wrapDirectory(path.join(subprojects, 'openssl.wrap')));
  fs.mkdirSync(openssl);
  fs.writeFileSync(path.join(openssl, 'meson.build'), OPENSSL_STANDIN);
  fs.writeFileSync(path.join(openssl, 'standin.c'), 'typedef int openssl_standin_unused;\n');
}

function fromSourceFolder(sourcesDir) {
  if (!fs.existsSync(sourcesDir)) fail(`MEDIASOUP_SOURCES folder ${sourcesDir} does not exist`);
  const buildDir = copyWorkerSources();
  log(`building mediasoup-worker ${version} in ${buildDir} from ${sourcesDir} (~20 min on 2 cores)`);
  patchDtlsTransport(buildDir);
  fillSubprojects(sourcesDir, buildDir);
  const [meson, pre] = mesonCommand(sourcesDir, buildDir);
  run(
    meson,
    [...pre, 'setup', 'out', '--buildtype=release', '-Db_ndebug=true', '--wrap-mode=nodownload'],
    buildDir,
  );
  run('ninja', ninjaArgs(), buildDir);
  return path.join(buildDir, 'out', 'mediasoup-worker');
}

// --- Main ---------------------------------------------------------------------------------------

if (process.env.MEDIASOUP_WORKER_BIN) {
  const bin = path.resolve(root, process.env.MEDIASOUP_WORKER_BIN);
  if (!runsHere(bin)) fail(`MEDIASOUP_WORKER_BIN=${bin} is not a mediasoup worker that runs here`);
  log(`using MEDIASOUP_WORKER_BIN ${bin} (mediasoup reads the variable at run time)`);
  process.exit(0);
}

if (fs.existsSync(cachedBin)) {
  log(`using cached worker ${cachedBin}`);
  installIntoPackage(cachedBin);
  process.exit(0);
}

const sourcesDir = process.env.MEDIASOUP_SOURCES
  ? path.resolve(root, process.env.MEDIASOUP_SOURCES)
  : undefined;
let built;
const online = process.env.MEDIASOUP_OFFLINE !== '1' && (await reachable('https://github.com/'));
if (online) {
  built = (await fromPrebuilt()) ?? fromMesonDownloads(sourcesDir);
} else if (sourcesDir) {
  log('offline (github.com not reachable or MEDIASOUP_OFFLINE=1): building from MEDIASOUP_SOURCES');
  built = fromSourceFolder(sourcesDir);
} else {
  fail(
    'offline (github.com not reachable or MEDIASOUP_OFFLINE=1) and MEDIASOUP_SOURCES is not set: point it at a folder with the ' +
      'worker dependencies (see docs/engine.md) or set MEDIASOUP_WORKER_BIN',
  );
}
if (!runsHere(built)) fail(`${built} does not run on this host`);
storeInCache(built);
installIntoPackage(cachedBin);
for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });

#!/usr/bin/env node
// Builds mediasoup-worker from the sources shipped inside the mediasoup npm package, against
// Debian 12's system libraries (the upstream build downloads its dependencies, which cannot work
// on machines that only reach the npm registry and Debian's mirrors). The binary is cached outside
// the clone, keyed by mediasoup version and by the hash of this patch, and linked into the place
// where mediasoup looks for it by default, so nothing needs MEDIASOUP_WORKER_BIN at run time.
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

function log(msg) {
  process.stdout.write(`[build-worker] ${msg}\n`);
}

function replaceOnce(text, from, to, file) {
  if (!text.includes(from)) throw new Error(`patch anchor not found in ${file}: ${from.slice(0, 60)}`);
  return text.replace(from, to);
}

/** Swaps every meson subproject for the matching Debian system dependency. */
function patchMesonBuild(src) {
  let text = src.replace(/meson_version: '>= 1\.1\.0'/, "meson_version: '>= 1.0.0'");
  const start = text.indexOf('openssl_proj = subproject(');
  const end = text.indexOf("libwebrtc_include_directories = include_directories('include')");
  if (start < 0 || end < 0) throw new Error('meson.build: subproject block not found');
  const systemDeps = `
openssl_dep = dependency('openssl')
nlohmann_json_dep = dependency('nlohmann_json')
libuv_dep = dependency('libuv')
libsrtp2_dep = dependency('libsrtp2')
usrsctp_dep = dependency('usrsctp')
absl_container_dep = dependency('absl_flat_hash_map')
absl_strings_dep = dependency('absl_strings')
absl_types_dep = [dependency('absl_optional'), dependency('absl_variant')]
# Debian puts srtp.h under <includedir>/srtp2 while the worker includes <srtp.h>.
cpp_args += ['-I' + libsrtp2_dep.get_variable(pkgconfig: 'includedir') + '/srtp2']
`;
  text = text.slice(0, start) + systemDeps + text.slice(end);
  text = text.replace(/\w+_proj\.get_variable\('(\w+_dep)'\)/g, '$1');
  const lwStart = text.indexOf('link_whole = [');
  const lwEnd = text.indexOf(']', lwStart);
  text = text.slice(0, lwStart) + 'link_whole = [libwebrtc' + text.slice(lwEnd);
  // Tests and fuzzers want a Catch2 v3 subproject: leave them out.
  const testStart = text.indexOf('test_sources = [');
  if (testStart < 0) throw new Error('meson.build: test block not found');
  return text.slice(0, testStart);
}

function patchLibwebrtcBuild(src) {
  const start = src.indexOf('abseil_cpp_proj = subproject(');
  const end = src.indexOf('local_include_directories = declare_dependency(');
  if (start < 0 || end < 0) throw new Error('libwebrtc/meson.build: abseil block not found');
  let text = src.slice(0, start) + src.slice(end);
  text = text.replace(/\w+_proj\.get_variable\('(\w+_dep)'\)/g, '$1');
  return text;
}

/**
 * mediasoup 3.12 sets no socket buffer size, so a WebRtcServer's one UDP socket per worker, which
 * every transport of the worker shares, gets the kernel default (net.core.rmem_default, often
 * 208 KiB: a few milliseconds of a busy worker's traffic) and drops datagrams whenever the worker
 * is descheduled that long. Newer mediasoup versions expose the size; here the server passes it in
 * the worker's environment. The kernel caps it at net.core.rmem_max.
 */
function patchUdpSocketHandler(src) {
  let text = replaceOnce(
    src,
    '#include <cstring> // std::memcpy()',
    '#include <cstdlib> // std::getenv(), std::strtol()\n#include <cstring> // std::memcpy()',
    'UdpSocketHandler.cpp',
  );
  const anchor = '\t// Set local address.\n\tif (!SetLocalAddress())';
  return replaceOnce(
    text,
    anchor,
    `\t// teleconsult-sfu: receive buffer size from the environment (best effort, capped by the kernel).
\tif (const char* wanted = std::getenv("TELECONSULT_UDP_RECV_BUFFER_BYTES"))
\t{
\t\tlong bytes = std::strtol(wanted, nullptr, 10);

\t\tif (bytes > 0 && bytes <= 1L << 30)
\t\t{
\t\t\tint size = static_cast<int>(bytes);

\t\t\tuv_recv_buffer_size(reinterpret_cast<uv_handle_t*>(this->uvHandle), &size);
\t\t}
\t}

${anchor}`,
    'UdpSocketHandler.cpp',
  );
}

function linkIntoPackage() {
  fs.mkdirSync(path.dirname(defaultBin), { recursive: true });
  fs.rmSync(defaultBin, { force: true });
  fs.copyFileSync(cachedBin, defaultBin);
  fs.chmodSync(defaultBin, 0o755);
  log(`worker ready at ${defaultBin}`);
}

if (fs.existsSync(cachedBin)) {
  log(`using cached worker ${cachedBin}`);
  linkIntoPackage();
  process.exit(0);
}

const buildDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-worker-'));
log(`building mediasoup-worker ${version} in ${buildDir} (takes ~6 min on 2 cores)`);
fs.cpSync(path.join(mediasoupDir, 'worker'), buildDir, { recursive: true });
const mesonFile = path.join(buildDir, 'meson.build');
fs.writeFileSync(mesonFile, patchMesonBuild(fs.readFileSync(mesonFile, 'utf8')));
const webrtcFile = path.join(buildDir, 'deps', 'libwebrtc', 'meson.build');
fs.writeFileSync(webrtcFile, patchLibwebrtcBuild(fs.readFileSync(webrtcFile, 'utf8')));
const udpFile = path.join(buildDir, 'src', 'handles', 'UdpSocketHandler.cpp');
fs.writeFileSync(udpFile, patchUdpSocketHandler(fs.readFileSync(udpFile, 'utf8')));
fs.rmSync(path.join(buildDir, 'subprojects'), { recursive: true, force: true });
fs.rmSync(path.join(buildDir, 'out'), { recursive: true, force: true });

const run = (cmd, args) => execFileSync(cmd, args, { cwd: buildDir, stdio: 'inherit' });
run('meson', ['setup', 'out', '--buildtype=release', '-Db_ndebug=true']);
run('ninja', ['-C', 'out', '-j', String(Math.max(1, os.availableParallelism())), 'mediasoup-worker']);
fs.mkdirSync(cacheDir, { recursive: true });
const tmpBin = `${cachedBin}.tmp-${process.pid}`;
fs.copyFileSync(path.join(buildDir, 'out', 'mediasoup-worker'), tmpBin);
fs.renameSync(tmpBin, cachedBin);
fs.rmSync(buildDir, { recursive: true, force: true });
log(`cached ${cachedBin}`);
linkIntoPackage();

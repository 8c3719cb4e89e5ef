// Builds the two publishable packages from the sources in src/: packages/sdk (the browser SDK,
// src/sdk, one ES module with mediasoup-client left as a dependency) and packages/server (for
// platform backends, src/platform), each with TypeScript declarations emitted by tsc.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const browser = ['chrome110', 'firefox115', 'safari16'];

async function sdk() {
  const out = path.join(root, 'packages', 'sdk', 'dist');
  fs.rmSync(out, { recursive: true, force: true });
  await build({
    entryPoints: [path.join(root, 'src', 'sdk', 'index.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: browser,
    // The application's bundler resolves it (and shares it with anything else that uses it).
    external: ['mediasoup-client'],
    minify: true,
    sourcemap: true,
    outfile: path.join(out, 'index.js'),
    logLevel: 'warning',
  });
  await build({
    entryPoints: [path.join(root, 'src', 'sdk', 'e2ee', 'transformWorker.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: browser,
    minify: true,
    sourcemap: true,
    outfile: path.join(out, 'teleconsult-e2ee-worker.js'),
    logLevel: 'warning',
  });
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'packages', 'sdk', 'tsconfig.json')], {
    stdio: 'inherit',
  });
}

async function server() {
  const out = path.join(root, 'packages', 'server', 'dist');
  fs.rmSync(out, { recursive: true, force: true });
  await build({
    entryPoints: [path.join(root, 'src', 'platform', 'index.ts')],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    outfile: path.join(out, 'index.js'),
    logLevel: 'warning',
  });
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'packages', 'server', 'tsconfig.json')], {
    stdio: 'inherit',
  });
}

await sdk();
await server();

// Bundles the browser SDK (src/sdk) into one ESM file with esbuild: dist/sdk/teleconsult-sdk.js,
// and its end-to-end encryption worker (src/sdk/e2ee/transformWorker.ts): dist/sdk/teleconsult-e2ee-worker.js.
// Minified (the server serves it to every patient's browser; tests/packages/packages.test.ts holds
// it to a size budget), with a source map; SDK_MINIFY=0 leaves it readable.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const entry = path.join(root, 'src', 'sdk', 'index.ts');
if (!fs.existsSync(entry)) process.exit(0);
await build({
  entryPoints: [entry],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16'],
  sourcemap: true,
  minify: process.env.SDK_MINIFY !== '0',
  keepNames: true,
  outfile: path.join(root, 'dist', 'sdk', 'teleconsult-sdk.js'),
  logLevel: 'warning',
});
const workerEntry = path.join(root, 'src', 'sdk', 'e2ee', 'transformWorker.ts');
if (fs.existsSync(workerEntry)) {
  await build({
    entryPoints: [workerEntry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox115', 'safari16'],
    sourcemap: true,
    minify: process.env.SDK_MINIFY !== '0',
    keepNames: true,
    outfile: path.join(root, 'dist', 'sdk', 'teleconsult-e2ee-worker.js'),
    logLevel: 'warning',
  });
}

// Bundles the browser SDK (src/sdk) into one ESM file with esbuild: dist/sdk/teleconsult-sdk.js.
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
  minify: process.env.SDK_MINIFY === '1',
  outfile: path.join(root, 'dist', 'sdk', 'teleconsult-sdk.js'),
  logLevel: 'warning',
});

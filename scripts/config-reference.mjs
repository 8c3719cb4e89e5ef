// Prints the configuration reference (docs/configuration.md) from the schema in src/config/schema.ts,
// so the documentation cannot drift from what the loader accepts. Run after `npm run build`.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { ConfigSchema } = await import(path.join(root, 'dist', 'src', 'config', 'schema.js'));

function typeOf(p) {
  if (p.anyOf)
    return p.anyOf.map((a) => (a.const !== undefined ? JSON.stringify(a.const) : typeOf(a))).join(' \\| ');
  if (p.type === 'array') return `${typeOf(p.items)}[]`;
  if (p.type === 'integer' && p.minimum !== undefined) return `integer ${p.minimum}..${p.maximum}`;
  return p.type ?? 'unknown';
}

let out = `# Configuration reference

Generated from \`src/config/schema.ts\` by \`node scripts/config-reference.mjs\`; a test fails when it is stale.

Sources, later ones winning: the embedded defaults below; a JSON file named by \`--config FILE\` or
\`SFU_CONFIG=FILE\`; environment variables \`SFU_<SECTION>__<KEY>\` (the key in upper snake case; values
that parse as JSON are taken as JSON, e.g. \`SFU_AUTH__API_KEYS='["k1"]'\`). Unknown keys and invalid
values stop the start with a message naming the key, what was expected and what was found.

| key (environment variable) | type | default | meaning |
| --- | --- | --- | --- |
`;
for (const [section, schema] of Object.entries(ConfigSchema.properties)) {
  for (const [key, p] of Object.entries(schema.properties)) {
    const env = `SFU_${section.toUpperCase()}__${key.replace(/([A-Z])/g, '_$1').toUpperCase()}`;
    out += `| \`${section}.${key}\` (\`${env}\`) | ${typeOf(p)} | \`${JSON.stringify(p.default)}\` | ${p.description ?? ''} |\n`;
  }
}
if (process.argv.includes('--write')) fs.writeFileSync(path.join(root, 'docs', 'configuration.md'), out);
else process.stdout.write(out);

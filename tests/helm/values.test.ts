import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { resolveConfig } from '../../src/config/load.js';
import { defaultValues, isObject, templateFiles, templatesDir, type Json, type JsonObject } from './chart.js';

/** Every `.Values.a.b` (also `$.Values.a.b`) path written in the templates, with the file using it. */
function referencedPaths(): Map<string, string> {
  const paths = new Map<string, string>();
  for (const file of templateFiles()) {
    const text = fs.readFileSync(path.join(templatesDir, file), 'utf8');
    for (const m of text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
      paths.set(m[1]!.slice(1), file);
    }
  }
  return paths;
}

function has(values: JsonObject, dotted: string): boolean {
  let node: Json = values;
  for (const key of dotted.split('.')) {
    if (!isObject(node) || !(key in node)) return false;
    node = node[key]!;
  }
  return true;
}

/** Leaf paths of values.yaml (empty maps and lists count as leaves). */
function leaves(value: Json, prefix = ''): string[] {
  if (!isObject(value) || Object.keys(value).length === 0) return [prefix];
  return Object.entries(value).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
}

void t.test('every .Values path a template uses exists in values.yaml', (t) => {
  const values = defaultValues();
  const paths = referencedPaths();
  t.ok(paths.size > 20, `templates reference values (${paths.size} paths found)`);
  const missing = [...paths].filter(([p]) => !has(values, p)).map(([p, file]) => `${p} (${file})`);
  t.same(missing, [], 'paths used in templates but absent from values.yaml');
  t.end();
});

void t.test('every value in values.yaml is read by a template', (t) => {
  const used = [...referencedPaths().keys()];
  const unused = leaves(defaultValues()).filter(
    (leaf) => !used.some((p) => leaf === p || leaf.startsWith(`${p}.`)),
  );
  t.same(unused, [], 'values that no template reads (dead settings mislead operators)');
  t.end();
});

void t.test('the config block of values.yaml is a configuration the server accepts', (t) => {
  const config = defaultValues().config;
  if (!isObject(config)) throw new Error('values.config must be a mapping');
  const resolved = resolveConfig(config);
  t.equal(resolved.server.demoPage, false, 'the demo page is off');
  t.ok(resolved.server.shutdownDeadlineS >= 300, 'the drain deadline leaves consultations time to end');
  t.end();
});

void t.test('the config block leaves chart-owned keys to the chart', (t) => {
  // These come from structured values as environment variables; a copy in the file would be
  // silently overridden and mislead whoever reads the ConfigMap.
  const owned = [
    'server.listenHost',
    'server.port',
    'server.tlsCertFile',
    'server.tlsKeyFile',
    'media.listenIp',
    'media.announcedAddress',
    'media.workers',
    'media.webRtcServerPort',
    'media.rtcMinPort',
    'media.rtcMaxPort',
    'media.dtlsCertFile',
    'media.dtlsKeyFile',
    'auth.tokenSecret',
    'auth.apiKeys',
    'auth.jwksFile',
    'journal.dir',
    'webhooks.secret',
  ];
  const config = defaultValues().config as JsonObject;
  t.same(
    owned.filter((p) => has(config, p)),
    [],
  );
  t.end();
});

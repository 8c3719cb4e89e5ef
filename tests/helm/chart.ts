import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { TemplateSet } from './goTemplate.js';

/** Loads the Helm chart and renders it the way `helm template` would, with the renderer in goTemplate.ts. */

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const chartDir = path.join(repoRoot, 'helm', 'teleconsult-sfu');
export const templatesDir = path.join(chartDir, 'templates');

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function readYamlFile(file: string): JsonObject {
  const doc = YAML.parse(fs.readFileSync(file, 'utf8')) as unknown;
  if (!isObject(doc)) throw new Error(`${file} is not a YAML mapping`);
  return doc;
}

export function defaultValues(): JsonObject {
  return readYamlFile(path.join(chartDir, 'values.yaml'));
}

/** Helm's merge of -f/--set values over the chart's defaults: maps merge, everything else replaces. */
export function mergeValues(base: JsonObject, over: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isObject(value) && isObject(current) ? mergeValues(current, value) : value;
  }
  return out;
}

export function templateFiles(): string[] {
  return fs.readdirSync(templatesDir).sort();
}

/** Files rendered into manifests: Helm skips partials (`_*`) and NOTES.txt. */
export function manifestFiles(): string[] {
  return templateFiles().filter((f) => !f.startsWith('_') && /\.ya?ml$/.test(f));
}

export interface Manifest {
  file: string;
  doc: JsonObject;
}

export interface Rendered {
  /** Text of every template file, NOTES.txt included. */
  text: Map<string, string>;
  manifests: Manifest[];
}

export function render(overrides: JsonObject = {}, releaseName = 'consult'): Rendered {
  const chart = readYamlFile(path.join(chartDir, 'Chart.yaml'));
  const set = new TemplateSet();
  for (const file of templateFiles()) set.add(file, fs.readFileSync(path.join(templatesDir, file), 'utf8'));
  const data = {
    Values: mergeValues(defaultValues(), overrides),
    Release: { Name: releaseName, Namespace: 'teleconsult', Service: 'Helm', IsInstall: true },
    Chart: { Name: chart.name, Version: chart.version, AppVersion: chart.appVersion },
  };
  const text = new Map<string, string>();
  const manifests: Manifest[] = [];
  for (const file of templateFiles().filter((f) => !f.startsWith('_'))) {
    const out = set.render(file, data);
    text.set(file, out);
    if (!manifestFiles().includes(file)) continue;
    for (const doc of YAML.parseAllDocuments(out)) {
      if (doc.errors.length > 0) {
        throw new Error(`${file} does not parse as YAML: ${doc.errors[0]!.message}\n${out}`);
      }
      const value = doc.toJS() as unknown;
      if (value === null || value === undefined) continue;
      if (!isObject(value)) throw new Error(`${file}: a manifest must be a mapping`);
      manifests.push({ file, doc: value });
    }
  }
  return { text, manifests };
}

export function find(rendered: Rendered, kind: string, nameSuffix = ''): JsonObject {
  const hit = rendered.manifests.find(
    (m) => m.doc.kind === kind && text((m.doc.metadata as JsonObject).name).endsWith(nameSuffix),
  );
  if (!hit) throw new Error(`no ${kind}${nameSuffix ? ` named *${nameSuffix}` : ''} rendered`);
  return hit.doc;
}

/** Follows a path of keys through nested objects; throws naming the missing step. */
export function at(value: Json | undefined, ...keys: (string | number)[]): Json {
  let v: Json | undefined = value;
  for (const key of keys) {
    if (typeof key === 'number' ? !Array.isArray(v) : !isObject(v)) {
      throw new Error(`missing ${keys.join('.')} at ${String(key)}`);
    }
    v = (v as Record<string | number, Json>)[key];
    if (v === undefined) throw new Error(`missing ${keys.join('.')} at ${String(key)}`);
  }
  return v as Json;
}

/** A manifest scalar as text; objects and lists are errors rather than "[object Object]". */
export function text(v: Json | undefined): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return '';
  throw new Error(`expected a scalar, found ${JSON.stringify(v)}`);
}

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Crash inputs kept as fixtures: tests/fuzz/corpus/<target>/<digest>.json in the source tree
 * (tests run from dist/, the corpus stays with the sources and is committed). Every fuzz test
 * replays its target's corpus before fuzzing, so a fixed bug stays fixed.
 */
const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CORPUS_DIR = path.join(projectRoot, 'tests', 'fuzz', 'corpus');

export interface CorpusEntry {
  target: string;
  /** Why it was kept: the failure seen when it was found. */
  failure: string;
  seed: number;
  caseNumber: number;
  /** Target-specific: a text frame, base64 bytes, or a JSON description of the request. */
  input: { text?: string; base64?: string; json?: unknown };
}

export function loadCorpus(target: string): { file: string; entry: CorpusEntry }[] {
  const dir = path.join(CORPUS_DIR, target);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => ({
      file: path.join(dir, name),
      entry: JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as CorpusEntry,
    }));
}

/** Saves a failing input (once per distinct input); returns the file written. */
export function saveCrash(entry: CorpusEntry): string {
  const dir = path.join(CORPUS_DIR, entry.target);
  fs.mkdirSync(dir, { recursive: true });
  const digest = createHash('sha256').update(JSON.stringify(entry.input)).digest('hex').slice(0, 16);
  const file = path.join(dir, `${digest}.json`);
  if (!fs.existsSync(file)) fs.writeFileSync(file, JSON.stringify(entry, null, 2) + '\n');
  return file;
}

export function inputBytes(input: CorpusEntry['input']): Buffer {
  if (input.base64 !== undefined) return Buffer.from(input.base64, 'base64');
  if (input.text !== undefined) return Buffer.from(input.text, 'utf8');
  return Buffer.from(JSON.stringify(input.json ?? null), 'utf8');
}

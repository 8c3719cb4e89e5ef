import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { REFERENCE_RUNS, referenceCommand } from '../../bench/reference.js';

/**
 * Every measured figure in the documents that quote benchmark results names the stored report it
 * comes from, as `NUMBER [↗](path/to/bench/reference/DATE/NAME.json "json.path")`, and the report
 * holds that value, rounded as printed. Inside `<!-- figures -->` ... `<!-- /figures -->` blocks every
 * number with a unit must be cited; the reports cited must come from a run of `npm run bench:reference`
 * (bench/reference.ts), so that the whole set can be regenerated on current code.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DOCUMENTS = ['README.md', 'bench/README.md', 'docs/operations.md'];

const CITATION =
  /(-?\d[\d,]*(?:\.\d+)?)\s?(?:%|ms|s|KiB|MiB|GiB|×|joins\/s|req\/s|Mbit\/s|appends\/s)?\s?\[↗\]\(([^ )]+) "([^"]+)"\)/g;
/** A number with a unit; a threshold (`< 50 ms`, `within 5 %`, `under 30 KiB`) is not a measurement. */
const UNIT_FIGURE =
  /(?<![<>≤≥]\s?|within |under |[\d.,])\d(?:[\d,]*\d)?(?:\.\d+)?\s?(?:%|ms\b|KiB|MiB|×|joins\/s|req\/s|Mbit\/s|appends\/s)/g;

interface Citation {
  doc: string;
  line: number;
  printed: string;
  file: string;
  selector: string;
}

/** Resolves `a.b[2].c`, `targets[target=self].x` and an optional trailing `*100` scale. */
export function resolveFigure(json: unknown, selector: string): number | undefined {
  const [pathPart, scalePart] = selector.split('*');
  let node: unknown = json;
  for (const step of (pathPart ?? '').match(/[^.[\]]+|\[[^\]]*\]/g) ?? []) {
    if (node === null || typeof node !== 'object') return undefined;
    if (step.startsWith('[')) {
      const inner = step.slice(1, -1);
      const eq = inner.indexOf('=');
      if (eq >= 0) {
        if (!Array.isArray(node)) return undefined;
        const [key, value] = [inner.slice(0, eq), inner.slice(eq + 1)];
        node = (node as Record<string, unknown>[]).find((item) => String(item?.[key]) === value);
      } else node = (node as unknown[])[Number(inner)];
    } else node = (node as Record<string, unknown>)[step];
  }
  if (typeof node !== 'number') return undefined;
  return scalePart ? node * Number(scalePart) : node;
}

/** Does `value` print as `printed` (same number of decimals, thousands separators ignored)? */
export function printsAs(value: number, printed: string): boolean {
  const plain = printed.replace(/,/g, '');
  const decimals = plain.includes('.') ? plain.split('.')[1]!.length : 0;
  return value.toFixed(decimals) === Number(plain).toFixed(decimals);
}

function citationsOf(
  doc: string,
  text = fs.readFileSync(path.join(root, doc), 'utf8'),
): {
  citations: Citation[];
  uncited: string[];
} {
  const citations: Citation[] = [];
  const uncited: string[] = [];
  let fenced = false;
  let figures = false;
  text.split('\n').forEach((line, i) => {
    if (line.startsWith('```')) fenced = !fenced;
    if (fenced) return;
    if (line.includes('<!-- figures -->')) figures = true;
    if (line.includes('<!-- /figures -->')) figures = false;
    const cited: string[] = [];
    for (const m of line.matchAll(CITATION)) {
      citations.push({ doc, line: i + 1, printed: m[1]!, file: m[2]!, selector: m[3]! });
      cited.push(m[0]);
    }
    if (!figures) return;
    let rest = line;
    for (const c of cited) rest = rest.replace(c, '');
    // Link targets and titles are not figures.
    rest = rest.replace(/\]\([^)]*\)/g, ']');
    for (const m of rest.matchAll(UNIT_FIGURE)) uncited.push(`${doc}:${i + 1}: "${m[0]}" in: ${line.trim()}`);
  });
  return { citations, uncited };
}

void t.test('the figure checker reads JSON paths and rounding as printed', async (t) => {
  const json = { a: { b: [1, { c: 0.00734 }] }, targets: [{ target: 'self', x: 1.034 }] };
  t.equal(resolveFigure(json, 'a.b[1].c*100'), 0.734);
  t.equal(resolveFigure(json, 'targets[target=self].x'), 1.034);
  t.equal(resolveFigure(json, 'targets[target=janus].x'), undefined);
  t.ok(printsAs(1.034, '1.03'));
  t.notOk(printsAs(1.034, '1.04'));
  t.ok(printsAs(20378.4, '20,378'));
  t.notOk(printsAs(9.6, '9'), 'rounded, not truncated: 9.6 prints as 10');

  const sample = [
    'Outside a block: 12 ms is not checked.',
    '<!-- figures -->',
    '| target p95 < 250 ms, within 5 %, under 30 KiB | 48 ms [↗](r.json "a.b") | 9.1 KiB |',
    '<!-- /figures -->',
  ].join('\n');
  const { citations, uncited } = citationsOf('sample.md', sample);
  t.same(
    citations.map((c) => [c.printed, c.file, c.selector]),
    [['48', 'r.json', 'a.b']],
  );
  t.equal(uncited.length, 1, 'thresholds pass, the uncited measurement does not');
  t.match(uncited[0], /"9\.1 KiB"/);
});

for (const doc of DOCUMENTS) {
  void t.test(`every figure in ${doc} is held by the stored report it cites`, async (t) => {
    const { citations, uncited } = citationsOf(doc);
    t.same(uncited, [], 'no uncited figure inside a figures block');
    for (const c of citations) {
      const where = `${c.doc}:${c.line} ${c.printed} ← ${c.file} "${c.selector}"`;
      const file = path.resolve(path.dirname(path.join(root, c.doc)), c.file);
      const relative = path.relative(root, file);
      const parts = /^bench\/reference\/(\d{4}-\d{2}-\d{2})\/([\w-]+)\.json$/.exec(relative);
      if (!t.ok(parts, `${where}: cites a report under bench/reference/DATE/`)) continue;
      if (!t.ok(fs.existsSync(file), `${where}: the report exists`)) continue;
      const report = JSON.parse(fs.readFileSync(file, 'utf8')) as { provenance?: { command?: string } };
      const value = resolveFigure(report, c.selector);
      t.ok(value !== undefined && printsAs(value, c.printed), `${where}: the report holds ${value}`);
      // Per-target reports of a --compare run (NAME-target[-rK]) record the run's own command.
      const command = report.provenance?.command;
      const produced = REFERENCE_RUNS.some(
        (run) =>
          (parts![2] === run.name || parts![2]!.startsWith(`${run.name}-`)) &&
          command === referenceCommand(run, `bench/reference/${parts![1]}/${run.name}.json`),
      );
      t.ok(produced, `${where}: made by a run of npm run bench:reference (command: ${command})`);
    }
  });
}

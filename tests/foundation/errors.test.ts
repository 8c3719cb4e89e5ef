import t from 'tap';
import fs from 'node:fs';
import { ERROR_CATALOGUE, ERROR_CODES, SfuError } from '../../src/errors/catalogue.js';

t.test('every error code is documented in docs/errors.md', async (t) => {
  const doc = fs.readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  for (const code of ERROR_CODES) t.match(doc, new RegExp(`\\b${code}\\b`), `${code} is documented`);
});

t.test('every documented code exists, so the documentation never promises a removed code', async (t) => {
  const doc = fs.readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
  t.ok(documented.length > 0);
  for (const code of documented) t.ok(code && code in ERROR_CATALOGUE, `${code} is in the catalogue`);
});

t.test('an SfuError carries the catalogue status and serialises without the stack', async (t) => {
  const error = new SfuError('ROOM_FULL', 'max 2');
  t.equal(error.status, 409);
  t.same(error.toJSON(), { code: 'ROOM_FULL', message: ERROR_CATALOGUE.ROOM_FULL.message, detail: 'max 2' });
});

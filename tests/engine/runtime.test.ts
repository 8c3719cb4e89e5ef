import t from 'tap';
import { readFileSync } from 'node:fs';

// `npm test` runs tap through scripts/node.sh, and tap spawns each test file with the node it runs
// on: this file therefore runs on the Node.js the README's commands use.
t.test('the suite runs on Node.js 24 or later (Node 20 is end of life)', (t) => {
  const major = Number(process.versions.node.split('.')[0]);
  t.ok(major >= 24, `process.versions.node is ${process.versions.node}`);
  t.end();
});

t.test("package.json's engines field asks for the same Node.js", (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    engines: { node: string };
  };
  t.equal(pkg.engines.node, '>=24');
  t.end();
});

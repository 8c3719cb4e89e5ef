import t from 'tap';
import fs from 'node:fs';
import {
  ACTIONS,
  PERMISSIONS,
  ROLES,
  permissionTableMarkdown,
  permits,
  roleMay,
} from '../../src/protocol/permissions.js';
import { Role } from '../../src/protocol/messages.js';
import { ADMISSION_STATES } from '../../src/rooms/admission.js';
import { AUTHORIZATION_DOC, readMatrix } from './authorizationMatrix.js';

/**
 * The permission table (src/protocol/permissions.ts) is the one source: the protocol's roles come
 * from it, docs/authorization.md carries it verbatim, and the matrix there has one column per role.
 * (The matrix itself is executed against a live server by authorization.test.ts.)
 */
const START = '<!-- permission-table:start -->';
const END = '<!-- permission-table:end -->';

t.test('docs/authorization.md carries the permission table as the server reads it', async (t) => {
  const doc = fs.readFileSync(AUTHORIZATION_DOC, 'utf8');
  const from = doc.indexOf(START);
  const to = doc.indexOf(END);
  t.ok(from >= 0 && to > from, 'the doc has the table markers');
  const inDoc = doc.slice(from + START.length, to).trim();
  t.equal(
    inDoc,
    permissionTableMarkdown(),
    'paste permissionTableMarkdown() between the markers when the table changes',
  );
});

t.test('the protocol, the matrix and the table name the same roles', async (t) => {
  t.same(
    Role.anyOf.map((literal) => literal.const),
    ROLES,
    'protocol Role = table rows',
  );
  const header = readMatrix()[0]!;
  t.same(Object.keys(header.outcomes), ROLES, 'one matrix column per role');
  for (const row of readMatrix())
    for (const role of ROLES) t.not(row.outcomes[role], '', `${row.operation}/${row.state}/${role} filled`);
});

t.test('the table is coherent with the admission states', async (t) => {
  for (const role of ROLES) {
    for (const action of ACTIONS) {
      for (const state of PERMISSIONS[role].actions[action])
        t.ok(ADMISSION_STATES.includes(state), `${role}/${action}: ${state} is a state`);
      t.equal(
        roleMay(role, action),
        ADMISSION_STATES.some((s) => permits(role, s, action)),
        `${role}/${action}`,
      );
    }
    // Nothing flows before admission, for any role.
    for (const state of [
      'invited',
      'waiting',
      'consented',
      'left',
      'declined',
      'removed',
      'expired',
    ] as const) {
      t.notOk(permits(role, state, 'receive'), `${role} receives nothing while ${state}`);
      t.notOk(permits(role, state, 'publish'), `${role} publishes nothing to others while ${state}`);
    }
  }
});

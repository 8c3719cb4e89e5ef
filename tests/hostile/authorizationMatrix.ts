import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROLES as TABLE_ROLES, type Role } from '../../src/protocol/permissions.js';

/**
 * Reads the authorization matrix from docs/authorization.md: the one table under the heading
 * "## The matrix", one row per (operation, state), one column per role. The test drives every cell
 * against a live server and compares with what this document says, so the two cannot drift.
 */
/** The roles of the permission table (src/protocol/permissions.ts): one column each. */
export const ROLES: readonly Role[] = TABLE_ROLES;
export const STATES = ['waiting', 'consented', 'admitted', 'in-call', 'room ended', 'other room'] as const;
export type MatrixState = (typeof STATES)[number];

export interface MatrixRow {
  operation: string;
  state: MatrixState;
  /** Expected outcome per role: 'ok', a catalogued error code, 'closed', or '—' (not applicable). */
  outcomes: Record<Role, string>;
}

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const AUTHORIZATION_DOC = path.join(projectRoot, 'docs', 'authorization.md');

function cellText(cell: string): string {
  return cell.trim().replace(/^`|`$/g, '');
}

export function readMatrix(file = AUTHORIZATION_DOC): MatrixRow[] {
  const text = fs.readFileSync(file, 'utf8');
  const start = text.indexOf('## The matrix');
  if (start < 0) throw new Error('docs/authorization.md has no "## The matrix" section');
  const rows: MatrixRow[] = [];
  let header: string[] | undefined;
  for (const line of text.slice(start).split('\n').slice(1)) {
    if (line.startsWith('## ')) break;
    if (!line.startsWith('|')) continue;
    const cells = line.split('|').slice(1, -1).map(cellText);
    if (!header) {
      header = cells;
      continue;
    }
    if (cells.every((c) => /^:?-+:?$/.test(c))) continue;
    const [operation, state, ...rest] = cells;
    const expandedStates: MatrixState[] =
      state === 'any' ? [...STATES] : STATES.includes(state as MatrixState) ? [state as MatrixState] : [];
    if (!operation || expandedStates.length === 0) throw new Error(`bad matrix row: ${line}`);
    const outcomes = Object.fromEntries(
      ROLES.map((role) => {
        const index = header!.indexOf(role) - 2;
        return [role, rest[index] ?? ''];
      }),
    ) as Record<Role, string>;
    for (const s of expandedStates) rows.push({ operation, state: s, outcomes });
  }
  if (!header) throw new Error('the matrix has no header');
  return rows;
}

import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { verifyChain } from './chain.js';
import { isConsultationId } from './consultationId.js';
import { durablePrefixLength, splitLines } from './durableLog.js';

export interface JournalFileReport {
  consultationId: string;
  ok: boolean;
  records: number;
  ended: boolean;
  headHash: string;
  firstBadSeq?: number;
  reason?: string;
  /** Bytes after the last complete record: a write torn by a crash, never acknowledged. */
  tornTailBytes: number;
}

/** Accepts either `journal.dir` (which holds `journals/`) or the `journals/` folder itself. */
export async function resolveJournalsDir(dir: string): Promise<string> {
  const nested = path.join(dir, 'journals');
  try {
    if ((await stat(nested)).isDirectory()) return nested;
  } catch {
    // not the configured root: take dir as the journals folder
  }
  return dir;
}

export async function verifyJournalFile(
  filePath: string,
  consultationId: string,
): Promise<JournalFileReport> {
  const content = await readFile(filePath);
  const keep = durablePrefixLength(content);
  const check = verifyChain(consultationId, splitLines(content.subarray(0, keep)));
  const report: JournalFileReport = {
    consultationId,
    ok: check.ok,
    records: check.records.length,
    ended: check.ended,
    headHash: check.headHash,
    tornTailBytes: content.length - keep,
  };
  if (!check.ok) {
    report.firstBadSeq = check.firstBadSeq;
    report.reason = check.reason;
  }
  return report;
}

/** Verifies every journal of a directory, or only `consultationId`'s. */
export async function verifyJournalDirectory(
  dir: string,
  consultationId?: string,
): Promise<JournalFileReport[]> {
  const journalsDir = await resolveJournalsDir(dir);
  const ids = consultationId
    ? [consultationId]
    : (await readdir(journalsDir))
        .filter((name) => name.endsWith('.jsonl'))
        .map((name) => name.slice(0, -'.jsonl'.length))
        .filter((id) => isConsultationId(id))
        .sort();
  const reports: JournalFileReport[] = [];
  for (const id of ids) reports.push(await verifyJournalFile(path.join(journalsDir, `${id}.jsonl`), id));
  return reports;
}

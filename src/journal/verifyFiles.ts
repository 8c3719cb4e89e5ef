import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { verifyChain } from './chain.js';
import type { JournalKeyring } from './signing.js';
import { isConsultationId } from './consultationId.js';
import { durablePrefixLength, splitLines } from './durableLog.js';

export interface JournalFileReport {
  consultationId: string;
  ok: boolean;
  records: number;
  ended: boolean;
  headHash: string;
  firstBadSeq?: number;
  /** 1-based line where the chain breaks. */
  line?: number;
  reason?: string;
  /** The server found this journal corrupt and moved it aside (`<journal.dir>/corrupt/`). */
  quarantined?: boolean;
  signaturesChecked: boolean;
  /** Highest sequence number covered by a verified checkpoint signature. */
  anchoredSeq: number;
  /** The last record is a verified checkpoint over everything before it. */
  anchored: boolean;
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
  keyring?: JournalKeyring,
): Promise<JournalFileReport> {
  const content = await readFile(filePath);
  const keep = durablePrefixLength(content);
  const check = verifyChain(consultationId, splitLines(content.subarray(0, keep)), keyring);
  const report: JournalFileReport = {
    consultationId,
    ok: check.ok,
    records: check.records.length,
    ended: check.ended,
    headHash: check.headHash,
    signaturesChecked: check.signaturesChecked,
    anchoredSeq: check.anchoredSeq,
    anchored: check.anchored,
    tornTailBytes: content.length - keep,
  };
  if (!check.ok) {
    report.firstBadSeq = check.firstBadSeq;
    report.line = check.line;
    report.reason = check.reason;
  }
  return report;
}

/** The latest file the server moved aside for each consultation under `<journal.dir>/corrupt/`. */
async function quarantinedFiles(journalsDir: string): Promise<Map<string, string>> {
  const corruptDir = path.join(path.dirname(journalsDir), 'corrupt');
  const found = new Map<string, string>();
  let ids: string[];
  try {
    ids = await readdir(corruptDir);
  } catch {
    return found;
  }
  for (const id of ids.filter((name) => isConsultationId(name))) {
    const moved = (await readdir(path.join(corruptDir, id)).catch(() => [] as string[]))
      .filter((name) => name.endsWith('.jsonl'))
      .sort()
      .at(-1);
    if (moved) found.set(id, path.join(corruptDir, id, moved));
  }
  return found;
}

/**
 * Verifies every journal of a directory, or only `consultationId`'s; journals the server moved
 * aside as corrupt are reported too (never as intact).
 */
export async function verifyJournalDirectory(
  dir: string,
  consultationId?: string,
  keyring?: JournalKeyring,
): Promise<JournalFileReport[]> {
  const journalsDir = await resolveJournalsDir(dir);
  const moved = await quarantinedFiles(journalsDir);
  const present = (await readdir(journalsDir))
    .filter((name) => name.endsWith('.jsonl'))
    .map((name) => name.slice(0, -'.jsonl'.length))
    .filter((id) => isConsultationId(id));
  const ids = consultationId ? [consultationId] : [...new Set([...present, ...moved.keys()])].sort();
  const reports: JournalFileReport[] = [];
  for (const id of ids) {
    const quarantined = moved.get(id);
    if (present.includes(id) || !quarantined) {
      reports.push(await verifyJournalFile(path.join(journalsDir, `${id}.jsonl`), id, keyring));
    }
    if (quarantined) {
      const report = await verifyJournalFile(quarantined, id, keyring);
      // Moved aside means the server refused it: never report it as a usable journal.
      reports.push({ ...report, ok: false, quarantined: true, reason: report.reason ?? 'moved aside' });
    }
  }
  return reports;
}

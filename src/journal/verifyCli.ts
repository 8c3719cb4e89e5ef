/**
 * Checks journals on disk: `node dist/src/journal/verifyCli.js <journalDir> [consultationId]`.
 * Prints one line per journal, OK or BROKEN with the line that breaks the chain and why; exits 1 when any
 * journal is broken, 2 on a usage or read error, 0 otherwise. Prints no event data.
 */
import { isConsultationId } from './consultationId.js';
import { verifyJournalDirectory } from './verifyFiles.js';

const USAGE = 'usage: verifyCli <journalDir> [consultationId]';

async function main(argv: readonly string[]): Promise<number> {
  const [dir, consultationId, ...rest] = argv;
  if (!dir || rest.length > 0 || dir === '--help' || dir === '-h') {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  if (consultationId !== undefined && !isConsultationId(consultationId)) {
    process.stderr.write(`invalid consultation id\n${USAGE}\n`);
    return 2;
  }
  let reports;
  try {
    reports = await verifyJournalDirectory(dir, consultationId);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'ERROR';
    process.stderr.write(`cannot read journals (${code})\n`);
    return 2;
  }
  let broken = 0;
  for (const r of reports) {
    const torn =
      r.tornTailBytes > 0 ? ` tornTailBytes=${r.tornTailBytes} (unacknowledged, cut on next open)` : '';
    if (r.ok) {
      process.stdout.write(
        `OK ${r.consultationId} records=${r.records} ended=${r.ended} head=${r.headHash}${torn}\n`,
      );
    } else {
      broken++;
      const where = r.line !== undefined ? ` line=${r.line} firstBadSeq=${r.firstBadSeq}` : '';
      const aside = r.quarantined ? ' quarantined=true' : '';
      process.stdout.write(
        `BROKEN ${r.consultationId}${where} reason="${r.reason}" validRecords=${r.records}${aside}${torn}\n`,
      );
    }
  }
  process.stdout.write(`${reports.length} journals, ${broken} broken\n`);
  return broken > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));

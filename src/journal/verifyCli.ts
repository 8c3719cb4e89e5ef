/**
 * Checks journals on disk: `node dist/src/journal/verifyCli.js [--keys <file>] <journalDir> [consultationId]`.
 * Prints one line per journal: OK, BROKEN (the line that breaks the chain and why) or UNANCHORED
 * (an ended journal whose last records no verified signature covers). `--keys` is the published key
 * set (/.well-known/teleconsult-journal-keys.json) or a list of base64url public keys; without it
 * the signing key found in `<journal.dir>/keys/` is used, which proves nothing against someone who
 * could write that folder, and the CLI says so. Exits 1 when any journal is broken or unanchored,
 * 2 on a usage or read error, 0 otherwise. Prints no event data.
 */
import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isConsultationId } from './consultationId.js';
import { DEFAULT_SIGNING_KEY_FILE, JournalKeyring, JournalSigner, parseKeySet } from './signing.js';
import { resolveJournalsDir, verifyJournalDirectory } from './verifyFiles.js';

const USAGE = 'usage: verifyCli [--keys <key set file>] <journalDir> [consultationId]';

async function keyringFor(
  keysFile: string | undefined,
  dir: string,
): Promise<{ keyring?: JournalKeyring; note: string }> {
  if (keysFile) {
    return { keyring: new JournalKeyring(parseKeySet(await readFile(keysFile, 'utf8'))), note: '' };
  }
  const root = path.dirname(await resolveJournalsDir(dir));
  try {
    const pem = await readFile(path.join(root, DEFAULT_SIGNING_KEY_FILE), 'utf8');
    const signer = new JournalSigner(createPrivateKey(pem));
    return {
      keyring: new JournalKeyring([signer.publicKey]),
      note: `NOTE signatures checked with key ${signer.keyId} found beside the journals; pass --keys with the published key set for an independent check\n`,
    };
  } catch {
    return { note: 'NOTE no key given or found: checkpoint signatures not checked\n' };
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const args = [...argv];
  let keysFile: string | undefined;
  if (args[0] === '--keys') {
    keysFile = args[1];
    args.splice(0, 2);
    if (!keysFile) {
      process.stderr.write(`${USAGE}\n`);
      return 2;
    }
  }
  const [dir, consultationId, ...rest] = args;
  if (!dir || rest.length > 0 || dir === '--help' || dir === '-h') {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  if (consultationId !== undefined && !isConsultationId(consultationId)) {
    process.stderr.write(`invalid consultation id\n${USAGE}\n`);
    return 2;
  }
  let reports;
  let keys;
  try {
    keys = await keyringFor(keysFile, dir);
    reports = await verifyJournalDirectory(dir, consultationId, keys.keyring);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    process.stderr.write(`cannot read journals or keys (${code})\n`);
    return 2;
  }
  process.stdout.write(keys.note);
  let failed = 0;
  for (const r of reports) {
    const torn =
      r.tornTailBytes > 0 ? ` tornTailBytes=${r.tornTailBytes} (unacknowledged, cut on next open)` : '';
    const anchoring = r.signaturesChecked ? ` anchored=${r.anchored} anchoredSeq=${r.anchoredSeq}` : '';
    if (!r.ok) {
      failed++;
      const where = r.line !== undefined ? ` line=${r.line} firstBadSeq=${r.firstBadSeq}` : '';
      const aside = r.quarantined ? ' quarantined=true' : '';
      process.stdout.write(
        `BROKEN ${r.consultationId}${where} reason="${r.reason}" validRecords=${r.records}${aside}${torn}\n`,
      );
    } else if (r.signaturesChecked && r.ended && !r.anchored) {
      // An ended journal is signed last: records after the last signature were added or re-forged.
      failed++;
      process.stdout.write(
        `UNANCHORED ${r.consultationId} records=${r.records} ended=true${anchoring} head=${r.headHash}${torn}\n`,
      );
    } else {
      process.stdout.write(
        `OK ${r.consultationId} records=${r.records} ended=${r.ended}${anchoring} head=${r.headHash}${torn}\n`,
      );
    }
  }
  process.stdout.write(`${reports.length} journals, ${failed} broken or unanchored\n`);
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));

/**
 * Moves file journals into PostgreSQL and verifies each end to end:
 * `node dist/src/journal/migrateCli.js --postgres-url <url> [--keys <key set file>] <journalDir> [consultationId...]`.
 * Prints MIGRATED, ALREADY (same chain already there), or BROKEN / CONFLICT / MISMATCH with the
 * reason; exits 1 if any journal was not migrated and verified, 2 on a usage or connection error.
 * The files are left in place (delete them once the platform has checked the result). Journals
 * moved aside as corrupt are not migrated. Prints no event data.
 */
import { readdir, readFile } from 'node:fs/promises';
import pg from 'pg';
import { isConsultationId } from './consultationId.js';
import { migrateFileJournal } from './migrate.js';
import { PG_SCHEMA, migratePg } from './pgJournalStore.js';
import { JournalKeyring, parseKeySet } from './signing.js';
import { resolveJournalsDir } from './verifyFiles.js';
import { keepClientErrorsHandled } from './pgClientErrors.js';

const USAGE =
  'usage: migrateCli --postgres-url <url> [--keys <key set file>] <journalDir> [consultationId...]';

async function main(argv: readonly string[]): Promise<number> {
  const args = [...argv];
  let url = process.env.SFU_JOURNAL__POSTGRES_URL;
  let keysFile: string | undefined;
  while (args[0]?.startsWith('--')) {
    const [flag, value] = args.splice(0, 2);
    if (flag === '--postgres-url' && value) url = value;
    else if (flag === '--keys' && value) keysFile = value;
    else {
      process.stderr.write(`${USAGE}\n`);
      return 2;
    }
  }
  const [dir, ...ids] = args;
  if (!dir || !url || ids.some((id) => !isConsultationId(id))) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const pool = new pg.Pool({ connectionString: url, max: 2, application_name: 'teleconsult-migrate' });
  pool.on('error', () => undefined);
  keepClientErrorsHandled(pool);
  try {
    const keyring = keysFile ? new JournalKeyring(parseKeySet(await readFile(keysFile, 'utf8'))) : undefined;
    if (!keyring) process.stdout.write('NOTE no --keys: checkpoint signatures not checked\n');
    const journalsDir = await resolveJournalsDir(dir);
    const list =
      ids.length > 0
        ? ids
        : (await readdir(journalsDir))
            .filter((n) => n.endsWith('.jsonl'))
            .map((n) => n.slice(0, -'.jsonl'.length))
            .filter((id) => isConsultationId(id))
            .sort();
    await migratePg(pool, PG_SCHEMA, 'teleconsult-journal-schema');
    let failed = 0;
    for (const id of list) {
      const outcome = await migrateFileJournal(pool, journalsDir, id, keyring);
      if ('reason' in outcome) {
        failed++;
        process.stdout.write(`${outcome.status.toUpperCase()} ${id} reason="${outcome.reason}"\n`);
      } else {
        process.stdout.write(
          `${outcome.status.toUpperCase()} ${id} records=${outcome.records} head=${outcome.headHash}\n`,
        );
      }
    }
    process.stdout.write(`${list.length} journals, ${failed} not migrated\n`);
    return failed > 0 ? 1 : 0;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    process.stderr.write(`migration failed (${code})\n`);
    return 2;
  } finally {
    await pool.end().catch(() => undefined);
  }
}

process.exitCode = await main(process.argv.slice(2));

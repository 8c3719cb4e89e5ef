import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { WebhookOutbox as FileWebhookOutbox } from '../webhooks/outbox.js';
import { PgWebhookOutbox } from '../webhooks/pgOutbox.js';
import type { WebhookOutboxPort } from '../webhooks/port.js';
import { JournalStore as FileJournalStore, type JournalIncident } from './journalStore.js';
import { PgJournalStore } from './pgJournalStore.js';
import { DEFAULT_SIGNING_KEY_FILE, JournalKeyring, loadSigningKey, type SignedHead } from './signing.js';
import type { JournalStorage } from './storage.js';

export interface JournalStores {
  kind: 'files' | 'postgres';
  journal: JournalStorage;
  outbox: WebhookOutboxPort;
  keyring: JournalKeyring;
  /** Closes the outbox, the journal and the database pool, in that order. */
  close(): Promise<void>;
}

/** Which store the configuration asks for: `auto` is PostgreSQL in a cluster, files otherwise. */
export function journalStoreKind(config: Config): 'files' | 'postgres' {
  const wanted = config.journal.store;
  if (wanted === 'files' || wanted === 'postgres') return wanted;
  return config.cluster.enabled && config.journal.postgresUrl ? 'postgres' : 'files';
}

/**
 * Opens the signing key, the journal and the webhook outbox as configured (files under
 * journal.dir, or PostgreSQL at journal.postgresUrl). `onCorrupt` hears of a corrupt journal;
 * `journalHead` is filled in once the journal exists.
 */
export async function openJournalStores(
  config: Config,
  log: Logger,
  metrics: Metrics,
  onCorrupt: (incident: JournalIncident) => void,
): Promise<JournalStores> {
  const logger = log.child({ module: 'journal' });
  const signer = await loadSigningKey({
    pem: config.journal.signingKey,
    file: config.journal.signingKeyFile,
    defaultFile: path.join(config.journal.dir, DEFAULT_SIGNING_KEY_FILE),
    logger,
  });
  const keyring = new JournalKeyring([
    signer.publicKey,
    ...config.journal.previousPublicKeys.map((publicKey) => ({
      keyId: '',
      alg: 'Ed25519' as const,
      publicKey,
    })),
  ]);
  const common = {
    retentionDays: config.journal.retentionDays,
    signer,
    keyring,
    checkpointEvery: config.journal.checkpointEvery,
    logger,
    metrics,
    onCorrupt,
  };
  let journal: JournalStorage | undefined;
  const journalHead = (consultationId: string): SignedHead | undefined => journal?.signedHead(consultationId);
  const webhookOptions = {
    url: config.webhooks.url,
    secret: config.webhooks.secret,
    journalHead,
    logger: log.child({ module: 'webhooks' }),
    metrics,
  };
  const kind = journalStoreKind(config);
  if (config.journal.store === 'auto' && config.cluster.enabled && kind === 'files') {
    logger.warn('cluster without journal.postgresUrl: each node keeps its own journal files');
  }
  if (kind === 'files') {
    journal = new FileJournalStore({ dir: config.journal.dir, ...common });
    const outbox = await FileWebhookOutbox.open({ dir: config.journal.dir, ...webhookOptions });
    const opened = journal;
    return {
      kind,
      journal: opened,
      outbox,
      keyring,
      close: async () => {
        await outbox.close();
        await opened.close();
      },
    };
  }
  if (!config.journal.postgresUrl)
    throw new Error('journal.store is postgres but journal.postgresUrl is null');
  const pool = new pg.Pool({
    connectionString: config.journal.postgresUrl,
    max: config.journal.postgresPoolSize,
    application_name: 'teleconsult-sfu',
  });
  // An idle client whose connection dies must not crash the process.
  pool.on('error', (err) => logger.warn({ err: err.message }, 'journal database connection lost'));
  try {
    const pgJournal = await PgJournalStore.open({ pool, ...common });
    journal = pgJournal;
    const outbox = await PgWebhookOutbox.open({
      pool,
      nodeId: config.cluster.nodeId ?? os.hostname(),
      ...webhookOptions,
    });
    logger.info('journal and webhook outbox in PostgreSQL');
    return {
      kind,
      journal: pgJournal,
      outbox,
      keyring,
      close: async () => {
        await outbox.close();
        await pgJournal.close();
        await pool.end();
      },
    };
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }
}

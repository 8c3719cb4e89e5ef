import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { verifyChain, type JournalRecord } from './chain.js';
import { JOURNAL_EXPORT_FORMAT, type JournalExport } from './exportFormat.js';
import { ConsultationJournal } from './consultationJournal.js';
import { isConsultationId } from './consultationId.js';
import { durablePrefixLength, fsyncDirectory, splitLines } from './durableLog.js';
import { JournalError, isJournalError, type JournalCorruption } from './errors.js';
import { explainInvalidEvent, type JournalEventData, type JournalEventType } from './events.js';
import type { JournalStorage } from './storage.js';
import { JournalKeyring, type JournalSigner, type SignedHead } from './signing.js';

// The export's shape lives apart so that clients (the server package's types) need no store code.
export { JOURNAL_EXPORT_FORMAT, type JournalExport } from './exportFormat.js';

/** What is recorded (next to the moved file, and passed to onCorrupt) when a journal is moved aside. */
export interface JournalIncident {
  consultationId: string;
  detectedAt: string;
  line: number;
  reason: string;
  /** Where the file now is, untouched. */
  movedTo: string;
  bytes: number;
  sha256: string;
}

export interface JournalStoreOptions {
  /** `journal.dir` from the configuration; journals live in `<dir>/journals/<consultationId>.jsonl`. */
  dir: string;
  /** `journal.retentionDays`: sweep() deletes journals whose last record is older than this. */
  retentionDays: number;
  /** Appends waiting for the disk per consultation before JOURNAL_BACKPRESSURE (default 1024). */
  maxPendingPerJournal?: number;
  /** Journals kept open at once before JOURNAL_TOO_MANY_OPEN (default 256). */
  maxOpenJournals?: number;
  /** A journal without appends for this long is closed (default 60 s). */
  idleCloseMs?: number;
  /** Largest serialised record (default 16 KiB). */
  maxRecordBytes?: number;
  logger?: Logger;
  metrics?: Metrics;
  /** Milliseconds since the epoch; tests move time with it. */
  clock?: () => number;
  /** Signs checkpoints; without it the chain is only hash-linked (not anchored). */
  signer?: JournalSigner;
  /** Public keys that verify checkpoints (the signer's and retired ones); defaults to the signer's. */
  keyring?: JournalKeyring;
  /** A checkpoint after this many records (default 64), and after consultation.ended. */
  checkpointEvery?: number;
  /** Called once a corrupt journal has been moved aside (the server records the incident). */
  onCorrupt?: (incident: JournalIncident) => void;
}

interface Entry {
  consultationId: string;
  ready: Promise<ConsultationJournal>;
  journal: ConsultationJournal | null;
  inFlight: number;
  lastUsed: number;
}

const EXTENSION = '.jsonl';
const MAX_REMEMBERED_HEADS = 10_000;

function assertConsultationId(consultationId: unknown): asserts consultationId is string {
  if (!isConsultationId(consultationId)) {
    throw new JournalError('JOURNAL_INVALID_ID', 'a consultation id is 1-128 characters [A-Za-z0-9_.:-]');
  }
}

/**
 * Every consultation's journal under one directory: append, export, verify, retention. The
 * directory belongs to one server process at a time. Open journals are bounded (idle ones close)
 * and so are the appends waiting for the disk per journal.
 */
export class JournalStore implements JournalStorage {
  readonly journalsDir: string;
  private readonly entries = new Map<string, Entry>();
  private readonly maxPending: number;
  private readonly maxOpen: number;
  private readonly idleCloseMs: number;
  private readonly maxRecordBytes: number;
  private readonly clock: () => number;
  private readonly idleTimer: NodeJS.Timeout;
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly keyring: JournalKeyring | undefined;
  /** Latest signed head per consultation written by this process (bounded, oldest dropped). */
  private readonly heads = new Map<string, SignedHead>();
  private closed = false;

  /** Corrupt journals moved aside, untouched: `<dir>/corrupt/<consultationId>/<time>.jsonl`. */
  readonly corruptDir: string;

  constructor(private readonly options: JournalStoreOptions) {
    this.journalsDir = path.join(options.dir, 'journals');
    this.corruptDir = path.join(options.dir, 'corrupt');
    this.maxPending = options.maxPendingPerJournal ?? 1024;
    this.maxOpen = options.maxOpenJournals ?? 256;
    this.idleCloseMs = options.idleCloseMs ?? 60_000;
    this.maxRecordBytes = options.maxRecordBytes ?? 16 * 1024;
    this.clock = options.clock ?? Date.now;
    this.keyring =
      options.keyring ?? (options.signer ? new JournalKeyring([options.signer.publicKey]) : undefined);
    this.idleTimer = setInterval(() => this.closeIdle(), Math.max(250, this.idleCloseMs / 2));
    this.idleTimer.unref();
  }

  /** Journals currently open (file handle held). */
  get openCount(): number {
    return this.entries.size;
  }

  /**
   * Records an event; resolves with the record once it is on disk. Rejects with a JournalError:
   * INVALID_ID, INVALID_EVENT, RECORD_TOO_LARGE, BACKPRESSURE, TOO_MANY_OPEN, ENDED (nothing is
   * recorded after consultation.ended), CORRUPT (the existing chain does not verify), IO, CLOSED.
   */
  async append<T extends JournalEventType>(
    consultationId: string,
    type: T,
    data: JournalEventData<T>,
  ): Promise<JournalRecord<T>> {
    let entry: Entry;
    let normalised: JournalEventData<T>;
    try {
      if (this.closed) throw new JournalError('JOURNAL_CLOSED', 'the journal store is closed');
      assertConsultationId(consultationId);
      if (type === 'journal.checkpoint') {
        throw new JournalError('JOURNAL_INVALID_EVENT', 'checkpoints are written by the journal itself');
      }
      const problem = explainInvalidEvent(type, data);
      if (problem) throw new JournalError('JOURNAL_INVALID_EVENT', problem);
      // What is hashed is exactly what will be read back from the file.
      normalised = JSON.parse(JSON.stringify(data)) as JournalEventData<T>;
      entry = this.entryFor(consultationId);
      if (entry.inFlight >= this.maxPending) {
        throw new JournalError('JOURNAL_BACKPRESSURE', `too many appends pending for ${consultationId}`);
      }
    } catch (error) {
      this.countFailure(error);
      throw error;
    }
    entry.inFlight++;
    this.options.metrics?.journalPendingAppends.inc();
    try {
      // Every append awaits the same promise, so continuations (and sequence numbers) follow call order.
      const journal = await entry.ready;
      const record = await journal.append(type, normalised, new Date(this.clock()).toISOString());
      this.options.metrics?.journalAppends.inc({ type });
      if (type === 'consultation.ended') this.release(entry);
      return record;
    } catch (error) {
      this.countFailure(error);
      if (entry.journal?.failed) this.release(entry);
      throw error;
    } finally {
      entry.inFlight--;
      entry.lastUsed = this.clock();
      this.options.metrics?.journalPendingAppends.dec();
    }
  }

  /** The acknowledged records of a consultation with their verification. JOURNAL_NOT_FOUND if none. */
  async export(consultationId: string): Promise<JournalExport> {
    assertConsultationId(consultationId);
    let lines: string[];
    let quarantined = false;
    try {
      lines = await this.readLines(this.fileOf(consultationId), consultationId);
    } catch (error) {
      const moved = isJournalError(error, 'JOURNAL_NOT_FOUND')
        ? await this.quarantinedFile(consultationId)
        : null;
      if (!moved) throw error;
      lines = await this.readLines(moved, consultationId);
      quarantined = true;
    }
    // An open journal may have bytes on disk that are not yet acknowledged: leave them out.
    const acked = quarantined ? undefined : this.entries.get(consultationId)?.journal?.ackedSeq;
    const check = verifyChain(
      consultationId,
      acked === undefined ? lines : lines.slice(0, acked),
      this.keyring,
    );
    const anchoring = {
      signaturesChecked: check.signaturesChecked,
      anchoredSeq: check.anchoredSeq,
      anchored: check.anchored,
    };
    const verification: JournalExport['verification'] = check.ok
      ? { ok: true, ...anchoring }
      : { ok: false, firstBadSeq: check.firstBadSeq, line: check.line, reason: check.reason, ...anchoring };
    return {
      format: JOURNAL_EXPORT_FORMAT,
      consultationId,
      exportedAt: new Date(this.clock()).toISOString(),
      records: check.records,
      headHash: check.headHash,
      ended: check.ended,
      verification,
      ...(check.signedHead ? { signedHead: check.signedHead } : {}),
      ...(quarantined ? { quarantined } : {}),
    };
  }

  /** The latest checkpoint this process signed for a consultation, if it remembers one. */
  signedHead(consultationId: string): SignedHead | undefined {
    return this.heads.get(consultationId);
  }

  /** Walks the hash chain of one consultation's journal on disk. */
  async verify(consultationId: string): Promise<JournalExport['verification'] & { records: number }> {
    const exported = await this.export(consultationId);
    return { ...exported.verification, records: exported.records.length };
  }

  /** Consultation ids that have a journal on disk. */
  async list(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.journalsDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return names
      .filter((n) => n.endsWith(EXTENSION))
      .map((n) => n.slice(0, -EXTENSION.length))
      .filter((id) => isConsultationId(id))
      .sort();
  }

  /**
   * Consultations whose consultation.ended record is at or after `sinceMs`, read from each file's
   * tail: after a restart, the caller re-enqueues any consultation.ended webhook that a crash
   * between the append and the enqueue left out (see reconcileEndedWebhooks).
   */
  async endedSince(
    sinceMs: number,
  ): Promise<Array<{ consultationId: string; endedAt: string; reason: string }>> {
    const ended: Array<{ consultationId: string; endedAt: string; reason: string }> = [];
    for (const consultationId of await this.list()) {
      try {
        const { record } = await this.readLastRecord(this.fileOf(consultationId));
        if (record?.type !== 'consultation.ended' || typeof record.ts !== 'string') continue;
        if (!(Date.parse(record.ts) >= sinceMs)) continue;
        const reason = (record.data as { reason?: unknown } | undefined)?.reason;
        ended.push({
          consultationId,
          endedAt: record.ts,
          reason: typeof reason === 'string' ? reason : 'unknown',
        });
      } catch (error) {
        this.options.logger?.warn({ consultationId, err: error }, 'journal tail unreadable');
      }
    }
    return ended;
  }

  /**
   * Retention: deletes each closed journal whose last record (consultation.ended, or the last
   * activity of a consultation that never recorded its end) is older than retentionDays.
   */
  async sweep(): Promise<{ deleted: string[]; kept: number }> {
    const cutoff = this.clock() - this.options.retentionDays * 86_400_000;
    const deleted: string[] = [];
    let kept = 0;
    for (const consultationId of await this.list()) {
      if (this.entries.has(consultationId)) {
        kept++;
        continue;
      }
      const file = this.fileOf(consultationId);
      try {
        const lastAt = await this.lastActivity(file);
        if (lastAt === null || lastAt >= cutoff) {
          kept++;
          continue;
        }
        await unlink(file);
        deleted.push(consultationId);
      } catch (error) {
        kept++;
        this.options.logger?.warn({ consultationId, err: error }, 'journal retention check failed');
      }
    }
    if (deleted.length > 0) {
      await fsyncDirectory(this.journalsDir);
      this.options.metrics?.journalDeleted.inc(deleted.length);
      this.options.logger?.info({ deleted: deleted.length, kept }, 'journal retention sweep');
    }
    return { deleted, kept };
  }

  /** Runs sweep() every `intervalMs` (default hourly) until close(). */
  startRetentionSweep(intervalMs = 3_600_000): void {
    if (this.sweepTimer || this.closed) return;
    this.sweepTimer = setInterval(() => {
      this.sweep().catch((error: unknown) =>
        this.options.logger?.error({ err: error }, 'journal sweep failed'),
      );
    }, intervalMs);
    this.sweepTimer.unref();
  }

  /** Waits for pending appends, then closes every journal. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.idleTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    const entries = [...this.entries.values()];
    this.entries.clear();
    this.options.metrics?.journalOpen.set(0);
    await Promise.all(
      entries.map(async (entry) => {
        const journal = await entry.ready.catch(() => null);
        await journal?.close();
      }),
    );
  }

  private fileOf(consultationId: string): string {
    return path.join(this.journalsDir, `${consultationId}${EXTENSION}`);
  }

  private entryFor(consultationId: string): Entry {
    const existing = this.entries.get(consultationId);
    if (existing) return existing;
    if (this.entries.size >= this.maxOpen && !this.evictLeastRecentlyUsed()) {
      throw new JournalError('JOURNAL_TOO_MANY_OPEN', `${this.maxOpen} journals are busy`);
    }
    const entry: Entry = {
      consultationId,
      journal: null,
      inFlight: 0,
      lastUsed: this.clock(),
      ready: this.openJournal(consultationId).then(
        ({ journal, truncatedBytes }) => {
          entry.journal = journal;
          if (truncatedBytes > 0) {
            this.options.logger?.warn(
              { consultationId, truncatedBytes },
              'journal had a torn tail from a crash (bytes after its last newline); removed',
            );
          }
          return journal;
        },
        (error: unknown) => {
          if (this.entries.get(consultationId) === entry) this.entries.delete(consultationId);
          this.options.metrics?.journalOpen.set(this.entries.size);
          throw error;
        },
      ),
    };
    this.entries.set(consultationId, entry);
    this.options.metrics?.journalOpen.set(this.entries.size);
    return entry;
  }

  /**
   * Opens a journal for appends. One moved aside as corrupt stays refused (its id is never started
   * again); one found corrupt now is moved aside untouched and reported before the refusal.
   */
  private async openJournal(
    consultationId: string,
  ): Promise<{ journal: ConsultationJournal; truncatedBytes: number }> {
    if (await this.quarantinedFile(consultationId)) {
      throw new JournalError(
        'JOURNAL_CORRUPT',
        `the journal of ${consultationId} was moved aside as corrupt`,
      );
    }
    try {
      return await ConsultationJournal.open(this.fileOf(consultationId), consultationId, {
        maxPending: this.maxPending,
        maxRecordBytes: this.maxRecordBytes,
        signer: this.options.signer,
        keyring: this.keyring,
        checkpointEvery: this.options.checkpointEvery,
        onCheckpoint: (head) => this.rememberHead(head),
        onBatch: (batch) => {
          this.options.metrics?.journalFsyncBatches.inc();
          this.options.metrics?.journalFsyncSeconds.observe(batch.durationMs / 1000);
        },
      });
    } catch (error) {
      if (isJournalError(error, 'JOURNAL_CORRUPT') && error.corruption) {
        await this.quarantine(consultationId, error.corruption);
      }
      throw error;
    }
  }

  /**
   * Moves a corrupt journal aside by rename (its bytes untouched), writes the incident beside it,
   * counts it and logs it (the consultation id, line and reason only; never record content).
   */
  private async quarantine(consultationId: string, corruption: JournalCorruption): Promise<void> {
    const detectedAt = new Date(this.clock()).toISOString();
    const folder = path.join(this.corruptDir, consultationId);
    const stamp = detectedAt.replace(/[:.]/g, '-');
    const movedTo = path.join(folder, `${stamp}${EXTENSION}`);
    const source = this.fileOf(consultationId);
    try {
      const content = await readFile(source);
      await mkdir(folder, { recursive: true });
      await rename(source, movedTo);
      await fsyncDirectory(folder);
      await fsyncDirectory(this.journalsDir);
      const incident: JournalIncident = {
        consultationId,
        detectedAt,
        line: corruption.line,
        reason: corruption.reason,
        movedTo,
        bytes: content.length,
        sha256: createHash('sha256').update(content).digest('hex'),
      };
      await writeFile(path.join(folder, `${stamp}.incident.json`), `${JSON.stringify(incident)}\n`, {
        flag: 'wx',
      });
      await fsyncDirectory(folder);
      this.options.metrics?.journalCorrupt.inc();
      this.options.logger?.error(
        { consultationId, line: corruption.line, reason: corruption.reason },
        'journal corrupt: moved aside untouched, appends refused',
      );
      try {
        this.options.onCorrupt?.(incident);
      } catch (err) {
        this.options.logger?.error({ consultationId, err }, 'journal corruption handler failed');
      }
    } catch (cause) {
      // Left in place, it is still refused at every open: nothing is lost by failing here.
      this.options.logger?.error(
        { consultationId, line: corruption.line, reason: corruption.reason, err: cause },
        'journal corrupt: appends refused; moving it aside failed',
      );
      this.options.metrics?.journalCorrupt.inc();
    }
  }

  private rememberHead(head: SignedHead): void {
    this.heads.delete(head.consultationId);
    this.heads.set(head.consultationId, head);
    if (this.heads.size > MAX_REMEMBERED_HEADS) {
      const oldest = this.heads.keys().next().value;
      if (oldest !== undefined) this.heads.delete(oldest);
    }
  }

  /** The most recent file moved aside for this consultation, or null. */
  private async quarantinedFile(consultationId: string): Promise<string | null> {
    const folder = path.join(this.corruptDir, consultationId);
    try {
      if (!(await stat(folder)).isDirectory()) return null;
      const moved = (await readdir(folder)).filter((n) => n.endsWith(EXTENSION)).sort();
      const last = moved.at(-1);
      return last ? path.join(folder, last) : null;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  /** Forgets an entry and closes its journal once its writes are done. */
  private release(entry: Entry): void {
    if (this.entries.get(entry.consultationId) !== entry) return;
    this.entries.delete(entry.consultationId);
    this.options.metrics?.journalOpen.set(this.entries.size);
    void entry.ready.then(
      (journal) => journal.close(),
      () => undefined,
    );
  }

  private evictLeastRecentlyUsed(): boolean {
    let victim: Entry | null = null;
    for (const entry of this.entries.values()) {
      if (entry.inFlight > 0 || !entry.journal?.idle) continue;
      if (!victim || entry.lastUsed < victim.lastUsed) victim = entry;
    }
    if (!victim) return false;
    this.release(victim);
    return true;
  }

  private closeIdle(): void {
    const before = this.clock() - this.idleCloseMs;
    for (const entry of [...this.entries.values()]) {
      if (entry.inFlight === 0 && entry.journal?.idle && entry.lastUsed <= before) this.release(entry);
    }
  }

  private async readLines(file: string, consultationId: string): Promise<string[]> {
    let content: Buffer;
    try {
      content = await readFile(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new JournalError('JOURNAL_NOT_FOUND', `no journal for ${consultationId}`);
      }
      throw new JournalError('JOURNAL_IO', `cannot read the journal of ${consultationId}`, { cause: error });
    }
    return splitLines(content.subarray(0, durablePrefixLength(content)));
  }

  /** Time of the last complete record, from the file's tail; the file's mtime when it has none. */
  private async lastActivity(file: string): Promise<number | null> {
    const tail = await this.readLastRecord(file);
    if (tail.unreadable) return null;
    if (!tail.record) return tail.mtimeMs;
    const at = typeof tail.record.ts === 'string' ? Date.parse(tail.record.ts) : NaN;
    return Number.isNaN(at) ? null : at;
  }

  /** The last complete record of a file, read from its tail only (records are at most maxRecordBytes). */
  private async readLastRecord(file: string): Promise<{
    record: { ts?: unknown; type?: unknown; data?: unknown } | null;
    mtimeMs: number;
    unreadable: boolean;
  }> {
    const handle = await open(file, 'r');
    try {
      const { size, mtimeMs } = await handle.stat();
      const length = Math.min(size, 2 * this.maxRecordBytes + 2);
      const tail = Buffer.alloc(length);
      await handle.read(tail, 0, length, size - length);
      const lines = splitLines(tail.subarray(0, durablePrefixLength(tail)));
      const last = lines.at(-1);
      if (last === undefined || (lines.length === 1 && length < size)) {
        return { record: null, mtimeMs, unreadable: !(size === 0 || length === size) };
      }
      try {
        const record = JSON.parse(last) as unknown;
        if (typeof record !== 'object' || record === null) return { record: null, mtimeMs, unreadable: true };
        return { record, mtimeMs, unreadable: false };
      } catch {
        return { record: null, mtimeMs, unreadable: true };
      }
    } finally {
      await handle.close();
    }
  }

  private countFailure(error: unknown): void {
    const code = isJournalError(error) ? error.code : 'UNKNOWN';
    this.options.metrics?.journalAppendFailures.inc({ code });
  }
}

import { buildRecord, genesisHash, verifyChain, type JournalRecord } from './chain.js';
import { DurableLog, DurableLogError } from './durableLog.js';
import { JournalError } from './errors.js';
import type { JournalEventData, JournalEventType } from './events.js';
import type { JournalKeyring, JournalSigner, SignedHead } from './signing.js';

export interface ConsultationJournalOptions {
  maxPending: number;
  maxRecordBytes: number;
  onBatch?: (batch: { records: number; bytes: number; durationMs: number }) => void;
  /** Signs a checkpoint after every `checkpointEvery` records and after consultation.ended. */
  signer?: JournalSigner;
  checkpointEvery?: number;
  /** Checks the checkpoints found on open: a chain re-forged without the key is refused. */
  keyring?: JournalKeyring;
  /** Called once a checkpoint is on disk. */
  onCheckpoint?: (head: SignedHead) => void;
}

/**
 * The open journal of one consultation: the tail of its hash chain and its durable log. Sequence
 * numbers and hashes are assigned synchronously in call order, so concurrent appends chain in the
 * order they were made; the disk write is shared with them by the log's group commit.
 */
export class ConsultationJournal {
  private lastSeq: number;
  private headHash: string;
  private endedFlag: boolean;
  private acked: number;
  /** Records appended since the last checkpoint (or since the start). */
  private sinceCheckpoint: number;

  private constructor(
    readonly consultationId: string,
    private readonly log: DurableLog,
    records: readonly JournalRecord[],
    private readonly options: ConsultationJournalOptions,
  ) {
    const last = records.at(-1);
    this.lastSeq = last?.seq ?? 0;
    this.headHash = last?.hash ?? genesisHash(consultationId);
    this.endedFlag = last?.type === 'consultation.ended';
    this.acked = this.lastSeq;
    const lastCheckpoint = records.findLastIndex((r) => r.type === 'journal.checkpoint');
    this.sinceCheckpoint = records.length - (lastCheckpoint + 1);
  }

  /**
   * Opens (or creates) the file and refuses a chain that does not verify (JOURNAL_CORRUPT, the file
   * untouched); only then is a torn tail (bytes after the last newline) cut.
   */
  static async open(
    filePath: string,
    consultationId: string,
    options: ConsultationJournalOptions,
  ): Promise<{ journal: ConsultationJournal; truncatedBytes: number }> {
    let records: JournalRecord[] = [];
    let opened;
    try {
      opened = await DurableLog.open(filePath, {
        // Room for the checkpoint each append may bring along.
        maxPending: options.maxPending * 2,
        onBatch: options.onBatch,
        // Verified before the torn tail is cut: a corrupt journal is left exactly as found.
        accept: (lines) => {
          const check = verifyChain(consultationId, lines, options.keyring);
          if (!check.ok) {
            const corruption = { line: check.line ?? 0, reason: check.reason ?? 'does not verify' };
            throw new JournalError(
              'JOURNAL_CORRUPT',
              `the journal of ${consultationId} breaks at line ${corruption.line}: ${corruption.reason}`,
              { corruption },
            );
          }
          records = check.records;
        },
      });
    } catch (cause) {
      if (cause instanceof JournalError) throw cause;
      throw new JournalError('JOURNAL_IO', `cannot open the journal of ${consultationId}`, { cause });
    }
    return {
      journal: new ConsultationJournal(consultationId, opened.log, records, options),
      truncatedBytes: opened.truncatedBytes,
    };
  }

  /** Highest sequence number known to be on disk. */
  get ackedSeq(): number {
    return this.acked;
  }

  get ended(): boolean {
    return this.endedFlag;
  }

  get pending(): number {
    return this.log.pending;
  }

  get idle(): boolean {
    return this.log.idle;
  }

  get failed(): boolean {
    return this.log.failed;
  }

  /** `data` must already be validated and JSON-normalised by the caller. */
  append<T extends JournalEventType>(
    type: T,
    data: JournalEventData<T>,
    ts: string,
  ): Promise<JournalRecord<T>> {
    // A consultation id is used once: its journal is never started again, ended or not.
    if (type === 'consultation.created' && this.lastSeq > 0) {
      return Promise.reject(
        new JournalError('JOURNAL_EXISTS', `the consultation ${this.consultationId} already has a journal`),
      );
    }
    if (this.endedFlag) {
      return Promise.reject(
        new JournalError('JOURNAL_ENDED', `the consultation ${this.consultationId} has ended`),
      );
    }
    if (this.log.failed) {
      return Promise.reject(new JournalError('JOURNAL_IO', `the journal of ${this.consultationId} failed`));
    }
    if (this.log.pending >= this.options.maxPending) {
      return Promise.reject(
        new JournalError('JOURNAL_BACKPRESSURE', `too many appends pending for ${this.consultationId}`),
      );
    }
    const record = buildRecord(this.lastSeq + 1, ts, type, data, this.headHash);
    const line = JSON.stringify(record);
    if (Buffer.byteLength(line, 'utf8') > this.options.maxRecordBytes) {
      return Promise.reject(
        new JournalError(
          'JOURNAL_RECORD_TOO_LARGE',
          `a ${type} record exceeds ${this.options.maxRecordBytes} bytes`,
        ),
      );
    }
    this.lastSeq = record.seq;
    this.headHash = record.hash;
    this.sinceCheckpoint++;
    const every = this.options.checkpointEvery ?? 64;
    const signer = this.options.signer;
    if (type === 'consultation.ended') {
      this.endedFlag = true;
      // The end and the checkpoint that signs it reach the disk together, so that an acknowledged
      // end is always anchored, even across a crash.
      if (signer) {
        const checkpoint = this.checkpoint(signer, ts);
        return this.write(record, [line, checkpoint.line], checkpoint);
      }
    } else if (signer && this.sinceCheckpoint >= every) {
      // Queued right behind the record: the same group commit usually carries both.
      const written = this.write(record, [line]);
      const checkpoint = this.checkpoint(signer, ts);
      this.write(checkpoint.record, [checkpoint.line], checkpoint).catch(() => undefined);
      return written;
    }
    return this.write(record, [line]);
  }

  /** Builds the signed checkpoint over the current head and makes it the head; the caller writes it. */
  private checkpoint(
    signer: JournalSigner,
    ts: string,
  ): { record: JournalRecord<'journal.checkpoint'>; line: string; head: SignedHead } {
    const signedSeq = this.lastSeq;
    const signedHash = this.headHash;
    const data: JournalEventData<'journal.checkpoint'> = {
      signedSeq,
      signedHash,
      keyId: signer.keyId,
      signature: signer.sign(this.consultationId, signedSeq, signedHash),
    };
    const record = buildRecord(signedSeq + 1, ts, 'journal.checkpoint', data, signedHash);
    this.lastSeq = record.seq;
    this.headHash = record.hash;
    this.sinceCheckpoint = 0;
    const head: SignedHead = {
      consultationId: this.consultationId,
      seq: signedSeq,
      hash: signedHash,
      keyId: signer.keyId,
      signature: data.signature,
    };
    return { record, line: JSON.stringify(record), head };
  }

  /** Writes `lines` (the record's, then a checkpoint's) as one unit; `checkpoint` is announced once on disk. */
  private write<T extends JournalEventType>(
    record: JournalRecord<T>,
    lines: readonly string[],
    checkpoint?: { record: JournalRecord<'journal.checkpoint'>; head: SignedHead },
  ): Promise<JournalRecord<T>> {
    return this.log.appendLines(lines).then(
      () => {
        const last = checkpoint?.record.seq ?? record.seq;
        if (last > this.acked) this.acked = last;
        if (checkpoint) this.options.onCheckpoint?.(checkpoint.head);
        return record;
      },
      (cause: unknown) => {
        const code =
          cause instanceof DurableLogError && cause.code === 'CLOSED' ? 'JOURNAL_CLOSED' : 'JOURNAL_IO';
        throw new JournalError(code, `appending to the journal of ${this.consultationId} failed`, { cause });
      },
    );
  }

  close(): Promise<void> {
    return this.log.close();
  }
}

import { mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

/**
 * An append-only file of JSON lines whose appends resolve only once their bytes are on disk.
 *
 * Group commit: appends that arrive while a write+fdatasync is in flight wait in a bounded queue
 * and go to disk together in the next single write+fdatasync, so a burst costs a few syncs, not
 * one per record. Crash safety: a record is acknowledged after the fdatasync that covers it, and
 * every record is one line written with its '\n'; bytes after the last '\n' (a write torn by a
 * crash, never acknowledged) are cut off when the file is opened again, once the caller has accepted
 * the complete lines. Shared by the journal and the webhook outbox.
 */

export type DurableLogErrorCode = 'BACKPRESSURE' | 'CLOSED' | 'IO';

export class DurableLogError extends Error {
  override readonly name = 'DurableLogError';

  constructor(
    readonly code: DurableLogErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface DurableLogOptions {
  /** Appends accepted but not yet on disk; one more is refused with BACKPRESSURE. */
  maxPending: number;
  /** Upper bound of one write (the batch closes at the first record that would cross it). */
  maxBatchBytes?: number;
  /** Called after each write+fdatasync, for metrics. */
  onBatch?: (batch: { records: number; bytes: number; durationMs: number }) => void;
  /**
   * Checks the complete lines found on open before anything is written: when it throws, the file
   * is closed untouched (the torn tail not cut either) and open() rejects with that error.
   */
  accept?: (lines: string[]) => void;
}

export interface OpenedLog {
  log: DurableLog;
  /** The complete lines found in the file, without their '\n'. */
  lines: string[];
  /** Bytes of a torn tail removed on open (0 after a clean shutdown). */
  truncatedBytes: number;
  created: boolean;
}

interface PendingAppend {
  bytes: Buffer;
  resolve: () => void;
  reject: (error: Error) => void;
}

interface PendingRewrite {
  snapshot: () => readonly string[];
  resolve: () => void;
  reject: (error: Error) => void;
}

const NEWLINE = 0x0a;

/** Makes a created, renamed or deleted directory entry durable (the file's own fsync does not). */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Where the complete lines of a file end: after its last '\n'. Only the bytes after it can be a
 * write torn by a crash (every record is written with its '\n' and acknowledged after the
 * fdatasync that covers it). A complete line that does not parse is never "torn": it is corruption,
 * for the reader of the lines to refuse, and nothing here removes it.
 */
export function durablePrefixLength(content: Buffer): number {
  return content.lastIndexOf(NEWLINE) + 1;
}

export function splitLines(content: Buffer): string[] {
  if (content.length === 0) return [];
  const lines = content.toString('utf8').split('\n');
  lines.pop(); // the empty string after the final '\n'
  return lines;
}

export class DurableLog {
  private queue: PendingAppend[] = [];
  private rewrites: PendingRewrite[] = [];
  private flushing: Promise<void> | null = null;
  private failure: DurableLogError | null = null;
  private closed = false;
  private readonly maxBatchBytes: number;

  private constructor(
    readonly filePath: string,
    private handle: FileHandle,
    private size: number,
    private readonly options: DurableLogOptions,
  ) {
    this.maxBatchBytes = options.maxBatchBytes ?? 1024 * 1024;
  }

  static async open(filePath: string, options: DurableLogOptions): Promise<OpenedLog> {
    const dir = path.dirname(filePath);
    await mkdir(dir, { recursive: true });
    let created = true;
    let handle: FileHandle;
    try {
      handle = await open(filePath, 'ax+');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      created = false;
      handle = await open(filePath, 'a+');
    }
    try {
      const content = created ? Buffer.alloc(0) : await handle.readFile();
      const keep = durablePrefixLength(content);
      const lines = splitLines(content.subarray(0, keep));
      options.accept?.(lines);
      if (keep < content.length) {
        await handle.truncate(keep);
        await handle.datasync();
      }
      if (created) await fsyncDirectory(dir);
      const log = new DurableLog(filePath, handle, keep, options);
      return {
        log,
        lines,
        truncatedBytes: content.length - keep,
        created,
      };
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  /** Appends accepted and not yet acknowledged. */
  get pending(): number {
    return this.queue.length;
  }

  /** True when nothing is queued, being written, or being rewritten. */
  get idle(): boolean {
    return this.queue.length === 0 && this.rewrites.length === 0 && this.flushing === null;
  }

  get sizeBytes(): number {
    return this.size;
  }

  get failed(): boolean {
    return this.failure !== null;
  }

  /** Resolves once `line` (which must not contain '\n') and every earlier append are on disk. */
  append(line: string): Promise<void> {
    return this.appendLines([line]);
  }

  /**
   * Appends several lines as one unit: they go to the disk in the same write and the same
   * fdatasync, so a crash keeps all of them or none (a record and the checkpoint that signs it).
   */
  appendLines(lines: readonly string[]): Promise<void> {
    if (this.closed) return Promise.reject(new DurableLogError('CLOSED', 'the log is closed'));
    if (this.failure) return Promise.reject(this.failure);
    if (this.queue.length >= this.options.maxPending) {
      return Promise.reject(new DurableLogError('BACKPRESSURE', 'too many appends are waiting for the disk'));
    }
    if (lines.some((line) => line.includes('\n')))
      return Promise.reject(new TypeError('a log line cannot contain a newline'));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({
        bytes: Buffer.from(lines.map((line) => `${line}\n`).join(''), 'utf8'),
        resolve,
        reject,
      });
      this.kick();
    });
  }

  /**
   * Replaces the file by the lines `snapshot` returns, atomically (temporary file, fdatasync,
   * rename, directory fsync). `snapshot` runs between two batches, when every earlier batch is on
   * disk; appends queued meanwhile go to the new file afterwards.
   */
  rewrite(snapshot: () => readonly string[]): Promise<void> {
    if (this.closed) return Promise.reject(new DurableLogError('CLOSED', 'the log is closed'));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      this.rewrites.push({ snapshot, resolve, reject });
      this.kick();
    });
  }

  /** Waits for queued appends to reach the disk, then closes the file. Idempotent. */
  async close(): Promise<void> {
    const first = !this.closed;
    this.closed = true;
    while (this.flushing) await this.flushing;
    if (first) await this.handle.close().catch(() => undefined);
  }

  private kick(): void {
    if (this.flushing) return;
    this.flushing = this.drain().finally(() => {
      this.flushing = null;
      // Work queued by the last callbacks after the loop looked.
      if (!this.failure && (this.queue.length > 0 || this.rewrites.length > 0)) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (!this.failure && (this.queue.length > 0 || this.rewrites.length > 0)) {
      const rewrite = this.rewrites.shift();
      if (rewrite) {
        await this.runRewrite(rewrite);
        continue;
      }
      await this.writeBatch();
    }
  }

  private async writeBatch(): Promise<void> {
    let count = 0;
    let bytes = 0;
    while (count < this.queue.length) {
      const next = (this.queue[count] as PendingAppend).bytes.length;
      if (count > 0 && bytes + next > this.maxBatchBytes) break;
      bytes += next;
      count++;
    }
    const batch = this.queue.splice(0, count);
    const buffer = Buffer.concat(
      batch.map((p) => p.bytes),
      bytes,
    );
    const started = performance.now();
    const sizeBefore = this.size;
    try {
      let offset = 0;
      while (offset < buffer.length) {
        // The file is opened O_APPEND: each write lands at the current end.
        const { bytesWritten } = await this.handle.write(buffer, offset, buffer.length - offset);
        offset += bytesWritten;
      }
      await this.handle.datasync();
      this.size += buffer.length;
    } catch (cause) {
      this.fail(cause, batch);
      // Best effort: do not leave half a batch that nobody was told about.
      await this.handle.truncate(sizeBefore).catch(() => undefined);
      return;
    }
    this.options.onBatch?.({ records: batch.length, bytes, durationMs: performance.now() - started });
    for (const p of batch) p.resolve();
  }

  private async runRewrite(request: PendingRewrite): Promise<void> {
    const tmpPath = `${this.filePath}.tmp`;
    let renamed = false;
    try {
      const lines = request.snapshot();
      const content = Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8');
      const tmp = await open(tmpPath, 'w');
      try {
        await tmp.write(content, 0, content.length);
        await tmp.datasync();
      } finally {
        await tmp.close();
      }
      await rename(tmpPath, this.filePath);
      renamed = true;
      await fsyncDirectory(path.dirname(this.filePath));
      const fresh = await open(this.filePath, 'a+');
      await this.handle.close().catch(() => undefined);
      this.handle = fresh;
      this.size = content.length;
      request.resolve();
    } catch (cause) {
      if (renamed) {
        // The handle points at the replaced file: appending there would be lost.
        this.fail(cause, []);
        request.reject(this.failure as DurableLogError);
      } else {
        await unlink(tmpPath).catch(() => undefined);
        request.reject(new DurableLogError('IO', 'rewriting the log failed', { cause }));
      }
    }
  }

  private fail(cause: unknown, batch: PendingAppend[]): void {
    this.failure = new DurableLogError('IO', 'writing the log failed', { cause });
    for (const p of [...batch, ...this.queue.splice(0)]) p.reject(this.failure);
    for (const r of this.rewrites.splice(0)) r.reject(this.failure);
  }
}

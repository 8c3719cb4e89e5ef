import { canonicalJson, sha256Hex } from './canonical.js';
import type { JournalKeyring, SignedHead } from './signing.js';
import {
  explainInvalidEvent,
  isJournalEventType,
  type JournalEventData,
  type JournalEventType,
} from './events.js';

/** One line of a journal file: an event and its place in the hash chain. */
export interface JournalRecord<T extends JournalEventType = JournalEventType> {
  seq: number;
  ts: string;
  type: T;
  data: JournalEventData<T>;
  prevHash: string;
  hash: string;
}

export const HASH_PATTERN = /^[0-9a-f]{64}$/;

/** The members of a record, all required; any other top-level member makes the line corrupt. */
const RECORD_MEMBERS: ReadonlySet<string> = new Set(['seq', 'ts', 'type', 'data', 'prevHash', 'hash']);

/**
 * The prevHash of a consultation's first record. Derived from the consultation id, so a journal
 * renamed or copied under another consultation's name fails verification.
 */
export function genesisHash(consultationId: string): string {
  return sha256Hex(`teleconsult-journal/1:${consultationId}`);
}

/**
 * SHA-256 over the canonical serialisation of every member of the record but `hash` itself. The
 * parser admits no member beyond (seq, ts, type, data, prevHash, hash), so nothing readable in a
 * line escapes the hash.
 */
export function recordHash(fields: Omit<JournalRecord, 'hash'> & { hash?: string }): string {
  const hashed: Record<string, unknown> = { ...fields };
  delete hashed.hash;
  return sha256Hex(canonicalJson(hashed));
}

export function buildRecord<T extends JournalEventType>(
  seq: number,
  ts: string,
  type: T,
  data: JournalEventData<T>,
  prevHash: string,
): JournalRecord<T> {
  const fields = { seq, ts, type, data, prevHash };
  return { ...fields, hash: recordHash(fields) };
}

export interface ChainVerification {
  ok: boolean;
  /** Records that verified, in file order (all of them when ok). */
  records: JournalRecord[];
  /** Sequence number expected at the first position where the chain breaks. */
  firstBadSeq?: number;
  /** 1-based line of the file where the chain breaks (the same position as firstBadSeq). */
  line?: number;
  reason?: string;
  /** True when the last record is consultation.ended (or its final checkpoint). */
  ended: boolean;
  headHash: string;
  /** Whether checkpoint signatures were checked (a keyring was given). */
  signaturesChecked: boolean;
  /** Highest sequence number covered by a checkpoint whose signature verified (0: none). */
  anchoredSeq: number;
  /** True when every record but the final checkpoint itself is covered by a verified signature. */
  anchored: boolean;
  /** The last verified checkpoint, as webhooks carry it. */
  signedHead?: SignedHead;
}

/** A member name from an untrusted line, reduced to something safe to print. */
function printable(name: string): string {
  return JSON.stringify(name.replace(/[^A-Za-z0-9_.-]/g, '?').slice(0, 32));
}

/**
 * Parses one line strictly: exactly the six members, typed, an event that matches its schema,
 * and a line that is byte for byte the JSON serialisation of what it parsed to (so no duplicate
 * member, whitespace or escape can carry anything the hash does not cover). Returns the reason
 * when the line is not a record.
 */
export function parseRecord(line: string): JournalRecord | string {
  if (line.includes('\u0000')) return 'line contains NUL bytes';
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return 'line is not JSON';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'line is not an object';
  const r = value as Record<string, unknown>;
  for (const key of Object.keys(r)) {
    if (!RECORD_MEMBERS.has(key)) return `unknown member ${printable(key)}`;
  }
  if (!Number.isSafeInteger(r.seq)) return 'seq is not an integer';
  if (typeof r.ts !== 'string' || !isIsoTimestamp(r.ts)) return 'ts is not an ISO timestamp';
  if (typeof r.type !== 'string') return 'type is not a string';
  if (typeof r.data !== 'object' || r.data === null || Array.isArray(r.data)) return 'data is not an object';
  if (typeof r.prevHash !== 'string' || !HASH_PATTERN.test(r.prevHash)) return 'prevHash is malformed';
  if (typeof r.hash !== 'string' || !HASH_PATTERN.test(r.hash)) return 'hash is malformed';
  if (!isJournalEventType(r.type)) return 'unknown event type';
  const problem = explainInvalidEvent(r.type, r.data);
  if (problem) return `data does not match its schema (${problem})`;
  if (JSON.stringify(value) !== line) {
    return 'line is not the exact serialisation of its record (duplicate member, spacing or escape)';
  }
  return value as JournalRecord;
}

function isIsoTimestamp(ts: string): boolean {
  const at = Date.parse(ts);
  return !Number.isNaN(at) && new Date(at).toISOString() === ts;
}

/**
 * Walks a journal's lines: each must parse strictly, carry the next sequence number, point at the
 * previous record's hash, and hash to what it claims; a checkpoint must sign the record before it
 * and, when a keyring is given, verify with a key it holds. Reports the first position that fails,
 * and how far the chain is anchored by verified signatures.
 */
export function verifyChain(
  consultationId: string,
  lines: readonly string[],
  keyring?: JournalKeyring,
): ChainVerification {
  const records: JournalRecord[] = [];
  let prevHash = genesisHash(consultationId);
  let anchoredSeq = 0;
  let signedHead: SignedHead | undefined;
  let endedAt = 0;
  const signaturesChecked = keyring !== undefined;
  const fail = (index: number, reason: string): ChainVerification => ({
    ok: false,
    records,
    firstBadSeq: index + 1,
    line: index + 1,
    reason,
    ended: false,
    headHash: prevHash,
    signaturesChecked,
    anchoredSeq,
    anchored: false,
    ...(signedHead ? { signedHead } : {}),
  });
  for (let index = 0; index < lines.length; index++) {
    const parsed = parseRecord(lines[index] as string);
    if (typeof parsed === 'string') return fail(index, parsed);
    if (parsed.seq !== index + 1)
      return fail(index, `seq ${parsed.seq} found where ${index + 1} was expected`);
    if (parsed.prevHash !== prevHash) return fail(index, 'prevHash does not match the previous record');
    let computed: string;
    try {
      computed = recordHash(parsed);
    } catch {
      return fail(index, 'record cannot be canonicalised');
    }
    if (computed !== parsed.hash) return fail(index, 'hash does not match the record content');
    const previous = records[index - 1];
    // consultation.ended may be followed by its checkpoint only, and that by nothing.
    if (endedAt > 0 && (previous?.type !== 'consultation.ended' || parsed.type !== 'journal.checkpoint')) {
      return fail(index, 'record follows consultation.ended');
    }
    if (parsed.type === 'journal.checkpoint') {
      const checkpoint = parsed.data as JournalEventData<'journal.checkpoint'>;
      if (checkpoint.signedSeq !== parsed.seq - 1 || checkpoint.signedHash !== parsed.prevHash) {
        return fail(index, 'checkpoint does not sign the record before it');
      }
      if (previous?.type === 'journal.checkpoint') return fail(index, 'checkpoint follows a checkpoint');
      if (keyring) {
        const check = keyring.check(
          consultationId,
          checkpoint.signedSeq,
          checkpoint.signedHash,
          checkpoint.keyId,
          checkpoint.signature,
        );
        if (check === 'unknown-key')
          return fail(index, `checkpoint signed by unknown key ${checkpoint.keyId}`);
        if (check === 'invalid') return fail(index, 'checkpoint signature does not verify');
        anchoredSeq = checkpoint.signedSeq;
        signedHead = {
          consultationId,
          seq: checkpoint.signedSeq,
          hash: checkpoint.signedHash,
          keyId: checkpoint.keyId,
          signature: checkpoint.signature,
        };
      }
    }
    if (parsed.type === 'consultation.ended') endedAt = parsed.seq;
    records.push(parsed);
    prevHash = parsed.hash;
  }
  const last = records.at(-1);
  return {
    ok: true,
    records,
    ended: endedAt > 0,
    headHash: prevHash,
    signaturesChecked,
    anchoredSeq,
    anchored: last !== undefined && last.type === 'journal.checkpoint' && anchoredSeq === last.seq - 1,
    ...(signedHead ? { signedHead } : {}),
  };
}

import { SIP_LIMITS, findHeaderEnd } from './message.js';

/** What the framer found in the bytes received so far on one stream connection. */
export type FrameEvent =
  | { readonly type: 'message'; readonly bytes: Buffer }
  /** Framing is lost (no usable Content-Length, oversized): answer if possible, then close the connection. */
  | { readonly type: 'fatal'; readonly reason: string; readonly bytes: Buffer };

/**
 * Cuts a TCP/TLS byte stream into SIP messages with Content-Length (RFC 3261 18.3). Keep-alive CRLFs
 * between messages are skipped (RFC 5626 4.4.1). The buffer never grows past the message size limit.
 */
export class SipStreamFramer {
  private pending: Buffer = Buffer.alloc(0);
  private failed = false;

  push(chunk: Buffer): FrameEvent[] {
    if (this.failed) return [];
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const events: FrameEvent[] = [];
    for (;;) {
      let start = 0;
      while (start + 1 < this.pending.length && this.pending[start] === 13 && this.pending[start + 1] === 10)
        start += 2;
      if (start > 0) this.pending = this.pending.subarray(start);
      if (this.pending.length === 0) break;
      const headerEnd = findHeaderEnd(this.pending);
      if (headerEnd < 0) {
        if (this.pending.length > SIP_LIMITS.maxMessageBytes)
          events.push(this.fail('header section too large'));
        break;
      }
      const head = this.pending.subarray(0, headerEnd).toString('latin1');
      const lengths = [...head.matchAll(/\r\n(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)/gi)].map((m) =>
        (m[1] ?? '').trim(),
      );
      if (lengths.length !== 1) {
        events.push(this.fail(lengths.length === 0 ? 'missing Content-Length' : 'repeated Content-Length'));
        break;
      }
      const text = lengths[0] ?? '';
      if (!/^[0-9]{1,6}$/.test(text)) {
        events.push(this.fail('malformed Content-Length'));
        break;
      }
      const total = headerEnd + Number(text);
      if (total > SIP_LIMITS.maxMessageBytes) {
        events.push(this.fail('message too large'));
        break;
      }
      if (this.pending.length < total) break;
      events.push({ type: 'message', bytes: Buffer.from(this.pending.subarray(0, total)) });
      this.pending = this.pending.subarray(total);
    }
    return events;
  }

  private fail(reason: string): FrameEvent {
    this.failed = true;
    const bytes = this.pending.subarray(0, SIP_LIMITS.maxMessageBytes);
    this.pending = Buffer.alloc(0);
    return { type: 'fatal', reason, bytes };
  }
}

import type { RtpPacket } from './rtp.js';

/** The sixteen DTMF events of RFC 4733 3.2, as the digits the gateway understands. */
const DTMF_DIGITS = '0123456789*#ABCD';

export type DtmfDigit =
  '0' | '1' | '2' | '3' | '4' | '5' | '6' | '7' | '8' | '9' | '*' | '#' | 'A' | 'B' | 'C' | 'D';

export function isDtmfDigit(value: string): value is DtmfDigit {
  return value.length === 1 && DTMF_DIGITS.includes(value);
}

export interface TelephoneEvent {
  readonly event: number;
  readonly end: boolean;
  readonly volume: number;
  readonly duration: number;
}

/** Parses the 4-byte event payload (RFC 4733 2.3); undefined when truncated. */
export function parseTelephoneEvent(payload: Buffer): TelephoneEvent | undefined {
  if (payload.length < 4) return undefined;
  const flags = payload[1] ?? 0;
  return {
    event: payload[0] ?? 0,
    end: (flags & 0x80) !== 0,
    volume: flags & 0x3f,
    duration: payload.readUInt16BE(2),
  };
}

/**
 * Turns a stream of telephone-event packets into digits, one per key press. An event is identified by
 * its RTP timestamp (RFC 4733 2.5.1.1: all packets of one event share it); the digit is reported at its
 * first end packet, and the end packet's retransmissions (sent three times) are ignored. A press whose
 * end packets were all lost is still reported when the next event begins.
 */
export class DtmfReceiver {
  private current: { ssrc: number; timestamp: number; event: number; reported: boolean } | undefined;
  /** Recently reported events, to drop late duplicates; bounded. */
  private readonly reported: string[] = [];

  /** The digits completed by this packet: usually none or one. */
  receive(packet: RtpPacket): DtmfDigit[] {
    const parsed = parseTelephoneEvent(packet.payload);
    if (!parsed || parsed.event > 15) return [];
    if (this.reported.includes(`${packet.ssrc}:${packet.timestamp}`)) return [];
    const digits: DtmfDigit[] = [];
    const current = this.current;
    if (!current || current.ssrc !== packet.ssrc || current.timestamp !== packet.timestamp) {
      // A new event: a previous one that never saw its end packet is reported now.
      if (current && !current.reported) digits.push(this.markReported(current));
      this.current = { ssrc: packet.ssrc, timestamp: packet.timestamp, event: parsed.event, reported: false };
    }
    if (parsed.end && this.current && !this.current.reported) digits.push(this.markReported(this.current));
    return digits;
  }

  private markReported(event: {
    ssrc: number;
    timestamp: number;
    event: number;
    reported: boolean;
  }): DtmfDigit {
    event.reported = true;
    this.reported.push(`${event.ssrc}:${event.timestamp}`);
    if (this.reported.length > 32) this.reported.shift();
    return DTMF_DIGITS[event.event] as DtmfDigit;
  }
}

/** Parses a SIP INFO DTMF body: `application/dtmf-relay` (`Signal=5`) or `application/dtmf` (`5`). */
export function parseDtmfInfo(contentType: string, body: string): DtmfDigit | undefined {
  const type = contentType.split(';')[0]?.trim().toLowerCase();
  let signal: string | undefined;
  if (type === 'application/dtmf-relay') signal = /^\s*Signal\s*=\s*(\S+)\s*$/im.exec(body)?.[1];
  else if (type === 'application/dtmf') signal = body.trim();
  if (signal === undefined) return undefined;
  if (signal === '10') return '*';
  if (signal === '11') return '#';
  const upper = signal.toUpperCase();
  return isDtmfDigit(upper) ? upper : undefined;
}

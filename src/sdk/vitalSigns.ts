import {
  VITAL_SIGN_MAX_BYTES,
  checkVitalSign,
  type BloodPressureReading,
  type ScalarReading,
  type VitalSign,
} from '../protocol/vitalSignRules.js';
import type { DeviceType } from '../protocol/devices.js';
import { TeleconsultError } from './errors.js';
import type { Locale } from './messages.js';

/**
 * Vital-sign readings over a `vital-signs` data channel (docs/devices.md): the sending side
 * numbers, validates, rate-limits and (in an E2EE room) encrypts each reading; the receiving side
 * decrypts, validates, checks the order and the rate, and hands typed readings to the application.
 * Both sides work on bytes and a cipher, so they are tested in Node as they run in the browser.
 */

/** The sender's limit: a device reports a few readings a second at most (an oximeter: 1/s). */
export const SEND_RATE = { perSecond: 5, burst: 10 };
/** The receiver's: twice the sender's, so an honest sender is never cut, a flooding one is. */
export const RECEIVE_RATE = { perSecond: 10, burst: 20 };
/** SFrame header and tag around an encrypted reading. */
const CIPHER_OVERHEAD_BYTES = 64;

/** A reading as the application gives it: the SDK adds `seq`, `deviceType` and, if absent, `timestamp`. */
export type VitalSignInput =
  | (Omit<ScalarReading, 'seq' | 'deviceType' | 'timestamp'> & { timestamp?: number })
  | (Omit<BloodPressureReading, 'seq' | 'deviceType' | 'timestamp'> & { timestamp?: number });

/** What encrypts and decrypts readings in an E2EE room (the room's EndToEndEncryption). */
export interface VitalSignCipher {
  encryptData(message: Uint8Array): Promise<Uint8Array<ArrayBuffer> | undefined>;
  decryptData(senderId: string, message: Uint8Array): Promise<Uint8Array<ArrayBuffer> | undefined>;
}

/** A token bucket: `take()` is false once the burst is spent faster than the rate refills it. */
export class RateLimit {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: { perSecond: number; burst: number },
    private readonly now: () => number = () => Date.now(),
  ) {
    this.tokens = rate.burst;
    this.last = now();
  }

  take(): boolean {
    const now = this.now();
    this.tokens = Math.min(this.rate.burst, this.tokens + ((now - this.last) / 1000) * this.rate.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Runs async steps one after the other, so readings leave and arrive in order. */
class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(step: () => Promise<T>): Promise<T> {
    const result = this.tail.then(step);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export interface VitalSignsSenderOptions {
  deviceType: DeviceType;
  /** Sends one message on the channel; false when it is not open. */
  transmit(message: string | ArrayBuffer): boolean;
  /** Present in an E2EE room: every reading is encrypted, none leaves in clear. */
  cipher: VitalSignCipher | undefined;
  locale: Locale;
  now?: () => number;
}

/** The device holder's side of a vital-signs channel. */
export class VitalSignsSender {
  private seq = 0;
  private readonly limit: RateLimit;
  private readonly serial = new Serial();

  constructor(private readonly options: VitalSignsSenderOptions) {
    this.limit = new RateLimit(SEND_RATE, options.now);
  }

  /**
   * Validates, numbers and sends one reading; resolves with the reading as sent. Rejects with
   * VITAL_SIGN_INVALID (detail: the rule broken), VITAL_SIGN_RATE_LIMITED, E2EE_KEY_MISSING (no
   * end-to-end key yet: nothing is sent in clear) or NOT_CONNECTED (the channel is not open).
   */
  send(input: VitalSignInput): Promise<VitalSign> {
    const now = this.options.now ?? Date.now;
    const candidate = {
      ...input,
      seq: this.seq,
      deviceType: this.options.deviceType,
      timestamp: input.timestamp ?? now(),
    };
    const check = checkVitalSign(candidate);
    if (!check.ok) return Promise.reject(this.error('VITAL_SIGN_INVALID', check.reason));
    if (!this.limit.take()) return Promise.reject(this.error('VITAL_SIGN_RATE_LIMITED'));
    this.seq++;
    const reading = check.reading;
    return this.serial.run(async () => {
      const json = JSON.stringify(reading);
      let message: string | ArrayBuffer = json;
      if (this.options.cipher) {
        const sealed = await this.options.cipher.encryptData(encoder.encode(json));
        if (!sealed) throw this.error('E2EE_KEY_MISSING');
        message = sealed.buffer;
      }
      if (!this.options.transmit(message)) throw this.error('NOT_CONNECTED', 'vital-signs channel');
      return reading;
    });
  }

  private error(code: TeleconsultError['code'], detail?: string): TeleconsultError {
    return new TeleconsultError(code, this.options.locale, detail);
  }
}

export interface VitalSignsReaderOptions {
  senderId: string;
  /** The device the channel was opened for: every reading must come from it. */
  deviceType: DeviceType | undefined;
  /** Present when the sender encrypts end to end: then only ciphertext is accepted. */
  cipher: VitalSignCipher | undefined;
  locale: Locale;
  now?: () => number;
}

/** The practitioner's side of one device's vital-signs channel. */
export class VitalSignsReader {
  private lastSeq = -1;
  private readonly limit: RateLimit;
  private readonly serial = new Serial();

  constructor(private readonly options: VitalSignsReaderOptions) {
    this.limit = new RateLimit(RECEIVE_RATE, options.now);
  }

  /**
   * One message from the channel: resolves with the validated reading, or rejects with a typed
   * error (VITAL_SIGN_RATE_LIMITED, VITAL_SIGN_NOT_ENCRYPTED, VITAL_SIGN_UNREADABLE,
   * VITAL_SIGN_INVALID, VITAL_SIGN_OUT_OF_ORDER) and the reading is dropped.
   */
  accept(message: unknown): Promise<VitalSign> {
    if (!this.limit.take()) return Promise.reject(this.error('VITAL_SIGN_RATE_LIMITED'));
    return this.serial.run(() => this.read(message));
  }

  private async read(message: unknown): Promise<VitalSign> {
    const { cipher, senderId } = this.options;
    let bytes: Uint8Array;
    if (typeof message === 'string') {
      if (cipher) throw this.error('VITAL_SIGN_NOT_ENCRYPTED');
      bytes = encoder.encode(message);
    } else if (message instanceof ArrayBuffer || ArrayBuffer.isView(message)) {
      bytes =
        message instanceof ArrayBuffer
          ? new Uint8Array(message)
          : new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
    } else {
      throw this.error('VITAL_SIGN_INVALID', 'not a message');
    }
    if (bytes.byteLength > VITAL_SIGN_MAX_BYTES + CIPHER_OVERHEAD_BYTES)
      throw this.error('VITAL_SIGN_INVALID', 'too large');
    if (cipher) {
      const opened = await cipher.decryptData(senderId, bytes);
      if (!opened) throw this.error('VITAL_SIGN_UNREADABLE');
      bytes = opened;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(decoder.decode(bytes));
    } catch {
      throw this.error('VITAL_SIGN_INVALID', 'not JSON');
    }
    const check = checkVitalSign(parsed);
    if (!check.ok) throw this.error('VITAL_SIGN_INVALID', check.reason);
    const reading = check.reading;
    if (this.options.deviceType && reading.deviceType !== this.options.deviceType)
      throw this.error('VITAL_SIGN_INVALID', 'deviceType is not the channel’s');
    if (reading.seq <= this.lastSeq) throw this.error('VITAL_SIGN_OUT_OF_ORDER');
    this.lastSeq = reading.seq;
    return reading;
  }

  private error(code: TeleconsultError['code'], detail?: string): TeleconsultError {
    return new TeleconsultError(code, this.options.locale, detail);
  }
}

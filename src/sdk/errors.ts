import type { ErrorCode } from '../errors/catalogue.js';
import { hasMessage, messageFor, type Locale } from './messages.js';

/**
 * Codes the SDK raises itself, for failures that never reach the server (time-outs, lost
 * connections, camera permissions...). Server codes (src/errors/catalogue.ts) pass through unchanged.
 */
export const CLIENT_ERROR_CODES = [
  'REQUEST_TIMEOUT',
  'CONNECTION_FAILED',
  'CONNECTION_LOST',
  'NOT_CONNECTED',
  'ACCESS_CODE_INVALID',
  'DECLINED',
  'REMOVED',
  'SESSION_REPLACED',
  'DEVICE_NOT_SUPPORTED',
  'MEDIA_PERMISSION_DENIED',
  'MEDIA_DEVICE_NOT_FOUND',
  'MEDIA_DEVICE_ERROR',
  'WEBRTC_ERROR',
  'UNEXPECTED_RESPONSE',
  /** End-to-end encryption has no key yet for what this participant sends (nothing left in clear). */
  'E2EE_KEY_MISSING',
  /** Vital signs (docs/devices.md): a reading broke a rule of the measures table (detail: which). */
  'VITAL_SIGN_INVALID',
  /** More readings than a device sends: the reading was not sent (or, received, was dropped). */
  'VITAL_SIGN_RATE_LIMITED',
  /** In an E2EE room, a reading arrived in clear: dropped. */
  'VITAL_SIGN_NOT_ENCRYPTED',
  /** An encrypted reading could not be authenticated (wrong or missing key): dropped. */
  'VITAL_SIGN_UNREADABLE',
  /** A reading repeated or older than one already received: dropped. */
  'VITAL_SIGN_OUT_OF_ORDER',
  'UNKNOWN',
] as const;
export type ClientErrorCode = (typeof CLIENT_ERROR_CODES)[number];

export type TeleconsultErrorCode = ErrorCode | ClientErrorCode;

/**
 * Every error the SDK surfaces. Branch on `code` (stable); show `message` to users (French by
 * default, English with `locale: 'en'`); `serverMessage` and `detail` are English, for logs.
 */
export class TeleconsultError extends Error {
  override readonly name = 'TeleconsultError';

  constructor(
    readonly code: TeleconsultErrorCode,
    readonly locale: Locale = 'fr',
    readonly detail?: string,
    /** The server's English message, when the error came from the server. */
    readonly serverMessage?: string,
    /** The underlying error (a DOMException from getUserMedia, a mediasoup-client error...). */
    override readonly cause?: unknown,
  ) {
    super(messageFor(code, locale));
  }

  /** The same error's message in another language. */
  messageIn(locale: Locale): string {
    return messageFor(this.code, locale);
  }

  toJSON(): { code: TeleconsultErrorCode; message: string; detail?: string } {
    return this.detail !== undefined
      ? { code: this.code, message: this.message, detail: this.detail }
      : { code: this.code, message: this.message };
  }
}

export function isTeleconsultError(value: unknown): value is TeleconsultError {
  return value instanceof TeleconsultError;
}

/** Whether the error is the server's answer (as opposed to a time-out or a lost connection). */
export function hasServerCode(error: unknown): boolean {
  return isTeleconsultError(error) && error.serverMessage !== undefined;
}

/** Maps the `error` body of a failed response to a typed error; unknown codes become `UNKNOWN`. */
export function fromServerError(
  body: { code: string; message: string; detail?: string | undefined },
  locale: Locale,
): TeleconsultError {
  const code = body.code;
  if (isKnownCode(code)) return new TeleconsultError(code, locale, body.detail, body.message);
  return new TeleconsultError(
    'UNKNOWN',
    locale,
    [code, body.detail].filter(Boolean).join(': '),
    body.message,
  );
}

/** Maps a getUserMedia / WebRTC failure to a typed error. */
export function fromMediaError(error: unknown, locale: Locale): TeleconsultError {
  if (isTeleconsultError(error)) return error;
  const name = error instanceof Error ? error.name : '';
  const detail = error instanceof Error ? error.message.slice(0, 200) : undefined;
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return new TeleconsultError('MEDIA_PERMISSION_DENIED', locale, detail, undefined, error);
    case 'NotFoundError':
    case 'OverconstrainedError':
      return new TeleconsultError('MEDIA_DEVICE_NOT_FOUND', locale, detail, undefined, error);
    case 'NotReadableError':
    case 'AbortError':
      return new TeleconsultError('MEDIA_DEVICE_ERROR', locale, detail, undefined, error);
    case 'UnsupportedError':
      return new TeleconsultError('DEVICE_NOT_SUPPORTED', locale, detail, undefined, error);
    default:
      return new TeleconsultError('WEBRTC_ERROR', locale, detail, undefined, error);
  }
}

function isKnownCode(code: string): code is TeleconsultErrorCode {
  return hasMessage(code) && code !== 'UNKNOWN';
}

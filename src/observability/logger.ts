import { pino, type Logger, type LoggerOptions } from 'pino';

/**
 * Paths whose values never reach a log line: credentials, session descriptions, key material,
 * names and health identifiers. Set once here; modules log through child loggers of this one.
 */
export const REDACTED_PATHS: readonly string[] = [
  'token',
  '*.token',
  'resumeToken',
  '*.resumeToken',
  'apiKey',
  '*.apiKey',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'secret',
  '*.secret',
  'sdp',
  '*.sdp',
  'dtlsParameters',
  '*.dtlsParameters',
  'fingerprints',
  '*.fingerprints',
  'key',
  '*.key',
  'keys',
  '*.keys',
  'privateKey',
  '*.privateKey',
  'displayName',
  '*.displayName',
  'name',
  '*.name',
  'phoneNumber',
  '*.phoneNumber',
  'pin',
  '*.pin',
  'accessCode',
  '*.accessCode',
  'rpps',
  '*.rpps',
  'patientId',
  '*.patientId',
  'ins',
  '*.ins',
];

export type { Logger };

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: 'teleconsult-sfu' },
    redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}

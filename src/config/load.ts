import fs from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import { ConfigSchema, type Config } from './schema.js';

/** Raised when configuration cannot be used; the message names the key, what was expected and found. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

const ENV_PREFIX = 'SFU_';

/** `SFU_MEDIA__WORKERS=2` sets `media.workers`; a value that parses as JSON is taken as JSON. */
export function overridesFromEnv(env: NodeJS.ProcessEnv): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || name === 'SFU_CONFIG' || raw === undefined) continue;
    const path = name
      .slice(ENV_PREFIX.length)
      .split('__')
      .map((part) => part.toLowerCase().replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()));
    let value: Json;
    try {
      value = JSON.parse(raw) as Json;
    } catch {
      value = raw;
    }
    let node: Record<string, Json> = out;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, Json>;
    }
    node[path[path.length - 1] as string] = value;
  }
  return out;
}

function merge(base: Record<string, Json>, over: Record<string, Json>): Record<string, Json> {
  const out: Record<string, Json> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    if (
      value !== null &&
      typeof value === 'object' &&
      !Array.isArray(value) &&
      current !== null &&
      typeof current === 'object' &&
      !Array.isArray(current)
    ) {
      out[key] = merge(current, value);
    } else {
      out[key] = value;
    }
  }
  return out;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Validates a raw configuration object against the schema, filling defaults. */
export function resolveConfig(raw: Record<string, Json>): Config {
  const withDefaults = Value.Default(ConfigSchema, structuredClone(raw));
  const first = Value.Errors(ConfigSchema, withDefaults).First();
  if (first) {
    const key = first.path.replace(/^\//, '').replace(/\//g, '.') || '(root)';
    const expected = first.schema.description
      ? `${first.message} (${first.schema.description})`
      : first.message;
    throw new ConfigError(
      `invalid configuration key "${key}": expected ${expected}; found ${describe(first.value)}`,
    );
  }
  const config = withDefaults as Config;
  if (config.media.rtcMinPort > config.media.rtcMaxPort) {
    throw new ConfigError(
      `invalid configuration key "media.rtcMinPort": expected at most media.rtcMaxPort (${config.media.rtcMaxPort}); found ${config.media.rtcMinPort}`,
    );
  }
  checkPhone(config.phone);
  checkJournal(config);
  return config;
}

/**
 * Journals in PostgreSQL are extended by whichever node hosts the room, and every node verifies
 * the checkpoints the others signed: the nodes must share one configured key. A key generated per
 * node (the files default) would make the first room moved after a node's death unverifiable.
 */
function checkJournal(config: Config): void {
  const { journal, cluster } = config;
  const inDatabase =
    journal.store === 'postgres' ||
    (journal.store === 'auto' && cluster.enabled && journal.postgresUrl !== null);
  if (!inDatabase) return;
  if (journal.postgresUrl === null)
    throw new ConfigError(
      'invalid configuration key "journal.postgresUrl": expected a PostgreSQL URL when journal.store is postgres; found nothing',
    );
  if (journal.signingKey === null && journal.signingKeyFile === null)
    throw new ConfigError(
      'invalid configuration key "journal.signingKey": expected the Ed25519 key every node shares (signingKey or signingKeyFile, from a secret) when journals live in PostgreSQL; found nothing',
    );
}

/** Phone settings that only make sense together; each error names the key to fix. */
function checkPhone(phone: Config['phone']): void {
  const fail = (key: string, expected: string, found: unknown) => {
    throw new ConfigError(
      `invalid configuration key "phone.${key}": expected ${expected}; found ${describe(found)}`,
    );
  };
  if (phone.rtpMinPort > phone.rtpMaxPort)
    fail('rtpMinPort', `at most phone.rtpMaxPort (${phone.rtpMaxPort})`, phone.rtpMinPort);
  if (phone.rtpMinPort !== 0 && phone.rtpMaxPort - phone.rtpMinPort < 1)
    fail('rtpMaxPort', 'a range of at least two ports above phone.rtpMinPort', phone.rtpMaxPort);
  if (phone.sipTlsPort !== null && (phone.sipTlsCertFile === null || phone.sipTlsKeyFile === null))
    fail('sipTlsCertFile', 'a certificate and phone.sipTlsKeyFile when phone.sipTlsPort is set', null);
  if (phone.sipUdpPort === null && phone.sipTcpPort === null && phone.sipTlsPort === null)
    fail('sipUdpPort', 'at least one SIP transport (sipUdpPort, sipTcpPort or sipTlsPort)', null);
  if (phone.srtp === 'required' && phone.sipTlsPort === null)
    fail(
      'srtp',
      "'offered' or 'off' without phone.sipTlsPort (SRTP keys travel only over SIP TLS)",
      'required',
    );
  if ((phone.registrar === null) !== (phone.aor === null))
    fail(phone.registrar === null ? 'registrar' : 'aor', 'registrar and aor set together', null);
  if (phone.authPassword !== null && phone.authUsername === null)
    fail('authUsername', 'a username with phone.authPassword', null);
  for (const key of ['outboundProxy', 'registrar', 'aor'] as const) {
    const value = phone[key];
    if (value !== null && !/^sips?:[^\s]+$/.test(value)) fail(key, 'a sip: or sips: URI', value);
  }
}

/**
 * Loads configuration: embedded defaults, then the JSON file named by `--config` or `SFU_CONFIG`,
 * then `SFU_*` environment variables.
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  const flag = argv.indexOf('--config');
  const file = flag >= 0 ? argv[flag + 1] : env.SFU_CONFIG;
  let fromFile: Record<string, Json> = {};
  if (file) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read configuration file ${file}: ${(err as Error).message}`);
    }
    try {
      fromFile = JSON.parse(text) as Record<string, Json>;
    } catch (err) {
      throw new ConfigError(`configuration file ${file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  return resolveConfig(merge(fromFile, overridesFromEnv(env)));
}

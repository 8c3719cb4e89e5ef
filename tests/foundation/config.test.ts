import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, overridesFromEnv, resolveConfig, ConfigError } from '../../src/config/load.js';
import { ConfigSchema } from '../../src/config/schema.js';

t.test('the embedded defaults form a valid configuration', async (t) => {
  const config = loadConfig([], {});
  t.equal(config.server.port, 8080);
  t.equal(config.media.workers, 0);
  t.equal(config.limits.wsMaxPayloadBytes, 65536);
  t.equal(config.media.listenIp, '127.0.0.1');
});

t.test('environment variables override nested keys, parsing JSON values', async (t) => {
  const overrides = overridesFromEnv({
    SFU_MEDIA__WORKERS: '3',
    SFU_MEDIA__ANNOUNCED_ADDRESS: '203.0.113.7',
    SFU_AUTH__API_KEYS: '["0123456789abcdef0123"]',
    OTHER: 'ignored',
  });
  t.same(overrides, {
    media: { workers: 3, announcedAddress: '203.0.113.7' },
    auth: { apiKeys: ['0123456789abcdef0123'] },
  });
  const config = loadConfig([], { SFU_MEDIA__WORKERS: '3' });
  t.equal(config.media.workers, 3);
});

t.test('a config file is read and environment variables win over it', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify({ server: { port: 9000 }, log: { level: 'debug' } }));
  const config = loadConfig(['--config', file], { SFU_SERVER__PORT: '9100' });
  t.equal(config.server.port, 9100);
  t.equal(config.log.level, 'debug');
  fs.rmSync(dir, { recursive: true });
});

t.test('an invalid value names the key, what was expected and what was found', async (t) => {
  t.throws(() => resolveConfig({ server: { port: 70000 } }), {
    name: 'ConfigError',
    message: /"server\.port".*expected.*found 70000/,
  });
  t.throws(() => resolveConfig({ media: { workers: 'many' } }), {
    message: /"media\.workers".*found "many"/,
  });
  t.throws(() => resolveConfig({ serverr: {} }), ConfigError);
  t.throws(() => resolveConfig({ server: { prot: 1 } }), ConfigError, 'unknown nested keys are refused');
  t.throws(() => resolveConfig({ media: { rtcMinPort: 50000, rtcMaxPort: 40000 } }), {
    message: /rtcMinPort/,
  });
});

t.test('an unreadable or malformed file stops the start with a clear message', async (t) => {
  t.throws(() => loadConfig(['--config', '/nonexistent/config.json'], {}), {
    message: /cannot read configuration file/,
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
  const file = path.join(dir, 'bad.json');
  fs.writeFileSync(file, '{ not json');
  t.throws(() => loadConfig([], { SFU_CONFIG: file }), { message: /not valid JSON/ });
  fs.rmSync(dir, { recursive: true });
});

t.test('docs/configuration.md is generated from the current schema', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const script = new URL('../../../scripts/config-reference.mjs', import.meta.url);
  const fresh = execFileSync(process.execPath, [script.pathname], { encoding: 'utf8' });
  const committed = fs.readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
  t.equal(committed, fresh, 'run `node scripts/config-reference.mjs --write` after changing the schema');
});

t.test("docs/phone.md lists exactly the schema's phone keys, generated from it", async (t) => {
  const { execFileSync } = await import('node:child_process');
  const script = new URL('../../../scripts/config-reference.mjs', import.meta.url);
  const fresh = execFileSync(process.execPath, [script.pathname, '--phone'], { encoding: 'utf8' });
  const committed = fs.readFileSync(new URL('../../../docs/phone.md', import.meta.url), 'utf8');
  t.equal(committed, fresh, 'run `node scripts/config-reference.mjs --write` after changing the schema');
  // Every `phone.<key>` the document mentions anywhere must be a real key.
  const keys = new Set(Object.keys(ConfigSchema.properties.phone.properties));
  const mentioned = [...committed.matchAll(/`phone\.([A-Za-z]+)[`/ ]/g)].map((m) => m[1] ?? '');
  t.same(
    mentioned.filter((key) => !keys.has(key)),
    [],
    'no documented phone key is unknown to the schema',
  );
});

t.test('phone settings that only make sense together are refused with the key named', async (t) => {
  t.throws(() => resolveConfig({ phone: { rtpMinPort: 50010, rtpMaxPort: 50000 } }), {
    message: /"phone\.rtpMinPort": expected at most phone\.rtpMaxPort/,
  });
  t.throws(() => resolveConfig({ phone: { sipTlsPort: 5061 } }), { message: /"phone\.sipTlsCertFile"/ });
  t.throws(() => resolveConfig({ phone: { registrar: 'sip:reg.example' } }), { message: /"phone\.aor"/ });
  t.throws(() => resolveConfig({ phone: { authPassword: 'x' } }), { message: /"phone\.authUsername"/ });
  t.throws(() => resolveConfig({ phone: { outboundProxy: 'http://x' } }), {
    message: /"phone\.outboundProxy": expected a sip: or sips: URI/,
  });
  t.throws(() => resolveConfig({ phone: { pinGlobalAttemptsPerMinute: 0 } }), {
    message: /"phone\.pinGlobalAttemptsPerMinute"/,
  });
  t.throws(() => resolveConfig({ phone: { ringTimeoutS: 1 } }), { message: /"phone\.ringTimeoutS"/ });
  t.throws(() => resolveConfig({ phone: { srtp: 'required' } }), { message: /"phone\.srtp"/ });
  t.throws(() => resolveConfig({ phone: { sipUdpPort: null, sipTcpPort: null } }), {
    message: /at least one SIP transport/,
  });
  const ok = resolveConfig({
    phone: { pinDigitTimeoutS: 5, consentTimeoutS: 20, ringTimeoutS: 30, sipMaxConnections: 10 },
  });
  t.equal(ok.phone.pinDigitTimeoutS, 5, 'the limits the documentation lists are accepted');
});

t.test(
  'journals in PostgreSQL need a signing key given to every node, not one generated per node',
  async (t) => {
    const url = 'postgresql://sfu@db.example:5432/journal';
    const pem = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n';
    // Each node would generate its own key: a room moved to another node would then fail to verify.
    t.throws(
      () =>
        resolveConfig({
          cluster: { enabled: true, redisUrl: 'redis://r:6379' },
          journal: { postgresUrl: url },
        }),
      {
        name: 'ConfigError',
        message: /"journal\.signingKey": expected .*PostgreSQL/,
      },
    );
    t.throws(() => resolveConfig({ journal: { store: 'postgres', postgresUrl: url } }), ConfigError);
    t.throws(() => resolveConfig({ journal: { store: 'postgres' } }), {
      message: /"journal\.postgresUrl"/,
    });
    t.doesNotThrow(() =>
      resolveConfig({ journal: { store: 'postgres', postgresUrl: url, signingKey: pem } }),
    );
    t.doesNotThrow(() =>
      resolveConfig({
        journal: { store: 'postgres', postgresUrl: url, signingKeyFile: '/run/secrets/key.pem' },
      }),
    );
    // Files (one node, or a cluster without a database) keep the generated default.
    t.doesNotThrow(() => resolveConfig({ cluster: { enabled: true, redisUrl: 'redis://r:6379' } }));
    t.doesNotThrow(() => resolveConfig({ journal: { store: 'files' } }));
  },
);

import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ConfigSchema } from '../../src/config/schema.js';
import { overridesFromEnv, resolveConfig } from '../../src/config/load.js';
import {
  at,
  chartDir,
  find,
  isObject,
  manifestFiles,
  mergeValues,
  readYamlFile,
  render,
  repoRoot,
  type Json,
  type JsonObject,
  type Rendered,
  text,
} from './chart.js';

/** A PKCS#8 PEM shape for the chart's own Secret (the chart never parses it). */
const TEST_SIGNING_KEY =
  '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIG1vY2sta2V5LWZvci10aGUtY2hhcnQtdGVzdHMhIQ==\n-----END PRIVATE KEY-----\n';

/** Value sets that together switch on every branch of the templates. */
const SCENARIOS: Record<string, JsonObject> = {
  defaults: {},
  'hostNetwork with everything enabled': {
    replicaCount: 3,
    media: { exposure: 'hostNetwork', workers: 4 },
    tls: { http: { existingSecret: 'sfu-https' }, dtls: { existingSecret: 'sfu-dtls' } },
    auth: { jwksConfigMap: 'platform-jwks' },
    secrets: {
      tokenSecret: 'a-random-token-secret',
      apiKeys: ['platform-key-0123456789'],
      webhookSecret: 'webhook-signing-secret',
    },
    cluster: { enabled: true, redisUrl: 'redis://redis:6379/0' },
    journal: {
      postgres: { url: 'postgresql://sfu:db-password@journal-db:5432/journal' },
      signingKey: { pem: TEST_SIGNING_KEY },
    },
    turn: { enabled: true, urls: ['turns:turn.example.fr:443?transport=tcp'], sharedSecret: 'turn-secret' },
    metrics: { serviceMonitor: { enabled: true, labels: { release: 'prometheus' } } },
    persistence: { enabled: false, storageClass: 'fast' },
    imagePullSecrets: [{ name: 'registry' }],
    podAnnotations: { team: 'visio' },
    podLabels: { tier: 'media' },
    nodeSelector: { 'node-role/media': 'true' },
    tolerations: [{ key: 'media', operator: 'Exists', effect: 'NoSchedule' }],
    priorityClassName: 'media-critical',
    service: { annotations: { 'example/lb': 'internal' } },
  },
  'podIP with existing Secrets and a fixed address': {
    media: { exposure: 'podIP', announcedAddress: '198.51.100.7' },
    secrets: { existingSecret: 'sfu-secrets' },
    cluster: { enabled: true, redisUrlSecret: { name: 'redis-auth', key: 'url' } },
    journal: {
      postgres: { urlSecret: { name: 'journal-db', key: 'uri' }, poolSize: 4 },
      signingKey: { secret: { name: 'journal-key', key: 'ed25519.pem' } },
    },
    turn: { enabled: true, sharedSecretSecret: { name: 'coturn', key: 'static-auth-secret' } },
    serviceAccount: { create: false, name: '' },
    podDisruptionBudget: { enabled: false },
    affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } } },
  },
};

// Rendered on first use inside a test, so a template that fails to render fails that test by name.
const cache = new Map<string, Rendered>();
function scenario(name: string): Rendered {
  let r = cache.get(name);
  if (!r) {
    r = render(SCENARIOS[name] ?? {});
    cache.set(name, r);
  }
  return r;
}
const defaults = () => scenario('defaults');
const everything = () => scenario('hostNetwork with everything enabled');
const external = () => scenario('podIP with existing Secrets and a fixed address');

function podSpec(r: Rendered): JsonObject {
  return at(find(r, 'StatefulSet'), 'spec', 'template', 'spec') as JsonObject;
}
function container(r: Rendered): JsonObject {
  return at(podSpec(r), 'containers', 0) as JsonObject;
}
type EnvVar = { name: string; value?: string; valueFrom?: JsonObject };
function env(r: Rendered): EnvVar[] {
  return at(container(r), 'env') as unknown as EnvVar[];
}
function envVar(r: Rendered, name: string): EnvVar | undefined {
  return env(r).find((e) => e.name === name);
}

/** The environment the server process would see, with downward-API and Secret values filled in. */
function podEnvironment(r: Rendered, secrets: Record<string, string>): Record<string, string> {
  const fieldValues: Record<string, string> = {
    'metadata.name': 'consult-teleconsult-sfu-0',
    'status.podIP': '10.42.0.17',
    'status.hostIP': '192.0.2.21',
  };
  const out: Record<string, string> = {};
  for (const e of env(r)) {
    if (e.value !== undefined) {
      // Kubernetes expands $(VAR) from variables defined earlier in the list.
      out[e.name] = e.value.replace(/\$\(([A-Z_]+)\)/g, (m, v: string) => out[v] ?? m);
    } else if (e.valueFrom && isObject(e.valueFrom.fieldRef)) {
      out[e.name] = fieldValues[text(e.valueFrom.fieldRef.fieldPath)] ?? '';
    } else if (e.valueFrom && isObject(e.valueFrom.secretKeyRef)) {
      const ref = e.valueFrom.secretKeyRef;
      const value = secrets[`${text(ref.name)}/${text(ref.key)}`];
      if (value !== undefined) out[e.name] = value;
      else if (ref.optional !== true)
        throw new Error(`${e.name}: Secret ${text(ref.name)} has no ${text(ref.key)}`);
    }
  }
  return out;
}

/** What the chart's Secret holds (stringData), keyed "name/key". */
function chartSecrets(r: Rendered): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of r.manifests.filter((x) => x.doc.kind === 'Secret')) {
    const name = text((m.doc.metadata as JsonObject).name);
    for (const [k, v] of Object.entries((m.doc.stringData as JsonObject | null) ?? {}))
      out[`${name}/${k}`] = text(v);
  }
  return out;
}

function configFile(r: Rendered): JsonObject {
  const cm = find(r, 'ConfigMap');
  return JSON.parse(text(at(cm, 'data', 'config.json'))) as JsonObject;
}

void t.test('Chart.yaml has the fields Helm requires and follows package.json', (t) => {
  const chart = readYamlFile(path.join(chartDir, 'Chart.yaml'));
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  t.equal(chart.apiVersion, 'v2');
  t.equal(chart.name, path.basename(chartDir), 'the name is the chart directory');
  t.match(text(chart.version), /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'version is SemVer 2');
  t.equal(chart.type, 'application');
  t.equal(chart.appVersion, pkg.version, 'appVersion is the server version');
  t.type(chart.description, 'string');
  t.end();
});

for (const name of Object.keys(SCENARIOS)) {
  void t.test(`with ${name}, every template renders to YAML manifests Kubernetes can name`, (t) => {
    const r = scenario(name);
    const files = new Set(r.manifests.map((m) => m.file));
    t.ok(files.has('statefulset.yaml') && files.has('service.yaml') && files.has('configmap.yaml'));
    const seen = new Set<string>();
    for (const { file, doc } of r.manifests) {
      t.type(doc.apiVersion, 'string', `${file} has apiVersion`);
      t.type(doc.kind, 'string', `${file} has kind`);
      const metaName = text(at(doc, 'metadata', 'name'));
      t.match(metaName, /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, `${file}: ${metaName} is a DNS label`);
      const id = `${text(doc.kind)}/${metaName}`;
      t.notOk(seen.has(id), `${id} is rendered once`);
      seen.add(id);
    }
    const ports = at(container(r), 'ports') as JsonObject[];
    const portNames = ports.map((p) => text(p.name));
    t.equal(new Set(portNames).size, portNames.length, 'container port names are unique');
    for (const n of portNames)
      t.ok(n.length <= 15 && /^[a-z0-9-]+$/.test(n), `port name ${n} is an IANA_SVC_NAME`);
    t.ok(r.text.get('NOTES.txt')?.includes('docs/operations.md'), 'NOTES.txt renders');
    t.end();
  });
}

void t.test('the pod runs unprivileged with a read-only root filesystem', (t) => {
  for (const r of [defaults(), everything()]) {
    const pod = podSpec(r);
    t.equal(at(pod, 'securityContext', 'runAsNonRoot'), true);
    t.not(at(pod, 'securityContext', 'runAsUser'), 0);
    t.equal(at(pod, 'securityContext', 'seccompProfile', 'type'), 'RuntimeDefault');
    t.equal(pod.automountServiceAccountToken, false, 'no Kubernetes API token in the pod');
    const sc = at(container(r), 'securityContext') as JsonObject;
    t.equal(sc.runAsNonRoot, true);
    t.equal(sc.allowPrivilegeEscalation, false);
    t.equal(sc.readOnlyRootFilesystem, true);
    t.same(at(sc, 'capabilities', 'drop'), ['ALL']);
    t.notOk(isObject(sc.capabilities) && 'add' in sc.capabilities, 'no capability added back');
    t.equal(at(sc, 'seccompProfile', 'type'), 'RuntimeDefault');
    const mounts = at(container(r), 'volumeMounts') as JsonObject[];
    const tmp = mounts.find((m) => m.mountPath === '/tmp');
    const tmpVolume = (at(pod, 'volumes') as JsonObject[]).find((v) => v.name === tmp?.name);
    t.ok(tmpVolume && isObject(tmpVolume.emptyDir), '/tmp is a writable emptyDir');
  }
  t.end();
});

void t.test('probes use /healthz for liveness and /readyz for readiness on the http port', (t) => {
  const c = container(defaults());
  t.equal(at(c, 'livenessProbe', 'httpGet', 'path'), '/healthz');
  t.equal(at(c, 'startupProbe', 'httpGet', 'path'), '/healthz');
  t.equal(at(c, 'readinessProbe', 'httpGet', 'path'), '/readyz');
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
    t.equal(at(c, probe, 'httpGet', 'port'), 'http');
    t.equal(at(c, probe, 'httpGet', 'scheme'), 'HTTP');
    t.equal(
      at(container(everything()), probe, 'httpGet', 'scheme'),
      'HTTPS',
      'HTTPS when the pod serves TLS',
    );
  }
  const http = (at(c, 'ports') as JsonObject[]).find((p) => p.name === 'http');
  const env = podEnvironment(defaults(), {});
  t.equal(
    text(http?.containerPort),
    env.SFU_SERVER__PORT,
    'the probed port is the one the server listens on',
  );
  t.end();
});

void t.test('the grace period outlasts the preStop hook plus the server drain deadline', (t) => {
  for (const [values, r] of [
    [{}, defaults()],
    [{ config: { server: { shutdownDeadlineS: 3600 } }, drain: { preStopSleepS: 10 } }, undefined],
  ] as const) {
    const rendered = r ?? render(values);
    const merged = mergeValues(readYamlFile(path.join(chartDir, 'values.yaml')), values);
    const deadline = Number(at(merged, 'config', 'server', 'shutdownDeadlineS'));
    const grace = Number(at(podSpec(rendered), 'terminationGracePeriodSeconds'));
    const preStop = at(container(rendered), 'lifecycle', 'preStop', 'exec', 'command') as string[];
    t.equal(preStop[0], 'sleep');
    const sleepS = Number(preStop[1]);
    t.ok(sleepS > 0 && sleepS < 60, 'the preStop hook is a short sleep');
    t.ok(grace > sleepS + deadline, `grace ${grace}s > preStop ${sleepS}s + deadline ${deadline}s`);
  }
  t.end();
});

void t.test('the configuration the pod sees is accepted by the server config loader', (t) => {
  const r = defaults();
  const env = podEnvironment(r, {
    ...chartSecrets(r),
    'consult-teleconsult-sfu/token-secret': 'a-random-token-secret',
    'consult-teleconsult-sfu/api-keys': '["platform-key-0123456789"]',
  });
  const config = resolveConfig(mergeValuesJson(configFile(r), overridesFromEnv(env)));
  t.equal(config.server.listenHost, '0.0.0.0', 'HTTP listens on all pod addresses');
  t.equal(config.media.listenIp, '0.0.0.0', 'media listens on all pod addresses');
  t.equal(config.media.announcedAddress, '192.0.2.21', 'hostPort announces the node address');
  t.equal(config.media.workers, 2);
  t.equal(config.server.demoPage, false);
  t.same(config.auth.apiKeys, ['platform-key-0123456789'], 'API keys arrive as a JSON array');
  const dataMount = (at(container(r), 'volumeMounts') as JsonObject[]).find((m) => m.name === 'data');
  t.equal(config.journal.dir, dataMount?.mountPath, 'the journal is on the data volume');
  t.end();
});

void t.test('with podIP exposure and a fixed address, the fixed address is announced', (t) => {
  const r = render({ media: { exposure: 'podIP' } });
  t.equal(
    podEnvironment(r, {}).SFU_MEDIA__ANNOUNCED_ADDRESS,
    '10.42.0.17',
    'podIP announces the pod address',
  );
  const externalSecrets = {
    'redis-auth/url': 'redis://redis:6379/0',
    'coturn/static-auth-secret': 'shared',
    'journal-db/uri': 'postgresql://sfu@journal-db/journal',
  };
  t.equal(podEnvironment(external(), externalSecrets).SFU_MEDIA__ANNOUNCED_ADDRESS, '198.51.100.7');
  t.notOk(podSpec(external()).hostNetwork, 'no host network');
  const ports = at(container(external()), 'ports') as JsonObject[];
  t.notOk(
    ports.some((p) => 'hostPort' in p),
    'no port published on the node',
  );
  t.end();
});

void t.test('each worker gets one UDP and one TCP media port, published on the node for hostPort', (t) => {
  const ports = at(container(defaults()), 'ports') as JsonObject[];
  const media = ports.filter((p) => text(p.name).startsWith('rtc-'));
  t.same(media.map((p) => `${text(p.containerPort)}/${text(p.protocol)}:${text(p.hostPort)}`).sort(), [
    '40000/TCP:40000',
    '40000/UDP:40000',
    '40001/TCP:40001',
    '40001/UDP:40001',
  ]);
  t.ok(isObject(podSpec(defaults()).affinity), 'an anti-affinity keeps one pod per node');
  const hostNet = podSpec(everything());
  t.equal(hostNet.hostNetwork, true);
  t.equal(hostNet.dnsPolicy, 'ClusterFirstWithHostNet', 'cluster DNS still resolves with host network');
  const many = (at(container(everything()), 'ports') as JsonObject[]).filter((p) =>
    text(p.name).startsWith('rtc-'),
  );
  t.equal(many.length, 8, 'four workers, two protocols each');
  t.end();
});

void t.test('file paths set in the environment point into mounted volumes', (t) => {
  const c = container(everything());
  const mounts = at(c, 'volumeMounts') as JsonObject[];
  const volumes = (at(podSpec(everything()), 'volumes') as JsonObject[]).map((v) => text(v.name));
  const env = podEnvironment(everything(), chartSecrets(everything()));
  const fileVars = Object.entries(env).filter(([k]) => /_(FILE|DIR)$|^SFU_CONFIG$/.test(k));
  t.ok(fileVars.length >= 7, 'TLS, DTLS, JWKS, journal and config paths are set');
  for (const [k, file] of fileVars) {
    const mount = mounts.find((m) => file === m.mountPath || file.startsWith(`${text(m.mountPath)}/`));
    t.ok(mount, `${k}=${file} is inside a volume mount`);
    if (mount?.subPath) t.equal(file, mount.mountPath, `${k} is the mounted file itself`);
    if (mount && mount.name !== 'data')
      t.ok(volumes.includes(text(mount.name)), `${text(mount.name)} is a volume`);
  }
  const stsSpec = at(find(everything(), 'StatefulSet'), 'spec') as JsonObject;
  t.equal(stsSpec.volumeClaimTemplates, undefined, 'no claim when disabled');
  t.ok(volumes.includes('data'), 'an emptyDir replaces the claim');
  t.end();
});

void t.test('the journal volume is a per-pod claim when persistence is on', (t) => {
  const sts = find(defaults(), 'StatefulSet');
  t.equal(at(sts, 'spec', 'volumeClaimTemplates', 0, 'metadata', 'name'), 'data');
  t.same(at(sts, 'spec', 'volumeClaimTemplates', 0, 'spec', 'accessModes'), ['ReadWriteOnce']);
  t.notOk((at(podSpec(defaults()), 'volumes') as JsonObject[]).some((v) => v.name === 'data'));
  t.end();
});

void t.test('secrets reach the pod only through secretKeyRef, never as literal values', (t) => {
  const secretValues = [
    'a-random-token-secret',
    'platform-key-0123456789',
    'webhook-signing-secret',
    'turn-secret',
    'db-password',
    'MC4CAQAwBQYDK2VwBCIEIG1vY2sta2V5',
  ];
  const sts = JSON.stringify(find(everything(), 'StatefulSet'));
  for (const s of secretValues) t.notOk(sts.includes(s), `${s} is not in the StatefulSet`);
  for (const name of [
    'SFU_AUTH__TOKEN_SECRET',
    'SFU_AUTH__API_KEYS',
    'SFU_WEBHOOKS__SECRET',
    'SFU_TURN__SHARED_SECRET',
    'SFU_JOURNAL__POSTGRES_URL',
  ]) {
    t.ok(envVar(everything(), name)?.valueFrom?.secretKeyRef, `${name} comes from a Secret`);
  }
  const env = podEnvironment(everything(), chartSecrets(everything()));
  t.equal(env.SFU_AUTH__TOKEN_SECRET, 'a-random-token-secret', 'the chart Secret carries the token secret');
  t.equal(env.SFU_TURN__SHARED_SECRET, 'turn-secret');
  t.equal(env.SFU_CLUSTER__REDIS_URL, 'redis://redis:6379/0');
  t.end();
});

void t.test('an existing Secret replaces the chart Secret', (t) => {
  t.notOk(
    external().manifests.some((m) => m.doc.kind === 'Secret'),
    'no Secret rendered',
  );
  const ref = (name: string) => envVar(external(), name)?.valueFrom?.secretKeyRef as JsonObject | undefined;
  t.equal(ref('SFU_AUTH__TOKEN_SECRET')?.name, 'sfu-secrets');
  t.same(
    ref('SFU_CLUSTER__REDIS_URL'),
    { name: 'redis-auth', key: 'url' },
    'the Redis URL from its own Secret',
  );
  t.same(ref('SFU_TURN__SHARED_SECRET'), { name: 'coturn', key: 'static-auth-secret' });
  t.end();
});

void t.test('cluster and TURN settings are wired into SFU_* variables only when enabled', (t) => {
  const names = (r: Rendered) => env(r).map((e) => e.name);
  for (const n of [
    'SFU_CLUSTER__REDIS_URL',
    'SFU_CLUSTER__NODE_ID',
    'SFU_TURN__URLS',
    'SFU_TURN__SHARED_SECRET',
  ]) {
    t.notOk(names(defaults()).includes(n), `${n} absent by default`);
    t.ok(names(everything()).includes(n), `${n} present when enabled`);
  }
  const env2 = podEnvironment(everything(), chartSecrets(everything()));
  t.equal(env2.SFU_CLUSTER__NODE_ID, 'consult-teleconsult-sfu-0', 'the node id is the pod name');
  t.same(JSON.parse(env2.SFU_TURN__URLS ?? ''), ['turns:turn.example.fr:443?transport=tcp']);
  t.end();
});

void t.test(
  'journals in PostgreSQL: the URL and the signing key come from Secrets, the key as a read-only file',
  (t) => {
    // The chart's own Secret (tests): both stored there, the key mounted, never in the environment.
    const env = podEnvironment(everything(), chartSecrets(everything()));
    t.equal(env.SFU_JOURNAL__POSTGRES_URL, 'postgresql://sfu:db-password@journal-db:5432/journal');
    t.equal(env.SFU_JOURNAL__SIGNING_KEY_FILE, '/etc/teleconsult-sfu/journal-key/journal-signing.pem');
    t.equal(
      envVar(everything(), 'SFU_JOURNAL__SIGNING_KEY'),
      undefined,
      'the key itself is not in the environment',
    );
    const config = resolveConfig(mergeValuesJson(configFile(everything()), overridesFromEnv(env)));
    t.equal(config.journal.store, 'auto');
    t.ok(
      config.cluster.enabled && config.journal.postgresUrl,
      'a cluster with a database: the PostgreSQL store',
    );

    // Secrets the operator brings: the URL from its own Secret, the key from another.
    const ref = envVar(external(), 'SFU_JOURNAL__POSTGRES_URL')?.valueFrom?.secretKeyRef as JsonObject;
    t.same(ref, { name: 'journal-db', key: 'uri' });
    t.equal(envVar(external(), 'SFU_JOURNAL__POSTGRES_POOL_SIZE')?.value, '4');
    const volume = (at(podSpec(external()), 'volumes') as JsonObject[]).find((v) => v.name === 'journal-key');
    // defaultMode is written 0440 like the TLS mounts (octal to Kubernetes' YAML 1.1 reader).
    t.match(
      volume?.secret,
      { secretName: 'journal-key', items: [{ key: 'ed25519.pem', path: 'journal-signing.pem' }] },
      'the key Secret is mounted, that one key as one file',
    );
    const mount = (at(container(external()), 'volumeMounts') as JsonObject[]).find(
      (m) => m.name === 'journal-key',
    );
    t.match(mount, { mountPath: '/etc/teleconsult-sfu/journal-key', readOnly: true });

    // By default: files on the pod's volume, no database, the key generated on that volume.
    t.equal(envVar(defaults(), 'SFU_JOURNAL__POSTGRES_URL'), undefined);
    t.equal(envVar(defaults(), 'SFU_JOURNAL__SIGNING_KEY_FILE'), undefined);
    t.end();
  },
);

void t.test(
  'a database without a shared signing key, or postgres without a database, does not render',
  (t) => {
    const cluster = { enabled: true, redisUrl: 'redis://redis:6379/0' };
    t.throws(() => render({ cluster, journal: { postgres: { url: 'postgresql://db/journal' } } }), {
      message: /journal\.signingKey/,
    });
    t.throws(() => render({ journal: { store: 'postgres' } }), { message: /journal\.postgres\.url/ });
    t.doesNotThrow(() =>
      render({
        cluster,
        journal: {
          postgres: { url: 'postgresql://db/journal' },
          signingKey: { secret: { name: 'journal-key' } },
        },
      }),
    );
    t.end();
  },
);

const schemaSections = Object.keys(ConfigSchema.properties);
const pending = ['cluster', 'turn'].filter((s) => !schemaSections.includes(s));
void t.test(
  'with cluster and TURN enabled the server accepts the configuration',
  pending.length > 0 ? { todo: `the server schema has no ${pending.join('/')} section yet` } : {},
  (t) => {
    const env = podEnvironment(everything(), chartSecrets(everything()));
    t.doesNotThrow(() => resolveConfig(mergeValuesJson(configFile(everything()), overridesFromEnv(env))));
    t.end();
  },
);

void t.test('service links are off, so Kubernetes cannot inject SFU_* variables', (t) => {
  // A release named "sfu" has Services named sfu-teleconsult-sfu...; with service links on, Kubernetes
  // would set SFU_TELECONSULT_SFU_PORT=tcp://... in the pod, and the loader rejects unknown keys.
  const injected = overridesFromEnv({ SFU_TELECONSULT_SFU_PORT: 'tcp://10.0.0.1:8080' });
  t.throws(() => resolveConfig(injected), /invalid configuration key/, 'such a variable stops the server');
  for (const r of [defaults(), everything(), render({}, 'sfu')])
    t.equal(podSpec(r).enableServiceLinks, false);
  t.end();
});

void t.test('Services and the PodDisruptionBudget select the StatefulSet pods', (t) => {
  const podLabels = at(
    find(defaults(), 'StatefulSet'),
    'spec',
    'template',
    'metadata',
    'labels',
  ) as JsonObject;
  const matches = (selector: Json) =>
    isObject(selector) && Object.entries(selector).every(([k, v]) => podLabels[k] === v);
  t.ok(matches(at(find(defaults(), 'Service', 'sfu'), 'spec', 'selector')), 'HTTP Service');
  t.ok(matches(at(find(defaults(), 'Service', '-headless'), 'spec', 'selector')), 'headless Service');
  t.ok(matches(at(find(defaults(), 'PodDisruptionBudget'), 'spec', 'selector', 'matchLabels')), 'PDB');
  t.ok(
    matches(at(find(defaults(), 'StatefulSet'), 'spec', 'selector', 'matchLabels')),
    'StatefulSet selector',
  );
  t.equal(
    at(find(defaults(), 'StatefulSet'), 'spec', 'serviceName'),
    at(find(defaults(), 'Service', '-headless'), 'metadata', 'name'),
  );
  t.equal(at(find(defaults(), 'Service', 'sfu'), 'spec', 'ports', 0, 'targetPort'), 'http');
  t.equal(
    at(find(defaults(), 'PodDisruptionBudget'), 'spec', 'maxUnavailable'),
    1,
    'node drains are never blocked',
  );
  const sm = find(everything(), 'ServiceMonitor');
  t.equal(at(sm, 'spec', 'endpoints', 0, 'path'), '/metrics');
  t.equal(
    at(sm, 'spec', 'selector', 'matchLabels', 'app.kubernetes.io/component'),
    'signalling',
    'scraped once',
  );
  t.end();
});

void t.test('every template file is rendered by at least one scenario', (t) => {
  const rendered = new Set(Object.keys(SCENARIOS).flatMap((n) => scenario(n).manifests.map((m) => m.file)));
  t.same(
    manifestFiles().filter((f) => !rendered.has(f)),
    [],
  );
  t.end();
});

function mergeValuesJson(
  base: JsonObject,
  over: Record<string, unknown>,
): Parameters<typeof resolveConfig>[0] {
  return mergeValues(base, over as JsonObject);
}

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import t from 'tap';
import { resolveConfig } from '../../src/config/load.js';
import { repoRoot } from './chart.js';

// Docker is not available on these machines, so the Dockerfile is checked by reading it: a small parser
// for the Dockerfile syntax it uses (continuations, comments, heredocs, stages), then checks of what
// each stage does, and where possible by running what the image would run (the health check).

interface Instruction {
  keyword: string;
  args: string;
  heredoc?: string;
  line: number;
}
interface Stage {
  base: string;
  name: string;
  instructions: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const lines = text.split('\n');
  const stages: Stage[] = [];
  let i = 0;
  while (i < lines.length) {
    const startLine = i + 1;
    let raw = lines[i++]!;
    if (/^\s*(#.*)?$/.test(raw)) continue;
    while (raw.endsWith('\\')) {
      raw = raw.slice(0, -1);
      // Comment lines inside a continued instruction are dropped, as Docker does.
      while (i < lines.length && /^\s*#/.test(lines[i]!)) i++;
      raw += ` ${lines[i++] ?? ''}`;
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(raw);
    if (!m) throw new Error(`Dockerfile:${startLine}: cannot parse "${raw}"`);
    const ins: Instruction = {
      keyword: m[1]!.toUpperCase(),
      args: m[2]!.replace(/\s+/g, ' ').trim(),
      line: startLine,
    };
    const here = /<<-?'?"?([A-Z_]+)'?"?/.exec(ins.args);
    if (here && (ins.keyword === 'COPY' || ins.keyword === 'RUN')) {
      const body: string[] = [];
      while (i < lines.length && lines[i] !== here[1]) body.push(lines[i++]!);
      if (i >= lines.length) throw new Error(`Dockerfile:${startLine}: unterminated heredoc`);
      i++;
      ins.heredoc = body.join('\n');
    }
    if (ins.keyword === 'FROM') {
      const from = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!from) throw new Error(`Dockerfile:${startLine}: bad FROM`);
      stages.push({ base: from[1]!, name: from[2] ?? String(stages.length), instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword !== 'ARG') throw new Error(`Dockerfile:${startLine}: ${ins.keyword} before FROM`);
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return stages;
}

const dockerfile = fs.readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(dockerfile);
const runtime = stages.at(-1)!;
const build = stages.find((s) => s.name === 'build');

function all(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((x) => x.keyword === keyword);
}

/** Packages named by `apt-get install` in a stage's RUN instructions. */
function aptPackages(stage: Stage): string[] {
  const out: string[] = [];
  for (const run of all(stage, 'RUN')) {
    for (const command of run.args.split(/&&|;|\|\|/)) {
      const words = command.trim().split(/\s+/);
      const at = words.findIndex((w, k) => w === 'install' && /apt(-get)?$/.test(words[k - 1] ?? ''));
      if (at < 0) continue;
      out.push(...words.slice(at + 1).filter((w) => !w.startsWith('-') && w !== '\\'));
    }
  }
  return out.map((p) => p.replace(/[=:].*$/, ''));
}

function exec(stage: Stage, keyword: string): string[] {
  const ins = all(stage, keyword).at(-1);
  if (!ins) throw new Error(`no ${keyword} in stage ${stage.name}`);
  const json = ins.args.slice(ins.args.indexOf('['));
  return JSON.parse(json) as string[];
}

void t.test('the Dockerfile parses into a build stage and a debian:bookworm-slim runtime stage', (t) => {
  t.ok(stages.length >= 2, 'multi-stage');
  t.ok(build, 'a stage named build');
  t.equal(runtime.base, 'debian:bookworm-slim');
  for (const s of stages)
    t.match(s.base, /bookworm/, `stage ${s.name} is on Debian 12 like the worker's libraries`);
  const names = stages.map((s) => s.name);
  for (const copy of all(runtime, 'COPY')) {
    const from = /--from=(\S+)/.exec(copy.args)?.[1];
    if (from) t.ok(names.slice(0, -1).includes(from), `COPY --from=${from} names an earlier stage`);
  }
  t.end();
});

void t.test('the runtime stage runs as a fixed non-root user', (t) => {
  const users = all(runtime, 'USER');
  t.ok(users.length > 0, 'USER is set');
  const user = users.at(-1)!.args.split(':')[0]!;
  t.notOk(['root', '0', ''].includes(user), `USER ${user} is not root`);
  t.match(user, /^\d+$/, 'numeric, so Kubernetes runAsNonRoot can verify it');
  const runs = all(runtime, 'RUN')
    .map((r) => r.args)
    .join('\n');
  t.match(runs, new RegExp(`useradd [^\\n]*--uid ${user}\\b`), 'that uid is created');
  const last = runtime.instructions.at(-1)!;
  t.ok(
    runtime.instructions.indexOf(users.at(-1)!) >
      runtime.instructions.findLastIndex((x) => x.keyword === 'RUN'),
    `no RUN after USER (last instruction: ${last.keyword})`,
  );
  t.end();
});

void t.test('the runtime stage installs no build toolchain', (t) => {
  const pkgs = aptPackages(runtime);
  t.ok(pkgs.length > 0, 'the runtime stage installs its libraries');
  const toolchain =
    /^(g\+\+.*|gcc.*|cpp|clang.*|make|cmake|meson|ninja-build|build-essential|pkg-config|python3.*|nodejs|npm|.*-dev)$/;
  t.same(
    pkgs.filter((p) => toolchain.test(p)),
    [],
    'no compiler, build tool or -dev package in the runtime image',
  );
  t.notMatch(
    all(runtime, 'RUN')
      .map((r) => r.args)
      .join('\n'),
    /\bnpm\b|\bnpx\b/,
    'no npm in the runtime stage',
  );
  t.ok(build && aptPackages(build).includes('g++'), 'the toolchain is in the build stage instead');
  t.end();
});

void t.test('the build stage builds the worker and the app the way developers and CI do', (t) => {
  if (!build) throw new Error('no build stage');
  const runs = all(build, 'RUN').map((r) => r.args);
  t.ok(
    runs.some((r) => /npm ci\b.*--ignore-scripts/.test(r)),
    'npm ci without install scripts (no worker download)',
  );
  t.ok(
    runs.some((r) => /node scripts\/build-worker\.mjs/.test(r)),
    'the worker is built by scripts/build-worker.mjs',
  );
  t.ok(
    runs.some((r) => /npm run build\b/.test(r)),
    'npm run build',
  );
  t.ok(
    runs.some((r) => /npm prune --omit=dev/.test(r)),
    'dev dependencies are pruned',
  );
  const setup = fs.readFileSync(path.join(repoRoot, 'scripts', 'setup.sh'), 'utf8');
  const buildPkgs = /build_pkgs=\(([^)]*)\)/.exec(setup)?.[1]?.trim().split(/\s+/) ?? [];
  t.ok(buildPkgs.length > 0, 'scripts/setup.sh lists the build packages');
  t.same(
    buildPkgs.filter((p) => !aptPackages(build).includes(p)),
    [],
    'the build stage installs every package scripts/setup.sh builds the worker with',
  );
  t.same(exec(runtime, 'CMD'), ['node', 'dist/src/main.js'], 'the image starts the built server');
  t.end();
});

const worker = path.join(
  repoRoot,
  'node_modules',
  'mediasoup',
  'worker',
  'out',
  'Release',
  'mediasoup-worker',
);
const onDebian = fs.existsSync('/var/lib/dpkg/status');
const lddSkip =
  fs.existsSync(worker) && onDebian
    ? false
    : `needs the built worker and dpkg (scripts/setup.sh provides both)`;
void t.test(
  'the runtime stage installs a package for every shared library the worker links',
  { skip: lddSkip },
  (t) => {
    const libs = execFileSync('ldd', [worker], { encoding: 'utf8' })
      .split('\n')
      .map((l) => /=>\s+(\/\S+)/.exec(l)?.[1])
      .filter((l): l is string => Boolean(l));
    t.ok(libs.length > 5, `ldd lists the worker's libraries (${libs.length})`);
    const owner = (file: string): string => {
      for (const candidate of [file, fs.realpathSync(file), file.replace(/^\/lib\//, '/usr/lib/')]) {
        try {
          const out = execFileSync('dpkg', ['-S', candidate], {
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'ignore'],
          });
          return out.split(':')[0]!;
        } catch {
          // try the next spelling of the path (usrmerge)
        }
      }
      throw new Error(`no Debian package owns ${file}`);
    };
    const needed = [...new Set(libs.map(owner))].sort();
    const installed = aptPackages(runtime);
    // In debian:bookworm-slim already: libc6, and libstdc++6/libgcc-s1 which apt itself needs.
    const base = ['libc6', 'libgcc-s1', 'libstdc++6'];
    const depends = new Set(
      installed.flatMap((p) => {
        try {
          const d = execFileSync('dpkg-query', ['-W', '-f=${Depends}', p], { encoding: 'utf8' });
          return d.split(/[,|]/).map((x) => x.trim().split(/[\s:(]/)[0]!);
        } catch {
          return [];
        }
      }),
    );
    const uncovered = needed.filter((p) => !installed.includes(p) && !base.includes(p) && !depends.has(p));
    t.same(uncovered, [], `every package of ${needed.join(', ')} is installed or pulled in`);
    const unneeded = installed.filter((p) => p.startsWith('lib') && !needed.includes(p));
    t.same(unneeded, [], 'no library package the worker does not link');
    t.end();
  },
);

void t.test('the health check exits 0 only when /healthz answers 200', async (t) => {
  const healthcheck = all(runtime, 'HEALTHCHECK').at(-1);
  t.match(healthcheck?.args ?? '', /\bCMD \[/, 'exec form, no shell needed');
  const argv = exec(runtime, 'HEALTHCHECK');
  t.equal(argv[0], 'node', 'node itself performs the check (no curl in the image)');
  const script = argv.slice(1);
  t.match(script.join(' '), /127\.0\.0\.1/, 'it targets loopback');

  let status = 200;
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(status).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const check = (env: NodeJS.ProcessEnv) =>
    new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, script, {
        env: { PATH: process.env.PATH, ...env },
        stdio: 'ignore',
      });
      child.on('exit', (code) => resolve(code));
    });

  t.equal(await check({ SFU_SERVER__PORT: String(port) }), 0, '200 -> healthy');
  t.same(paths, ['/healthz'], 'it asks /healthz');
  status = 503;
  t.equal(await check({ SFU_SERVER__PORT: String(port) }), 1, '503 -> unhealthy');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  t.equal(await check({ SFU_SERVER__PORT: String(port) }), 1, 'nothing listening -> unhealthy');
  t.match(script.join(' '), /\|\| 8080/, 'port 8080 unless SFU_SERVER__PORT says otherwise');
});

void t.test("the image's default config file is accepted by the server and fits a container", (t) => {
  const copy = all(runtime, 'COPY').find((c) => c.heredoc !== undefined && /config\.json$/.test(c.args));
  if (!copy?.heredoc) throw new Error('no embedded config.json');
  const target = copy.args.split(' ').at(-1)!;
  const envs = all(runtime, 'ENV')
    .map((e) => e.args)
    .join(' ');
  t.match(envs, new RegExp(`SFU_CONFIG=${target.replace(/\./g, '\\.')}\\b`), 'SFU_CONFIG points at it');
  t.notMatch(envs, /SFU_(?!CONFIG=)[A-Z]/, "no SFU_* override in the image (it would beat operators' files)");
  const config = resolveConfig(JSON.parse(copy.heredoc) as Parameters<typeof resolveConfig>[0]);
  t.equal(config.server.listenHost, '0.0.0.0');
  t.equal(config.media.listenIp, '0.0.0.0');
  t.equal(config.server.demoPage, false, 'no demo page in the image');
  const volumes = all(runtime, 'VOLUME')
    .map((v) => v.args)
    .join(' ');
  t.match(volumes, config.journal.dir, 'the journal directory is a volume');
  t.match(
    all(runtime, 'RUN')
      .map((r) => r.args)
      .join('\n'),
    new RegExp(`chown \\S+ ${config.journal.dir}`),
    'owned by the app user',
  );

  const exposed = all(runtime, 'EXPOSE').flatMap((e) => e.args.split(' '));
  t.ok(exposed.includes(`${config.server.port}/tcp`), `HTTP ${config.server.port}/tcp is exposed`);
  t.ok(exposed.includes(`${config.media.webRtcServerPort}/udp`), 'worker 0 media port, UDP');
  t.ok(exposed.includes(`${config.media.webRtcServerPort}/tcp`), 'worker 0 media port, TCP');
  t.end();
});

void t.test('.dockerignore keeps host build output, git history and local data out of the context', (t) => {
  const ignored = fs
    .readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const entry of ['node_modules', 'dist', '.git', 'data', '.env', '**/*.key', '**/*.pem']) {
    t.ok(ignored.includes(entry), `${entry} is ignored`);
  }
  for (const needed of ['src', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json']) {
    t.notOk(ignored.includes(needed), `${needed} reaches the build`);
  }
  t.end();
});

/** A port free for both UDP and TCP on loopback right now. */
async function freePort(): Promise<number> {
  const net = await import('node:net');
  const dgram = await import('node:dgram');
  for (;;) {
    const tcp = net.createServer();
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const port = (tcp.address() as AddressInfo).port;
    const udp = dgram.createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    udp.close();
    await new Promise<void>((resolve) => tcp.close(() => resolve()));
    if (ok) return port;
  }
}

const mainJs = path.join(repoRoot, 'dist', 'src', 'main.js');
const layoutSkip =
  fs.existsSync(worker) && fs.existsSync(mainJs) ? false : 'needs the built worker and dist/src/main.js';
void t.test(
  "the build stage's assembly step yields an app that starts, passes the health check and stops on SIGTERM",
  { skip: layoutSkip },
  async (t) => {
    const assemble = build && all(build, 'RUN').find((r) => r.args.includes('npm prune'));
    if (!assemble) throw new Error('no assembly RUN in the build stage');
    const tmp = fs.mkdtempSync(path.join(fs.realpathSync((await import('node:os')).tmpdir()), 'sfu-image-'));
    t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const src = path.join(tmp, 'src');
    const out = path.join(tmp, 'out');
    fs.mkdirSync(src);
    for (const item of ['package.json', 'package-lock.json', '.npmrc', 'dist', 'assets']) {
      const from = path.join(repoRoot, item);
      if (fs.existsSync(from)) execFileSync('cp', ['-a', from, path.join(src, item)]);
    }
    // Copying all of node_modules (20,000 files) takes half a minute here: copy the production
    // packages the lockfile names, plus one dev package that `npm prune --omit=dev` must remove.
    const lock = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const devSentinel = 'node_modules/yaml';
    const copied = Object.entries(lock.packages)
      .filter(
        ([key, info]) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(key) && (!info.dev || key === devSentinel),
      )
      .map(([key]) => key)
      .filter((key) => fs.existsSync(path.join(repoRoot, key)));
    for (const key of copied) {
      fs.mkdirSync(path.dirname(path.join(src, key)), { recursive: true });
      execFileSync('cp', ['-a', path.join(repoRoot, key), path.join(src, key)]);
    }
    t.ok(copied.includes('node_modules/mediasoup') && copied.includes(devSentinel), 'packages copied');
    // The instruction as written, with /out moved into the temporary directory.
    execFileSync('sh', ['-c', assemble.args.replace(/(^|[\s=])\/out(?=\/|\s|$)/g, `$1${out}`)], {
      cwd: src,
      stdio: 'ignore',
    });
    const mediasoupWorkerDir = path.join(out, 'node_modules', 'mediasoup', 'worker');
    t.same(
      execFileSync('find', [mediasoupWorkerDir, '-type', 'f'], { encoding: 'utf8' }).trim().split('\n'),
      [path.join(mediasoupWorkerDir, 'out', 'Release', 'mediasoup-worker')],
      'only the worker binary is left of the C++ sources',
    );
    t.notOk(fs.existsSync(path.join(out, devSentinel)), 'dev dependencies are pruned');
    t.ok(fs.existsSync(path.join(out, 'node_modules', 'ws')), 'production dependencies stay');

    // The image's own config file, moved to loopback and free ports (tests never bind other addresses).
    const copy = all(runtime, 'COPY').find((c) => c.heredoc !== undefined && /config\.json$/.test(c.args));
    const imageConfig = JSON.parse(copy?.heredoc ?? '{}') as {
      server: Record<string, unknown>;
      media: Record<string, unknown>;
      journal: Record<string, unknown>;
    };
    const [httpPort, rtcPort] = [await freePort(), await freePort()];
    imageConfig.server.listenHost = '127.0.0.1';
    imageConfig.server.port = httpPort;
    imageConfig.server.shutdownDeadlineS = 5;
    imageConfig.media.listenIp = '127.0.0.1';
    imageConfig.media.webRtcServerPort = rtcPort;
    imageConfig.journal.dir = path.join(tmp, 'data');
    fs.writeFileSync(path.join(tmp, 'config.json'), JSON.stringify(imageConfig));

    const [cmd, ...args] = exec(runtime, 'CMD');
    const child = spawn(cmd === 'node' ? process.execPath : cmd!, args, {
      cwd: out,
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'production',
        SFU_CONFIG: path.join(tmp, 'config.json'),
        SFU_AUTH__TOKEN_SECRET: 'image-test-token-secret',
      },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    const health = exec(runtime, 'HEALTHCHECK').slice(1);
    let healthy = false;
    for (let i = 0; i < 60 && !healthy && child.exitCode === null; i++) {
      const code = await new Promise<number | null>((resolve) => {
        const probe = spawn(process.execPath, health, {
          env: { PATH: process.env.PATH, SFU_SERVER__PORT: String(httpPort) },
          stdio: 'ignore',
        });
        probe.on('exit', resolve);
      });
      healthy = code === 0;
      if (!healthy) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    t.ok(healthy, 'the HEALTHCHECK command reports healthy');
    const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
    t.equal(ready.status, 200, 'ready: the worker started from the trimmed package');
    child.kill('SIGTERM');
    t.equal(await exited, 0, 'SIGTERM drains and exits 0');
  },
);

# syntax=docker/dockerfile:1.7
#
# teleconsult-sfu container image.
#
#   docker build -t teleconsult-sfu:0.1.0 \
#     --build-context mediasoup-sources=../shared/vendor/mediasoup-worker-sources .
#   docker run --rm -p 8080:8080 -p 40000:40000/udp -p 40000:40000/tcp \
#     -e SFU_MEDIA__ANNOUNCED_ADDRESS=203.0.113.10 -e SFU_AUTH__TOKEN_SECRET=... \
#     -v sfu-data:/var/lib/teleconsult-sfu teleconsult-sfu:0.1.0
#
# Three stages:
#   node     the official Node 24 LTS image, used only as the source of the `node` binary.
#   build    compiles mediasoup-worker from the `mediasoup-sources` build context, offline
#            (scripts/build-worker.mjs, the same script developers and CI use; docs/engine.md), and
#            the TypeScript sources, then prunes dev dependencies.
#   runtime  debian:bookworm-slim with only the shared libraries the worker links, the node binary,
#            and the built app; runs as an unprivileged user.
#
# Why debian:bookworm-slim for the runtime: the worker links Debian's OpenSSL (libssl3) as a shared
# library, which Debian's security team keeps patched; `apt-get upgrade` in a rebuild picks up its
# fixes without recompiling. Its other dependencies (libuv, libsrtp, FlatBuffers, abseil) are the
# versions mediasoup pins, linked statically. The worker must run on the Debian release it was built
# on: every stage below is bookworm.
#
# Ops should pin both base images by digest (`FROM debian:bookworm-slim@sha256:...`) in their build
# pipeline; the tags here are the readable defaults.

ARG NODE_VERSION=24

# ---------------------------------------------------------------------------------------------------
# Why copy node out of the official image instead of `apt-get install nodejs`: Debian 12 ships Node 18,
# and the server needs Node >= 24 (package.json engines; Node 20 is end of life since April 2026).
# The official node:*-bookworm-slim images are built for this same Debian release, so their `node` binary needs only libc, libstdc++ and libgcc,
# all present in debian:bookworm-slim. NodeSource's apt repository would also work but adds a
# third-party signing key to the runtime image.
FROM node:${NODE_VERSION}-bookworm-slim AS node

# ---------------------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS build

# The worker's build dependencies (scripts/setup.sh's build_pkgs): compiler, ninja, python3 for the
# meson in the source folder, and Debian's OpenSSL headers. They stay in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      g++ ninja-build pkg-config python3 libssl-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Dependencies first so this layer is reused while only sources change. --ignore-scripts: mediasoup's
# postinstall would download a prebuilt worker (or build with downloaded sources); we build our own
# worker below, and no other dependency needs an install script to run.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts --no-audit --no-fund

# The worker build takes ~20 minutes on 2 cores; the BuildKit cache mount keeps the binary (keyed by
# mediasoup version and the build script's hash) across image builds. The sources come from the
# `mediasoup-sources` build context (the folder CI and air-gapped pipelines keep; each file is
# checked against the SHA-256 pinned in the script), mounted read-only for this step only.
COPY scripts/ scripts/
RUN --mount=type=cache,target=/var/cache/teleconsult-sfu \
    --mount=type=bind,from=mediasoup-sources,target=/mediasoup-sources \
    MEDIASOUP_WORKER_CACHE=/var/cache/teleconsult-sfu MEDIASOUP_SOURCES=/mediasoup-sources \
    node scripts/build-worker.mjs

# Sources, then `npm run build` (tsc to dist/ and the SDK bundle). .dockerignore keeps tests, bench,
# helm and local build output out of the context.
COPY . .
RUN npm run build

# Assemble exactly what runs: production dependencies, the worker binary without its C++ sources,
# the compiled app and its static assets. Optional folders are copied only when the app has them.
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && mkdir -p /out/node_modules \
 && cp -a node_modules/. /out/node_modules/ \
 && worker=/out/node_modules/mediasoup/worker \
 && find "$worker" -mindepth 1 -maxdepth 1 ! -name out -exec rm -rf {} + \
 && find "$worker/out" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} + \
 && find "$worker/out/Release" -mindepth 1 -maxdepth 1 ! -name mediasoup-worker -exec rm -rf {} + \
 && test -x "$worker/out/Release/mediasoup-worker" \
 && cp -a package.json dist /out/ \
 && for optional in assets config public; do if [ -d "$optional" ]; then cp -a "$optional" /out/; fi; done

# ---------------------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# Runtime libraries only: exactly the packages owning the shared libraries `ldd mediasoup-worker`
# lists on Debian 12 (OpenSSL and the C++ runtime), plus ca-certificates for webhooks and JWKS over
# HTTPS, and tini as PID 1. libstdc++6, libgcc-s1 and libc6 are already in the
# base image and are also what the node binary needs. tests/helm/dockerfile.test.ts checks this list
# against the worker binary built on the test machine.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libssl3 libstdc++6 \
      ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*

COPY --from=node /usr/local/bin/node /usr/local/bin/node

# A fixed numeric uid/gid so Kubernetes' runAsNonRoot can verify it and volume ownership is stable.
RUN groupadd --system --gid 10001 sfu \
 && useradd --system --uid 10001 --gid sfu --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin sfu \
 && mkdir -p /var/lib/teleconsult-sfu /etc/teleconsult-sfu \
 && chown sfu:sfu /var/lib/teleconsult-sfu

# Container defaults, as a config file rather than environment variables: environment overrides beat
# the file, so an ENV here would silently win over an operator's own file. Mount your own file over
# this path (the Helm chart does) or point SFU_CONFIG elsewhere; it replaces this one as a whole, so
# keep listenHost and media.listenIp at 0.0.0.0 in it. The demo page is off: it creates consultations
# without the platform's API key.
COPY <<'EOF' /etc/teleconsult-sfu/config.json
{
  "server": { "listenHost": "0.0.0.0", "port": 8080, "demoPage": false },
  "media": { "listenIp": "0.0.0.0", "webRtcServerPort": 40000, "workers": 1 },
  "journal": { "dir": "/var/lib/teleconsult-sfu" }
}
EOF

WORKDIR /app
# Owned by root and not writable by the app user: the app never writes to its own code.
COPY --from=build /out/ /app/

ENV NODE_ENV=production \
    SFU_CONFIG=/etc/teleconsult-sfu/config.json

# The journal and the webhook outbox: keep this on a persistent volume.
VOLUME ["/var/lib/teleconsult-sfu"]

# HTTP + WebSocket signalling, /healthz, /readyz, /metrics.
EXPOSE 8080/tcp
# WebRtcServer of worker 0 (worker i listens on 40000+i, UDP and TCP): with media.workers = N, publish
# 40000..40000+N-1. Plain transports (phone gateway) use media.rtcMinPort..rtcMaxPort (UDP).
EXPOSE 40000/udp 40000/tcp

USER 10001:10001

# Liveness from inside the container with node itself (no curl in the image). The port follows
# SFU_SERVER__PORT when set, else 8080: set that variable if your config file moves the port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.SFU_SERVER__PORT || 8080) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"]

# tini as PID 1 forwards SIGTERM to node (which starts the graceful drain) and reaps any orphan; node
# as PID 1 would ignore SIGTERM until the app installs its handler.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/main.js"]

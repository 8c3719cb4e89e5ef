import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/observability/logger.js';
import { SfuServer } from '../../src/server.js';
import { signJoinToken, type TokenGrant } from '../../src/auth/joinTokens.js';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** Test files run in parallel processes (and beside other suites): pick media ports at random. */
function randomWebRtcPort(): number {
  return 20000 + 4 * Math.floor(Math.random() * 4000);
}

/** Builds a loopback-only configuration for tests; each server gets its own media ports. */
export function testConfig(overrides: DeepPartial<Config> = {}): Config {
  const webRtcServerPort = randomWebRtcPort();
  const raw = {
    ...overrides,
    server: { listenHost: '127.0.0.1', port: 0, shutdownDeadlineS: 0, ...overrides.server },
    media: { workers: 1, listenIp: '127.0.0.1', webRtcServerPort, ...overrides.media },
    auth: {
      tokenSecret: 'test-secret-0123456789abcdef',
      apiKeys: ['test-api-key-0123456789'],
      ...overrides.auth,
    },
    log: { level: process.env.TEST_LOG_LEVEL ?? 'silent', ...overrides.log },
    journal: { dir: fs.mkdtempSync(path.join(os.tmpdir(), 'sfu-journal-')), ...overrides.journal },
  };
  return resolveConfig(JSON.parse(JSON.stringify(raw)) as Parameters<typeof resolveConfig>[0]);
}

export interface TestServer {
  server: SfuServer;
  /** http://127.0.0.1:PORT */
  url: string;
  /** ws://127.0.0.1:PORT/ws */
  wsUrl: string;
  apiKey: string;
  /** Signs a join token with the test secret. */
  token(grant: Omit<TokenGrant, 'ttlS'> & { ttlS?: number }): Promise<string>;
  /** Calls the REST API with the API key. */
  rest<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  stop(): Promise<void>;
}

/** Starts a real server (real mediasoup workers) on loopback with an ephemeral port. */
export async function startTestServer(overrides: DeepPartial<Config> = {}): Promise<TestServer> {
  let config = testConfig(overrides);
  let server = new SfuServer(config, createLogger(config.log.level));
  for (let attempt = 1; ; attempt++) {
    try {
      await server.start();
      break;
    } catch (err) {
      // Another process took the random media port: try another one.
      if (attempt >= 5 || !/address already in use/.test((err as Error).message)) throw err;
      config = testConfig(overrides);
      server = new SfuServer(config, createLogger(config.log.level));
    }
  }
  const url = `http://127.0.0.1:${server.address.port}`;
  const apiKey = server.apiKeys[0] as string;
  return {
    server,
    url,
    wsUrl: `ws://127.0.0.1:${server.address.port}/ws`,
    apiKey,
    token: (grant) => signJoinToken(server.tokenSecret, config.auth.tokenAudience, { ttlS: 300, ...grant }),
    async rest<T>(method: string, path: string, body?: unknown) {
      const res = await fetch(url + path, {
        method,
        headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
    },
    stop: () => server.stop(0),
  };
}

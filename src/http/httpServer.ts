import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { WorkerPool } from '../media/workerPool.js';
import type { RoomRegistry } from '../rooms/roomRegistry.js';
import { SfuError, isSfuError } from '../errors/catalogue.js';
import type { RestApi } from '../rest/restApi.js';
import { sendError, sendJson } from '../rest/restApi.js';
import { openApiDocument } from '../rest/openapi.js';
import { SIGNALLING_PATH, type SignallingServer } from '../signalling/wsServer.js';
import { serveStatic } from './staticFiles.js';
import { sdkCorsHeaders } from './cors.js';
import type { DemoEndpoint } from './demo.js';

/**
 * How often Node looks for clients over headersTimeout/requestTimeout. Its default (30 s) let a
 * slow client that drips its headers hold a connection up to 40 s instead of 10.
 */
const SLOW_CLIENT_CHECK_MS = 1000;

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const PUBLIC_DIR = path.join(projectRoot, 'public');
const SDK_DIR = path.join(projectRoot, 'dist', 'sdk');

export interface HttpDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  pool: WorkerPool;
  rooms: RoomRegistry;
  rest: RestApi;
  signalling: SignallingServer;
  demo: DemoEndpoint | undefined;
  version: string;
  /** The journal's public keys, served unauthenticated at JOURNAL_KEYS_PATH. */
  journalKeys: () => unknown;
}

/** Where verifiers fetch the keys that sign journal checkpoints (docs/journal.md). */
export const JOURNAL_KEYS_PATH = '/.well-known/teleconsult-journal-keys.json';

/** Health, readiness, metrics, the REST API, the try-it page, and the signalling upgrade path. */
export class HttpServer {
  readonly server: http.Server;

  constructor(private readonly deps: HttpDeps) {
    const { tlsCertFile, tlsKeyFile } = deps.config.server;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void this.onRequest(req, res);
    this.server =
      tlsCertFile && tlsKeyFile
        ? https.createServer(
            {
              cert: fs.readFileSync(tlsCertFile),
              key: fs.readFileSync(tlsKeyFile),
              connectionsCheckingInterval: SLOW_CLIENT_CHECK_MS,
            },
            handler,
          )
        : http.createServer({ connectionsCheckingInterval: SLOW_CLIENT_CHECK_MS }, handler);
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    this.server.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) => {
      const pathname = (req.url ?? '/').split('?')[0];
      if (pathname !== SIGNALLING_PATH) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      deps.signalling.handleUpgrade(req, socket, head);
    });
  }

  async listen(): Promise<AddressInfo> {
    const { listenHost, port } = this.deps.config.server;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, listenHost, () => resolve());
    });
    return this.server.address() as AddressInfo;
  }

  /**
   * Stops accepting, lets requests in flight (e.g. the DELETE that ended the last room) finish,
   * and cuts whatever is still open after a second rather than waiting for keep-alive timeouts.
   */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const cut = setTimeout(() => this.server.closeAllConnections(), 1000);
    await closed;
    clearTimeout(cut);
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const pathname = (req.url ?? '/').split('?')[0] ?? '/';
    const route = await this.dispatch(req, res, pathname).catch((err: unknown) => {
      if (isSfuError(err)) sendError(res, err);
      else {
        this.deps.log.error({ err: (err as Error).message }, 'HTTP request failed');
        if (!res.headersSent) sendError(res, new SfuError('INTERNAL'));
      }
      return 'error';
    });
    this.deps.metrics.httpRequests.inc({ route, status: String(res.statusCode) });
  }

  /** Returns a low-cardinality route label for metrics. */
  private async dispatch(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    pathname: string,
  ): Promise<string> {
    const { pool, rooms, metrics } = this.deps;
    switch (pathname) {
      case '/healthz':
        sendJson(res, 200, { status: 'ok' });
        return 'healthz';
      case '/readyz': {
        const ready = pool.allAlive && !rooms.draining;
        sendJson(res, ready ? 200 : 503, { ready, draining: rooms.draining, workers: pool.size });
        return 'readyz';
      }
      case '/metrics': {
        await Promise.all([pool.sampleResourceUsage(), rooms.sampleBitrates()]);
        metrics.participants.reset();
        for (const [state, count] of rooms.participantCounts()) metrics.participants.set({ state }, count);
        const body = await metrics.registry.metrics();
        res.writeHead(200, { 'Content-Type': metrics.registry.contentType });
        res.end(body);
        return 'metrics';
      }
      case '/openapi.json':
        sendJson(res, 200, openApiDocument(this.deps.version));
        return 'openapi';
      case JOURNAL_KEYS_PATH:
        sendJson(res, 200, this.deps.journalKeys());
        return 'journal-keys';
    }
    if (await this.deps.rest.handle(req, res, pathname)) return 'rest';
    // The SDK bundle is public code: served whether or not the try-it page is, to the origins
    // configured for platforms' front ends.
    if (
      (req.method === 'GET' || req.method === 'HEAD') &&
      pathname.startsWith('/sdk/') &&
      (await serveStatic(res, SDK_DIR, pathname.slice(5), {
        headOnly: req.method === 'HEAD',
        headers: sdkCorsHeaders(this.deps.config.server.sdkCorsOrigins, req.headers.origin),
      }))
    ) {
      return 'static';
    }
    if (this.deps.demo) {
      if (pathname === '/demo/consultations' && req.method === 'POST') {
        await this.deps.demo.create(res);
        return 'demo';
      }
      if (req.method === 'GET') {
        const file = pathname === '/' ? 'index.html' : pathname.slice(1);
        if (await serveStatic(res, PUBLIC_DIR, file)) return 'static';
      }
    }
    sendError(res, new SfuError('NOT_FOUND'));
    return 'not-found';
  }
}

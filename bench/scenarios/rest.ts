import { createRequire } from 'node:module';
import { ErrorLog, hostInfo, measureServer } from '../harness/scenarioReport.js';
import type { ScenarioReport, ServerUsage } from '../harness/scenarioReport.js';
import { TargetError } from '../harness/target.js';
import type { SelfTarget } from '../targets/self/target.js';

/** The part of autocannon's API and results we use (the package ships no types). */
interface AutocannonRequest {
  method?: string;
  path?: string;
  body?: string;
  setupRequest?: (request: AutocannonRequest) => AutocannonRequest;
}

interface AutocannonOptions {
  url: string;
  connections: number;
  duration: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  timeout?: number;
  requests?: AutocannonRequest[];
}

interface Histogram {
  average: number;
  p50: number;
  p90: number;
  p97_5: number;
  p99: number;
  max: number;
}

interface AutocannonResult {
  requests: Histogram & { total: number; sent: number };
  latency: Histogram;
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
}

type Autocannon = (
  options: AutocannonOptions,
  done: (error: Error | null, result: AutocannonResult) => void,
) => unknown;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

function fire(options: AutocannonOptions): Promise<AutocannonResult> {
  return new Promise((resolve, reject) => {
    autocannon(options, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

export interface RestOptions {
  /** Concurrent HTTP connections (keep-alive, one request in flight each). */
  connections: number;
  /** Seconds per endpoint. */
  durationS: number;
  workers: number;
  progress: (line: string) => void;
  log: (line: string) => void;
}

export interface EndpointResult {
  requests: number;
  /** Completed requests per second, averaged over the run. */
  perS: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; average: number };
  errors: number;
  non2xx: number;
}

export interface RestResults {
  createRoom: EndpointResult;
  readRoom: EndpointResult;
}

function endpoint(result: AutocannonResult): EndpointResult {
  return {
    requests: result.requests.total,
    perS: result.duration > 0 ? result.requests.total / result.duration : 0,
    latencyMs: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
      average: result.latency.average,
    },
    errors: result.errors,
    non2xx: result.non2xx,
  };
}

/**
 * Scenario `rest`: the platform REST API under autocannon: `POST /v1/rooms` (each creates a room,
 * its mediasoup router and its journal), then `GET /v1/rooms/{id}` over a set of existing rooms.
 */
export async function runRest(
  target: SelfTarget,
  options: RestOptions,
): Promise<ScenarioReport<RestResults>> {
  const startedAt = new Date();
  const began = performance.now();
  // Every POST creates a room that stays: lift the room cap so the rate, not the cap, ends the run.
  target.configure({ SFU_LIMITS__MAX_ROOMS: '1000000' });
  await target.start({ workers: options.workers, maxSessions: 1, log: options.log });
  const workers = target.serverPids().workers.length;
  const errors = new ErrorLog();
  try {
    const api = target.platform;
    const url = target.server.url;
    const headers = {
      authorization: `Bearer ${target.server.apiKey}`,
      'content-type': 'application/json',
    };
    const server: Record<string, ServerUsage> = {};

    options.progress(`rest: POST /v1/rooms for ${options.durationS} s`);
    let usage = measureServer(target.serverPids());
    const create = await fire({
      url: `${url}/v1/rooms`,
      connections: options.connections,
      duration: options.durationS,
      method: 'POST',
      headers,
      body: JSON.stringify({ options: { waitingRoom: true } }),
    });
    server.createRoom = usage.end();

    const ids = await Promise.all(Array.from({ length: 100 }, () => api.createRoom({ waitingRoom: true })));
    let next = 0;
    options.progress(`rest: GET /v1/rooms/{id} for ${options.durationS} s`);
    usage = measureServer(target.serverPids());
    const read = await fire({
      url,
      connections: options.connections,
      duration: options.durationS,
      headers,
      requests: [
        {
          method: 'GET',
          setupRequest: (request) => ({ ...request, path: `/v1/rooms/${ids[next++ % ids.length]}` }),
        },
      ],
    });
    server.readRoom = usage.end();

    const results = { createRoom: endpoint(create), readRoom: endpoint(read) };
    if (results.createRoom.requests === 0 && results.readRoom.requests === 0)
      throw new TargetError('no REST request completed');
    for (const [name, r] of Object.entries(results)) {
      if (r.errors + r.non2xx > 0) errors.note(`${name}: ${r.errors} errors, ${r.non2xx} non-2xx answers`);
    }
    const latency = (r: EndpointResult) => ({
      p50: r.latencyMs.p50,
      p95: r.latencyMs.p90,
      p99: r.latencyMs.p99,
      samples: r.requests,
      max: r.latencyMs.max,
    });
    return {
      scenario: 'rest',
      target: target.name,
      workers,
      startedAt: startedAt.toISOString(),
      elapsedS: (performance.now() - began) / 1000,
      host: hostInfo(),
      parameters: { connections: options.connections, durationS: options.durationS },
      results,
      latenciesMs: { createRoom: latency(results.createRoom), readRoom: latency(results.readRoom) },
      server,
      failures:
        results.createRoom.errors +
        results.createRoom.non2xx +
        results.readRoom.errors +
        results.readRoom.non2xx,
      errors: errors.messages,
      notes: [
        'autocannon runs in the load generator process, sharing the host with the server.',
        'autocannon reports p90, not p95: the latency tables show p90 in the p95 column for this scenario.',
        'POST /v1/rooms creates a real room (a mediasoup router on a worker and a journal); rooms created ' +
          'in the first phase stay while GET /v1/rooms/{id} runs over 100 of them.',
      ],
    };
  } finally {
    await target.stop();
  }
}

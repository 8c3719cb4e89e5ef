import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every Prometheus series the server exports, in one registry. Modules import the instruments
 * they update; nothing else creates metrics.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly workerCpuSeconds = new Gauge({
    name: 'sfu_worker_cpu_seconds',
    help: 'CPU time (user+system) consumed by a mediasoup worker process.',
    labelNames: ['worker', 'pid'],
    registers: [this.registry],
  });
  readonly workerMaxRssBytes = new Gauge({
    name: 'sfu_worker_max_rss_bytes',
    help: 'Peak resident memory of a mediasoup worker process.',
    labelNames: ['worker', 'pid'],
    registers: [this.registry],
  });
  readonly workerRouters = new Gauge({
    name: 'sfu_worker_routers',
    help: 'Routers (rooms or room parts) hosted by a worker.',
    labelNames: ['worker'],
    registers: [this.registry],
  });
  readonly workerDeaths = new Counter({
    name: 'sfu_worker_deaths_total',
    help: 'mediasoup workers that died unexpectedly and were replaced.',
    registers: [this.registry],
  });
  readonly workersAlive = new Gauge({
    name: 'sfu_workers_alive',
    help: 'mediasoup workers currently running.',
    registers: [this.registry],
  });
  readonly rooms = new Gauge({ name: 'sfu_rooms', help: 'Open rooms.', registers: [this.registry] });
  readonly participants = new Gauge({
    name: 'sfu_participants',
    help: 'Participants by admission state.',
    labelNames: ['state'],
    registers: [this.registry],
  });
  readonly transports = new Gauge({ name: 'sfu_transports', help: 'Open WebRTC transports.', registers: [this.registry] });
  readonly producers = new Gauge({
    name: 'sfu_producers',
    help: 'Open producers by kind.',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly consumers = new Gauge({
    name: 'sfu_consumers',
    help: 'Open consumers by kind.',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly transportBitrate = new Gauge({
    name: 'sfu_transport_bitrate_bps',
    help: 'Sum over transports of the last sampled bitrate, by direction.',
    labelNames: ['direction'],
    registers: [this.registry],
  });
  readonly wsConnections = new Gauge({
    name: 'sfu_ws_connections',
    help: 'Open signalling WebSocket connections.',
    registers: [this.registry],
  });
  readonly wsMessages = new Counter({
    name: 'sfu_ws_messages_total',
    help: 'Signalling requests handled, by method and outcome.',
    labelNames: ['method', 'outcome'],
    registers: [this.registry],
  });
  readonly rejections = new Counter({
    name: 'sfu_rejections_total',
    help: 'Requests and connections refused, by error code.',
    labelNames: ['code'],
    registers: [this.registry],
  });
  readonly joinSeconds = new Histogram({
    name: 'sfu_join_seconds',
    help: 'Time from WebSocket open to join answered.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: 'sfu_http_requests_total',
    help: 'HTTP requests, by route and status.',
    labelNames: ['route', 'status'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'sfu_process_' });
  }
}

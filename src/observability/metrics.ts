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
  readonly transports = new Gauge({
    name: 'sfu_transports',
    help: "Open transports: participants' WebRTC transports and phone legs' plain transports.",
    registers: [this.registry],
  });
  readonly iceDisconnects = new Counter({
    name: 'sfu_ice_disconnects_total',
    help: "WebRTC transports whose ICE turned 'disconnected': no consent check for media.iceConsentTimeoutS (a silent peer) or the last TCP connection closed.",
    registers: [this.registry],
  });
  readonly dataMessagesDropped = new Counter({
    name: 'sfu_data_messages_dropped_total',
    help: 'Data-channel messages the worker dropped because their data producer was over its rate limit (held paused), by channel class (vital-signs, application).',
    labelNames: ['channel'],
    registers: [this.registry],
  });
  readonly dataProducersFloodClosed = new Counter({
    name: 'sfu_data_producers_flood_closed_total',
    help: 'Data producers closed because they stayed over their rate limit for dataChannels.floodCloseS (DATA_RATE_EXCEEDED), by channel class.',
    labelNames: ['channel'],
    registers: [this.registry],
  });
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

  readonly roomSpans = new Gauge({
    name: 'sfu_room_span_routers',
    help: 'Extra routers rooms use on other workers once their own router is full (pipeToRouter).',
    registers: [this.registry],
  });
  readonly pipedProducers = new Counter({
    name: 'sfu_piped_producers_total',
    help: 'Producers and data producers piped from one router of a room to another.',
    registers: [this.registry],
  });

  constructor() {
    // A 100 ms event-loop sampling resolution: the default 10 ms wakes an idle server 100 times a second.
    collectDefaultMetrics({ register: this.registry, prefix: 'sfu_', eventLoopMonitoringPrecision: 100 });
  }

  // Journal and webhook outbox (src/journal, src/webhooks).
  readonly journalAppends = new Counter({
    name: 'sfu_journal_appends_total',
    help: 'Journal records acknowledged (on disk), by event type.',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly journalAppendFailures = new Counter({
    name: 'sfu_journal_append_failures_total',
    help: 'Journal appends refused or failed, by error code.',
    labelNames: ['code'],
    registers: [this.registry],
  });
  readonly journalPendingAppends = new Gauge({
    name: 'sfu_journal_pending_appends',
    help: 'Journal appends waiting for the disk.',
    registers: [this.registry],
  });
  readonly journalFsyncBatches = new Counter({
    name: 'sfu_journal_fsync_batches_total',
    help: 'Group-commit writes (one write and one fdatasync each) made by journals.',
    registers: [this.registry],
  });
  readonly journalFsyncSeconds = new Histogram({
    name: 'sfu_journal_fsync_seconds',
    help: 'Duration of one journal group commit (write and fdatasync).',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly journalOpen = new Gauge({
    name: 'sfu_journal_open',
    help: 'Journals currently open (file handle held).',
    registers: [this.registry],
  });
  readonly journalDeleted = new Counter({
    name: 'sfu_journal_deleted_total',
    help: 'Journals deleted by the retention sweep.',
    registers: [this.registry],
  });
  readonly journalCorrupt = new Counter({
    name: 'sfu_journal_corrupt_total',
    help: 'Journals found corrupt on open (a complete line that does not verify) and moved aside.',
    registers: [this.registry],
  });
  readonly webhookEnqueued = new Counter({
    name: 'sfu_webhook_enqueued_total',
    help: 'Webhook deliveries persisted in the outbox, by event type.',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly webhookPending = new Gauge({
    name: 'sfu_webhook_pending',
    help: 'Webhook deliveries persisted and not yet delivered or given up.',
    registers: [this.registry],
  });
  readonly webhookAttempts = new Counter({
    name: 'sfu_webhook_attempts_total',
    help: 'Webhook POST attempts, by outcome (2xx, 4xx, 5xx, error).',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly webhookDelivered = new Counter({
    name: 'sfu_webhook_delivered_total',
    help: 'Webhook deliveries acknowledged with a 2xx and recorded.',
    registers: [this.registry],
  });
  readonly webhookFailed = new Counter({
    name: 'sfu_webhook_failed_total',
    help: 'Webhook deliveries given up after the last attempt.',
    registers: [this.registry],
  });
  readonly webhookFsyncBatches = new Counter({
    name: 'sfu_webhook_fsync_batches_total',
    help: 'Group-commit writes (one write and one fdatasync each) made by the webhook outbox.',
    registers: [this.registry],
  });

  readonly sipMessages = new Counter({
    name: 'sfu_sip_messages_total',
    help: 'SIP messages received by the phone gateway, by transport and kind (request method or response).',
    labelNames: ['transport', 'kind'],
    registers: [this.registry],
  });
  readonly sipMalformed = new Counter({
    name: 'sfu_sip_malformed_total',
    help: 'SIP messages refused as malformed, by transport and whether a 400 was sent.',
    labelNames: ['transport', 'answered'],
    registers: [this.registry],
  });
  readonly sipRefused = new Counter({
    name: 'sfu_sip_refused_total',
    help: 'SIP requests refused before a call started, by SIP status.',
    labelNames: ['status'],
    registers: [this.registry],
  });
  readonly sipCalls = new Gauge({
    name: 'sfu_sip_calls',
    help: 'Phone calls in progress, by direction.',
    labelNames: ['direction'],
    registers: [this.registry],
  });
  readonly sipCallsEnded = new Counter({
    name: 'sfu_sip_calls_ended_total',
    help: 'Phone calls ended, by direction and reason.',
    labelNames: ['direction', 'reason'],
    registers: [this.registry],
  });
  readonly sipPinAttempts = new Counter({
    name: 'sfu_sip_pin_attempts_total',
    help: 'PIN entries, by outcome (accepted, rejected, locked).',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly sipPinLockouts = new Counter({
    name: 'sfu_sip_pin_lockouts_total',
    help: 'PIN lockouts of a caller number started, by scope (caller).',
    labelNames: ['scope'],
    registers: [this.registry],
  });
  readonly sipPinThrottled = new Counter({
    name: 'sfu_sip_pin_throttled_total',
    help: 'PIN checks that waited for the global PIN attempt budget.',
    registers: [this.registry],
  });
  readonly sipPinBudgetExhausted = new Gauge({
    name: 'sfu_sip_pin_budget_exhausted',
    help: '1 while callers wait for the global PIN attempt budget (a sign of PIN guessing: alert on it).',
    registers: [this.registry],
  });
  readonly sipRegistered = new Gauge({
    name: 'sfu_sip_registered',
    help: '1 while the gateway holds a registration with the configured registrar.',
    registers: [this.registry],
  });

  // Bandwidth adaptation and network quality (src/quality).
  readonly qualityModeChanges = new Counter({
    name: 'sfu_quality_mode_changes_total',
    help: "Receivers' media mode changes (full, reduced, audio-only), by new mode and reason.",
    labelNames: ['mode', 'reason'],
    registers: [this.registry],
  });
  readonly qualityAudioOnlyReceivers = new Gauge({
    name: 'sfu_quality_audio_only_receivers',
    help: 'Receivers whose video is paused because their bandwidth carries only audio.',
    registers: [this.registry],
  });
  readonly qualityScores = new Histogram({
    name: 'sfu_quality_score',
    help: 'Network quality scores pushed to participants (0 unusable to 5 excellent).',
    buckets: [0, 1, 2, 3, 4, 5],
    registers: [this.registry],
  });
  readonly qualityIncidents = new Counter({
    name: 'sfu_quality_incidents_total',
    help: 'Sustained poor network quality periods recorded as incidents, by kind.',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly qualityPublishAdvice = new Counter({
    name: 'sfu_quality_publish_advice_total',
    help: 'Advice sent to senders to send fewer (down) or more (up) simulcast layers.',
    labelNames: ['direction'],
    registers: [this.registry],
  });
  readonly qualitySampleSeconds = new Histogram({
    name: 'sfu_quality_sample_seconds',
    help: "Duration of one room's sampling round (stats requests and decisions).",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly layerChanges = new Counter({
    name: 'sfu_layer_changes_total',
    help: 'Preferred simulcast layers set by the quality policy, by direction and cause.',
    labelNames: ['direction', 'cause'],
    registers: [this.registry],
  });
  readonly layerForwardedChanges = new Counter({
    name: 'sfu_layer_forwarded_changes_total',
    help: 'Changes of the spatial layer a video consumer actually forwards, by new layer (none when paused or starved).',
    labelNames: ['spatial'],
    registers: [this.registry],
  });
  readonly layerKeyframeRequests = new Counter({
    name: 'sfu_layer_keyframe_requests_total',
    help: 'Keyframe requests by the quality policy, sent or suppressed by the rate limit.',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
}

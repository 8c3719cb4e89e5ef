import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/schema.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { WorkerPool } from './media/workerPool.js';
import { RoomRegistry } from './rooms/roomRegistry.js';
import { JoinTokenVerifier, randomSecret } from './auth/joinTokens.js';
import { SignallingServer } from './signalling/wsServer.js';
import { RestApi } from './rest/restApi.js';
import { HttpServer } from './http/httpServer.js';
import { DemoEndpoint } from './http/demo.js';
import { attachQualityControl } from './quality/roomQuality.js';
import type { JournalStore } from './journal/index.js';
import { keySetDocument, type JournalKeyring } from './journal/signing.js';
import { openJournalStores, type JournalStores } from './journal/openStores.js';
import { reconcileEndedWebhooks, type WebhookOutbox } from './webhooks/index.js';
import { ConsentRegistry } from './consent/consentRegistry.js';
import { InvitationStore, DEFAULT_ACCESS_CODE_POLICY, type Invitation } from './auth/invitations.js';
import { ConsultationRecord } from './rooms/consultationRecord.js';
import { ClusterNode } from './cluster/clusterNode.js';
import { roomServiceFor } from './rooms/roomService.js';
import { SipGateway } from './phone/gateway.js';
import { phoneConfigFrom } from './phone/config.js';
import { sendPhoneCallWebhooks } from './phone/callWebhooks.js';
import { PhoneRoomPortImpl } from './rooms/phoneRoomPort.js';

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** The whole server process, assembled from its parts; `start()` and `stop()` are its lifecycle. */
export class SfuServer {
  readonly log: Logger;
  readonly metrics = new Metrics();
  pool!: WorkerPool;
  rooms!: RoomRegistry;
  private http!: HttpServer;
  private signalling!: SignallingServer;
  address!: AddressInfo;
  /** API keys in force; when none is configured, one is generated for this process (printed once). */
  apiKeys: string[] = [];
  tokenSecret!: Uint8Array;
  private stopping: Promise<void> | undefined;
  journal!: JournalStore;
  /** The journal and outbox as configured (files or PostgreSQL). */
  private stores: JournalStores | undefined;
  /** The public keys that verify this server's journal checkpoints (current and retired). */
  journalKeyring!: JournalKeyring;
  outbox!: WebhookOutbox;
  invitations!: InvitationStore;
  /** Cluster mode only (cluster.enabled): this process as one node of several sharing Redis. */
  cluster: ClusterNode | undefined;
  /** The SIP gateway (phone.enabled): phone-audio fallback into rooms. */
  phone: SipGateway | undefined;

  constructor(
    readonly config: Config,
    logger?: Logger,
  ) {
    this.log = logger ?? createLogger(config.log.level);
  }

  get url(): string {
    const scheme = this.config.server.tlsCertFile ? 'https' : 'http';
    const host = this.address.family === 'IPv6' ? `[${this.address.address}]` : this.address.address;
    return (
      this.config.server.publicUrl ??
      `${scheme}://${host === '127.0.0.1' ? 'localhost' : host}:${this.address.port}`
    );
  }

  async start(): Promise<void> {
    try {
      await this.startParts();
    } catch (err) {
      // A failed start must not leave workers, timers or files open behind it.
      await this.phone?.close().catch(() => undefined);
      this.invitations?.close();
      await this.pool?.close().catch(() => undefined);
      await this.stores?.close().catch(() => undefined);
      throw err;
    }
  }

  private async startParts(): Promise<void> {
    const { config, log, metrics } = this;
    this.tokenSecret = config.auth.tokenSecret
      ? new TextEncoder().encode(config.auth.tokenSecret)
      : randomSecret();
    this.apiKeys =
      config.auth.apiKeys.length > 0
        ? [...config.auth.apiKeys]
        : [`dev_${randomBytes(24).toString('base64url')}`];
    // A journal found corrupt is an incident the platform must hear of (the journal cannot hold it).
    const stores = await openJournalStores(config, log, metrics, (incident) => {
      this.outbox
        .enqueue({
          type: 'consultation.incident',
          data: { consultationId: incident.consultationId, kind: 'journal-corrupt', at: incident.detectedAt },
          idempotencyKey: `journal-corrupt:${incident.consultationId}:${Date.parse(incident.detectedAt)}`,
        })
        .catch((err: unknown) =>
          log.error(
            { room: incident.consultationId, err: (err as Error).message },
            'corruption webhook not queued',
          ),
        );
    });
    this.stores = stores;
    this.journal = stores.journal;
    this.outbox = stores.outbox;
    this.journalKeyring = stores.keyring;
    this.journal.startRetentionSweep();
    this.outbox.start();
    // Consultations whose end was journalled but whose webhook a crash left out.
    await reconcileEndedWebhooks(this.journal, this.outbox);
    const record = new ConsultationRecord(this.journal, this.outbox, log.child({ module: 'journal' }));
    const consentTexts = new ConsentRegistry(config.journal.dir);
    this.invitations = new InvitationStore(
      DEFAULT_ACCESS_CODE_POLICY,
      (invitation) => void this.invitationExpired(invitation, record),
    );
    this.pool = await WorkerPool.start(config.media, log, metrics);
    this.rooms = new RoomRegistry({ pool: this.pool, config, metrics, log, record, consentTexts });
    this.rooms.on('roomClosed', (room) => this.invitations.dropRoom(room.id));
    this.rooms.on('roomCreated', (room) =>
      attachQualityControl(room, config.quality, {
        log,
        metrics,
        // A sustained poor link is a technical incident of the consultation (R.6316-4).
        onIncident: (roomId, participantId, kind) => record.incident(roomId, kind, participantId),
      }),
    );
    this.cluster = config.cluster.enabled
      ? ClusterNode.create({ config, rooms: this.rooms, pool: this.pool, log, url: () => this.url })
      : undefined;
    if (config.phone.enabled) {
      const phoneConfig = phoneConfigFrom(config);
      this.phone = await SipGateway.start({
        config: phoneConfig,
        port: new PhoneRoomPortImpl(this.rooms, this.invitations, phoneConfig.promptsDir),
        log: log.child({ module: 'phone' }),
        metrics,
      });
      sendPhoneCallWebhooks(this.phone, this.outbox, log.child({ module: 'webhooks' }));
    }
    const tokens = new JoinTokenVerifier(config.auth, this.tokenSecret);
    const roomService = roomServiceFor(this.rooms, this.cluster, this.invitations);
    this.signalling = new SignallingServer({
      config,
      log: log.child({ module: 'signalling' }),
      metrics,
      tokens,
      rooms: this.rooms,
      invitations: this.invitations,
      consentTexts,
      roomService,
    });
    const rest = new RestApi({
      rooms: this.rooms,
      invitations: this.invitations,
      consentTexts,
      journal: this.journal,
      apiKeys: this.apiKeys,
      tokenSecret: this.tokenSecret,
      tokenAudience: config.auth.tokenAudience,
      maxTokenLifetimeS: config.auth.maxTokenLifetimeS,
      publicUrl: () => this.url,
      joinBaseUrl: config.server.joinBaseUrl,
      log: log.child({ module: 'rest' }),
      onDrain: () => this.drain(),
      metrics,
      roomService,
      phone: this.phone,
    });
    this.http = new HttpServer({
      config,
      log: log.child({ module: 'http' }),
      metrics,
      pool: this.pool,
      rooms: this.rooms,
      rest,
      signalling: this.signalling,
      demo: this.demoEnabled
        ? new DemoEndpoint(this.rooms, this.tokenSecret, config.auth.tokenAudience, this.invitations)
        : undefined,
      version: VERSION,
      journalKeys: () => keySetDocument(this.journalKeyring),
    });
    this.address = await this.http.listen();
    await this.cluster?.start();
    log.info({ url: this.url, workers: this.pool.size, version: VERSION }, 'server listening');
  }

  /**
   * An invitation this node created reached its expiry unused here; in a cluster its code or link
   * may have been used on another node, which the shared token ids tell.
   */
  private async invitationExpired(invitation: Invitation, record: ConsultationRecord): Promise<void> {
    try {
      if (await this.cluster?.tokenUsed(invitation.tokenId)) return;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'invitation use not checked in the cluster');
    }
    record.invitationExpired(invitation.roomId, invitation.participantId, invitation.role);
  }

  /** The try-it page and its unauthenticated demo endpoint: on when asked, or on loopback in 'auto'. */
  get demoEnabled(): boolean {
    const { demoPage, listenHost } = this.config.server;
    if (demoPage !== 'auto') return demoPage;
    return listenHost === 'localhost' || listenHost === '::1' || listenHost.startsWith('127.');
  }

  /** Stops new rooms and joins; readiness turns false. */
  drain(): void {
    if (this.rooms.draining) return;
    this.rooms.draining = true;
    this.cluster?.drainStarted();
    this.log.warn('draining: no new rooms or joins');
  }

  /** Graceful stop: drain, wait for rooms to end up to the deadline, then close everything. */
  stop(deadlineS = this.config.server.shutdownDeadlineS): Promise<void> {
    this.stopping ??= this.doStop(deadlineS);
    return this.stopping;
  }

  private async doStop(deadlineS: number): Promise<void> {
    this.drain();
    await this.roomsEnded(deadlineS * 1000);
    if (this.rooms.size > 0)
      this.log.warn({ rooms: this.rooms.size }, 'shutdown deadline reached; ending rooms');
    await this.phone?.close();
    await this.rooms.closeAll('server-shutdown');
    await this.cluster?.stop();
    this.signalling.close();
    await this.http.close();
    await this.pool.close();
    this.invitations.close();
    await this.stores?.close();
    this.log.info('server stopped');
  }

  /** Resolves as soon as the last room has ended, or when the deadline passes. */
  private roomsEnded(deadlineMs: number): Promise<void> {
    if (this.rooms.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.rooms.off('roomClosed', check);
        resolve();
      };
      const check = () => {
        if (this.rooms.size === 0) done();
      };
      const timer = setTimeout(done, deadlineMs);
      this.rooms.on('roomClosed', check);
    });
  }
}

import nodeDataChannel from 'node-datachannel';
import type { types } from 'mediasoup';
import {
  Publisher,
  Subscriber,
  subscriberRtpCapabilities,
  type ConsumerDescription,
} from '../../bench/peer/index.js';
import type { RemoteTransportParams } from '../../bench/peer/index.js';
import type { Role } from '../../src/protocol/messages.js';
import { SignallingClient } from './signallingClient.js';

/**
 * A participant driven through the real signalling protocol with real WebRTC (node-datachannel)
 * media: joins with a token, publishes synthetic Opus + VP8 simulcast, subscribes to what the
 * server announces. Subclasses that replace the signalling connection (cluster moves) set `client`.
 */
export class MediaPeer {
  client!: SignallingClient;
  publisher: Publisher | undefined;
  subscriber: Subscriber | undefined;
  readonly producerIds: string[] = [];
  /** Consumers already given to a subscriber; a new connection's announcements start afresh. */
  protected readonly usedConsumerIds = new Set<string>();

  protected constructor(
    readonly id: string,
    client?: SignallingClient,
  ) {
    if (client) this.client = client;
  }

  /**
   * Joins; a patient also gives its teleconsultation consent unless `consent` is false. In a room
   * without a waiting room it then waits for its automatic admission.
   */
  static async join(
    wsUrl: string,
    token: string,
    id: string,
    options: { consent?: boolean } = {},
  ): Promise<MediaPeer> {
    const client = await SignallingClient.open(wsUrl);
    const peer = new MediaPeer(id, client);
    const joined = await client.request('join', { token });
    if (joined.self.role === 'patient' && options.consent !== false) {
      await client.consent();
      if (!joined.room.options.waitingRoom)
        await client.waitFor('admissionChanged', (d) => d.state === 'admitted');
    }
    return peer;
  }

  static async joinAs(
    srv: { wsUrl: string; token(g: { room: string; participantId: string; role: Role }): Promise<string> },
    room: string,
    participantId: string,
    role: Role,
    options: { consent?: boolean } = {},
  ): Promise<MediaPeer> {
    return MediaPeer.join(srv.wsUrl, await srv.token({ room, participantId, role }), participantId, options);
  }

  /** Publishes audio and three-layer VP8 simulcast; resolves once DTLS is up and both producers exist. */
  async publish(
    options: { audio?: boolean; video?: boolean; precheck?: boolean; audioFrames?: readonly Buffer[] } = {},
  ): Promise<void> {
    await this.client.request('setRtpCapabilities', {
      rtpCapabilities: subscriberRtpCapabilities(),
    });
    const transport = await this.client.request('createTransport', {
      direction: 'send',
      ...(options.precheck ? { precheck: true } : {}),
    });
    this.publisher?.close();
    const publisher = new Publisher({
      name: `${this.id}-pub`,
      bindAddress: '127.0.0.1',
      audio: options.audio ?? true,
      ...(options.video === false ? { video: false as const } : {}),
      keyframeIntervalMs: 1000,
      ...(options.audioFrames ? { audioFrames: options.audioFrames } : {}),
    });
    this.publisher = publisher;
    await this.client.request('connectTransport', {
      transportId: transport.id,
      dtlsParameters: publisher.dtlsParameters,
    });
    publisher.connect(transport as unknown as RemoteTransportParams);
    await publisher.waitConnected(15_000);
    for (const [kind, rtpParameters] of [
      ['audio', publisher.audioRtpParameters],
      ['video', publisher.videoRtpParameters],
    ] as const) {
      if (!rtpParameters) continue;
      const { producerId } = await this.client.request('produce', {
        transportId: transport.id,
        kind,
        rtpParameters: rtpParameters,
        source: kind === 'audio' ? 'microphone' : 'camera',
      });
      this.producerIds.push(producerId);
    }
    publisher.startMedia();
  }

  /**
   * Creates the receive transport, waits until the server has announced `expectedConsumers`
   * consumers, then connects and resumes them.
   */
  async subscribe(
    expectedConsumers: number,
    timeoutMs = 10_000,
    options: { precheck?: boolean } = {},
  ): Promise<ConsumerDescription[]> {
    await this.client.request('setRtpCapabilities', {
      rtpCapabilities: subscriberRtpCapabilities(),
    });
    const transport = await this.client.request('createTransport', {
      direction: 'recv',
      ...(options.precheck ? { precheck: true } : {}),
    });
    const deadline = Date.now() + timeoutMs;
    while (this.consumerAnnouncements().length < expectedConsumers) {
      if (Date.now() > deadline)
        throw new Error(`only ${this.consumerAnnouncements().length} consumers announced`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const consumers: ConsumerDescription[] = this.consumerAnnouncements().map((d) => ({
      id: d.consumerId,
      kind: d.kind,
      rtpParameters: d.rtpParameters,
    }));
    for (const consumer of consumers) this.usedConsumerIds.add(consumer.id!);
    this.subscriber?.close();
    const subscriber = new Subscriber({ name: `${this.id}-sub`, bindAddress: '127.0.0.1', consumers });
    this.subscriber = subscriber;
    await this.client.request('connectTransport', {
      transportId: transport.id,
      dtlsParameters: subscriber.dtlsParameters,
    });
    subscriber.connect(transport as unknown as RemoteTransportParams);
    await subscriber.waitConnected(15_000);
    for (const consumer of consumers)
      await this.client.request('resumeConsumer', { consumerId: consumer.id! });
    return consumers;
  }

  /** Consumers announced and not yet given to a subscriber. */
  consumerAnnouncements(): {
    consumerId: string;
    kind: types.MediaKind;
    rtpParameters: types.RtpParameters;
    producerId: string;
  }[] {
    return this.client.notifications
      .filter((n) => n.notification === 'consumerAdded')
      .filter((n) => !this.usedConsumerIds.has(n.data.consumerId as string))
      .map((n) => n.data as never);
  }

  /** Every consumer announced so far, with the participant whose producer it carries. */
  allAnnouncements(): { consumerId: string; participantId: string; kind: string }[] {
    return this.client.notifications
      .filter((n) => n.notification === 'consumerAdded')
      .map((n) => n.data as never);
  }

  close(): void {
    this.publisher?.close();
    this.subscriber?.close();
    // A subclass may close before it ever connected.
    (this.client as SignallingClient | undefined)?.close();
  }
}

/** node-datachannel keeps native threads that hold the process open: release them when a test file ends. */
export function releaseNativePeers(): void {
  nodeDataChannel.cleanup();
}

import type { types } from 'mediasoup';
import type { RequestResult } from '../../../src/protocol/messages.js';
import { subscriberRtpCapabilities } from '../../peer/index.js';
import type { ConsumerInfo, ParticipantSignalling, TransportInfo } from '../../harness/target.js';
import { TargetError } from '../../harness/target.js';
import { SignallingSocket } from './signalling.js';
import type { SocketOptions } from './signalling.js';

interface Announcement {
  consumerId: string;
  producerId: string;
  kind: types.MediaKind;
  rtpParameters: types.RtpParameters;
}

/** Consumers a participant may hold at most (limits.maxConsumersPerParticipant default). */
const MAX_ANNOUNCEMENTS = 64;

/**
 * One participant of our server driven through the real protocol: a WebSocket, a join token,
 * consent for a patient, transports, producers, and the consumers the server creates and announces
 * (`consumerAdded`), resumed once the receiving PeerConnection is up. Implements the harness's
 * mediasoup-client-shaped `ParticipantSignalling`.
 */
export class SelfParticipant implements ParticipantSignalling {
  joinResult: RequestResult<'join'> | undefined;
  private readonly announced = new Map<string, Announcement>();
  private readonly waiters = new Map<string, (a: Announcement) => void>();

  private constructor(readonly socket: SignallingSocket) {
    socket.on('consumerAdded', (data) => this.onConsumerAdded(data));
  }

  /** Opens a socket and joins with `token`; the answer is in `joinResult`. */
  static async join(wsUrl: string, token: string, options: SocketOptions = {}): Promise<SelfParticipant> {
    const socket = await SignallingSocket.open(wsUrl, options);
    const participant = new SelfParticipant(socket);
    try {
      participant.joinResult = await socket.request('join', { token });
    } catch (error) {
      socket.terminate();
      throw error;
    }
    return participant;
  }

  get id(): string {
    return this.joinResult?.self.id ?? '';
  }

  /** As a patient: accepts the current consent text of `purpose` (exact version and hash). */
  async giveConsent(
    purpose: 'teleconsultation' | 'third-party' = 'teleconsultation',
    coversParticipantId?: string,
  ): Promise<void> {
    const { texts } = await this.socket.request('getConsentTexts', {});
    const text = texts.find((t) => t.purpose === purpose);
    if (!text) throw new TargetError(`the server offers no ${purpose} consent text`);
    await this.socket.request('giveConsent', {
      purpose,
      textId: text.textId,
      version: text.version,
      hash: text.hash,
      ...(coversParticipantId ? { coversParticipantId } : {}),
    });
  }

  /** Resolves once this participant is told it is admitted. Call before the admission happens. */
  admitted(timeoutMs?: number): Promise<unknown> {
    return this.socket.next('admissionChanged', (d) => d.state === 'admitted', timeoutMs);
  }

  /** The benchmark's peers receive without RTX or bandwidth feedback, as with the bare target. */
  async setRtpCapabilities(): Promise<void> {
    await this.socket.request('setRtpCapabilities', {
      rtpCapabilities: subscriberRtpCapabilities(),
    });
  }

  async createTransport(direction: 'send' | 'recv'): Promise<TransportInfo> {
    return (await this.socket.request('createTransport', { direction })) as unknown as TransportInfo;
  }

  async connectTransport(transportId: string, dtlsParameters: types.DtlsParameters): Promise<void> {
    await this.socket.request('connectTransport', {
      transportId,
      dtlsParameters: dtlsParameters,
    });
  }

  async produce(
    transportId: string,
    kind: types.MediaKind,
    rtpParameters: types.RtpParameters,
  ): Promise<string> {
    const { producerId } = await this.socket.request('produce', {
      transportId,
      kind,
      rtpParameters: rtpParameters,
      source: kind === 'audio' ? 'microphone' : 'camera',
    });
    return producerId;
  }

  /**
   * The server creates consumers itself once this participant has a receive transport and
   * capabilities: "consuming" a producer means waiting for its announcement. Consumers start paused.
   */
  consume(_transportId: string, producerId: string, _caps: types.RtpCapabilities): Promise<ConsumerInfo> {
    return this.announcement(producerId).then((a) => ({
      id: a.consumerId,
      producerId: a.producerId,
      kind: a.kind,
      rtpParameters: a.rtpParameters,
      paused: true,
    }));
  }

  async resumeConsumer(consumerId: string): Promise<void> {
    await this.socket.request('resumeConsumer', { consumerId });
  }

  /** Consumers announced so far. */
  announcements(): Announcement[] {
    return [...this.announced.values()];
  }

  /** The announcement for `producerId`, when it comes (bounded by `timeoutMs`). */
  announcement(producerId: string, timeoutMs = 15_000): Promise<Announcement> {
    const known = this.announced.get(producerId);
    if (known) return Promise.resolve(known);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(producerId);
        reject(new TargetError(`no consumer announced for a producer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(producerId, (a) => {
        clearTimeout(timer);
        resolve(a);
      });
    });
  }

  close(): void {
    this.socket.close();
  }

  private onConsumerAdded(data: Record<string, unknown>): void {
    if (typeof data.producerId !== 'string' || typeof data.consumerId !== 'string') return;
    if (this.announced.size >= MAX_ANNOUNCEMENTS) return;
    const a: Announcement = {
      consumerId: data.consumerId,
      producerId: data.producerId,
      kind: data.kind === 'audio' ? 'audio' : 'video',
      rtpParameters: data.rtpParameters as types.RtpParameters,
    };
    this.announced.set(a.producerId, a);
    const waiter = this.waiters.get(a.producerId);
    this.waiters.delete(a.producerId);
    waiter?.(a);
  }
}

import type { ParticipantInfo } from '../../protocol/messages.js';
import { TypedEmitter } from '../emitter.js';
import { toHex } from './bytes.js';
import { FrameCryptor, codecOf, type CryptorStats } from './frameCrypto.js';
import { deriveDataKey } from './dataKeys.js';
import {
  SENDER_KEY_BYTES,
  createIdentity,
  safetyNumber,
  unwrapSenderKey,
  wrapSenderKey,
  type Identity,
  type WrapContext,
} from './identity.js';
import type { EncodedFrame, TransformTarget, WorkerCommand, WorkerEvent } from './workerProtocol.js';

/**
 * End-to-end encryption of a participant's media (sender keys over SFrame). Each participant:
 * - holds an ECDH P-256 identity (private key not extractable) announced at join;
 * - encrypts what it sends with a random sender key of its own, a new one (a new generation)
 *   whenever someone joins or leaves: a newcomer cannot read what was sent before it came, a
 *   departed participant cannot read what is sent after it left;
 * - delivers each sender key to each other admitted participant wrapped for that participant
 *   (see identity.ts) through the server's `e2eeRelay`, which cannot open it.
 * See docs/encryption.md for the design and the threat model.
 */
export type EncryptionState = 'encrypted' | 'not-encrypted' | 'key-missing';

export interface E2eeOptions {
  /** URL of the transform worker (default: teleconsult-e2ee-worker.js beside the SDK bundle). */
  workerUrl?: string | URL;
  /**
   * Test hooks (key export). Off by default; never enable in production: whoever reads
   * `room.e2ee.testing.exportKeys()` can decrypt the call.
   */
  __testing?: boolean | TestingOptions;
}

export interface TestingOptions {
  /** Installs every received key with one bit flipped (a client with wrong keys). */
  tamperReceivedKeys?: boolean;
}

export interface ExportedKeys {
  selfId: string;
  /** Keys this participant sent with, by generation (KID). */
  sent: { generation: number; key: string }[];
  /** Keys received from others (the genuine ones, even when tampering). */
  received: { from: string; generation: number; key: string }[];
}

export type E2eeEvents = {
  /** The encryption state of what this participant receives from `participantId` changed. */
  stateChanged: [participantId: string, state: EncryptionState];
  /** This participant now encrypts with a new sender key. */
  keyRotated: [generation: number, reason: 'join' | 'leave'];
  /**
   * A phone participant is present (or gone): its audio is not end-to-end encrypted, and it can
   * only hear this participant if `allowPhoneAudio(true)` is called.
   */
  phoneParticipantsChanged: [phoneParticipantIds: string[]];
  /** A key message could not be delivered or opened (for logs; no key material). */
  warning: [detail: string];
};

/** How long a newcomer's key has to reach everyone before senders switch to it. */
const JOIN_SWITCH_DELAY_MS = 1_000;
/** Membership changes within this window cause one rotation. */
const REKEY_DEBOUNCE_MS = 50;
const MEDIA_STATES = new Set(['admitted', 'in-call']);

/** What the SDK's Room offers the encryption layer. */
export interface EncryptedRoom {
  readonly id: string;
  readonly self: ParticipantInfo;
  readonly participants: ReadonlyMap<string, ParticipantInfo>;
  on(
    event: 'participantJoined' | 'participantUpdated' | 'participantLeft' | 'admissionChanged',
    listener: () => void,
  ): unknown;
}

interface Member {
  id: string;
  publicKey: string;
}

interface EncodedStreams {
  readable: ReadableStream<EncodedFrame>;
  writable: WritableStream<EncodedFrame>;
}
type WithEncodedStreams = { createEncodedStreams?: () => EncodedStreams };
type ScriptTransformConstructor = new (
  worker: Worker,
  options?: unknown,
  transfer?: Transferable[],
) => unknown;

function scriptTransform(): ScriptTransformConstructor | undefined {
  return (globalThis as { RTCRtpScriptTransform?: ScriptTransformConstructor }).RTCRtpScriptTransform;
}

function encodedStreamsAvailable(): boolean {
  const sender = (globalThis as { RTCRtpSender?: { prototype: WithEncodedStreams } }).RTCRtpSender;
  return typeof sender?.prototype.createEncodedStreams === 'function';
}

/** Whether this browser can encrypt media end to end (encoded transforms, WebCrypto, workers). */
export function isE2eeSupported(): boolean {
  return (
    typeof Worker !== 'undefined' &&
    !!globalThis.crypto?.subtle &&
    (scriptTransform() !== undefined || encodedStreamsAvailable())
  );
}

export class EndToEndEncryption extends TypedEmitter<E2eeEvents> {
  private room: EncryptedRoom | undefined;
  private relay: ((to: string, payload: string) => Promise<void>) | undefined;
  private members = new Map<string, Member>();
  private readonly states = new Map<string, EncryptionState>();
  private readonly lastGenerationFrom = new Map<string, { publicKey: string; generation: number }>();
  private generation = 0;
  private activeGeneration = 0;
  private currentKey: Uint8Array<ArrayBuffer> | undefined;
  private rekeyTimer: ReturnType<typeof setTimeout> | undefined;
  private rotating: Promise<void> = Promise.resolve();
  private phoneIds: string[] = [];
  private phoneAudioAllowed = false;
  private nextStatsRequest = 1;
  private readonly statsWaiters = new Map<number, (stats: CryptorStats) => void>();
  private closed = false;
  /** Vital-sign messages: encrypted here, in the page, with keys derived from the media keys. */
  private readonly dataCryptor = new FrameCryptor();
  private readonly exported: ExportedKeys | undefined;
  private readonly tamper: boolean;
  /** Present only with the `__testing` option. */
  readonly testing: { exportKeys(): ExportedKeys } | undefined;

  private constructor(
    private readonly identity: Identity,
    private readonly worker: Worker,
    /** Chromium's createEncodedStreams path needs `encodedInsertableStreams` on the peer connections. */
    private readonly useEncodedStreams: boolean,
    testing: E2eeOptions['__testing'],
  ) {
    super();
    worker.addEventListener('message', (event: MessageEvent<WorkerEvent>) => {
      const message = event.data;
      if (message.type !== 'stats') return;
      this.statsWaiters.get(message.requestId)?.(message.stats);
      this.statsWaiters.delete(message.requestId);
    });
    this.tamper = typeof testing === 'object' && testing.tamperReceivedKeys === true;
    if (testing) {
      const exported: ExportedKeys = { selfId: '', sent: [], received: [] };
      this.exported = exported;
      this.testing = { exportKeys: () => structuredClone(exported) };
    }
  }

  /** Creates the identity and the transform worker. Throws when the browser cannot do E2EE. */
  static async create(options: E2eeOptions = {}): Promise<EndToEndEncryption> {
    if (!isE2eeSupported())
      throw new Error('end-to-end encryption needs encoded transforms, WebCrypto and workers');
    const identity = await createIdentity();
    const url = options.workerUrl ?? new URL('./teleconsult-e2ee-worker.js', import.meta.url);
    const worker = new Worker(url, { type: 'module', name: 'teleconsult-e2ee' });
    return new EndToEndEncryption(identity, worker, scriptTransform() === undefined, options.__testing);
  }

  /** This participant's public key (announced at join). */
  get publicKey(): string {
    return this.identity.publicKey;
  }

  /** The generation (SFrame KID) of the key this participant encrypts with now (0: none yet). */
  get keyGeneration(): number {
    return this.activeGeneration;
  }

  /** Whether this participant's audio is currently sent end-to-end encrypted (false only in phone downgrade). */
  get audioEncrypted(): boolean {
    return !(this.phoneAudioAllowed && this.phoneIds.length > 0);
  }

  /** The encryption state of what this participant receives from each other participant in the call. */
  get participantStates(): ReadonlyMap<string, EncryptionState> {
    return this.states;
  }

  stateOf(participantId: string): EncryptionState | undefined {
    return this.states.get(participantId);
  }

  /**
   * Six digits to compare with `participantId` out of band (read them aloud): equal numbers mean
   * no one, the server included, substituted a key between you.
   */
  async safetyNumber(participantId: string): Promise<string | undefined> {
    const key = this.room?.participants.get(participantId)?.e2eeKey;
    return key ? safetyNumber(this.identity.publicKey, key) : undefined;
  }

  /**
   * Phone downgrade: lets a phone participant hear this participant (audio then goes out without
   * end-to-end encryption while a phone participant is present; video stays encrypted). Ask the
   * user first: the server, and the telephone network, can then hear this participant.
   */
  allowPhoneAudio(allow: boolean): void {
    this.phoneAudioAllowed = allow;
    this.post({ type: 'setAudioClear', clear: !this.audioEncrypted });
  }

  /** Counters of the transform worker (frames encrypted, decrypted, refused by sender). */
  getStats(): Promise<CryptorStats> {
    const requestId = this.nextStatsRequest++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.statsWaiters.delete(requestId);
        reject(new Error('e2ee worker did not answer'));
      }, 5_000);
      this.statsWaiters.set(requestId, (stats) => {
        clearTimeout(timer);
        resolve(stats);
      });
      this.post({ type: 'stats', requestId });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Wiring with the Room (called by the SDK, not by applications)

  /** @internal */
  bind(room: EncryptedRoom, relay: (to: string, payload: string) => Promise<void>): void {
    this.room = room;
    this.relay = relay;
    if (this.exported) this.exported.selfId = room.self.id;
    const sync = () => this.scheduleSync();
    for (const event of [
      'participantJoined',
      'participantUpdated',
      'participantLeft',
      'admissionChanged',
    ] as const)
      room.on(event, sync);
    this.scheduleSync();
  }

  /** @internal Extra RTCPeerConnection settings the transports need. */
  peerConnectionSettings(): Record<string, unknown> | undefined {
    return this.useEncodedStreams ? { encodedInsertableStreams: true } : undefined;
  }

  /**
   * @internal mediasoup-client's `onRtpSender`: called with the RTCRtpSender right after it is
   * created, before negotiation, so every frame it ever sends goes through the worker.
   */
  senderHook(kind: 'audio' | 'video', mimeType: string | undefined): (sender: RTCRtpSender) => void {
    const codec = codecOf(mimeType ?? (kind === 'audio' ? 'audio/opus' : 'video/VP8'));
    return (sender) => this.attach(sender, { role: 'send', kind, codec });
  }

  /** @internal mediasoup-client's `onRtpReceiver` for a consumer of `participantId`'s track. */
  receiverHook(
    kind: 'audio' | 'video',
    rtpParameters: Record<string, unknown>,
    participantId: string,
  ): (receiver: RTCRtpReceiver) => void {
    const codecs = rtpParameters.codecs as { mimeType?: unknown }[] | undefined;
    const mimeType = codecs?.[0]?.mimeType;
    const codec = codecOf(typeof mimeType === 'string' ? mimeType : undefined);
    return (receiver) => this.attach(receiver, { role: 'recv', kind, codec, senderId: participantId });
  }

  /**
   * @internal Encrypts one vital-sign message with this participant's current data key; undefined
   * while it has no key yet (the message is then not sent: never in clear).
   */
  encryptData(message: Uint8Array): Promise<Uint8Array<ArrayBuffer> | undefined> {
    return this.dataCryptor.encrypt('other', message);
  }

  /** @internal Decrypts a vital-sign message from `senderId`; undefined when it cannot be authenticated. */
  decryptData(senderId: string, message: Uint8Array): Promise<Uint8Array<ArrayBuffer> | undefined> {
    return this.dataCryptor.decrypt(senderId, 'other', message);
  }

  /** @internal Whether what `participantId` sends is end-to-end encrypted (its readings included). */
  encrypts(participantId: string): boolean {
    const p = this.room?.participants.get(participantId);
    return p !== undefined && !p.phone && p.e2ee && p.e2eeKey !== undefined;
  }

  /** @internal An `e2eeMessage` notification: a sender key wrapped for us. */
  onMessage(from: string, payload: string): void {
    void this.receiveKey(from, payload);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.rekeyTimer);
    this.worker.terminate();
    this.currentKey?.fill(0);
    this.removeAllListeners();
  }

  // ---------------------------------------------------------------------------------------------
  // Internals

  private post(command: WorkerCommand, transfer: Transferable[] = []): void {
    if (!this.closed) this.worker.postMessage(command, transfer);
  }

  private attach(endpoint: RTCRtpSender | RTCRtpReceiver, target: TransformTarget): void {
    const Transform = scriptTransform();
    if (Transform && !this.useEncodedStreams) {
      (endpoint as { transform?: unknown }).transform = new Transform(this.worker, target);
      return;
    }
    const streams = (endpoint as WithEncodedStreams).createEncodedStreams?.();
    if (!streams) throw new Error('encoded streams unavailable');
    this.post({ type: 'attach', ...target, ...streams }, [streams.readable, streams.writable]);
  }

  private scheduleSync(): void {
    if (this.closed) return;
    clearTimeout(this.rekeyTimer);
    this.rekeyTimer = setTimeout(() => {
      this.rotating = this.rotating.then(() => this.sync()).catch((err: unknown) => this.warn(err));
    }, REKEY_DEBOUNCE_MS);
  }

  /** Recomputes who must hold our key and the state of each participant; rotates on any change. */
  private async sync(): Promise<void> {
    const room = this.room;
    if (!room || this.closed) return;
    const selfInMedia = MEDIA_STATES.has(room.self.state);
    const next = new Map<string, Member>();
    const phones: string[] = [];
    for (const p of room.participants.values()) {
      if (!MEDIA_STATES.has(p.state)) {
        this.forget(p.id);
        continue;
      }
      if (p.phone) phones.push(p.id);
      const clear = p.phone || !p.e2ee || !p.e2eeKey;
      this.post({ type: 'setSenderClear', senderId: p.id, clear });
      const known = this.lastGenerationFrom.get(p.id);
      if (known && known.publicKey !== p.e2eeKey) this.forget(p.id); // rejoined with a new identity
      this.setState(
        p.id,
        clear ? 'not-encrypted' : this.lastGenerationFrom.has(p.id) ? 'encrypted' : 'key-missing',
      );
      if (selfInMedia && !clear && p.e2eeKey) next.set(p.id, { id: p.id, publicKey: p.e2eeKey });
    }
    for (const id of [...this.states.keys()]) if (!room.participants.has(id)) this.forget(id);
    this.updatePhones(phones);

    const previous = this.members;
    const left = [...previous.values()].filter((m) => next.get(m.id)?.publicKey !== m.publicKey);
    const joined = [...next.values()].filter((m) => previous.get(m.id)?.publicKey !== m.publicKey);
    if (this.generation > 0 && left.length === 0 && joined.length === 0) return;
    if (!selfInMedia && this.generation > 0) return;
    await this.rotate(next, left.length > 0 || previous.size === 0 ? 'leave' : 'join');
  }

  private async rotate(members: Map<string, Member>, reason: 'join' | 'leave'): Promise<void> {
    const generation = ++this.generation;
    const key = globalThis.crypto.getRandomValues(new Uint8Array(SENDER_KEY_BYTES));
    this.members = members;
    this.exported?.sent.push({ generation, key: toHex(key) });
    const dataKey = await deriveDataKey(key);
    await Promise.all([...members.values()].map((member) => this.deliver(member, generation, key)));
    const activate = () => {
      // A later rotation may have happened meanwhile: never go back to an older key.
      if (this.closed || generation <= this.activeGeneration) return;
      this.activeGeneration = generation;
      this.currentKey?.fill(0);
      this.currentKey = key;
      this.post({ type: 'setSendKey', kid: generation, key });
      void this.dataCryptor.setSendKey(generation, dataKey).finally(() => dataKey.fill(0));
      this.emit('keyRotated', generation, reason);
    };
    // Someone left: switch at once, they must not read another frame. Someone joined: give the
    // others' copies a moment to arrive so they lose no frame.
    if (reason === 'leave' || this.activeGeneration === 0) activate();
    else setTimeout(activate, JOIN_SWITCH_DELAY_MS);
  }

  private async deliver(member: Member, generation: number, key: Uint8Array): Promise<void> {
    const room = this.room;
    if (!room || !this.relay) return;
    try {
      const payload = await wrapSenderKey(
        this.identity,
        this.context(member.id, member.publicKey, 'out'),
        generation,
        key,
      );
      await this.relay(member.id, payload);
    } catch (err) {
      this.warn(err, `key delivery to a participant failed`);
    }
  }

  private context(otherId: string, otherKey: string, direction: 'in' | 'out'): WrapContext {
    const room = this.room as EncryptedRoom;
    const self = { id: room.self.id, key: this.identity.publicKey };
    const other = { id: otherId, key: otherKey };
    const [from, to] = direction === 'out' ? [self, other] : [other, self];
    return { roomId: room.id, fromId: from.id, toId: to.id, fromKey: from.key, toKey: to.key };
  }

  private async receiveKey(from: string, payload: string): Promise<void> {
    const sender = this.room?.participants.get(from);
    if (!sender?.e2eeKey) return this.warn(undefined, 'key message from a participant without a public key');
    try {
      const { generation, senderKey } = await unwrapSenderKey(
        this.identity,
        this.context(from, sender.e2eeKey, 'in'),
        payload,
      );
      const last = this.lastGenerationFrom.get(from);
      // A replayed (older) key message is ignored: the server cannot roll a sender back.
      if (last && last.publicKey === sender.e2eeKey && generation <= last.generation) return;
      this.lastGenerationFrom.set(from, { publicKey: sender.e2eeKey, generation });
      this.exported?.received.push({ from, generation, key: toHex(senderKey) });
      await this.dataCryptor.addReceiveKey(from, generation, await deriveDataKey(senderKey));
      if (this.tamper) senderKey[0] = (senderKey[0] as number) ^ 0x01;
      this.post({ type: 'addReceiveKey', senderId: from, kid: generation, key: senderKey });
      if (this.states.has(from) && this.states.get(from) !== 'not-encrypted')
        this.setState(from, 'encrypted');
    } catch (err) {
      this.warn(err, 'key message refused');
    }
  }

  private forget(participantId: string): void {
    this.lastGenerationFrom.delete(participantId);
    this.post({ type: 'removeSender', senderId: participantId });
    this.dataCryptor.removeSender(participantId);
    if (this.states.delete(participantId)) this.emit('stateChanged', participantId, 'key-missing');
  }

  private setState(participantId: string, state: EncryptionState): void {
    if (this.states.get(participantId) === state) return;
    this.states.set(participantId, state);
    this.emit('stateChanged', participantId, state);
  }

  private updatePhones(phones: string[]): void {
    if (phones.join() === this.phoneIds.join()) return;
    this.phoneIds = phones;
    this.post({ type: 'setAudioClear', clear: !this.audioEncrypted });
    this.emit('phoneParticipantsChanged', phones);
  }

  private warn(err: unknown, detail = 'e2ee'): void {
    const reason = err instanceof Error ? `: ${err.name}` : '';
    this.emit('warning', `${detail}${reason}`);
  }
}

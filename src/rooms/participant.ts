import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import type {
  AdmissionState,
  MediaSource,
  ParticipantInfo,
  PrecheckResult,
  Role,
} from '../protocol/messages.js';
import { SfuError } from '../errors/catalogue.js';
import { exchangesMedia, isActive, nextState, type AdmissionEvent } from './admission.js';
import type { ConsentPurpose } from '../consent/consentRegistry.js';
import { isThirdParty as roleIsThirdParty } from '../protocol/permissions.js';

/** How the room reaches a participant's live connection; absent while disconnected. */
export interface ParticipantLink {
  notify(name: string, data: unknown): void;
  /** Ends the connection (e.g. after removal or when the room closes). */
  close(reason: string): void;
}

export interface ParticipantIdentity {
  id: string;
  role: Role;
  displayName: string;
  /** Professional identifier for the journal; never logged, never sent to other participants. */
  rpps: string | undefined;
  /** Patient identity status carried by the token (R.6316-3), for the journal. */
  identityStatus: 'verified' | 'declared' | 'unverified' | undefined;
}

/** A third party: joins only with the patient's consent and the practitioner's approval. */
export function isThirdParty(role: Role): boolean {
  return roleIsThirdParty(role);
}

/** What a participant announces about itself when it arrives; fixed for the incarnation. */
export interface ParticipantTraits {
  /** It encrypts end to end (and `e2eeKey` is its public key). */
  e2ee: boolean;
  e2eeKey?: string | undefined;
  /** A phone leg (never end-to-end encrypted). */
  phone?: boolean;
}

/** One state change, as announced on `Participant.observer`. */
export interface StateChange {
  from: AdmissionState;
  to: AdmissionState;
  event: AdmissionEvent;
}

export interface ParticipantObserverEvents {
  /** Every change of admission state, after it happened (only through the state table). */
  stateChanged: [StateChange];
  /** A connection was attached (true) or lost (false). */
  connectionChanged: [boolean];
}

/** Incarnations are numbered process-wide: two objects for one identity never share a number. */
let lastGeneration = 0;

/**
 * One incarnation of a member of a room: (room, identity, generation). A person who joins again
 * is a new Participant; whatever holds an older one (a socket, a timer, a callback) holds a
 * different object and a lower generation, and the room ignores it (docs/closures.md).
 *
 * State is private: admission changes only through `transition()` (the table in admission.ts),
 * connection changes through `attach()`/`detach()`, and both are announced on `observer`. Media
 * objects are the room's to create and close (room.ts); they are kept here so that closing a
 * participant closes exactly what it owns.
 */
export class Participant {
  readonly generation = ++lastGeneration;
  readonly observer = new EventEmitter<ParticipantObserverEvents>();
  readonly e2ee: boolean;
  readonly e2eeKey: string | undefined;
  readonly phone: boolean;
  readonly joinedAt = new Date();

  #state: AdmissionState;
  #link: ParticipantLink | undefined;
  #resumeToken: string;
  #graceTimer: NodeJS.Timeout | undefined;
  #rtpCapabilities: types.RtpCapabilities | undefined;
  #router: types.Router | undefined;
  readonly #consents = new Set<ConsentPurpose>();
  #coveredByPatientConsent = false;
  #precheck: PrecheckResult | null = null;
  #heldMessage: string | null = null;

  /** Size at which this participant renders each of its video consumers (reported by the SDK). */
  readonly renderSizes = new Map<string, { width: number; height: number }>();
  /** Highest layers this participant asked for per consumer: bandwidth adaptation never goes above. */
  readonly layerCaps = new Map<string, { spatialLayer: number; temporalLayer?: number }>();
  readonly transports = new Map<string, types.WebRtcTransport>();
  /** A phone leg's transport towards the gateway, created through the room like the WebRTC ones. */
  readonly plainTransports = new Map<string, types.PlainTransport>();
  readonly transportDirections = new Map<string, 'send' | 'recv'>();
  /** Transports of the pre-call check: their media loops back to this participant only. */
  readonly precheckTransportIds = new Set<string>();
  readonly producers = new Map<string, types.Producer>();
  readonly consumers = new Map<string, types.Consumer>();
  readonly dataProducers = new Map<string, types.DataProducer>();
  readonly dataConsumers = new Map<string, types.DataConsumer>();

  constructor(
    readonly identity: ParticipantIdentity,
    resumeToken: string,
    traits: ParticipantTraits = { e2ee: false },
    link?: ParticipantLink,
  ) {
    this.#state = 'invited';
    this.#resumeToken = resumeToken;
    this.#link = link;
    this.e2ee = traits.e2ee;
    this.e2eeKey = traits.e2eeKey;
    this.phone = traits.phone ?? false;
  }

  get id(): string {
    return this.identity.id;
  }

  get role(): Role {
    return this.identity.role;
  }

  get state(): AdmissionState {
    return this.#state;
  }

  /** The live connection, if any. */
  get link(): ParticipantLink | undefined {
    return this.#link;
  }

  get resumeToken(): string {
    return this.#resumeToken;
  }

  get rtpCapabilities(): types.RtpCapabilities | undefined {
    return this.#rtpCapabilities;
  }

  /** The room router its transports live on (a room may span workers). */
  get router(): types.Router | undefined {
    return this.#router;
  }

  /** Consents this participant gave (patients), by purpose. */
  get consents(): ReadonlySet<ConsentPurpose> {
    return this.#consents;
  }

  /** For a third party: the patient's consent covers its presence. */
  get coveredByPatientConsent(): boolean {
    return this.#coveredByPatientConsent;
  }

  get precheck(): PrecheckResult | null {
    return this.#precheck;
  }

  get heldMessage(): string | null {
    return this.#heldMessage;
  }

  /** Only admitted participants send or receive media with others. */
  get mayExchangeMedia(): boolean {
    return exchangesMedia(this.#state);
  }

  get active(): boolean {
    return isActive(this.#state);
  }

  /** Applies an admission event through the state table; a forbidden one is INVALID_STATE. */
  transition(event: AdmissionEvent): AdmissionState {
    const from = this.#state;
    const next = nextState(from, event);
    if (!next) throw new SfuError('INVALID_STATE', `${event} not allowed while ${from}`);
    this.#state = next;
    if (!isActive(next)) this.stopGrace();
    if (next !== from) this.observer.emit('stateChanged', { from, to: next, event });
    return next;
  }

  /** Ends this incarnation if it still runs (idempotent): the event must lead to a final state. */
  end(event: 'leave' | 'remove' | 'decline'): void {
    if (this.active) this.transition(event);
  }

  /** Attaches a connection; returns the one it replaces. An ended participant takes none. */
  attach(link: ParticipantLink): ParticipantLink | undefined {
    if (!this.active) throw new SfuError('RESUME_REJECTED');
    this.stopGrace();
    const previous = this.#link;
    this.#link = link;
    if (!previous) this.observer.emit('connectionChanged', true);
    return previous;
  }

  /**
   * Detaches `link` if it is still this participant's connection (a stale socket detaches
   * nothing); returns whether it did. Without an argument, detaches whatever is attached.
   */
  detach(link?: ParticipantLink): ParticipantLink | undefined {
    const current = this.#link;
    if (!current || (link !== undefined && link !== current)) return undefined;
    this.#link = undefined;
    this.observer.emit('connectionChanged', false);
    return current;
  }

  /** Starts the resume grace period; `expired` runs only if nothing resumed or ended it first. */
  startGrace(ms: number, expired: () => void): void {
    this.stopGrace();
    const timer = setTimeout(() => {
      if (this.#graceTimer !== timer || this.#link || !this.active) return;
      this.#graceTimer = undefined;
      expired();
    }, ms);
    timer.unref();
    this.#graceTimer = timer;
  }

  stopGrace(): void {
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
  }

  renewResumeToken(token: string): void {
    this.#resumeToken = token;
  }

  setRtpCapabilities(caps: types.RtpCapabilities): void {
    this.#rtpCapabilities = caps;
  }

  placeOn(router: types.Router | undefined): void {
    this.#router = router;
  }

  recordConsent(purpose: ConsentPurpose): void {
    this.#consents.add(purpose);
  }

  forgetConsent(purpose: ConsentPurpose): boolean {
    return this.#consents.delete(purpose);
  }

  setCoveredByPatientConsent(covered: boolean): void {
    this.#coveredByPatientConsent = covered;
  }

  setPrecheck(result: PrecheckResult): void {
    this.#precheck = result;
  }

  setHeldMessage(message: string | null): void {
    this.#heldMessage = message;
  }

  recvTransport(): types.WebRtcTransport | undefined {
    for (const [id, transport] of this.transports) {
      if (this.transportDirections.get(id) === 'recv' && !this.precheckTransportIds.has(id)) return transport;
    }
    return undefined;
  }

  info(): ParticipantInfo {
    return {
      id: this.identity.id,
      role: this.identity.role,
      displayName: this.identity.displayName,
      state: this.#state,
      connected: this.#link !== undefined,
      phone: this.phone,
      e2ee: this.e2ee,
      ...(this.e2eeKey ? { e2eeKey: this.e2eeKey } : {}),
    };
  }

  /** Closes every media object this participant owns; consumers of its producers close with them. */
  closeMedia(): void {
    for (const transport of this.transports.values()) transport.close();
    for (const transport of this.plainTransports.values()) transport.close();
    this.transports.clear();
    this.plainTransports.clear();
    this.transportDirections.clear();
    this.precheckTransportIds.clear();
    this.producers.clear();
    this.consumers.clear();
    this.dataProducers.clear();
    this.dataConsumers.clear();
  }
}

export function sourceOf(producer: types.Producer | types.DataProducer): MediaSource {
  const source = (producer.appData as { source?: MediaSource }).source;
  return source ?? 'microphone';
}

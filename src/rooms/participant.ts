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
  return role === 'assistant' || role === 'observer';
}

/**
 * A member of a room and the media objects it owns. Media objects are owned here so that closing
 * a participant closes exactly what it created (see docs/closures.md).
 */
export class Participant {
  state: AdmissionState;
  link: ParticipantLink | undefined;
  resumeToken: string;
  rtpCapabilities: types.RtpCapabilities | undefined;
  e2ee = false;
  e2eeKey: string | undefined;
  /** Size at which this participant renders each of its video consumers (reported by the SDK). */
  readonly renderSizes = new Map<string, { width: number; height: number }>();
  /** Highest layers this participant asked for per consumer: bandwidth adaptation never goes above. */
  readonly layerCaps = new Map<string, { spatialLayer: number; temporalLayer?: number }>();
  phone = false;
  graceTimer: NodeJS.Timeout | undefined;
  readonly transports = new Map<string, types.WebRtcTransport>();
  readonly transportDirections = new Map<string, 'send' | 'recv'>();
  /** The room router its transports live on (a room may span workers). */
  router: types.Router | undefined;
  /** Transports of the pre-call check: their media loops back to this participant only. */
  readonly precheckTransportIds = new Set<string>();
  readonly producers = new Map<string, types.Producer>();
  readonly consumers = new Map<string, types.Consumer>();
  readonly dataProducers = new Map<string, types.DataProducer>();
  readonly dataConsumers = new Map<string, types.DataConsumer>();
  readonly joinedAt = new Date();
  /** Consents this participant gave (patients), by purpose. */
  readonly consents = new Set<ConsentPurpose>();
  /** For a third party: the patient's consent covers its presence. */
  coveredByPatientConsent = false;
  precheck: PrecheckResult | null = null;
  heldMessage: string | null = null;

  constructor(
    readonly identity: ParticipantIdentity,
    initialState: AdmissionState,
    resumeToken: string,
  ) {
    this.state = initialState;
    this.resumeToken = resumeToken;
  }

  get id(): string {
    return this.identity.id;
  }

  get role(): Role {
    return this.identity.role;
  }

  /** Only admitted participants send or receive media with others. */
  get mayExchangeMedia(): boolean {
    return exchangesMedia(this.state);
  }

  get active(): boolean {
    return isActive(this.state);
  }

  /** Applies an admission event through the state table; a forbidden one is INVALID_STATE. */
  transition(event: AdmissionEvent): AdmissionState {
    const next = nextState(this.state, event);
    if (!next) throw new SfuError('INVALID_STATE', `${event} not allowed while ${this.state}`);
    this.state = next;
    return next;
  }

  recvTransport(): types.WebRtcTransport | undefined {
    for (const [id, transport] of this.transports) {
      if (this.transportDirections.get(id) === 'recv') return transport;
    }
    return undefined;
  }

  info(): ParticipantInfo {
    return {
      id: this.identity.id,
      role: this.identity.role,
      displayName: this.identity.displayName,
      state: this.state,
      connected: this.link !== undefined,
      phone: this.phone,
      e2ee: this.e2ee,
      ...(this.e2eeKey ? { e2eeKey: this.e2eeKey } : {}),
    };
  }

  /** Closes every media object this participant owns; consumers of its producers close with them. */
  closeMedia(): void {
    for (const transport of this.transports.values()) transport.close();
    this.transports.clear();
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

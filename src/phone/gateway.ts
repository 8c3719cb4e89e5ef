import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import dns from 'node:dns/promises';
import net from 'node:net';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { PhoneCall, type CallDirection, type CallState } from './call.js';
import type { PhoneConfig } from './config.js';
import { PhoneMediaLeg } from './media/phoneMediaLeg.js';
import { SrtpContext } from './media/srtp.js';
import { parseDtmfInfo } from './media/rfc4733.js';
import { PinGuard } from './pinGuard.js';
import { loadPrompts, type PromptName } from './prompts.js';
import type { PhoneCaller, PhoneInvitation, PhoneLeaveReason, PhoneRoomPort } from './roomPort.js';
import { buildAuthorization, chooseChallenge } from './sip/digest.js';
import {
  ALLOW_HEADER,
  contactHeader,
  dialogRequest,
  matchesDialog,
  newSipCallId,
  newTag,
  viaHeader,
  type Dialog,
  type LocalEndpoint,
} from './sip/dialog.js';
import {
  buildResponse,
  cseqOf,
  headerParam,
  headerValue,
  headerValues,
  parseSipUri,
  uriOf,
  uriUser,
  type SipHeader,
  type SipRequest,
  type SipResponse,
} from './sip/message.js';
import {
  DEFAULT_TELEPHONE_EVENT_PT,
  answerDirection,
  buildAudioSdp,
  negotiateAudio,
  parseAudioSdp,
  type NegotiatedAudio,
} from './sip/sdp.js';
import {
  ClientTransactions,
  ServerTransactions,
  T1_MS,
  T2_MS,
  TRANSACTION_TIMEOUT_MS,
} from './sip/transactions.js';
import { SipTransport, peerKey, type SipPeer, type SipTransportName } from './sip/transport.js';

export interface SipGatewayOptions {
  readonly config: PhoneConfig;
  readonly port: PhoneRoomPort;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Prompts as linear samples; loaded from config.promptsDir when omitted. */
  readonly prompts?: ReadonlyMap<PromptName, Int16Array>;
}

export interface DialOutRequest {
  /** SIP URI of the phone, e.g. `sip:+33612345678@trunk.example`. Never logged. */
  readonly to: string;
  readonly roomId: string;
  readonly participantId: string;
  /** Role the callee joins with (consent by keypress only where that role consents); 'patient' when omitted. */
  readonly role?: string;
}

export interface DialOutCall {
  readonly callId: string;
  /** Resolves when the phone answers; rejects with a DialOutError when it does not. */
  readonly answered: Promise<void>;
}

export type DialOutFailure =
  | 'invalid-target'
  /** The room cannot take this participant (unknown or ended room, phone not allowed, ...). */
  | 'room-unavailable'
  /** The phone or the network answered with a final error (4xx/5xx/6xx other than busy). */
  | 'rejected'
  /** 486 Busy Here or 600 Busy Everywhere. */
  | 'busy'
  /** Nobody answered within ringTimeoutS (CANCEL sent). */
  | 'no-answer'
  /** Hung up (REST DELETE, gateway.hangup) while it was still ringing (CANCEL sent). */
  | 'cancelled'
  | 'auth-failed'
  | 'unreachable'
  | 'no-common-codec'
  /** Too many calls in progress (maxCalls). */
  | 'busy-here'
  /** phone.srtp is 'required' and the target is not reached over TLS (SDES keys need it). */
  | 'srtp-required'
  /** We offered SRTP and the answer was plain RTP, or SRTP under another crypto tag. */
  | 'srtp-mismatch'
  | 'closed';

export class DialOutError extends Error {
  override readonly name = 'DialOutError';
  constructor(
    readonly reason: DialOutFailure,
    readonly status?: number,
  ) {
    super(status ? `${reason} (${status})` : reason);
  }
}

/**
 * Where a call is, as the REST API reports it: `ringing` (dial-out, not answered yet), then the
 * script's states, then `ended` (after being answered) or `failed` (a dial-out never answered).
 */
export type PhoneCallState = 'ringing' | 'answered' | CallState | 'failed';

export interface PhoneCallStatus {
  readonly callId: string;
  readonly direction: CallDirection;
  readonly state: PhoneCallState;
  readonly roomId: string | undefined;
  readonly participantId: string | undefined;
  readonly role: string | undefined;
  /** Why it ended or failed (a PhoneLeaveReason or a DialOutFailure). */
  readonly reason: string | undefined;
  /** The final SIP status of a failed dial-out, when there was one. */
  readonly sipStatus: number | undefined;
}

export interface SipGatewayEvents {
  callStarted: [{ callId: string; direction: CallDirection }];
  callState: [{ callId: string; state: CallState }];
  /** A dial-out call was answered by the phone. */
  callAnswered: [PhoneCallStatus];
  /** A dial-out call ended before being answered (never followed by callEnded). */
  callFailed: [PhoneCallStatus];
  /** An answered call ended. */
  callEnded: [
    { callId: string; direction: CallDirection; reason: PhoneLeaveReason; status: PhoneCallStatus },
  ];
  registration: [{ registered: boolean }];
}

interface CallRecord {
  /** Our id for the call (logs, events, the room port); the SIP Call-ID stays inside the gateway. */
  readonly callId: string;
  readonly direction: CallDirection;
  readonly media: PhoneMediaLeg;
  dialog: Dialog | undefined;
  call: PhoneCall | undefined;
  sdpVersion: number;
  readonly sdpSessionId: string;
  negotiated: NegotiatedAudio | undefined;
  /** UAS: the INVITE being answered, until its final response (for CANCEL). */
  pendingInvite: { request: SipRequest; peer: SipPeer; cancelled: boolean } | undefined;
  /** UAS: a 2xx resent over UDP until the ACK comes (RFC 3261 13.3.1.4). */
  okRetransmit: { timer: NodeJS.Timeout; deadline: number; cseq: number } | undefined;
  /** UAC: the ACK of our INVITE's 2xx, resent when the 2xx is retransmitted. */
  ackForOk: SipRequest | undefined;
  /** UAC: the INVITE in progress and where it went, for CANCEL. */
  outgoingInvite: SipRequest | undefined;
  outgoingPeer: SipPeer | undefined;
  /** UAC: the connection to outgoingPeer failed (refused, certificate refused). */
  outgoingFailed: boolean;
  confirmed: boolean;
  ending: boolean;
  /** The room participant the call acts for, once known (dial-out: at once; dial-in: after the PIN). */
  invitation: PhoneInvitation | undefined;
  state: PhoneCallState;
  /** Dial-out: why it failed, set before the record goes. */
  failure: DialOutError | undefined;
  /** SRTP: our crypto attribute (the phone's key is in `negotiated.srtp`). */
  localCrypto: { tag: number; keyAndSalt: Buffer } | undefined;
}

const RESPONSE_REASONS: Readonly<Record<number, string>> = {
  100: 'Trying',
  200: 'OK',
  400: 'Bad Request',
  403: 'Forbidden',
  405: 'Method Not Allowed',
  415: 'Unsupported Media Type',
  481: 'Call/Transaction Does Not Exist',
  483: 'Too Many Hops',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

const KNOWN_METHODS = new Set(['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'INFO']);
const OTHER_SIP_METHODS = new Set([
  'REGISTER',
  'SUBSCRIBE',
  'NOTIFY',
  'REFER',
  'MESSAGE',
  'UPDATE',
  'PRACK',
  'PUBLISH',
]);
const REGISTRATION_RETRY_MS = 30_000;
/** Ended calls whose final state the REST API can still report. */
const RECENT_CALLS_KEPT = 1024;

/**
 * The SIP gateway of the phone-audio fallback: answers dial-in calls (PIN, notice, consent, waiting
 * room) and places dial-out calls, joining each phone leg to its room through the PhoneRoomPort.
 */
export class SipGateway extends EventEmitter<SipGatewayEvents> {
  private readonly calls = new Map<string, CallRecord>();
  private readonly recentlyEnded = new Map<string, PhoneCallStatus>();
  private readonly bySipCallId = new Map<string, CallRecord>();
  /** INVITEs whose media is being set up, so a CANCEL arriving meanwhile is honoured. */
  private readonly invitesInProgress = new Map<string, { cancelled: boolean }>();
  private readonly serverTransactions = new ServerTransactions();
  private readonly clientTransactions: ClientTransactions;
  private readonly pinGuard: PinGuard;
  private readonly prompts: ReadonlyMap<PromptName, Int16Array>;
  private readonly log: Logger;
  private readonly local: LocalEndpoint;
  private readonly allowedSources: Set<string>;
  private mediaWatch: NodeJS.Timeout | undefined;
  private registrationTimer: NodeJS.Timeout | undefined;
  private registered = false;
  /** One Call-ID and a growing CSeq for every REGISTER of this run (RFC 3261 10.2.4). */
  private readonly registrationCallId: string;
  private readonly registrationTag = newTag();
  private registrationSeq = 0;
  private closed = false;

  private constructor(
    private readonly options: SipGatewayOptions,
    private readonly transport: SipTransport,
  ) {
    super();
    const { config } = options;
    this.log = options.log.child({ module: 'sip-gateway' });
    this.prompts = options.prompts ?? loadPrompts(config.promptsDir, config.language);
    this.pinGuard = new PinGuard({
      ...config.pin,
      onBudgetExhausted: (exhausted) => {
        options.metrics.sipPinBudgetExhausted.set(exhausted ? 1 : 0);
        // The alert an operator sees: someone is trying PINs faster than the budget allows.
        if (exhausted) this.log.warn('PIN attempt budget exhausted: callers wait their turn (brute force?)');
      },
    });
    this.allowedSources = new Set(config.trunk.allowedSources);
    this.clientTransactions = new ClientTransactions((request, peer) => transport.send(request, peer));
    const ports = transport.ports;
    this.local = {
      host: config.sip.publicHost ?? config.sip.listenHost,
      portFor: (name) => ports[name] ?? ports.udp ?? ports.tcp ?? 5060,
    };
    transport.on('message', (message, peer) => {
      try {
        if (message.kind === 'request') this.onRequest(message, peer);
        else this.onResponse(message);
      } catch (error) {
        this.log.error(
          { err: error instanceof Error ? error.message : 'unknown' },
          'SIP message handling failed',
        );
      }
    });
    transport.on('malformed', ({ peer, reason, answered }) => {
      options.metrics.sipMalformed.inc({ transport: peer.transport, answered: String(answered) });
      this.log.debug({ transport: peer.transport, reason, answered }, 'malformed SIP message');
    });
    transport.on('error', (error) => this.log.warn({ err: error.message }, 'SIP transport error'));
    transport.on('connectFailed', ({ peer, code }) => {
      // A certificate that does not name what was dialled, or no listener: say so, and fail the
      // calls waiting on that connection now rather than at their timeout.
      this.log.warn({ transport: peer.transport, code }, 'SIP connection failed');
      for (const record of this.calls.values())
        if (record.outgoingPeer && !record.confirmed && peerKey(record.outgoingPeer) === peerKey(peer))
          record.outgoingFailed = true;
      this.clientTransactions.failPeer(peer);
    });
    this.registrationCallId = newSipCallId(this.local.host);
    this.mediaWatch = setInterval(() => this.checkMediaTimeouts(), 5000);
  }

  static async start(options: SipGatewayOptions): Promise<SipGateway> {
    const { sip } = options.config;
    const transport = await SipTransport.start({
      host: sip.listenHost,
      udpPort: sip.udpPort,
      tcpPort: sip.tcpPort,
      tlsPort: sip.tlsPort,
      tlsCertFile: sip.tlsCertFile,
      tlsKeyFile: sip.tlsKeyFile,
      tlsCaFile: sip.tlsCaFile,
      maxConnections: sip.maxConnections,
    });
    let gateway: SipGateway;
    try {
      gateway = new SipGateway(options, transport);
    } catch (error) {
      transport.close();
      throw error;
    }
    await gateway.startRegistration();
    const { rtp } = options.config;
    gateway.log.info(
      {
        sipHost: sip.listenHost,
        udp: transport.ports.udp ?? null,
        tcp: transport.ports.tcp ?? null,
        tls: transport.ports.tls ?? null,
        rtpHost: rtp.listenHost,
        rtpPorts: rtp.minPort === 0 && rtp.maxPort === 0 ? 'any' : `${rtp.minPort}-${rtp.maxPort}`,
      },
      'SIP gateway listening',
    );
    return gateway;
  }

  /** The SIP ports actually bound. */
  get sipPorts(): { udp: number | undefined; tcp: number | undefined; tls: number | undefined } {
    return this.transport.ports;
  }

  get activeCalls(): number {
    return this.calls.size;
  }

  get isRegistered(): boolean {
    return this.registered;
  }

  /** The state of a call in progress or recently ended; undefined for an unknown call id. */
  callStatus(callId: string): PhoneCallStatus | undefined {
    const record = this.calls.get(callId);
    return record ? statusOf(record) : this.recentlyEnded.get(callId);
  }

  /** Media counters of a call, for diagnostics and tests. */
  callMediaStats(callId: string): PhoneMediaLeg['stats'] | undefined {
    return this.calls.get(callId)?.media.stats;
  }

  // ---------------------------------------------------------------- incoming requests

  private respond(
    request: SipRequest,
    peer: SipPeer,
    status: number,
    options: { toTag?: string; headers?: SipHeader[]; body?: Buffer } = {},
  ): SipResponse {
    const response = buildResponse(request, status, RESPONSE_REASONS[status] ?? 'Unknown', options);
    this.transport.send(response, peer);
    if (status >= 200) this.serverTransactions.responded(request, response);
    return response;
  }

  private refuse(request: SipRequest, peer: SipPeer, status: number, headers: SipHeader[] = []): void {
    this.options.metrics.sipRefused.inc({ status: String(status) });
    this.respond(request, peer, status, { toTag: newTag(), headers });
  }

  private onRequest(request: SipRequest, peer: SipPeer): void {
    const method = KNOWN_METHODS.has(request.method) ? request.method : 'other';
    this.options.metrics.sipMessages.inc({ transport: peer.transport, kind: method });
    if (!this.isAllowedSource(peer.address)) {
      if (request.method !== 'ACK') this.refuse(request, peer, 403);
      return;
    }
    if (request.method === 'ACK') {
      this.onAck(request);
      return;
    }
    const transaction = this.serverTransactions.receive(request);
    if (transaction.kind === 'retransmission') {
      if (transaction.response) this.transport.send(transaction.response, peer);
      return;
    }
    if (headerValue(request.headers, 'Max-Forwards') === '0') {
      this.refuse(request, peer, 483);
      return;
    }
    const toTag = headerParam(headerValue(request.headers, 'To') ?? '', 'tag');
    switch (request.method) {
      case 'INVITE':
        if (toTag === undefined)
          this.onNewInvite(request, peer).catch((error: unknown) => {
            this.log.error(
              { err: error instanceof Error ? error.message : 'unknown' },
              'INVITE handling failed',
            );
          });
        else this.onReInvite(request, peer);
        return;
      case 'BYE':
        this.onBye(request, peer);
        return;
      case 'CANCEL':
        this.onCancel(request, peer);
        return;
      case 'OPTIONS':
        this.respond(request, peer, 200, {
          toTag: toTag === undefined ? newTag() : undefined,
          headers: [ALLOW_HEADER, { name: 'Accept', value: 'application/sdp' }],
        });
        return;
      case 'INFO':
        this.onInfo(request, peer);
        return;
      default:
        this.refuse(request, peer, OTHER_SIP_METHODS.has(request.method) ? 405 : 501, [ALLOW_HEADER]);
    }
  }

  private isAllowedSource(address: string): boolean {
    return this.allowedSources.has(address) || this.allowedSources.has(address.replace(/^::ffff:/, ''));
  }

  private findDialogRecord(request: SipRequest): CallRecord | undefined {
    const sipCallId = headerValue(request.headers, 'Call-ID') ?? '';
    const record = this.bySipCallId.get(sipCallId);
    if (!record?.dialog) return undefined;
    return matchesDialog(
      record.dialog,
      headerValue(request.headers, 'From'),
      headerValue(request.headers, 'To'),
    )
      ? record
      : undefined;
  }

  private async onNewInvite(request: SipRequest, peer: SipPeer): Promise<void> {
    const { config } = this.options;
    const sipCallId = headerValue(request.headers, 'Call-ID') ?? '';
    if (this.bySipCallId.has(sipCallId)) {
      this.refuse(request, peer, 486); // A second INVITE with a used Call-ID and no tag: refuse.
      return;
    }
    if (this.closed) return this.refuse(request, peer, 503);
    if (this.calls.size >= config.maxCalls) return this.refuse(request, peer, 486);
    const contact = headerValue(request.headers, 'Contact');
    if (!contact || !parseSipUri(uriOf(contact))) return this.refuse(request, peer, 400);
    const contentType = headerValue(request.headers, 'Content-Type')?.split(';')[0]?.trim().toLowerCase();
    if (request.body.length === 0 || contentType !== 'application/sdp')
      return this.refuse(request, peer, 488);
    const offer = parseAudioSdp(request.body.toString('utf8'));
    const negotiated = offer.ok ? negotiateAudio(offer.value, ['PCMU', 'PCMA']) : offer;
    if (!negotiated.ok) return this.refuse(request, peer, 488);
    // SDES keys travel in the SDP: only over TLS. 'required' refuses plain RTP.
    const srtp = negotiated.value.srtp;
    if (srtp && (peer.transport !== 'tls' || config.srtp === 'off')) return this.refuse(request, peer, 488);
    if (!srtp && config.srtp === 'required') return this.refuse(request, peer, 488);

    const caller = this.callerOf(request, peer, sipCallId);
    if (this.pinGuard.isLocked(caller.number)) return this.refuse(request, peer, 403);

    this.respond(request, peer, 100);
    const callId = randomBytes(12).toString('hex');
    const progress = { cancelled: false };
    this.invitesInProgress.set(sipCallId, progress);
    let media: PhoneMediaLeg;
    try {
      media = await this.openMedia();
    } catch (error) {
      this.log.error({ err: error instanceof Error ? error.message : 'unknown' }, 'no RTP port for a call');
      return this.refuse(request, peer, 503);
    } finally {
      this.invitesInProgress.delete(sipCallId);
    }
    if (progress.cancelled) {
      media.close();
      this.respond(request, peer, 487, { toTag: newTag() });
      return;
    }
    const localTag = newTag();
    const record: CallRecord = {
      callId,
      direction: 'dial-in',
      media,
      dialog: undefined,
      call: undefined,
      sdpVersion: 1,
      sdpSessionId: String(Date.now()),
      negotiated: negotiated.value,
      pendingInvite: { request, peer, cancelled: false },
      okRetransmit: undefined,
      ackForOk: undefined,
      outgoingInvite: undefined,
      outgoingPeer: undefined,
      outgoingFailed: false,
      confirmed: false,
      ending: false,
      invitation: undefined,
      state: 'pin',
      failure: undefined,
      localCrypto: srtp ? { tag: srtp.tag, keyAndSalt: randomBytes(30) } : undefined,
    };
    if (srtp && record.localCrypto) {
      const mine = record.localCrypto.keyAndSalt;
      media.setSrtp(
        new SrtpContext(mine.subarray(0, 16), mine.subarray(16)),
        new SrtpContext(srtp.masterKey, srtp.masterSalt),
      );
    }
    this.addRecord(record, sipCallId);
    if (this.closed) {
      this.respond(request, peer, 503, { toTag: localTag });
      this.removeRecord(record, 'ended');
      return;
    }
    const to = headerValue(request.headers, 'To') ?? '';
    record.dialog = {
      sipCallId,
      localTag,
      remoteTag: headerParam(headerValue(request.headers, 'From') ?? '', 'tag') ?? '',
      localHeader: `${to};tag=${localTag}`,
      remoteHeader: headerValue(request.headers, 'From') ?? '',
      remoteTarget: uriOf(contact),
      routeSet: headerValues(request.headers, 'Record-Route'),
      localSeq: Math.floor(Math.random() * 10000) + 1,
      peer,
    };
    media.setRemote(negotiated.value);
    record.pendingInvite = undefined;
    this.sendOk(record, request, peer, answerDirection(negotiated.value.direction));
    record.call = this.createCall(record, caller);
  }

  private callerOf(request: SipRequest, peer: SipPeer, sipCallId: string): PhoneCaller {
    // P-Asserted-Identity is trusted because only allow-listed sources reach this point (RFC 3325).
    const asserted = headerValue(request.headers, 'P-Asserted-Identity');
    const from = headerValue(request.headers, 'From') ?? '';
    const user = uriUser(uriOf(asserted ?? from));
    const number = user && !/^anonymous$/i.test(user) ? user : undefined;
    return { number, sourceAddress: peer.address, callId: sipCallId };
  }

  private sendOk(
    record: CallRecord,
    request: SipRequest,
    peer: SipPeer,
    direction: NegotiatedAudio['direction'],
  ): void {
    const negotiated = record.negotiated;
    if (!negotiated || !record.dialog) return;
    const body = Buffer.from(
      buildAudioSdp({
        sessionId: record.sdpSessionId,
        version: record.sdpVersion,
        address: this.options.config.rtp.announcedAddress ?? this.options.config.rtp.listenHost,
        port: record.media.localPort,
        codecs: [{ codec: negotiated.codec, pt: negotiated.payloadType }],
        telephoneEventPt: negotiated.telephoneEventPt,
        direction,
        ...(record.localCrypto ? { crypto: record.localCrypto } : {}),
      }),
    );
    const response = this.respond(request, peer, 200, {
      toTag: record.dialog.localTag,
      headers: [
        contactHeader(this.local, peer.transport, 'gateway', isSipsUri(request.uri)),
        ALLOW_HEADER,
        { name: 'Content-Type', value: 'application/sdp' },
      ],
      body,
    });
    if (peer.transport !== 'udp') return;
    // Timer G simplified: resend the 2xx at T1, 2*T1, ... capped at T2 until the ACK, for 64*T1 (Timer H).
    this.stopOkRetransmit(record);
    const cseq = cseqOf(request).seq;
    const deadline = Date.now() + TRANSACTION_TIMEOUT_MS;
    let interval = T1_MS;
    const resend = () => {
      if (!record.okRetransmit || record.ending) return;
      if (Date.now() >= deadline) {
        record.okRetransmit = undefined;
        this.log.info({ callId: record.callId }, 'no ACK for 2xx; ending call');
        this.endCall(record, 'error');
        return;
      }
      this.transport.send(response, peer);
      interval = Math.min(interval * 2, T2_MS);
      record.okRetransmit.timer = setTimeout(resend, interval);
    };
    record.okRetransmit = { timer: setTimeout(resend, interval), deadline, cseq };
  }

  private stopOkRetransmit(record: CallRecord): void {
    if (record.okRetransmit) clearTimeout(record.okRetransmit.timer);
    record.okRetransmit = undefined;
  }

  private onAck(request: SipRequest): void {
    const record = this.findDialogRecord(request);
    if (!record) return; // ACK of a non-2xx final response, or stray: absorbed.
    if (record.okRetransmit && cseqOf(request).seq === record.okRetransmit.cseq)
      this.stopOkRetransmit(record);
    if (!record.confirmed) {
      record.confirmed = true;
      record.call?.run();
    }
  }

  private onReInvite(request: SipRequest, peer: SipPeer): void {
    const record = this.findDialogRecord(request);
    if (!record?.dialog || record.ending) return this.refuse(request, peer, 481);
    if (record.okRetransmit || record.outgoingInvite)
      return this.refuse(request, peer, 500, [{ name: 'Retry-After', value: '1' }]);
    if (request.body.length > 0) {
      const offer = parseAudioSdp(request.body.toString('utf8'));
      const negotiated = offer.ok ? negotiateAudio(offer.value, [record.negotiated?.codec ?? 'PCMU']) : offer;
      if (!negotiated.ok) return this.refuse(request, peer, 488);
      // The SRTP keys stay those of the first offer: a change of either is refused.
      const before = record.negotiated?.srtp;
      const after = negotiated.value.srtp;
      if ((before === undefined) !== (after === undefined)) return this.refuse(request, peer, 488);
      if (before && after && !before.masterKey.equals(after.masterKey))
        return this.refuse(request, peer, 488);
      record.negotiated = negotiated.value;
      record.media.setRemote(negotiated.value);
    }
    const contact = headerValue(request.headers, 'Contact');
    if (contact && parseSipUri(uriOf(contact))) record.dialog.remoteTarget = uriOf(contact);
    record.sdpVersion++;
    this.sendOk(record, request, peer, answerDirection(record.negotiated?.direction ?? 'sendrecv'));
  }

  private onBye(request: SipRequest, peer: SipPeer): void {
    const record = this.findDialogRecord(request);
    if (!record) return this.refuse(request, peer, 481);
    this.respond(request, peer, 200);
    this.endCall(record, 'hangup', false);
  }

  private onCancel(request: SipRequest, peer: SipPeer): void {
    const sipCallId = headerValue(request.headers, 'Call-ID') ?? '';
    const progress = this.invitesInProgress.get(sipCallId);
    if (progress && !progress.cancelled) {
      progress.cancelled = true;
      this.respond(request, peer, 200);
      return;
    }
    const record = this.bySipCallId.get(sipCallId);
    if (record?.pendingInvite && !record.pendingInvite.cancelled) {
      record.pendingInvite.cancelled = true;
      this.respond(request, peer, 200);
      this.respond(record.pendingInvite.request, record.pendingInvite.peer, 487, { toTag: newTag() });
      this.removeRecord(record, 'hangup');
      return;
    }
    // Too late: the INVITE was answered (RFC 3261 9.2: the CANCEL has no effect but gets a 200).
    this.respond(request, peer, this.serverTransactions.has(request, 'INVITE') || record ? 200 : 481);
  }

  private onInfo(request: SipRequest, peer: SipPeer): void {
    const record = this.findDialogRecord(request);
    if (!record) return this.refuse(request, peer, 481);
    const contentType = headerValue(request.headers, 'Content-Type') ?? '';
    const digit = parseDtmfInfo(contentType, request.body.toString('utf8'));
    if (!digit)
      return this.refuse(request, peer, 415, [
        { name: 'Accept', value: 'application/dtmf-relay, application/dtmf' },
      ]);
    this.respond(request, peer, 200);
    record.media.injectDigit(digit);
  }

  // ---------------------------------------------------------------- responses

  private onResponse(response: SipResponse): void {
    this.options.metrics.sipMessages.inc({ transport: 'any', kind: 'response' });
    if (this.clientTransactions.receive(response)) return;
    // A retransmitted 2xx to our INVITE: our ACK was lost (RFC 3261 13.2.2.4).
    if (response.status >= 200 && response.status < 300 && cseqOf(response).method === 'INVITE') {
      const record = this.bySipCallId.get(headerValue(response.headers, 'Call-ID') ?? '');
      if (record?.ackForOk && record.dialog) this.transport.send(record.ackForOk, record.dialog.peer);
    }
  }

  // ---------------------------------------------------------------- dial-out

  /** Calls a phone for a room participant; the call then goes through notice, consent and admission. */
  dialOut(request: DialOutRequest): DialOutCall {
    const callId = randomBytes(12).toString('hex');
    const answered = this.placeCall(callId, request).catch((error: unknown) => {
      const failure = error instanceof DialOutError ? error : new DialOutError('unreachable');
      const status: PhoneCallStatus = {
        callId,
        direction: 'dial-out',
        state: 'failed',
        roomId: request.roomId,
        participantId: request.participantId,
        role: request.role ?? 'patient',
        reason: failure.reason,
        sipStatus: failure.status,
      };
      this.remember(status);
      this.log.info({ callId, reason: failure.reason, status: failure.status }, 'dial-out failed');
      this.emit('callFailed', status);
      throw failure;
    });
    answered.catch(() => undefined); // The caller may not listen; failures are also events.
    return { callId, answered };
  }

  private async targetOf(uri: string): Promise<SipPeer> {
    const { config } = this.options;
    const target = parseSipUri(config.trunk.outboundProxy ?? uri);
    if (!target) throw new DialOutError('invalid-target');
    let transport: SipTransportName = target.transport ?? (this.transport.supports('udp') ? 'udp' : 'tcp');
    if (!this.transport.supports(transport)) transport = 'tcp';
    let address = target.host;
    if (!net.isIP(address)) {
      try {
        address = (await dns.lookup(address)).address;
      } catch {
        throw new DialOutError('unreachable');
      }
    }
    const port = target.port ?? (transport === 'tls' ? 5061 : 5060);
    // Over TLS the certificate is checked against the name dialled, not the address it resolved to.
    const byName = transport === 'tls' && !net.isIP(target.host);
    return { transport, address, port, ...(byName ? { serverName: target.host } : {}) };
  }

  private async placeCall(callId: string, request: DialOutRequest): Promise<void> {
    const { config } = this.options;
    if (this.closed) throw new DialOutError('closed');
    if (!parseSipUri(request.to)) throw new DialOutError('invalid-target');
    if (this.calls.size >= config.maxCalls) throw new DialOutError('busy-here');
    const invitation: PhoneInvitation = {
      roomId: request.roomId,
      participantId: request.participantId,
      role: request.role ?? 'patient',
    };
    await this.options.port.checkDialOut(invitation).catch(() => {
      throw new DialOutError('room-unavailable');
    });
    const peer = await this.targetOf(request.to);
    // SDES keys travel in the SDP: SRTP is offered only over TLS, and 'required' calls only there.
    let offerSrtp = peer.transport === 'tls' && config.srtp !== 'off';
    if (config.srtp === 'required' && !offerSrtp) throw new DialOutError('srtp-required');
    const media = await this.openMedia();
    const sipCallId = newSipCallId(this.local.host);
    const localTag = newTag();
    const record: CallRecord = {
      callId,
      direction: 'dial-out',
      media,
      dialog: undefined,
      call: undefined,
      sdpVersion: 1,
      sdpSessionId: String(Date.now()),
      negotiated: undefined,
      pendingInvite: undefined,
      okRetransmit: undefined,
      ackForOk: undefined,
      outgoingInvite: undefined,
      outgoingPeer: undefined,
      outgoingFailed: false,
      confirmed: false,
      ending: false,
      invitation,
      state: 'ringing',
      failure: undefined,
      localCrypto: offerSrtp ? { tag: 1, keyAndSalt: randomBytes(30) } : undefined,
    };
    this.addRecord(record, sipCallId);
    const localHeader = `<sip:${config.trunk.fromUser}@${this.local.host}>;tag=${localTag}`;
    const offerBody = () =>
      Buffer.from(
        buildAudioSdp({
          sessionId: record.sdpSessionId,
          version: record.sdpVersion,
          address: config.rtp.announcedAddress ?? config.rtp.listenHost,
          port: media.localPort,
          codecs: [
            { codec: 'PCMU', pt: 0 },
            { codec: 'PCMA', pt: 8 },
          ],
          telephoneEventPt: DEFAULT_TELEPHONE_EVENT_PT,
          ...(record.localCrypto ? { crypto: record.localCrypto } : {}),
        }),
      );
    let seq = 1;
    let authorization: SipHeader | undefined;
    let ringTimer: NodeJS.Timeout | undefined;
    const ringOut = new Promise<'ring-timeout'>((resolve) => {
      ringTimer = setTimeout(() => resolve('ring-timeout'), config.ringTimeoutS * 1000);
    });
    try {
      for (let round = 0; ; round++) {
        const invite: SipRequest = {
          kind: 'request',
          method: 'INVITE',
          uri: request.to,
          headers: [
            viaHeader(this.local, peer.transport),
            { name: 'Max-Forwards', value: '70' },
            { name: 'From', value: localHeader },
            { name: 'To', value: `<${request.to}>` },
            { name: 'Call-ID', value: sipCallId },
            { name: 'CSeq', value: `${seq} INVITE` },
            contactHeader(this.local, peer.transport, config.trunk.fromUser, isSipsUri(request.to)),
            ALLOW_HEADER,
            ...(authorization ? [authorization] : []),
            { name: 'Content-Type', value: 'application/sdp' },
          ],
          body: offerBody(),
        };
        record.outgoingInvite = invite;
        record.outgoingPeer = peer;
        const pending = this.clientTransactions.request(invite, peer, {}, (config.ringTimeoutS + 32) * 1000);
        const outcome = await Promise.race([pending.then((response) => ({ response })), ringOut]);
        if (outcome === 'ring-timeout') {
          // Nobody answered in time: CANCEL, and settle whatever final response still comes.
          this.cancelOutgoing(record, peer);
          void pending.then((late) => {
            if (late && late.status >= 300) this.ackNonSuccess(invite, late, peer);
            else if (late) this.byeAfterLateAnswer(late, peer, sipCallId, localHeader, seq);
          });
          throw new DialOutError('no-answer');
        }
        const { response } = outcome;
        record.outgoingInvite = undefined;
        if (response && response.status >= 300) this.ackNonSuccess(invite, response, peer);
        if (record.ending) {
          if (response && response.status < 300)
            this.byeAfterLateAnswer(response, peer, sipCallId, localHeader, seq);
          throw new DialOutError(this.closed ? 'closed' : 'cancelled', response?.status);
        }
        if (!response) throw new DialOutError(record.outgoingFailed ? 'unreachable' : 'no-answer');
        if ((response.status === 401 || response.status === 407) && round < 2) {
          authorization = this.answerChallenge(response, 'INVITE', request.to, round);
          if (!authorization) throw new DialOutError('auth-failed', response.status);
          seq++;
          continue;
        }
        if (response.status === 488 && offerSrtp && config.srtp === 'offered') {
          // The phone does not take SRTP: 'offered' means best effort, so offer plain RTP once.
          offerSrtp = false;
          record.localCrypto = undefined;
          record.sdpVersion++;
          seq++;
          continue;
        }
        if (response.status === 487) throw new DialOutError('no-answer', 487);
        if (response.status >= 300)
          throw new DialOutError(
            response.status === 401 || response.status === 407
              ? 'auth-failed'
              : response.status === 486 || response.status === 600
                ? 'busy'
                : 'rejected',
            response.status,
          );
        this.confirmOutgoing(record, response, peer, sipCallId, localHeader, seq, request.to);
        record.state = 'answered';
        this.log.info({ callId }, 'dial-out answered');
        this.emit('callAnswered', statusOf(record));
        this.startOutgoingScript(record, invitation);
        return;
      }
    } catch (error) {
      record.failure = error instanceof DialOutError ? error : new DialOutError('unreachable');
      this.removeRecord(record, 'ended');
      throw error;
    } finally {
      clearTimeout(ringTimer);
    }
  }

  private confirmOutgoing(
    record: CallRecord,
    response: SipResponse,
    peer: SipPeer,
    sipCallId: string,
    localHeader: string,
    seq: number,
    requestUri: string,
  ): void {
    const to = headerValue(response.headers, 'To') ?? '';
    const contact = headerValue(response.headers, 'Contact');
    record.dialog = {
      sipCallId,
      localTag: headerParam(localHeader, 'tag') ?? '',
      remoteTag: headerParam(to, 'tag') ?? '',
      localHeader,
      remoteHeader: to,
      remoteTarget: contact && parseSipUri(uriOf(contact)) ? uriOf(contact) : requestUri,
      routeSet: headerValues(response.headers, 'Record-Route').reverse(),
      localSeq: seq,
      peer,
    };
    // The ACK of a 2xx is its own transaction (new branch), sent end to end.
    record.ackForOk = dialogRequest(record.dialog, this.local, 'ACK', { cseq: seq });
    this.transport.send(record.ackForOk, peer);
    record.confirmed = true;
    const answer = parseAudioSdp(response.body.toString('utf8'));
    const negotiated = answer.ok ? negotiateAudio(answer.value, ['PCMU', 'PCMA']) : answer;
    // The answer's profile must be the offer's (RFC 3264 6), and an SRTP answer must carry a key
    // under the tag we offered (RFC 4568 5.1.2).
    const mine = record.localCrypto;
    const theirs = negotiated.ok ? negotiated.value.srtp : undefined;
    if (
      !negotiated.ok ||
      (mine === undefined) !== (theirs === undefined) ||
      (theirs && theirs.tag !== mine?.tag)
    ) {
      this.endCall(record, 'error');
      throw new DialOutError(mine && negotiated.ok ? 'srtp-mismatch' : 'no-common-codec');
    }
    if (mine && theirs)
      record.media.setSrtp(
        new SrtpContext(mine.keyAndSalt.subarray(0, 16), mine.keyAndSalt.subarray(16)),
        new SrtpContext(theirs.masterKey, theirs.masterSalt),
      );
    record.negotiated = negotiated.value;
    record.media.setRemote(negotiated.value);
  }

  /** Starts the script of an answered dial-out call (separate so placeCall's errors stay SIP ones). */
  private startOutgoingScript(record: CallRecord, invitation: PhoneInvitation): void {
    const caller: PhoneCaller = {
      number: undefined,
      sourceAddress: record.dialog?.peer.address ?? '',
      callId: record.callId,
    };
    record.call = this.createCall(record, caller);
    record.call.run(invitation);
  }

  /** The phone answered after we gave up (CANCEL crossed the 200): ACK and BYE that dialog. */
  private byeAfterLateAnswer(
    response: SipResponse,
    peer: SipPeer,
    sipCallId: string,
    localHeader: string,
    seq: number,
  ): void {
    const dialog: Dialog = {
      sipCallId,
      localTag: headerParam(localHeader, 'tag') ?? '',
      remoteTag: headerParam(headerValue(response.headers, 'To') ?? '', 'tag') ?? '',
      localHeader,
      remoteHeader: headerValue(response.headers, 'To') ?? '',
      remoteTarget:
        uriOf(headerValue(response.headers, 'Contact') ?? '') ||
        uriOf(headerValue(response.headers, 'To') ?? ''),
      routeSet: headerValues(response.headers, 'Record-Route').reverse(),
      localSeq: seq,
      peer,
    };
    this.transport.send(dialogRequest(dialog, this.local, 'ACK', { cseq: seq }), peer);
    void this.clientTransactions.request(dialogRequest(dialog, this.local, 'BYE'), peer);
  }

  private ackNonSuccess(invite: SipRequest, response: SipResponse, peer: SipPeer): void {
    // RFC 3261 17.1.1.3: To from the response.
    const ack = requestOnInviteBranch(invite, 'ACK', headerValue(response.headers, 'To') ?? '');
    this.transport.send(ack, peer);
  }

  private answerChallenge(
    response: SipResponse,
    method: string,
    uri: string,
    round: number,
  ): SipHeader | undefined {
    const { trunk } = this.options.config;
    if (!trunk.authUsername || trunk.authPassword === null) return undefined;
    const proxy = response.status === 407;
    // Not headerValues: a challenge's parameters are comma-separated inside one header value.
    const name = proxy ? 'Proxy-Authenticate' : 'WWW-Authenticate';
    const challenge = chooseChallenge(response.headers.filter((h) => h.name === name).map((h) => h.value));
    if (!challenge || (round > 0 && !challenge.stale)) return undefined;
    return {
      name: proxy ? 'Proxy-Authorization' : 'Authorization',
      value: buildAuthorization({
        challenge,
        credentials: { username: trunk.authUsername, password: trunk.authPassword },
        method,
        uri,
        nonceCount: 1,
      }),
    };
  }

  private cancelOutgoing(record: CallRecord, peer: SipPeer): void {
    const invite = record.outgoingInvite;
    if (!invite) return;
    // RFC 3261 9.1: To as in the INVITE.
    const cancel = requestOnInviteBranch(invite, 'CANCEL', headerValue(invite.headers, 'To') ?? '');
    void this.clientTransactions.request(cancel, peer);
  }

  // ---------------------------------------------------------------- registration

  private async startRegistration(): Promise<void> {
    const { registration } = this.options.config;
    if (!registration.registrar || !registration.aor) return;
    const target = await this.targetOf(registration.registrar).catch(() => undefined);
    // Calls from the registrar are trusted like the trunk's.
    if (target) this.allowedSources.add(target.address);
    void this.register(true);
  }

  private async register(active: boolean): Promise<boolean> {
    const { registration, trunk } = this.options.config;
    if (!registration.registrar || !registration.aor) return false;
    clearTimeout(this.registrationTimer);
    let peer: SipPeer;
    try {
      peer = await this.targetOf(registration.registrar);
    } catch {
      this.scheduleRegistration(REGISTRATION_RETRY_MS);
      return false;
    }
    const expires = active ? registration.expiresS : 0;
    let authorization: SipHeader | undefined;
    for (let round = 0; round < 3; round++) {
      const seq = ++this.registrationSeq;
      const register: SipRequest = {
        kind: 'request',
        method: 'REGISTER',
        uri: registration.registrar,
        headers: [
          viaHeader(this.local, peer.transport),
          { name: 'Max-Forwards', value: '70' },
          { name: 'From', value: `<${registration.aor}>;tag=${this.registrationTag}` },
          { name: 'To', value: `<${registration.aor}>` },
          { name: 'Call-ID', value: this.registrationCallId },
          { name: 'CSeq', value: `${seq} REGISTER` },
          contactHeader(
            this.local,
            peer.transport,
            uriUser(registration.aor) ?? trunk.fromUser,
            isSipsUri(registration.registrar),
          ),
          { name: 'Expires', value: String(expires) },
          ...(authorization ? [authorization] : []),
        ],
        body: Buffer.alloc(0),
      };
      const response = await this.clientTransactions.request(register, peer);
      if (this.closed && active) return false;
      if (response && (response.status === 401 || response.status === 407)) {
        authorization = this.answerChallenge(response, 'REGISTER', registration.registrar, round);
        if (authorization) continue;
      }
      const ok = response !== undefined && response.status >= 200 && response.status < 300;
      this.setRegistered(ok && active);
      if (active) {
        const granted = Number(headerValue(response?.headers ?? [], 'Expires') ?? registration.expiresS);
        this.scheduleRegistration(
          ok ? Math.max(30, Math.min(granted, registration.expiresS)) * 800 : REGISTRATION_RETRY_MS,
        );
      }
      if (!ok) this.log.warn({ status: response?.status }, 'SIP registration failed');
      return ok;
    }
    this.setRegistered(false);
    if (active) this.scheduleRegistration(REGISTRATION_RETRY_MS);
    return false;
  }

  private scheduleRegistration(delayMs: number): void {
    if (this.closed) return;
    clearTimeout(this.registrationTimer);
    this.registrationTimer = setTimeout(() => void this.register(true), delayMs);
  }

  private setRegistered(registered: boolean): void {
    if (this.registered === registered) return;
    this.registered = registered;
    this.options.metrics.sipRegistered.set(registered ? 1 : 0);
    this.emit('registration', { registered });
  }

  // ---------------------------------------------------------------- calls

  private async openMedia(): Promise<PhoneMediaLeg> {
    const { rtp } = this.options.config;
    return PhoneMediaLeg.open({
      listenHost: rtp.listenHost,
      minPort: rtp.minPort,
      maxPort: rtp.maxPort,
      mediasoupListenIp: rtp.mediasoupListenIp,
      symmetric: rtp.symmetric,
      log: this.log,
    });
  }

  private addRecord(record: CallRecord, sipCallId: string): void {
    this.calls.set(record.callId, record);
    this.bySipCallId.set(sipCallId, record);
    this.options.metrics.sipCalls.inc({ direction: record.direction });
    this.emit('callStarted', { callId: record.callId, direction: record.direction });
  }

  private removeRecord(record: CallRecord, reason: PhoneLeaveReason): void {
    if (!this.calls.has(record.callId)) return;
    record.ending = true;
    this.stopOkRetransmit(record);
    this.calls.delete(record.callId);
    for (const [key, value] of this.bySipCallId) if (value === record) this.bySipCallId.delete(key);
    if (record.call) record.call.end(reason);
    else record.media.close();
    this.options.metrics.sipCalls.dec({ direction: record.direction });
    this.options.metrics.sipCallsEnded.inc({ direction: record.direction, reason });
    // A dial-out that was never answered failed (placeCall reports it); it did not end.
    if (record.direction === 'dial-out' && !record.confirmed) return;
    record.state = 'ended';
    const status = { ...statusOf(record), reason };
    this.remember(status);
    this.log.info({ callId: record.callId, direction: record.direction, reason }, 'phone call ended');
    this.emit('callEnded', { callId: record.callId, direction: record.direction, reason, status });
  }

  private remember(status: PhoneCallStatus): void {
    this.recentlyEnded.delete(status.callId);
    this.recentlyEnded.set(status.callId, status);
    if (this.recentlyEnded.size > RECENT_CALLS_KEPT) {
      const oldest = this.recentlyEnded.keys().next().value;
      if (oldest !== undefined) this.recentlyEnded.delete(oldest);
    }
  }

  private createCall(record: CallRecord, caller: PhoneCaller): PhoneCall {
    const { config, port, metrics } = this.options;
    return new PhoneCall({
      callId: record.callId,
      direction: record.direction,
      caller,
      callerNumber: record.direction === 'dial-in' ? caller.number : undefined,
      media: record.media,
      config,
      port,
      prompts: this.prompts,
      pinGuard: this.pinGuard,
      log: this.log.child({ callId: record.callId }),
      metrics,
      requestHangup: (reason) => this.endCall(record, reason),
      onState: (state) => {
        if (state !== 'ended') record.state = state;
        this.emit('callState', { callId: record.callId, state });
      },
      onInvitation: (invitation) => (record.invitation = invitation),
    });
  }

  /** Ends a call: BYE (or CANCEL while ringing) when `signal` and the dialog exists, then cleanup. */
  private endCall(record: CallRecord, reason: PhoneLeaveReason, signal = true): void {
    if (record.ending) return;
    if (signal && record.outgoingInvite && record.outgoingPeer && !record.confirmed) {
      // Still ringing: CANCEL; the 487 that follows is ACKed by placeCall.
      this.cancelOutgoing(record, record.outgoingPeer);
    } else if (signal && record.dialog && record.confirmed) {
      const bye = dialogRequest(record.dialog, this.local, 'BYE');
      void this.clientTransactions.request(bye, record.dialog.peer);
    } else if (signal && record.dialog && !record.confirmed && record.direction === 'dial-in') {
      // 2xx sent but never ACKed: a BYE still ends the dialog on the phone side (RFC 3261 15).
      const bye = dialogRequest(record.dialog, this.local, 'BYE');
      void this.clientTransactions.request(bye, record.dialog.peer);
    }
    this.removeRecord(record, reason);
  }

  /**
   * Hangs up a call (BYE, or CANCEL while a dial-out call still rings) and returns its final state;
   * a call that already ended keeps the state it ended in; undefined for an unknown call.
   */
  hangup(callId: string): PhoneCallStatus | undefined {
    const record = this.calls.get(callId);
    if (!record) return this.recentlyEnded.get(callId);
    const ringing = record.direction === 'dial-out' && !record.confirmed;
    this.endCall(record, 'ended');
    if (ringing) {
      // placeCall reports the failure when the 487 comes; the answer is known now.
      this.remember({ ...statusOf(record), state: 'failed', reason: 'cancelled' });
    }
    return this.recentlyEnded.get(callId);
  }

  private checkMediaTimeouts(): void {
    const now = Date.now();
    for (const record of [...this.calls.values()]) {
      if (
        record.confirmed &&
        record.negotiated?.direction === 'sendrecv' &&
        now - record.media.lastPhonePacketAt > this.options.config.rtp.timeoutS * 1000
      )
        this.endCall(record, 'media-timeout');
    }
  }

  /** Stops accepting calls, ends every call with BYE, unregisters, closes sockets. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.mediaWatch);
    clearTimeout(this.registrationTimer);
    this.pinGuard.close();
    for (const record of [...this.calls.values()]) this.endCall(record, 'ended');
    if (this.registered) await Promise.race([this.register(false), new Promise((r) => setTimeout(r, 2000))]);
    // Give the BYEs a moment on the wire before the sockets close.
    await new Promise((resolve) => setTimeout(resolve, 50));
    this.clientTransactions.clear();
    this.serverTransactions.clear();
    this.transport.close();
    this.removeAllListeners();
  }
}

function statusOf(record: CallRecord): PhoneCallStatus {
  return {
    callId: record.callId,
    direction: record.direction,
    state: record.state,
    roomId: record.invitation?.roomId,
    participantId: record.invitation?.participantId,
    role: record.invitation?.role,
    reason: record.failure?.reason,
    sipStatus: record.failure?.status,
  };
}

/**
 * An ACK (for a non-2xx answer) or a CANCEL of an INVITE: same Request-URI, top Via (so the same
 * branch), From, Call-ID and CSeq number as the INVITE.
 */
function requestOnInviteBranch(invite: SipRequest, method: 'ACK' | 'CANCEL', to: string): SipRequest {
  return {
    kind: 'request',
    method,
    uri: invite.uri,
    headers: [
      ...headerValues(invite.headers, 'Via')
        .slice(0, 1)
        .map((value) => ({ name: 'Via', value })),
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: headerValue(invite.headers, 'From') ?? '' },
      { name: 'To', value: to },
      { name: 'Call-ID', value: headerValue(invite.headers, 'Call-ID') ?? '' },
      { name: 'CSeq', value: `${cseqOf(invite).seq} ${method}` },
    ],
    body: Buffer.alloc(0),
  };
}

function isSipsUri(uri: string): boolean {
  return /^sips:/i.test(uri);
}

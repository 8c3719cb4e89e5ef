import type { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';

/**
 * The narrow port between the phone gateway and the rooms. The room code implements it; the gateway
 * only calls it. The gateway never sees tokens, names or health data: a phone participant is known by
 * the room and participant ids the room gave it, and by the call id the gateway chose.
 *
 * Order of calls for one phone leg:
 *   dial-in:  resolvePin -> [recordConsent] -> joinPhoneParticipant -> (admitted) openTransport ->
 *             publishPhoneProducer -> leave
 *   dial-out: checkDialOut -> (answered) [recordConsent] -> joinPhoneParticipant -> ... -> leave
 * recordConsent is called only for roles that consent themselves (`mustConsent`), after "press 1".
 * `leave` is called exactly once for every successful `joinPhoneParticipant`, whatever ends the call.
 */
export interface PhoneRoomPort {
  /**
   * Maps a PIN typed on the keypad to the invitation it belongs to. Returns undefined for an unknown,
   * used or expired PIN (the gateway counts it as a failed attempt; it does the rate limiting itself).
   * A PIN is single-use like a join link: the room marks it used when the participant joins.
   */
  resolvePin(pin: string, caller: PhoneCaller): Promise<PhoneInvitation | undefined>;

  /**
   * Whether a participant of this role gives its own consent (by pressing 1 after the notice).
   * Others hear the notice and join without being asked (a third party is covered by the patient).
   */
  mustConsent(role: string): boolean;

  /**
   * Before a dial-out call rings: rejects with an SfuError (NOT_FOUND, ROOM_CLOSED,
   * FORBIDDEN_FOR_ROLE, ...) when that participant could not join the room.
   */
  checkDialOut(invitation: PhoneInvitation): Promise<void>;

  /**
   * Journals the caller's answer to the spoken notice (phone audio is not end-to-end encrypted, the
   * others are told). Called before joining; without `accepted: true` the gateway never joins.
   */
  recordConsent(consent: PhoneConsent): Promise<void>;

  /**
   * Puts the phone participant in the room's waiting room. The room tells the other participants that
   * a phone leg (not end-to-end encrypted) is present. Rejects with an SfuError (ROOM_CLOSED,
   * ROOM_FULL, NOT_FOUND, ...) when the participant cannot join.
   */
  joinPhoneParticipant(request: PhoneJoinRequest): Promise<PhoneParticipant>;

  /**
   * The phone leg ended (hang-up, timeout, error). Idempotent. Ends the incarnation this call
   * (`callId`) joined, never a newer one of the same identity that another call brought in.
   */
  leave(request: PhoneLeaveRequest): Promise<void>;
}

export interface PhoneCaller {
  /** Caller number as presented by the trunk (From or P-Asserted-Identity user part); never logged. */
  readonly number: string | undefined;
  /** Source address of the SIP request (the trunk's address in trunk mode). */
  readonly sourceAddress: string;
  readonly callId: string;
}

export interface PhoneInvitation {
  readonly roomId: string;
  readonly participantId: string;
  /** Role the invitation grants (e.g. 'patient', 'interpreter'); journalled with the consent. */
  readonly role: string;
}

export interface PhoneConsent {
  readonly roomId: string;
  readonly participantId: string;
  readonly callId: string;
  readonly accepted: boolean;
  /** Version of the spoken notice (config `noticeVersion`). */
  readonly noticeVersion: string;
  readonly language: 'fr' | 'en';
  readonly direction: 'dial-in' | 'dial-out';
  /** When the key was pressed (ms since epoch). */
  readonly at: number;
}

export interface PhoneJoinRequest {
  readonly roomId: string;
  readonly participantId: string;
  /** The role of the invitation the caller redeemed (or of the dial-out request). */
  readonly role: string;
  /** The caller consented by keypress (only asked where mustConsent(role)). */
  readonly consentGiven: boolean;
  readonly callId: string;
  readonly direction: 'dial-in' | 'dial-out';
  /** Negotiated G.711 law, so the room can show it (the producer uses it too). */
  readonly codec: 'PCMU' | 'PCMA';
}

export interface PhoneLeaveRequest {
  readonly roomId: string;
  readonly participantId: string;
  readonly callId: string;
  readonly reason: PhoneLeaveReason;
}

export type PhoneLeaveReason =
  | 'hangup' // the phone hung up
  | 'ended' // the gateway ended the call (gateway.hangup, shutdown)
  | 'removed' // the room removed the participant or closed
  | 'declined' // the practitioner declined admission
  | 'media-timeout' // no RTP from the phone for too long
  | 'error';

export interface PhoneParticipantEvents {
  /** Another participant's audio the phone should now hear (admitted, unmuted). */
  audioProducerAdded: [types.Producer];
  /** That audio is gone (producer closed, participant left or muted by policy). */
  audioProducerRemoved: [string];
  /** The room removed the participant or closed: the gateway hangs up. */
  removed: [string];
  /**
   * The room's media moved to this router (its worker died): the phone leg's transport is gone
   * and is rebuilt there; the phone then hears `audioProducersToHear()` again.
   */
  mediaMoved: [types.Router];
}

/** The phone participant's presence in a room, as returned by joinPhoneParticipant. */
export interface PhoneParticipant {
  /** The room's router now (the leg asks it what it can consume). */
  readonly router: types.Router;
  /**
   * Creates the leg's plain transport on the room's router (after admission). The room owns it:
   * removal, decline, consent withdrawal and the room's end close it with the participant's other
   * media, before the gateway hears of it; the gateway closes it only to move or hang up.
   */
  openTransport(options: {
    listenIp: string;
    appData: Record<string, unknown>;
  }): Promise<types.PlainTransport>;
  /**
   * Resolves when the practitioner admits the participant; rejects when declined or the room closes.
   * Nothing flows to or from the phone before that (the gateway keeps its media sockets to itself).
   */
  readonly admitted: Promise<void>;
  /** The audio producers the phone should hear now (after admission). */
  audioProducersToHear(): types.Producer[];
  /** Hands the phone's producer to the room, which offers it to the other participants. */
  publishPhoneProducer(producer: types.Producer): Promise<void>;
  readonly events: EventEmitter<PhoneParticipantEvents>;
}

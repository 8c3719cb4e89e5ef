import { AdmissionState as AdmissionStateSchema, type AdmissionState } from '../protocol/messages.js';

/**
 * The admission state machine, as data. Every state change of a participant goes through
 * `nextState()`; anything not in this table is refused with INVALID_STATE. The table is tested
 * cell by cell (tests/rooms/admission.test.ts) and documented in docs/protocol.md.
 *
 *   invited -> waiting -> consented -> admitted -> in-call -> left
 *                  \-> declined, removed; invited -> expired
 */
export type AdmissionEvent =
  /** A participant who must wait arrives (patient, assistant, observer in a waiting-room room). */
  | 'arrive'
  /** A participant who needs no admission arrives (the practitioner; anyone when the room has no waiting room). */
  | 'arriveAdmitted'
  /** The patient gives the consent its admission needs (third parties: the patient's consent covering them). */
  | 'consent'
  /** That consent is withdrawn: a waiting participant goes back to waiting, an admitted one leaves. */
  | 'withdrawConsent'
  /** The practitioner admits (and, for a third party, approves). */
  | 'admit'
  /** The practitioner puts the participant on hold with a message: no state change, allowed while waiting. */
  | 'hold'
  | 'decline'
  /** First media exchanged. */
  | 'startMedia'
  | 'leave'
  | 'remove'
  /** An invitation unused at its expiry. */
  | 'expire';

export const ADMISSION_EVENTS: readonly AdmissionEvent[] = [
  'arrive',
  'arriveAdmitted',
  'consent',
  'withdrawConsent',
  'admit',
  'hold',
  'decline',
  'startMedia',
  'leave',
  'remove',
  'expire',
];

/** Every state, in the protocol's order (the protocol schema is the one list). */
export const ADMISSION_STATES: readonly AdmissionState[] = AdmissionStateSchema.anyOf.map(
  (literal) => literal.const,
);

export const ADMISSION_TRANSITIONS: Readonly<
  Record<AdmissionState, Partial<Readonly<Record<AdmissionEvent, AdmissionState>>>>
> = {
  invited: { arrive: 'waiting', arriveAdmitted: 'admitted', expire: 'expired', remove: 'removed' },
  waiting: {
    consent: 'consented',
    admit: 'admitted',
    hold: 'waiting',
    decline: 'declined',
    leave: 'left',
    remove: 'removed',
  },
  consented: {
    withdrawConsent: 'waiting',
    admit: 'admitted',
    hold: 'consented',
    decline: 'declined',
    leave: 'left',
    remove: 'removed',
  },
  admitted: { startMedia: 'in-call', withdrawConsent: 'left', leave: 'left', remove: 'removed' },
  'in-call': { startMedia: 'in-call', withdrawConsent: 'left', leave: 'left', remove: 'removed' },
  left: {},
  declined: {},
  expired: {},
  removed: {},
};

/** The state after `event`, or undefined when the table forbids it. */
export function nextState(state: AdmissionState, event: AdmissionEvent): AdmissionState | undefined {
  return ADMISSION_TRANSITIONS[state][event];
}

/** States in which a participant is part of the consultation (counted, reachable). */
export function isActive(state: AdmissionState): boolean {
  return state !== 'left' && state !== 'declined' && state !== 'expired' && state !== 'removed';
}

/** States in which media flows with the others. */
export function exchangesMedia(state: AdmissionState): boolean {
  return state === 'admitted' || state === 'in-call';
}

import type { JournalEventData, JournalEventType } from '../../src/journal/events.js';

/** A realistic consultation, in order: what the room code would journal. */
export const CONSENT_HASH = 'a'.repeat(64);

export function consultationEvents(consultationId: string): Array<{
  type: JournalEventType;
  data: JournalEventData;
}> {
  return [
    { type: 'consultation.created', data: { consultationId, e2ee: true, platformRef: 'appt-42' } },
    {
      type: 'participant.invited',
      data: { participantId: 'p-doc', role: 'practitioner', professional: { rpps: '10101010101' } },
    },
    { type: 'participant.invited', data: { participantId: 'p-pat', role: 'patient', channel: 'link' } },
    { type: 'participant.admitted', data: { participantId: 'p-doc', role: 'practitioner' } },
    {
      type: 'participant.waiting',
      data: { participantId: 'p-pat', role: 'patient', identityStatus: 'declared' },
    },
    {
      type: 'consent.given',
      data: {
        participantId: 'p-pat',
        consent: {
          textId: 'consent-tc',
          version: '3',
          hash: CONSENT_HASH,
          purpose: 'teleconsultation',
          locale: 'fr',
        },
      },
    },
    {
      type: 'participant.admitted',
      data: { participantId: 'p-pat', role: 'patient', admittedBy: 'p-doc', identityStatus: 'verified' },
    },
    { type: 'incident', data: { kind: 'connection-lost', participantId: 'p-pat', detail: 'ice-failed' } },
    { type: 'incident', data: { kind: 'reconnected', participantId: 'p-pat' } },
    { type: 'participant.left', data: { participantId: 'p-pat', reason: 'left' } },
    {
      type: 'consultation.ended',
      data: { reason: 'ended-by-practitioner', endedBy: 'p-doc', durationS: 900 },
    },
  ];
}

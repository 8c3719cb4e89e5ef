import type { Static } from '@sinclair/typebox';
import type { IncidentKind } from '../journal/events.js';
import type { JournalExport } from '../journal/exportFormat.js';

/**
 * Events the platform's backend receives. The POST body is
 * `{ "id": <Webhook-Id>, "type": <type>, "createdAt": <ISO time>, "data": <below> }`.
 * No names, no health content: identifiers and the journal export only.
 */
export interface WebhookEventMap {
  /** A single-use invitation was not used in time: the platform may cancel or reschedule. */
  'invitation.expired': {
    consultationId: string;
    participantId: string;
    role: string;
    expiredAt: string;
  };
  /** A patient waits in the waiting room (for platforms that notify the practitioner). */
  'participant.waiting': {
    consultationId: string;
    participantId: string;
    role: string;
    since: string;
  };
  /** A technical incident the platform may show or act on, as journalled. */
  'consultation.incident': {
    consultationId: string;
    kind: Static<typeof IncidentKind>;
    participantId?: string;
    at: string;
  };
  /** A phone the server called (POST .../phone-calls) answered. */
  'phone.call.answered': {
    consultationId: string;
    callId: string;
    participantId: string;
    role: string;
    at: string;
  };
  /** A phone the server called never answered: busy, rejected, no-answer, cancelled, ... */
  'phone.call.failed': {
    consultationId: string;
    callId: string;
    participantId: string;
    role: string;
    reason: string;
    sipStatus?: number;
    at: string;
  };
  /** An answered phone call (dial-out, or dial-in after its PIN) ended. */
  'phone.call.ended': {
    consultationId: string;
    callId: string;
    participantId: string;
    role: string;
    direction: 'dial-in' | 'dial-out';
    reason: string;
    at: string;
  };
  /** The consultation ended: carries the journal export, the record the platform must keep. */
  'consultation.ended': {
    consultationId: string;
    endedAt: string;
    reason: string;
    journal: JournalExport;
  };
}

export type WebhookEventType = keyof WebhookEventMap;

export const WEBHOOK_EVENT_TYPES: readonly WebhookEventType[] = [
  'invitation.expired',
  'participant.waiting',
  'consultation.incident',
  'phone.call.answered',
  'phone.call.failed',
  'phone.call.ended',
  'consultation.ended',
];

export interface WebhookEvent<T extends WebhookEventType = WebhookEventType> {
  type: T;
  data: WebhookEventMap[T];
  /** Becomes the Webhook-Id; a key already in the outbox is not enqueued twice. */
  idempotencyKey?: string;
}

/** The JSON body POSTed to the platform. */
export interface WebhookBody<T extends WebhookEventType = WebhookEventType> {
  id: string;
  type: T;
  createdAt: string;
  data: WebhookEventMap[T];
}

/**
 * Server package for platform backends (`@teleconsult/server`): a typed client of the media
 * server's REST API, webhook verification (signature, replay window, once per id) and join links
 * (token in the URL fragment). See docs/packages.md.
 */
export { TeleconsultClient, TeleconsultApiError } from './restClient.js';
export type {
  ConsentText,
  ConsentTextInput,
  CreateInvitationBody,
  CreateRoomBody,
  Invitation,
  JournalExport,
  ParticipantInfo,
  Room,
  TeleconsultClientOptions,
} from './restClient.js';
export { WebhookReceiver } from './webhookReceiver.js';
export type {
  WebhookBody,
  WebhookEventMap,
  WebhookEventType,
  WebhookReceiverOptions,
  WebhookRefusal,
  WebhookResult,
} from './webhookReceiver.js';
export { buildJoinLink, readJoinFragment } from '../protocol/joinLink.js';

/** Public surface of the signed webhook outbox. */
export { WebhookOutbox as FileWebhookOutbox } from './outbox.js';
export { PgWebhookOutbox } from './pgOutbox.js';
/** Either outbox: what the room code and the reconciliation use. */
export type { WebhookOutboxPort as WebhookOutbox } from './port.js';
export type { WebhookOutboxOptions, EnqueueResult } from './outbox.js';
export { signWebhook, verifyWebhookSignature, SIGNATURE_SCHEME } from './signature.js';
export { WebhookError, isWebhookError } from './errors.js';
export type { WebhookErrorCode } from './errors.js';
export { WEBHOOK_EVENT_TYPES } from './events.js';
export type { WebhookEventMap, WebhookEventType, WebhookEvent, WebhookBody } from './events.js';
export { enqueueEndedWebhook, reconcileEndedWebhooks, endedWebhookKey } from './reconcile.js';

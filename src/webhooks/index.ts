/** Public surface of the signed webhook outbox. */
export { WebhookOutbox } from './outbox.js';
export type { WebhookOutboxOptions, EnqueueResult } from './outbox.js';
export { signWebhook, verifyWebhookSignature, SIGNATURE_SCHEME } from './signature.js';
export { WebhookError, isWebhookError } from './errors.js';
export type { WebhookErrorCode } from './errors.js';
export { WEBHOOK_EVENT_TYPES } from './events.js';
export type { WebhookEventMap, WebhookEventType, WebhookEvent, WebhookBody } from './events.js';
export { enqueueEndedWebhook, reconcileEndedWebhooks, endedWebhookKey } from './reconcile.js';

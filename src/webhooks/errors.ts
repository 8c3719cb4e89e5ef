/** Typed errors of the webhook outbox; codes are stable, messages carry no event data. */
export type WebhookErrorCode =
  | 'WEBHOOK_CONFIG'
  | 'WEBHOOK_INVALID_EVENT'
  | 'WEBHOOK_TOO_LARGE'
  | 'WEBHOOK_BACKPRESSURE'
  | 'WEBHOOK_IO'
  | 'WEBHOOK_CLOSED';

export class WebhookError extends Error {
  override readonly name = 'WebhookError';

  constructor(
    readonly code: WebhookErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${code}: ${message}`, options);
  }
}

export function isWebhookError(value: unknown, code?: WebhookErrorCode): value is WebhookError {
  return value instanceof WebhookError && (code === undefined || value.code === code);
}

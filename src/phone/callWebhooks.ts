import type { Logger } from '../observability/logger.js';
import type { WebhookEvent, WebhookOutbox } from '../webhooks/index.js';
import type { SipGateway } from './gateway.js';

/**
 * Tells the platform about phone calls: a dial-out answered or failed, an answered call ended.
 * Only calls tied to a room are reported (a dial-in call before its PIN is nobody's yet); the
 * call id is the gateway's own, never a number or a SIP Call-ID.
 */
export function sendPhoneCallWebhooks(gateway: SipGateway, outbox: WebhookOutbox, log: Logger): void {
  const send = (event: WebhookEvent) => {
    outbox
      .enqueue(event)
      .catch((err: unknown) => log.error({ err: (err as Error).message }, 'phone webhook not queued'));
  };
  gateway.on('callAnswered', (status) => {
    if (!status.roomId || !status.participantId) return;
    send({
      type: 'phone.call.answered',
      data: {
        consultationId: status.roomId,
        callId: status.callId,
        participantId: status.participantId,
        role: status.role ?? 'patient',
        at: new Date().toISOString(),
      },
      idempotencyKey: `phone.call.answered:${status.callId}`,
    });
  });
  gateway.on('callFailed', (status) => {
    if (!status.roomId || !status.participantId) return;
    send({
      type: 'phone.call.failed',
      data: {
        consultationId: status.roomId,
        callId: status.callId,
        participantId: status.participantId,
        role: status.role ?? 'patient',
        reason: status.reason ?? 'unknown',
        ...(status.sipStatus !== undefined ? { sipStatus: status.sipStatus } : {}),
        at: new Date().toISOString(),
      },
      idempotencyKey: `phone.call.failed:${status.callId}`,
    });
  });
  gateway.on('callEnded', ({ status, reason, direction }) => {
    if (!status.roomId || !status.participantId) return;
    send({
      type: 'phone.call.ended',
      data: {
        consultationId: status.roomId,
        callId: status.callId,
        participantId: status.participantId,
        role: status.role ?? 'patient',
        direction,
        reason,
        at: new Date().toISOString(),
      },
      idempotencyKey: `phone.call.ended:${status.callId}`,
    });
  });
}

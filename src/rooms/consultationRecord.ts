import { isJournalError, type JournalStore } from '../journal/index.js';
import type { JournalEventData, JournalEventType } from '../journal/events.js';
import type { WebhookOutbox } from '../webhooks/index.js';
import { enqueueEndedWebhook } from '../webhooks/index.js';
import type { Logger } from '../observability/logger.js';
import { SfuError } from '../errors/catalogue.js';

type IncidentKind = JournalEventData<'incident'>['kind'];

/**
 * What rooms write to the consultation journal and send as webhooks. An acknowledged operation
 * (consent given, admission, ...) awaits its record: nothing is answered before it is on disk.
 */
export class ConsultationRecord {
  constructor(
    private readonly journal: JournalStore,
    private readonly outbox: WebhookOutbox,
    private readonly log: Logger,
  ) {}

  /** Appends a record; a failure refuses the operation it documents. */
  async record<T extends JournalEventType>(
    roomId: string,
    type: T,
    data: JournalEventData<T>,
  ): Promise<void> {
    try {
      await this.journal.append(roomId, type, data);
    } catch (err) {
      // A consultation id that has a journal (ended, open or moved aside as corrupt) is never reused.
      if (
        type === 'consultation.created' &&
        (isJournalError(err, 'JOURNAL_EXISTS') || isJournalError(err, 'JOURNAL_CORRUPT'))
      )
        throw new SfuError('ROOM_ID_TAKEN');
      if (isJournalError(err, 'JOURNAL_ENDED')) throw new SfuError('ROOM_CLOSED');
      this.log.error({ room: roomId, type, err: (err as Error).message }, 'journal append failed');
      throw new SfuError('INTERNAL', 'journal unavailable');
    }
  }

  /**
   * The first record of a consultation. A room adopted by a cluster node whose journal store
   * already holds that consultation continues its chain rather than starting it again.
   */
  async created(
    roomId: string,
    data: JournalEventData<'consultation.created'>,
    adopted: boolean,
  ): Promise<void> {
    try {
      await this.journal.append(roomId, 'consultation.created', data);
    } catch (err) {
      if (adopted && isJournalError(err, 'JOURNAL_EXISTS')) return;
      if (isJournalError(err, 'JOURNAL_EXISTS') || isJournalError(err, 'JOURNAL_CORRUPT'))
        throw new SfuError('ROOM_ID_TAKEN');
      this.log.error({ room: roomId, err: (err as Error).message }, 'journal append failed');
      throw new SfuError('INTERNAL', 'journal unavailable');
    }
  }

  /** Incidents are recorded and announced to the platform; a failure is logged, not thrown. */
  incident(roomId: string, kind: IncidentKind, participantId?: string, detail?: string): void {
    const data = {
      kind,
      ...(participantId !== undefined ? { participantId } : {}),
      ...(detail !== undefined ? { detail } : {}),
    };
    void this.record(roomId, 'incident', data)
      .then(() =>
        this.outbox.enqueue({
          type: 'consultation.incident',
          data: {
            consultationId: roomId,
            kind,
            ...(participantId ? { participantId } : {}),
            at: new Date().toISOString(),
          },
        }),
      )
      .catch((err: unknown) =>
        this.log.error({ room: roomId, err: (err as Error).message }, 'incident not recorded'),
      );
  }

  /** Last records of a consultation, then the webhook carrying the journal export. */
  async ended(
    roomId: string,
    presentParticipantIds: string[],
    reason: string,
    endedBy?: string,
  ): Promise<void> {
    for (const participantId of presentParticipantIds) {
      await this.record(roomId, 'participant.left', { participantId, reason: 'room-ended' });
    }
    await this.record(roomId, 'consultation.ended', { reason, ...(endedBy ? { endedBy } : {}) });
    await enqueueEndedWebhook(this.journal, this.outbox, roomId);
  }

  invitationExpired(roomId: string, participantId: string, role: string): void {
    void this.outbox
      .enqueue({
        type: 'invitation.expired',
        data: { consultationId: roomId, participantId, role, expiredAt: new Date().toISOString() },
        idempotencyKey: `invitation.expired:${roomId}:${participantId}`,
      })
      .catch((err: unknown) =>
        this.log.error({ room: roomId, err: (err as Error).message }, 'expiry webhook not queued'),
      );
  }

  participantWaiting(roomId: string, participantId: string, role: string): void {
    void this.outbox
      .enqueue({
        type: 'participant.waiting',
        data: { consultationId: roomId, participantId, role, since: new Date().toISOString() },
      })
      .catch((err: unknown) =>
        this.log.error({ room: roomId, err: (err as Error).message }, 'waiting webhook not queued'),
      );
  }
}

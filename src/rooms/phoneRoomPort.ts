import { EventEmitter } from 'node:events';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { types } from 'mediasoup';
import { SfuError } from '../errors/catalogue.js';
import type { InvitationStore } from '../auth/invitations.js';
import type {
  PhoneCaller,
  PhoneConsent,
  PhoneInvitation,
  PhoneJoinRequest,
  PhoneLeaveRequest,
  PhoneParticipant,
  PhoneParticipantEvents,
  PhoneRoomPort,
} from '../phone/roomPort.js';
import type { RoomRegistry } from './roomRegistry.js';
import type { Participant, ParticipantLink } from './participant.js';
import type { Room } from './room.js';
import { Role } from '../protocol/messages.js';

const ROLES: readonly string[] = Role.anyOf.map((literal) => literal.const);
function isRole(role: string): role is Role {
  return ROLES.includes(role);
}

/**
 * The rooms' side of the phone gateway's port: PINs are invitation access codes; a phone
 * participant goes through the same waiting room and admission as everyone else, is shown to the
 * others as a phone leg (not end-to-end encrypted), and the journal records the fallback.
 */
export class PhoneRoomPortImpl implements PhoneRoomPort {
  private readonly noticeHashes = new Map<string, string>();
  /**
   * The incarnation each call joined, by call id: a call's `leave` ends that one only. The same
   * identity may have joined again since (a second call with a new code): the older call, hanging
   * up late, must not take the newer one out (docs/closures.md). The gateway calls `leave` once
   * per successful join, which forgets the entry.
   */
  private readonly joinedByCall = new Map<string, { room: Room; participant: Participant }>();

  constructor(
    private readonly rooms: RoomRegistry,
    private readonly invitations: InvitationStore,
    /** Folder of the spoken prompts; the consent refers to the hash of what was played. */
    private readonly promptsDir: string,
  ) {}

  resolvePin(pin: string, _caller: PhoneCaller): Promise<PhoneInvitation | undefined> {
    // The gateway's PIN policy counts attempts (src/phone/pinGuard.ts); the store's own
    // access-code limit must not judge the same attempt a second time.
    const claims = this.invitations.claim(pin);
    if (!claims || !this.rooms.get(claims.room)) return Promise.resolve(undefined);
    return Promise.resolve({ roomId: claims.room, participantId: claims.sub, role: claims.role });
  }

  /** Patients consent to the teleconsultation themselves; third parties are covered by the patient. */
  mustConsent(role: string): boolean {
    return role === 'patient';
  }

  checkDialOut(invitation: PhoneInvitation): Promise<void> {
    const room = this.rooms.get(invitation.roomId);
    if (!room) return Promise.reject(new SfuError('NOT_FOUND'));
    if (room.closed) return Promise.reject(new SfuError('ROOM_CLOSED'));
    if (!room.options.phoneAllowed)
      return Promise.reject(new SfuError('FORBIDDEN_FOR_ROLE', 'phone not allowed in this room'));
    if (!isRole(invitation.role)) return Promise.reject(new SfuError('MESSAGE_INVALID', 'role'));
    return Promise.resolve();
  }

  async recordConsent(consent: PhoneConsent): Promise<void> {
    if (!consent.accepted) return;
    await this.rooms.record.record(consent.roomId, 'consent.given', {
      participantId: consent.participantId,
      consent: {
        textId: `phone-notice-${consent.direction}`,
        version: consent.noticeVersion,
        hash: this.noticeHash(consent.language),
        purpose: 'teleconsultation',
        locale: consent.language,
      },
    });
  }

  async joinPhoneParticipant(request: PhoneJoinRequest): Promise<PhoneParticipant> {
    const room = this.rooms.get(request.roomId);
    if (!room) throw new SfuError('NOT_FOUND');
    const events = new EventEmitter<PhoneParticipantEvents>();
    let admit!: () => void;
    let refuse!: (error: Error) => void;
    const admitted = new Promise<void>((resolve, reject) => {
      admit = resolve;
      refuse = reject;
    });
    admitted.catch(() => undefined);
    if (!isRole(request.role)) throw new SfuError('MESSAGE_INVALID', 'role');
    const link: ParticipantLink = {
      notify: (name, data) => {
        // The room moved to another worker: the phone leg follows it (its transport died).
        if (name === 'mediaReset') events.emit('mediaMoved', room.currentRouter);
        if (name !== 'admissionChanged') return;
        const state = (data as { state: string }).state;
        if (state === 'admitted') admit();
        if (state === 'declined') refuse(new SfuError('INVALID_STATE', 'declined'));
      },
      close: (reason) => {
        refuse(new SfuError('ROOM_CLOSED', reason));
        events.emit('removed', reason);
      },
    };
    const { participant } = await this.rooms.join(
      {
        room: room.id,
        sub: request.participantId,
        role: request.role,
        name: 'Téléphone',
        jti: `phone-${randomUUID()}`,
        exp: Math.floor(Date.now() / 1000) + 3600,
      },
      link,
      { e2ee: false },
      { consentGiven: request.consentGiven },
    );
    this.rooms.record.incident(room.id, 'phone-fallback', participant.id, request.direction);
    this.rooms.record.incident(room.id, 'e2ee-downgraded', participant.id, 'phone-leg');
    try {
      await this.rooms.afterJoin(room, participant);
      if (participant.mayExchangeMedia) admit();
      this.relayAudio(room, participant, events);
    } catch (error) {
      // The gateway calls leave only for a join that succeeded: a failed one must not stay in the
      // room, listed and unreachable by the call that was refused.
      if (room.holds(participant) && participant.active)
        await this.rooms.leaveVoluntarily(room, participant, 'phone-join-failed').catch(() => undefined);
      throw error;
    }
    this.joinedByCall.set(request.callId, { room, participant });
    return {
      get router() {
        return room.currentRouter;
      },
      admitted,
      openTransport: (options) => room.createPlainTransport(participant, options),
      audioProducersToHear: () => this.audioFor(room, participant),
      publishPhoneProducer: (producer: types.Producer) => room.adoptProducer(participant, producer),
      events,
    };
  }

  async leave(request: PhoneLeaveRequest): Promise<void> {
    const joined = this.joinedByCall.get(request.callId);
    this.joinedByCall.delete(request.callId);
    if (!joined) return;
    const { room, participant } = joined;
    if (!room.holds(participant) || !participant.active) return;
    await this.rooms.leaveVoluntarily(room, participant, `phone-${request.reason}`);
  }

  private audioFor(room: Room, phone: Participant): types.Producer[] {
    const producers: types.Producer[] = [];
    for (const other of room.participants.values()) {
      if (other === phone || !other.mayExchangeMedia) continue;
      for (const producer of other.producers.values()) {
        // A stethoscope is for the practitioner: never mixed into a phone leg the table keeps it from.
        if (producer.kind === 'audio' && !producer.closed && room.sourceAllowedFor(phone, producer))
          producers.push(producer);
      }
    }
    return producers;
  }

  /** Tells the gateway about audio the phone should hear from now on, and audio that went away. */
  private relayAudio(room: Room, phone: Participant, events: EventEmitter<PhoneParticipantEvents>): void {
    const onProducer = (producer: types.Producer, owner: Participant) => {
      if (owner === phone || producer.kind !== 'audio' || !phone.mayExchangeMedia) return;
      if (!room.sourceAllowedFor(phone, producer)) return;
      events.emit('audioProducerAdded', producer);
      producer.observer.once('close', () => events.emit('audioProducerRemoved', producer.id));
    };
    room.events.on('mediaAdded', onProducer);
    events.once('removed', () => room.events.off('mediaAdded', onProducer));
  }

  private noticeHash(language: 'fr' | 'en'): string {
    const cached = this.noticeHashes.get(language);
    if (cached) return cached;
    const hash = createHash('sha256');
    for (const name of ['notice', 'consent']) {
      const file = path.join(this.promptsDir, language, `${name}.ulaw`);
      hash.update(fs.existsSync(file) ? fs.readFileSync(file) : Buffer.from(`${language}:${name}`));
    }
    const digest = hash.digest('hex');
    this.noticeHashes.set(language, digest);
    return digest;
  }
}

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

/**
 * The rooms' side of the phone gateway's port: PINs are invitation access codes; a phone
 * participant goes through the same waiting room and admission as everyone else, is shown to the
 * others as a phone leg (not end-to-end encrypted), and the journal records the fallback.
 */
export class PhoneRoomPortImpl implements PhoneRoomPort {
  private readonly noticeHashes = new Map<string, string>();

  constructor(
    private readonly rooms: RoomRegistry,
    private readonly invitations: InvitationStore,
    /** Folder of the spoken prompts; the consent refers to the hash of what was played. */
    private readonly promptsDir: string,
  ) {}

  resolvePin(pin: string, caller: PhoneCaller): Promise<PhoneInvitation | undefined> {
    // Callers behind one trunk share its address: count failures per calling number too.
    const key = `phone:${caller.sourceAddress}:${caller.number ?? caller.callId}`;
    try {
      const claims = this.invitations.redeem(pin, key);
      if (!this.rooms.get(claims.room)) return Promise.resolve(undefined);
      return Promise.resolve({ roomId: claims.room, participantId: claims.sub, role: claims.role });
    } catch (err) {
      if (err instanceof SfuError) return Promise.resolve(undefined);
      throw err;
    }
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
    const link: ParticipantLink = {
      notify: (name, data) => {
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
        role: 'patient',
        name: 'Téléphone',
        jti: `phone-${randomUUID()}`,
        exp: Math.floor(Date.now() / 1000) + 3600,
      },
      link,
      { e2ee: false },
      { consentGiven: true },
    );
    this.rooms.record.incident(room.id, 'phone-fallback', participant.id, request.direction);
    this.rooms.record.incident(room.id, 'e2ee-downgraded', participant.id, 'phone-leg');
    await this.rooms.afterJoin(room, participant);
    if (participant.mayExchangeMedia) admit();
    this.relayAudio(room, participant, events);
    return {
      router: room.currentRouter,
      admitted,
      audioProducersToHear: () => this.audioFor(room, participant),
      publishPhoneProducer: (producer: types.Producer) => room.adoptProducer(participant, producer),
      events,
    };
  }

  async leave(request: PhoneLeaveRequest): Promise<void> {
    const room = this.rooms.get(request.roomId);
    const participant = room?.participants.get(request.participantId);
    if (!room || !participant || !participant.phone || !participant.active) return;
    await this.rooms.leaveVoluntarily(room, participant, `phone-${request.reason}`);
  }

  private audioFor(room: Room, phone: Participant): types.Producer[] {
    const producers: types.Producer[] = [];
    for (const other of room.participants.values()) {
      if (other === phone || !other.mayExchangeMedia) continue;
      for (const producer of other.producers.values()) {
        if (producer.kind === 'audio' && !producer.closed) producers.push(producer);
      }
    }
    return producers;
  }

  /** Tells the gateway about audio the phone should hear from now on, and audio that went away. */
  private relayAudio(room: Room, phone: Participant, events: EventEmitter<PhoneParticipantEvents>): void {
    const onProducer = (producer: types.Producer, owner: Participant) => {
      if (owner === phone || producer.kind !== 'audio' || !phone.mayExchangeMedia) return;
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

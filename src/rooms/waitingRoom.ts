import { SfuError } from '../errors/catalogue.js';
import type { ConsentPurpose, ConsentRegistry } from '../consent/consentRegistry.js';
import type { PrecheckResult, RequestParams, WaitingEntry } from '../protocol/messages.js';
import type { ConsultationRecord } from './consultationRecord.js';
import { isThirdParty, type Participant } from './participant.js';
import { admissionRule, permits, roleMay, type Action } from '../protocol/permissions.js';
import type { Room } from './room.js';

export type RemoveFn = (
  room: Room,
  participant: Participant,
  reason: 'left' | 'removed' | 'declined',
) => void;

/**
 * The waiting room and consent-gated admission. Every state change goes through the admission
 * table (admission.ts) and is journalled before anyone is told. Rules:
 * - a practitioner is admitted on arrival; everyone else waits;
 * - a patient is admitted only after its own teleconsultation consent;
 * - a third party (assistant, observer) only after the patient's third-party consent covering it;
 * - in a room without a waiting room, admission follows consent automatically; otherwise a
 *   practitioner admits (which, for a third party, is the approval).
 */
export class WaitingRoom {
  constructor(
    private readonly consentTexts: ConsentRegistry,
    private readonly record: ConsultationRecord,
    private readonly remove: RemoveFn,
  ) {}

  async arrive(room: Room, participant: Participant): Promise<void> {
    const { id: participantId, role } = participant.identity;
    if (admissionRule(role) === 'on-arrival') {
      participant.transition('arriveAdmitted');
      await this.record.record(room.id, 'participant.admitted', {
        participantId,
        role,
        ...(participant.identity.rpps ? { professional: { rpps: participant.identity.rpps } } : {}),
      });
      return;
    }
    participant.transition('arrive');
    await this.record.record(room.id, 'participant.waiting', {
      participantId,
      role,
      ...(participant.identity.identityStatus ? { identityStatus: participant.identity.identityStatus } : {}),
    });
    if (isThirdParty(role)) {
      await this.record.record(room.id, 'thirdparty.requested', {
        requestId: participantId,
        requestedBy: participantId,
        role,
        participantId,
      });
      for (const patient of this.patients(room)) this.askConsent(patient, participant);
    } else {
      this.record.participantWaiting(room.id, participantId, role);
    }
  }

  /**
   * Asks a patient for every third-party consent still open: a patient who arrives after the third
   * party, or comes back on a new connection, must be asked too (arrival only asks those present).
   */
  requestOpenConsents(room: Room, patient: Participant): void {
    if (!roleMay(patient.role, 'consent') || !patient.active) return;
    for (const thirdParty of room.activeParticipants()) {
      if (
        isThirdParty(thirdParty.role) &&
        !thirdParty.mayExchangeMedia &&
        !thirdParty.coveredByPatientConsent
      )
        this.askConsent(patient, thirdParty);
    }
  }

  private askConsent(patient: Participant, thirdParty: Participant): void {
    patient.link?.notify('consentRequested', {
      purpose: 'third-party',
      participantId: thirdParty.id,
      role: thirdParty.role,
      text: { ...this.consentTexts.current('third-party') },
    });
  }

  /** Called after arrival and after each consent: admits automatically where the room allows it. */
  async settle(room: Room, participant: Participant): Promise<void> {
    if (!room.options.waitingRoom && !participant.mayExchangeMedia && this.consentSatisfied(participant)) {
      await this.admitNow(room, participant, undefined);
    }
    this.publishWaitingList(room);
  }

  async giveConsent(
    room: Room,
    patient: Participant,
    params: RequestParams<'giveConsent'>,
  ): Promise<Participant[]> {
    this.require(patient, 'consent');
    const consent = this.consentReference(params.purpose);
    if (
      consent.textId !== params.textId ||
      consent.version !== params.version ||
      consent.hash !== params.hash
    ) {
      throw new SfuError('INVALID_STATE', 'consent text is not the current version');
    }
    if (params.purpose === 'third-party') {
      const thirdParty = this.thirdPartyFor(room, params.coversParticipantId);
      await this.record.record(room.id, 'consent.given', {
        participantId: patient.id,
        consent,
        requestId: thirdParty.id,
      });
      thirdParty.setCoveredByPatientConsent(true);
      await this.settle(room, thirdParty);
      return [thirdParty];
    }
    await this.record.record(room.id, 'consent.given', { participantId: patient.id, consent });
    patient.recordConsent(params.purpose);
    if (params.purpose === 'teleconsultation' && patient.state === 'waiting') patient.transition('consent');
    patient.link?.notify('admissionChanged', { state: patient.state });
    await this.settle(room, patient);
    return [patient];
  }

  async withdrawConsent(
    room: Room,
    patient: Participant,
    params: RequestParams<'withdrawConsent'>,
  ): Promise<void> {
    this.require(patient, 'consent');
    const consent = this.consentReference(params.purpose);
    if (params.purpose === 'third-party') {
      const thirdParty = this.thirdPartyFor(room, params.coversParticipantId);
      if (!thirdParty.coveredByPatientConsent) throw new SfuError('INVALID_STATE', 'no such consent');
      await this.record.record(room.id, 'consent.withdrawn', {
        participantId: patient.id,
        consent,
        requestId: thirdParty.id,
      });
      thirdParty.setCoveredByPatientConsent(false);
      room.events.emit('consentWithdrawn', patient, thirdParty);
      if (thirdParty.mayExchangeMedia) {
        await this.record.record(room.id, 'participant.removed', {
          participantId: thirdParty.id,
          by: patient.id,
          reason: 'consent-withdrawn',
        });
        this.remove(room, thirdParty, 'removed');
      }
      this.publishWaitingList(room);
      return;
    }
    if (!patient.consents.has(params.purpose)) throw new SfuError('INVALID_STATE', 'no such consent');
    await this.record.record(room.id, 'consent.withdrawn', { participantId: patient.id, consent });
    patient.forgetConsent(params.purpose);
    room.events.emit('consentWithdrawn', patient, undefined);
    if (params.purpose !== 'teleconsultation') return;
    if (patient.state === 'consented') {
      patient.transition('withdrawConsent');
      patient.link?.notify('admissionChanged', { state: patient.state });
      this.publishWaitingList(room);
      return;
    }
    // Withdrawing the teleconsultation consent ends the participation.
    await this.record.record(room.id, 'participant.left', {
      participantId: patient.id,
      reason: 'consent-withdrawn',
    });
    this.remove(room, patient, 'left');
  }

  async admit(room: Room, by: Participant, targetId: string): Promise<Participant> {
    this.requirePractitioner(by);
    const target = this.waitingParticipant(room, targetId);
    if (!this.consentSatisfied(target)) throw new SfuError('CONSENT_REQUIRED');
    await this.admitNow(room, target, by);
    this.publishWaitingList(room);
    return target;
  }

  async hold(room: Room, by: Participant, targetId: string, message: string): Promise<void> {
    this.requirePractitioner(by);
    const target = this.waitingParticipant(room, targetId);
    target.transition('hold');
    await this.record.record(room.id, 'participant.held', { participantId: target.id, by: by.id });
    target.setHeldMessage(message);
    target.link?.notify('admissionChanged', { state: target.state, message });
    this.publishWaitingList(room);
  }

  async decline(room: Room, by: Participant, targetId: string): Promise<void> {
    this.requirePractitioner(by);
    const target = this.waitingParticipant(room, targetId);
    await this.record.record(room.id, 'participant.declined', { participantId: target.id, by: by.id });
    target.link?.notify('admissionChanged', { state: 'declined' });
    this.remove(room, target, 'declined');
    this.publishWaitingList(room);
  }

  reportPrecheck(room: Room, participant: Participant, result: PrecheckResult): void {
    if (participant.mayExchangeMedia) throw new SfuError('INVALID_STATE', 'already admitted');
    participant.setPrecheck(result);
    this.publishWaitingList(room);
  }

  entries(room: Room): WaitingEntry[] {
    return room
      .activeParticipants()
      .filter((p) => !p.mayExchangeMedia)
      .map((p) => ({
        participant: p.info(),
        since: p.joinedAt.toISOString(),
        consents: [...p.consents],
        coveredByPatientConsent: p.coveredByPatientConsent,
        precheck: p.precheck,
        heldMessage: p.heldMessage,
      }));
  }

  waitingList(room: Room, by: Participant): WaitingEntry[] {
    this.requirePractitioner(by);
    return this.entries(room);
  }

  publishWaitingList(room: Room): void {
    const practitioners = room
      .activeParticipants()
      .filter((p) => permits(p.role, p.state, 'manageWaitingRoom'));
    if (practitioners.length === 0) return;
    const entries = this.entries(room);
    for (const practitioner of practitioners) practitioner.link?.notify('waitingListChanged', { entries });
  }

  /** What the journal keeps of a consent: which text, which version, its hash, its purpose. */
  private consentReference(purpose: ConsentPurpose) {
    const current = this.consentTexts.current(purpose);
    return {
      textId: current.textId,
      version: current.version,
      hash: current.hash,
      purpose,
      locale: current.locale,
    };
  }

  private consentSatisfied(participant: Participant): boolean {
    switch (admissionRule(participant.role)) {
      case 'on-arrival':
        return true;
      case 'own-consent':
        return participant.consents.has('teleconsultation' satisfies ConsentPurpose);
      case 'patient-consent':
        return participant.coveredByPatientConsent;
    }
  }

  private async admitNow(room: Room, target: Participant, by: Participant | undefined): Promise<void> {
    target.transition('admit');
    if (isThirdParty(target.role) && by) {
      await this.record.record(room.id, 'thirdparty.approved', {
        requestId: target.id,
        approvedBy: by.id,
        participantId: target.id,
      });
    }
    await this.record.record(room.id, 'participant.admitted', {
      participantId: target.id,
      role: target.role,
      ...(by ? { admittedBy: by.id } : {}),
      ...(target.identity.identityStatus ? { identityStatus: target.identity.identityStatus } : {}),
    });
    target.setHeldMessage(null);
    room.endWaitingMedia(target);
    room.broadcast('participantUpdated', { participant: target.info() }, target);
    // The others' media is announced (consumerAdded) before the admission itself, so that the
    // client learns of its admission with its subscriptions already under way and can set them up
    // before its own publications compete with them (docs/sdk.md, "Waiting room").
    await room.onAdmitted(target);
    target.link?.notify('admissionChanged', { state: target.state });
  }

  private requirePractitioner(participant: Participant): void {
    this.require(participant, 'manageWaitingRoom');
  }

  /** The permission table: a role that never may is FORBIDDEN_FOR_ROLE, a state that may not is INVALID_STATE. */
  private require(participant: Participant, action: Action): void {
    if (!roleMay(participant.role, action)) throw new SfuError('FORBIDDEN_FOR_ROLE');
    if (!permits(participant.role, participant.state, action)) throw new SfuError('INVALID_STATE');
  }

  private waitingParticipant(room: Room, id: string): Participant {
    const target = room.participants.get(id);
    if (!target || !target.active) throw new SfuError('NOT_FOUND');
    if (target.mayExchangeMedia) throw new SfuError('INVALID_STATE', 'already admitted');
    return target;
  }

  private thirdPartyFor(room: Room, participantId: string | undefined): Participant {
    const target = participantId ? room.participants.get(participantId) : undefined;
    if (!target || !target.active || !isThirdParty(target.role)) throw new SfuError('NOT_FOUND');
    return target;
  }

  /** Those who give consents (patients). */
  private patients(room: Room): Participant[] {
    return room.activeParticipants().filter((p) => roleMay(p.role, 'consent'));
  }
}

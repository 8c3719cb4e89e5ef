import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { startTestServer, type TestServer } from '../support/server.js';
import { RequestError, SignallingClient } from '../support/signallingClient.js';
import { subscriberRtpCapabilities } from '../../bench/peer/index.js';
import { rtpParameters } from '../fuzz/signallingSession.js';
import type { Participant } from '../../src/rooms/participant.js';
import type { Room } from '../../src/rooms/room.js';
import type { Role } from '../../src/protocol/permissions.js';
import { LOOPBACK_PHONE } from '../phone/fixtures/phoneServer.js';
import { phoneStream, writeRtpPcap } from '../phone/fixtures/pcap.js';
import { freeUdpPort, runSipp, sippAvailable, type SippProcess } from '../phone/fixtures/sipp.js';
import os from 'node:os';

/**
 * A model-based test of a participant's life against the real server (real workers, real
 * WebSockets, the real REST API). fast-check draws shrinkable sequences of what people and the
 * platform do; after every step the invariants below are checked against the server's own state.
 *
 * Invariants (docs/closures.md, docs/authorization.md, docs/encryption.md):
 * - media flows from A to B (a consumer on B of A's producer) only if both are the room's current
 *   incarnations and the permission table lets A publish and B receive in their states; a
 *   participant that is not admitted holds no consumer but its own pre-call loopback;
 * - one live participant per (room, identity): an incarnation that is no longer the room's holds
 *   no open transport within 1 s, and every identity whose socket is open and which did not leave
 *   is listed by REST (so it is removable);
 * - in an e2eeRequired room no one joins or publishes without E2EE (phone legs apart);
 * - a phone participant (a real SIP call from sipp that typed an invitation's code and took its
 *   role) is listed by REST while the room holds it, hence removable, and once removed, replaced,
 *   declined or hung up it holds no transport (its plain transport included) within 1 s;
 * - at the end: the journal verifies, in order; connection and media counters are back to zero.
 */

export const IDENTITIES = ['doc', 'pat', 'asst', 'obs'] as const;
export type Who = (typeof IDENTITIES)[number];
const ROLE_OF: Record<Who, Role> = {
  doc: 'practitioner',
  pat: 'patient',
  asst: 'assistant',
  obs: 'observer',
};
const TARGETS = ['pat', 'asst', 'obs'] as const;
type Target = (typeof TARGETS)[number];
/** The phone participant's identity: a third party dialling in with an invitation's code. */
export const PHONE = 'tel';
type PhoneTarget = Target | typeof PHONE;
export type PhoneRole = 'assistant' | 'observer';

export type Step =
  | { kind: 'join'; who: Who; e2ee: boolean }
  | { kind: 'disconnect'; who: Who }
  | { kind: 'silence'; who: Who }
  | { kind: 'kill'; who: Who }
  | { kind: 'resume'; who: Who }
  | { kind: 'consent' }
  | { kind: 'consentFor'; target: 'asst' | 'obs' | typeof PHONE }
  | { kind: 'withdraw'; target: 'self' | 'asst' | 'obs' }
  | { kind: 'admit'; target: PhoneTarget }
  | { kind: 'hold'; target: PhoneTarget }
  | { kind: 'decline'; target: PhoneTarget }
  | { kind: 'remove'; target: Who | typeof PHONE }
  | { kind: 'leave'; who: Who }
  | { kind: 'publish'; who: Who }
  | { kind: 'subscribe'; who: Who }
  | { kind: 'precheck'; who: Who }
  | { kind: 'connectAhead'; who: Who }
  | { kind: 'wait'; ms: number }
  | { kind: 'endRoom' }
  | { kind: 'killWorker' }
  | { kind: 'phoneJoin'; role: PhoneRole }
  | { kind: 'phoneHangup' };

export interface RoomKind {
  e2eeRequired: boolean;
  waitingRoom: boolean;
}

export interface Scenario {
  room: RoomKind;
  steps: Step[];
}

/** The configuration of the server under test: short timers so that late ones fire during runs. */
export const MODEL_SERVER_CONFIG = {
  auth: { resumeGraceS: 1 },
  media: { workers: 2 },
  limits: { messagesPerSecond: 100_000, connectionsPerAddress: 10_000, authTimeoutMs: 2_000 },
  quality: { enabled: false },
  // The SIP gateway on loopback, for the phone steps (skipped where sipp is missing).
  phone: LOOPBACK_PHONE,
};
/** How long a phone caller takes to be in the room: welcome, code, spoken notice (about 12 s). */
const PHONE_JOIN_TIMEOUT_MS = 30_000;
/** A removed phone participant's call plays its goodbye (about 1 s), then sends BYE. */
const PHONE_ORPHAN_MS = 3_000;

const GRACE_MS = 1000;
/** Answers a step may get without anything being wrong: the sequence asked for something impossible. */
const REFUSALS = new Set([
  'NOT_FOUND',
  'INVALID_STATE',
  'CONSENT_REQUIRED',
  'NOT_ADMITTED',
  'FORBIDDEN_FOR_ROLE',
  'ROOM_CLOSED',
  'AUTH_REQUIRED',
  'ALREADY_JOINED',
  'RESUME_REJECTED',
  'ACCESS_DENIED',
  'TRANSPORT_NOT_FOUND',
  'PRODUCER_NOT_FOUND',
  'LIMIT_EXCEEDED',
  'E2EE_REQUIRED',
]);

export class InvariantViolation extends Error {}

/** How often each step got each answer: shows what the exploration actually reached. */
export const OUTCOMES = new Map<string, number>();
function count(key: string): void {
  OUTCOMES.set(key, (OUTCOMES.get(key) ?? 0) + 1);
}

interface Incarnation {
  client: SignallingClient;
  /** Joined (or resumed) on this socket. */
  joined: boolean;
  /** It asked to leave, or withdrew its own consent once admitted: gone while the socket stays. */
  gone: boolean;
  /** It stopped reading: the socket looks open to the server but nothing gets through. */
  silent: boolean;
  resumeToken: string | undefined;
}

const KEY = 'BEl1c1bHs0K6yCv0bUgRkDz3X8c0h4mYqQ9m3aA1Zr0';

/** The system under test for one sequence: one room on the shared server, and its people. */
export class Consultation {
  readonly people = new Map<Who, Incarnation>();
  readonly closedClients: SignallingClient[] = [];
  /** Sockets of older incarnations (or resumed sessions) per identity, oldest first. */
  private readonly stale = new Map<Who, SignallingClient[]>();
  /** Every incarnation the server ever held in this room. */
  private readonly seen = new Set<Participant>();
  ended = false;
  readonly log: string[] = [];
  private current = '';
  /** The phone calls placed in this room (sipp processes), and the gateway's ids of its calls. */
  readonly phoneCalls: SippProcess[] = [];
  private readonly callIds: string[] = [];
  private readonly onCallStarted = ({ callId }: { callId: string }) => this.callIds.push(callId);

  private constructor(
    readonly srv: TestServer,
    readonly roomId: string,
    readonly kind: RoomKind,
  ) {}

  static async open(srv: TestServer, kind: RoomKind): Promise<Consultation> {
    const res = await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: kind });
    if (res.status !== 201) throw new Error(`room not created: ${res.status}`);
    const consultation = new Consultation(srv, res.body.id, kind);
    srv.server.phone?.on('callStarted', consultation.onCallStarted);
    return consultation;
  }

  /** Ends what the sequence left behind: sockets, phone calls, the gateway listener. */
  release(): void {
    for (const client of [...this.closedClients, ...[...this.people.values()].map((p) => p.client)])
      client.ws.terminate();
    for (const call of this.phoneCalls) call.kill();
    this.srv.server.phone?.off('callStarted', this.onCallStarted);
  }

  get room(): Room | undefined {
    return this.srv.server.rooms.get(this.roomId);
  }

  /** Runs one step, then checks every invariant. */
  async apply(step: Step): Promise<void> {
    this.log.push(JSON.stringify(step));
    this.current = step.kind;
    await this.perform(step);
    if (
      ['disconnect', 'silence', 'kill', 'remove', 'wait', 'endRoom', 'killWorker', 'phoneHangup'].includes(
        step.kind,
      )
    )
      count(step.kind);
    await this.checkInvariants(step);
  }

  private live(who: Who): Incarnation | undefined {
    const person = this.people.get(who);
    return person && person.joined && !person.silent && person.client.closeCode === undefined
      ? person
      : undefined;
  }

  private async request(who: Who, run: (client: SignallingClient) => Promise<unknown>): Promise<string> {
    const person = this.live(who);
    if (!person) return 'skipped';
    return outcome(run(person.client));
  }

  private async perform(step: Step): Promise<void> {
    switch (step.kind) {
      case 'join':
        return this.join(step.who, step.e2ee);
      case 'disconnect': {
        const person = this.live(step.who);
        if (!person) return;
        person.client.close();
        await person.client.closed;
        return;
      }
      case 'silence': {
        const person = this.live(step.who);
        if (person) {
          person.client.ws.pause();
          person.silent = true;
        }
        return;
      }
      case 'kill': {
        // The oldest socket of that identity still open dies: an older incarnation's first.
        const stale = (this.stale.get(step.who) ?? []).find((c) => c.closeCode === undefined);
        const person = this.people.get(step.who);
        const victim = stale ?? (person && person.client.closeCode === undefined ? person.client : undefined);
        if (!victim) return;
        victim.ws.terminate();
        await victim.closed;
        return;
      }
      case 'resume':
        return this.resume(step.who);
      case 'consent':
        return this.expect(await this.request('pat', (c) => c.consent('teleconsultation')));
      case 'consentFor':
        return this.expect(await this.request('pat', (c) => c.consent('third-party', step.target)));
      case 'withdraw':
        return this.withdraw(step.target);
      case 'admit':
        return this.expect(
          await this.request('doc', (c) => c.request('admit', { participantId: step.target })),
        );
      case 'hold':
        return this.expect(
          await this.request('doc', (c) =>
            c.request('hold', { participantId: step.target, message: 'Un instant.' }),
          ),
        );
      case 'decline':
        return this.expect(
          await this.request('doc', (c) => c.request('decline', { participantId: step.target })),
        );
      case 'remove': {
        const res = await this.srv.rest('DELETE', `/v1/rooms/${this.roomId}/participants/${step.target}`);
        if (res.status !== 204 && res.status !== 404)
          throw new InvariantViolation(`REST removal answered ${res.status}`);
        return;
      }
      case 'leave': {
        const result = await this.request(step.who, (c) => c.request('leave', {}));
        this.expect(result);
        if (result === 'ok') this.people.get(step.who)!.gone = true;
        return;
      }
      case 'publish':
        return this.publish(step.who);
      case 'subscribe':
        return this.expect(
          await this.request(step.who, async (c) => {
            await c.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() });
            await c.request('createTransport', { direction: 'recv' });
          }),
        );
      case 'precheck':
        return this.expect(
          await this.request(step.who, async (c) => {
            await c.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() });
            await c.request('createTransport', { direction: 'recv', precheck: true });
            const send = await c.request('createTransport', { direction: 'send', precheck: true });
            await c.requestRaw('produce', {
              transportId: send.id,
              kind: 'audio',
              rtpParameters: rtpParameters('audio'),
              source: 'microphone',
            });
          }),
        );
      case 'connectAhead':
        // What the SDK does while waiting: room transports and the warm-up channel on them.
        return this.expect(
          await this.request(step.who, async (c) => {
            await c.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() });
            await c.request('createTransport', { direction: 'recv', sctp: true });
            const send = await c.request('createTransport', { direction: 'send', sctp: true });
            await c.request('produceData', {
              transportId: send.id,
              sctpStreamParameters: { streamId: 1, ordered: true },
              label: 'warm-up',
              protocol: '',
              warmUp: true,
            });
          }),
        );
      case 'wait':
        await sleep(step.ms);
        return;
      case 'endRoom': {
        const res = await this.srv.rest('DELETE', `/v1/rooms/${this.roomId}`);
        if (res.status !== 204 && res.status !== 404)
          throw new InvariantViolation(`REST end answered ${res.status}`);
        this.ended = true;
        return;
      }
      case 'killWorker':
        return this.killWorker();
      case 'phoneJoin':
        return this.phoneJoin(step.role);
      case 'phoneHangup':
        return this.phoneHangup();
    }
  }

  /**
   * A caller dials in through the real SIP gateway (sipp), types the code of an invitation of
   * `role` for the phone identity, hears the notice, and is in the room: the step returns once the
   * room holds a new phone incarnation. The call then lasts until the gateway ends it (BYE).
   */
  private async phoneJoin(role: PhoneRole): Promise<void> {
    const gateway = this.srv.server.phone;
    // Without sipp (a regression replayed where it is missing) there is no phone to dial with.
    if (!gateway || !withPhone) return;
    const invited = await this.srv.rest<{ accessCode: string }>(
      'POST',
      `/v1/rooms/${this.roomId}/invitations`,
      {
        role,
        participantId: PHONE,
      },
    );
    count(`phoneJoin -> invitation ${invited.status}`);
    if (invited.status !== 201) {
      if (this.ended) return;
      throw new InvariantViolation(`invitation for the phone answered ${invited.status}`);
    }
    const before = this.room?.participants.get(PHONE);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'model-phone-'));
    const pcap = path.join(dir, 'phone.pcap');
    const keys = [...`${invited.body.accessCode}#`].map((digit, i) => ({ digit, atMs: 800 + i * 200 }));
    writeRtpPcap(pcap, phoneStream({ durationMs: 120_000, keys, voice: true }));
    const call = runSipp({
      scenario: 'dial-in-hung-up.xml',
      remote: `127.0.0.1:${gateway.sipPorts.udp}`,
      localPort: await freeUdpPort(),
      mediaPort: await freeUdpPort(),
      values: { PCAP: pcap, RTP_PORT: await freeUdpPort(), CALLER: '0611111111', WAIT_MS: 150_000 },
      timeoutS: 160,
    });
    void call.done.then(() => fs.rmSync(dir, { recursive: true, force: true }));
    this.phoneCalls.push(call);
    const deadline = Date.now() + PHONE_JOIN_TIMEOUT_MS;
    for (;;) {
      const held = this.room?.participants.get(PHONE);
      if (held && held !== before && held.phone) {
        if (held.role !== role)
          throw new InvariantViolation(
            `the phone caller joined as ${held.role}, its invitation said ${role}`,
          );
        count(`phoneJoin -> in the room`);
        return;
      }
      if (this.ended || !this.room) return;
      const status = gateway.callStatus(this.callIds.at(-1) ?? '');
      // A full room refuses the caller (it hears the refusal and gets BYE): nothing else may.
      if (
        status?.state === 'ended' &&
        this.room.activeParticipants().length >= this.room.options.maxParticipants
      ) {
        count('phoneJoin -> ROOM_FULL');
        return;
      }
      if (Date.now() > deadline) {
        const run = call.done.then((r) => r.output.slice(-400));
        const output = await Promise.race([run, sleep(100).then(() => 'sipp still running')]);
        throw new InvariantViolation(
          `the phone caller was not in the room ${PHONE_JOIN_TIMEOUT_MS} ms after dialling (call ${status?.state ?? 'unknown'}, ${status?.reason ?? ''}; ${output})`,
        );
      }
      await sleep(100);
    }
  }

  /** The gateway hangs the latest call of this room up (REST), which sends BYE and leaves the room. */
  private async phoneHangup(): Promise<void> {
    const gateway = this.srv.server.phone;
    const callId = [...this.callIds]
      .reverse()
      .find(
        (id) => gateway?.callStatus(id)?.roomId === this.roomId && gateway.callStatus(id)?.state !== 'ended',
      );
    if (!callId) return;
    const res = await this.srv.rest('DELETE', `/v1/rooms/${this.roomId}/phone-calls/${callId}`);
    count(`phoneHangup -> ${res.status}`);
    if (res.status !== 200 && res.status !== 404)
      throw new InvariantViolation(`phone hang-up answered ${res.status}`);
  }

  private async join(who: Who, e2ee: boolean): Promise<void> {
    // The previous socket stays as it is (open, silent or closed): the server must cope with it.
    const previous = this.people.get(who);
    if (previous) {
      this.closedClients.push(previous.client);
      this.stale.set(who, [...(this.stale.get(who) ?? []), previous.client]);
    }
    const client = await SignallingClient.open(this.srv.wsUrl);
    const person: Incarnation = { client, joined: false, gone: false, silent: false, resumeToken: undefined };
    this.people.set(who, person);
    const token = await this.srv.token({ room: this.roomId, participantId: who, role: ROLE_OF[who] });
    const result = await outcome(
      client.request('join', {
        token,
        capabilities: e2ee ? { e2ee: true, e2eeKey: KEY } : { e2ee: false },
      }),
      (joined) => {
        person.joined = true;
        person.resumeToken = (joined as { resumeToken: string }).resumeToken;
      },
    );
    count(`join -> ${result}`);
    if (this.kind.e2eeRequired && !e2ee) {
      if (result !== 'E2EE_REQUIRED' && !(this.ended && result === 'ACCESS_DENIED'))
        throw new InvariantViolation(
          `${who} joined an e2eeRequired room without E2EE (${result}): nothing may be in clear`,
        );
      return;
    }
    if (result === 'ok' || (this.ended && result === 'ACCESS_DENIED')) return;
    throw new InvariantViolation(`join of ${who} answered ${result}`);
  }

  private async resume(who: Who): Promise<void> {
    const previous = this.people.get(who);
    // Resume from a new socket once the old one is gone, or while it hangs silent.
    if (!previous?.resumeToken || (previous.client.closeCode === undefined && !previous.silent)) return;
    const client = await SignallingClient.open(this.srv.wsUrl);
    this.closedClients.push(previous.client);
    this.stale.set(who, [...(this.stale.get(who) ?? []), previous.client]);
    const person: Incarnation = { ...previous, client, joined: false, silent: false };
    this.people.set(who, person);
    const result = await outcome(client.request('resume', { resumeToken: previous.resumeToken }), (res) => {
      person.joined = true;
      person.resumeToken = (res as { resumeToken: string }).resumeToken;
    });
    this.expect(result);
  }

  private async withdraw(target: 'self' | 'asst' | 'obs'): Promise<void> {
    const room = this.room;
    const patient = room?.participants.get('pat');
    const wasAdmitted = patient?.mayExchangeMedia ?? false;
    const result = await this.request('pat', (c) =>
      target === 'self'
        ? c.request('withdrawConsent', { purpose: 'teleconsultation' })
        : c.request('withdrawConsent', { purpose: 'third-party', coversParticipantId: target }),
    );
    this.expect(result);
    // An admitted patient withdrawing its own consent leaves; its socket stays open.
    if (result === 'ok' && target === 'self' && wasAdmitted) this.people.get('pat')!.gone = true;
  }

  private async publish(who: Who): Promise<void> {
    const result = await this.request(who, async (c) => {
      await c.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() });
      const send = await c.request('createTransport', { direction: 'send' });
      await c.requestRaw('produce', {
        transportId: send.id,
        kind: 'audio',
        rtpParameters: rtpParameters('audio'),
        source: 'microphone',
      });
    });
    this.expect(result);
  }

  private async killWorker(): Promise<void> {
    const room = this.room;
    const pid = room?.workerPid;
    if (!room || pid === undefined) return;
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && this.room?.workerPid === pid; i++) await sleep(50);
    if (this.room && this.room.workerPid === pid)
      throw new InvariantViolation('the room did not move off its dead worker within 5 s');
  }

  private expect(result: string): void {
    count(`${this.current} -> ${result}`);
    if (result === 'ok' || result === 'skipped' || REFUSALS.has(result) || result.startsWith('socket closed'))
      return;
    throw new InvariantViolation(`unexpected answer: ${result}`);
  }

  // ---------------------------------------------------------------------------------------------
  // Invariants

  async checkInvariants(step: Step): Promise<void> {
    const room = this.room;
    if (room) for (const participant of room.participants.values()) this.seen.add(participant);
    if (room) this.checkMedia(room);
    await this.checkStaleIncarnations(room, step);
    await this.checkPresence(room);
    await this.checkPhoneCalls(room);
  }

  /**
   * A call the gateway keeps up (waiting or in the call) has its participant in the room: once the room no
   * longer holds a phone incarnation, the call ends (goodbye, BYE) within PHONE_ORPHAN_MS. A phone
   * left talking to nobody is a participant the room cannot list, remove or journal any more.
   */
  private async checkPhoneCalls(room: Room | undefined): Promise<void> {
    const gateway = this.srv.server.phone;
    if (!gateway || !room || room.closed) return;
    const deadline = Date.now() + PHONE_ORPHAN_MS;
    for (;;) {
      const held = room.participants.get(PHONE);
      if (held?.active && held.phone) return;
      const orphans = this.callIds.filter((id) => {
        const status = gateway.callStatus(id);
        return status?.roomId === this.roomId && (status.state === 'waiting' || status.state === 'in-call');
      });
      if (orphans.length === 0) return;
      if (Date.now() > deadline)
        throw new InvariantViolation(
          `${orphans.length} phone call(s) still up ${PHONE_ORPHAN_MS} ms after the room stopped holding the phone participant`,
        );
      await sleep(50);
    }
  }

  /** Who consumes whom, from the server's own objects. */
  private checkMedia(room: Room): void {
    for (const receiver of room.participants.values()) {
      for (const consumer of receiver.consumers.values()) {
        if (consumer.closed) continue;
        const appData = consumer.appData as { participantId: string; precheck?: boolean };
        if (appData.precheck) {
          if (appData.participantId !== receiver.id || receiver.mayExchangeMedia)
            throw new InvariantViolation(
              `${receiver.id} holds a pre-call consumer while admitted or of another`,
            );
          continue;
        }
        const owner = room.participants.get(appData.participantId);
        if (!owner || !room.mayFlow(owner, receiver))
          throw new InvariantViolation(
            `${receiver.id} (${receiver.state}) consumes ${appData.participantId} (${owner?.state ?? 'gone'}): the table forbids it`,
          );
      }
      // Data: device readings only where the table allows; a warm-up channel (connect ahead) only
      // back to its own sender, and only while that one is not admitted.
      for (const dataConsumer of receiver.dataConsumers.values()) {
        if (dataConsumer.closed) continue;
        const appData = dataConsumer.appData as { participantId?: string; warmUp?: boolean };
        if (appData.warmUp) {
          if (appData.participantId !== receiver.id || receiver.mayExchangeMedia)
            throw new InvariantViolation(
              `${receiver.id} (${receiver.state}) holds a warm-up channel while admitted or of another`,
            );
          continue;
        }
        const owner = [...room.participants.values()].find((p) =>
          p.dataProducers.has(dataConsumer.dataProducerId),
        );
        if (!owner || !room.mayFlow(owner, receiver, 'receiveDeviceData'))
          throw new InvariantViolation(
            `${receiver.id} (${receiver.state}) receives data of ${owner?.id ?? 'gone'}: the table forbids it`,
          );
      }
      if (
        receiver.mayExchangeMedia &&
        [...receiver.dataProducers.values()].some(
          (d) => !d.closed && (d.appData as { warmUp?: boolean }).warmUp,
        )
      )
        throw new InvariantViolation(`${receiver.id} kept its warm-up channel past its admission`);
      if (this.kind.e2eeRequired && !receiver.e2ee && !receiver.phone) {
        const clear = [...receiver.producers.values()].filter(
          (p) => !p.closed && !(p.appData as { precheck?: boolean }).precheck,
        );
        if (clear.length > 0)
          throw new InvariantViolation(`${receiver.id} publishes without E2EE in an e2eeRequired room`);
        if (receiver.active)
          throw new InvariantViolation(`${receiver.id} is in an e2eeRequired room without E2EE`);
      }
    }
  }

  /** An incarnation the room no longer holds keeps no open transport past 1 s. */
  private async checkStaleIncarnations(room: Room | undefined, step: Step): Promise<void> {
    for (const participant of this.seen) {
      if (room?.holds(participant)) continue;
      const deadline = Date.now() + 1000;
      while (openTransports(participant) > 0 && Date.now() < deadline) await sleep(25);
      if (openTransports(participant) > 0)
        throw new InvariantViolation(
          `${participant.id} (generation ${participant.generation}) left the room but still holds ${openTransports(participant)} transport(s) 1 s after ${step.kind}`,
        );
    }
  }

  /** Whoever is connected, joined and did not leave is listed by REST (hence removable). */
  private async checkPresence(room: Room | undefined): Promise<void> {
    if (!room || this.ended) return;
    const phone = room.participants.get(PHONE);
    // Still held and active once REST has answered: it was there all along (not leaving meanwhile).
    if (phone?.active && !(await this.listed()).has(PHONE) && room.holds(phone) && phone.active)
      throw new InvariantViolation('the phone participant is in the room but REST does not list it');
    for (const who of IDENTITIES) {
      const person = this.live(who);
      if (!person || person.gone) continue;
      const listed = await this.listed();
      if (listed.has(who)) continue;
      // Removed, declined or replaced: the server closes that socket; give the close time to arrive.
      const closed = await Promise.race([person.client.closed, sleep(1000).then(() => undefined)]);
      if (closed === undefined)
        throw new InvariantViolation(
          `${who} is joined on an open socket but REST does not list it: it cannot be removed`,
        );
    }
  }

  private async listed(): Promise<Set<string>> {
    const res = await this.srv.rest<{ id: string }[]>('GET', `/v1/rooms/${this.roomId}/participants`);
    return new Set(res.status === 200 ? res.body.map((p) => p.id) : []);
  }

  /** Ends the consultation and checks what must hold once everyone is gone. */
  async finish(): Promise<void> {
    if (!this.ended) await this.srv.rest('DELETE', `/v1/rooms/${this.roomId}`);
    this.ended = true;
    const journal = await this.srv.rest<{
      records: { seq: number }[];
      verification: { ok: boolean; reason?: string };
    }>('GET', `/v1/rooms/${this.roomId}/journal`);
    if (journal.status !== 200) throw new InvariantViolation(`journal export answered ${journal.status}`);
    if (!journal.body.verification.ok)
      throw new InvariantViolation(`journal does not verify: ${journal.body.verification.reason ?? '?'}`);
    const first = journal.body.records[0]?.seq ?? 1;
    journal.body.records.forEach((record, index) => {
      if (record.seq !== first + index) throw new InvariantViolation(`journal out of order at ${index}`);
    });
    for (const client of [...this.closedClients, ...[...this.people.values()].map((p) => p.client)]) {
      client.ws.terminate();
    }
    await this.checkStaleIncarnations(undefined, { kind: 'endRoom' });
  }
}

/** Counters that must be back to zero once no room and no socket is left on the server. */
export async function checkCountersAtRest(srv: TestServer): Promise<void> {
  const names = ['sfu_ws_connections', 'sfu_transports', 'sfu_producers', 'sfu_consumers'];
  let values: number[] = [];
  for (let i = 0; i < 40; i++) {
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    values = names.map((name) => sumMetric(text, name));
    if (values.every((v) => v === 0)) return;
    await sleep(50);
  }
  throw new InvariantViolation(
    `counters not back to zero: ${names.map((n, i) => `${n}=${values[i]}`).join(', ')}`,
  );
}

function sumMetric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(' ').pop());
  }
  return sum;
}

function openTransports(participant: Participant): number {
  const transports = [...participant.transports.values(), ...participant.plainTransports.values()];
  return transports.filter((t) => !t.closed).length;
}

async function outcome(promise: Promise<unknown>, onOk?: (value: unknown) => void): Promise<string> {
  const timeout = sleep(5000).then(() => 'no answer within 5 s');
  try {
    const value = await Promise.race([promise, timeout]);
    if (value === 'no answer within 5 s') return value;
    onOk?.(value);
    return 'ok';
  } catch (err) {
    return err instanceof RequestError ? err.code : (err as Error).message;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// -------------------------------------------------------------------------------------------------
// fast-check commands

class StepCommand implements fc.AsyncCommand<object, Consultation> {
  constructor(readonly step: Step) {}
  check(): boolean {
    return true;
  }
  async run(_model: object, real: Consultation): Promise<void> {
    await real.apply(this.step);
  }
  toString(): string {
    return JSON.stringify(this.step);
  }
}

const who = fc.constantFrom(...IDENTITIES);
const target = fc.constantFrom(...TARGETS);
const thirdParty = fc.constantFrom('asst' as const, 'obs' as const);
const withPhone = sippAvailable();
/** Admission targets: the phone identity too where phone calls can be placed. */
const admissionTarget: fc.Arbitrary<PhoneTarget> = withPhone ? fc.constantFrom(...TARGETS, PHONE) : target;
const consentTarget = withPhone ? fc.constantFrom('asst' as const, 'obs' as const, PHONE) : thirdParty;
const removeTarget = withPhone ? fc.constantFrom(...IDENTITIES, PHONE) : who;

/** Phone steps, only where sipp is installed (scripts/setup.sh installs it). */
const phoneSteps: fc.WeightedArbitrary<Step>[] = withPhone
  ? [
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('phoneJoin' as const),
          role: fc.constantFrom('assistant' as const, 'observer' as const),
        }),
      },
      { weight: 1, arbitrary: fc.constant({ kind: 'phoneHangup' as const }) },
    ]
  : [];

/** What people and the platform may do, weighted towards the steps that change someone's life. */
export const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('join' as const), who, e2ee: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('disconnect' as const), who }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('silence' as const), who }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('kill' as const), who }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('resume' as const), who }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'consent' as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('consentFor' as const), target: consentTarget }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('withdraw' as const),
      target: fc.constantFrom('self' as const, 'asst' as const, 'obs' as const),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('admit' as const), target: admissionTarget }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('hold' as const), target: admissionTarget }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('decline' as const), target: admissionTarget }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), target: removeTarget }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('leave' as const), who }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('publish' as const), who }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('subscribe' as const), who }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('precheck' as const), who }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('connectAhead' as const), who }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.constantFrom(100, GRACE_MS + 300) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'endRoom' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'killWorker' as const }) },
  ...phoneSteps,
);

const roomArbitrary: fc.Arbitrary<RoomKind> = fc.record({
  e2eeRequired: fc.boolean(),
  waitingRoom: fc.boolean(),
});

/**
 * Where a sequence starts: some of the four joined (with E2EE, valid in every room) and, most of
 * the time, everyone consented for and admitted, so that random steps act on a live consultation.
 */
const preludeArbitrary: fc.Arbitrary<Step[]> = fc
  .record({
    cast: fc.subarray([...IDENTITIES], { minLength: 1 }),
    admitAll: fc.boolean(),
  })
  .map(({ cast, admitAll }) => {
    const steps: Step[] = cast.map((w) => ({ kind: 'join', who: w, e2ee: true }));
    if (admitAll) {
      steps.push(
        { kind: 'consent' },
        { kind: 'consentFor', target: 'asst' },
        { kind: 'consentFor', target: 'obs' },
      );
      for (const target of TARGETS) steps.push({ kind: 'admit', target });
    }
    return steps;
  });

/** Runs one scenario from scratch on `srv`; throws InvariantViolation with the step log on failure. */
export async function runScenario(srv: TestServer, scenario: Scenario): Promise<void> {
  const real = await Consultation.open(srv, scenario.room);
  try {
    for (const step of scenario.steps) await real.apply(step);
    await real.finish();
    await checkCountersAtRest(srv);
  } finally {
    if (!real.ended) await srv.rest('DELETE', `/v1/rooms/${real.roomId}`);
    real.release();
  }
}

export interface ExplorationResult {
  runs: number;
  failure?: { scenario: Scenario; error: string; seed: number };
}

/** Random scenarios for `seconds`, shrunk on failure. */
export async function explore(srv: TestServer, seconds: number, seed: number): Promise<ExplorationResult> {
  let runs = 0;
  let lastSteps: Step[] = [];
  const property = fc.asyncProperty(
    roomArbitrary,
    preludeArbitrary,
    fc.commands([stepArbitrary.map((step) => new StepCommand(step))], { maxCommands: 25 }),
    async (room, prelude, commands) => {
      runs++;
      const real = await Consultation.open(srv, room);
      try {
        for (const step of prelude) await real.apply(step);
        await fc.asyncModelRun(() => ({ model: {}, real }), commands);
        await real.finish();
        await checkCountersAtRest(srv);
      } catch (err) {
        lastSteps = real.log.map((line) => JSON.parse(line) as Step);
        throw err;
      } finally {
        if (!real.ended) await srv.rest('DELETE', `/v1/rooms/${real.roomId}`);
        real.release();
      }
    },
  );
  const details = await fc.check(property, {
    seed,
    numRuns: 1_000_000,
    interruptAfterTimeLimit: seconds * 1000,
    markInterruptAsFailure: false,
  });
  if (!details.failed || !details.counterexample) return { runs };
  const [room] = details.counterexample;
  // The steps the shrunk counterexample ran (its last run is the one that failed).
  return {
    runs,
    failure: {
      scenario: { room, steps: lastSteps },
      error:
        details.errorInstance instanceof Error
          ? details.errorInstance.message
          : String(details.errorInstance),
      seed,
    },
  };
}

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const REGRESSIONS_FILE = path.join(projectRoot, 'tests', 'model', 'fixtures', 'regressions.json');

export interface Regression {
  /** What it found, in a sentence. */
  found: string;
  seed?: number;
  scenario: Scenario;
}

export function readRegressions(): Regression[] {
  return JSON.parse(fs.readFileSync(REGRESSIONS_FILE, 'utf8')) as Regression[];
}

/** Keeps a failing scenario for ever: the test replays every one of them first. */
export function keepRegression(regression: Regression): void {
  const all = readRegressions();
  all.push(regression);
  fs.writeFileSync(REGRESSIONS_FILE, `${JSON.stringify(all, null, 2)}\n`);
}

export async function startModelServer(): Promise<TestServer> {
  return startTestServer(MODEL_SERVER_CONFIG);
}

import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { isSfuError } from '../errors/catalogue.js';
import type { PhoneConfig } from './config.js';
import type { PhoneMediaLeg } from './media/phoneMediaLeg.js';
import type { DtmfDigit } from './media/rfc4733.js';
import type { PinGuard } from './pinGuard.js';
import type { PromptName } from './prompts.js';
import type {
  PhoneCaller,
  PhoneInvitation,
  PhoneLeaveReason,
  PhoneParticipant,
  PhoneRoomPort,
} from './roomPort.js';

export type CallDirection = 'dial-in' | 'dial-out';

/** Where a call is in its script; reported through gateway events (no personal data). */
export type CallState = 'pin' | 'consent' | 'waiting' | 'in-call' | 'ended';

export interface PhoneCallOptions {
  readonly callId: string;
  readonly direction: CallDirection;
  readonly caller: PhoneCaller;
  /** The caller's number for per-caller PIN limits; undefined for anonymous callers. */
  readonly callerNumber: string | undefined;
  readonly media: PhoneMediaLeg;
  readonly config: PhoneConfig;
  readonly port: PhoneRoomPort;
  readonly prompts: ReadonlyMap<PromptName, Int16Array>;
  readonly pinGuard: PinGuard;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Asks the signalling side to end the call (BYE); it then calls end(). */
  readonly requestHangup: (reason: PhoneLeaveReason) => void;
  readonly onState: (state: CallState) => void;
  /** The invitation the call now acts for (after the PIN, or the dial-out request's). */
  readonly onInvitation: (invitation: PhoneInvitation) => void;
}

/** Thrown inside the script when the call ends under it; never escapes `run`. */
class CallEnded extends Error {}

/** Digits buffered ahead of the script (type-ahead); more are dropped. */
const MAX_QUEUED_DIGITS = 32;
/** Pause between repetitions of the waiting-room prompt. */
const WAITING_REPEAT_MS = 15_000;
/** After the room's media worker died: how long to wait for the room to come back on another one. */
const MEDIA_MOVE_TIMEOUT_MS = 15_000;

/**
 * One phone participant's script: PIN entry (dial-in), spoken notice and consent, waiting room,
 * then the call itself. It talks to the room only through the port and to the phone only through
 * its media leg; the SIP side drives it with digits and `end()`.
 */
export class PhoneCall {
  private readonly digits: DtmfDigit[] = [];
  private digitWaiter: ((digit: DtmfDigit | undefined) => void) | undefined;
  private readonly ended: Promise<void>;
  private resolveEnded!: () => void;
  private endReason: PhoneLeaveReason | undefined;
  private invitation: PhoneInvitation | undefined;
  private joined: PhoneParticipant | undefined;
  private leaveSent = false;
  private consentGiven = false;
  /** Set while the leg's transport is gone and the room's new router is awaited. */
  private moveTimer: NodeJS.Timeout | undefined;
  private reconnecting: Promise<void> | undefined;
  state: CallState = 'pin';

  constructor(private readonly options: PhoneCallOptions) {
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
    options.media.on('digit', (digit) => this.pushDigit(digit));
  }

  get callId(): string {
    return this.options.callId;
  }

  get isEnded(): boolean {
    return this.endReason !== undefined;
  }

  /** Starts the script; dial-out calls come with their invitation (no PIN). */
  run(invitation?: PhoneInvitation): void {
    this.script(invitation).catch((error: unknown) => {
      if (error instanceof CallEnded) return;
      this.options.log.warn(
        { err: error instanceof Error ? error.message : 'unknown' },
        'phone call script failed',
      );
      this.hangup('error');
    });
  }

  pushDigit(digit: DtmfDigit): void {
    if (this.isEnded) return;
    if (this.digitWaiter) {
      const waiter = this.digitWaiter;
      this.digitWaiter = undefined;
      waiter(digit);
    } else if (this.digits.length < MAX_QUEUED_DIGITS) {
      this.digits.push(digit);
    }
  }

  /** Ends the call from any side (idempotent): stops the script and media, tells the room once. */
  end(reason: PhoneLeaveReason): void {
    if (this.endReason) return;
    this.endReason = reason;
    this.setState('ended');
    clearTimeout(this.moveTimer);
    this.digitWaiter?.(undefined);
    this.digitWaiter = undefined;
    this.options.media.close();
    this.resolveEnded();
    void this.sendLeave(reason);
  }

  private async sendLeave(reason: PhoneLeaveReason): Promise<void> {
    const invitation = this.invitation;
    if (!this.joined || !invitation || this.leaveSent) return;
    this.leaveSent = true;
    try {
      await this.options.port.leave({ ...invitation, callId: this.callId, reason });
    } catch (error) {
      this.options.log.warn({ err: error instanceof Error ? error.message : 'unknown' }, 'room leave failed');
    }
  }

  private hangup(reason: PhoneLeaveReason): void {
    if (!this.isEnded) this.options.requestHangup(reason);
  }

  private setState(state: CallState): void {
    if (this.state === state) return;
    this.state = state;
    this.options.onState(state);
  }

  private check(): void {
    if (this.isEnded) throw new CallEnded();
  }

  private async say(name: PromptName, bargeIn = false): Promise<void> {
    this.check();
    const samples = this.options.prompts.get(name);
    if (samples) await this.options.media.play(samples, bargeIn);
    this.check();
  }

  /** The next digit, or undefined after `timeoutMs` without one. */
  private nextDigit(timeoutMs: number): Promise<DtmfDigit | undefined> {
    this.check();
    const queued = this.digits.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.digitWaiter = undefined;
        resolve(undefined);
      }, timeoutMs);
      this.digitWaiter = (digit) => {
        clearTimeout(timer);
        resolve(digit);
      };
    });
  }

  private async script(preset: PhoneInvitation | undefined): Promise<void> {
    const invitation = preset ?? (await this.enterPin());
    if (!invitation) return;
    this.invitation = invitation;
    this.options.onInvitation(invitation);
    if (!(await this.askConsent())) return;
    await this.joinRoom(invitation);
  }

  /**
   * Dial-in: collects PINs until one resolves, the attempts run out or the caller's number is
   * locked out. Every check waits for the global PIN budget first (src/phone/pinGuard.ts).
   */
  private async enterPin(): Promise<PhoneInvitation | undefined> {
    const { config, pinGuard, callerNumber, metrics } = this.options;
    this.setState('pin');
    void this.say('welcome', true).catch(() => undefined);
    let attempts = 0;
    let silences = 0;
    for (;;) {
      const pin = await this.collectPin();
      this.check();
      if (pin === undefined) {
        // Silence: say the welcome again, a few times, without counting a guess.
        if (++silences > config.pin.maxAttemptsPerCall) return this.finish('goodbye', 'ended');
        await this.say('welcome', true);
        continue;
      }
      if (pin === '') continue; // A bare '#' (e.g. after a full-length PIN) is no attempt.
      if (pinGuard.isLocked(callerNumber)) {
        metrics.sipPinAttempts.inc({ outcome: 'locked' });
        return this.finish('locked', 'ended');
      }
      if (pinGuard.waiting > 0) metrics.sipPinThrottled.inc();
      if (!(await pinGuard.acquire(this.ended))) return undefined;
      this.check();
      const invitation = await this.options.port.resolvePin(pin, this.options.caller);
      this.check();
      if (invitation) {
        metrics.sipPinAttempts.inc({ outcome: 'accepted' });
        return invitation;
      }
      metrics.sipPinAttempts.inc({ outcome: 'rejected' });
      attempts++;
      if (pinGuard.recordFailure(callerNumber)) {
        metrics.sipPinLockouts.inc({ scope: 'caller' });
        this.options.log.warn({ callId: this.callId, scope: 'caller' }, 'PIN entry locked out');
        return this.finish('locked', 'ended');
      }
      if (attempts >= config.pin.maxAttemptsPerCall) return this.finish('pin-failed', 'ended');
      await this.say('pin-invalid', true);
    }
  }

  /** Digits up to '#' or the PIN length; '' for a bare '#'; undefined when nothing came in time. */
  private async collectPin(): Promise<string | undefined> {
    const { length, digitTimeoutS } = this.options.config.pin;
    let pin = '';
    for (;;) {
      const digit = await this.nextDigit(digitTimeoutS * 1000);
      if (digit === undefined) return pin.length > 0 ? pin : undefined;
      if (digit === '#') return pin;
      if (digit === '*') {
        pin = ''; // '*' starts the entry over.
        continue;
      }
      pin += digit;
      if (pin.length >= length) return pin;
    }
  }

  /**
   * Notice (heard to the end: keys pressed meanwhile are dropped), then "press 1 to accept" where
   * the invitation's role consents itself; other roles hear the notice only.
   */
  private async askConsent(): Promise<boolean> {
    const { config, port, direction } = this.options;
    const invitation = this.invitation;
    if (!invitation) return false;
    this.setState('consent');
    if (direction === 'dial-out') await this.say('dial-out-intro');
    await this.say('notice');
    if (!port.mustConsent(invitation.role)) return true;
    for (let question = 0; question < 3; question++) {
      this.digits.length = 0;
      const asked = this.say('consent', true);
      const digit = await this.nextDigit(config.consentTimeoutS * 1000);
      await asked.catch(() => undefined);
      this.check();
      if (digit === '1') {
        await port.recordConsent({
          roomId: invitation.roomId,
          participantId: invitation.participantId,
          callId: this.callId,
          accepted: true,
          noticeVersion: config.noticeVersion,
          language: config.language,
          direction,
          at: Date.now(),
        });
        this.check();
        this.consentGiven = true;
        return true;
      }
      if (digit === undefined) break;
    }
    this.finish('goodbye', 'ended');
    return false;
  }

  private async joinRoom(invitation: PhoneInvitation): Promise<void> {
    const { port, media, direction, log } = this.options;
    let participant: PhoneParticipant;
    try {
      participant = await port.joinPhoneParticipant({
        roomId: invitation.roomId,
        participantId: invitation.participantId,
        role: invitation.role,
        consentGiven: this.consentGiven,
        callId: this.callId,
        direction,
        codec: media.codec ?? 'PCMU',
      });
    } catch (error) {
      log.info(
        { callId: this.callId, code: isSfuError(error) ? error.code : 'unknown' },
        'phone join refused',
      );
      this.finish('declined', 'declined');
      return;
    }
    this.joined = participant;
    if (this.isEnded) {
      // The phone hung up while joining: the room still hears about it once.
      await this.sendLeave(this.endReason ?? 'hangup');
      return;
    }
    participant.events.on('removed', () => this.finish('goodbye', 'removed'));
    this.setState('waiting');
    const admitted = participant.admitted.then(
      () => true,
      () => false,
    );
    let isAdmitted: boolean | undefined;
    void admitted.then((value) => {
      isAdmitted = value;
      media.stopPrompt();
    });
    while (isAdmitted === undefined) {
      await this.say('waiting');
      if (isAdmitted !== undefined) break;
      await Promise.race([admitted, this.ended, new Promise((r) => setTimeout(r, WAITING_REPEAT_MS))]);
      this.check();
    }
    if (!isAdmitted) {
      this.finish('declined', 'declined');
      return;
    }
    await this.connect(participant);
  }

  private async connect(participant: PhoneParticipant): Promise<void> {
    const { media } = this.options;
    participant.events.on('audioProducerAdded', (producer) => void this.hear(participant, producer));
    participant.events.on('audioProducerRemoved', (producerId) => media.stopHearing(producerId));
    // The room's worker died: the leg's transport went with it. Follow the room to its new router,
    // or end the call if it does not come back in time (never relay into a dead transport).
    media.on('roomDisconnected', () => {
      if (this.isEnded || this.moveTimer) return;
      this.options.log.warn({ callId: this.callId }, 'phone leg lost its room transport');
      this.moveTimer = setTimeout(() => this.hangup('error'), MEDIA_MOVE_TIMEOUT_MS);
    });
    participant.events.on('mediaMoved', () => {
      if (this.isEnded) return;
      this.reconnecting = (this.reconnecting ?? Promise.resolve())
        .then(() => this.attach(participant))
        .then(() => {
          clearTimeout(this.moveTimer);
          this.moveTimer = undefined;
          this.options.log.info({ callId: this.callId }, 'phone leg followed the room to a new router');
        })
        .catch((error: unknown) => {
          if (error instanceof CallEnded) return;
          this.options.log.warn(
            { err: error instanceof Error ? error.message : 'unknown' },
            'phone leg could not follow the room',
          );
          this.hangup('error');
        });
    });
    await this.attach(participant);
    await this.say('admitted');
    this.setState('in-call');
  }

  /** Transport, producer and consumers on the room's current router. */
  private async attach(participant: PhoneParticipant): Promise<void> {
    const { media } = this.options;
    const appData = { phoneCallId: this.callId, participantId: this.invitation?.participantId };
    media.disconnectRoom();
    const producer = await media.connectRoom(
      (listenIp) => participant.openTransport({ listenIp, appData }),
      appData,
    );
    this.check();
    await participant.publishPhoneProducer(producer);
    this.check();
    await Promise.all(participant.audioProducersToHear().map((p) => this.hear(participant, p)));
    this.check();
  }

  private hear(participant: PhoneParticipant, producer: Parameters<PhoneMediaLeg['hear']>[1]): Promise<void> {
    return this.options.media.hear(participant.router, producer).catch((error: unknown) => {
      this.options.log.warn(
        { err: error instanceof Error ? error.message : 'unknown' },
        'cannot hear producer',
      );
    });
  }

  /** Says a last prompt and hangs up (the prompt is skipped if the call already ended). */
  private finish(prompt: PromptName, reason: PhoneLeaveReason): undefined {
    if (this.isEnded) return undefined;
    const samples = this.options.prompts.get(prompt);
    const played = samples ? this.options.media.play(samples, false) : Promise.resolve('done');
    void played.then(() => this.hangup(reason));
    return undefined;
  }
}

import type { types } from 'mediasoup';
import {
  DataPeer,
  DelayHistogram,
  MediaScheduler,
  Publisher,
  Subscriber,
  percentilesOf,
  subscriberRtpCapabilities,
} from '../peer/index.js';
import type { RemoteSctpParams } from '../peer/index.js';
import { ConsultLoad } from '../harness/consult.js';
import type { JoinTimes, TrafficTotals } from '../harness/consult.js';
import { measureWindow } from '../harness/measure.js';
import type { WindowResult } from '../harness/measure.js';
import { stepOf } from '../harness/report.js';
import type { StepReport } from '../harness/report.js';
import { ErrorLog, hostInfo } from '../harness/scenarioReport.js';
import type { ScenarioReport, ServerUsage } from '../harness/scenarioReport.js';
import type { TransportInfo } from '../harness/target.js';
import { TargetError } from '../harness/target.js';
import { SelfParticipant } from '../targets/self/participant.js';
import type { SelfTarget } from '../targets/self/target.js';

export interface AssistedOptions {
  /** Consultations measured in each phase (the 1:1 one, then the assisted one). */
  sessions: number;
  /** Seconds of each measurement window. */
  durationS: number;
  /** Seconds between the last join of a phase and its window. */
  settleS: number;
  joinConcurrency: number;
  workers: number;
  timeoutMs: number;
  progress: (line: string) => void;
  log: (line: string) => void;
}

/** One phase's figures, defined as the consult scenario's (bench/README.md "Definitions"). */
export type PhaseFigures = StepReport & {
  participantsPerSession: number;
  /** Received video streams, and those whose last keyframe was full size (1280 camera, 1920 examination). */
  video: { streams: number; topLayer: number };
};

export interface AssistedResults {
  /** Exactly what each participant of an assisted consultation sends (and the 1:1 one for reference). */
  sent: Record<string, string[]>;
  consult: PhaseFigures;
  assisted: PhaseFigures & {
    /** Vital-sign messages sent by the assistants' oximeters and received by the practitioners in the window. */
    vitalSigns: { sent: number; received: number };
  };
  /** assisted.cpuCoresPerSession / consult.cpuCoresPerSession, both from this run. */
  cpuPerSessionRatio: number;
}

/** The examination camera: one full-resolution encoding, no simulcast (docs/devices.md). */
const EXAMINATION_VIDEO = [{ bitrate: 2_500_000, width: 1920, height: 1080 }] as const;
/** The stethoscope: Opus stereo, 160 kbit/s, FEC on, DTX off (what the server requires). */
const STETHOSCOPE_BITRATE = 160_000;
/** A pulse oximeter: one SpO2 and one pulse-rate reading a second. */
const READINGS_PER_SECOND = 2;
const VITALS_STREAM = 1;
const FULL_WIDTHS = new Set([1280, 1920]);

export const ASSISTED_SOURCES: Record<string, string[]> = {
  practitioner: [
    'camera: VP8 simulcast 320x180/640x360/1280x720 at 150/500/1500 kbit/s',
    'microphone: Opus ~48 kbit/s',
  ],
  patient: [
    'camera: VP8 simulcast 320x180/640x360/1280x720 at 150/500/1500 kbit/s',
    'microphone: Opus ~48 kbit/s',
  ],
  assistant: [
    'examination-video (otoscope): VP8, one 1920x1080 encoding at 2.5 Mbit/s',
    'examination-audio (stethoscope): Opus stereo, 160 kbit/s, useinbandfec=1, usedtx=0',
    'vital-signs (pulse-oximeter): data channel, 2 readings/s (~130-byte JSON each)',
  ],
};

type RoleName = 'practitioner' | 'patient' | 'assistant';

interface Member {
  role: RoleName;
  signalling: SelfParticipant;
  startedAt: number;
  joinedAt: number;
  publisher: Publisher;
  producers: string[];
  recv: TransportInfo & { sctpParameters?: RemoteSctpParams };
  subscriber?: Subscriber;
  oximeter?: DataPeer;
  signalledAt?: number;
}

interface AssistedSession {
  roomId: string;
  members: Member[];
  joins: JoinTimes[];
  vitals: { sent: number; timer?: NodeJS.Timeout };
  /** The practitioner's announcement of the readings' data consumer (listened for from its join on). */
  vitalsAnnounced?: Promise<Record<string, unknown>>;
}

/**
 * Assisted consultations (issue #20): a practitioner, a patient and an assistant beside the patient
 * with connected devices, each through the real protocol (tokens, consent, the patient's
 * third-party consent for the assistant, admission, device sources with their declared profiles).
 * Every receiver consumes what the server announces to it: the practitioner the patient's camera
 * and microphone, the examination video, the stethoscope and the readings; the patient the
 * practitioner's camera and microphone; the assistant both of theirs.
 */
export class AssistedLoad {
  readonly sessions: AssistedSession[] = [];
  joinFailures = 0;
  readonly errors = new ErrorLog();

  constructor(
    private readonly target: SelfTarget,
    private readonly scheduler: MediaScheduler,
    private readonly timeoutMs: number,
  ) {}

  async growTo(total: number, concurrency: number, onProgress: (joined: number) => void): Promise<void> {
    const queue = Array.from({ length: total - this.sessions.length }, (_, i) => this.sessions.length + i);
    await Promise.all(
      Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
        for (let index = queue.shift(); index !== undefined; index = queue.shift()) {
          try {
            this.sessions.push(await this.open(index));
          } catch (error) {
            this.joinFailures++;
            this.errors.note(error);
          }
          onProgress(this.sessions.length);
        }
      }),
    );
  }

  joinTimes(): JoinTimes[] {
    return this.sessions.flatMap((s) => s.joins);
  }

  totals(): TrafficTotals {
    const t: TrafficTotals = {
      sentPackets: 0,
      sentBytes: 0,
      receivedPackets: 0,
      receivedBytes: 0,
      expectedPackets: 0,
      lostPackets: 0,
      sendFailures: 0,
      pacerDrops: 0,
    };
    for (const m of this.members()) {
      const sent = m.publisher.stats();
      t.sentPackets += sent.packets;
      t.sentBytes += sent.bytes;
      t.sendFailures += sent.sendFailures;
      t.pacerDrops += sent.pacerDrops;
      const received = m.subscriber?.stats();
      if (!received) continue;
      t.receivedPackets += received.packets;
      t.receivedBytes += received.bytes;
      t.expectedPackets += received.expected;
      t.lostPackets += received.lost;
    }
    return t;
  }

  vitalSigns(): { sent: number; received: number } {
    let sent = 0;
    let received = 0;
    for (const s of this.sessions) sent += s.vitals.sent;
    for (const m of this.members()) received += m.subscriber?.dataStats().messages ?? 0;
    return { sent, received };
  }

  resetDelays(): void {
    for (const m of this.members()) m.subscriber?.resetDelay();
  }

  delays(): DelayHistogram {
    const all = new DelayHistogram();
    for (const m of this.members()) if (m.subscriber) all.merge(m.subscriber.stats().delay);
    return all;
  }

  videoLayers(): { streams: number; topLayer: number } {
    let streams = 0;
    let topLayer = 0;
    for (const m of this.members()) {
      for (const s of m.subscriber?.stats().streams ?? []) {
        if (s.kind !== 'video') continue;
        streams++;
        if (s.lastKeyframeWidth !== undefined && FULL_WIDTHS.has(s.lastKeyframeWidth)) topLayer++;
      }
    }
    return { streams, topLayer };
  }

  async close(): Promise<void> {
    const sessions = this.sessions.splice(0);
    await Promise.all(sessions.map((s) => this.closeSession(s)));
  }

  private members(): Member[] {
    return this.sessions.flatMap((s) => s.members);
  }

  private async closeSession(session: AssistedSession): Promise<void> {
    clearInterval(session.vitals.timer);
    for (const m of session.members) {
      m.publisher.stopMedia();
      m.subscriber?.close();
      m.publisher.close();
      m.oximeter?.close();
      m.signalling.close();
    }
    await this.target.platform.deleteRoom(session.roomId).catch(() => undefined);
  }

  private async open(index: number): Promise<AssistedSession> {
    const api = this.target.platform;
    const roomId = await api.createRoom({ waitingRoom: true, maxParticipants: 3 });
    const session: AssistedSession = { roomId, members: [], joins: [], vitals: { sent: 0 } };
    try {
      const [doc, pat, nurse] = await Promise.all([
        api.invite(roomId, 'practitioner', `doc-${index}`),
        api.invite(roomId, 'patient', `pat-${index}`),
        api.invite(roomId, 'assistant', `nurse-${index}`),
      ]);
      const wsUrl = this.target.server.wsUrl;
      const started = performance.now();
      const practitioner = await SelfParticipant.join(wsUrl, doc.token);
      const practitionerJoined = performance.now();
      session.vitalsAnnounced = practitioner.socket.next(
        'dataConsumerAdded',
        (d) => d.source === 'vital-signs',
        this.timeoutMs * 2,
      );
      session.vitalsAnnounced.catch(() => undefined);
      const patient = await SelfParticipant.join(wsUrl, pat.token);
      const assistant = await SelfParticipant.join(wsUrl, nurse.token);
      const admitted = [patient.admitted(this.timeoutMs), assistant.admitted(this.timeoutMs)];
      await patient.giveConsent();
      await practitioner.socket.request('admit', { participantId: patient.id });
      await patient.giveConsent('third-party', assistant.id);
      await practitioner.socket.request('admit', { participantId: assistant.id });
      await Promise.all(admitted);
      const joinedAt = performance.now();
      const signallings: [RoleName, SelfParticipant, number][] = [
        ['practitioner', practitioner, practitionerJoined],
        ['patient', patient, joinedAt],
        ['assistant', assistant, joinedAt],
      ];
      for (const [role, signalling, at] of signallings) {
        await signalling.setRtpCapabilities();
        session.members.push(await this.publish(role, signalling, started, at, index));
      }
      this.startReadings(session);
      await Promise.all(session.members.map((m) => this.subscribe(m, session, index)));
      session.joins = await Promise.all(session.members.map((m) => this.waitJoined(m)));
      return session;
    } catch (error) {
      await this.closeSession(session);
      throw error;
    }
  }

  private async publish(
    role: RoleName,
    signalling: SelfParticipant,
    startedAt: number,
    joinedAt: number,
    index: number,
  ): Promise<Member> {
    const assistant = role === 'assistant';
    const [send, recv] = await Promise.all([
      signalling.createTransport('send'),
      signalling.socket.request('createTransport', {
        direction: 'recv',
        sctp: role === 'practitioner',
      }) as unknown as Promise<Member['recv']>,
    ]);
    const publisher = new Publisher({
      name: `a${index}-${role}-pub`,
      scheduler: this.scheduler,
      ...(assistant ? { video: EXAMINATION_VIDEO, audioBitrate: STETHOSCOPE_BITRATE } : {}),
    });
    const member: Member = { role, signalling, startedAt, joinedAt, publisher, producers: [], recv };
    await signalling.connectTransport(send.id, publisher.dtlsParameters);
    publisher.connect(send);
    if (!assistant) {
      for (const kind of ['audio', 'video'] as const) {
        const params = kind === 'audio' ? publisher.audioRtpParameters : publisher.videoRtpParameters;
        member.producers.push(await signalling.produce(send.id, kind, params!));
      }
    } else {
      const audio = stethoscopeParameters(publisher.audioRtpParameters!);
      member.producers.push(
        (
          await signalling.socket.request('produce', {
            transportId: send.id,
            kind: 'audio',
            rtpParameters: audio,
            source: 'examination-audio',
            deviceType: 'stethoscope',
          })
        ).producerId,
        (
          await signalling.socket.request('produce', {
            transportId: send.id,
            kind: 'video',
            rtpParameters: publisher.videoRtpParameters!,
            source: 'examination-video',
            deviceType: 'otoscope',
          })
        ).producerId,
      );
      member.oximeter = await this.openOximeter(signalling, index);
    }
    publisher.startMedia();
    return member;
  }

  /** The oximeter's channel, on a send transport of its own (see bench/README.md). */
  private async openOximeter(signalling: SelfParticipant, index: number): Promise<DataPeer> {
    const transport = (await signalling.socket.request('createTransport', {
      direction: 'send',
      sctp: true,
    })) as unknown as TransportInfo & { sctpParameters: RemoteSctpParams };
    const peer = new DataPeer({
      name: `a${index}-oximeter`,
      streams: [{ streamId: VITALS_STREAM, label: 'vital-signs' }],
      keep: 1,
    });
    try {
      await signalling.connectTransport(transport.id, peer.offer());
      peer.connect(transport);
      await signalling.socket.request('produceData', {
        transportId: transport.id,
        sctpStreamParameters: { streamId: VITALS_STREAM, ordered: true },
        label: 'vital-signs',
        protocol: 'teleconsult.vitals.v1',
        source: 'vital-signs',
        deviceType: 'pulse-oximeter',
      });
      await peer.waitOpen(VITALS_STREAM, this.timeoutMs);
      return peer;
    } catch (error) {
      peer.close();
      throw error;
    }
  }

  /** Readings as the SDK sends them in a room without E2EE: JSON, one per message. */
  private startReadings(session: AssistedSession): void {
    const oximeter = session.members.find((m) => m.oximeter)?.oximeter;
    if (!oximeter) return;
    let seq = 0;
    session.vitals.timer = setInterval(() => {
      for (let i = 0; i < READINGS_PER_SECOND; i++) {
        const spo2 = i % 2 === 0;
        const reading = JSON.stringify({
          type: spo2 ? 'spo2' : 'pulse-rate',
          value: spo2 ? 97 : 72,
          unit: spo2 ? '%' : '/min',
          seq: ++seq,
          timestamp: Date.now(),
          deviceType: 'pulse-oximeter',
        });
        if (oximeter.send(VITALS_STREAM, reading)) session.vitals.sent++;
      }
    }, 1000);
  }

  /** Consumes every producer the server announces to this member (the table decides which). */
  private async subscribe(member: Member, session: AssistedSession, index: number): Promise<void> {
    const others = session.members.filter((m) => m !== member);
    // Device sources go to the practitioner only (the permission table's receiveDeviceData).
    const wanted = others
      .filter((m) => member.role === 'practitioner' || m.role !== 'assistant')
      .flatMap((m) => m.producers);
    const consumers = await Promise.all(
      wanted.map((producerId) =>
        member.signalling.consume(member.recv.id, producerId, subscriberRtpCapabilities()),
      ),
    );
    const dataStreams: { streamId: number; label: string }[] = [];
    if (member.role === 'practitioner') {
      const added = await session.vitalsAnnounced!;
      const streamId = (added.sctpStreamParameters as { streamId?: number }).streamId;
      if (typeof streamId !== 'number') throw new TargetError('data consumer announced without a stream id');
      dataStreams.push({ streamId, label: 'vital-signs' });
    }
    const subscriber = new Subscriber({
      name: `a${index}-${member.role}-sub`,
      scheduler: this.scheduler,
      consumers,
      ...(dataStreams.length ? { dataStreams } : {}),
    });
    member.subscriber = subscriber;
    await member.signalling.connectTransport(member.recv.id, subscriber.dtlsParameters);
    subscriber.connect(member.recv);
    await subscriber.waitConnected(this.timeoutMs);
    await Promise.all(consumers.map((c) => member.signalling.resumeConsumer(c.id)));
    member.signalledAt = performance.now();
  }

  private async waitJoined(m: Member): Promise<JoinTimes> {
    await m.publisher.waitConnected(this.timeoutMs);
    const subscriber = m.subscriber!;
    const connectedAt = Math.max(m.publisher.connectedAt!, subscriber.connectedAt!);
    const firstRtpAt = await subscriber.waitForMedia(undefined, this.timeoutMs);
    const firstVideoAt = await subscriber.waitForMedia('video', this.timeoutMs);
    return {
      joinedMs: m.joinedAt - m.startedAt,
      signallingMs: (m.signalledAt ?? m.joinedAt) - m.startedAt,
      connectedMs: connectedAt - m.startedAt,
      firstRtpMs: firstRtpAt - m.startedAt,
      firstVideoMs: firstVideoAt - m.startedAt,
    };
  }
}

/** The stethoscope's RTP parameters: the publisher's Opus, declared as the server requires it. */
function stethoscopeParameters(base: types.RtpParameters): types.RtpParameters {
  const codec = base.codecs[0]!;
  return {
    ...base,
    codecs: [{ ...codec, parameters: { ...codec.parameters, useinbandfec: 1, usedtx: 0, stereo: 1 } }],
    encodings: (base.encodings ?? []).map((e) => ({ ...e, maxBitrate: STETHOSCOPE_BITRATE })),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function phaseFigures(window: WindowResult, joins: JoinTimes[], failures: number, participants: number) {
  return {
    ...stepOf(window, joins, failures, failures === 0),
    participantsPerSession: participants,
    video: window.video,
  };
}

function usageOf(window: WindowResult): ServerUsage {
  const seconds = window.durationS || 1;
  return {
    seconds,
    cpuS: window.cpuS,
    cpuCores: {
      server: window.cpuS.server / seconds,
      workers: window.cpuS.workers / seconds,
      total: (window.cpuS.server + window.cpuS.workers) / seconds,
    },
    rssMiB: window.rssMiB,
    peakRssMiB: window.peakRssMiB,
  };
}

/**
 * Scenario `assisted`: on one server, `sessions` 1:1 consultations (the consult scenario's load and
 * measurement window), closed, then `sessions` assisted consultations measured the same way; CPU per
 * session of each, side by side, from the same run.
 */
export async function runAssisted(
  target: SelfTarget,
  options: AssistedOptions,
): Promise<ScenarioReport<AssistedResults>> {
  const startedAt = new Date();
  const started = performance.now();
  const errors = new ErrorLog();
  const scheduler = new MediaScheduler();
  await target.start({ workers: options.workers, maxSessions: options.sessions * 2, log: options.log });
  const workers = target.serverPids().workers.length;
  try {
    const consult = new ConsultLoad({
      target,
      scheduler,
      joinConcurrency: options.joinConcurrency,
      joinTimeoutMs: options.timeoutMs,
      log: options.log,
    });
    let consultWindow: WindowResult;
    let consultJoins: JoinTimes[];
    try {
      await consult.growTo(options.sessions, (joined, wanted) =>
        options.progress(`1:1 joining ${joined}/${wanted}`),
      );
      await sleep(options.settleS * 1000);
      consultWindow = await measureWindow(
        consult,
        target,
        scheduler,
        options.durationS,
        options.progress,
        '1:1',
      );
      consultJoins = consult.joinTimes();
    } finally {
      for (const e of consult.errors) errors.note(e);
      await consult.close();
    }
    const consultFigures = phaseFigures(consultWindow, consultJoins, consult.joinFailures, 2);

    const assisted = new AssistedLoad(target, scheduler, options.timeoutMs);
    let assistedWindow: WindowResult;
    let vitals: { sent: number; received: number };
    let assistedJoins: JoinTimes[];
    try {
      await assisted.growTo(options.sessions, options.joinConcurrency, (joined) =>
        options.progress(`assisted joining ${joined}/${options.sessions}`),
      );
      if (assisted.sessions.length === 0) throw new TargetError('no assisted consultation could start');
      await sleep(options.settleS * 1000);
      const before = assisted.vitalSigns();
      assistedWindow = await measureWindow(
        assisted,
        target,
        scheduler,
        options.durationS,
        options.progress,
        'assisted',
      );
      const after = assisted.vitalSigns();
      vitals = { sent: after.sent - before.sent, received: after.received - before.received };
      assistedJoins = assisted.joinTimes();
    } finally {
      for (const e of assisted.errors.messages) errors.note(e);
      await assisted.close();
    }
    const assistedFigures = {
      ...phaseFigures(assistedWindow, assistedJoins, assisted.joinFailures, 3),
      vitalSigns: vitals,
    };
    const joinLatency = (joins: JoinTimes[]) => ({
      ...percentilesOf(joins.map((j) => j.firstRtpMs)),
      samples: joins.length,
    });
    return {
      scenario: 'assisted',
      target: target.name,
      workers,
      startedAt: startedAt.toISOString(),
      elapsedS: (performance.now() - started) / 1000,
      host: hostInfo(),
      parameters: {
        sessions: options.sessions,
        durationS: options.durationS,
        settleS: options.settleS,
        joinConcurrency: options.joinConcurrency,
      },
      results: {
        sent: { ...ASSISTED_SOURCES, 'practitioner and patient (1:1)': ASSISTED_SOURCES.patient! },
        consult: consultFigures,
        assisted: assistedFigures,
        cpuPerSessionRatio:
          consultFigures.cpuCoresPerSession > 0
            ? assistedFigures.cpuCoresPerSession / consultFigures.cpuCoresPerSession
            : 0,
      },
      latenciesMs: {
        consultJoinToFirstRtp: joinLatency(consultJoins),
        assistedJoinToFirstRtp: joinLatency(assistedJoins),
        assistedDelay: { ...assistedWindow.delayMs },
      },
      server: { consult: usageOf(consultWindow), assisted: usageOf(assistedWindow) },
      failures: consult.joinFailures + assisted.joinFailures,
      errors: errors.messages,
      notes: [
        'CPU per session: (server + workers) CPU over the measurement window / window seconds / sessions, as in the consult scenario; both phases on the same server process, one after the other.',
        'The 1:1 phase is the consult scenario (both participants: camera simulcast + microphone).',
        "The assistant's oximeter channel uses a send transport of its own (the SDK would put it on the media send transport): one more ICE/DTLS association per assisted consultation.",
        'Receivers send no bandwidth feedback: the server forwards the top camera layer and the full examination video.',
      ],
    };
  } finally {
    scheduler.stop();
    await target.stop();
  }
}

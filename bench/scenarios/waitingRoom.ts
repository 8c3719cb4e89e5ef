import { MediaScheduler, Publisher, Subscriber, percentilesOf } from '../peer/index.js';
import { ErrorLog, hostInfo, measureServer } from '../harness/scenarioReport.js';
import type { ScenarioReport } from '../harness/scenarioReport.js';
import { TargetError } from '../harness/target.js';
import { SelfParticipant } from '../targets/self/participant.js';
import type { SelfTarget } from '../targets/self/target.js';

export interface WaitingRoomOptions {
  /** Patients in the queue. */
  patients: number;
  /** Patients arriving per second; 0 = all at once (a full waiting room at the start). */
  rate: number;
  /** Seconds an admitted patient stays after its first RTP, then leaves. */
  holdS: number;
  workers: number;
  timeoutMs: number;
  progress: (line: string) => void;
  log: (line: string) => void;
}

export interface WaitingRoomResults {
  patients: number;
  admitted: number;
  /** Patients that failed anywhere between joining and receiving media. */
  failed: number;
  /** Admissions per second over the run (first consent to last first RTP). */
  admissionsPerS: number;
  /** Most patients consented and not yet admitted at the same time. */
  peakQueue: number;
}

interface PatientTimes {
  consentAt: number;
  admittedAt: number;
  firstRtpAt: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Scenario `waiting-room`: one practitioner in one room publishes audio and VP8 simulcast; N
 * patients arrive in its waiting room, each gives consent, and the practitioner admits them one at
 * a time, in the order their consent shows in the waiting list (one `admit` in flight at once).
 * An admitted patient opens a receive transport, takes the practitioner's media (the consumers the
 * server announces) and leaves `holdS` after its first RTP. Admission latency: from the patient
 * sending its consent to its first RTP packet.
 */
export async function runWaitingRoom(
  target: SelfTarget,
  options: WaitingRoomOptions,
): Promise<ScenarioReport<WaitingRoomResults>> {
  const startedAt = new Date();
  const began = performance.now();
  const scheduler = new MediaScheduler();
  const roomSize = Math.min(1000, options.patients + 1);
  target.configure({ SFU_LIMITS__MAX_PARTICIPANTS_PER_ROOM: String(roomSize) });
  await target.start({ workers: options.workers, maxSessions: 1, log: options.log });
  const workers = target.serverPids().workers.length;
  const errors = new ErrorLog();
  const patients: SelfParticipant[] = [];
  const subscribers: Subscriber[] = [];
  let doctor: SelfParticipant | undefined;
  let publisher: Publisher | undefined;
  try {
    const api = target.platform;
    const roomId = await api.createRoom({ waitingRoom: true, maxParticipants: roomSize });
    const invite = await api.invite(roomId, 'practitioner', 'doc');
    doctor = await SelfParticipant.join(target.server.wsUrl, invite.token);
    await doctor.setRtpCapabilities();
    const send = await doctor.createTransport('send');
    publisher = new Publisher({ name: 'wr-doc-pub', scheduler, bindAddress: '127.0.0.1' });
    await doctor.connectTransport(send.id, publisher.dtlsParameters);
    publisher.connect(send);
    const producerIds: string[] = [];
    for (const [kind, rtpParameters] of [
      ['audio', publisher.audioRtpParameters],
      ['video', publisher.videoRtpParameters],
    ] as const) {
      if (rtpParameters) producerIds.push(await doctor.produce(send.id, kind, rtpParameters));
    }
    publisher.startMedia();
    await publisher.waitConnected(options.timeoutMs);

    // The practitioner's side: admit consented patients one by one, in waiting-list order.
    const queue: string[] = [];
    const queued = new Set<string>();
    let peakQueue = 0;
    let admitting = false;
    const doc = doctor;
    const admitNext = async (): Promise<void> => {
      if (admitting) return;
      admitting = true;
      try {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
          try {
            await doc.socket.request('admit', { participantId: id });
          } catch (error) {
            errors.note(error);
          }
        }
      } finally {
        admitting = false;
      }
    };
    doctor.socket.on('waitingListChanged', (data) => {
      const entries = Array.isArray(data.entries) ? (data.entries as Record<string, unknown>[]) : [];
      for (const entry of entries) {
        const participant = entry.participant as { id?: string; state?: string } | undefined;
        const consents = Array.isArray(entry.consents) ? (entry.consents as string[]) : [];
        const id = participant?.id;
        if (!id || queued.has(id) || !consents.includes('teleconsultation')) continue;
        queued.add(id);
        queue.push(id);
      }
      peakQueue = Math.max(peakQueue, queue.length);
      void admitNext();
    });

    const invites = await Promise.all(
      Array.from({ length: options.patients }, (_, i) => api.invite(roomId, 'patient', `pat-${i}`)),
    );
    const times: PatientTimes[] = [];
    let failed = 0;
    const usage = measureServer(target.serverPids());

    const patient = async (index: number): Promise<void> => {
      let subscriber: Subscriber | undefined;
      let p: SelfParticipant | undefined;
      try {
        p = await SelfParticipant.join(target.server.wsUrl, invites[index]!.token);
        patients.push(p);
        const admitted = p.admitted(options.timeoutMs + options.patients * 1000);
        const consentAt = performance.now();
        await p.giveConsent();
        await admitted;
        const admittedAt = performance.now();
        await p.setRtpCapabilities();
        const recv = await p.createTransport('recv');
        const consumers = await Promise.all(producerIds.map((id) => p!.announcement(id, options.timeoutMs)));
        subscriber = new Subscriber({
          name: `wr-pat-${index}`,
          scheduler,
          bindAddress: '127.0.0.1',
          consumers: consumers.map((c) => ({
            id: c.consumerId,
            kind: c.kind,
            rtpParameters: c.rtpParameters,
          })),
        });
        subscribers.push(subscriber);
        await p.connectTransport(recv.id, subscriber.dtlsParameters);
        subscriber.connect(recv);
        await subscriber.waitConnected(options.timeoutMs);
        await Promise.all(consumers.map((c) => p!.resumeConsumer(c.consumerId)));
        const firstRtpAt = await subscriber.waitForMedia(undefined, options.timeoutMs);
        times.push({ consentAt, admittedAt, firstRtpAt });
        options.progress(`waiting room: ${times.length}/${options.patients} admitted, queue ${queue.length}`);
        await sleep(options.holdS * 1000);
      } catch (error) {
        failed++;
        errors.note(error);
      } finally {
        subscriber?.close();
        p?.close();
      }
    };

    const running: Promise<void>[] = [];
    const arrivalsStart = performance.now();
    for (let i = 0; i < options.patients; i++) {
      if (options.rate > 0) {
        const wait = arrivalsStart + (i * 1000) / options.rate - performance.now();
        if (wait > 0) await sleep(wait);
      }
      running.push(patient(i));
    }
    await Promise.all(running);
    const admissions = usage.end();
    if (times.length === 0 && failed > 0)
      throw new TargetError(`no patient was admitted: ${errors.messages[0]}`);

    const first = Math.min(...times.map((t) => t.consentAt));
    const last = Math.max(...times.map((t) => t.firstRtpAt));
    const pct = (values: number[]) => ({ ...percentilesOf(values), samples: values.length });
    return {
      scenario: 'waiting-room',
      target: target.name,
      workers,
      startedAt: startedAt.toISOString(),
      elapsedS: (performance.now() - began) / 1000,
      host: hostInfo(),
      parameters: { patients: options.patients, rate: options.rate, holdS: options.holdS },
      results: {
        patients: options.patients,
        admitted: times.length,
        failed,
        admissionsPerS: last > first ? times.length / ((last - first) / 1000) : 0,
        peakQueue,
      },
      latenciesMs: {
        consentToFirstRtp: pct(times.map((t) => t.firstRtpAt - t.consentAt)),
        consentToAdmitted: pct(times.map((t) => t.admittedAt - t.consentAt)),
        admittedToFirstRtp: pct(times.map((t) => t.firstRtpAt - t.admittedAt)),
      },
      server: { admissions },
      failures: errors.count,
      errors: errors.messages,
      notes: [
        'Admission latency runs from the patient sending giveConsent to its first RTP packet from the ' +
          'practitioner; it includes the wait for the practitioner to admit the patients ahead in the queue.',
        'The practitioner admits one patient at a time, as soon as the waiting list shows its consent.',
        'Patients only receive (the practitioner publishes audio and three-layer VP8 simulcast).',
      ],
    };
  } finally {
    options.progress('closing');
    for (const s of subscribers) s.close();
    for (const p of patients) p.close();
    publisher?.close();
    doctor?.close();
    scheduler.stop();
    await target.stop();
  }
}

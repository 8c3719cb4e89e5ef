import { MediaScheduler, percentilesOf } from '../peer/index.js';
import { ConsultLoad, firstVideoTimes } from '../harness/consult.js';
import type { JoinTimes } from '../harness/consult.js';
import { hostInfo, measureServer } from '../harness/scenarioReport.js';
import type { ScenarioReport } from '../harness/scenarioReport.js';
import type { Target } from '../harness/target.js';
import { inParallel } from '../harness/inParallel.js';

export interface JoinStormOptions {
  /** Consultations to open; each is two joins (practitioner and patient). */
  sessions: number;
  /** Joins started per second; 0 = as fast as `joinConcurrency` allows. */
  rate: number;
  joinConcurrency: number;
  /** Seconds a session stays up after both its participants receive media, then it leaves. */
  holdS: number;
  /** Publish audio only (default: audio and simulcast video). */
  audioOnly?: boolean;
  /**
   * Consultations joined and closed first, not measured, so that the server process is measured
   * warm (its JIT and caches, as in a server that has been running) rather than at its first joins.
   */
  warmupSessions?: number;
  workers: number;
  joinTimeoutMs: number;
  progress: (line: string) => void;
  log: (line: string) => void;
}

export interface JoinStormResults {
  joinsOffered: number;
  joins: number;
  failedSessions: number;
  /** Joins per second actually achieved: joins / (last join done - first join started). */
  joinsPerS: number;
  /** The rate asked for (0 = unpaced). */
  offeredJoinsPerS: number;
  /** Most sessions up (joining or joined) at the same time. */
  peakConcurrentSessions: number;
  /** This process's CPU during the storm, in cores: the peers' ICE, DTLS and media cost it too. */
  loadGeneratorCores: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Scenario `join-storm`: consultations arrive at `rate` joins per second (two joins each), every
 * participant goes through the whole join (for `self`: WebSocket, token, consent, admission,
 * transports, produce, consume) until the first RTP from the other arrives, stays `holdS`, leaves.
 * Sessions leave so the host is not saturated by media while the joins are measured.
 */
export async function runJoinStorm(
  target: Target,
  options: JoinStormOptions,
): Promise<ScenarioReport<JoinStormResults>> {
  const startedAt = new Date();
  const began = performance.now();
  const scheduler = new MediaScheduler();
  const warmupSessions = options.warmupSessions ?? 0;
  await target.start({
    workers: options.workers,
    maxSessions: options.sessions + warmupSessions,
    log: options.log,
  });
  const workers = target.serverPids().workers.length;
  const load = new ConsultLoad({
    target,
    scheduler,
    joinConcurrency: options.joinConcurrency,
    joinTimeoutMs: options.joinTimeoutMs,
    audioOnly: options.audioOnly ?? false,
    log: options.log,
  });
  if (warmupSessions > 0) await warmUp(load, warmupSessions, options);
  const joins: JoinTimes[] = [];
  let failed = 0;
  let live = 0;
  let peak = 0;
  let firstStart = Infinity;
  let lastDone = 0;
  const leaving: Promise<void>[] = [];
  const usage = measureServer(target.serverPids());
  const ownCpu = process.cpuUsage();

  const one = async (index: number): Promise<void> => {
    live++;
    peak = Math.max(peak, live);
    firstStart = Math.min(firstStart, performance.now());
    try {
      const session = await load.openSession(index);
      lastDone = Math.max(lastDone, performance.now());
      joins.push(...session.joins);
      leaving.push(sleep(options.holdS * 1000).then(() => load.closeSession(session)));
    } catch (error) {
      failed++;
      load.noteError(error);
    } finally {
      live--;
      options.progress(`join storm: ${joins.length} joined, ${failed} sessions failed, ${live} joining`);
    }
  };

  try {
    if (options.rate > 0) {
      // Two joins per session: a session starts every 2 / rate seconds, whatever the others do.
      const intervalMs = 2000 / options.rate;
      const stormStart = performance.now();
      const running: Promise<void>[] = [];
      for (let i = 0; i < options.sessions; i++) {
        const due = stormStart + i * intervalMs;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        running.push(one(warmupSessions + i));
      }
      await Promise.all(running);
    } else {
      await inParallel(options.sessions, options.joinConcurrency, (i) => one(warmupSessions + i));
    }
    const storm = usage.end();
    const own = process.cpuUsage(ownCpu);
    await Promise.all(leaving);
    const window = lastDone > firstStart ? (lastDone - firstStart) / 1000 : 0;
    const pct = (values: number[]) => ({ ...percentilesOf(values), samples: values.length });
    return {
      scenario: 'join-storm',
      target: target.name,
      workers,
      startedAt: startedAt.toISOString(),
      elapsedS: (performance.now() - began) / 1000,
      host: hostInfo(),
      parameters: {
        sessions: options.sessions,
        warmupSessions,
        rate: options.rate,
        joinConcurrency: options.joinConcurrency,
        holdS: options.holdS,
      },
      results: {
        joinsOffered: options.sessions * 2,
        joins: joins.length,
        failedSessions: failed,
        joinsPerS: window > 0 ? joins.length / window : 0,
        offeredJoinsPerS: options.rate,
        peakConcurrentSessions: peak,
        loadGeneratorCores: (own.user + own.system) / 1e6 / storm.seconds,
      },
      latenciesMs: {
        joinToFirstRtp: pct(joins.map((j) => j.firstRtpMs)),
        joined: pct(joins.map((j) => j.joinedMs)),
        connected: pct(joins.map((j) => j.connectedMs)),
        firstVideo: pct(firstVideoTimes(joins)),
      },
      server: { storm },
      failures: failed,
      errors: load.errors,
      notes: [
        "A join runs from opening the participant's signalling (for self: the WebSocket, with a token " +
          'issued beforehand by REST) to the first RTP packet from the other participant.',
        `Each session leaves ${options.holdS} s after both participants receive media.`,
      ],
    };
  } finally {
    options.progress('closing sessions');
    await load.close();
    scheduler.stop();
    await target.stop();
  }
}

/** Joins `sessions` consultations, `joinConcurrency` at a time, and closes each once it holds. */
async function warmUp(load: ConsultLoad, sessions: number, options: JoinStormOptions): Promise<void> {
  const leaving: Promise<void>[] = [];
  await inParallel(sessions, options.joinConcurrency, async (i) => {
    options.progress(`warm-up: session ${i + 1}/${sessions}`);
    const session = await load.openSession(i).catch((error: unknown) => {
      load.noteError(error);
      return undefined;
    });
    if (session) leaving.push(sleep(options.holdS * 1000).then(() => load.closeSession(session)));
  });
  await Promise.all(leaving);
}

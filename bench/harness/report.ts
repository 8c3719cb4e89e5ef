import os from 'node:os';
import { percentilesOf } from '../peer/index.js';
import type { Percentiles } from '../peer/index.js';
import type { JoinTimes } from './consult.js';
import { firstVideoTimes } from './consult.js';
import type { WindowResult } from './measure.js';

export interface JoinSummary {
  /** Join to first RTP received: the figure a user feels. */
  firstRtp: Percentiles;
  /** Join answer (for a waiting-room patient: consent given and admitted). */
  joined: Percentiles;
  signalling: Percentiles;
  connected: Percentiles;
  firstVideo: Percentiles;
  samples: number;
}

export interface StepReport {
  sessions: number;
  durationS: number;
  lossRatio: number;
  delayMs: WindowResult['delayMs'];
  joinMs: Percentiles;
  cpuS: { server: number; workers: number };
  /** CPU used per second of wall time, in cores (1 = one full core). */
  cpuCores: { server: number; workers: number; total: number };
  cpuCoresPerSession: number;
  cpuMsPerForwardedMbit: number;
  forwardedMbps: number;
  rssMiB: { server: number; workers: number };
  cpuBudget?: { cores: number; throttledS: number };
  joinFailures: number;
  passed: boolean;
}

export interface BenchReport {
  scenario: string;
  /** What each participant published: 'av' (audio + 3-layer simulcast) or 'audio'. */
  media: 'av' | 'audio';
  target: string;
  sessions: number;
  participantsPerSession: number;
  workers: number;
  durationS: number;
  startedAt: string;
  host: { cpus: number; node: string; platform: string; loadAverage: number[] };
  joined: number;
  joinFailures: number;
  packets: { sent: number; received: number; expected: number; lost: number };
  bytes: { sent: number; received: number };
  lossRatio: number;
  delayMs: WindowResult['delayMs'];
  joinMs: Percentiles;
  joinPhasesMs: JoinSummary;
  cpuS: { server: number; workers: number };
  cpuCores: { server: number; workers: number; total: number };
  cpuCoresPerSession: number;
  cpuMsPerForwardedMbit: number;
  /** CPU (server + workers) per RTP packet delivered to a receiver, in microseconds. */
  cpuUsPerForwardedPacket: number;
  forwardedMbps: number;
  rssMiB: { server: number; workers: number };
  peakRssMiB: { server: number; workers: number };
  loadGenerator: {
    cpuS: number;
    lateTickRatio: number;
    tickFailures: number;
    sendFailures: number;
    pacerDrops: number;
  };
  /** Share of received video streams at the top simulcast layer (by keyframe width). */
  videoTopLayerShare: number;
  /** Host-wide UDP socket errors during the window: where loopback loss usually comes from. */
  udpErrors: { rcvbufErrors: number; sndbufErrors: number; inErrors: number };
  /** Of those, datagrams dropped on the server's own sockets and on the load generator's. */
  socketDrops: { server: number; generator: number };
  /** With --cpu-budget: the cores the target could use and the seconds the quota held it back. */
  cpuBudget?: { cores: number; throttledS: number };
  errors: string[];
  ramp?: {
    thresholds: { maxLossRatio: number; maxDelayP99Ms: number };
    steps: StepReport[];
    lastGoodSessions: number;
    stopReason: string;
  };
}

export function summariseJoins(joins: JoinTimes[]): JoinSummary {
  return {
    firstRtp: percentilesOf(joins.map((j) => j.firstRtpMs)),
    joined: percentilesOf(joins.map((j) => j.joinedMs)),
    signalling: percentilesOf(joins.map((j) => j.signallingMs)),
    connected: percentilesOf(joins.map((j) => j.connectedMs)),
    firstVideo: percentilesOf(firstVideoTimes(joins)),
    samples: joins.length,
  };
}

/** Figures derived the same way for every target from one measurement window. */
export function derive(
  window: WindowResult,
): Pick<StepReport, 'cpuCores' | 'cpuCoresPerSession' | 'cpuMsPerForwardedMbit' | 'forwardedMbps'> {
  const seconds = window.durationS > 0 ? window.durationS : 1;
  const total = window.cpuS.server + window.cpuS.workers;
  const forwardedMbit = (window.traffic.receivedBytes * 8) / 1e6;
  return {
    cpuCores: {
      server: window.cpuS.server / seconds,
      workers: window.cpuS.workers / seconds,
      total: total / seconds,
    },
    cpuCoresPerSession: window.sessions > 0 ? total / seconds / window.sessions : 0,
    cpuMsPerForwardedMbit: forwardedMbit > 0 ? (total * 1000) / forwardedMbit : 0,
    forwardedMbps: forwardedMbit / seconds,
  };
}

export function stepOf(
  window: WindowResult,
  joins: JoinTimes[],
  joinFailures: number,
  passed: boolean,
): StepReport {
  return {
    sessions: window.sessions,
    durationS: window.durationS,
    lossRatio: window.lossRatio,
    delayMs: window.delayMs,
    joinMs: percentilesOf(joins.map((j) => j.firstRtpMs)),
    cpuS: window.cpuS,
    ...derive(window),
    rssMiB: window.rssMiB,
    ...(window.cpuBudget ? { cpuBudget: window.cpuBudget } : {}),
    joinFailures,
    passed,
  };
}

export function buildReport(input: {
  scenario: string;
  media: 'av' | 'audio';
  target: string;
  workers: number;
  startedAt: Date;
  participantsPerSession: number;
  window: WindowResult;
  joins: JoinTimes[];
  joinFailures: number;
  errors: string[];
  ramp?: BenchReport['ramp'];
}): BenchReport {
  const { window } = input;
  const joinPhasesMs = summariseJoins(input.joins);
  return {
    scenario: input.scenario,
    media: input.media,
    target: input.target,
    sessions: window.sessions,
    participantsPerSession: input.participantsPerSession,
    workers: input.workers,
    durationS: round(window.durationS, 3),
    startedAt: input.startedAt.toISOString(),
    host: {
      cpus: os.availableParallelism(),
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      // Other work on the host skews every figure: 1, 5 and 15 minute load averages at the end.
      loadAverage: os.loadavg().map((l) => round(l, 2)),
    },
    joined: input.joins.length / input.participantsPerSession,
    joinFailures: input.joinFailures,
    packets: {
      sent: window.traffic.sentPackets,
      received: window.traffic.receivedPackets,
      expected: window.traffic.expectedPackets,
      lost: window.traffic.lostPackets,
    },
    bytes: { sent: window.traffic.sentBytes, received: window.traffic.receivedBytes },
    lossRatio: window.lossRatio,
    delayMs: window.delayMs,
    joinMs: joinPhasesMs.firstRtp,
    joinPhasesMs,
    cpuS: window.cpuS,
    ...derive(window),
    cpuUsPerForwardedPacket:
      window.traffic.receivedPackets > 0
        ? ((window.cpuS.server + window.cpuS.workers) * 1e6) / window.traffic.receivedPackets
        : 0,
    rssMiB: window.rssMiB,
    peakRssMiB: window.peakRssMiB,
    loadGenerator: {
      cpuS: window.generatorCpuS,
      lateTickRatio: window.generatorLateTickRatio,
      tickFailures: window.generatorTickFailures,
      sendFailures: window.traffic.sendFailures,
      pacerDrops: window.traffic.pacerDrops,
    },
    videoTopLayerShare: window.video.streams > 0 ? window.video.topLayer / window.video.streams : 0,
    udpErrors: window.udpErrors,
    socketDrops: window.socketDrops,
    ...(window.cpuBudget ? { cpuBudget: window.cpuBudget } : {}),
    errors: input.errors,
    ...(input.ramp ? { ramp: input.ramp } : {}),
  };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

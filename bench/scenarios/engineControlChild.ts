/**
 * One round of the `engine-control` scenario for one engine, in a process of its own: the control
 * calls of a bare join (two WebRTC transports, their DTLS parameters, an audio and a three-layer
 * simulcast producer, two consumers checked with canConsume first, two resumes), repeated, with no
 * peer and no media, so that only the engine's control plane is measured: its Node library
 * (request encoding, parameter validation and copies) and the worker's handling of each request.
 * Prints one JSON line (EngineControlRound). Usage: BENCH_MEDIASOUP_MODULE=mediasoup|mediasoup-legacy
 * [MEDIASOUP_WORKER_BIN=...] [BENCH_ENGINE_RAW=1: mediasoup's own parameter copies]
 * node engineControlChild.js <joins> <warmup>
 */
import fs from 'node:fs';
import type * as Mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { MEDIA_CODECS } from '../../src/media/codecs.js';
import { useCheapCopiesInMediasoup } from '../../src/media/plainDataClone.js';

export interface EngineControlRound {
  version: string;
  joins: number;
  /** Milliseconds per call of each kind, every call of the measured joins. */
  callsMs: Record<string, number[]>;
  /** Wall time of one whole join's calls, one value per join. */
  joinMs: number[];
  /** CPU over the measured joins, divided by the joins (user + system). */
  nodeCpuMsPerJoin: number;
  workerCpuMsPerJoin: number;
}

const mediasoup = (await import(
  process.env.BENCH_MEDIASOUP_MODULE === 'mediasoup-legacy' ? 'mediasoup-legacy' : 'mediasoup'
)) as typeof Mediasoup;
if (process.env.BENCH_MEDIASOUP_MODULE !== 'mediasoup-legacy' && process.env.BENCH_ENGINE_RAW !== '1')
  useCheapCopiesInMediasoup();
const joins = Number(process.argv[2] ?? 500);
const warmup = Number(process.argv[3] ?? 100);

const CLOCK_TICK_MS = 10; // USER_HZ is 100 on Linux
function workerCpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_MS;
}

const worker = await mediasoup.createWorker({ logLevel: 'error' });
const server = await worker.createWebRtcServer({ listenInfos: [{ protocol: 'udp', ip: '127.0.0.1' }] });
const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
const receiverCaps = router.rtpCapabilities;
const fingerprint = {
  algorithm: 'sha-256' as const,
  value: Array.from({ length: 32 }, () => 'AB').join(':'),
};
const callsMs: Record<string, number[]> = {};
let ssrc = 1000;

async function timed<T>(name: string, call: () => Promise<T> | T): Promise<T> {
  const started = performance.now();
  const result = await call();
  (callsMs[name] ??= []).push(performance.now() - started);
  return result;
}

function audioParameters(): types.RtpParameters {
  return {
    mid: '0',
    codecs: [
      {
        mimeType: 'audio/opus',
        payloadType: 111,
        clockRate: 48000,
        channels: 2,
        parameters: { useinbandfec: 1 },
      },
    ],
    headerExtensions: [{ uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', id: 1 }],
    encodings: [{ ssrc: ssrc++ }],
    rtcp: { cname: 'bench' },
  };
}

function videoParameters(): types.RtpParameters {
  return {
    mid: '1',
    codecs: [
      {
        mimeType: 'video/VP8',
        payloadType: 96,
        clockRate: 90000,
        rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'transport-cc' }],
      },
    ],
    headerExtensions: [
      { uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', id: 1 },
      { uri: 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01', id: 3 },
    ],
    encodings: [1, 2, 3].map(() => ({ ssrc: ssrc++, scalabilityMode: 'L1T3' })),
    rtcp: { cname: 'bench' },
  };
}

async function oneJoin(): Promise<void> {
  const send = await timed('createTransport', () => router.createWebRtcTransport({ webRtcServer: server }));
  const recv = await timed('createTransport', () => router.createWebRtcTransport({ webRtcServer: server }));
  const dtlsParameters = { role: 'client' as const, fingerprints: [fingerprint] };
  await timed('connectTransport', () => send.connect({ dtlsParameters }));
  await timed('connectTransport', () => recv.connect({ dtlsParameters }));
  const producers = [
    await timed('produce', () => send.produce({ kind: 'audio', rtpParameters: audioParameters() })),
    await timed('produce', () => send.produce({ kind: 'video', rtpParameters: videoParameters() })),
  ];
  for (const producer of producers) {
    const consumer = await timed('consume', () => {
      if (!router.canConsume({ producerId: producer.id, rtpCapabilities: receiverCaps }))
        throw new Error('cannot consume');
      return recv.consume({ producerId: producer.id, rtpCapabilities: receiverCaps, paused: true });
    });
    await timed('resumeConsumer', () => consumer.resume());
  }
  send.close();
  recv.close();
}

for (let i = 0; i < warmup; i++) await oneJoin();
for (const key of Object.keys(callsMs)) delete callsMs[key];
const joinMs: number[] = [];
const cpuStart = process.cpuUsage();
const workerStart = workerCpuMs(worker.pid);
for (let i = 0; i < joins; i++) {
  const started = performance.now();
  await oneJoin();
  joinMs.push(performance.now() - started);
}
const cpu = process.cpuUsage(cpuStart);
const round: EngineControlRound = {
  version: mediasoup.version,
  joins,
  callsMs,
  joinMs,
  nodeCpuMsPerJoin: (cpu.user + cpu.system) / 1000 / joins,
  workerCpuMsPerJoin: (workerCpuMs(worker.pid) - workerStart) / joins,
};
worker.close();
process.stdout.write(`${JSON.stringify(round)}\n`);

/**
 * What the server's data-channel rate limit costs (src/rooms/dataRateGuard.ts): it reads every data
 * producer's counters from the worker each `dataChannels.checkIntervalMs`, whatever its traffic.
 * Runs our server twice with `--producers` idle vital-signs data producers, checks every 250 ms
 * (the default) and every 5000 ms (the slowest allowed), and reports the server's and the workers'
 * CPU over `--duration` seconds in each, and the difference per check.
 *   npm run build && node dist/bench/dataRateCost.js --producers 200 --duration 20 --out bench-results/data-rate-cost.json
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { measureServer } from './harness/scenarioReport.js';
import type { ServerUsage } from './harness/scenarioReport.js';
import { hostInfo } from './harness/scenarioReport.js';
import { ProvenanceRecorder } from './harness/provenance.js';
import { SelfParticipant } from './targets/self/participant.js';
import { SelfTarget } from './targets/self/target.js';

const PER_PARTICIPANT = 60;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function runOnce(producers: number, checkIntervalMs: number, durationS: number): Promise<ServerUsage> {
  const target = new SelfTarget({
    env: {
      SFU_DATA_CHANNELS__CHECK_INTERVAL_MS: String(checkIntervalMs),
      SFU_LIMITS__MAX_PRODUCERS_PER_PARTICIPANT: '64',
    },
  });
  await target.start({ workers: 1, maxSessions: 10, log: () => undefined });
  const sockets: SelfParticipant[] = [];
  try {
    for (let made = 0, room = 0; made < producers; room++) {
      const api = target.platform;
      const roomId = await api.createRoom({ waitingRoom: true, maxParticipants: 2 });
      const [doc, pat] = await Promise.all([
        api.invite(roomId, 'practitioner', `doc-${room}`),
        api.invite(roomId, 'patient', `pat-${room}`),
      ]);
      const practitioner = await SelfParticipant.join(target.server.wsUrl, doc.token);
      const patient = await SelfParticipant.join(target.server.wsUrl, pat.token);
      sockets.push(practitioner, patient);
      const admitted = patient.admitted();
      await patient.giveConsent();
      await practitioner.socket.request('admit', { participantId: patient.id });
      await admitted;
      const { id: transportId } = await patient.socket.request('createTransport', {
        direction: 'send',
        sctp: true,
      });
      for (let i = 0; i < PER_PARTICIPANT && made < producers; i++, made++) {
        await patient.socket.request('produceData', {
          transportId,
          sctpStreamParameters: { streamId: i + 1, ordered: true },
          label: 'vital-signs',
          protocol: 'teleconsult.vitals.v1',
          source: 'vital-signs',
          deviceType: 'pulse-oximeter',
        });
      }
    }
    await sleep(2000);
    const phase = measureServer(target.serverPids());
    await sleep(durationS * 1000);
    return phase.end();
  } finally {
    for (const s of sockets) s.close();
    await target.stop();
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      producers: { type: 'string', default: '200' },
      duration: { type: 'string', default: '20' },
      out: { type: 'string', default: 'bench-results/data-rate-cost.json' },
    },
  });
  const producers = Number(values.producers);
  const durationS = Number(values.duration);
  if (!(producers > 0 && durationS > 0)) {
    process.stderr.write('dataRateCost: --producers and --duration expect positive numbers\n');
    return 2;
  }
  const provenance = new ProvenanceRecorder(process.argv.slice(2));
  const every250 = await runOnce(producers, 250, durationS);
  const every5000 = await runOnce(producers, 5000, durationS);
  const checks = producers * (durationS / 0.25 - durationS / 5);
  const cpu = (u: ServerUsage) => u.cpuS.server + u.cpuS.workers;
  const report = {
    scenario: 'data-rate-cost',
    host: hostInfo(),
    parameters: { producers, durationS },
    server: { checksEvery250Ms: every250, checksEvery5000Ms: every5000 },
    results: {
      extraChecks: checks,
      extraCpuS: cpu(every250) - cpu(every5000),
      extraCpuCores: (cpu(every250) - cpu(every5000)) / durationS,
      cpuUsPerCheck: ((cpu(every250) - cpu(every5000)) * 1e6) / checks,
    },
    notes: [
      'Idle data producers (no messages): the check costs the same whatever the traffic; the messages themselves never reach Node.',
      'CPU from /proc at 10 ms resolution: a difference of a few ticks is noise.',
    ],
    provenance: provenance.finish(),
  };
  fs.mkdirSync(path.dirname(path.resolve(values.out)), { recursive: true });
  fs.writeFileSync(values.out, JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(JSON.stringify(report.results, null, 2) + '\n');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`dataRateCost: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);

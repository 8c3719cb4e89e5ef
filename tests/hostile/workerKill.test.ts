import t from 'tap';
import { MediaPeer, releaseNativePeers } from '../support/mediaPeer.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { eventually, percentile } from './stats.js';

/**
 * Chaos: a mediasoup worker is SIGKILLed in the middle of a call. The room moves to a live worker
 * and says so (`mediaReset`); the peers re-establish media the way the SDK does (new transports,
 * produce again, subscribe again) and RTP flows again. The journal records the incident. Media
 * recovery time (kill -> first RTP packet received again) is measured over several trials.
 */
const TRIALS = 10;

let srv: TestServer;
t.before(async () => {
  srv = await startTestServer({ media: { workers: 2 }, quality: { enabled: false } });
});
t.teardown(async () => {
  await srv.stop();
  releaseNativePeers();
});

/** What the SDK does on mediaReset: drop the old peers' media, publish and subscribe again. */
async function reestablish(peer: MediaPeer): Promise<void> {
  peer.publisher?.close();
  peer.subscriber?.close();
  peer.publisher = undefined;
  peer.subscriber = undefined;
  await peer.publish();
}

t.test('a worker killed mid-call: the room moves, media comes back, the journal says so', async (t) => {
  const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } }))
    .body.id;
  const doctor = await MediaPeer.joinAs(srv, roomId, 'doc', 'practitioner');
  const patient = await MediaPeer.joinAs(srv, roomId, 'pat', 'patient');
  t.teardown(() => {
    doctor.close();
    patient.close();
  });
  await doctor.publish();
  await patient.publish();
  await Promise.all([doctor.subscribe(2), patient.subscribe(2)]);
  await Promise.all([doctor.subscriber!.waitForMedia('video'), patient.subscriber!.waitForMedia('video')]);

  const recoveries: number[] = [];
  for (let trial = 1; trial <= TRIALS; trial++) {
    const room = srv.server.rooms.get(roomId)!;
    const pid = room.workerPid!;
    const resetsBefore = doctor.client.notifications.filter((n) => n.notification === 'mediaReset').length;
    const killedAt = performance.now();
    process.kill(pid, 'SIGKILL');
    const reset = (peer: MediaPeer) =>
      eventually(
        () => peer.client.notifications.filter((n) => n.notification === 'mediaReset').length > resetsBefore,
        15_000,
        5,
      );
    t.ok((await reset(doctor)) && (await reset(patient)), `trial ${trial}: both peers told mediaReset`);
    t.not(srv.server.rooms.get(roomId)!.workerPid, pid, `trial ${trial}: the room lives on another worker`);
    await Promise.all([reestablish(doctor), reestablish(patient)]);
    await Promise.all([doctor.subscribe(2, 15_000), patient.subscribe(2, 15_000)]);
    const firsts = await Promise.all([
      doctor.subscriber!.waitForMedia(undefined, 15_000),
      patient.subscriber!.waitForMedia(undefined, 15_000),
    ]);
    const recoveredMs = Math.max(...firsts) - killedAt;
    recoveries.push(recoveredMs);
    await Promise.all([doctor.subscriber!.waitForMedia('video'), patient.subscriber!.waitForMedia('video')]);
    const before = doctor.subscriber!.stats().packets + patient.subscriber!.stats().packets;
    t.ok(
      await eventually(
        () => doctor.subscriber!.stats().packets + patient.subscriber!.stats().packets > before + 50,
        5000,
      ),
      `trial ${trial}: RTP flows again (recovered in ${recoveredMs.toFixed(0)} ms)`,
    );
    // The pool replaces the dead worker before the next trial kills the room's new one.
    t.ok(await eventually(() => srv.server.pool.allAlive, 15_000), `trial ${trial}: the pool is whole again`);
  }

  const journal = await srv.rest<{
    records: { type: string; data: { kind?: string } }[];
    verification: { ok: boolean };
  }>('GET', `/v1/rooms/${roomId}/journal`);
  const incidents = journal.body.records.filter(
    (r) => r.type === 'incident' && r.data.kind === 'worker-died',
  );
  t.equal(incidents.length, TRIALS, 'one worker-died incident per kill in the journal');
  t.ok(journal.body.verification.ok, 'the journal chain verifies');
  const p50 = percentile(recoveries, 50);
  const p95 = percentile(recoveries, 95);
  t.comment(
    `worker kill -> RTP again: p50 ${p50.toFixed(0)} ms, p95 ${p95.toFixed(0)} ms over ${TRIALS} trials (${recoveries
      .map((r) => r.toFixed(0))
      .join(', ')} ms)`,
  );
});

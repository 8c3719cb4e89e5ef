import t from 'tap';
import { MediaPeer, releaseNativePeers } from '../support/mediaPeer.js';
import { startTestServer } from '../support/server.js';

t.test(
  'a room whose router is full spans another worker through pipeToRouter, and media crosses it both ways',
  async (t) => {
    const srv = await startTestServer({ media: { workers: 2 }, cluster: { spanConsumersPerRouter: 2 } });
    t.teardown(async () => {
      await srv.stop();
      releaseNativePeers();
    });
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
    const room = srv.server.rooms.get(roomId)!;
    const primaryPid = room.workerPid;

    // The primary router now carries 4 consumers (limit 2): a third participant lands on a span.
    const nurse = await MediaPeer.joinAs(srv, roomId, 'nurse', 'observer');
    t.teardown(() => nurse.close());
    await patient.client.consent('third-party', 'nurse');
    await nurse.client.waitFor('admissionChanged', (d) => d.state === 'admitted');
    await nurse.publish({ video: false });
    await nurse.subscribe(4);
    const nurseRouter = room.participants.get('nurse')!.router!;
    const nurseWorkerPid = (nurseRouter.appData as { workerPid: number }).workerPid;
    t.not(nurseRouter, room.currentRouter, 'the newcomer is on another router');
    t.not(nurseWorkerPid, primaryPid, 'on another worker');

    await Promise.all([nurse.subscriber!.waitForMedia('audio'), nurse.subscriber!.waitForMedia('video')]);
    // The nurse's audio crosses back to the primary router: the doctor gets a consumer and packets.
    const nurseConsumer = await doctor.client.waitFor('consumerAdded', (d) => d.participantId === 'nurse');
    await doctor.client.request('resumeConsumer', { consumerId: nurseConsumer.data.consumerId as string });
    const consumer = room.participants.get('doc')!.consumers.get(nurseConsumer.data.consumerId as string)!;
    let packets = 0;
    for (let i = 0; i < 50 && packets === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      packets = (await consumer.getStats()).find((s) => s.type === 'outbound-rtp')?.packetCount ?? 0;
    }
    t.ok(packets > 0, "the span's producer is forwarded on the primary router");
    t.ok(nurse.subscriber!.stats().packets > 20, 'the span receives the primary producers');

    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    t.match(metrics, /^sfu_room_span_routers 1$/m, 'the span is visible in metrics');
    t.match(metrics, /^sfu_piped_producers_total [1-9]/m, 'pipes are counted');
  },
);

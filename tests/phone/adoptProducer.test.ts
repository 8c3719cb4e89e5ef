import t from 'tap';
import type { types } from 'mediasoup';
import { dialIn, portOnServer } from './fixtures/portOnServer.js';

/**
 * The room adopts as a phone participant's own only a producer made on that participant's plain
 * transport (room.adoptProducer): anything else would publish under its name past the checks
 * every producer gets on the way in.
 */
function pcmu(transport: types.PlainTransport, ssrc: number): Promise<types.Producer> {
  return transport.produce({
    kind: 'audio',
    rtpParameters: {
      codecs: [{ mimeType: 'audio/PCMU', payloadType: 0, clockRate: 8000, channels: 1, rtcpFeedback: [] }],
      encodings: [{ ssrc }],
    },
  });
}

void t.test('a phone participant publishes only what was made on its own leg', async (t) => {
  const { srv, roomId, port } = await portOnServer(t);
  const { server } = srv;
  const join = (participantId: string, callId: string) =>
    port.joinPhoneParticipant(dialIn(roomId, participantId, 'patient', callId, true));
  const first = await join('phone-a', 'call-a');
  await first.admitted;
  const second = await join('phone-b', 'call-b');
  await second.admitted;
  const room = server.rooms.get(roomId)!;

  const ownLeg = await first.openTransport({ listenIp: '127.0.0.1', appData: {} });
  const otherLeg = await second.openTransport({ listenIp: '127.0.0.1', appData: {} });
  const stray = await room.currentRouter.createPlainTransport({ listenIp: '127.0.0.1', rtcpMux: true });
  t.teardown(() => stray.close());

  const fromStray = await pcmu(stray, 1001);
  await t.rejects(
    first.publishPhoneProducer(fromStray),
    { code: 'INVALID_STATE' },
    'a producer on a transport the room did not make for the leg is refused',
  );
  const fromOther = await pcmu(otherLeg, 1002);
  await t.rejects(
    first.publishPhoneProducer(fromOther),
    { code: 'INVALID_STATE' },
    "another phone participant's producer is refused",
  );
  t.equal(room.participants.get('phone-a')?.producers.size, 0, "neither became the participant's");

  const own = await pcmu(ownLeg, 1003);
  await first.publishPhoneProducer(own);
  t.ok(room.participants.get('phone-a')?.producers.has(own.id), "its own leg's producer is adopted");
  own.close();
  await t.rejects(first.publishPhoneProducer(own), { code: 'INVALID_STATE' }, 'a closed producer is refused');
});

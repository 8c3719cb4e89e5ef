import t from 'tap';
import type { types } from 'mediasoup';
import { PHONE_LEG_RTP_CAPABILITIES } from '../../src/phone/media/phoneMediaLeg.js';
import { MediaPeer, releaseNativePeers } from '../support/mediaPeer.js';
import { dialIn, portOnServer } from './fixtures/portOnServer.js';

/**
 * A phone leg lives on the room's own router. When the room spans another worker (its router
 * full), a speaker placed there is still heard by the phone: the room pipes every producer to the
 * room's router for the participants there before it tells anyone of the producer, so the gateway
 * can consume it on the leg, both for the audio present when the phone arrives and for audio
 * published later.
 */
void t.test("a phone participant hears the speakers on a room's span", async (t) => {
  const { srv, roomId, port } = await portOnServer(
    t,
    { media: { workers: 2 }, cluster: { spanConsumersPerRouter: 2 } },
    { maxParticipants: 6 },
  );
  t.teardown(() => releaseNativePeers());
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

  // The room's router carries 4 consumers (limit 2): the nurse lands on a span and speaks there.
  const nurse = await MediaPeer.joinAs(srv, roomId, 'nurse', 'assistant');
  t.teardown(() => nurse.close());
  await patient.client.consent('third-party', 'nurse');
  await nurse.client.waitFor('admissionChanged', (d) => d.state === 'admitted');
  await nurse.publish({ video: false });
  const nurseProducer = [...room.participants.get('nurse')!.producers.values()][0]!;
  t.not(room.participants.get('nurse')!.router, room.currentRouter, 'the nurse is on a span');

  const phone = await port.joinPhoneParticipant(dialIn(roomId, 'phone-interpreter', 'observer', 'call-1'));
  await patient.client.consent('third-party', 'phone-interpreter');
  await phone.admitted;
  const consumable = (producer: types.Producer) =>
    phone.router.canConsume({ producerId: producer.id, rtpCapabilities: PHONE_LEG_RTP_CAPABILITIES });

  const heard = phone.audioProducersToHear();
  t.ok(
    heard.some((p) => p.id === nurseProducer.id),
    "the span speaker's audio is among what the phone hears",
  );
  t.same(
    heard.filter((p) => !consumable(p)).map((p) => p.id),
    [],
    "every one of them can be consumed on the phone leg's router",
  );

  // Audio published on the span after the phone arrived is piped before the gateway hears of it.
  const added = new Promise<types.Producer>((resolve) => phone.events.once('audioProducerAdded', resolve));
  const second = await MediaPeer.joinAs(srv, roomId, 'nurse2', 'assistant');
  t.teardown(() => second.close());
  await patient.client.consent('third-party', 'nurse2');
  await second.client.waitFor('admissionChanged', (d) => d.state === 'admitted');
  t.not(room.participants.get('nurse2')!.router, room.currentRouter, 'the second nurse is on a span too');
  await second.publish({ video: false });
  const producer = await added;
  t.equal(producer.appData.participantId, 'nurse2', "the gateway hears of the second nurse's audio");
  t.ok(consumable(producer), 'and can consume it on the leg');
  await port.leave({ roomId, participantId: 'phone-interpreter', callId: 'call-1', reason: 'hangup' });
});

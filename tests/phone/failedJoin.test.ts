import t from 'tap';
import { dialIn, portOnServer } from './fixtures/portOnServer.js';

/**
 * The gateway calls `leave` only for a phone join that succeeded (src/phone/roomPort.ts). A join
 * that fails once the participant is in the room (here: the waiting room's settling fails, forced
 * on the real server's registry) must take that participant out again; otherwise it stays listed,
 * with no call left to end it.
 */
interface Journal {
  records: { type: string; data: Record<string, unknown> }[];
}

void t.test('a phone join that fails after entering the room leaves nothing behind', async (t) => {
  const { srv, roomId, port } = await portOnServer(t);
  const { server } = srv;

  const afterJoin = server.rooms.afterJoin.bind(server.rooms);
  server.rooms.afterJoin = () => Promise.reject(new Error('settling failed'));
  const request = dialIn(roomId, 'phone-nurse', 'assistant', 'call-1');
  await t.rejects(
    port.joinPhoneParticipant(request),
    /settling failed/,
    'the join is refused to the gateway',
  );
  server.rooms.afterJoin = afterJoin;

  const listed = await srv.rest<{ id: string }[]>('GET', `/v1/rooms/${roomId}/participants`);
  t.notOk(
    listed.body.some((p) => p.id === 'phone-nurse'),
    'REST does not list the phone participant whose join failed',
  );
  t.notOk(server.rooms.get(roomId)?.participants.has('phone-nurse'), 'the room does not hold it');
  const journal = await srv.rest<Journal>('GET', `/v1/rooms/${roomId}/journal`);
  t.same(
    journal.body.records
      .filter((r) => r.type === 'participant.left' && r.data.participantId === 'phone-nurse')
      .map((r) => r.data.reason),
    ['phone-join-failed'],
    'the journal says why it left',
  );

  // The same identity can dial in again and is then in the room, once.
  const joined = await port.joinPhoneParticipant({ ...request, callId: 'call-2' });
  t.ok(joined, 'a second call joins');
  t.equal(server.rooms.get(roomId)?.participants.get('phone-nurse')?.role, 'assistant');
  await port.leave({ ...request, callId: 'call-2', reason: 'hangup' });
  t.notOk(server.rooms.get(roomId)?.participants.has('phone-nurse'), 'and its hang-up takes it out');
});

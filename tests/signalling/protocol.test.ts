import t from 'tap';
import { SignallingClient, RequestError } from '../support/signallingClient.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { rtpParameters } from '../fuzz/signallingSession.js';
import { subscriberRtpCapabilities } from '../../bench/peer/index.js';

let srv: TestServer;
t.before(async () => {
  srv = await startTestServer({ limits: { authTimeoutMs: 500, messagesPerSecond: 20 } });
});
t.teardown(() => srv.stop());

async function room(options: Record<string, unknown> = { waitingRoom: false }): Promise<string> {
  const res = await srv.rest<{ id: string }>('POST', '/v1/rooms', { options });
  return res.body.id;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return err instanceof RequestError ? err.code : (err as Error).message;
  }
}

t.test('a participant joins with a valid token and gets capabilities and a resume token', async (t) => {
  const roomId = await room();
  const client = await SignallingClient.open(srv.wsUrl);
  t.teardown(() => client.close());
  const joined = await client.request('join', {
    token: await srv.token({ room: roomId, participantId: 'doc', role: 'practitioner', displayName: 'Dr A' }),
  });
  t.equal(joined.protocolVersion, 1);
  t.equal(joined.self.id, 'doc');
  t.equal(joined.self.state, 'admitted');
  t.ok(Array.isArray((joined.routerRtpCapabilities as { codecs: unknown[] }).codecs));
  t.match(joined.resumeToken, /^rt_/);
});

t.test('a connection without the protocol subprotocol is refused with 426', async (t) => {
  await t.rejects(SignallingClient.open(srv.wsUrl, null), /426/);
});

t.test(
  'malformed, invalid and unknown messages get typed errors and the connection stays usable',
  async (t) => {
    const client = await SignallingClient.open(srv.wsUrl);
    t.teardown(() => client.close());
    client.sendRaw('{not json');
    t.match(await client.nextRawResponse(), { id: null, ok: false, error: { code: 'MESSAGE_MALFORMED' } });
    client.sendRaw(JSON.stringify({ id: 'x', method: 'join' }));
    t.match(await client.nextRawResponse(), { id: null, ok: false, error: { code: 'MESSAGE_INVALID' } });
    t.equal(await codeOf(client.requestRaw('launchMissiles', {})), 'METHOD_UNKNOWN');
    t.equal(await codeOf(client.requestRaw('join', { token: 42 })), 'MESSAGE_INVALID');
    t.equal(await codeOf(client.requestRaw('createTransport', { direction: 'send' })), 'AUTH_REQUIRED');
    // A DTLS fingerprint list that is empty never reaches the worker.
    t.equal(
      await codeOf(
        client.requestRaw('connectTransport', { transportId: 't1', dtlsParameters: { fingerprints: [] } }),
      ),
      'MESSAGE_INVALID',
    );
    const roomId = await room();
    const joined = await client.request('join', {
      token: await srv.token({ room: roomId, participantId: 'p1', role: 'patient' }),
    });
    t.equal(joined.self.id, 'p1', 'still usable after bad input');
  },
);

t.test('an oversize message gets MESSAGE_TOO_LARGE', async (t) => {
  const client = await SignallingClient.open(srv.wsUrl);
  t.teardown(() => client.close());
  client.sendRaw(JSON.stringify({ id: 1, method: 'join', params: { token: 'x'.repeat(70_000) } }));
  t.match(await client.nextRawResponse(), { ok: false, error: { code: 'MESSAGE_TOO_LARGE' } });
});

t.test(
  'tokens: unknown room, forged, expired and reused tokens all get the same ACCESS_DENIED',
  async (t) => {
    const roomId = await room();
    const answers: string[] = [];
    const attempt = async (token: string) => {
      const client = await SignallingClient.open(srv.wsUrl);
      try {
        await client.request('join', { token });
        return 'joined';
      } catch (err) {
        return (err as RequestError).code;
      } finally {
        client.close();
      }
    };
    answers.push(
      await attempt(
        await srv.token({ room: 'room-that-does-not-exist', participantId: 'x', role: 'patient' }),
      ),
    );
    const good = await srv.token({ room: roomId, participantId: 'y', role: 'patient' });
    answers.push(await attempt(good.slice(0, -4) + (good.endsWith('AAAA') ? 'BBBB' : 'AAAA')));
    answers.push(
      await attempt(await srv.token({ room: roomId, participantId: 'z', role: 'patient', ttlS: -10 })),
    );
    t.equal(await attempt(good), 'joined');
    answers.push(await attempt(good));
    t.same(answers, ['ACCESS_DENIED', 'ACCESS_DENIED', 'ACCESS_DENIED', 'ACCESS_DENIED']);
  },
);

t.test('a connection that does not join in time is cut with AUTH_TIMEOUT', async (t) => {
  const client = await SignallingClient.open(srv.wsUrl);
  const code = await client.closed;
  t.equal(code, 4408);
  t.match(client.rawResponses[0], { ok: false, error: { code: 'AUTH_TIMEOUT' } });
});

t.test('a flood of messages is rate limited', async (t) => {
  const client = await SignallingClient.open(srv.wsUrl);
  t.teardown(() => client.close());
  const results = await Promise.all(Array.from({ length: 80 }, () => codeOf(client.requestRaw('leave', {}))));
  t.ok(results.includes('RATE_LIMITED'), 'some requests are refused');
  t.ok(results.includes('AUTH_REQUIRED'), 'the first ones are served');
});

t.test('a reconnecting participant resumes with its identity and is never duplicated', async (t) => {
  const roomId = await room();
  const doctor = await SignallingClient.open(srv.wsUrl);
  t.teardown(() => doctor.close());
  await doctor.request('join', {
    token: await srv.token({ room: roomId, participantId: 'doc', role: 'practitioner' }),
  });
  const first = await SignallingClient.open(srv.wsUrl);
  const joined = await first.request('join', {
    token: await srv.token({ room: roomId, participantId: 'pat', role: 'patient' }),
  });
  await first.consent();
  await first.waitFor('admissionChanged', (d) => d.state === 'admitted');
  await first.request('createTransport', { direction: 'recv' });
  first.ws.terminate();
  await doctor.waitFor(
    'participantUpdated',
    (d) => (d.participant as { connected: boolean }).connected === false,
  );

  const second = await SignallingClient.open(srv.wsUrl);
  t.teardown(() => second.close());
  const resumed = await second.request('resume', { resumeToken: joined.resumeToken });
  t.equal(resumed.self.id, 'pat', 'same identity');
  t.equal(resumed.transportIds.length, 1, 'its transport was kept');
  t.not(resumed.resumeToken, joined.resumeToken, 'the resume token rotates');
  const restarted = await second.request('restartIce', { transportId: resumed.transportIds[0]! });
  t.ok(restarted.iceParameters.usernameFragment);
  const participants = await srv.rest<{ id: string }[]>('GET', `/v1/rooms/${roomId}/participants`);
  t.same(participants.body.map((p) => p.id).sort(), ['doc', 'pat'], 'no duplicate participant');
  t.equal(doctor.notifications.filter((n) => n.notification === 'participantLeft').length, 0);
  t.equal(await codeOf(second.requestRaw('resume', { resumeToken: joined.resumeToken })), 'ALREADY_JOINED');
  const third = await SignallingClient.open(srv.wsUrl);
  t.teardown(() => third.close());
  t.equal(
    await codeOf(third.request('resume', { resumeToken: joined.resumeToken })),
    'RESUME_REJECTED',
    'an old resume token is dead',
  );
});

t.test('after the grace period, others are told the participant left', async (t) => {
  const graceSrv = await startTestServer({ auth: { resumeGraceS: 1 } });
  t.teardown(() => graceSrv.stop());
  const roomId = (
    await graceSrv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } })
  ).body.id;
  const doctor = await SignallingClient.open(graceSrv.wsUrl);
  t.teardown(() => doctor.close());
  await doctor.request('join', {
    token: await graceSrv.token({ room: roomId, participantId: 'doc', role: 'practitioner' }),
  });
  const patient = await SignallingClient.open(graceSrv.wsUrl);
  await patient.request('join', {
    token: await graceSrv.token({ room: roomId, participantId: 'pat', role: 'patient' }),
  });
  patient.ws.terminate();
  const left = await doctor.waitFor('participantLeft');
  t.same(left.data, { participantId: 'pat', reason: 'timeout' });
});

t.test('a waiting patient cannot create media until a practitioner admits it', async (t) => {
  const roomId = await room({ waitingRoom: true });
  const patient = await SignallingClient.open(srv.wsUrl);
  t.teardown(() => patient.close());
  const joined = await patient.request('join', {
    token: await srv.token({ room: roomId, participantId: 'pat', role: 'patient' }),
  });
  t.equal(joined.self.state, 'waiting');
  // Its transports may connect ahead (docs/authorization.md, `prepare`); nothing may be sent on them.
  const ahead = await patient.request('createTransport', { direction: 'send' });
  t.equal(
    await codeOf(
      patient.requestRaw('produce', {
        transportId: ahead.id,
        kind: 'audio',
        rtpParameters: rtpParameters('audio'),
        source: 'microphone',
      }),
    ),
    'NOT_ADMITTED',
    'a waiting patient may connect ahead but not publish',
  );
  t.equal(
    await codeOf(patient.request('admit', { participantId: 'pat' })),
    'FORBIDDEN_FOR_ROLE',
    'patients cannot admit',
  );
  const doctor = await SignallingClient.open(srv.wsUrl);
  t.teardown(() => doctor.close());
  await doctor.request('join', {
    token: await srv.token({ room: roomId, participantId: 'doc', role: 'practitioner' }),
  });
  t.equal(
    await codeOf(doctor.request('admit', { participantId: 'pat' })),
    'CONSENT_REQUIRED',
    'no admission without consent',
  );
  await patient.consent();
  await doctor.request('admit', { participantId: 'pat' });
  await patient.waitFor('admissionChanged', (d) => d.state === 'admitted');
  await patient.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() });
  t.equal(
    await codeOf(
      patient.requestRaw('produce', {
        transportId: ahead.id,
        kind: 'audio',
        rtpParameters: rtpParameters('audio'),
        source: 'microphone',
      }),
    ),
    'resolved',
    'media allowed once admitted, on the transport connected ahead',
  );
});

t.test('REST: rooms, invitations, participants and ending a room', async (t) => {
  t.equal((await fetch(`${srv.url}/v1/rooms`)).status, 401, 'no API key, no access');
  const created = await srv.rest<{ id: string; options: { maxParticipants: number } }>('POST', '/v1/rooms', {
    roomId: 'consult-42',
    options: { maxParticipants: 2, waitingRoom: false },
  });
  t.equal(created.status, 201);
  t.equal(created.body.id, 'consult-42');
  const bad = await srv.rest<{ code: string }>('POST', '/v1/rooms', { options: { maxParticipants: 'two' } });
  t.equal(bad.status, 400);
  t.equal(bad.body.code, 'MESSAGE_INVALID');
  const invitation = await srv.rest<{ token: string; joinUrl: string; participantId: string }>(
    'POST',
    '/v1/rooms/consult-42/invitations',
    { role: 'patient', displayName: 'P' },
  );
  t.equal(invitation.status, 201);
  const link = new URL(invitation.body.joinUrl);
  t.equal(link.search, '', 'the join link has no query string');
  t.equal(
    new URLSearchParams(link.hash.slice(1)).get('token'),
    invitation.body.token,
    'the token is in the fragment, which browsers never send to a server',
  );
  t.equal(`${link.origin}${link.pathname}`, `${srv.server.url}/`, 'the try-it page by default');
  const client = await SignallingClient.open(srv.wsUrl);
  const joined = await client.request('join', { token: invitation.body.token });
  t.equal(joined.self.id, invitation.body.participantId);
  const removed = await srv.rest(
    'DELETE',
    `/v1/rooms/consult-42/participants/${invitation.body.participantId}`,
  );
  t.equal(removed.status, 204);
  t.equal(await client.closed, 4000, 'the removed participant is disconnected');
  t.equal((await srv.rest('DELETE', '/v1/rooms/consult-42')).status, 204);
  t.equal((await srv.rest('GET', '/v1/rooms/consult-42')).status, 404);
});

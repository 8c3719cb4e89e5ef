import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignallingClient, RequestError } from '../support/signallingClient.js';
import { startTestServer, type TestServer } from '../support/server.js';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    return err instanceof RequestError ? err.code : (err as Error).message;
  }
}

interface Journal {
  records: { type: string; data: Record<string, unknown> }[];
  verification: { ok: boolean };
}

let srv: TestServer;
t.before(async () => {
  srv = await startTestServer();
});
t.teardown(() => srv.stop());

async function newRoom(options: Record<string, unknown> = {}): Promise<string> {
  return (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options })).body.id;
}

async function joinAs(roomId: string, participantId: string, role: 'practitioner' | 'patient' | 'assistant') {
  const client = await SignallingClient.open(srv.wsUrl);
  const joined = await client.request('join', {
    token: await srv.token({ room: roomId, participantId, role }),
  });
  return { client, joined };
}

t.test('the practitioner sees who waits, holds with a message, and admits after consent', async (t) => {
  const roomId = await newRoom();
  const doctor = await joinAs(roomId, 'doc', 'practitioner');
  const patient = await joinAs(roomId, 'pat', 'patient');
  t.teardown(() => {
    doctor.client.close();
    patient.client.close();
  });
  t.equal(doctor.joined.self.state, 'admitted');
  t.equal(patient.joined.self.state, 'waiting');
  const list = await doctor.client.request('getWaitingList', {});
  t.equal(list.entries.length, 1);
  t.equal(list.entries[0]!.participant.id, 'pat');
  t.same(list.entries[0]!.consents, []);
  t.equal(await codeOf(patient.client.request('getWaitingList', {})), 'FORBIDDEN_FOR_ROLE');

  await doctor.client.request('hold', {
    participantId: 'pat',
    message: 'Je termine une consultation, 5 minutes.',
  });
  const held = await patient.client.waitFor('admissionChanged', (d) => typeof d.message === 'string');
  t.equal(held.data.message, 'Je termine une consultation, 5 minutes.', 'the patient is told');

  const { texts } = await patient.client.request('getConsentTexts', {});
  const tc = texts.find((x) => x.purpose === 'teleconsultation')!;
  t.match(tc.hash, /^[0-9a-f]{64}$/);
  t.equal(
    await codeOf(
      patient.client.request('giveConsent', {
        purpose: 'teleconsultation',
        textId: tc.textId,
        version: tc.version,
        hash: '0'.repeat(64),
      }),
    ),
    'INVALID_STATE',
    'a consent to another text version is refused',
  );
  await patient.client.consent();
  await doctor.client.waitFor('waitingListChanged', (d) =>
    (d.entries as { consents: string[] }[]).some((e) => e.consents.includes('teleconsultation')),
  );
  await doctor.client.request('admit', { participantId: 'pat' });
  await patient.client.waitFor('admissionChanged', (d) => d.state === 'admitted');

  const journal = await srv.rest<Journal>('GET', `/v1/rooms/${roomId}/journal`);
  t.equal(journal.status, 200);
  t.ok(journal.body.verification.ok, 'the chain verifies');
  const types = journal.body.records.map((r) => r.type);
  t.same(types.slice(0, 1), ['consultation.created']);
  for (const type of ['participant.waiting', 'participant.held', 'consent.given', 'participant.admitted']) {
    t.ok(types.includes(type), `${type} is journalled`);
  }
  const consent = journal.body.records.find((r) => r.type === 'consent.given')!;
  t.same(
    (consent.data.consent as { hash: string }).hash,
    tc.hash,
    'the consent record carries the text hash',
  );
});

t.test('a hold message sent while the patient is disconnected reaches it when it resumes', async (t) => {
  const roomId = await newRoom();
  const doctor = await joinAs(roomId, 'doc', 'practitioner');
  const patient = await joinAs(roomId, 'pat', 'patient');
  t.teardown(() => doctor.client.close());
  patient.client.close();
  await patient.client.closed;
  await doctor.client.request('hold', { participantId: 'pat', message: 'Encore quelques minutes.' });

  const back = await SignallingClient.open(srv.wsUrl);
  t.teardown(() => back.close());
  const held = back.waitFor('admissionChanged', (d) => typeof d.message === 'string');
  const resumed = await back.request('resume', { resumeToken: patient.joined.resumeToken });
  t.equal(resumed.self.state, 'waiting', 'still waiting');
  const notice = await held;
  t.equal(notice.data.message, 'Encore quelques minutes.', 'the hold message is replayed after the resume');
  t.equal(notice.data.state, 'waiting');
});

t.test('a declined patient is told and disconnected', async (t) => {
  const roomId = await newRoom();
  const doctor = await joinAs(roomId, 'doc', 'practitioner');
  const patient = await joinAs(roomId, 'pat', 'patient');
  t.teardown(() => doctor.client.close());
  await doctor.client.request('decline', { participantId: 'pat' });
  await patient.client.waitFor('admissionChanged', (d) => d.state === 'declined');
  t.equal(await patient.client.closed, 4000);
  t.equal(await codeOf(doctor.client.request('admit', { participantId: 'pat' })), 'NOT_FOUND');
});

t.test('withdrawing consent ends the participation', async (t) => {
  const roomId = await newRoom();
  const doctor = await joinAs(roomId, 'doc', 'practitioner');
  const patient = await joinAs(roomId, 'pat', 'patient');
  t.teardown(() => {
    doctor.client.close();
    patient.client.close();
  });
  await patient.client.consent();
  await doctor.client.request('admit', { participantId: 'pat' });
  await patient.client.request('withdrawConsent', { purpose: 'teleconsultation' });
  const left = await doctor.client.waitFor('participantLeft');
  t.same(left.data, { participantId: 'pat', reason: 'left' });
  const journal = await srv.rest<Journal>('GET', `/v1/rooms/${roomId}/journal`);
  t.ok(journal.body.records.some((r) => r.type === 'consent.withdrawn'));
});

t.test('a third party joins only after the patient consents and the practitioner approves', async (t) => {
  const roomId = await newRoom();
  const doctor = await joinAs(roomId, 'doc', 'practitioner');
  const patient = await joinAs(roomId, 'pat', 'patient');
  t.teardown(() => {
    doctor.client.close();
    patient.client.close();
  });
  await patient.client.consent();
  await doctor.client.request('admit', { participantId: 'pat' });
  const nurse = await joinAs(roomId, 'nurse', 'assistant');
  t.teardown(() => nurse.client.close());
  t.equal(nurse.joined.self.state, 'waiting');
  const asked = await patient.client.waitFor('consentRequested');
  t.equal(asked.data.participantId, 'nurse');
  t.equal(
    await codeOf(doctor.client.request('admit', { participantId: 'nurse' })),
    'CONSENT_REQUIRED',
    'no approval before consent',
  );
  t.equal(
    await codeOf(nurse.client.consent()),
    'FORBIDDEN_FOR_ROLE',
    'a third party cannot consent for itself',
  );
  await patient.client.consent('third-party', 'nurse');
  await doctor.client.request('admit', { participantId: 'nurse' });
  await nurse.client.waitFor('admissionChanged', (d) => d.state === 'admitted');
  // Withdrawing the third-party consent removes the third party.
  await patient.client.request('withdrawConsent', { purpose: 'third-party', coversParticipantId: 'nurse' });
  t.equal(await nurse.client.closed, 4000);
  const journal = await srv.rest<Journal>('GET', `/v1/rooms/${roomId}/journal`);
  const types = journal.body.records.map((r) => r.type);
  for (const type of [
    'thirdparty.requested',
    'thirdparty.approved',
    'consent.withdrawn',
    'participant.removed',
  ]) {
    t.ok(types.includes(type), `${type} is journalled`);
  }
});

t.test('a patient who arrives after the third party is asked for its consent too', async (t) => {
  const roomId = await newRoom();
  const doctor = await joinAs(roomId, 'doc', 'practitioner');
  const nurse = await joinAs(roomId, 'nurse', 'assistant');
  const interpreter = await joinAs(roomId, 'interp', 'assistant');
  t.teardown(() => [doctor, nurse, interpreter].forEach((x) => x.client.close()));
  const patient = await joinAs(roomId, 'pat', 'patient');
  t.teardown(() => patient.client.close());
  const asked = await Promise.all(
    ['nurse', 'interp'].map((id) =>
      patient.client.waitFor('consentRequested', (d) => d.participantId === id),
    ),
  );
  t.same(
    asked.map((n) => [n.data.purpose, n.data.role]),
    [
      ['third-party', 'assistant'],
      ['third-party', 'assistant'],
    ],
    'one request per third party already waiting',
  );
  await patient.client.consent('third-party', 'nurse');
  patient.client.close();
  await patient.client.closed;
  const back = await SignallingClient.open(srv.wsUrl);
  t.teardown(() => back.close());
  await back.request('resume', { resumeToken: patient.joined.resumeToken });
  const again = await back.waitFor('consentRequested');
  t.equal(again.data.participantId, 'interp', 'after a resume, only the request still open is repeated');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(back.notifications.filter((n) => n.notification === 'consentRequested').length, 1);
});

t.test('access codes: single use, identical refusals, and guessing is cut off by the lockout', async (t) => {
  const roomId = await newRoom();
  const invitation = await srv.rest<{ accessCode: string; participantId: string }>(
    'POST',
    `/v1/rooms/${roomId}/invitations`,
    {
      role: 'patient',
    },
  );
  t.match(invitation.body.accessCode, /^\d{8}$/);
  const joinWithCode = async (accessCode: string) => {
    const client = await SignallingClient.open(srv.wsUrl);
    try {
      const joined = await client.request('join', { accessCode });
      return joined.self.id;
    } catch (err) {
      return (err as RequestError).code;
    } finally {
      client.close();
    }
  };
  t.equal(await joinWithCode(invitation.body.accessCode), invitation.body.participantId, 'the code joins');
  t.equal(await joinWithCode(invitation.body.accessCode), 'ACCESS_DENIED', 'used once only');
  // Guessing: a few wrong codes get ACCESS_DENIED, then the address is locked out.
  const answers: string[] = [];
  for (let i = 0; i < 8; i++) answers.push(await joinWithCode(String(10_000_000 + i)));
  t.same(answers.slice(0, 4), ['ACCESS_DENIED', 'ACCESS_DENIED', 'ACCESS_DENIED', 'ACCESS_DENIED']);
  t.same(
    answers.slice(4),
    ['RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED'],
    'locked out after 5 failures',
  );
  // Even the right code of a fresh invitation is refused from the locked address.
  const fresh = await srv.rest<{ accessCode: string }>('POST', `/v1/rooms/${roomId}/invitations`, {
    role: 'patient',
  });
  t.equal(await joinWithCode(fresh.body.accessCode), 'RATE_LIMITED');
});

t.test('an invitation unused at expiry triggers a signed invitation.expired webhook', async (t) => {
  const received: {
    headers: http.IncomingHttpHeaders;
    body: { type: string; data: Record<string, unknown> };
  }[] = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(body) as never });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  t.teardown(() => receiver.close());
  const hookSrv = await startTestServer({
    webhooks: {
      url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`,
      secret: 'webhook-secret-0123456789',
    },
    auth: { maxTokenLifetimeS: 60 },
  });
  t.teardown(() => hookSrv.stop());
  const roomId = (await hookSrv.rest<{ id: string }>('POST', '/v1/rooms', {})).body.id;
  const invitation = await hookSrv.rest<{ participantId: string }>(
    'POST',
    `/v1/rooms/${roomId}/invitations`,
    {
      role: 'patient',
      ttlS: 30,
    },
  );
  // Move the invitation's clock instead of waiting 30 s: expire it through the store.
  const store = hookSrv.server.invitations as unknown as {
    byId: Map<string, { expiresAt: number }>;
    expire(i: unknown): void;
  };
  for (const inv of store.byId.values()) store.expire(inv);
  const deadline = Date.now() + 10_000;
  while (!received.some((r) => r.body.type === 'invitation.expired') && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const expired = received.find((r) => r.body.type === 'invitation.expired');
  t.ok(expired, 'the platform is told');
  t.equal(expired?.body.data.participantId, invitation.body.participantId);
  t.match(String(expired?.headers['webhook-signature']), /^v1=[0-9a-f]{64}$/);
});

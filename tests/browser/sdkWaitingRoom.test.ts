import t from 'tap';
import { Device } from 'mediasoup-client';
import { WebSocket } from 'ws';
import { Room, connectWithCode, isTeleconsultError, type TeleconsultError } from '../../src/sdk/index.js';
import { Session, type JoinCredentials, type SessionOptions } from '../../src/sdk/session.js';
import { resolveReconnectPolicy } from '../../src/sdk/reconnectPolicy.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { TcpRelay } from './tcpRelay.js';
import { waitFor } from './harness.js';

// The waiting room through the SDK's Room, driven from Node over `ws` against the real server.
// Media needs a browser (tests/browser/call.test.ts); everything here is signalling: consent,
// the waiting list, hold messages, third-party consent, access codes and what a resume restores.
// The rooms are never started, so no transport is asked of the unloaded device.

function sessionOptions(overrides: Partial<SessionOptions> = {}): SessionOptions {
  return {
    WebSocket,
    locale: 'fr',
    requestTimeoutMs: 5_000,
    connectTimeoutMs: 5_000,
    reconnect: resolveReconnectPolicy({ initialDelayMs: 50, maxDelayMs: 200 }),
    e2ee: false,
    ...overrides,
  };
}

/** A Room over a real session; its device is never loaded (no media in Node). */
async function joinRoom(
  url: string,
  credentials: string | JoinCredentials,
  overrides: Partial<SessionOptions> = {},
): Promise<Room> {
  const { session, result } = await Session.join(url, credentials, sessionOptions(overrides));
  return new Room(session, new Device({ handlerName: 'Chrome111' }), result, {
    locale: overrides.locale ?? 'fr',
    iceServers: undefined,
    iceTransportPolicy: undefined,
  });
}

async function consultation(server: TestServer) {
  const res = await fetch(`${server.url}/demo/consultations`, { method: 'POST' });
  const body = (await res.json()) as { roomId: string; tokens: { practitioner: string; patient: string } };
  return { roomId: body.roomId, ...body.tokens };
}

async function rejection(promise: Promise<unknown>): Promise<TeleconsultError> {
  try {
    await promise;
  } catch (err) {
    if (isTeleconsultError(err)) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

/** Records a room's waiting-room events as short strings. */
function recordEvents(room: Room): string[] {
  const events: string[] = [];
  room.on('admissionChanged', (state, message) =>
    events.push(message === undefined ? `admission:${state}` : `admission:${state}:${message}`),
  );
  room.on('waitingListChanged', (entries) =>
    events.push(
      `list:${entries.map((e) => `${e.participant.id}(${e.consents.join('+') || 'none'})`).join(',')}`,
    ),
  );
  room.on('consentRequested', (r) =>
    events.push(`consentRequested:${r.purpose}:${r.participantId}:${r.role}`),
  );
  return events;
}

const server = await startTestServer();
t.teardown(() => server.stop());

t.test('a patient consents through the SDK and only then can the practitioner admit it', async (t) => {
  const { practitioner, patient } = await consultation(server);
  const doctor = await joinRoom(server.wsUrl, practitioner);
  t.teardown(() => doctor.leave());
  const doctorEvents = recordEvents(doctor);
  const pat = await joinRoom(server.wsUrl, patient, { locale: 'en' });
  t.teardown(() => pat.leave());
  const patEvents = recordEvents(pat);
  t.equal(pat.admissionState, 'waiting', 'the patient starts waiting');

  const list = await doctor.getWaitingList();
  t.same(
    list.map((e) => [e.participant.id, e.consents, e.precheck, e.heldMessage]),
    [['patient-1', [], null, null]],
    'the practitioner sees the patient waiting, without consent or pre-call result',
  );
  t.equal(doctor.waitingList, list, 'room.waitingList holds the list fetched');
  t.ok(Date.parse(list[0]?.since ?? '') > 0, 'with the time it arrived');

  const refused = await rejection(doctor.admit('patient-1'));
  t.equal(refused.code, 'CONSENT_REQUIRED', 'admission before consent is refused');
  t.match(refused.message, /consentement du patient/, 'with a French message for display');

  const texts = await pat.getConsentTexts();
  const text = texts.find((x) => x.purpose === 'teleconsultation');
  if (!text) throw new Error('no teleconsultation text');
  t.match(text.hash, /^[0-9a-f]{64}$/, 'the consent text comes with its hash');
  t.ok(text.text.length > 20 && text.locale.length >= 2, 'and its text and locale');

  const stale = await rejection(pat.giveConsent({ ...text, version: `${text.version}-old` }));
  t.equal(stale.code, 'INVALID_STATE', 'a consent to a text version not current is refused');
  t.notOk(pat.consents.has('teleconsultation'), 'and not counted');

  await pat.giveConsent(text);
  t.ok(pat.consents.has('teleconsultation'), 'room.consents has the teleconsultation consent');
  await waitFor('the patient to be told it consented', () =>
    Promise.resolve(patEvents.includes('admission:consented')),
  );
  await waitFor('the waiting list to show the consent', () =>
    Promise.resolve(doctorEvents.includes('list:patient-1(teleconsultation)')),
  );
  t.same(doctor.waitingList[0]?.consents, ['teleconsultation'], 'room.waitingList follows the notifications');

  const admitted = pat.next('admissionChanged');
  await doctor.admit('patient-1');
  t.same(await admitted, ['admitted', undefined], 'the patient is admitted');
  await waitFor('the waiting list to empty', () => Promise.resolve(doctorEvents.at(-1) === 'list:'));
  t.same(doctor.waitingList, [], 'nobody waits any more');
});

t.test('a hold message reaches the waiting patient and the waiting list', async (t) => {
  const { practitioner, patient } = await consultation(server);
  const doctor = await joinRoom(server.wsUrl, practitioner);
  t.teardown(() => doctor.leave());
  const pat = await joinRoom(server.wsUrl, patient);
  t.teardown(() => pat.leave());

  const held = pat.next('admissionChanged');
  await doctor.hold('patient-1', 'Je termine une consultation, 5 minutes.');
  t.same(await held, ['waiting', 'Je termine une consultation, 5 minutes.'], 'the patient gets the message');
  t.equal(pat.heldMessage, 'Je termine une consultation, 5 minutes.', 'room.heldMessage keeps it');
  t.equal(pat.admissionState, 'waiting', 'still waiting');
  await waitFor('the list to carry the message', () =>
    Promise.resolve(doctor.waitingList[0]?.heldMessage === 'Je termine une consultation, 5 minutes.'),
  );

  const long = 'x'.repeat(400);
  const second = pat.next('admissionChanged');
  await doctor.hold('patient-1', long);
  t.equal((await second)[1]?.length, 280, 'the SDK sends at most 280 characters');

  const forbidden = await rejection(pat.hold('practitioner-1', 'non'));
  t.equal(forbidden.code, 'FORBIDDEN_FOR_ROLE', 'a patient may not hold anyone');
  const notAllowed = await rejection(pat.getWaitingList());
  t.equal(notAllowed.code, 'FORBIDDEN_FOR_ROLE', 'nor read the waiting list');

  const consented = pat.next('admissionChanged');
  const text = (await pat.getConsentTexts()).find((x) => x.purpose === 'teleconsultation');
  if (!text) throw new Error('no text');
  await pat.giveConsent(text);
  t.same(await consented, ['consented', undefined], 'the held patient consents');
  t.equal(pat.heldMessage, 'x'.repeat(280), 'the message stays while waiting');
  const admitted = pat.next('admissionChanged');
  await doctor.admit('patient-1');
  await admitted;
  t.equal(pat.heldMessage, undefined, 'and goes at admission');
});

t.test('withdrawing consent: back to waiting before admission, the end of the call after', async (t) => {
  const { practitioner, patient } = await consultation(server);
  const doctor = await joinRoom(server.wsUrl, practitioner);
  t.teardown(() => doctor.leave());
  const pat = await joinRoom(server.wsUrl, patient);
  const events = recordEvents(pat);
  const text = (await pat.getConsentTexts()).find((x) => x.purpose === 'teleconsultation');
  if (!text) throw new Error('no text');
  await pat.giveConsent(text);
  await pat.withdrawConsent('teleconsultation');
  await waitFor('the patient to be waiting again', () =>
    Promise.resolve(events.join(',') === 'admission:consented,admission:waiting'),
  );
  t.notOk(pat.consents.has('teleconsultation'), 'the consent is gone');
  t.equal((await rejection(doctor.admit('patient-1'))).code, 'CONSENT_REQUIRED', 'admission needs it again');

  await pat.giveConsent(text);
  const admitted = pat.next('admissionChanged');
  await doctor.admit('patient-1');
  await admitted;
  const left = doctor.next('participantLeft');
  const ended = pat.next('admissionChanged');
  await pat.withdrawConsent('teleconsultation');
  t.equal((await ended)[0], 'left', "the patient's session ends");
  t.equal(pat.connectionState, 'disconnected', 'disconnected');
  const [who, reason] = await left;
  t.same([who.id, reason], ['patient-1', 'left'], 'the practitioner sees the patient leave');
});

t.test("a third party waits for the patient's consent, then the practitioner admits it", async (t) => {
  const { roomId, practitioner, patient } = await consultation(server);
  const doctor = await joinRoom(server.wsUrl, practitioner);
  t.teardown(() => doctor.leave());
  const pat = await joinRoom(server.wsUrl, patient);
  t.teardown(() => pat.leave());
  const patEvents = recordEvents(pat);
  const nurse = await joinRoom(
    server.wsUrl,
    await server.token({ room: roomId, participantId: 'nurse-1', role: 'assistant' }),
  );
  t.teardown(() => nurse.leave());
  const requested = await waitFor('the patient to be asked', () =>
    Promise.resolve(patEvents.find((e) => e.startsWith('consentRequested:'))),
  );
  t.equal(
    requested,
    'consentRequested:third-party:nurse-1:assistant',
    'consentRequested names the assistant',
  );
  t.equal((await rejection(doctor.admit('nurse-1'))).code, 'CONSENT_REQUIRED', 'no admission before');

  const text = (await pat.getConsentTexts()).find((x) => x.purpose === 'third-party');
  if (!text) throw new Error('no third-party text');
  const unnamed = await rejection(pat.giveConsent(text));
  t.equal(unnamed.code, 'INVALID_STATE', 'a third-party consent must name whom it covers');
  const selfConsent = await rejection(nurse.giveConsent(text, { coversParticipantId: 'nurse-1' }));
  t.equal(selfConsent.code, 'FORBIDDEN_FOR_ROLE', 'a third party cannot consent for itself');

  await pat.giveConsent(text, { coversParticipantId: 'nurse-1' });
  await waitFor('the waiting list to show the nurse covered', () =>
    Promise.resolve(
      doctor.waitingList.some((e) => e.participant.id === 'nurse-1' && e.coveredByPatientConsent),
    ),
  );
  const admitted = nurse.next('admissionChanged');
  await doctor.admit('nurse-1');
  t.same(await admitted, ['admitted', undefined], 'the assistant is admitted');

  const removed = nurse.next('connectionStateChanged');
  await pat.withdrawConsent('third-party', { coversParticipantId: 'nurse-1' });
  t.same(await removed, ['disconnected'], 'withdrawing the consent removes the assistant');
  t.equal(nurse.disconnectReason?.code, 'REMOVED', 'which is told why');
});

t.test('access codes: a malformed code costs no attempt, a good one joins once', async (t) => {
  const { roomId } = await consultation(server);
  const malformed = await rejection(connectWithCode(server.url, '12-ab-34', { WebSocket }));
  t.equal(malformed.code, 'ACCESS_CODE_INVALID', 'letters are refused before anything is sent');
  t.match(malformed.message, /8 chiffres/, 'with a French message');
  t.match(malformed.messageIn('en'), /8 digits/, 'and an English one');

  const invitation = await server.rest<{ accessCode: string; participantId: string }>(
    'POST',
    `/v1/rooms/${roomId}/invitations`,
    { role: 'patient' },
  );
  const code = invitation.body.accessCode;
  const pat = await joinRoom(server.wsUrl, { accessCode: `${code.slice(0, 4)}-${code.slice(4)}` });
  t.teardown(() => pat.leave());
  t.equal(pat.self.id, invitation.body.participantId, 'the code, typed with a dash, joins');
  t.equal(pat.admissionState, 'waiting', 'into the waiting room');
  const reused = await rejection(Session.join(server.wsUrl, { accessCode: code }, sessionOptions()));
  t.equal(reused.code, 'ACCESS_DENIED', 'a code works once');
});

t.test('a resume brings back what changed while the connection was down', async (t) => {
  const relay = await TcpRelay.start(server.server.address.port);
  t.teardown(() => relay.close());
  const relayUrl = `ws://127.0.0.1:${relay.port}/ws`;
  const { practitioner, patient } = await consultation(server);
  const doctor = await joinRoom(relayUrl, practitioner);
  t.teardown(() => doctor.leave());
  const doctorEvents = recordEvents(doctor);
  const pat = await joinRoom(server.wsUrl, patient);
  t.teardown(() => pat.leave());
  await waitFor('the first waiting list', () => Promise.resolve(doctorEvents.length > 0));

  // The practitioner's connection is down while the patient consents: the notification is lost.
  relay.refuse(true);
  relay.cutAll();
  await waitFor('the practitioner to be reconnecting', () =>
    Promise.resolve(doctor.connectionState === 'reconnecting'),
  );
  const text = (await pat.getConsentTexts()).find((x) => x.purpose === 'teleconsultation');
  if (!text) throw new Error('no text');
  await pat.giveConsent(text);
  t.notOk(
    doctorEvents.some((e) => e.includes('teleconsultation')),
    'the practitioner could not be told meanwhile',
  );
  relay.refuse(false);
  await waitFor('the practitioner to be back', () => Promise.resolve(doctor.connectionState === 'connected'));
  await waitFor('the waiting list to be fetched again after the resume', () =>
    Promise.resolve(doctorEvents.includes('list:patient-1(teleconsultation)')),
  );
  t.same(doctor.waitingList[0]?.consents, ['teleconsultation'], 'room.waitingList is current again');

  // The patient's connection is down while it is admitted: its state comes back with the resume.
  const patRelay = await TcpRelay.start(server.server.address.port);
  t.teardown(() => patRelay.close());
  const pat2 = await joinRoom(
    `ws://127.0.0.1:${patRelay.port}/ws`,
    await server.token({ room: pat.id, participantId: 'patient-2', role: 'patient' }),
  );
  t.teardown(() => pat2.leave());
  const pat2Events = recordEvents(pat2);
  await pat2.giveConsent(text);
  await waitFor('consented', () => Promise.resolve(pat2Events.includes('admission:consented')));
  patRelay.refuse(true);
  patRelay.cutAll();
  await waitFor('the patient to be reconnecting', () =>
    Promise.resolve(pat2.connectionState === 'reconnecting'),
  );
  await doctor.admit('patient-2');
  t.notOk(pat2Events.includes('admission:admitted'), 'not told while disconnected');
  const resumed = pat2.next('admissionChanged');
  patRelay.refuse(false);
  t.same(await resumed, ['admitted', undefined], 'admissionChanged follows the resume');
  t.equal(pat2.admissionState, 'admitted', 'the patient knows it is admitted');
});

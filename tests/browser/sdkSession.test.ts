import t from 'tap';
import { WebSocket } from 'ws';
import { ERROR_CODES } from '../../src/errors/catalogue.js';
import { Session, type ConnectionState, type SessionOptions } from '../../src/sdk/session.js';
import type { TeleconsultError } from '../../src/sdk/errors.js';
import { isTeleconsultError } from '../../src/sdk/errors.js';
import { messageFor } from '../../src/sdk/messages.js';
import {
  DEFAULT_RECONNECT_POLICY,
  mayRetry,
  reconnectDelay,
  resolveReconnectPolicy,
} from '../../src/sdk/reconnectPolicy.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { TcpRelay } from './tcpRelay.js';
import { waitFor } from './harness.js';

// The SDK's signalling layer needs no browser: these tests drive it from Node against the real
// server, with the `ws` package injected as the WebSocket implementation.

function options(overrides: Partial<SessionOptions> = {}): SessionOptions {
  return {
    WebSocket,
    locale: 'fr',
    requestTimeoutMs: 5_000,
    connectTimeoutMs: 5_000,
    reconnect: resolveReconnectPolicy({ initialDelayMs: 50, maxDelayMs: 400 }),
    e2ee: false,
    ...overrides,
  };
}

async function consultation(
  server: TestServer,
): Promise<{ roomId: string; practitioner: string; patient: string }> {
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

function recordStates(session: Session): ConnectionState[] {
  const states: ConnectionState[] = [];
  session.on('connectionStateChanged', (state) => states.push(state));
  return states;
}

t.test(
  'reconnection delays grow exponentially, keep their jitter in bounds and respect the ceiling',
  async (t) => {
    const policy = resolveReconnectPolicy({
      initialDelayMs: 250,
      maxDelayMs: 5_000,
      multiplier: 2,
      jitter: 0.3,
    });
    const noJitter = [1, 2, 3, 4, 5, 6, 7, 8].map((attempt) => reconnectDelay(policy, attempt, () => 0));
    t.same(
      noJitter,
      [250, 500, 1000, 2000, 4000, 5000, 5000, 5000],
      'doubles from 250 ms up to the 5 s ceiling',
    );
    for (let attempt = 1; attempt <= 8; attempt++) {
      const base = noJitter[attempt - 1] ?? 0;
      const delay = reconnectDelay(policy, attempt, () => 0.999999);
      t.ok(
        delay >= Math.floor(base * 0.7) && delay <= base,
        `attempt ${attempt}: ${delay} ms within [0.7, 1] of ${base}`,
      );
    }
    t.ok(mayRetry(policy, 0, 0), 'a first attempt is allowed');
    t.notOk(mayRetry(policy, policy.maxAttempts, 0), 'no attempt beyond maxAttempts');
    t.notOk(mayRetry(policy, 1, policy.maxTotalMs), 'no attempt after maxTotalMs');
    t.notOk(mayRetry(resolveReconnectPolicy(false), 0, 0), 'reconnect: false disables reconnection');
    const clamped = resolveReconnectPolicy({
      jitter: 7,
      multiplier: -1,
      maxAttempts: Number.NaN,
      maxDelayMs: 1,
    });
    t.equal(clamped.jitter, 1, 'jitter is clamped to 1');
    t.equal(clamped.multiplier, 1, 'multiplier is at least 1');
    t.equal(clamped.maxAttempts, 0, 'a non-number attempt count means none');
    t.equal(
      clamped.maxDelayMs,
      DEFAULT_RECONNECT_POLICY.initialDelayMs,
      'the ceiling is never below the first delay',
    );
    t.ok(
      DEFAULT_RECONNECT_POLICY.maxTotalMs <= 30_000,
      "the default gives up within the server's default grace period",
    );
  },
);

t.test('every server error code has a French and an English display message', async (t) => {
  const unknown = messageFor('UNKNOWN', 'fr');
  for (const code of ERROR_CODES) {
    const fr = messageFor(code, 'fr');
    const en = messageFor(code, 'en');
    t.ok(fr.length > 0 && fr !== unknown, `${code} has its own French message`);
    t.ok(en.length > 0 && en !== fr, `${code} has an English message`);
  }
});

t.test('the signalling session against the real server', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.stop());

  await t.test('responses reach the request that asked, whatever their order and outcome', async (t) => {
    const { practitioner } = await consultation(server);
    const { session, result } = await Session.join(server.wsUrl, practitioner, options());
    t.teardown(() => session.leave());
    t.equal(result.self.role, 'practitioner');
    t.equal(session.state, 'connected');
    const outcomes = await Promise.allSettled(
      Array.from({ length: 24 }, (_, i) =>
        i % 3 === 0
          ? session.request('admit', { participantId: `nobody-${i}` })
          : i % 3 === 1
            ? session.request('setRtpCapabilities', { rtpCapabilities: {} })
            : session.request('getStats', { transportId: `no-transport-${i}` }),
      ),
    );
    outcomes.forEach((outcome, i) => {
      const expected = ['NOT_FOUND', 'ok', 'TRANSPORT_NOT_FOUND'][i % 3];
      const got = outcome.status === 'fulfilled' ? 'ok' : (outcome.reason as TeleconsultError).code;
      t.equal(got, expected, `request ${i} got its own answer (${expected})`);
    });
  });

  await t.test(
    'server errors become typed errors with a code and a message in the chosen language',
    async (t) => {
      const denied = await rejection(Session.join(server.wsUrl, 'not-a-valid-token-at-all', options()));
      t.equal(denied.code, 'ACCESS_DENIED');
      t.equal(denied.name, 'TeleconsultError');
      t.match(denied.message, /lien de consultation/, 'the message is French by default');
      t.match(denied.messageIn('en'), /consultation link/, 'and available in English');
      t.match(denied.serverMessage, /token/, "the server's own (English) message is kept for logs");

      const { patient } = await consultation(server);
      const { session } = await Session.join(server.wsUrl, patient, options({ locale: 'en' }));
      t.teardown(() => session.leave());
      const forbidden = await rejection(session.request('admit', { participantId: 'someone' }));
      t.equal(forbidden.code, 'FORBIDDEN_FOR_ROLE', 'a patient may not admit');
      t.match(forbidden.message, /role/, 'English when the locale is en');
      const waiting = await rejection(
        session.request('consume', { producerId: '00000000-0000-4000-8000-000000000000' }),
      );
      t.equal(waiting.code, 'NOT_ADMITTED', 'no media before admission');
      const invalid = await rejection(
        session.request('setConsumerPreferredLayers', { consumerId: 'x', spatialLayer: 99 }),
      );
      t.equal(invalid.code, 'MESSAGE_INVALID', 'schema violations come back typed');
      t.type(invalid.detail, 'string', 'with a detail');
    },
  );

  await t.test(
    'a request left unanswered times out with REQUEST_TIMEOUT, and later ones still work',
    async (t) => {
      const relay = await TcpRelay.start(server.server.address.port);
      t.teardown(() => relay.close());
      const { practitioner } = await consultation(server);
      const { session } = await Session.join(
        `ws://127.0.0.1:${relay.port}/ws`,
        practitioner,
        options({ requestTimeoutMs: 600 }),
      );
      t.teardown(() => session.leave());
      relay.freeze();
      const timedOut = await rejection(session.request('setRtpCapabilities', { rtpCapabilities: {} }));
      t.equal(timedOut.code, 'REQUEST_TIMEOUT');
      t.equal(timedOut.detail, 'setRtpCapabilities', 'the detail names the method');
      relay.thaw();
      const late = await session
        .request('admit', { participantId: 'nobody' })
        .catch((err: TeleconsultError) => err.code);
      t.equal(late, 'NOT_FOUND', 'the late answer to the timed-out request is not mistaken for the next one');
      t.equal(session.state, 'connected', 'a time-out alone does not drop the session');
    },
  );

  await t.test('after a network cut the session reconnects, resumes and carries on', async (t) => {
    const relay = await TcpRelay.start(server.server.address.port);
    t.teardown(() => relay.close());
    const { roomId, practitioner, patient } = await consultation(server);
    const watcher = await Session.join(server.wsUrl, practitioner, options());
    t.teardown(() => watcher.session.leave());
    const seen: string[] = [];
    watcher.session.on('notification', (message) => {
      if (message.notification === 'participantUpdated' || message.notification === 'participantJoined') {
        const { participant } = message.data as { participant: { connected: boolean } };
        seen.push(`${message.notification}:${participant.connected}`);
      }
    });
    const { session, result } = await Session.join(`ws://127.0.0.1:${relay.port}/ws`, patient, options());
    t.teardown(() => session.leave());
    const states = recordStates(session);
    const resumed = session.next('resumed');
    const participantBefore = server.server.rooms.get(roomId)?.participants.get(result.self.id);

    relay.cutAll();
    // Issued during the outage: it waits for the connection to come back.
    const duringOutage = session.request('setRtpCapabilities', { rtpCapabilities: {} });
    const [resumeResult] = await resumed;
    t.same(states, ['reconnecting', 'connected'], 'reconnecting, then connected again');
    t.equal(resumeResult.self.id, result.self.id, 'the same participant is resumed');
    t.equal(resumeResult.self.state, 'waiting', 'still in the waiting room');
    t.not(resumeResult.resumeToken, result.resumeToken, 'the resume token is renewed');
    t.same(resumeResult.transportIds, [], 'no transport to restart for a waiting patient');
    t.same(await duringOutage, {}, 'a request made during the outage is answered after it');
    t.equal(
      server.server.rooms.get(roomId)?.participants.get(result.self.id),
      participantBefore,
      'the server kept the participant rather than making a new one',
    );
    await waitFor('the practitioner to see the patient back', () =>
      Promise.resolve(seen.includes('participantUpdated:false') && seen.at(-1) === 'participantUpdated:true'),
    );
    t.pass('the practitioner saw the patient disconnect and come back');

    // A second cut works the same, with the renewed resume token.
    const again = session.next('resumed');
    relay.cutAll();
    await again;
    t.equal(session.state, 'connected', 'a second cut is survived too');
  });

  await t.test('the SDK gives up after its policy when the server stays unreachable', async (t) => {
    const relay = await TcpRelay.start(server.server.address.port);
    t.teardown(() => relay.close());
    const { patient } = await consultation(server);
    const policy = resolveReconnectPolicy({ maxAttempts: 3, initialDelayMs: 20, maxDelayMs: 80 });
    const { session } = await Session.join(
      `ws://127.0.0.1:${relay.port}/ws`,
      patient,
      options({ reconnect: policy }),
    );
    const attempts: number[] = [];
    session.on('reconnectAttempt', ({ attempt }) => attempts.push(attempt));
    const ended = session.next('ended');
    relay.refuse(true);
    relay.cutAll();
    const [reason] = await ended;
    t.same(attempts, [1, 2, 3], 'three attempts, as the policy says');
    t.equal(reason?.code, 'CONNECTION_FAILED', 'then it ends with CONNECTION_FAILED');
    t.equal(session.state, 'disconnected');
    const after = await rejection(session.request('setRtpCapabilities', { rtpCapabilities: {} }));
    t.equal(after.code, 'NOT_CONNECTED', 'requests after the end fail at once');
  });

  await t.test(
    "the browser's `online` event starts a reconnection at once; the backoff stays for an unreachable server",
    async (t) => {
      const relay = await TcpRelay.start(server.server.address.port);
      t.teardown(() => relay.close());
      const { patient } = await consultation(server);
      const network = new EventTarget();
      // A backoff far longer than the test: only the event can bring the session back in time.
      const policy = resolveReconnectPolicy({
        initialDelayMs: 60_000,
        maxDelayMs: 120_000,
        maxTotalMs: 600_000,
      });
      const { session } = await Session.join(
        `ws://127.0.0.1:${relay.port}/ws`,
        patient,
        options({ reconnect: policy, networkEvents: network }),
      );
      t.teardown(() => session.leave());
      const started: string[] = [];
      session.on('reconnectStarted', ({ attempt, trigger }) => started.push(`${attempt}:${trigger}`));
      const scheduled: number[] = [];
      session.on('reconnectAttempt', ({ delayMs }) => scheduled.push(delayMs));

      relay.refuse(true);
      relay.cutAll();
      await waitFor('the first attempt to be scheduled', () => Promise.resolve(scheduled.length === 1));
      t.ok((scheduled[0] ?? 0) >= 40_000, `the first attempt waits ${scheduled[0]} ms`);
      // The browser says the network is back, but the server still refuses: one attempt, then backoff.
      network.dispatchEvent(new Event('online'));
      await waitFor('the second attempt to be scheduled', () => Promise.resolve(scheduled.length === 2));
      t.same(started, ['1:online'], 'the event started an attempt at once');
      t.ok((scheduled[1] ?? 0) >= 40_000, `after it failed, the backoff waits again (${scheduled[1]} ms)`);
      // The server is reachable again but nobody says so: the session keeps waiting for its timer.
      relay.refuse(false);
      await new Promise((resolve) => setTimeout(resolve, 500));
      t.equal(session.state, 'reconnecting', 'without an event, still waiting for the backoff');

      const resumed = session.next('resumed');
      network.dispatchEvent(new Event('online'));
      await resumed;
      t.equal(session.state, 'connected', 'resumed');
      t.same(started, ['1:online', '2:online'], 'the attempt that resumed was started by the online event');
    },
  );

  await t.test(
    'with wakeOnNetworkReturn off, the `online` event does not cut the backoff short',
    async (t) => {
      const relay = await TcpRelay.start(server.server.address.port);
      t.teardown(() => relay.close());
      const { patient } = await consultation(server);
      const network = new EventTarget();
      const policy = resolveReconnectPolicy({
        initialDelayMs: 1_500,
        maxDelayMs: 1_500,
        jitter: 0,
        maxTotalMs: 600_000,
        wakeOnNetworkReturn: false,
      });
      const { session } = await Session.join(
        `ws://127.0.0.1:${relay.port}/ws`,
        patient,
        options({ reconnect: policy, networkEvents: network }),
      );
      t.teardown(() => session.leave());
      const started: string[] = [];
      session.on('reconnectStarted', ({ attempt, trigger }) => started.push(`${attempt}:${trigger}`));
      const scheduled: number[] = [];
      session.on('reconnectAttempt', ({ delayMs }) => scheduled.push(delayMs));
      relay.refuse(true);
      relay.cutAll();
      await waitFor('the first attempt to be scheduled', () => Promise.resolve(scheduled.length === 1));
      relay.refuse(false);
      network.dispatchEvent(new Event('online'));
      const resumed = session.next('resumed');
      await resumed;
      t.same(started, ['1:backoff'], 'the attempt that resumed was started by its timer, not by the event');
    },
  );

  await t.test('a disabled reconnection policy ends the session on the first drop', async (t) => {
    const relay = await TcpRelay.start(server.server.address.port);
    t.teardown(() => relay.close());
    const { patient } = await consultation(server);
    const { session } = await Session.join(
      `ws://127.0.0.1:${relay.port}/ws`,
      patient,
      options({ reconnect: resolveReconnectPolicy(false) }),
    );
    const ended = session.next('ended');
    relay.cutAll();
    const [reason] = await ended;
    t.equal(reason?.code, 'CONNECTION_LOST');
  });

  await t.test('a declined patient is told so and does not try to reconnect', async (t) => {
    const { practitioner, patient } = await consultation(server);
    const doctor = await Session.join(server.wsUrl, practitioner, options());
    t.teardown(() => doctor.session.leave());
    const { session, result } = await Session.join(server.wsUrl, patient, options());
    const states = recordStates(session);
    const ended = session.next('ended');
    await doctor.session.request('decline', { participantId: result.self.id });
    const [reason] = await ended;
    t.equal(reason?.code, 'DECLINED');
    t.same(states, ['disconnected'], 'straight to disconnected, no reconnection');
  });
});

t.test('a session the server has forgotten ends with RESUME_REJECTED', async (t) => {
  // No grace period: the server removes a participant as soon as its connection drops.
  const server = await startTestServer({ auth: { resumeGraceS: 0 } });
  t.teardown(() => server.stop());
  const relay = await TcpRelay.start(server.server.address.port);
  t.teardown(() => relay.close());
  const { patient } = await consultation(server);
  const { session } = await Session.join(`ws://127.0.0.1:${relay.port}/ws`, patient, options());
  const states = recordStates(session);
  const ended = session.next('ended');
  relay.cutAll();
  const [reason] = await ended;
  t.equal(reason?.code, 'RESUME_REJECTED', 'the resume was refused');
  t.same(states, ['reconnecting', 'disconnected'], "the application sees 'disconnected'");
});

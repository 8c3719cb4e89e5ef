import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startPhoneServer } from './fixtures/phoneServer.js';
import { WebhookReceiver } from '../webhooks/receiver.js';
import { phoneStream, writeRtpPcap } from './fixtures/pcap.js';
import { until } from './fixtures/roomFixture.js';
import { freeUdpPort, runSipp, type SippProcess } from './fixtures/sipp.js';

interface CallView {
  callId: string;
  roomId: string;
  participantId: string;
  role: string;
  direction: string;
  state: string;
  reason?: string;
  sipStatus?: number;
}
interface Hook {
  type: string;
  data: Record<string, unknown>;
}

const SECRET = 'webhook-secret-0123456789';

/**
 * The platform calls a phone into a room through the REST API; sipp plays the called phone (answer,
 * busy, decline, ringing until cancelled, hanging up itself) behind a loopback "trunk".
 */
void t.test('REST dial-out against a sipp callee', async (t) => {
  const hooks = await WebhookReceiver.start(SECRET);
  t.teardown(() => hooks.close());
  const srv = await startPhoneServer({}, { webhooks: { url: hooks.url, secret: SECRET } });
  t.teardown(() => srv.stop());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phone-rest-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pcap = path.join(dir, 'callee.pcap');
  const keys = Array.from({ length: 30 }, (_, i) => ({ digit: '1', atMs: 1000 + i * 1000 }));
  writeRtpPcap(pcap, phoneStream({ durationMs: 32000, keys, voice: true }));
  const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: true } }))
    .body.id;
  const hooksFor = (callId: string) =>
    hooks.requests
      .map((r) => JSON.parse(r.body) as Hook)
      .filter((h) => h.data.callId === callId)
      .map((h) => h.type);

  const callee = async (
    scenario: string,
    values: Record<string, string | number>,
  ): Promise<{ sipp: SippProcess; uri: string }> => {
    const port = await freeUdpPort();
    const sipp = runSipp({ scenario, localPort: port, mediaPort: await freeUdpPort(), values, timeoutS: 60 });
    t.teardown(() => sipp.kill());
    await new Promise((resolve) => setTimeout(resolve, 300)); // sipp binds its port
    return { sipp, uri: `sip:+33612345678@127.0.0.1:${port}` };
  };
  const dial = (to: string, body: Record<string, unknown> = {}) =>
    srv.rest<CallView>('POST', `/v1/rooms/${roomId}/phone-calls`, { to, ...body });
  const stateOf = async (callId: string) =>
    (await srv.rest<CallView>('GET', `/v1/rooms/${roomId}/phone-calls/${callId}`)).body;

  await t.test('answered, then hung up through the API', async (t) => {
    const { sipp, uri } = await callee('callee-answers.xml', {
      PCAP: pcap,
      HANGUP_BY_PHONE: 0,
      TALK_MS: 0,
      WAIT_MS: 40000,
    });
    const created = await dial(uri, { participantId: 'phone-answered' });
    t.equal(created.status, 201);
    t.match(created.body, {
      roomId,
      participantId: 'phone-answered',
      role: 'patient',
      direction: 'dial-out',
      state: 'ringing',
    });
    const { callId } = created.body;
    await hooks.waitFor(() => hooksFor(callId).includes('phone.call.answered'));
    t.pass('the platform is told the phone answered');
    t.ok(
      await until(async () => (await stateOf(callId)).state === 'waiting', 40000),
      'after the notice and the key 1, the patient waits for admission',
    );
    const hungUp = await srv.rest<CallView>('DELETE', `/v1/rooms/${roomId}/phone-calls/${callId}`);
    t.equal(hungUp.status, 200);
    t.match(hungUp.body, { callId, state: 'ended', reason: 'ended' }, 'the answer states the final state');
    const run = await sipp.done;
    t.equal(run.exitCode, 0, run.exitCode === 0 ? 'the phone got our BYE' : run.output);
    await hooks.waitFor(() => hooksFor(callId).includes('phone.call.ended'));
    t.same(hooksFor(callId).sort(), ['phone.call.answered', 'phone.call.ended']);
  });

  await t.test('answered, then the phone hangs up', async (t) => {
    const { sipp, uri } = await callee('callee-answers.xml', {
      PCAP: pcap,
      HANGUP_BY_PHONE: 1,
      TALK_MS: 2000,
      WAIT_MS: 0,
    });
    const { callId } = (await dial(uri)).body;
    const run = await sipp.done;
    t.equal(run.exitCode, 0, run.exitCode === 0 ? 'our 200 answered the BYE' : run.output);
    t.ok(await until(async () => (await stateOf(callId)).state === 'ended', 5000));
    t.match(await stateOf(callId), { state: 'ended', reason: 'hangup' });
    await hooks.waitFor(() => hooksFor(callId).includes('phone.call.ended'));
    const ended = hooks.requests
      .map((r) => JSON.parse(r.body) as Hook)
      .find((h) => h.type === 'phone.call.ended' && h.data.callId === callId);
    t.match(ended?.data, { consultationId: roomId, reason: 'hangup', direction: 'dial-out' });
  });

  for (const [status, reason] of [
    [486, 'busy'],
    [603, 'rejected'],
  ] as const) {
    await t.test(`a ${status} answer fails the call as ${reason}`, async (t) => {
      const { sipp, uri } = await callee('callee-final.xml', { STATUS: status });
      const { callId, state } = (await dial(uri)).body;
      t.equal(state, 'ringing');
      const run = await sipp.done;
      t.equal(run.exitCode, 0, run.exitCode === 0 ? 'the refusal was ACKed' : run.output);
      t.ok(await until(async () => (await stateOf(callId)).state === 'failed', 5000));
      t.match(await stateOf(callId), { state: 'failed', reason, sipStatus: status });
      await hooks.waitFor(() => hooksFor(callId).includes('phone.call.failed'));
      t.same(hooksFor(callId), ['phone.call.failed'], 'failed, never answered nor ended');
    });
  }

  await t.test(
    'hung up through the API while ringing: CANCEL, and the call failed as cancelled',
    async (t) => {
      const { sipp, uri } = await callee('callee-cancelled.xml', { WAIT_MS: 20000 });
      const { callId } = (await dial(uri)).body;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      t.equal((await stateOf(callId)).state, 'ringing');
      const hungUp = await srv.rest<CallView>('DELETE', `/v1/rooms/${roomId}/phone-calls/${callId}`);
      t.match(hungUp.body, { state: 'failed', reason: 'cancelled' });
      const run = await sipp.done;
      t.equal(run.exitCode, 0, run.exitCode === 0 ? 'CANCEL, 487 and its ACK' : run.output);
      await hooks.waitFor(() => hooksFor(callId).includes('phone.call.failed'));
      t.same(hooksFor(callId), ['phone.call.failed']);
    },
  );

  await t.test('unknown and ended rooms are refused like everywhere in the API', async (t) => {
    const unknown = await srv.rest<{ code: string }>('POST', '/v1/rooms/no-such-room/phone-calls', {
      to: 'sip:+33612345678@127.0.0.1:5999',
    });
    t.equal(unknown.status, 404);
    t.equal(unknown.body.code, 'NOT_FOUND');
    const ended = (await srv.rest<{ id: string }>('POST', '/v1/rooms', {})).body.id;
    await srv.rest('DELETE', `/v1/rooms/${ended}`);
    const afterEnd = await srv.rest<{ code: string }>('POST', `/v1/rooms/${ended}/phone-calls`, {
      to: 'sip:+33612345678@127.0.0.1:5999',
    });
    const invitation = await srv.rest<{ code: string }>('POST', `/v1/rooms/${ended}/invitations`, {
      role: 'patient',
    });
    t.equal(afterEnd.status, invitation.status, 'the same status as an invitation for that room');
    t.equal(afterEnd.body.code, invitation.body.code, 'and the same code');
    const noPhone = (
      await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { phoneAllowed: false } })
    ).body.id;
    const refused = await srv.rest<{ code: string }>('POST', `/v1/rooms/${noPhone}/phone-calls`, {
      to: 'sip:+33612345678@127.0.0.1:5999',
    });
    t.equal(refused.body.code, 'FORBIDDEN_FOR_ROLE');
    const badBody = await srv.rest<{ code: string }>('POST', `/v1/rooms/${roomId}/phone-calls`, {
      to: 'mailto:someone',
    });
    t.equal(badBody.body.code, 'MESSAGE_INVALID');
    const noCall = await srv.rest<{ code: string }>('DELETE', `/v1/rooms/${roomId}/phone-calls/nope`);
    t.equal(noCall.body.code, 'NOT_FOUND');
  });
});

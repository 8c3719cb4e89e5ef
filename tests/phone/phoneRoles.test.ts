import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startPhoneServer } from './fixtures/phoneServer.js';
import { phoneStream, writeRtpPcap } from './fixtures/pcap.js';
import { until } from './fixtures/roomFixture.js';
import { freeUdpPort, runSipp } from './fixtures/sipp.js';

interface Journal {
  records: { type: string; data: Record<string, unknown> }[];
}
interface ParticipantView {
  id: string;
  role: string;
  phone: boolean;
  state: string;
}

void t.test('a phone caller takes the role of the invitation it redeemed', async (t) => {
  const srv = await startPhoneServer();
  t.teardown(() => srv.stop());
  const gateway = srv.server.phone!;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phone-role-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: true } }))
    .body.id;
  const participant = async (id: string) =>
    (await srv.rest<ParticipantView[]>('GET', `/v1/rooms/${roomId}/participants`)).body.find(
      (p) => p.id === id,
    );

  const dialIn = async (role: string, participantId: string) => {
    const { accessCode } = (
      await srv.rest<{ accessCode: string }>('POST', `/v1/rooms/${roomId}/invitations`, {
        role,
        participantId,
      })
    ).body;
    const pcap = path.join(dir, `${participantId}.pcap`);
    // The code, then '1' every second: whoever is asked to consent will be heard consenting.
    const keys = [...`${accessCode}#`].map((digit, i) => ({ digit, atMs: 800 + i * 200 }));
    for (let atMs = 4000; atMs < 40000; atMs += 1000) keys.push({ digit: '1', atMs });
    writeRtpPcap(pcap, phoneStream({ durationMs: 41000, keys, voice: true }));
    const sipp = runSipp({
      scenario: 'dial-in.xml',
      remote: `127.0.0.1:${gateway.sipPorts.udp}`,
      localPort: await freeUdpPort(),
      mediaPort: await freeUdpPort(),
      values: { PCAP: pcap, RTP_PORT: await freeUdpPort(), CALLER: '0633333333', CALL_MS: 42000 },
      timeoutS: 70,
    });
    t.teardown(() => sipp.kill());
    t.ok(await until(async () => (await participant(participantId)) !== undefined, 45000), `${role} joined`);
    return sipp;
  };

  const assistantCall = await dialIn('assistant', 'phone-assistant');
  t.match(
    await participant('phone-assistant'),
    { role: 'assistant', phone: true, state: 'waiting' },
    'with the invitation role, waiting for the patient’s consent and admission',
  );
  const patientCall = await dialIn('patient', 'phone-patient');
  t.match(await participant('phone-patient'), { role: 'patient', phone: true });
  t.ok(
    await until(async () => (await participant('phone-patient'))?.state === 'consented', 30000),
    'the patient consented by keypress',
  );
  assistantCall.kill();
  patientCall.kill();
  await srv.rest('DELETE', `/v1/rooms/${roomId}`);
  const journal = (await srv.rest<Journal>('GET', `/v1/rooms/${roomId}/journal`)).body;
  const consents = journal.records.filter((r) => r.type === 'consent.given').map((r) => r.data.participantId);
  t.same(consents, ['phone-patient'], 'only the patient was asked for and gave a consent');
  const waiting = journal.records
    .filter((r) => r.type === 'participant.waiting')
    .map((r) => [r.data.participantId, r.data.role]);
  t.same(
    waiting,
    [
      ['phone-assistant', 'assistant'],
      ['phone-patient', 'patient'],
    ],
    'the journal records each phone participant with its invitation role',
  );
});

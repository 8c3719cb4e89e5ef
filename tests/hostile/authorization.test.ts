import t from 'tap';
import type { Role } from '../../src/protocol/messages.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { RequestError, SignallingClient } from '../support/signallingClient.js';
import { subscriberRtpCapabilities } from '../../bench/peer/index.js';
import { FINGERPRINT, rtpParameters } from '../fuzz/signallingSession.js';
import { ROLES, readMatrix, type MatrixRow, type MatrixState } from './authorizationMatrix.js';
import { admissionRule } from '../../src/protocol/permissions.js';

/**
 * The authorization matrix, driven cell by cell through real connections: for every role, every
 * admission state and every operation, a participant in exactly that situation sends the request
 * and the outcome (ok, a catalogued refusal code, or a closed connection) is compared with the
 * table in docs/authorization.md. Objects named by a request are chosen as that document says.
 */
let srv: TestServer;
t.before(async () => {
  srv = await startTestServer({
    limits: { messagesPerSecond: 10_000, connectionsPerAddress: 10_000, maxParticipantsPerRoom: 10 },
    quality: { enabled: false },
  });
});
t.teardown(() => srv.stop());

type Texts = { purpose: string; textId: string; version: string; hash: string }[];
let texts: Texts = [];

interface Objects {
  transport: string;
  producer: string;
  consumer: string;
  e2eeTo: string;
  admit: string;
  decline: string;
  hold: string;
  coverGive: string;
  coverWithdraw: string;
  roomId: string;
  participant: string;
  /** An admitted device holder (the patient) a practitioner may ask for a device source. */
  deviceHolder: string;
}

interface Scene {
  role: Role;
  state: MatrixState;
  roomId: string;
  sender: SignallingClient;
  senderId: string;
  senderToken: string;
  resumeToken: string;
  own: Partial<Pick<Objects, 'transport' | 'producer' | 'consumer'>>;
  others: Objects;
  clients: SignallingClient[];
}

let roomB: Objects;

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    if (err instanceof RequestError) return err.code;
    if (/socket closed/.test((err as Error).message)) return 'closed';
    throw err;
  }
}

async function join(roomId: string, participantId: string, role: Role, clients: SignallingClient[]) {
  const client = await SignallingClient.open(srv.wsUrl);
  clients.push(client);
  const token = await srv.token({ room: roomId, participantId, role });
  const joined = await client.request('join', { token });
  return { client, joined, token: await srv.token({ room: roomId, participantId, role }) };
}

async function consent(client: SignallingClient, purpose: string, coversParticipantId?: string) {
  const text = texts.find((x) => x.purpose === purpose)!;
  await client.request('giveConsent', {
    purpose: purpose as 'teleconsultation',
    textId: text.textId,
    version: text.version,
    hash: text.hash,
    ...(coversParticipantId ? { coversParticipantId } : {}),
  });
}

/** Capabilities, a send and a receive transport; resolves the first consumer announced, if any. */
async function mediaReady(client: SignallingClient, expectConsumer: boolean) {
  await client.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() });
  const send = await client.request('createTransport', { direction: 'send', sctp: true });
  const recv = await client.request('createTransport', { direction: 'recv', sctp: true });
  const consumer = expectConsumer
    ? ((await client.waitFor('consumerAdded')).data.consumerId as string)
    : undefined;
  return { send: send.id, recv: recv.id, consumer };
}

async function firstConsumer(client: SignallingClient): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no consumer announced within 5 s')), 5000);
  });
  try {
    return (await Promise.race([client.waitFor('consumerAdded'), timeout])).data.consumerId as string;
  } finally {
    clearTimeout(timer);
  }
}

let nextMid = 1;

async function produceVideo(client: SignallingClient, transportId: string): Promise<string> {
  const { producerId } = await client.request('produce', {
    transportId,
    kind: 'video',
    // A fresh MID each time: a second camera or a screen share is a new m-section.
    rtpParameters: { ...(rtpParameters('video') as Record<string, unknown>), mid: `v${nextMid++}` },
    source: 'camera',
  });
  return producerId;
}

async function produceExaminationVideo(client: SignallingClient, transportId: string): Promise<string> {
  const { producerId } = await client.request('produce', {
    transportId,
    kind: 'video',
    rtpParameters: { ...(rtpParameters('video') as Record<string, unknown>), mid: `v${nextMid++}` },
    source: 'examination-video',
    deviceType: 'otoscope',
  });
  return producerId;
}

async function newRoom(): Promise<string> {
  return (
    await srv.rest<{ id: string }>('POST', '/v1/rooms', {
      options: { waitingRoom: true, maxParticipants: 10 },
    })
  ).body.id;
}

/** Another consultation whose objects requests of the 'other room' column name. */
async function buildRoomB(clients: SignallingClient[]): Promise<Objects> {
  const roomId = await newRoom();
  const doc = await join(roomId, 'doc2', 'practitioner', clients);
  const pat = await join(roomId, 'pat2', 'patient', clients);
  await join(roomId, 'wait2', 'assistant', clients);
  await consent(pat.client, 'teleconsultation');
  await doc.client.request('admit', { participantId: 'pat2' });
  const patMedia = await mediaReady(pat.client, false);
  const docMedia = await mediaReady(doc.client, false);
  const producer = await produceVideo(doc.client, docMedia.send);
  const consumer = await firstConsumer(pat.client);
  void patMedia;
  return {
    transport: docMedia.send,
    producer,
    consumer,
    e2eeTo: 'doc2',
    admit: 'wait2',
    decline: 'wait2',
    hold: 'wait2',
    coverGive: 'wait2',
    coverWithdraw: 'wait2',
    roomId,
    participant: 'pat2',
    deviceHolder: 'pat2',
  };
}

/** The scene follows the role's admission rule (permission table), not its name. */
const ownConsent = (role: Role) => admissionRule(role) === 'own-consent';
const admittedOnArrival = (role: Role) => admissionRule(role) === 'on-arrival';

/** A consultation with the sender in exactly the column's role and state. */
async function buildScene(role: Role, state: MatrixState): Promise<Scene> {
  const clients: SignallingClient[] = [];
  const roomId = await newRoom();
  const setupState: MatrixState = state === 'room ended' || state === 'other room' ? 'in-call' : state;
  const doc = await join(roomId, 'doc', 'practitioner', clients);
  const pat = await join(roomId, 'pat', 'patient', clients);
  let patProducer: string | undefined;
  let patConsumerOfDoc: Promise<string> | undefined;
  let patSend: string | undefined;
  if (!ownConsent(role)) {
    await consent(pat.client, 'teleconsultation');
    await doc.client.request('admit', { participantId: 'pat' });
    const media = await mediaReady(pat.client, false);
    patSend = media.send;
    patProducer = await produceVideo(pat.client, media.send);
    patConsumerOfDoc = firstConsumer(pat.client);
    patConsumerOfDoc.catch(() => undefined);
  }
  for (const id of ['tgt1', 'tgt2', 'tgt3']) await join(roomId, id, 'assistant', clients);
  const docIsSender = admittedOnArrival(role);
  const docMedia = await mediaReady(doc.client, !ownConsent(role));
  let docProducer: string | undefined;
  if (!(docIsSender && setupState === 'admitted'))
    docProducer = await produceVideo(doc.client, docMedia.send);

  let sender = doc;
  let senderId = 'doc';
  // The patient's consent covers tgt1, so a practitioner may admit it.
  if (!ownConsent(role)) await consent(pat.client, 'third-party', 'tgt1');
  const own: Scene['own'] = {};
  if (docIsSender) {
    own.transport = docMedia.send;
    own.consumer = docMedia.consumer;
    if (docProducer) own.producer = docProducer;
  } else {
    if (ownConsent(role)) {
      sender = pat;
      senderId = 'pat';
    } else {
      senderId = 'sndr';
      sender = await join(roomId, senderId, role, clients);
    }
    if (ownConsent(role)) await consent(sender.client, 'third-party', 'tgt1');
    if (setupState === 'waiting' || setupState === 'consented') {
      if (setupState === 'consented') {
        if (ownConsent(role)) await consent(sender.client, 'teleconsultation');
        else await consent(pat.client, 'third-party', senderId);
      }
      own.transport = (
        await sender.client.request('createTransport', { direction: 'send', precheck: true })
      ).id;
    } else {
      if (ownConsent(role)) await consent(sender.client, 'teleconsultation');
      else await consent(pat.client, 'third-party', senderId);
      await doc.client.request('admit', { participantId: senderId });
      await sender.client.waitFor('admissionChanged', (d) => d.state === 'admitted');
      const media = await mediaReady(sender.client, true);
      own.transport = media.send;
      own.consumer = media.consumer;
      if (setupState === 'in-call') own.producer = await produceVideo(sender.client, media.send);
    }
  }
  const otherConsumer =
    (patConsumerOfDoc && docProducer && senderId !== 'pat' ? await patConsumerOfDoc : undefined) ??
    (senderId !== 'doc' ? docMedia.consumer : undefined) ??
    'consumer-of-another-participant';
  const others: Objects = {
    transport: senderId !== 'doc' ? docMedia.send : (patSend ?? docMedia.send),
    producer:
      (senderId !== 'doc' ? docProducer : patProducer) ?? patProducer ?? 'producer-of-another-participant',
    consumer: otherConsumer,
    e2eeTo: senderId !== 'doc' ? 'doc' : 'pat',
    admit: 'tgt1',
    decline: 'tgt2',
    hold: 'tgt3',
    coverGive: 'tgt3',
    coverWithdraw: 'tgt1',
    roomId,
    participant: senderId,
    deviceHolder: 'pat',
  };
  const scene: Scene = {
    role,
    state,
    roomId,
    sender: sender.client,
    senderId,
    senderToken: sender.token,
    resumeToken: sender.joined.resumeToken,
    own,
    others,
    clients,
  };
  if (state === 'room ended') {
    await srv.rest('DELETE', `/v1/rooms/${roomId}`);
    await scene.sender.closed;
  }
  return scene;
}

function target(scene: Scene, kind: keyof Objects): string {
  if (scene.state === 'other room') return roomB[kind];
  if (kind === 'transport' || kind === 'producer' || kind === 'consumer')
    return scene.own[kind] ?? scene.others[kind];
  return scene.others[kind];
}

async function rest(scene: Scene, method: string, path: string): Promise<string> {
  const res = await fetch(
    srv.url + path.replace('{id}', target(scene, 'roomId')).replace('{pid}', target(scene, 'participant')),
    {
      method,
      headers: { Authorization: `Bearer ${scene.senderToken}`, 'Content-Type': 'application/json' },
      ...(method === 'POST' ? { body: JSON.stringify({ role: 'patient' }) } : {}),
    },
  );
  const text = await res.text();
  if (res.status < 300) return 'ok';
  return (JSON.parse(text) as { code: string }).code;
}

interface Operation {
  name: string;
  /** A success changes the sender or its objects: the scene is built again afterwards. */
  mutates?: boolean;
  run(scene: Scene): Promise<string>;
}

const OPERATIONS: Operation[] = [
  {
    name: 'join',
    async run(s) {
      if (s.state !== 'room ended')
        return outcome(
          s.sender.request('join', {
            token: await srv.token({ room: s.roomId, participantId: s.senderId, role: s.role }),
          }),
        );
      const fresh = await SignallingClient.open(srv.wsUrl);
      s.clients.push(fresh);
      return outcome(
        fresh.request('join', {
          token: await srv.token({ room: s.roomId, participantId: s.senderId, role: s.role }),
        }),
      );
    },
  },
  {
    name: 'resume',
    async run(s) {
      if (s.state !== 'room ended')
        return outcome(s.sender.request('resume', { resumeToken: s.resumeToken }));
      const fresh = await SignallingClient.open(srv.wsUrl);
      s.clients.push(fresh);
      return outcome(fresh.request('resume', { resumeToken: s.resumeToken }));
    },
  },
  { name: 'getConsentTexts', run: (s) => outcome(s.sender.request('getConsentTexts', {})) },
  {
    name: 'setRtpCapabilities',
    run: (s) =>
      outcome(s.sender.request('setRtpCapabilities', { rtpCapabilities: subscriberRtpCapabilities() })),
  },
  {
    name: 'createTransport',
    run: (s) => outcome(s.sender.request('createTransport', { direction: 'recv' })),
  },
  {
    name: 'createTransport (pre-call check)',
    run: (s) => outcome(s.sender.request('createTransport', { direction: 'recv', precheck: true })),
  },
  {
    name: 'connectTransport',
    mutates: true,
    run: (s) =>
      outcome(
        s.sender.request('connectTransport', {
          transportId: target(s, 'transport'),
          dtlsParameters: { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: FINGERPRINT }] },
        }),
      ),
  },
  {
    name: 'restartIce',
    run: (s) => outcome(s.sender.request('restartIce', { transportId: target(s, 'transport') })),
  },
  {
    name: 'getStats',
    run: (s) => outcome(s.sender.request('getStats', { transportId: target(s, 'transport') })),
  },
  {
    name: 'produce',
    mutates: true,
    run: (s) => outcome(produceVideo(s.sender, target(s, 'transport'))),
  },
  {
    name: 'pauseProducer',
    run: (s) => outcome(s.sender.request('pauseProducer', { producerId: target(s, 'producer') })),
  },
  {
    name: 'resumeProducer',
    run: (s) => outcome(s.sender.request('resumeProducer', { producerId: target(s, 'producer') })),
  },
  {
    name: 'closeProducer',
    mutates: true,
    run: (s) => outcome(s.sender.request('closeProducer', { producerId: target(s, 'producer') })),
  },
  {
    name: 'consume',
    // Always another participant's producer: a participant never consumes its own.
    run: (s) =>
      outcome(
        s.sender.request('consume', {
          producerId: s.state === 'other room' ? roomB.producer : s.others.producer,
        }),
      ),
  },
  {
    name: 'pauseConsumer',
    run: (s) => outcome(s.sender.request('pauseConsumer', { consumerId: target(s, 'consumer') })),
  },
  {
    name: 'resumeConsumer',
    mutates: true,
    run: (s) => outcome(s.sender.request('resumeConsumer', { consumerId: target(s, 'consumer') })),
  },
  {
    name: 'setConsumerPreferredLayers',
    run: (s) =>
      outcome(
        s.sender.request('setConsumerPreferredLayers', {
          consumerId: target(s, 'consumer'),
          spatialLayer: 0,
        }),
      ),
  },
  {
    name: 'reportRenderSize',
    run: (s) =>
      outcome(
        s.sender.request('reportRenderSize', { consumerId: target(s, 'consumer'), width: 320, height: 180 }),
      ),
  },
  {
    name: 'closeConsumer',
    mutates: true,
    run: (s) => outcome(s.sender.request('closeConsumer', { consumerId: target(s, 'consumer') })),
  },
  {
    name: 'produceData',
    mutates: true,
    run: (s) =>
      outcome(
        s.sender.request('produceData', {
          transportId: target(s, 'transport'),
          sctpStreamParameters: { streamId: 5, ordered: true },
          label: 'tensiometre',
          protocol: 'json',
        }),
      ),
  },
  {
    name: 'produce (examination-video)',
    mutates: true,
    run: (s) => outcome(produceExaminationVideo(s.sender, target(s, 'transport'))),
  },
  {
    name: 'produceData (vital-signs)',
    mutates: true,
    run: (s) =>
      outcome(
        s.sender.request('produceData', {
          transportId: target(s, 'transport'),
          sctpStreamParameters: { streamId: 6, ordered: true },
          label: 'vital-signs',
          protocol: 'teleconsult.vitals.v1',
          source: 'vital-signs',
          deviceType: 'pulse-oximeter',
        }),
      ),
  },
  {
    name: 'requestDeviceSource',
    run: (s) =>
      outcome(
        s.sender.request('requestDeviceSource', {
          participantId: target(s, 'deviceHolder'),
          source: 'examination-video',
          deviceType: 'otoscope',
        }),
      ),
  },
  {
    // The target is a camera, not an examination video: the practitioner gets NOT_FOUND; a still
    // of a real one is tested in tests/devices/examinationStill.test.ts.
    name: 'captureExaminationStill',
    run: (s) => outcome(s.sender.request('captureExaminationStill', { producerId: target(s, 'producer') })),
  },
  {
    name: 'e2eeRelay',
    run: (s) =>
      outcome(s.sender.request('e2eeRelay', { to: target(s, 'e2eeTo'), payload: 'd3JhcHBlZC1rZXk' })),
  },
  {
    name: 'reportPrecheck',
    run: (s) =>
      outcome(
        s.sender.request('reportPrecheck', {
          rttMs: 30,
          lossRatio: 0,
          uploadKbps: 800,
          camera: true,
          microphone: true,
        }),
      ),
  },
  { name: 'getWaitingList', run: (s) => outcome(s.sender.request('getWaitingList', {})) },
  {
    name: 'hold',
    run: (s) =>
      outcome(s.sender.request('hold', { participantId: target(s, 'hold'), message: 'Un instant.' })),
  },
  {
    name: 'admit',
    mutates: true,
    run: (s) => outcome(s.sender.request('admit', { participantId: target(s, 'admit') })),
  },
  {
    name: 'decline',
    mutates: true,
    run: (s) => outcome(s.sender.request('decline', { participantId: target(s, 'decline') })),
  },
  {
    name: 'giveConsent (third-party)',
    mutates: true,
    run: (s) => outcome(consent(s.sender, 'third-party', target(s, 'coverGive'))),
  },
  {
    name: 'withdrawConsent (third-party)',
    mutates: true,
    run: (s) =>
      outcome(
        s.sender.request('withdrawConsent', {
          purpose: 'third-party',
          coversParticipantId: target(s, 'coverWithdraw'),
        }),
      ),
  },
  {
    name: 'giveConsent (teleconsultation)',
    mutates: true,
    run: (s) => outcome(consent(s.sender, 'teleconsultation')),
  },
  {
    name: 'withdrawConsent (teleconsultation)',
    mutates: true,
    run: (s) => outcome(s.sender.request('withdrawConsent', { purpose: 'teleconsultation' })),
  },
  { name: 'leave', mutates: true, run: (s) => outcome(s.sender.request('leave', {})) },
  { name: 'REST GET /v1/rooms/{id}', run: (s) => rest(s, 'GET', '/v1/rooms/{id}') },
  { name: 'REST GET /v1/rooms/{id}/participants', run: (s) => rest(s, 'GET', '/v1/rooms/{id}/participants') },
  { name: 'REST GET /v1/rooms/{id}/journal', run: (s) => rest(s, 'GET', '/v1/rooms/{id}/journal') },
  { name: 'REST POST /v1/rooms/{id}/invitations', run: (s) => rest(s, 'POST', '/v1/rooms/{id}/invitations') },
  {
    name: 'REST DELETE /v1/rooms/{id}/participants/{pid}',
    run: (s) => rest(s, 'DELETE', '/v1/rooms/{id}/participants/{pid}'),
  },
  { name: 'REST DELETE /v1/rooms/{id}', run: (s) => rest(s, 'DELETE', '/v1/rooms/{id}') },
];

function closeScene(scene: Scene): void {
  for (const client of scene.clients) client.close();
}

t.test('every role x operation x state cell behaves as docs/authorization.md says', async (t) => {
  t.setTimeout(200_000);
  const rows = readMatrix();
  const expected = new Map<string, MatrixRow>(rows.map((r) => [`${r.operation}|${r.state}`, r]));
  const bClients: SignallingClient[] = [];
  t.teardown(() => bClients.forEach((c) => c.close()));
  const textsProbe = await join(await newRoom(), 'texts', 'patient', bClients);
  texts = (await textsProbe.client.request('getConsentTexts', {})).texts;
  roomB = await buildRoomB(bClients);

  for (const op of OPERATIONS)
    for (const state of ['waiting', 'consented', 'admitted', 'in-call', 'room ended', 'other room'] as const)
      if (!expected.has(`${op.name}|${state}`)) t.fail(`the matrix has no row for ${op.name} / ${state}`);
  for (const row of rows)
    if (!OPERATIONS.some((op) => op.name === row.operation))
      t.fail(`the matrix names an unknown operation ${row.operation}`);

  const mismatches: string[] = [];
  const observed: string[] = [];
  let cells = 0;
  for (const role of ROLES) {
    for (const state of [
      'waiting',
      'consented',
      'admitted',
      'in-call',
      'room ended',
      'other room',
    ] as const) {
      if (admittedOnArrival(role) && (state === 'waiting' || state === 'consented')) continue;
      if (process.env.PRINT_MATRIX) process.stderr.write(`column ${role} / ${state}\n`);
      let scene = await buildScene(role, state);
      for (const op of OPERATIONS) {
        const want = expected.get(`${op.name}|${state}`)?.outcomes[role];
        if (want === undefined || want === '—') continue;
        const isRest = op.name.startsWith('REST ');
        const got =
          state === 'room ended' && !isRest && op.name !== 'join' && op.name !== 'resume'
            ? scene.sender.closeCode !== undefined
              ? 'closed'
              : 'still open'
            : await op.run(scene);
        cells++;
        observed.push(`${op.name}|${state}|${role}|${got}`);
        if (got !== want) mismatches.push(`${role} / ${state} / ${op.name}: expected ${want}, got ${got}`);
        const broken = scene.sender.closeCode !== undefined && state !== 'room ended';
        if ((op.mutates && got === 'ok') || broken) {
          closeScene(scene);
          if (state === 'room ended') continue;
          scene = await buildScene(role, state);
        }
      }
      closeScene(scene);
    }
  }
  if (process.env.PRINT_MATRIX) process.stdout.write(observed.join('\n') + '\n');
  t.same(mismatches, [], 'every cell matches the document');
  t.ok(cells > 500, `${cells} matrix cells checked against live connections`);
  t.comment(`authorization matrix: ${cells} cells checked`);
});

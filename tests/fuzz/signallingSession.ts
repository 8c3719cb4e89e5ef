import { randomInt } from 'node:crypto';
import type { RawData } from 'ws';
import type { Json } from './generator.js';
import { SignallingClient } from '../support/signallingClient.js';
import type { TestServer } from '../support/server.js';
import { subscriberRtpCapabilities } from '../../bench/peer/index.js';

/**
 * A consultation set up deep enough that fuzzed requests reach every handler with live ids: a
 * practitioner and an admitted patient with transports, producers and consumers, a waiting
 * assistant, and a connection that has not joined yet. Request templates name live ids by
 * placeholders (`@@SEND_TRANSPORT@@`), substituted just before sending, so a corpus entry saved
 * from one session replays against another.
 */
export type Sender = 'practitioner' | 'patient' | 'waiting' | 'anon';

export interface Template {
  sender: Sender;
  method: string;
  params: Json;
}

/** Valid-looking VP8 and Opus RTP parameters for a producer (no peer needed to produce). */
export function rtpParameters(kind: 'audio' | 'video'): Json {
  const ssrc = randomInt(1, 2 ** 31);
  return kind === 'audio'
    ? {
        mid: '0',
        codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, parameters: {} }],
        headerExtensions: [],
        encodings: [{ ssrc }],
        rtcp: { cname: 'fuzz', reducedSize: true },
      }
    : {
        mid: '1',
        codecs: [
          {
            mimeType: 'video/VP8',
            payloadType: 96,
            clockRate: 90000,
            rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
          },
        ],
        headerExtensions: [],
        encodings: [{ ssrc }],
        rtcp: { cname: 'fuzz', reducedSize: true },
      };
}

export const FINGERPRINT = Array.from({ length: 32 }, (_, i) => (i * 7 + 16).toString(16).toUpperCase()).join(
  ':',
);

/** One socket whose every non-notification message is the answer to the last frame sent. */
export class FuzzSocket {
  private waiter: ((answer: unknown) => void) | undefined;
  private readonly onMessage = (data: RawData) => {
    const text = Buffer.isBuffer(data)
      ? data.toString('utf8')
      : Buffer.from(data as ArrayBuffer).toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { unparseable: text.slice(0, 200) };
    }
    if (typeof (parsed as { notification?: unknown }).notification === 'string') return;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.(parsed);
  };

  constructor(readonly client: SignallingClient) {
    client.ws.on('message', this.onMessage);
  }

  get open(): boolean {
    return this.client.closeCode === undefined && this.client.ws.readyState === this.client.ws.OPEN;
  }

  /** Sends one frame; resolves with the answer, `{ closed: code }` or `{ timeout: true }`. */
  exchange(frame: string | Buffer, binary: boolean, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve({ timeout: true });
      }, timeoutMs);
      const finish = (answer: unknown) => {
        clearTimeout(timer);
        resolve(answer);
      };
      this.waiter = finish;
      void this.client.closed.then((code) => {
        if (this.waiter === finish) {
          this.waiter = undefined;
          finish({ closed: code });
        }
      });
      this.client.ws.send(frame, { binary });
    });
  }
}

export class FuzzSession {
  readonly sockets = new Map<Sender, FuzzSocket>();
  readonly ids = new Map<string, string>();

  private constructor(
    private readonly srv: TestServer,
    readonly roomId: string,
  ) {}

  static async build(srv: TestServer): Promise<FuzzSession> {
    const room = await srv.rest<{ id: string }>('POST', '/v1/rooms', {
      options: { waitingRoom: true, maxParticipants: 8 },
    });
    if (room.status !== 201) throw new Error(`room creation failed: ${room.status}`);
    const session = new FuzzSession(srv, room.body.id);
    await session.setUp();
    return session;
  }

  private async join(participantId: string, role: 'practitioner' | 'patient' | 'assistant') {
    const client = await SignallingClient.open(this.srv.wsUrl);
    const joined = await client.request('join', {
      token: await this.srv.token({ room: this.roomId, participantId, role }),
    });
    return { client, joined };
  }

  private async setUp(): Promise<void> {
    const doctor = await this.join('doc', 'practitioner');
    const patient = await this.join('pat', 'patient');
    const helper = await this.join('helper', 'assistant');
    await patient.client.consent();
    await doctor.client.request('admit', { participantId: 'pat' });
    await patient.client.waitFor('admissionChanged', (d) => d.state === 'admitted');
    for (const c of [doctor.client, patient.client]) {
      await c.request('setRtpCapabilities', {
        rtpCapabilities: subscriberRtpCapabilities(),
      });
    }
    const send = await patient.client.request('createTransport', { direction: 'send', sctp: true });
    const spare = await patient.client.request('createTransport', { direction: 'send' });
    const recv = await patient.client.request('createTransport', { direction: 'recv', sctp: true });
    const audio = await patient.client.request('produce', {
      transportId: send.id,
      kind: 'audio',
      rtpParameters: rtpParameters('audio') as Record<string, unknown>,
      source: 'microphone',
    });
    const docSend = await doctor.client.request('createTransport', { direction: 'send', sctp: true });
    await doctor.client.request('createTransport', { direction: 'recv', sctp: true });
    const docVideo = await doctor.client.request('produce', {
      transportId: docSend.id,
      kind: 'video',
      rtpParameters: rtpParameters('video') as Record<string, unknown>,
      source: 'camera',
    });
    const consumer = await patient.client.waitFor('consumerAdded');
    const waitingPrecheck = await helper.client.request('createTransport', {
      direction: 'send',
      precheck: true,
    });
    this.ids.set('@@SEND_TRANSPORT@@', send.id);
    this.ids.set('@@SPARE_TRANSPORT@@', spare.id);
    this.ids.set('@@RECV_TRANSPORT@@', recv.id);
    this.ids.set('@@PRECHECK_TRANSPORT@@', waitingPrecheck.id);
    this.ids.set('@@OWN_PRODUCER@@', audio.producerId);
    this.ids.set('@@OTHER_PRODUCER@@', docVideo.producerId);
    this.ids.set('@@CONSUMER@@', consumer.data.consumerId as string);
    this.ids.set('@@RESUME@@', patient.joined.resumeToken);
    this.ids.set('@@ROOM@@', this.roomId);
    this.sockets.set('practitioner', new FuzzSocket(doctor.client));
    this.sockets.set('patient', new FuzzSocket(patient.client));
    this.sockets.set('waiting', new FuzzSocket(helper.client));
    this.sockets.set('anon', new FuzzSocket(await SignallingClient.open(this.srv.wsUrl)));
  }

  /** Replaces the placeholders of a frame with this session's ids (and a fresh join token). */
  async substitute(frame: string | Buffer): Promise<string | Buffer> {
    const text = Buffer.isBuffer(frame) ? frame.toString('latin1') : frame;
    let out = text;
    for (const [placeholder, id] of this.ids) out = out.split(placeholder).join(id);
    if (out.includes('@@TOKEN@@')) {
      const roles = ['practitioner', 'patient', 'assistant', 'observer'] as const;
      const token = await this.srv.token({
        room: this.roomId,
        participantId: `anon${randomInt(1_000_000)}`,
        role: roles[randomInt(roles.length)]!,
      });
      out = out.split('@@TOKEN@@').join(token);
    }
    return Buffer.isBuffer(frame) ? Buffer.from(out, 'latin1') : out;
  }

  /** A fresh unjoined connection (after the anonymous one joined or was cut). */
  async renewAnon(): Promise<void> {
    this.sockets.get('anon')?.client.close();
    this.sockets.set('anon', new FuzzSocket(await SignallingClient.open(this.srv.wsUrl)));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets.values()) socket.client.close();
    await this.srv.rest('DELETE', `/v1/rooms/${this.roomId}`);
  }
}

/** A valid request per protocol method, from the sender that may legitimately send it. */
export function templates(texts: { purpose: string; textId: string; version: string; hash: string }[]) {
  const tc = texts.find((t) => t.purpose === 'teleconsultation') ?? texts[0]!;
  const list: Template[] = [
    { sender: 'anon', method: 'join', params: { token: '@@TOKEN@@', capabilities: { e2ee: false } } },
    { sender: 'anon', method: 'join', params: { accessCode: '12345678' } },
    { sender: 'anon', method: 'resume', params: { resumeToken: '@@RESUME@@' } },
    {
      sender: 'patient',
      method: 'setRtpCapabilities',
      params: { rtpCapabilities: subscriberRtpCapabilities() as unknown as Json },
    },
    { sender: 'patient', method: 'createTransport', params: { direction: 'recv', sctp: true } },
    { sender: 'waiting', method: 'createTransport', params: { direction: 'send', precheck: true } },
    {
      sender: 'patient',
      method: 'connectTransport',
      params: {
        transportId: '@@SPARE_TRANSPORT@@',
        dtlsParameters: { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: FINGERPRINT }] },
      },
    },
    { sender: 'patient', method: 'restartIce', params: { transportId: '@@SEND_TRANSPORT@@' } },
    {
      sender: 'patient',
      method: 'produce',
      params: {
        transportId: '@@SEND_TRANSPORT@@',
        kind: 'video',
        rtpParameters: rtpParameters('video'),
        source: 'camera',
      },
    },
    {
      sender: 'waiting',
      method: 'produce',
      params: {
        transportId: '@@PRECHECK_TRANSPORT@@',
        kind: 'audio',
        rtpParameters: rtpParameters('audio'),
        source: 'microphone',
      },
    },
    { sender: 'patient', method: 'pauseProducer', params: { producerId: '@@OWN_PRODUCER@@' } },
    { sender: 'patient', method: 'resumeProducer', params: { producerId: '@@OWN_PRODUCER@@' } },
    { sender: 'patient', method: 'closeProducer', params: { producerId: '@@OWN_PRODUCER@@' } },
    { sender: 'patient', method: 'consume', params: { producerId: '@@OTHER_PRODUCER@@' } },
    { sender: 'patient', method: 'closeConsumer', params: { consumerId: '@@CONSUMER@@' } },
    { sender: 'patient', method: 'resumeConsumer', params: { consumerId: '@@CONSUMER@@' } },
    { sender: 'patient', method: 'pauseConsumer', params: { consumerId: '@@CONSUMER@@' } },
    {
      sender: 'patient',
      method: 'setConsumerPreferredLayers',
      params: { consumerId: '@@CONSUMER@@', spatialLayer: 1, temporalLayer: 0 },
    },
    {
      sender: 'patient',
      method: 'produceData',
      params: {
        transportId: '@@SEND_TRANSPORT@@',
        sctpStreamParameters: { streamId: 3, ordered: true },
        label: 'oximeter',
        protocol: 'json',
      },
    },
    { sender: 'patient', method: 'getStats', params: { transportId: '@@RECV_TRANSPORT@@' } },
    { sender: 'patient', method: 'leave', params: {} },
    { sender: 'patient', method: 'e2eeRelay', params: { to: 'doc', payload: 'c2VuZGVyLWtleQ' } },
    {
      sender: 'patient',
      method: 'reportRenderSize',
      params: { consumerId: '@@CONSUMER@@', width: 640, height: 360 },
    },
    { sender: 'patient', method: 'getConsentTexts', params: {} },
    {
      sender: 'patient',
      method: 'giveConsent',
      params: { purpose: 'third-party', textId: tc.textId, version: tc.version, hash: tc.hash },
    },
    {
      sender: 'patient',
      method: 'giveConsent',
      params: { purpose: 'teleconsultation', textId: tc.textId, version: tc.version, hash: tc.hash },
    },
    {
      sender: 'patient',
      method: 'withdrawConsent',
      params: { purpose: 'third-party', coversParticipantId: 'helper' },
    },
    { sender: 'patient', method: 'withdrawConsent', params: { purpose: 'teleconsultation' } },
    { sender: 'practitioner', method: 'getWaitingList', params: {} },
    { sender: 'practitioner', method: 'hold', params: { participantId: 'helper', message: 'Un instant.' } },
    {
      sender: 'waiting',
      method: 'reportPrecheck',
      params: { rttMs: 20, lossRatio: 0, uploadKbps: 900, camera: true, microphone: true },
    },
    { sender: 'practitioner', method: 'admit', params: { participantId: 'helper' } },
    { sender: 'practitioner', method: 'decline', params: { participantId: 'helper' } },
  ];
  return list;
}

/**
 * Methods whose success ends a participation (or moves it to another connection): the session is
 * rebuilt afterwards. Others (closing a producer, admitting) only leave stale ids, refreshed by the
 * periodic rebuild.
 */
export const DESTRUCTIVE = new Set(['join', 'resume', 'leave', 'withdrawConsent', 'decline']);

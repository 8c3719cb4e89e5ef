import { createHmac, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { crc32 } from 'node:zlib';
import t from 'tap';
import type { types } from 'mediasoup';
import { SignallingClient } from '../support/signallingClient.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * ICE consent freshness (RFC 7675) with media.iceConsentTimeoutS: a peer that completes ICE and then
 * goes silent (a patient whose network dropped) is detected by the worker; a peer that keeps
 * sending consent checks is not. The peer is a bare UDP socket speaking STUN, so nothing but the
 * consent checks themselves keeps the path alive.
 */
const CONSENT_TIMEOUT_S = 10; // mediasoup's minimum
let srv: TestServer;
t.before(async () => {
  srv = await startTestServer({ media: { iceConsentTimeoutS: CONSENT_TIMEOUT_S } });
});
t.teardown(() => srv.stop());

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface IceParams {
  usernameFragment: string;
  password: string;
}

/** A STUN Binding request as an ICE-controlling agent nominating the pair (RFC 8445 §7.1.2). */
function bindingRequest(remote: IceParams, localUfrag: string): Buffer {
  const attr = (type: number, value: Buffer): Buffer => {
    const head = Buffer.alloc(4);
    head.writeUInt16BE(type, 0);
    head.writeUInt16BE(value.length, 2);
    const pad = Buffer.alloc((4 - (value.length % 4)) % 4);
    return Buffer.concat([head, value, pad]);
  };
  const priority = Buffer.alloc(4);
  priority.writeUInt32BE(0x6e001eff, 0);
  let body = Buffer.concat([
    attr(0x0006, Buffer.from(`${remote.usernameFragment}:${localUfrag}`)), // USERNAME
    attr(0x0024, priority), // PRIORITY
    attr(0x802a, randomBytes(8)), // ICE-CONTROLLING
    attr(0x0025, Buffer.alloc(0)), // USE-CANDIDATE
  ]);
  const header = (length: number): Buffer => {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(0x0001, 0); // Binding request
    h.writeUInt16BE(length, 2);
    h.writeUInt32BE(0x2112a442, 4); // magic cookie
    transactionId.copy(h, 8);
    return h;
  };
  const transactionId = randomBytes(12);
  // MESSAGE-INTEGRITY covers the message with a length that already counts itself (24 bytes).
  const integrity = createHmac('sha1', remote.password)
    .update(Buffer.concat([header(body.length + 24), body]))
    .digest();
  body = Buffer.concat([body, attr(0x0008, integrity)]);
  // FINGERPRINT: CRC-32 of everything before it, XOR 0x5354554e, with the length counting it (8 bytes).
  const fingerprint = Buffer.alloc(4);
  fingerprint.writeUInt32BE((crc32(Buffer.concat([header(body.length + 8), body])) ^ 0x5354554e) >>> 0, 0);
  body = Buffer.concat([body, attr(0x8028, fingerprint)]);
  return Buffer.concat([header(body.length), body]);
}

/** A UDP socket that answers nothing and sends Binding requests only when told to. */
class StunPeer {
  readonly socket = dgram.createSocket('udp4');
  readonly ufrag = randomBytes(4).toString('hex');
  successes = 0;

  private constructor(
    private ice: IceParams,
    private readonly port: number,
  ) {
    this.socket.on('message', (msg) => {
      if (msg.length >= 20 && msg.readUInt16BE(0) === 0x0101) this.successes++; // Binding success
    });
  }

  static async open(ice: IceParams, port: number): Promise<StunPeer> {
    const peer = new StunPeer(ice, port);
    peer.socket.bind(0, '127.0.0.1');
    await once(peer.socket, 'listening');
    return peer;
  }

  useIceParameters(ice: IceParams): void {
    this.ice = ice;
  }

  check(): void {
    this.socket.send(bindingRequest(this.ice, this.ufrag), this.port, '127.0.0.1');
  }

  close(): void {
    this.socket.close();
  }
}

async function waitUntil(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await settle(100);
  }
}

async function iceDisconnects(): Promise<number> {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  return Number(/^sfu_ice_disconnects_total (\d+)$/m.exec(text)?.[1] ?? 'NaN');
}

t.test(
  'a peer that goes silent after ICE is detected by the consent timeout; one that keeps checking is not',
  async (t) => {
    const roomId = (await srv.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } }))
      .body.id;
    const client = await SignallingClient.open(srv.wsUrl);
    t.teardown(() => client.close());
    await client.request('join', {
      token: await srv.token({ room: roomId, participantId: 'doc', role: 'practitioner' }),
    });
    const serverSide = (id: string): types.WebRtcTransport => {
      const transport = srv.server.rooms.get(roomId)?.participants.get('doc')?.transports.get(id);
      if (!transport) throw new Error('no such transport on the server');
      return transport;
    };
    const open = async () => {
      const params = await client.request('createTransport', { direction: 'send' });
      const udp = (params.iceCandidates as { protocol: string; port: number }[]).find(
        (c) => c.protocol === 'udp',
      );
      if (!udp) throw new Error('no UDP candidate');
      const peer = await StunPeer.open(params.iceParameters as unknown as IceParams, udp.port);
      t.teardown(() => peer.close());
      return { id: params.id, peer };
    };
    const silent = await open();
    const alive = await open();
    const before = await iceDisconnects();

    for (const { id, peer } of [silent, alive]) {
      peer.check();
      await waitUntil('ICE completed', () => serverSide(id).iceState === 'completed', 5000);
    }
    t.ok(silent.peer.successes > 0 && alive.peer.successes > 0, 'both peers got Binding success responses');
    const silentSince = Date.now();
    const keepAlive = setInterval(() => alive.peer.check(), 2000);
    t.teardown(() => clearInterval(keepAlive));

    await waitUntil(
      "the silent peer's transport to turn disconnected",
      () => serverSide(silent.id).iceState === 'disconnected',
      (CONSENT_TIMEOUT_S + 10) * 1000,
    );
    const silentForS = (Date.now() - silentSince) / 1000;
    t.ok(
      silentForS >= CONSENT_TIMEOUT_S - 1,
      `detected after the consent timeout, not before (${silentForS.toFixed(1)} s)`,
    );
    t.equal(
      serverSide(alive.id).iceState,
      'completed',
      'the peer that keeps sending consent checks stays connected',
    );
    t.equal((await iceDisconnects()) - before, 1, 'sfu_ice_disconnects_total counts the silent peer once');

    // The transport is kept: the client's ICE restart brings the same transport back.
    const { iceParameters } = await client.request('restartIce', { transportId: silent.id });
    silent.peer.useIceParameters(iceParameters as unknown as IceParams);
    silent.peer.check();
    await waitUntil('ICE completed again', () => serverSide(silent.id).iceState === 'completed', 5000);
    t.pass('after an ICE restart the silent peer is connected again');
  },
);

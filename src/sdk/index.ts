/**
 * The teleconsultation client SDK (browser). One call joins a consultation:
 *
 *   const room = await connect('wss://video.example.fr/ws', joinToken); // or { accessCode: '12345678' }
 *   room.on('trackAdded', ({ track }) => attach(track));
 *   await room.publishCamera();
 *   // A patient waits: it accepts the consent text, may run the pre-call check, then is admitted.
 *
 * See docs/sdk.md for the whole API, events, error codes and reconnection behaviour.
 */
import { Device } from 'mediasoup-client';
import { TeleconsultError, fromMediaError } from './errors.js';
import { resolveReconnectPolicy } from './reconnectPolicy.js';
import { Room } from './room.js';
import {
  Session,
  joinCredentials,
  type JoinCredentials,
  type JoinResult,
  type NetworkEventTarget,
} from './session.js';
import { EndToEndEncryption, isE2eeSupported } from './e2ee/endToEndEncryption.js';
import type { ConnectOptions, E2eeOptions, HandlerName, Locale } from './types.js';

export { Room } from './room.js';
export { EndToEndEncryption, isE2eeSupported } from './e2ee/endToEndEncryption.js';
export type { ExportedKeys, E2eeEvents } from './e2ee/endToEndEncryption.js';
export { TeleconsultError, isTeleconsultError, CLIENT_ERROR_CODES } from './errors.js';
export type { TeleconsultErrorCode, ClientErrorCode } from './errors.js';
export { messageFor } from './messages.js';
export { DEFAULT_RECONNECT_POLICY, reconnectDelay } from './reconnectPolicy.js';
export { TypedEmitter } from './emitter.js';
export type { WebSocketConstructor, WebSocketLike } from './signallingSocket.js';
export type * from './types.js';

/** The SDK's version; it speaks signalling protocol version 1. */
export const SDK_VERSION = '0.1.0';
export const PROTOCOL_VERSION = 1;

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Joins a consultation and resolves with the `Room`. `credentials` is the join token (a string, or
 * `{ token }`) or an invitation's access code (`{ accessCode: '12345678' }`). `url` is the
 * server's signalling URL (`wss://host/ws`) or its base URL (`https://host`). Rejects with a
 * `TeleconsultError` (e.g. ACCESS_DENIED for a used or expired link or code, DEVICE_NOT_SUPPORTED).
 *
 * Media starts right after this resolves: add your event listeners straight away.
 */
export async function connect(
  url: string,
  credentials: string | JoinCredentials,
  options: ConnectOptions = {},
): Promise<Room> {
  const locale: Locale = options.locale ?? 'fr';
  const proof = joinCredentials(credentials);
  // Checked here so that a typo costs no attempt against the server's lockout.
  if ('accessCode' in proof && !/^[0-9]{4,12}$/.test(proof.accessCode))
    throw new TeleconsultError('ACCESS_CODE_INVALID', locale);
  const WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
  if (!WebSocketImpl)
    throw new TeleconsultError('DEVICE_NOT_SUPPORTED', locale, 'no WebSocket implementation');
  // Before joining: a browser that cannot do WebRTC must not use up the single-use join token.
  const device = await createDevice(options.handlerName, locale);
  const e2ee = options.e2ee ? await createE2ee(options.e2ee, locale) : undefined;
  const joined = Session.join(signallingUrl(url), proof, {
    WebSocket: WebSocketImpl,
    locale,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS,
    reconnect: resolveReconnectPolicy(options.reconnect),
    e2ee: e2ee !== undefined,
    e2eeKey: e2ee?.publicKey,
    networkEvents: browserWindow(),
  });
  const { session, result } = await joined.catch((err: unknown) => {
    e2ee?.close();
    throw err;
  });
  try {
    await device.load({ routerRtpCapabilities: result.routerRtpCapabilities });
    await session.request('setRtpCapabilities', {
      rtpCapabilities: device.rtpCapabilities,
    });
  } catch (err) {
    await session.leave();
    e2ee?.close();
    throw fromMediaError(err, locale);
  }
  const room = new Room(session, device, result, {
    locale,
    // The application's own servers win; otherwise the TURN credentials the server issued.
    iceServers: options.iceServers ?? (result as JoinResult & { iceServers?: RTCIceServer[] }).iceServers,
    iceTransportPolicy: options.iceTransportPolicy,
    connectAhead: options.connectAhead ?? true,
    e2ee,
  });
  // Media (and so `trackAdded` events) starts on the next task, after the caller's listeners exist.
  setTimeout(() => room.start(), 0);
  return room;
}

/** Joins with the access code of an invitation (spaces and dashes are ignored): `connect(url, { accessCode })`. */
export function connectWithCode(
  url: string,
  accessCode: string,
  options: ConnectOptions = {},
): Promise<Room> {
  return connect(url, { accessCode }, options);
}

/** Identity and worker for end-to-end encryption, before the join that announces the public key. */
async function createE2ee(options: true | E2eeOptions, locale: Locale): Promise<EndToEndEncryption> {
  if (!isE2eeSupported())
    throw new TeleconsultError('E2EE_REQUIRED', locale, 'this browser has no encoded transform for E2EE');
  try {
    return await EndToEndEncryption.create(options === true ? {} : options);
  } catch (err) {
    throw new TeleconsultError('E2EE_REQUIRED', locale, err instanceof Error ? err.message : undefined);
  }
}

async function createDevice(handlerName: HandlerName | undefined, locale: Locale): Promise<Device> {
  try {
    return handlerName ? new Device({ handlerName }) : await Device.factory();
  } catch (err) {
    throw new TeleconsultError(
      'DEVICE_NOT_SUPPORTED',
      locale,
      err instanceof Error ? err.message : undefined,
    );
  }
}

/** `window` in a browser (for its `online` events); undefined in Node. */
function browserWindow(): NetworkEventTarget | undefined {
  const target = globalThis as Partial<NetworkEventTarget>;
  return typeof target.addEventListener === 'function' && typeof target.removeEventListener === 'function'
    ? (target as NetworkEventTarget)
    : undefined;
}

/** Accepts `https://host`, `https://host/`, `wss://host/ws`...; returns the WebSocket URL. */
export function signallingUrl(url: string): string {
  const parsed = new URL(url, globalThis.location?.href);
  if (parsed.protocol === 'http:') parsed.protocol = 'ws:';
  if (parsed.protocol === 'https:') parsed.protocol = 'wss:';
  if (parsed.pathname === '/' || parsed.pathname === '') parsed.pathname = '/ws';
  return parsed.toString();
}

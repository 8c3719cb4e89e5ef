import { createHmac } from 'node:crypto';
import type { Config } from '../config/schema.js';

/** One entry of RTCConfiguration.iceServers, as the join result carries it. */
export interface IceServer {
  urls: string[];
  username: string;
  credential: string;
}

/**
 * Short-lived TURN credentials in coturn's REST API scheme (`use-auth-secret`): the username is
 * `<expiry unix seconds>:<participant id>` and the password base64(HMAC-SHA1(secret, username)).
 * coturn recomputes the password from its copy of the secret and refuses expired usernames, so the
 * server never shares state with coturn and a leaked credential dies on its own.
 */
export function turnCredentials(
  turn: Config['turn'],
  participantId: string,
  nowMs: number = Date.now(),
): IceServer[] | undefined {
  if (turn.urls.length === 0 || !turn.sharedSecret) return undefined;
  const expiry = Math.floor(nowMs / 1000) + turn.credentialTtlS;
  const username = `${expiry}:${participantId}`;
  const credential = createHmac('sha1', turn.sharedSecret).update(username).digest('base64');
  return [{ urls: [...turn.urls], username, credential }];
}

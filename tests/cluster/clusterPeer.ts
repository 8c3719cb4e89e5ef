import type { ConsumerDescription } from '../../bench/peer/index.js';
import { MediaPeer } from '../support/mediaPeer.js';
import { RequestError, SignallingClient } from '../support/signallingClient.js';
import { eventually, sleep } from './support.js';

/** http(s)://host:port -> ws(s)://host:port/ws */
export function signallingUrlOf(base: string): string {
  const url = new URL(base);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = '/ws';
  return url.toString();
}

/**
 * A participant of a clustered deployment, with real WebRTC media (node-datachannel): it enters
 * through any node and follows ROOM_ELSEWHERE, and after its node dies it resumes through the
 * entry node, as the SDK does. Its signalling connection is replaced on each move; publishing and
 * subscribing are MediaPeer's.
 */
export class ClusterPeer extends MediaPeer {
  resumeToken = '';
  /** ws URL of the node currently serving this peer. */
  hostUrl = '';
  /** Signalling URLs the peer was redirected to, in order. */
  readonly redirects: string[] = [];

  constructor(id: string) {
    super(id);
  }

  /** Joins through `entryWsUrl`, following ROOM_ELSEWHERE; a patient gives consent. */
  async join(entryWsUrl: string, token: string): Promise<void> {
    let url = entryWsUrl;
    for (let hop = 0; hop < 3; hop++) {
      const client = await SignallingClient.open(url);
      try {
        const joined = await client.request('join', { token });
        this.attach(client, url, joined.resumeToken);
        if (joined.self.role === 'patient') {
          await client.consent();
          if (!joined.room.options.waitingRoom)
            await client.waitFor('admissionChanged', (d) => d.state === 'admitted');
        }
        return;
      } catch (err) {
        client.close();
        const location = redirectOf(err);
        if (!location) throw err;
        url = signallingUrlOf(location);
        this.redirects.push(url);
      }
    }
    throw new Error('too many redirects');
  }

  /**
   * The connection was lost: resume through `entryWsUrl` (following ROOM_ELSEWHERE) until a node
   * takes the session back, within `timeoutMs`. Returns the resume result's transport ids.
   */
  async resumeVia(entryWsUrl: string, timeoutMs = 30_000): Promise<{ transportIds: string[] }> {
    const deadline = Date.now() + timeoutMs;
    let url = entryWsUrl;
    let lastError: unknown;
    while (Date.now() < deadline) {
      let client: SignallingClient;
      try {
        client = await SignallingClient.open(url);
      } catch (err) {
        // The node we were sent to is gone (yet listed): back to the entry after a pause.
        lastError = err;
        url = entryWsUrl;
        await sleep(200);
        continue;
      }
      try {
        const resumed = await client.request('resume', { resumeToken: this.resumeToken });
        this.attach(client, url, resumed.resumeToken);
        this.usedConsumerIds.clear();
        return { transportIds: resumed.transportIds };
      } catch (err) {
        client.close();
        lastError = err;
        const location = redirectOf(err);
        if (!location) throw err;
        url = signallingUrlOf(location);
        this.redirects.push(url);
      }
    }
    throw new Error(`could not resume: ${String(lastError)}`);
  }

  private attach(client: SignallingClient, url: string, resumeToken: string): void {
    this.client = client;
    this.hostUrl = url;
    this.resumeToken = resumeToken;
  }

  /** As MediaPeer's, with the cluster tests' longer default wait for the announcements. */
  override async subscribe(expected: number, timeoutMs = 15_000): Promise<ConsumerDescription[]> {
    return super.subscribe(expected, timeoutMs);
  }

  /** RTP packets received so far on the current subscriber, by kind. */
  received(): { audio: number; video: number } {
    const streams = this.subscriber?.stats().streams ?? [];
    const sum = (kind: string) => streams.filter((s) => s.kind === kind).reduce((n, s) => n + s.packets, 0);
    return { audio: sum('audio'), video: sum('video') };
  }
}

/** The node URL of a ROOM_ELSEWHERE answer, if that is what `err` is. */
export function redirectOf(err: unknown): string | undefined {
  if (!(err instanceof RequestError) || err.code !== 'ROOM_ELSEWHERE') return undefined;
  const location = (err.body as { location?: unknown }).location;
  return typeof location === 'string' ? location : undefined;
}

/** Waits until every peer receives audio and video packets beyond what it had. */
export async function mediaFlows(...all: ClusterPeer[]): Promise<void> {
  const before = all.map((peer) => peer.received());
  await eventually(
    'audio and video to flow both ways',
    () =>
      all.every((peer, i) => {
        const now = peer.received();
        return now.audio > (before[i]?.audio ?? 0) + 20 && now.video > (before[i]?.video ?? 0) + 20;
      }),
    20_000,
  );
}

import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PeerLinkError, Publisher, Subscriber } from '../../peer/index.js';
import type { MediaScheduler } from '../../peer/index.js';
import type {
  PeerParticipant,
  PeerSession,
  PeerSessionContext,
  ServerPids,
  SessionHandles,
  Target,
  TargetStartOptions,
} from '../../harness/target.js';
import { TargetError } from '../../harness/target.js';
import { JanusApiError, JanusSession } from './api.js';
import { writeJanusConfig } from './config.js';
import { createJanusNetwork, destroyNetwork, removeStaleNetworks } from './network.js';
import type { JanusNetwork } from './network.js';
import { offeredStreams, withSimulcastGroup } from './sdp.js';

const VIDEOROOM = 'janus.plugin.videoroom';
const HTTP_PORT = 8088;
const READY_TIMEOUT_MS = 20_000;
/** Error of a subscriber join before the publisher's PeerConnection is up. */
const NO_SUCH_FEED = 428;

/** Attempts per publisher or subscriber connection (see JanusTarget.publish()). */
const ATTEMPTS = 3;

class AnswerRefused extends Error {
  override readonly name = 'AnswerRefused';
}

/** node-datachannel refused Janus's SDP, or the connection failed (not timed out) right after. */
function retriable(error: unknown): boolean {
  return error instanceof AnswerRefused || (error instanceof PeerLinkError && /failed/.test(error.message));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The last lines of Janus's log, for an error message (the log goes with its folder). */
function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-5).join(' | ');
  } catch {
    return '(no log)';
  }
}

/** The janus binary, installing Debian's package when missing and allowed (root). */
function ensureJanusInstalled(log: (line: string) => void): string {
  const found = ['/usr/bin/janus', '/usr/local/bin/janus'].find((p) => fs.existsSync(p));
  if (found) return found;
  if (process.getuid?.() !== 0) {
    throw new TargetError('janus is not installed and this is not root: run apt-get install -y janus');
  }
  log('janus: installing Debian package janus (apt-get install -y janus)');
  try {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'janus'], {
      stdio: 'ignore',
      timeout: 300_000,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } catch (error) {
    throw new TargetError(
      `janus could not be installed (apt-get install -y janus): ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (!fs.existsSync('/usr/bin/janus'))
    throw new TargetError('janus installed but /usr/bin/janus is missing');
  return '/usr/bin/janus';
}

/**
 * Target `janus`: Debian's Janus 1.1 with the VideoRoom plugin and its HTTP API, in a network
 * namespace of our own (it gathers no loopback candidates). One room per consultation; each
 * participant publishes (offer with SSRC simulcast, `a=ssrc-group:SIM`) and subscribes to the other
 * (Janus offers, the peer answers). CPU and memory: the janus process.
 */
export class JanusTarget implements Target {
  readonly name = 'janus';
  private network: JanusNetwork | undefined;
  private configDir: string | undefined;
  private child: ChildProcess | undefined;
  private session: JanusSession | undefined;
  private base = '';
  private exitHandler: (() => void) | undefined;
  private log: (line: string) => void = () => undefined;
  /** Connections redone after node-datachannel refused Janus's SDP or failed (see publish()). */
  private retries = 0;

  async start(options: TargetStartOptions): Promise<void> {
    this.log = options.log;
    const binary = ensureJanusInstalled(options.log);
    removeStaleNetworks(options.log);
    try {
      this.network = createJanusNetwork();
    } catch (error) {
      throw new TargetError(error instanceof Error ? error.message : String(error));
    }
    // A run that dies (time limit, crash) still removes the namespace and Janus on exit.
    this.exitHandler = () => this.cleanUpNow();
    process.once('exit', this.exitHandler);
    const network = this.network;
    this.configDir = writeJanusConfig({
      address: network.janusAddress,
      iceInterface: network.janusInterface,
      httpPort: HTTP_PORT,
    });
    const logFile = path.join(this.configDir, 'janus.log');
    const out = fs.openSync(logFile, 'a');
    this.child = spawn(
      'ip',
      [
        'netns',
        'exec',
        network.namespace,
        binary,
        '-F',
        this.configDir,
        '-C',
        path.join(this.configDir, 'janus.jcfg'),
        '-o',
      ],
      { stdio: ['ignore', out, out] },
    );
    fs.closeSync(out);
    let exited: string | undefined;
    this.child.once('exit', (code, signal) => {
      exited = `janus exited (${signal ?? code})`;
    });
    this.base = `http://${network.janusAddress}:${HTTP_PORT}/janus`;
    const deadline = performance.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (exited) throw new TargetError(`${exited} before answering: ${tail(logFile)}`);
      try {
        const response = await fetch(`${this.base}/info`);
        if (response.ok) break;
      } catch {
        // Not listening yet.
      }
      if (performance.now() > deadline)
        throw new TargetError(`janus did not answer within ${READY_TIMEOUT_MS} ms`);
      await sleep(100);
    }
    this.session = await JanusSession.create(this.base);
    options.log(`janus: pid ${this.child.pid}, namespace ${network.namespace}, API ${this.base}`);
  }

  openSession(_index: number): Promise<SessionHandles> {
    return Promise.reject(new TargetError('target janus negotiates SDP itself: use openPeerSession'));
  }

  async openPeerSession(index: number, context: PeerSessionContext): Promise<PeerSession> {
    const janus = this.session;
    const network = this.network;
    if (!janus || !network) throw new TargetError('target janus is not started');
    const timeout = context.joinTimeoutMs;
    const handles: number[] = [];
    const participants: PeerParticipant[] = [];
    let room: number | undefined;
    const close = async (): Promise<void> => {
      if (room !== undefined) {
        await janus
          .message(handles[0]!, { request: 'destroy', room })
          .then((r) => r.event)
          .catch(() => undefined);
      }
      await Promise.all(handles.map((h) => janus.detach(h).catch(() => undefined)));
    };
    try {
      const startedAt = performance.now();
      // A handle of its own creates and destroys the room: publishers may be re-attached.
      const control = await janus.attach(VIDEOROOM);
      handles.push(control);
      const created = await (
        await janus.message(control, {
          request: 'create',
          publishers: 2,
          audiocodec: 'opus',
          videocodec: 'vp8',
          bitrate: 0,
          fir_freq: 0,
          is_private: true,
          record: false,
        })
      ).event;
      room = Number(created.plugindata?.data.room);
      if (!Number.isFinite(room)) throw new JanusApiError('videoroom create returned no room');
      const published = await Promise.all(
        [0, 1].map((p) =>
          this.publish(janus, handles, room!, `s${index}p${p}-pub`, context.scheduler, timeout),
        ),
      );
      for (const p of published) {
        participants.push({ startedAt, joinedAt: p.joinedAt, publisher: p.publisher });
      }
      await Promise.all(
        participants.map(async (participant, p) => {
          const name = `s${index}p${p}-sub`;
          const feed = published[1 - p]!.feed;
          const subscribed = await this.subscribe(
            janus,
            handles,
            room!,
            feed,
            name,
            context.scheduler,
            timeout,
          );
          participant.subscriber = subscribed.subscriber;
          participant.signalledAt = subscribed.signalledAt;
        }),
      );
      return { participants, close };
    } catch (error) {
      for (const p of participants) {
        p.subscriber?.close();
        p.publisher.close();
      }
      await close();
      throw error;
    }
  }

  /**
   * Publishes one participant on a handle of its own (added to `handles` for clean-up) and waits
   * until it is connected. Retried on a fresh handle and peer when node-datachannel refuses
   * Janus's well-formed answer ("Got a remote candidate without ICE transport") or the connection
   * fails at once: a libdatachannel race (others report it under contention) seen here in about one
   * publisher in twenty and one subscriber in a few hundred.
   */
  private async publish(
    janus: JanusSession,
    handles: number[],
    room: number,
    name: string,
    scheduler: MediaScheduler,
    timeoutMs: number,
  ): Promise<{ publisher: Publisher; feed: number; joinedAt: number }> {
    for (let attempt = 1; ; attempt++) {
      const handle = await janus.attach(VIDEOROOM);
      handles.push(handle);
      const publisher = new Publisher({ name, scheduler, bindAddress: this.network!.hostAddress });
      try {
        const offer = withSimulcastGroup(await publisher.offerSdp(timeoutMs), publisher.ssrcs.video);
        const { event } = await janus.message(
          handle,
          { request: 'joinandconfigure', ptype: 'publisher', room },
          { type: 'offer', sdp: offer },
          timeoutMs,
        );
        await janus.trickleCompleted(handle);
        const joined = await event;
        const feed = Number(joined.plugindata?.data.id);
        if (!joined.jsep || joined.jsep.type !== 'answer' || !Number.isFinite(feed)) {
          throw new JanusApiError('videoroom join gave no feed id or no SDP answer');
        }
        try {
          publisher.acceptAnswer(joined.jsep.sdp);
        } catch (error) {
          throw new AnswerRefused(error instanceof Error ? error.message : String(error));
        }
        const joinedAt = performance.now();
        publisher.startMedia();
        await publisher.waitConnected(timeoutMs);
        return { publisher, feed, joinedAt };
      } catch (error) {
        publisher.close();
        if (!retriable(error) || attempt >= ATTEMPTS) throw error;
        this.retries++;
        handles.splice(handles.indexOf(handle), 1);
        await janus.detach(handle).catch(() => undefined);
      }
    }
  }

  /** Subscribes to `feed` on a handle of its own and waits until connected; retried as publish(). */
  private async subscribe(
    janus: JanusSession,
    handles: number[],
    room: number,
    feed: number,
    name: string,
    scheduler: MediaScheduler,
    timeoutMs: number,
  ): Promise<{ subscriber: Subscriber; signalledAt: number }> {
    for (let attempt = 1; ; attempt++) {
      const handle = await janus.attach(VIDEOROOM);
      handles.push(handle);
      let subscriber: Subscriber | undefined;
      try {
        const offer = await this.joinFeed(janus, handle, room, feed, timeoutMs);
        try {
          subscriber = new Subscriber({
            name,
            scheduler,
            bindAddress: this.network!.hostAddress,
            consumers: offeredStreams(offer),
            remoteOffer: offer,
          });
        } catch (error) {
          throw new AnswerRefused(error instanceof Error ? error.message : String(error));
        }
        const answer = await subscriber.answerSdp(timeoutMs);
        const { event } = await janus.message(
          handle,
          { request: 'start' },
          { type: 'answer', sdp: answer },
          timeoutMs,
        );
        await janus.trickleCompleted(handle);
        await event;
        const signalledAt = performance.now();
        await subscriber.waitConnected(timeoutMs);
        return { subscriber, signalledAt };
      } catch (error) {
        subscriber?.close();
        if (!retriable(error) || attempt >= ATTEMPTS) throw error;
        this.retries++;
        handles.splice(handles.indexOf(handle), 1);
        await janus.detach(handle).catch(() => undefined);
      }
    }
  }

  /** Joins a feed as subscriber and returns Janus's offer. */
  private async joinFeed(
    janus: JanusSession,
    handle: number,
    room: number,
    feed: number,
    timeoutMs: number,
  ): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    // The feed exists for subscribers only once Janus sees the publisher's PeerConnection up.
    for (;;) {
      try {
        const attached = await (
          await janus.message(handle, { request: 'join', ptype: 'subscriber', room, streams: [{ feed }] })
        ).event;
        if (attached.jsep?.type !== 'offer') throw new JanusApiError('subscriber join gave no SDP offer');
        return attached.jsep.sdp;
      } catch (error) {
        if (
          !(error instanceof JanusApiError && error.code === NO_SUCH_FEED) ||
          performance.now() > deadline
        ) {
          throw error;
        }
        await sleep(50);
      }
    }
  }

  serverPids(): ServerPids {
    return { ...(this.child?.pid !== undefined ? { server: this.child.pid } : {}), workers: [] };
  }

  async stop(): Promise<void> {
    if (this.retries > 0) {
      this.log(`janus: ${this.retries} connection(s) redone after node-datachannel refused SDP or failed`);
    }
    await this.session?.destroy().catch(() => undefined);
    this.session = undefined;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(3000)]);
    }
    this.cleanUpNow();
  }

  /** Synchronous, so it also runs from process.on('exit'). */
  private cleanUpNow(): void {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      try {
        this.child.kill('SIGKILL');
      } catch {
        // Already gone.
      }
    }
    this.child = undefined;
    if (this.network) {
      destroyNetwork(this.network);
      this.network = undefined;
    }
    if (this.configDir) {
      fs.rmSync(this.configDir, { recursive: true, force: true });
      this.configDir = undefined;
    }
    if (this.exitHandler) {
      process.removeListener('exit', this.exitHandler);
      this.exitHandler = undefined;
    }
    this.log = () => undefined;
  }
}

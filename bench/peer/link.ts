import nodeDataChannel from 'node-datachannel';
import type { PeerConnection, Track } from 'node-datachannel';
import { buildRemoteAnswer, localDtlsParameters } from './sdp.js';
import type { RemoteSctpParams, RemoteSection, RemoteTransportParams } from './sdp.js';
import type { types } from 'mediasoup';

export interface LinkOptions {
  /** Label for libdatachannel's own logs. */
  name: string;
  /** Local address to bind ICE to; loopback only in tests and benchmarks. */
  bindAddress?: string;
  /** Restrict local UDP ports (both bounds inclusive). */
  portRange?: { begin: number; end: number };
  /** Our DTLS role against a mediasoup transport (default client; the server then takes the other). */
  dtlsRole?: 'client' | 'server';
}

export class PeerLinkError extends Error {
  override readonly name = 'PeerLinkError';
}

let loggerSet = false;

/** libdatachannel logs warnings to stdout by default; a load run wants a quiet terminal. */
function quietNativeLogs(): void {
  if (loggerSet) return;
  loggerSet = true;
  nodeDataChannel.initLogger('Error', () => undefined);
}

/**
 * One node-datachannel PeerConnection tied to one mediasoup WebRtcTransport. We always offer; the
 * server's answer is built locally from the transport's ICE/DTLS parameters (the server is ice-lite).
 * Keeps strong references to the PeerConnection and its tracks: native callbacks stop silently
 * once the JavaScript objects are collected.
 */
export class PeerLink {
  readonly pc: PeerConnection;
  private readonly tracks: Track[] = [];
  private stateListeners: ((state: string) => void)[] = [];
  private state = 'new';
  private closed = false;
  private readonly dtlsRole: 'client' | 'server';
  /** performance.now() when the link reached 'connected' (ICE + DTLS-SRTP up). */
  connectedAt: number | undefined;

  constructor(options: LinkOptions) {
    quietNativeLogs();
    this.dtlsRole = options.dtlsRole ?? 'client';
    this.pc = new nodeDataChannel.PeerConnection(options.name, {
      iceServers: [],
      bindAddress: options.bindAddress ?? '127.0.0.1',
      ...(options.portRange
        ? { portRangeBegin: options.portRange.begin, portRangeEnd: options.portRange.end }
        : {}),
      // Tracks are described before the first offer; nothing to renegotiate automatically.
      disableAutoNegotiation: true,
    });
    this.pc.onStateChange((state) => {
      this.state = state;
      if (state === 'connected' && this.connectedAt === undefined) this.connectedAt = performance.now();
      for (const listener of this.stateListeners) listener(state);
    });
  }

  addTrack(media: nodeDataChannel.Audio | nodeDataChannel.Video): Track {
    const track = this.pc.addTrack(media);
    this.tracks.push(track);
    return track;
  }

  /** Creates our offer and returns the DTLS parameters to pass to the server's transport.connect(). */
  offer(): types.DtlsParameters {
    this.pc.setLocalDescription('offer');
    const local = this.pc.localDescription();
    if (!local) throw new PeerLinkError('no local description after setLocalDescription');
    return localDtlsParameters(local.sdp, this.dtlsRole);
  }

  /** Applies the server's answer: ICE checks and the DTLS handshake start right away. */
  answer(
    transport: RemoteTransportParams,
    sections: RemoteSection[],
    application?: { mid: string; sctp: RemoteSctpParams },
  ): void {
    this.pc.setRemoteDescription(
      buildRemoteAnswer(transport, sections, this.dtlsRole, application),
      'answer',
    );
  }

  /**
   * For servers that negotiate SDP themselves (Janus): our local description once ICE gathering is
   * complete, candidates inline (such servers wait for them, there is no trickle here).
   */
  gatheredDescription(timeoutMs = 10_000): Promise<string> {
    const ready = (): string | undefined => {
      if (this.pc.gatheringState() !== 'complete') return undefined;
      return this.pc.localDescription()?.sdp;
    };
    const now = ready();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      // node-datachannel keeps a single gathering callback; polling avoids taking it from others.
      const started = performance.now();
      const timer = setInterval(() => {
        const sdp = ready();
        if (sdp !== undefined) {
          clearInterval(timer);
          resolve(sdp);
        } else if (this.closed || performance.now() - started > timeoutMs) {
          clearInterval(timer);
          reject(new PeerLinkError(`ICE gathering not complete after ${timeoutMs} ms`));
        }
      }, 10);
    });
  }

  /** Applies a complete remote description written by the server (an answer to our offer). */
  acceptRemoteAnswer(sdp: string): void {
    this.pc.setRemoteDescription(sdp, 'answer');
  }

  /** Takes the server's offer and creates our answer; returns our DTLS parameters. */
  answerRemoteOffer(sdp: string): types.DtlsParameters {
    this.pc.setRemoteDescription(sdp, 'offer');
    this.pc.setLocalDescription('answer');
    const local = this.pc.localDescription();
    if (!local) throw new PeerLinkError('no local description after setLocalDescription');
    return localDtlsParameters(local.sdp);
  }

  get connectionState(): string {
    return this.state;
  }

  /** Resolves once connected; rejects on failure, close or timeout. */
  waitConnected(timeoutMs = 10_000): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => finish(new PeerLinkError(`not connected after ${timeoutMs} ms`)),
        timeoutMs,
      );
      const listener = (state: string): void => {
        if (state === 'connected') finish();
        else if (state === 'failed' || state === 'closed') finish(new PeerLinkError(`connection ${state}`));
      };
      const finish = (error?: Error): void => {
        clearTimeout(timer);
        this.stateListeners = this.stateListeners.filter((l) => l !== listener);
        if (error) reject(error);
        else resolve();
      };
      this.stateListeners.push(listener);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stateListeners = [];
    // Closing the PeerConnection closes its tracks too.
    try {
      this.pc.close();
    } catch {
      // Closing twice from native teardown is harmless.
    }
  }
}

/**
 * Closes every node-datachannel object in the process and releases the native callback handles
 * that otherwise keep Node's event loop alive after the last close(). Call once at the very end
 * (test file teardown, end of a benchmark run); no peer may be used afterwards.
 */
export function closeAllPeers(): void {
  nodeDataChannel.cleanup();
}

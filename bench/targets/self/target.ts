import os from 'node:os';
import type { ServerPids, SessionHandles, Target, TargetStartOptions } from '../../harness/target.js';
import { TargetError } from '../../harness/target.js';
import { SelfParticipant } from './participant.js';
import { PlatformApi } from './platformApi.js';
import { ServerProcess } from './serverProcess.js';

export interface SelfTargetOptions {
  /** Extra SFU_* variables for the server child (a scenario's limits). */
  env?: Record<string, string>;
}

/**
 * Target `self`: our real server as a child process (`node dist/src/main.js`), reached only the
 * way a platform and its users reach it: REST with an API key to create the room and invite, then
 * per participant a WebSocket, a join token, the waiting room (patient consent, practitioner
 * admission), and mediasoup-shaped signalling for transports, producers and announced consumers.
 * CPU and memory: the server process and its mediasoup worker children.
 */
export class SelfTarget implements Target {
  readonly name = 'self';
  readonly server = new ServerProcess();
  private api: PlatformApi | undefined;

  private env: Record<string, string>;

  constructor(options: SelfTargetOptions = {}) {
    this.env = { ...options.env };
  }

  private profileDir: string | undefined;

  /** Adds SFU_* variables for the next start (a scenario's limits), and where to profile the server. */
  configure(env: Record<string, string>, profileDir?: string): void {
    this.env = { ...this.env, ...env };
    if (profileDir !== undefined) this.profileDir = profileDir;
  }

  async start(options: TargetStartOptions): Promise<void> {
    // Same default as the server's worker pool: one worker per CPU.
    const workers = options.workers > 0 ? options.workers : os.availableParallelism();
    await this.server.start({
      workers,
      log: options.log,
      profileDir: this.profileDir,
      env: {
        // A session per room of two; the bench may open many rooms.
        SFU_LIMITS__MAX_ROOMS: String(Math.max(10_000, options.maxSessions * 2)),
        ...this.env,
      },
    });
    this.api = new PlatformApi(this.server.url, this.server.apiKey);
  }

  get platform(): PlatformApi {
    if (!this.api) throw new TargetError('target self is not started');
    return this.api;
  }

  async openSession(index: number): Promise<SessionHandles> {
    const api = this.platform;
    const roomId = await api.createRoom({ waitingRoom: true, maxParticipants: 2 });
    const [doctor, patient] = await Promise.all([
      api.invite(roomId, 'practitioner', `doc-${index}`),
      api.invite(roomId, 'patient', `pat-${index}`),
    ]);
    const wsUrl = this.server.wsUrl;
    const participants: SelfParticipant[] = [];
    let practitionerJoined: ((p: SelfParticipant) => void) | undefined;
    let practitionerFailed: ((error: unknown) => void) | undefined;
    const practitioner = new Promise<SelfParticipant>((resolve, reject) => {
      practitionerJoined = resolve;
      practitionerFailed = reject;
    });
    // The patient's join waits on this; a failed practitioner must not leave an unhandled rejection.
    practitioner.catch(() => undefined);

    const joinPractitioner = async (): Promise<SelfParticipant> => {
      try {
        const p = await SelfParticipant.join(wsUrl, doctor.token);
        participants.push(p);
        await p.setRtpCapabilities();
        practitionerJoined?.(p);
        return p;
      } catch (error) {
        practitionerFailed?.(error);
        throw error;
      }
    };
    const joinPatient = async (): Promise<SelfParticipant> => {
      const p = await SelfParticipant.join(wsUrl, patient.token);
      participants.push(p);
      const admitted = p.admitted();
      await p.giveConsent();
      const doc = await practitioner;
      await doc.socket.request('admit', { participantId: p.id });
      await admitted;
      await p.setRtpCapabilities();
      return p;
    };

    return {
      join: (participant) => (participant === 0 ? joinPractitioner() : joinPatient()),
      close: async () => {
        for (const p of participants) p.close();
        await api.deleteRoom(roomId).catch(() => undefined);
      },
    };
  }

  serverPids(): ServerPids {
    const pid = this.server.pid;
    return { ...(pid !== undefined ? { server: pid } : {}), workers: this.server.workerPids };
  }

  async stop(): Promise<void> {
    await this.server.stop();
    this.api = undefined;
  }
}

import { signJoinToken } from '../../src/auth/joinTokens.js';
import { DelayHistogram, percentilesOf } from '../peer/index.js';
import { sumMemory } from '../harness/proc.js';
import { ErrorLog, hostInfo, measureServer } from '../harness/scenarioReport.js';
import type { ScenarioReport, ServerUsage } from '../harness/scenarioReport.js';
import { TargetError } from '../harness/target.js';
import { SignallingSocket } from '../targets/self/signalling.js';
import type { SelfTarget } from '../targets/self/target.js';
import { inParallel } from '../harness/inParallel.js';

export interface SignallingOptions {
  /** Idle joined connections to hold open. */
  connections: number;
  /** Participants per room: the first is the practitioner, the others patients waiting in the lobby. */
  roomSize: number;
  /** Connections that send requests in the request-rate phase. */
  requestConnections: number;
  /** Seconds of the request-rate phase (0 skips it). */
  durationS: number;
  /** Joins in flight at once while opening connections. */
  openConcurrency: number;
  workers: number;
  timeoutMs: number;
  progress: (line: string) => void;
  log: (line: string) => void;
}

export interface SignallingResults {
  connections: number;
  rooms: number;
  /** Joins per second while opening the connections (WebSocket open + join answer, `openConcurrency` at once). */
  joinsPerS: number;
  /** Server process RSS growth per idle joined connection, rooms excluded. */
  serverRssPerConnectionKiB: number;
  /** The same, with each connection's share of its room (room object, router, journal). */
  serverRssPerConnectionWithRoomKiB: number;
  /** mediasoup workers' RSS growth per connection (the rooms' routers). */
  workersRssPerConnectionKiB: number;
  rssMiB: { baseline: number; withRooms: number; withConnections: number };
  requests: { connections: number; total: number; perS: number; failed: number };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Spreads the load generator's connections over 127.0.0.2-127.0.0.250 (plenty of source ports). */
function sourceAddress(index: number): string {
  return `127.0.0.${2 + (index % 249)}`;
}

/**
 * Scenario `signalling`: holds N idle, joined WebSocket connections (a practitioner per room and
 * patients waiting in its lobby) and reports the server's resident memory per connection and the
 * join rate; then K of them send `getConsentTexts` in a closed loop for `durationS` seconds:
 * round trips per second and their latency.
 */
export async function runSignalling(
  target: SelfTarget,
  options: SignallingOptions,
): Promise<ScenarioReport<SignallingResults>> {
  const startedAt = new Date();
  const began = performance.now();
  const roomSize = Math.max(1, options.roomSize);
  const rooms = Math.ceil(options.connections / roomSize);
  target.configure({
    SFU_LIMITS__MAX_PARTICIPANTS_PER_ROOM: String(Math.max(2, roomSize)),
    SFU_LIMITS__MAX_ROOMS: String(rooms + 10),
    // The request phase measures the server, not its per-connection rate limit.
    SFU_LIMITS__MESSAGES_PER_SECOND: '100000',
  });
  await target.start({ workers: options.workers, maxSessions: rooms, log: options.log });
  const workers = target.serverPids().workers.length;
  const errors = new ErrorLog();
  const sockets: SignallingSocket[] = [];
  try {
    const api = target.platform;
    const secret = new TextEncoder().encode(target.server.tokenSecret);
    const audience = target.server.tokenAudience;
    const open = async (roomId: string, participant: number, index: number): Promise<number> => {
      const token = await signJoinToken(secret, audience, {
        room: roomId,
        participantId: `c${index}`,
        role: participant === 0 ? 'practitioner' : 'patient',
        ttlS: 600,
      });
      const t0 = performance.now();
      const socket = await SignallingSocket.open(target.server.wsUrl, {
        localAddress: sourceAddress(index),
        timeoutMs: options.timeoutMs,
      });
      try {
        await socket.request('join', { token });
      } catch (error) {
        socket.terminate();
        throw error;
      }
      sockets.push(socket);
      return performance.now() - t0;
    };

    // Warm-up: one room with its participants, so code loading and first allocations stay out of the delta.
    const warmRoom = await api.createRoom({ waitingRoom: true, maxParticipants: Math.max(2, roomSize) });
    for (let p = 0; p < roomSize; p++) await open(warmRoom, p, -1 - p);
    await sleep(1000);
    const pids = target.serverPids();
    const memory = (): { server: number; workers: number } => ({
      server: sumMemory(pids.server !== undefined ? [pids.server] : []).rssMiB,
      workers: sumMemory(pids.workers).rssMiB,
    });
    const baseline = memory();

    const roomIds: string[] = new Array<string>(rooms);
    await inParallel(rooms, 16, async (r) => {
      roomIds[r] = await api.createRoom({ waitingRoom: true, maxParticipants: Math.max(2, roomSize) });
      if (r % 100 === 0) options.progress(`signalling: ${r}/${rooms} rooms created`);
    });
    await sleep(1000);
    const withRooms = memory();

    const joinLatencies: number[] = [];
    const opening = measureServer(pids);
    const openStart = performance.now();
    await inParallel(options.connections, options.openConcurrency, async (i) => {
      try {
        joinLatencies.push(await open(roomIds[Math.floor(i / roomSize)]!, i % roomSize, i));
      } catch (error) {
        errors.note(error);
      }
      if (i % 250 === 0) options.progress(`signalling: ${sockets.length}/${options.connections} joined`);
    });
    const openSeconds = (performance.now() - openStart) / 1000;
    const openUsage = opening.end();
    const opened = joinLatencies.length;
    if (opened === 0) throw new TargetError(`no connection joined: ${errors.messages[0] ?? 'unknown'}`);
    // Let the server settle (pending journal writes, young-generation garbage) before reading RSS.
    await sleep(3000);
    const withConnections = memory();
    const alive = sockets.slice(roomSize).filter((s) => s.isOpen).length;

    // Request phase: closed loop on K connections.
    const histogram = new DelayHistogram();
    let total = 0;
    let failed = 0;
    const server: Record<string, ServerUsage> = { opening: openUsage };
    const requesters = sockets.slice(roomSize, roomSize + options.requestConnections);
    if (options.durationS > 0 && requesters.length > 0) {
      const usage = measureServer(pids);
      const endAt = performance.now() + options.durationS * 1000;
      const ticker = setInterval(
        () => options.progress(`signalling: ${total} requests, ${failed} failed`),
        1000,
      );
      await Promise.all(
        requesters.map(async (socket) => {
          while (performance.now() < endAt) {
            const t0 = performance.now();
            try {
              await socket.request('getConsentTexts', {});
              histogram.record(performance.now() - t0);
              total++;
            } catch (error) {
              failed++;
              errors.note(error);
              if (!socket.isOpen) return;
            }
          }
        }),
      );
      clearInterval(ticker);
      server.requests = usage.end();
    }
    const kib = (mib: number): number => (mib * 1024) / opened;
    return {
      scenario: 'signalling',
      target: target.name,
      workers,
      startedAt: startedAt.toISOString(),
      elapsedS: (performance.now() - began) / 1000,
      host: hostInfo(),
      parameters: {
        connections: options.connections,
        roomSize,
        requestConnections: options.requestConnections,
        durationS: options.durationS,
        openConcurrency: options.openConcurrency,
      },
      results: {
        connections: opened,
        rooms,
        joinsPerS: opened / openSeconds,
        serverRssPerConnectionKiB: kib(withConnections.server - withRooms.server),
        serverRssPerConnectionWithRoomKiB: kib(withConnections.server - baseline.server),
        workersRssPerConnectionKiB: kib(withConnections.workers - baseline.workers),
        rssMiB: {
          baseline: baseline.server,
          withRooms: withRooms.server,
          withConnections: withConnections.server,
        },
        requests: {
          connections: requesters.length,
          total,
          perS: options.durationS > 0 ? total / options.durationS : 0,
          failed,
        },
      },
      latenciesMs: {
        join: { ...percentilesOf(joinLatencies), samples: opened },
        request: { ...histogram.percentiles(), samples: histogram.count, max: histogram.max },
      },
      server,
      failures: errors.count + (opened - alive),
      errors: errors.messages,
      notes: [
        `Server RSS per connection: growth of the server process's VmRSS from after the rooms were ` +
          `created to 3 s after the last join, divided by the connections joined (${alive} of ${opened} ` +
          'still open at the end). RSS is what the kernel sees: V8 heap headroom is included.',
        'Rooms were created by REST with the waiting room on; tokens signed with the shared secret; ' +
          'the first participant of each room is the practitioner, the others patients waiting in its lobby.',
        'Limits raised for this run: limits.connectionsPerAddress, limits.maxParticipantsPerRoom, ' +
          'limits.maxRooms, limits.messagesPerSecond (100000, so the request phase measures the server).',
        'Join latency: WebSocket open to join answer; the request phase calls getConsentTexts in a ' +
          'closed loop (one request in flight per connection).',
      ],
    };
  } finally {
    options.progress('closing connections');
    for (const s of sockets) s.terminate();
    await target.stop();
  }
}

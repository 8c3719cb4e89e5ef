/**
 * The `bare` target's server process: mediasoup workers driven by the smallest possible control
 * code, no signalling core. Runs as a child of the benchmark so its CPU and memory are measured
 * apart from the load generator's; controlled over the IPC channel (see protocol.ts).
 */
import type * as Mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { MEDIA_CODECS } from '../../../src/media/codecs.js';
import { useCheapCopiesInMediasoup } from '../../../src/media/plainDataClone.js';
import { udpReceiveBufferOption } from '../../../src/media/socketBuffers.js';
import type { DriverEvent, DriverRequest, DriverResponse } from './protocol.js';

// The engine under test: 'mediasoup', or 'mediasoup-legacy' (3.12.16) for the bare-legacy target.
// The calls below are the same in both versions; the current version's types describe them.
const mediasoup = (await import(
  process.env.BENCH_MEDIASOUP_MODULE === 'mediasoup-legacy' ? 'mediasoup-legacy' : 'mediasoup'
)) as typeof Mediasoup;
// The current engine runs as the product runs it: with its cheaper parameter copies (see
// src/media/plainDataClone.ts). BENCH_ENGINE_RAW=1 keeps mediasoup's own structuredClone copies.
if (process.env.BENCH_MEDIASOUP_MODULE !== 'mediasoup-legacy' && process.env.BENCH_ENGINE_RAW !== '1')
  useCheapCopiesInMediasoup();

class DriverError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Slot {
  worker: types.Worker;
  server: types.WebRtcServer;
}

const slots: Slot[] = [];
const routers = new Map<string, types.Router>();
const transports = new Map<string, types.WebRtcTransport>();
const consumers = new Map<string, types.Consumer>();
let nextSlot = 0;

function send(message: DriverResponse | DriverEvent): void {
  process.send?.(message);
}

function lookup<T>(map: Map<string, T>, id: string, what: string): T {
  const found = map.get(id);
  if (!found) throw new DriverError('NOT_FOUND', `unknown ${what}`);
  return found;
}

async function handle(request: DriverRequest): Promise<unknown> {
  switch (request.method) {
    case 'start': {
      if (slots.length > 0) throw new DriverError('BAD_STATE', 'already started');
      for (let i = 0; i < request.params.workers; i++) {
        const worker = await mediasoup.createWorker({
          logLevel: 'error',
          rtcMinPort: 40000,
          rtcMaxPort: 49999,
        });
        worker.on('died', () => send({ event: 'workerDied', pid: worker.pid }));
        // One WebRtcServer per worker: every transport of that worker shares one UDP port.
        const server = await worker.createWebRtcServer({
          listenInfos: [
            {
              protocol: 'udp',
              ip: request.params.listenIp,
              ...udpReceiveBufferOption(request.params.recvBufferBytes),
            },
          ],
        });
        slots.push({ worker, server });
      }
      return { workerPids: slots.map((s) => s.worker.pid), version: mediasoup.version };
    }
    case 'createRouter': {
      const slot = slots[nextSlot++ % Math.max(1, slots.length)];
      if (!slot) throw new DriverError('BAD_STATE', 'not started');
      const router = await slot.worker.createRouter({ mediaCodecs: MEDIA_CODECS, appData: { slot } });
      routers.set(router.id, router);
      router.observer.once('close', () => routers.delete(router.id));
      return { routerId: router.id };
    }
    case 'closeRouter': {
      routers.get(request.params.routerId)?.close();
      return {};
    }
    case 'createTransport': {
      const router = lookup(routers, request.params.routerId, 'router');
      const slot = (router.appData as { slot: Slot }).slot;
      const transport = await router.createWebRtcTransport({
        webRtcServer: slot.server,
        enableTcp: false,
        appData: { router },
      });
      transports.set(transport.id, transport);
      transport.observer.once('close', () => transports.delete(transport.id));
      return {
        id: transport.id,
        iceParameters: transport.iceParameters,
        iceCandidates: transport.iceCandidates,
        dtlsParameters: transport.dtlsParameters,
      };
    }
    case 'connectTransport': {
      await lookup(transports, request.params.transportId, 'transport').connect({
        dtlsParameters: request.params.dtlsParameters,
      });
      return {};
    }
    case 'produce': {
      const transport = lookup(transports, request.params.transportId, 'transport');
      const producer = await transport.produce({
        kind: request.params.kind,
        rtpParameters: request.params.rtpParameters,
      });
      return { producerId: producer.id };
    }
    case 'consume': {
      const transport = lookup(transports, request.params.transportId, 'transport');
      const { producerId, rtpCapabilities } = request.params;
      const router = (transport.appData as { router: types.Router }).router;
      if (!router.canConsume({ producerId, rtpCapabilities }))
        throw new DriverError('CANNOT_CONSUME', 'producer unknown or capabilities do not match');
      const consumer = await transport.consume({ producerId, rtpCapabilities });
      consumers.set(consumer.id, consumer);
      consumer.observer.once('close', () => consumers.delete(consumer.id));
      return {
        id: consumer.id,
        producerId,
        kind: consumer.kind,
        rtpParameters: consumer.rtpParameters,
        paused: consumer.paused,
      };
    }
    case 'resumeConsumer': {
      await lookup(consumers, request.params.consumerId, 'consumer').resume();
      return {};
    }
    case 'stop': {
      for (const slot of slots) slot.worker.close();
      setImmediate(() => process.exit(0));
      return {};
    }
    default:
      throw new DriverError('BAD_REQUEST', 'unknown method');
  }
}

function isRequest(value: unknown): value is DriverRequest {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.id === 'number' && typeof v.method === 'string' && typeof v.params === 'object';
}

process.on('message', (message: unknown) => {
  if (!isRequest(message)) return;
  handle(message).then(
    (result) => send({ id: message.id, ok: true, result }),
    (error: unknown) =>
      send({
        id: message.id,
        ok: false,
        error: {
          code: error instanceof DriverError ? error.code : 'SERVER_ERROR',
          message: error instanceof Error ? error.message : String(error),
        },
      }),
  );
});

// The benchmark owns this process: when it goes away, so do we (and our workers with us).
process.on('disconnect', () => {
  for (const slot of slots) slot.worker.close();
  process.exit(0);
});

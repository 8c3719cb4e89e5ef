import type { types } from 'mediasoup';
import type { ConsumerInfo, TransportInfo } from '../../harness/target.js';

/** Requests the harness sends to the bare mediasoup driver over the child-process IPC channel. */
export type DriverRequest =
  | { id: number; method: 'start'; params: { workers: number; listenIp: string; recvBufferBytes: number } }
  | { id: number; method: 'createRouter'; params: Record<string, never> }
  | { id: number; method: 'closeRouter'; params: { routerId: string } }
  | { id: number; method: 'createTransport'; params: { routerId: string } }
  | {
      id: number;
      method: 'connectTransport';
      params: { transportId: string; dtlsParameters: types.DtlsParameters };
    }
  | {
      id: number;
      method: 'produce';
      params: { transportId: string; kind: types.MediaKind; rtpParameters: types.RtpParameters };
    }
  | {
      id: number;
      method: 'consume';
      params: { transportId: string; producerId: string; rtpCapabilities: types.RtpCapabilities };
    }
  | { id: number; method: 'resumeConsumer'; params: { consumerId: string } }
  | { id: number; method: 'stop'; params: Record<string, never> };

export interface DriverResults {
  start: { workerPids: number[]; version: string };
  createRouter: { routerId: string };
  closeRouter: Record<string, never>;
  createTransport: TransportInfo;
  connectTransport: Record<string, never>;
  produce: { producerId: string };
  consume: ConsumerInfo;
  resumeConsumer: Record<string, never>;
  stop: Record<string, never>;
}

export type DriverMethod = DriverRequest['method'];

export type DriverResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { code: string; message: string } };

/** Sent unprompted when a worker dies: the run is then invalid. */
export interface DriverEvent {
  event: 'workerDied';
  pid: number;
}

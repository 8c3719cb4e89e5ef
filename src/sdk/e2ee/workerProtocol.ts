import type { CryptorStats, FrameCodec } from './frameCrypto.js';

/** An RTCEncodedAudioFrame or RTCEncodedVideoFrame, as far as the worker needs it. */
export interface EncodedFrame {
  data: ArrayBuffer;
}

/** What the main thread tells the transform worker, and what the transformer options carry. */
export type WorkerCommand =
  | { type: 'setSendKey'; kid: number; key: Uint8Array }
  | { type: 'addReceiveKey'; senderId: string; kid: number; key: Uint8Array }
  | { type: 'removeSender'; senderId: string }
  | { type: 'setSenderClear'; senderId: string; clear: boolean }
  /** Phone downgrade: this participant's audio goes out without end-to-end encryption. */
  | { type: 'setAudioClear'; clear: boolean }
  | { type: 'stats'; requestId: number }
  /** createEncodedStreams path (Chromium): the streams of one sender or receiver. */
  | ({
      type: 'attach';
      readable: ReadableStream<EncodedFrame>;
      writable: WritableStream<EncodedFrame>;
    } & TransformTarget);

export type TransformTarget =
  | { role: 'send'; kind: 'audio' | 'video'; codec: FrameCodec }
  | { role: 'recv'; kind: 'audio' | 'video'; codec: FrameCodec; senderId: string };

export type WorkerEvent = { type: 'stats'; requestId: number; stats: CryptorStats } | { type: 'ready' };

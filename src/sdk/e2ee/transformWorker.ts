/**
 * The end-to-end encryption worker (bundled to dist/sdk/teleconsult-e2ee-worker.js): encrypts the
 * encoded frames a participant sends and decrypts those it receives, with SFrame. Keys arrive from
 * the main thread and stay here; the derived AES keys are non-extractable WebCrypto keys.
 *
 * Fed either by RTCRtpScriptTransform (the 'rtctransform' event) or, in Chromium, by the streams
 * of `createEncodedStreams()` posted with an 'attach' command.
 */
import { FrameCryptor } from './frameCrypto.js';
import type { EncodedFrame, TransformTarget, WorkerCommand, WorkerEvent } from './workerProtocol.js';

interface WorkerScope {
  postMessage(message: WorkerEvent): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<WorkerCommand>) => void): void;
  addEventListener(
    type: 'rtctransform',
    listener: (
      event: Event & {
        transformer: {
          readable: ReadableStream<EncodedFrame>;
          writable: WritableStream<EncodedFrame>;
          options: unknown;
        };
      },
    ) => void,
  ): void;
}

const scope = globalThis as unknown as WorkerScope;
const cryptor = new FrameCryptor();
let audioClear = false;

function pipe(
  readable: ReadableStream<EncodedFrame>,
  writable: WritableStream<EncodedFrame>,
  target: TransformTarget,
): void {
  const transform = new TransformStream<EncodedFrame, EncodedFrame>({
    async transform(frame, controller) {
      const data = new Uint8Array(frame.data);
      let out: Uint8Array<ArrayBuffer> | undefined;
      if (target.role === 'send') {
        out =
          audioClear && target.kind === 'audio'
            ? new Uint8Array(data)
            : await cryptor.encrypt(target.codec, data);
      } else {
        out = await cryptor.decrypt(target.senderId, target.codec, data);
      }
      // A frame that cannot be encrypted is dropped, never sent in clear; one that cannot be
      // authenticated is dropped, never decoded.
      if (!out) return;
      frame.data = out.buffer;
      controller.enqueue(frame);
    },
  });
  readable
    .pipeThrough(transform)
    .pipeTo(writable)
    .catch(() => undefined); // the sender or receiver went away
}

function isTarget(value: unknown): value is TransformTarget {
  const v = value as Partial<TransformTarget> | undefined;
  return (
    !!v &&
    (v.role === 'send' || (v.role === 'recv' && typeof v.senderId === 'string')) &&
    (v.kind === 'audio' || v.kind === 'video') &&
    typeof v.codec === 'string'
  );
}

scope.addEventListener('rtctransform', (event) => {
  const { readable, writable, options } = event.transformer;
  if (isTarget(options)) pipe(readable, writable, options);
});

/** Commands run one after the other: a key installed later must not be overtaken by an earlier one. */
let queue: Promise<void> = Promise.resolve();

scope.addEventListener('message', (event) => {
  const command = event.data;
  queue = queue
    .then(async () => {
      switch (command.type) {
        case 'setSendKey':
          await cryptor.setSendKey(command.kid, command.key);
          break;
        case 'addReceiveKey':
          await cryptor.addReceiveKey(command.senderId, command.kid, command.key);
          break;
        case 'removeSender':
          cryptor.removeSender(command.senderId);
          break;
        case 'setSenderClear':
          cryptor.setSenderClear(command.senderId, command.clear);
          break;
        case 'setAudioClear':
          audioClear = command.clear;
          cryptor.acceptClearAudio = command.clear;
          break;
        case 'stats':
          scope.postMessage({ type: 'stats', requestId: command.requestId, stats: cryptor.stats });
          break;
        case 'attach': {
          const { readable, writable, ...target } = command;
          if (isTarget(target)) pipe(readable, writable, target);
          break;
        }
      }
    })
    .catch(() => undefined); // a bad key is ignored; the affected frames are counted as failures
});

scope.postMessage({ type: 'ready' });

import type { Device, types as ms } from 'mediasoup-client';
import type { CameraOptions, MicrophoneOptions } from './types.js';

/**
 * Simulcast for the camera: three VP8 layers at 1/4, 1/2 and full resolution, each with three
 * temporal layers. The server forwards to each receiver the best layer its bandwidth allows, and
 * a patient on a weak mobile link still gets a usable picture from the lowest one.
 */
export function simulcastEncodings(): ms.RtpEncodingParameters[] {
  return [
    { rid: 'r0', scaleResolutionDownBy: 4, maxBitrate: 150_000, scalabilityMode: 'L1T3' },
    { rid: 'r1', scaleResolutionDownBy: 2, maxBitrate: 500_000, scalabilityMode: 'L1T3' },
    { rid: 'r2', scaleResolutionDownBy: 1, maxBitrate: 1_500_000, scalabilityMode: 'L1T3' },
  ];
}

/** VP8: the codec the simulcast layers above are designed for, and one every browser encodes. */
export function preferredVideoCodec(device: Device): ms.RtpCodecCapability | undefined {
  return device.rtpCapabilities.codecs?.find((codec) => codec.mimeType.toLowerCase() === 'video/vp8');
}

export function cameraConstraints(options: CameraOptions): MediaTrackConstraints {
  return {
    width: { ideal: options.width ?? 1280 },
    height: { ideal: options.height ?? 720 },
    frameRate: { ideal: options.frameRate ?? 30 },
    ...(options.deviceId ? { deviceId: { exact: options.deviceId } } : {}),
  };
}

export function microphoneConstraints(options: MicrophoneOptions): MediaTrackConstraints {
  return {
    echoCancellation: true,
    noiseSuppression: true,
    autoGainControl: true,
    ...(options.deviceId ? { deviceId: { exact: options.deviceId } } : {}),
  };
}

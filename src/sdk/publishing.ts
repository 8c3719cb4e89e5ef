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

/**
 * Device profiles (docs/devices.md). An examination camera (otoscope, dermatoscope) shows fine
 * detail that hardly moves: the encoder must keep resolution and drop frame rate when bandwidth is
 * short, the opposite of a face. A stethoscope carries heart and lung sounds from 20 Hz: the
 * speech processing that helps a microphone (echo cancellation, noise suppression, gain control,
 * their high-pass filter) removes exactly those, and DTX would cut the quiet between beats.
 */
export interface DeviceProfile {
  codecOptions?: ms.ProducerCodecOptions;
  /** Applied to the RTCRtpSender once produced (`RTCRtpSendParameters.degradationPreference`). */
  degradationPreference?: 'maintain-resolution' | 'maintain-framerate' | 'balanced';
  /** `MediaStreamTrack.contentHint`, set before the track is encoded. */
  contentHint?: 'detail' | 'music';
}

/** The examination camera's bitrate ceiling: about 2.7 times the camera's top layer. */
export const EXAMINATION_VIDEO_MAX_BITRATE = 4_000_000;
/** The stethoscope's bitrate ceiling (the server refuses less than 128 kbit/s). */
export const STETHOSCOPE_BITRATE = 160_000;

export function examinationVideoConstraints(options: {
  deviceId?: string;
  width?: number;
  height?: number;
}): MediaTrackConstraints {
  return {
    width: { ideal: options.width ?? 1920 },
    height: { ideal: options.height ?? 1080 },
    frameRate: { ideal: 30 },
    ...(options.deviceId ? { deviceId: { exact: options.deviceId } } : {}),
  };
}

/** One full-resolution encoding: no simulcast, the detail is what is examined. */
export function examinationVideoEncodings(): ms.RtpEncodingParameters[] {
  return [{ maxBitrate: EXAMINATION_VIDEO_MAX_BITRATE }];
}

export const EXAMINATION_VIDEO_PROFILE: DeviceProfile = {
  codecOptions: { videoGoogleStartBitrate: 2000 },
  degradationPreference: 'maintain-resolution',
  contentHint: 'detail',
};

export function stethoscopeConstraints(options: { deviceId?: string }): MediaTrackConstraints {
  return {
    echoCancellation: false,
    noiseSuppression: false,
    autoGainControl: false,
    channelCount: { ideal: 1 },
    sampleRate: { ideal: 48_000 },
    ...(options.deviceId ? { deviceId: { exact: options.deviceId } } : {}),
  };
}

export function stethoscopeEncodings(): ms.RtpEncodingParameters[] {
  return [{ maxBitrate: STETHOSCOPE_BITRATE }];
}

/** Opus full band (48 kHz playback), at least 128 kbit/s, DTX off, in-band FEC on. */
export const STETHOSCOPE_PROFILE: DeviceProfile = {
  codecOptions: {
    // WebRTC encodes mono Opus in its VoIP mode, whose high-pass filter cuts below ~60 Hz; a
    // stereo stream is encoded in audio mode (a DC filter only). Measured in the browser test.
    opusStereo: true,
    opusFec: true,
    opusDtx: false,
    opusMaxPlaybackRate: 48_000,
    opusMaxAverageBitrate: STETHOSCOPE_BITRATE,
  },
  contentHint: 'music',
};

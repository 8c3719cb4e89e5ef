import type { types } from 'mediasoup';

/**
 * Codecs every router offers: Opus for audio; VP8, VP9 and H264 for video; G.711 for phone legs.
 * The payload types are the ones mediasoup 3.12 assigned to this list on its own (each video codec's
 * RTX takes the next number), so SDP and captures keep their numbers across the upgrade.
 */
export const MEDIA_CODECS: types.RtpCodecCapability[] = [
  { kind: 'audio', mimeType: 'audio/opus', preferredPayloadType: 100, clockRate: 48000, channels: 2 },
  { kind: 'audio', mimeType: 'audio/PCMU', preferredPayloadType: 0, clockRate: 8000, channels: 1 },
  { kind: 'audio', mimeType: 'audio/PCMA', preferredPayloadType: 8, clockRate: 8000, channels: 1 },
  {
    kind: 'video',
    mimeType: 'video/VP8',
    preferredPayloadType: 101,
    clockRate: 90000,
    parameters: { 'x-google-start-bitrate': 1000 },
  },
  {
    kind: 'video',
    mimeType: 'video/VP9',
    preferredPayloadType: 103,
    clockRate: 90000,
    parameters: { 'profile-id': 2, 'x-google-start-bitrate': 1000 },
  },
  {
    kind: 'video',
    mimeType: 'video/H264',
    preferredPayloadType: 105,
    clockRate: 90000,
    parameters: {
      'packetization-mode': 1,
      'profile-level-id': '42e01f',
      'level-asymmetry-allowed': 1,
      'x-google-start-bitrate': 1000,
    },
  },
];

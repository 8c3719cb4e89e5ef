import type { types } from 'mediasoup';
import type { DeviceMediaSource } from '../protocol/devices.js';

/** The lowest bitrate ceiling a stethoscope may be sent with: heart and lung sounds need headroom. */
export const STETHOSCOPE_MIN_BITRATE = 128_000;

/**
 * What the server checks of a device producer's RTP parameters, so that a client cannot publish a
 * stethoscope with a voice profile: Opus, in-band FEC on, DTX off (DTX would cut the quiet between
 * heartbeats), and a bitrate ceiling of at least 128 kbit/s. Returns a short reason, or undefined.
 * The examination camera's profile (contentHint, degradation preference) lives in the browser and
 * cannot be seen here.
 */
export function checkDeviceRtpParameters(
  source: DeviceMediaSource,
  rtpParameters: types.RtpParameters,
): string | undefined {
  if (source !== 'examination-audio') return undefined;
  const codec = (rtpParameters.codecs as types.RtpCodecParameters[] | undefined)?.[0];
  if (codec?.mimeType.toLowerCase() !== 'audio/opus') return 'a stethoscope is sent as Opus';
  const parameters = codec.parameters ?? {};
  if (Number(parameters.useinbandfec) !== 1) return 'a stethoscope needs in-band FEC (useinbandfec=1)';
  if (parameters.usedtx === undefined || Number(parameters.usedtx) !== 0)
    return 'a stethoscope needs DTX off (usedtx=0)';
  const encodings = rtpParameters.encodings ?? [];
  const ceiling = encodings[0]?.maxBitrate;
  if (ceiling === undefined || ceiling < STETHOSCOPE_MIN_BITRATE)
    return `a stethoscope needs a bitrate ceiling of at least ${STETHOSCOPE_MIN_BITRATE} bit/s`;
  return undefined;
}

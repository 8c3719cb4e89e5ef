import type { types } from 'mediasoup';

/** The header extension that carries a frame's capture instant (WebRTC's abs-capture-time). */
export const ABS_CAPTURE_TIME_URI = 'http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time';

/**
 * The producer's parameters without abs-capture-time. mediasoup (>= 3.2x) aligns the simulcast
 * streams of a producer, before switching a consumer from one to another, on the capture instants
 * of its sender: from abs-capture-time when the producer declares that extension, from RTCP
 * Sender Reports otherwise. mediasoup-client declares it for every Chromium producer, but Chromium
 * only sends it when asked (`headerExtensionOptions.absCaptureTime`); so a declared, never-sent
 * extension left the consumer stuck on the first stream it forwarded (no spatial layer switch,
 * issue #17). Sender Reports always come, so the worker is made to use them.
 */
export function withoutCaptureTimeExtension(rtpParameters: types.RtpParameters): types.RtpParameters {
  const headerExtensions = rtpParameters.headerExtensions;
  if (!headerExtensions?.some((ext) => ext.uri === ABS_CAPTURE_TIME_URI)) return rtpParameters;
  return {
    ...rtpParameters,
    headerExtensions: headerExtensions.filter((ext) => ext.uri !== ABS_CAPTURE_TIME_URI),
  };
}

import type { ConsumerDescription } from '../../peer/index.js';

export class JanusSdpError extends Error {
  override readonly name = 'JanusSdpError';
}

/**
 * Declares our video SSRCs as one simulcast group (`a=ssrc-group:SIM`, lowest layer first, as
 * browsers do) in the offer text sent to Janus: node-datachannel writes the SSRCs but no group, and
 * without it Janus would take the first SSRC as a single stream.
 */
export function withSimulcastGroup(offer: string, videoSsrcs: number[]): string {
  if (videoSsrcs.length < 2) return offer;
  const lines = offer.split(/\r?\n/);
  const out: string[] = [];
  let inVideo = false;
  let written = false;
  for (const line of lines) {
    if (line.startsWith('m=')) inVideo = line.startsWith('m=video');
    if (inVideo && !written && line.startsWith('a=ssrc:')) {
      out.push(`a=ssrc-group:SIM ${videoSsrcs.join(' ')}`);
      written = true;
    }
    out.push(line);
  }
  if (!written) throw new JanusSdpError('offer has no video SSRC lines to group');
  return out.join('\r\n');
}

const CODECS: Record<
  string,
  { kind: 'audio' | 'video'; mimeType: string; clockRate: number; channels?: number }
> = {
  opus: { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
  vp8: { kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
};

/**
 * The m-sections of Janus's subscriber offer as the Subscriber's stream descriptions: mid, the
 * Opus or VP8 payload type Janus chose, and the media SSRC it sends (not its RTX one).
 */
export function offeredStreams(offer: string): ConsumerDescription[] {
  const sections = offer.split(/\r?\nm=/).slice(1);
  const streams: ConsumerDescription[] = [];
  for (const section of sections) {
    const lines = section.split(/\r?\n/);
    const kind = lines[0]!.split(' ')[0];
    if (kind !== 'audio' && kind !== 'video') continue;
    // A rejected (port 0) or inactive section carries nothing to receive.
    if (lines[0]!.split(' ')[1] === '0' || /^a=inactive$/m.test(section)) continue;
    const mid = /^a=mid:(\S+)/m.exec(section)?.[1];
    let codec: { payloadType: number; spec: (typeof CODECS)[string] } | undefined;
    for (const match of section.matchAll(/^a=rtpmap:(\d+) ([A-Za-z0-9]+)\//gm)) {
      const spec = CODECS[match[2]!.toLowerCase()];
      if (spec?.kind === kind) {
        codec = { payloadType: Number(match[1]), spec };
        break;
      }
    }
    if (!mid || !codec) throw new JanusSdpError(`janus offered a ${kind} section without mid or known codec`);
    const retransmission = new Set(
      [...section.matchAll(/^a=ssrc-group:FID \d+ (\d+)/gm)].map((m) => Number(m[1])),
    );
    const ssrc = [...section.matchAll(/^a=ssrc:(\d+) /gm)]
      .map((m) => Number(m[1]))
      .find((s) => !retransmission.has(s));
    streams.push({
      kind,
      rtpParameters: {
        mid,
        codecs: [
          {
            mimeType: codec.spec.mimeType,
            payloadType: codec.payloadType,
            clockRate: codec.spec.clockRate,
            ...(codec.spec.channels ? { channels: codec.spec.channels } : {}),
          },
        ],
        headerExtensions: [],
        encodings: ssrc !== undefined ? [{ ssrc }] : [],
        rtcp: { cname: 'janus' },
      },
    });
  }
  if (streams.length === 0) throw new JanusSdpError('janus offered no audio or video section');
  return streams;
}

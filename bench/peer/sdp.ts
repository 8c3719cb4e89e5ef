import type { types } from 'mediasoup';

/** What a signalling server hands a client about one mediasoup WebRtcTransport. */
export interface RemoteTransportParams {
  iceParameters: types.IceParameters;
  iceCandidates: types.IceCandidate[];
  dtlsParameters: types.DtlsParameters;
}

export interface SdpCodec {
  payloadType: number;
  mimeType: string;
  clockRate: number;
  channels?: number;
  parameters?: Record<string, unknown>;
  rtcpFeedback?: types.RtcpFeedback[];
}

/** One m-section of the remote (server-side) answer, mirroring one of our local m-sections. */
export interface RemoteSection {
  mid: string;
  kind: types.MediaKind;
  /** The server's direction: it receives what we publish and sends what we subscribe to. */
  direction: 'recvonly' | 'sendonly';
  codecs: SdpCodec[];
  headerExtensions: { id: number; uri: string }[];
  /** SSRCs the server sends on this section; lets the peer route packets by SSRC. */
  ssrcs?: { ssrc: number; cname: string }[];
}

export class SdpError extends Error {
  override readonly name = 'SdpError';
}

function fmtpLine(codec: SdpCodec): string | undefined {
  const entries = Object.entries(codec.parameters ?? {}).filter(
    ([, v]) => typeof v === 'string' || typeof v === 'number',
  );
  if (entries.length === 0) return undefined;
  return `a=fmtp:${codec.payloadType} ${entries.map(([k, v]) => `${k}=${String(v)}`).join(';')}`;
}

/**
 * Builds the answer a mediasoup WebRtcTransport would give: ice-lite, DTLS passive (so the local peer
 * is the DTLS client, matching `role: 'client'` in transport.connect()) or, when the local peer is to
 * be the DTLS server, active; BUNDLE over one UDP 5-tuple.
 */
export function buildRemoteAnswer(
  transport: RemoteTransportParams,
  sections: RemoteSection[],
  localDtlsRole: 'client' | 'server' = 'client',
  application?: { mid: string; sctp: RemoteSctpParams },
): string {
  const fingerprint = transport.dtlsParameters.fingerprints.find((f) => f.algorithm === 'sha-256');
  if (!fingerprint) throw new SdpError('transport offers no sha-256 DTLS fingerprint');
  const udp = transport.iceCandidates.filter((c) => c.protocol === 'udp');
  if (udp.length === 0) throw new SdpError('transport offers no UDP ICE candidate');
  const lines: string[] = [
    'v=0',
    `o=mediasoup ${Date.now()} 1 IN IP4 0.0.0.0`,
    's=-',
    't=0 0',
    'a=ice-lite',
    `a=group:BUNDLE ${[...sections.map((s) => s.mid), ...(application ? [application.mid] : [])].join(' ')}`,
    'a=msid-semantic: WMS *',
  ];
  for (const [index, section] of sections.entries()) {
    lines.push(
      `m=${section.kind} 7 UDP/TLS/RTP/SAVPF ${section.codecs.map((c) => c.payloadType).join(' ')}`,
      'c=IN IP4 127.0.0.1',
      `a=mid:${section.mid}`,
      `a=${section.direction}`,
      `a=ice-ufrag:${transport.iceParameters.usernameFragment}`,
      `a=ice-pwd:${transport.iceParameters.password}`,
      `a=fingerprint:${fingerprint.algorithm} ${fingerprint.value}`,
      `a=setup:${localDtlsRole === 'client' ? 'passive' : 'active'}`,
      'a=rtcp-mux',
      'a=rtcp-rsize',
    );
    for (const codec of section.codecs) {
      const [, name] = codec.mimeType.split('/');
      const channels = codec.channels && codec.channels > 1 ? `/${codec.channels}` : '';
      lines.push(`a=rtpmap:${codec.payloadType} ${name}/${codec.clockRate}${channels}`);
      const fmtp = fmtpLine(codec);
      if (fmtp) lines.push(fmtp);
      for (const fb of codec.rtcpFeedback ?? []) {
        lines.push(`a=rtcp-fb:${codec.payloadType} ${fb.type}${fb.parameter ? ` ${fb.parameter}` : ''}`);
      }
    }
    for (const ext of section.headerExtensions) lines.push(`a=extmap:${ext.id} ${ext.uri}`);
    for (const s of section.ssrcs ?? []) lines.push(`a=ssrc:${s.ssrc} cname:${s.cname}`);
    // Candidates once: with BUNDLE every section shares the first section's transport.
    if (index === 0) {
      for (const c of udp) {
        lines.push(`a=candidate:${c.foundation} 1 udp ${c.priority} ${c.ip} ${c.port} typ host`);
      }
      lines.push('a=end-of-candidates');
    }
  }
  if (application) {
    lines.push(
      'm=application 7 UDP/DTLS/SCTP webrtc-datachannel',
      'c=IN IP4 127.0.0.1',
      `a=mid:${application.mid}`,
      `a=ice-ufrag:${transport.iceParameters.usernameFragment}`,
      `a=ice-pwd:${transport.iceParameters.password}`,
      `a=fingerprint:${fingerprint.algorithm} ${fingerprint.value}`,
      `a=setup:${localDtlsRole === 'client' ? 'passive' : 'active'}`,
      `a=sctp-port:${application.sctp.port}`,
      `a=max-message-size:${application.sctp.maxMessageSize}`,
    );
  }
  return lines.join('\r\n') + '\r\n';
}

/** Our DTLS parameters from our own offer: sha-256 fingerprint and our role (client unless told). */
export function localDtlsParameters(
  localSdp: string,
  role: 'client' | 'server' = 'client',
): types.DtlsParameters {
  const match = /^a=fingerprint:sha-256 ([0-9A-Fa-f:]+)\s*$/m.exec(localSdp);
  if (!match?.[1]) throw new SdpError('local description has no sha-256 fingerprint');
  return { role, fingerprints: [{ algorithm: 'sha-256', value: match[1].toUpperCase() }] };
}

/** A mediasoup transport's SCTP parameters, as `createTransport` returns them with `sctp: true`. */
export interface RemoteSctpParams {
  port: number;
  maxMessageSize: number;
}

/**
 * The answer of a mediasoup WebRtcTransport to an offer carrying only a data-channel section
 * (`mid`): SCTP over DTLS, the transport's SCTP port and largest message.
 */
export function buildRemoteDataAnswer(
  transport: RemoteTransportParams,
  sctp: RemoteSctpParams,
  mid: string,
  localDtlsRole: 'client' | 'server' = 'client',
): string {
  const fingerprint = transport.dtlsParameters.fingerprints.find((f) => f.algorithm === 'sha-256');
  if (!fingerprint) throw new SdpError('transport offers no sha-256 DTLS fingerprint');
  const udp = transport.iceCandidates.filter((c) => c.protocol === 'udp');
  if (udp.length === 0) throw new SdpError('transport offers no UDP ICE candidate');
  const lines = [
    'v=0',
    `o=mediasoup ${Date.now()} 1 IN IP4 0.0.0.0`,
    's=-',
    't=0 0',
    'a=ice-lite',
    `a=group:BUNDLE ${mid}`,
    'm=application 7 UDP/DTLS/SCTP webrtc-datachannel',
    'c=IN IP4 127.0.0.1',
    `a=mid:${mid}`,
    `a=ice-ufrag:${transport.iceParameters.usernameFragment}`,
    `a=ice-pwd:${transport.iceParameters.password}`,
    `a=fingerprint:${fingerprint.algorithm} ${fingerprint.value}`,
    `a=setup:${localDtlsRole === 'client' ? 'passive' : 'active'}`,
    `a=sctp-port:${sctp.port}`,
    `a=max-message-size:${sctp.maxMessageSize}`,
    ...udp.map((c) => `a=candidate:${c.foundation} 1 udp ${c.priority} ${c.ip} ${c.port} typ host`),
    'a=end-of-candidates',
  ];
  return lines.join('\r\n') + '\r\n';
}

/** The mid of the data-channel section of a local offer. */
export function applicationMid(localSdp: string): string {
  const section = localSdp.split(/\r?\nm=/).find((s) => s.startsWith('application'));
  const mid = section && /^a=mid:(\S+)/m.exec(section)?.[1];
  if (!mid) throw new SdpError('local description has no data-channel section');
  return mid;
}

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_ACCESS_CODE_POLICY } from '../auth/invitations.js';
import { resolveConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';

/**
 * The gateway's settings, grouped by concern. They come from the `phone` section of the server
 * configuration (src/config/schema.ts, the one description of every key, its bounds and default;
 * listed in docs/configuration.md and docs/phone.md); nothing here has a default of its own.
 */
export interface PhoneConfig {
  sip: {
    listenHost: string;
    /** null disables the transport; 0 picks a free port. */
    udpPort: number | null;
    tcpPort: number | null;
    tlsPort: number | null;
    tlsCertFile: string | null;
    tlsKeyFile: string | null;
    /** CAs trusted for outgoing TLS connections; the system's when null. */
    tlsCaFile: string | null;
    /** Host put in Via and Contact headers; listenHost when null. */
    publicHost: string | null;
    /** Open stream connections accepted at once (TCP plus TLS). */
    maxConnections: number;
  };
  rtp: {
    listenHost: string;
    /** Address written in SDP; listenHost when null. */
    announcedAddress: string | null;
    /** Port range for phone-facing RTP sockets; 0 and 0 let the system choose. */
    minPort: number;
    maxPort: number;
    /** Address of the gateway's relay sockets and of the mediasoup plain transports (loopback). */
    mediasoupListenIp: string;
    /** Latch onto the source of the phone's first RTP packet (symmetric RTP, for NATed trunks). */
    symmetric: boolean;
    /** A call without RTP from the phone for this long ends. */
    timeoutS: number;
  };
  trunk: {
    /** Source addresses (exact IPs) trusted to send requests, e.g. the operator's SBC. */
    allowedSources: string[];
    /** Where dial-out INVITEs go; the request URI's host when null. */
    outboundProxy: string | null;
    authUsername: string | null;
    authPassword: string | null;
    /** Caller ID put in the From of dial-out calls (user part only). */
    fromUser: string;
  };
  registration: {
    registrar: string | null;
    aor: string | null;
    expiresS: number;
  };
  pin: {
    /** Digits of a PIN: the invitation access code's length (entry also ends at '#'). */
    length: number;
    maxAttemptsPerCall: number;
    digitTimeoutS: number;
    callerMaxFailures: number;
    callerWindowS: number;
    callerLockoutS: number;
    globalAttemptsPerMinute: number;
    globalBurst: number;
  };
  /** SRTP towards the trunk: SDES over SIP TLS only. */
  srtp: 'off' | 'offered' | 'required';
  language: 'fr' | 'en';
  /** Folder holding the generated prompt files (`<lang>/<name>.ulaw`). */
  promptsDir: string;
  noticeVersion: string;
  maxCalls: number;
  consentTimeoutS: number;
  ringTimeoutS: number;
}

export const PROMPTS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'assets',
  'prompts',
);

/**
 * The gateway's settings from the server configuration. A PIN is an invitation's access code, so
 * its length is the access-code length; media relays stay on the worker's listen IP (loopback when
 * the worker listens on every address).
 */
export function phoneConfigFrom(config: Config): PhoneConfig {
  const p = config.phone;
  return {
    sip: {
      listenHost: p.sipListenHost,
      udpPort: p.sipUdpPort,
      tcpPort: p.sipTcpPort,
      tlsPort: p.sipTlsPort,
      tlsCertFile: p.sipTlsCertFile,
      tlsKeyFile: p.sipTlsKeyFile,
      tlsCaFile: p.sipTlsCaFile,
      publicHost: p.sipPublicHost,
      maxConnections: p.sipMaxConnections,
    },
    rtp: {
      listenHost: p.rtpListenHost,
      announcedAddress: p.rtpAnnouncedAddress,
      minPort: p.rtpMinPort,
      maxPort: p.rtpMaxPort,
      mediasoupListenIp: config.media.listenIp === '0.0.0.0' ? '127.0.0.1' : config.media.listenIp,
      symmetric: p.rtpSymmetric,
      timeoutS: p.mediaTimeoutS,
    },
    trunk: {
      allowedSources: [...p.trunkAllowedSources],
      outboundProxy: p.outboundProxy,
      authUsername: p.authUsername,
      authPassword: p.authPassword,
      fromUser: p.fromUser,
    },
    registration: { registrar: p.registrar, aor: p.aor, expiresS: p.registrationExpiresS },
    pin: {
      length: DEFAULT_ACCESS_CODE_POLICY.digits,
      maxAttemptsPerCall: p.pinMaxAttemptsPerCall,
      digitTimeoutS: p.pinDigitTimeoutS,
      callerMaxFailures: p.pinCallerMaxFailures,
      callerWindowS: p.pinCallerWindowS,
      callerLockoutS: p.pinCallerLockoutS,
      globalAttemptsPerMinute: p.pinGlobalAttemptsPerMinute,
      globalBurst: p.pinGlobalBurst,
    },
    srtp: p.srtp,
    language: p.language,
    promptsDir: PROMPTS_DIR,
    noticeVersion: p.noticeVersion,
    maxCalls: p.maxCalls,
    consentTimeoutS: p.consentTimeoutS,
    ringTimeoutS: p.ringTimeoutS,
  };
}

/** The schema's defaults. */
export const DEFAULT_PHONE_CONFIG: PhoneConfig = phoneConfigFrom(resolveConfig({}));

type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K];
};

/** Defaults overlaid with the given values (one level of sections); for embedding and tests. */
export function phoneConfig(overrides: DeepPartial<PhoneConfig> = {}): PhoneConfig {
  const base = structuredClone(DEFAULT_PHONE_CONFIG);
  return {
    ...base,
    ...overrides,
    sip: { ...base.sip, ...overrides.sip },
    rtp: { ...base.rtp, ...overrides.rtp },
    trunk: { ...base.trunk, ...overrides.trunk },
    registration: { ...base.registration, ...overrides.registration },
    pin: { ...base.pin, ...overrides.pin },
  };
}

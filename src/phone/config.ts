/**
 * Settings of the phone gateway. Kept here until they are merged into src/config/schema.ts as a
 * `phone` section; every key, its meaning and default is listed in docs/phone.md.
 */
export interface PhoneConfig {
  sip: {
    /** Address the SIP sockets bind. */
    listenHost: string;
    /** UDP port; null disables UDP; 0 picks a free port (tests). */
    udpPort: number | null;
    /** TCP port; null disables TCP. */
    tcpPort: number | null;
    /** TLS port; used only when both certificate files are set. */
    tlsPort: number | null;
    tlsCertFile: string | null;
    tlsKeyFile: string | null;
    /** Host put in Via and Contact headers (a public name or address); listenHost when null. */
    publicHost: string | null;
    /** Open stream connections accepted at once (TCP plus TLS). */
    maxConnections: number;
  };
  rtp: {
    /** Address the phone-facing RTP sockets bind. */
    listenHost: string;
    /** Address written in SDP; listenHost when null. */
    announcedAddress: string | null;
    /** Port range for phone-facing RTP sockets; 0 and 0 let the system choose (tests). */
    minPort: number;
    maxPort: number;
    /** Address of the gateway's relay sockets and of the mediasoup plain transports (loopback). */
    mediasoupListenIp: string;
  };
  trunk: {
    /** Source addresses (exact IPs) trusted to send requests, e.g. the operator's SBC. */
    allowedSources: string[];
    /** Where dial-out INVITEs go (`sip:host:port;transport=udp`); the request URI's host when null. */
    outboundProxy: string | null;
    /** Credentials used to answer 401/407 challenges on dial-out and registration. */
    authUsername: string | null;
    authPassword: string | null;
    /** Caller ID put in the From of dial-out calls (user part only). */
    fromUser: string;
  };
  registration: {
    /** Registrar URI (`sip:registrar.example:5060`); null means trunk-by-address only. */
    registrar: string | null;
    /** Address of record to register (`sip:user@domain`). */
    aor: string | null;
    expiresS: number;
  };
  pin: {
    /** Digits of a PIN; entry ends at this length or at '#'. */
    length: number;
    /** Wrong PINs tolerated in one call before the gateway hangs up. */
    maxAttemptsPerCall: number;
    /** Seconds of silence after which a partial PIN entry counts as an attempt. */
    digitTimeoutS: number;
    /** Wrong PINs from one caller number within the window before it is locked out. */
    callerMaxFailures: number;
    /** Wrong PINs from everyone within the window before all PIN entry is locked out. */
    globalMaxFailures: number;
    failureWindowS: number;
    lockoutS: number;
  };
  /** Language of prompts: French by default. */
  language: 'fr' | 'en';
  /** Folder holding the generated prompt files (`<lang>/<name>.ulaw`). */
  promptsDir: string;
  /** Version of the spoken notice a consent refers to, journalled with it. */
  noticeVersion: string;
  /** Concurrent calls; further INVITEs get 486/503. */
  maxCalls: number;
  /** Seconds to press 1 after the consent question before the call ends. */
  consentTimeoutS: number;
  /** Seconds a dial-out call may ring before it is cancelled. */
  ringTimeoutS: number;
}

export const DEFAULT_PHONE_CONFIG: PhoneConfig = {
  sip: {
    listenHost: '127.0.0.1',
    udpPort: 5060,
    tcpPort: 5060,
    tlsPort: null,
    tlsCertFile: null,
    tlsKeyFile: null,
    publicHost: null,
    maxConnections: 256,
  },
  rtp: {
    listenHost: '127.0.0.1',
    announcedAddress: null,
    minPort: 50000,
    maxPort: 50999,
    mediasoupListenIp: '127.0.0.1',
  },
  trunk: {
    allowedSources: [],
    outboundProxy: null,
    authUsername: null,
    authPassword: null,
    fromUser: 'teleconsult',
  },
  registration: { registrar: null, aor: null, expiresS: 600 },
  pin: {
    length: 6,
    maxAttemptsPerCall: 3,
    digitTimeoutS: 10,
    callerMaxFailures: 6,
    globalMaxFailures: 100,
    failureWindowS: 900,
    lockoutS: 900,
  },
  language: 'fr',
  promptsDir: 'assets/prompts',
  noticeVersion: 'phone-notice-1',
  maxCalls: 50,
  consentTimeoutS: 30,
  ringTimeoutS: 60,
};

type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K];
};

/** Defaults overlaid with the given values (one level of sections). */
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

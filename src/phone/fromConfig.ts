import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/schema.js';
import { DEFAULT_ACCESS_CODE_POLICY } from '../auth/invitations.js';
import { phoneConfig, type PhoneConfig } from './config.js';

const PROMPTS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'assets',
  'prompts',
);

/**
 * The gateway's settings from the server configuration (`phone` section). A PIN is an
 * invitation's access code, so its length is the access-code length; media relays stay on the
 * same address as the worker's listen IP.
 */
export function phoneConfigFrom(config: Config): PhoneConfig {
  const p = config.phone;
  return phoneConfig({
    sip: {
      listenHost: p.sipListenHost,
      udpPort: p.sipUdpPort,
      tcpPort: p.sipTcpPort,
      tlsPort: p.sipTlsPort,
      tlsCertFile: p.sipTlsCertFile,
      tlsKeyFile: p.sipTlsKeyFile,
      publicHost: p.sipPublicHost,
    },
    rtp: {
      listenHost: p.rtpListenHost,
      announcedAddress: p.rtpAnnouncedAddress,
      minPort: p.rtpMinPort,
      maxPort: p.rtpMaxPort,
      mediasoupListenIp: config.media.listenIp === '0.0.0.0' ? '127.0.0.1' : config.media.listenIp,
    },
    trunk: {
      allowedSources: p.trunkAllowedSources,
      outboundProxy: p.outboundProxy,
      authUsername: p.authUsername,
      authPassword: p.authPassword,
      fromUser: p.fromUser,
    },
    registration: { registrar: p.registrar, aor: p.aor, expiresS: p.registrationExpiresS },
    pin: { length: DEFAULT_ACCESS_CODE_POLICY.digits, maxAttemptsPerCall: p.maxPinAttemptsPerCall },
    language: p.language,
    promptsDir: PROMPTS_DIR,
    noticeVersion: p.noticeVersion,
    maxCalls: p.maxCalls,
  });
}

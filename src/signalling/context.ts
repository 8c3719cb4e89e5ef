import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { JoinTokenVerifier } from '../auth/joinTokens.js';
import type { RoomRegistry } from '../rooms/roomRegistry.js';
import type { InvitationStore } from '../auth/invitations.js';
import type { ConsentRegistry } from '../consent/consentRegistry.js';
import type { RoomService } from '../rooms/roomService.js';

/** The services signalling handlers use. */
export interface SignallingContext {
  config: Config;
  log: Logger;
  metrics: Metrics;
  tokens: JoinTokenVerifier;
  rooms: RoomRegistry;
  invitations: InvitationStore;
  consentTexts: ConsentRegistry;
  /** Finds, joins and resumes rooms, wherever they live (local or clustered). */
  roomService: RoomService;
}

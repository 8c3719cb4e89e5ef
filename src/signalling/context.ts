import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { JoinTokenVerifier } from '../auth/joinTokens.js';
import type { RoomRegistry } from '../rooms/roomRegistry.js';
import type { InvitationStore } from '../auth/invitations.js';
import type { ConsentRegistry } from '../consent/consentRegistry.js';
import type { ClusterRouting } from '../cluster/clusterNode.js';

/** The services signalling handlers use. */
export interface SignallingContext {
  config: Config;
  log: Logger;
  metrics: Metrics;
  tokens: JoinTokenVerifier;
  rooms: RoomRegistry;
  invitations: InvitationStore;
  consentTexts: ConsentRegistry;
  /** Cluster mode: the room may live on another node, or come here from a dead one. */
  cluster?: ClusterRouting | undefined;
}

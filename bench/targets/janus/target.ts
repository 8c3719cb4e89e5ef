import type { ServerPids, SessionHandles, Target, TargetStartOptions } from '../../harness/target.js';
import { TargetError } from '../../harness/target.js';

/**
 * Target `janus` (placeholder): Debian's `janus` package with the VideoRoom plugin, for comparison.
 * Not implemented yet. What is known to work on these machines (shared/design/mediasoup-worker.md):
 *
 * 1. Janus 1.1.2 (libnice) gathers no loopback candidates. Create a network namespace joined to the
 *    root namespace by a veth pair with addresses of our own; start Janus inside it
 *    (`ip netns exec NS janus -F CONFIG_DIR`) from a copied configuration whose `ice_enforce_list`
 *    names the namespace's veth; bind the load peers to the root side of the veth (`bindAddress`).
 *    Delete the namespace in stop().
 * 2. Janus waits for trickle completion: after an offer or answer carrying its candidates inline,
 *    send a trickle `{"completed": true}`.
 * 3. A VideoRoom subscriber can join a feed only once the publisher's PeerConnection is up (error
 *    428 "No such feed" before that): join subscribers after the publisher is connected.
 * 4. Janus speaks SDP, not mediasoup parameters: this target needs an SDP path in the peers
 *    (PeerLink with a remote description from Janus instead of one built from ICE/DTLS parameters)
 *    and a `ParticipantSignalling` adapter (or a second signalling shape in the harness).
 * 5. serverPids(): the janus process (no separate workers).
 */
export class JanusTarget implements Target {
  readonly name = 'janus';

  start(_options: TargetStartOptions): Promise<void> {
    return Promise.reject(
      new TargetError(
        'target janus is not implemented yet (what blocks it: bench/README.md, section Janus; janus is ' +
          'installed with apt-get install -y janus)',
      ),
    );
  }

  openSession(_index: number): Promise<SessionHandles> {
    return Promise.reject(new TargetError('target janus is not implemented yet'));
  }

  serverPids(): ServerPids {
    return { workers: [] };
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}

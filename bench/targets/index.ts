import type { Target } from '../harness/target.js';
import { BareTarget } from './bare/target.js';
import { JanusTarget } from './janus/target.js';
import { SelfTarget } from './self/target.js';

/** Every target the CLI knows, by name. A new target registers its factory here. */
export const TARGETS: Record<string, () => Target> = {
  bare: () => new BareTarget(),
  /** The same, on the engine this project ran before (mediasoup 3.12.16), for engine comparisons. */
  'bare-legacy': () => new BareTarget('legacy'),
  self: () => new SelfTarget(),
  /** Debian's Janus VideoRoom in a network namespace (root; installs the package when missing). */
  janus: () => new JanusTarget(),
};

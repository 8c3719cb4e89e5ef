import t from 'tap';
import {
  ADMISSION_EVENTS,
  ADMISSION_STATES,
  ADMISSION_TRANSITIONS,
  nextState,
  exchangesMedia,
} from '../../src/rooms/admission.js';
import type { AdmissionEvent } from '../../src/rooms/admission.js';
import type { AdmissionState } from '../../src/protocol/messages.js';

/**
 * The expected transitions, written out independently of the implementation: one row per state,
 * `event -> next state`; every cell not listed must be refused.
 */
const EXPECTED: Record<AdmissionState, string> = {
  invited: 'arrive->waiting arriveAdmitted->admitted expire->expired remove->removed',
  waiting: 'consent->consented admit->admitted hold->waiting decline->declined leave->left remove->removed',
  consented:
    'withdrawConsent->waiting admit->admitted hold->consented decline->declined leave->left remove->removed',
  admitted: 'startMedia->in-call withdrawConsent->left leave->left remove->removed',
  'in-call': 'startMedia->in-call withdrawConsent->left leave->left remove->removed',
  left: '',
  declined: '',
  expired: '',
  removed: '',
};

t.test(
  'every state and every event of the admission table is checked against the documented table',
  async (t) => {
    let cells = 0;
    for (const state of ADMISSION_STATES) {
      const allowed = new Map(
        EXPECTED[state]
          .split(' ')
          .filter(Boolean)
          .map((pair) => pair.split('->') as [AdmissionEvent, AdmissionState]),
      );
      for (const event of ADMISSION_EVENTS) {
        cells++;
        t.equal(
          nextState(state, event),
          allowed.get(event),
          `${state} --${event}--> ${allowed.get(event) ?? 'refused'}`,
        );
      }
    }
    t.equal(cells, 9 * 11, 'all 99 cells checked');
    t.same(
      Object.keys(ADMISSION_TRANSITIONS).sort(),
      [...ADMISSION_STATES].sort(),
      'the table covers every state',
    );
  },
);

t.test('only admitted and in-call participants exchange media', async (t) => {
  t.same(
    ADMISSION_STATES.filter((s) => exchangesMedia(s)),
    ['admitted', 'in-call'],
  );
});

t.test('terminal states allow nothing; every state is reachable from invited', async (t) => {
  const reachable = new Set<AdmissionState>(['invited']);
  let grew = true;
  while (grew) {
    grew = false;
    for (const state of [...reachable]) {
      for (const next of Object.values(ADMISSION_TRANSITIONS[state])) {
        if (next && !reachable.has(next)) {
          reachable.add(next);
          grew = true;
        }
      }
    }
  }
  t.same([...reachable].sort(), [...ADMISSION_STATES].sort());
  for (const terminal of ['left', 'declined', 'expired', 'removed'] as const) {
    t.same(ADMISSION_TRANSITIONS[terminal], {}, `${terminal} is terminal`);
  }
});

import type { AdmissionState } from './messages.js';

/**
 * The permission table: for each role, how it is admitted and in which admission states it may
 * perform each action. It is the one source for the server (rooms/ and signalling/ ask `permits`),
 * the protocol's `Role` type (and so the SDK's types), docs/authorization.md (whose "Permission
 * table" section is this table rendered, kept in step by tests/hostile/permissions.test.ts) and the
 * authorization test, which puts every role in every state and checks every request.
 *
 * A new role is one more row here; see docs/authorization.md ("Adding a role") for the rest.
 */

/** How a role gets from arrival to admission (the states are those of admission.ts). */
export type AdmissionRule =
  /** Admitted on arrival (no waiting room). */
  | 'on-arrival'
  /** Waits; admitted once it gave its own teleconsultation consent (and, with a waiting room, the practitioner admits). */
  | 'own-consent'
  /** A third party: waits; admitted once the patient's third-party consent covers it and the practitioner approves. */
  | 'patient-consent';

export type Action =
  /** Pre-call check: loopback transports, `produce` on them, `reportPrecheck`. */
  | 'precheck'
  /**
   * Connect ahead: room transports created and connected (ICE, DTLS) before admission, so that an
   * admission only has to produce and consume. Nothing flows on them but the participant's own
   * warm-up data channel, which loops back to itself; `publish` and `receive` still wait.
   */
  | 'prepare'
  /** Send media to the room: `produce` on a room transport, `produceData`. */
  | 'publish'
  /** Receive media from the room: room transports, `consume`, `e2eeRelay`. */
  | 'receive'
  /**
   * Publish a device source (`examination-video`, `examination-audio`, `vital-signs` readings):
   * the device holder's side only (docs/devices.md). Also needs `publish`.
   */
  | 'publishDevice'
  /** Receive device sources and device readings (examination media, data channels of others). */
  | 'receiveDeviceData'
  /** Ask a device holder for a device source (`requestDeviceSource`: "show the ear"). */
  | 'requestDevice'
  /** `getWaitingList`, `hold`, `admit`, `decline`. */
  | 'manageWaitingRoom'
  /** `giveConsent`, `withdrawConsent` (teleconsultation, and third-party covering someone). */
  | 'consent'
  /** Receive the others' `qualityUpdate` (everyone gets its own). */
  | 'monitorQuality';

export const ACTIONS: readonly Action[] = [
  'precheck',
  'prepare',
  'publish',
  'receive',
  'publishDevice',
  'receiveDeviceData',
  'requestDevice',
  'manageWaitingRoom',
  'consent',
  'monitorQuality',
];

const WAITING = ['waiting', 'consented'] as const satisfies readonly AdmissionState[];
const ADMITTED = ['admitted', 'in-call'] as const satisfies readonly AdmissionState[];
const PRESENT = [...WAITING, ...ADMITTED] as const;
const NEVER = [] as const;

export interface RolePermissions {
  admission: AdmissionRule;
  /**
   * A third party: shown to the patient as a consent request, and its video is served after the
   * practitioner's and the patient's when bandwidth is short.
   */
  thirdParty: boolean;
  actions: Readonly<Record<Action, readonly AdmissionState[]>>;
}

export const PERMISSIONS = {
  practitioner: {
    admission: 'on-arrival',
    thirdParty: false,
    actions: {
      precheck: NEVER,
      prepare: ADMITTED,
      publish: ADMITTED,
      receive: ADMITTED,
      publishDevice: NEVER,
      receiveDeviceData: ADMITTED,
      requestDevice: ADMITTED,
      manageWaitingRoom: ADMITTED,
      consent: NEVER,
      monitorQuality: ADMITTED,
    },
  },
  patient: {
    admission: 'own-consent',
    thirdParty: false,
    actions: {
      precheck: WAITING,
      prepare: PRESENT,
      publish: ADMITTED,
      receive: ADMITTED,
      publishDevice: ADMITTED,
      receiveDeviceData: NEVER,
      requestDevice: NEVER,
      manageWaitingRoom: NEVER,
      consent: PRESENT,
      monitorQuality: NEVER,
    },
  },
  assistant: {
    admission: 'patient-consent',
    thirdParty: true,
    actions: {
      precheck: WAITING,
      prepare: PRESENT,
      publish: ADMITTED,
      receive: ADMITTED,
      publishDevice: ADMITTED,
      receiveDeviceData: NEVER,
      requestDevice: NEVER,
      manageWaitingRoom: NEVER,
      consent: NEVER,
      monitorQuality: NEVER,
    },
  },
  observer: {
    admission: 'patient-consent',
    thirdParty: true,
    actions: {
      precheck: WAITING,
      prepare: PRESENT,
      publish: ADMITTED,
      receive: ADMITTED,
      publishDevice: NEVER,
      receiveDeviceData: NEVER,
      requestDevice: NEVER,
      manageWaitingRoom: NEVER,
      consent: NEVER,
      monitorQuality: NEVER,
    },
  },
} as const satisfies Record<string, RolePermissions>;

export type Role = keyof typeof PERMISSIONS;

/** Every role, in the table's order (the protocol's `Role` schema is built from it). */
export const ROLES = Object.keys(PERMISSIONS) as Role[];

/** Whether `role` may perform `action` while in `state`. */
export function permits(role: Role, state: AdmissionState, action: Action): boolean {
  return (PERMISSIONS[role].actions[action] as readonly AdmissionState[]).includes(state);
}

/** Whether `role` may perform `action` in some state (otherwise FORBIDDEN_FOR_ROLE, whatever the state). */
export function roleMay(role: Role, action: Action): boolean {
  return PERMISSIONS[role].actions[action].length > 0;
}

export function admissionRule(role: Role): AdmissionRule {
  return PERMISSIONS[role].admission;
}

export function isThirdParty(role: Role): boolean {
  return PERMISSIONS[role].thirdParty;
}

/** The table as the Markdown that docs/authorization.md carries (checked by a test). */
export function permissionTableMarkdown(): string {
  const lines = [
    `| role | admission | third party | ${ACTIONS.join(' | ')} |`,
    `| --- | --- | --- | ${ACTIONS.map(() => '---').join(' | ')} |`,
  ];
  for (const role of ROLES) {
    const entry: RolePermissions = PERMISSIONS[role];
    const cells = ACTIONS.map((action) => {
      const states = entry.actions[action];
      return states.length ? states.map((s) => `\`${s}\``).join(', ') : '—';
    });
    lines.push(
      `| ${role} | ${entry.admission} | ${entry.thirdParty ? 'yes' : 'no'} | ${cells.join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

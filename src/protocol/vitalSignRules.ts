import { DEVICE_TYPE_SOURCE, type DeviceType } from './devices.js';

/**
 * Vital-sign readings, as a device holder's SDK sends them to the practitioner's over a
 * `vital-signs` data channel (docs/devices.md). One reading per message, JSON; in an E2EE room the
 * JSON is SFrame-encrypted by the sender's SDK and the server relays ciphertext only.
 *
 * The measures table below is the one source: the TypeBox schema (vitalSigns.ts, the
 * specification) and `checkVitalSign` here (the SDK's validator, which keeps TypeBox out of the
 * browser bundle) are both built from it, and a test checks that they accept and refuse the same
 * readings.
 */
export const VITAL_SIGNS_LABEL = 'vital-signs';
export const VITAL_SIGNS_PROTOCOL = 'teleconsult.vitals.v1';
/** A reading is a few hundred bytes; anything larger is refused unread. */
export const VITAL_SIGN_MAX_BYTES = 1024;

/** Units are UCUM codes (as in FHIR Observation); ranges are what a device can plausibly report. */
export const MEASURES = {
  spo2: { '%': [50, 100] },
  'pulse-rate': { '/min': [20, 300] },
  'respiratory-rate': { '/min': [2, 80] },
  temperature: { Cel: [30, 45] },
  glucose: { 'mg/dL': [10, 1000], 'mmol/L': [0.5, 55] },
  weight: { kg: [0.3, 400] },
} as const satisfies Record<string, Record<string, readonly [number, number]>>;
export type ScalarMeasure = keyof typeof MEASURES;

/** Blood pressure is one reading of two values. */
export const BLOOD_PRESSURE = { unit: 'mm[Hg]', systolic: [40, 300], diastolic: [20, 200] } as const;

export type VitalSignKind = ScalarMeasure | 'blood-pressure';
export const VITAL_SIGN_KINDS = [...(Object.keys(MEASURES) as ScalarMeasure[]), 'blood-pressure'] as const;

/** Devices that send readings (devices.ts: those feeding `vital-signs`). */
export const VITAL_SIGN_DEVICE_TYPES = (Object.keys(DEVICE_TYPE_SOURCE) as DeviceType[]).filter(
  (type) => DEVICE_TYPE_SOURCE[type] === 'vital-signs',
);

/** Readings taken from 2020 to 2100 (epoch milliseconds): a timestamp in seconds is caught. */
export const TIMESTAMP_RANGE = [Date.UTC(2020, 0, 1), Date.UTC(2100, 0, 1)] as const;
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

interface Common {
  seq: number;
  timestamp: number;
  deviceType: DeviceType;
}
export type ScalarReading = {
  [K in ScalarMeasure]: Common & { kind: K; value: number; unit: keyof (typeof MEASURES)[K] & string };
}[ScalarMeasure];
export type BloodPressureReading = Common & {
  kind: 'blood-pressure';
  systolic: number;
  diastolic: number;
  unit: typeof BLOOD_PRESSURE.unit;
};
/** One reading (the TypeScript face of `VitalSignReading`). */
export type VitalSign = ScalarReading | BloodPressureReading;

export type VitalSignCheck = { ok: true; reading: VitalSign } | { ok: false; reason: string };

function inRange(value: unknown, [minimum, maximum]: readonly [number, number]): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= minimum && value <= maximum;
}

function isInteger(value: unknown, range: readonly [number, number]): value is number {
  return Number.isInteger(value) && inRange(value, range);
}

function exactKeys(value: Record<string, unknown>, keys: readonly string[]): boolean {
  const own = Object.keys(value);
  return own.length === keys.length && keys.every((k) => Object.prototype.hasOwnProperty.call(value, k));
}

/**
 * Checks a parsed message against the measures table: what the TypeBox schema says, plus one rule
 * a schema cannot say (a diastolic pressure below the systolic). The reason names the rule, never
 * the value (a reading is health data).
 */
export function checkVitalSign(value: unknown): VitalSignCheck {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, reason: 'not an object' };
  const v = value as Record<string, unknown>;
  if (!isInteger(v.seq, [0, MAX_SEQ])) return { ok: false, reason: 'seq' };
  if (!isInteger(v.timestamp, TIMESTAMP_RANGE)) return { ok: false, reason: 'timestamp' };
  if (!(VITAL_SIGN_DEVICE_TYPES as readonly unknown[]).includes(v.deviceType))
    return { ok: false, reason: 'deviceType' };
  if (v.kind === 'blood-pressure') {
    if (!exactKeys(v, ['seq', 'timestamp', 'deviceType', 'kind', 'systolic', 'diastolic', 'unit']))
      return { ok: false, reason: 'members' };
    if (v.unit !== BLOOD_PRESSURE.unit) return { ok: false, reason: 'unit' };
    if (!inRange(v.systolic, BLOOD_PRESSURE.systolic)) return { ok: false, reason: 'systolic' };
    if (!inRange(v.diastolic, BLOOD_PRESSURE.diastolic)) return { ok: false, reason: 'diastolic' };
    if (v.diastolic >= v.systolic) return { ok: false, reason: 'diastolic not below systolic' };
    return { ok: true, reading: v as unknown as VitalSign };
  }
  if (typeof v.kind !== 'string' || !Object.prototype.hasOwnProperty.call(MEASURES, v.kind))
    return { ok: false, reason: 'kind' };
  if (!exactKeys(v, ['seq', 'timestamp', 'deviceType', 'kind', 'value', 'unit']))
    return { ok: false, reason: 'members' };
  const units = MEASURES[v.kind as ScalarMeasure] as Record<string, readonly [number, number]>;
  const range = typeof v.unit === 'string' ? units[v.unit] : undefined;
  if (!range || !Object.prototype.hasOwnProperty.call(units, v.unit as string))
    return { ok: false, reason: 'unit' };
  if (!inRange(v.value, range)) return { ok: false, reason: 'value' };
  return { ok: true, reading: v as unknown as VitalSign };
}

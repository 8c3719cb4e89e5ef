import { Type, type TObject, type TSchema } from '@sinclair/typebox';
import {
  BLOOD_PRESSURE,
  MAX_SEQ,
  MEASURES,
  TIMESTAMP_RANGE,
  VITAL_SIGN_DEVICE_TYPES,
} from './vitalSignRules.js';

/**
 * The TypeBox specification of a vital-sign reading, built from the measures table of
 * vitalSignRules.ts (which the SDK validates with, without TypeBox); a test checks both agree.
 */
const common = {
  /** Per channel, from 0, +1 per reading: the receiver drops repeats and reorderings. */
  seq: Type.Integer({ minimum: 0, maximum: MAX_SEQ }),
  /** When the device measured (epoch ms). */
  timestamp: Type.Integer({ minimum: TIMESTAMP_RANGE[0], maximum: TIMESTAMP_RANGE[1] }),
  deviceType: Type.Union(VITAL_SIGN_DEVICE_TYPES.map((t) => Type.Literal(t))),
};
const strict = { additionalProperties: false } as const;

function scalarSchemas(): TObject[] {
  const schemas: TObject[] = [];
  for (const [kind, units] of Object.entries(MEASURES)) {
    for (const [unit, [minimum, maximum]] of Object.entries(
      units as Record<string, readonly [number, number]>,
    ))
      schemas.push(
        Type.Object(
          {
            ...common,
            kind: Type.Literal(kind),
            value: Type.Number({ minimum, maximum }),
            unit: Type.Literal(unit),
          },
          strict,
        ),
      );
  }
  return schemas;
}

/** The specification of a reading (one object per measure and unit). */
export const VitalSignReading = Type.Union([
  ...scalarSchemas(),
  Type.Object(
    {
      ...common,
      kind: Type.Literal('blood-pressure'),
      systolic: Type.Number({ minimum: BLOOD_PRESSURE.systolic[0], maximum: BLOOD_PRESSURE.systolic[1] }),
      diastolic: Type.Number({
        minimum: BLOOD_PRESSURE.diastolic[0],
        maximum: BLOOD_PRESSURE.diastolic[1],
      }),
      unit: Type.Literal(BLOOD_PRESSURE.unit),
    },
    strict,
  ),
]) as TSchema;

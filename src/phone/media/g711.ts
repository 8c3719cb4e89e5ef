/**
 * G.711 μ-law and A-law (ITU-T G.711), sample by sample, with lookup tables for decoding.
 * Linear samples are signed 16-bit.
 */

const BIAS = 0x84;
const CLIP = 32635;

export function linearToUlaw(sample: number): number {
  let value = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = value < 0 ? 0x80 : 0;
  if (value < 0) value = -value;
  if (value > CLIP) value = CLIP;
  value += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (value & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (value >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

export function ulawToLinear(byte: number): number {
  const value = ~byte & 0xff;
  const exponent = (value >> 4) & 0x07;
  const mantissa = value & 0x0f;
  const magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
  return value & 0x80 ? -magnitude : magnitude;
}

export function linearToAlaw(sample: number): number {
  let value = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = value >= 0 ? 0x80 : 0;
  if (value < 0) value = -value - 1;
  value >>= 3; // A-law works on 13-bit magnitudes.
  let encoded: number;
  if (value < 32) {
    encoded = value >> 1;
  } else {
    let exponent = 1;
    while (value >= 64 && exponent < 7) {
      value >>= 1;
      exponent++;
    }
    encoded = (exponent << 4) | ((value >> 1) & 0x0f);
  }
  return (sign | encoded) ^ 0x55;
}

export function alawToLinear(byte: number): number {
  const value = byte ^ 0x55;
  const exponent = (value >> 4) & 0x07;
  const mantissa = value & 0x0f;
  let magnitude = exponent === 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);
  if (magnitude > 32767) magnitude = 32767;
  return value & 0x80 ? magnitude : -magnitude;
}

const ULAW_TABLE = Int16Array.from({ length: 256 }, (_, byte) => ulawToLinear(byte));
const ALAW_TABLE = Int16Array.from({ length: 256 }, (_, byte) => alawToLinear(byte));

export type G711Law = 'PCMU' | 'PCMA';

export function decodeG711(
  law: G711Law,
  payload: Uint8Array,
  out = new Int16Array(payload.length),
): Int16Array {
  const table = law === 'PCMU' ? ULAW_TABLE : ALAW_TABLE;
  for (let i = 0; i < payload.length; i++) out[i] = table[payload[i] ?? 0] ?? 0;
  return out;
}

export function encodeG711(law: G711Law, samples: Int16Array, out = Buffer.alloc(samples.length)): Buffer {
  const encode = law === 'PCMU' ? linearToUlaw : linearToAlaw;
  for (let i = 0; i < samples.length; i++) out[i] = encode(samples[i] ?? 0);
  return out;
}

/** The encoded byte of digital silence. */
export function g711Silence(law: G711Law): number {
  return law === 'PCMU' ? 0xff : 0xd5;
}

import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * mediasoup (since 3.13) copies every parameter object it takes in or hands out through
 * `structuredClone`, which in Node serialises and deserialises through V8's value serializer: a few
 * microseconds for each small object. A join makes dozens of such copies (RTP capabilities and
 * consumable parameters twice per consumer, once in `canConsume` and again in `consume`), and with
 * them mediasoup 3.27's Node library costs about twice the CPU per join of 3.12's
 * (docs/engine.md, engine-control). Those values are plain JSON-like data (RTP parameters,
 * capabilities, tuples, scores), for which a recursive copy gives the same result far cheaper.
 */

/** Deeper than any parameter object mediasoup copies; past it the value may be cyclic. */
const MAX_DEPTH = 32;

class NotPlainData extends Error {}
const NOT_PLAIN = new NotPlainData();

function copy(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null) {
    // structuredClone rejects functions and symbols; leave that verdict to it.
    if (typeof value === 'function' || typeof value === 'symbol') throw NOT_PLAIN;
    return value;
  }
  if (depth > MAX_DEPTH) throw NOT_PLAIN;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) throw NOT_PLAIN;
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = copy(value[i], depth + 1);
    return out;
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  // Maps, dates, typed arrays and class instances keep structuredClone's own semantics.
  if (prototype !== Object.prototype && prototype !== null) throw NOT_PLAIN;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = copy((value as Record<string, unknown>)[key], depth + 1);
  return out;
}

/**
 * A deep copy equal to `structuredClone(value)` for plain objects, arrays and primitives; any
 * value holding something else (a Map, a Date, a class instance, a cycle) is handed to
 * structuredClone whole, so the result and the errors are structuredClone's. Unlike it, two
 * references to one object in plain data become two copies: mediasoup's parameters hold none.
 */
export function clonePlainData<T>(value: T): T {
  try {
    return copy(value, 0) as T;
  } catch (err) {
    if (err !== NOT_PLAIN) throw err;
    return structuredClone(value);
  }
}

/** mediasoup's own clone, which keeps `undefined` and `NaN` as they are before copying. */
function mediasoupCompatibleClone(value: unknown): unknown {
  if (value === undefined) return undefined;
  if (typeof value === 'number' && Number.isNaN(value)) return NaN;
  return clonePlainData(value);
}

interface MediasoupUtils {
  clone: (value: unknown) => unknown;
}

/** The module whose `clone` every mediasoup class calls (`utils.clone(...)` at call time). */
export function mediasoupUtilsModule(): MediasoupUtils | undefined {
  const require = createRequire(import.meta.url);
  try {
    const utils = require(
      path.join(path.dirname(require.resolve('mediasoup')), 'utils.js'),
    ) as Partial<MediasoupUtils>;
    return typeof utils.clone === 'function' ? (utils as MediasoupUtils) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Makes mediasoup copy its parameters with {@link clonePlainData}. Idempotent; answers false when
 * this mediasoup has no such module (its layout changed), in which case nothing is replaced.
 */
export function useCheapCopiesInMediasoup(): boolean {
  const utils = mediasoupUtilsModule();
  if (!utils) return false;
  utils.clone = mediasoupCompatibleClone;
  return true;
}

export function mediasoupUsesCheapCopies(): boolean {
  return mediasoupUtilsModule()?.clone === mediasoupCompatibleClone;
}

/**
 * A small seeded, structure-aware fuzzer: takes a valid message (a JSON value) and returns a
 * hostile variant of it. Same seed, same sequence of cases: a failure printed with its seed and
 * case number can be replayed exactly (FUZZ_SEED=<seed>).
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** mulberry32: tiny, fast, good enough for test-case generation (not for cryptography). */
export class Rng {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.int(items.length)] as T;
  }

  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = this.int(256);
    return out;
  }
}

/** The seed of this run: FUZZ_SEED when set (to replay a failure), else a fresh one. */
export function fuzzSeed(): number {
  const fromEnv = process.env.FUZZ_SEED;
  if (fromEnv !== undefined && /^[0-9]+$/.test(fromEnv)) return Number(fromEnv) >>> 0;
  return (Date.now() ^ (process.pid << 16)) >>> 0;
}

/** Time box per fuzz target, in ms: FUZZ_MS when set, else `fallback`. */
export function fuzzBudgetMs(fallback: number): number {
  const fromEnv = Number(process.env.FUZZ_MS);
  return Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : fallback;
}

/** Strings that have broken parsers and validators elsewhere. */
const HOSTILE_STRINGS: readonly string[] = [
  '',
  ' ',
  'NaN',
  'Infinity',
  '-Infinity',
  'null',
  'undefined',
  'true',
  '0',
  '-1',
  '1e309',
  '0x10',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '\u0000',
  '\u0000abc',
  '\ud800',
  '\udfff\ud800',
  '\u202eevil',
  '\u200b\u200b',
  '\ufeff',
  'é'.normalize('NFD'),
  '👩🏽‍⚕️🩺',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  '../../../../etc/passwd',
  '%00%2e%2e%2f',
  '<script>alert(1)</script>',
  "' OR 1=1 --",
  '${jndi:ldap://x}',
  '{{7*7}}',
  'a'.repeat(65),
  'a'.repeat(257),
  '0'.repeat(64),
  'sha-256',
  'AA:BB',
  'room_' + '0'.repeat(60),
];

const HOSTILE_NUMBERS: readonly number[] = [
  0,
  -0,
  -1,
  1,
  0.5,
  -0.5,
  255,
  256,
  65535,
  65536,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31),
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  Number.MAX_SAFE_INTEGER,
  -Number.MAX_SAFE_INTEGER,
  1e308,
  -1e308,
  5e-324,
];

function hostileString(rng: Rng): string {
  switch (rng.int(6)) {
    case 0:
      return rng.pick(HOSTILE_STRINGS);
    case 1:
      // Long strings: around and far beyond the schema caps.
      return 'x'.repeat(rng.pick([63, 64, 65, 128, 129, 1024, 8193, 16385, 70_000]));
    case 2: {
      // Random code points, including lone surrogates and controls.
      let s = '';
      const n = 1 + rng.int(40);
      for (let i = 0; i < n; i++) s += String.fromCharCode(rng.int(0x10000));
      return s;
    }
    case 3:
      return rng.bytes(1 + rng.int(32)).toString('latin1');
    case 4:
      return rng.bytes(1 + rng.int(48)).toString('base64url');
    default:
      return rng.pick(HOSTILE_STRINGS) + rng.pick(HOSTILE_STRINGS);
  }
}

function deepValue(rng: Rng): Json {
  const depth = rng.pick([16, 64, 256, 2000]);
  let value: Json = rng.chance(0.5) ? 1 : 'x';
  for (let i = 0; i < depth; i++) value = rng.chance(0.5) ? [value] : { a: value };
  return value;
}

function wideValue(rng: Rng): Json {
  const width = rng.pick([100, 1000, 5000]);
  if (rng.chance(0.5)) return Array.from({ length: width }, (_, i) => i);
  const obj: { [key: string]: Json } = {};
  for (let i = 0; i < width; i++) obj[`k${i}`] = i;
  return obj;
}

/** A value of a random kind, often the wrong one for the field it replaces. */
export function hostileValue(rng: Rng): Json {
  switch (rng.int(12)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick(HOSTILE_NUMBERS);
    case 3:
    case 4:
      return hostileString(rng);
    case 5:
      return [];
    case 6:
      return {};
    case 7:
      return deepValue(rng);
    case 8:
      return wideValue(rng);
    case 9:
      return JSON.parse(
        '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}}}',
      ) as Json;
    case 10:
      return [hostileValue(rng), hostileValue(rng)];
    default:
      return { [rng.pick(HOSTILE_STRINGS)]: hostileValue(rng) };
  }
}

function clone(value: Json): Json {
  return JSON.parse(JSON.stringify(value)) as Json;
}

/** Every path (list of keys/indices) to a node of `value`, the root included. */
function paths(value: Json, prefix: (string | number)[] = [], out: (string | number)[][] = []) {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...prefix, i], out));
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) paths(v, [...prefix, k], out);
  return out;
}

function getAt(root: Json, path: (string | number)[]): Json {
  let node: Json = root;
  for (const key of path) node = (node as Record<string | number, Json>)[key] as Json;
  return node;
}

/** Sets (or, with `undefined`, deletes) the node at `path`; defineProperty keeps `__proto__` an own key. */
function setAt(root: Json, path: (string | number)[], value: Json | undefined): Json {
  if (path.length === 0) return value ?? null;
  const parent = getAt(root, path.slice(0, -1)) as Record<string | number, Json> | Json[];
  const key = path[path.length - 1] as string | number;
  if (Array.isArray(parent) && typeof key === 'number') {
    if (value === undefined) parent.splice(key, 1);
    else parent[key] = value;
  } else if (value === undefined) {
    delete (parent as Record<string | number, Json>)[key];
  } else {
    Object.defineProperty(parent, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return root;
}

export type MutationName =
  | 'replace'
  | 'delete'
  | 'add-field'
  | 'proto-key'
  | 'numeric-edge'
  | 'string-edge'
  | 'wrap'
  | 'duplicate-array'
  | 'valid';

/** A structure-aware mutation of a valid JSON value; returns the mutated copy and what was done. */
export function mutateJson(rng: Rng, valid: Json): { value: Json; mutation: MutationName } {
  const value = clone(valid);
  const all = paths(value);
  const path = rng.pick(all);
  const node = getAt(value, path);
  const mutation = rng.pick<MutationName>([
    'replace',
    'replace',
    'delete',
    'add-field',
    'proto-key',
    'numeric-edge',
    'string-edge',
    'wrap',
    'duplicate-array',
    'valid',
  ]);
  switch (mutation) {
    case 'replace':
      return { value: setAt(value, path, hostileValue(rng)), mutation };
    case 'delete':
      return { value: path.length === 0 ? {} : setAt(value, path, undefined), mutation };
    case 'add-field': {
      const objects = all.filter((p) => {
        const n = getAt(value, p);
        return n !== null && typeof n === 'object' && !Array.isArray(n);
      });
      if (objects.length === 0) return { value, mutation };
      const target = getAt(value, rng.pick(objects)) as Record<string, Json>;
      target[rng.chance(0.5) ? rng.pick(HOSTILE_STRINGS) || 'extra' : `extra${rng.int(100)}`] =
        hostileValue(rng);
      return { value, mutation };
    }
    case 'proto-key': {
      const objects = all.filter((p) => {
        const n = getAt(value, p);
        return n !== null && typeof n === 'object' && !Array.isArray(n);
      });
      if (objects.length === 0) return { value, mutation };
      const target = getAt(value, rng.pick(objects)) as Record<string, Json>;
      const key = rng.pick(['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty']);
      Object.defineProperty(target, key, {
        value: rng.chance(0.5) ? { polluted: 'yes' } : hostileValue(rng),
        enumerable: true,
        writable: true,
        configurable: true,
      });
      return { value, mutation };
    }
    case 'numeric-edge':
      return { value: setAt(value, path, rng.pick(HOSTILE_NUMBERS)), mutation };
    case 'string-edge':
      return {
        value: setAt(
          value,
          path,
          typeof node === 'string' && rng.chance(0.5)
            ? node + hostileString(rng)
            : rng.pick(['NaN', 'Infinity', '-Infinity', '1e309', '-0', hostileString(rng)]),
        ),
        mutation,
      };
    case 'wrap':
      return { value: setAt(value, path, rng.chance(0.5) ? [node] : { value: node }), mutation };
    case 'duplicate-array': {
      const arrays = all.filter((p) => Array.isArray(getAt(value, p)));
      if (arrays.length === 0) return { value, mutation };
      const arr = getAt(value, rng.pick(arrays)) as Json[];
      const copies = rng.pick([0, 1, 9, 200]);
      if (copies === 0) arr.length = 0;
      else if (arr.length > 0) for (let i = 0; i < copies; i++) arr.push(clone(arr[0] as Json));
      return { value, mutation };
    }
    case 'valid':
      return { value, mutation };
  }
}

export type FrameMutation = 'json' | 'truncate' | 'random-bytes' | 'splice-bytes' | 'not-object';

/**
 * Serialises a (possibly mutated) message, and sometimes breaks the serialised text itself:
 * truncation, random bytes, byte splices, or a top-level value that is not an object.
 */
export function mutateFrame(rng: Rng, message: Json): { frame: string | Buffer; how: FrameMutation } {
  const text = JSON.stringify(message);
  const roll = rng.int(20);
  if (roll === 0) return { frame: text.slice(0, rng.int(text.length)), how: 'truncate' };
  if (roll === 1) return { frame: rng.bytes(1 + rng.int(512)), how: 'random-bytes' };
  if (roll === 2) {
    const bytes = Buffer.from(text, 'utf8');
    for (let i = 0; i < 1 + rng.int(4); i++) bytes[rng.int(bytes.length)] = rng.int(256);
    return { frame: bytes, how: 'splice-bytes' };
  }
  if (roll === 3)
    return { frame: JSON.stringify(rng.pick([1, 'x', null, [], true, [message]])), how: 'not-object' };
  return { frame: text, how: 'json' };
}

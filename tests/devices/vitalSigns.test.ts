import t from 'tap';
import { Value } from '@sinclair/typebox/value';
import { VitalSignReading } from '../../src/protocol/vitalSigns.js';
import { MEASURES, checkVitalSign, type VitalSign } from '../../src/protocol/vitalSignRules.js';
import { FrameCryptor } from '../../src/sdk/e2ee/frameCrypto.js';
import { deriveDataKey } from '../../src/sdk/e2ee/dataKeys.js';
import {
  RECEIVE_RATE,
  SEND_RATE,
  VitalSignsReader,
  VitalSignsSender,
  type VitalSignCipher,
} from '../../src/sdk/vitalSigns.js';
import { TeleconsultError } from '../../src/sdk/errors.js';

/**
 * Vital-sign readings, sender to receiver, as the SDK handles them on both sides of the data
 * channel: the measures table, its TypeBox schema and the SDK's validator agree; readings are
 * numbered, validated, rate-limited, SFrame-encrypted with a key derived from the media key, and
 * the receiver refuses with typed errors what is invalid, repeated, unreadable or in clear. The
 * channel and the server in between are exercised by tests/devices/vitalSignsBrowser.test.ts.
 */
const NOW = Date.UTC(2026, 11, 5, 19, 0, 0);

function valid(): Record<string, unknown>[] {
  const base = { seq: 1, timestamp: NOW, deviceType: 'pulse-oximeter' };
  const readings: Record<string, unknown>[] = [];
  for (const [kind, units] of Object.entries(MEASURES))
    for (const [unit, [min, max]] of Object.entries(units as Record<string, readonly [number, number]>))
      for (const value of [min, max, (min + max) / 2]) readings.push({ ...base, kind, value, unit });
  readings.push({ ...base, kind: 'blood-pressure', systolic: 128, diastolic: 84, unit: 'mm[Hg]' });
  return readings;
}

function mutations(reading: Record<string, unknown>): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const without = (key: string) => Object.fromEntries(Object.entries(reading).filter(([k]) => k !== key));
  for (const key of Object.keys(reading)) {
    out.push(without(key));
    out.push({ ...reading, [key]: null });
    out.push({ ...reading, [key]: 'x' });
  }
  out.push({ ...reading, extra: 1 });
  out.push(
    { ...reading, timestamp: Math.floor(NOW / 1000) },
    { ...reading, seq: -1 },
    { ...reading, seq: 1.5 },
  );
  out.push({ ...reading, deviceType: 'otoscope' }, { ...reading, unit: 'bogus' });
  if ('value' in reading)
    out.push({ ...reading, value: 1e9 }, { ...reading, value: -1e9 }, { ...reading, value: Number.NaN });
  else out.push({ ...reading, systolic: 400 }, { ...reading, diastolic: 5 });
  return out;
}

t.test('the TypeBox schema and the SDK validator accept and refuse the same readings', async (t) => {
  let accepted = 0;
  let refused = 0;
  for (const reading of valid()) {
    t.ok(
      Value.Check(VitalSignReading, reading),
      `schema accepts ${String(reading.kind)} ${String(reading.unit)}`,
    );
    t.ok(checkVitalSign(reading).ok, `validator accepts ${String(reading.kind)} ${String(reading.unit)}`);
    accepted++;
    for (const bad of mutations(reading)) {
      const json = JSON.parse(JSON.stringify(bad)) as unknown; // as it arrives on the wire
      t.equal(checkVitalSign(json).ok, Value.Check(VitalSignReading, json), JSON.stringify(bad));
      if (!checkVitalSign(json).ok) refused++;
    }
  }
  t.ok(refused > accepted * 10, `${accepted} readings accepted, ${refused} mutations refused by both`);
  const inverted = { seq: 1, timestamp: NOW, deviceType: 'blood-pressure-monitor', kind: 'blood-pressure' };
  t.same(
    checkVitalSign({ ...inverted, systolic: 80, diastolic: 90, unit: 'mm[Hg]' }),
    { ok: false, reason: 'diastolic not below systolic' },
    'the one rule a schema cannot say',
  );
});

/** A participant's data cipher as EndToEndEncryption builds it: FrameCryptor and a derived key. */
async function ciphers(): Promise<{ alice: VitalSignCipher; bob: VitalSignCipher; mediaKey: Uint8Array }> {
  const mediaKey = crypto.getRandomValues(new Uint8Array(16));
  const dataKey = await deriveDataKey(mediaKey);
  const send = new FrameCryptor();
  const receive = new FrameCryptor();
  await send.setSendKey(3, dataKey);
  await receive.addReceiveKey('alice', 3, dataKey);
  const cipher = (c: FrameCryptor): VitalSignCipher => ({
    encryptData: (m) => c.encrypt('other', m),
    decryptData: (from, m) => c.decrypt(from, 'other', m),
  });
  return { alice: cipher(send), bob: cipher(receive), mediaKey };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    return err instanceof TeleconsultError ? `${err.code}${err.detail ? `:${err.detail}` : ''}` : String(err);
  }
}

t.test('encrypted readings arrive in order, validated; the channel carries ciphertext only', async (t) => {
  const { alice, bob, mediaKey } = await ciphers();
  let clock = NOW;
  const wire: ArrayBuffer[] = [];
  const sender = new VitalSignsSender({
    deviceType: 'pulse-oximeter',
    cipher: alice,
    locale: 'en',
    now: () => clock,
    transmit: (message) => {
      if (typeof message === 'string') throw new Error('clear text on the wire');
      wire.push(message);
      return true;
    },
  });
  const sent: Promise<VitalSign>[] = [];
  for (let i = 0; i < 8; i++) {
    clock += 1000;
    sent.push(
      sender.send({
        kind: i % 2 ? 'pulse-rate' : 'spo2',
        value: i % 2 ? 72 + i : 95 + (i % 4),
        unit: i % 2 ? '/min' : '%',
      }),
    );
  }
  const readings = await Promise.all(sent);
  t.same(
    readings.map((r) => r.seq),
    [0, 1, 2, 3, 4, 5, 6, 7],
    'numbered in order',
  );
  t.equal(wire.length, 8);
  for (const message of wire) {
    const text = Buffer.from(message).toString('latin1');
    t.notMatch(text, /spo2|pulse|deviceType|"value"/, 'no reading in clear on the wire');
  }
  t.notSame(await deriveDataKey(mediaKey), mediaKey, 'the data key is not the media key');

  const reader = new VitalSignsReader({
    senderId: 'alice',
    deviceType: 'pulse-oximeter',
    cipher: bob,
    locale: 'en',
    now: () => clock,
  });
  const received = await Promise.all(wire.map((m) => reader.accept(m)));
  t.same(received, readings, 'the receiver gets exactly what was sent, in order');

  t.equal(await codeOf(reader.accept(wire[3]!)), 'VITAL_SIGN_OUT_OF_ORDER', 'a replayed reading is dropped');
  t.equal(
    await codeOf(reader.accept(JSON.stringify(readings[7]))),
    'VITAL_SIGN_NOT_ENCRYPTED',
    'clear text refused',
  );
  const tampered = new Uint8Array(wire[7]!.slice(0));
  tampered[tampered.length - 1]! ^= 1;
  t.equal(
    await codeOf(reader.accept(tampered.buffer)),
    'VITAL_SIGN_UNREADABLE',
    'a forged reading is dropped',
  );
  const stranger = new VitalSignsReader({
    senderId: 'mallory',
    deviceType: 'pulse-oximeter',
    cipher: bob,
    locale: 'en',
  });
  t.equal(await codeOf(stranger.accept(wire[0]!)), 'VITAL_SIGN_UNREADABLE', 'no key for another sender');

  // A sender with the key but a broken SDK: the receiver validates what it decrypts.
  const forge = async (reading: unknown) =>
    (await alice.encryptData(new TextEncoder().encode(JSON.stringify(reading))))!.buffer;
  t.equal(
    await codeOf(reader.accept(await forge({ ...readings[7], seq: 100, value: 400 }))),
    'VITAL_SIGN_INVALID:value',
  );
  t.equal(
    await codeOf(reader.accept(await forge({ ...readings[7], seq: 101, deviceType: 'thermometer' }))),
    'VITAL_SIGN_INVALID:deviceType is not the channel’s',
  );
});

t.test(
  'the sender refuses invalid readings and floods with typed errors, and never sends in clear',
  async (t) => {
    let clock = NOW;
    const wire: unknown[] = [];
    const noKey: VitalSignCipher = { encryptData: async () => undefined, decryptData: async () => undefined };
    const options = { deviceType: 'thermometer' as const, locale: 'en' as const, now: () => clock };
    const sender = new VitalSignsSender({ ...options, cipher: undefined, transmit: (m) => wire.push(m) > 0 });
    t.equal(
      await codeOf(sender.send({ kind: 'temperature', value: 52, unit: 'Cel' })),
      'VITAL_SIGN_INVALID:value',
    );
    t.equal(
      await codeOf(sender.send({ kind: 'temperature', value: 98.6, unit: '[degF]' } as never)),
      'VITAL_SIGN_INVALID:unit',
    );
    const outcomes: string[] = [];
    for (let i = 0; i < SEND_RATE.burst + 3; i++)
      outcomes.push(await codeOf(sender.send({ kind: 'temperature', value: 37.2, unit: 'Cel' })));
    t.same(outcomes.filter((o) => o === 'ok').length, SEND_RATE.burst, 'a burst goes through');
    t.equal(outcomes.at(-1), 'VITAL_SIGN_RATE_LIMITED', 'then the rate limit');
    clock += 1000;
    t.equal(
      await codeOf(sender.send({ kind: 'temperature', value: 37.2, unit: 'Cel' })),
      'ok',
      'refilled after a second',
    );
    t.equal(wire.length, SEND_RATE.burst + 1, 'refused readings were not sent');
    const seqs = wire.map((m) => (JSON.parse(m as string) as VitalSign).seq);
    t.same(seqs, [...seqs.keys()], 'no gap in the numbering for refused readings');

    const locked = new VitalSignsSender({ ...options, cipher: noKey, transmit: (m) => wire.push(m) > 0 });
    const before = wire.length;
    t.equal(await codeOf(locked.send({ kind: 'temperature', value: 37, unit: 'Cel' })), 'E2EE_KEY_MISSING');
    t.equal(wire.length, before, 'nothing left in clear without a key');

    const reader = new VitalSignsReader({
      senderId: 'a',
      deviceType: 'thermometer',
      cipher: undefined,
      locale: 'en',
      now: () => clock,
    });
    const flood: string[] = [];
    for (let i = 0; i < RECEIVE_RATE.burst + 5; i++)
      flood.push(
        await codeOf(
          reader.accept(
            JSON.stringify({
              seq: i,
              timestamp: NOW,
              deviceType: 'thermometer',
              kind: 'temperature',
              value: 37,
              unit: 'Cel',
            }),
          ),
        ),
      );
    t.equal(
      flood.filter((o) => o === 'ok').length,
      RECEIVE_RATE.burst,
      'the receiver bounds what it processes',
    );
    t.equal(flood.at(-1), 'VITAL_SIGN_RATE_LIMITED');
    t.equal(
      await codeOf(reader.accept('{"seq":')),
      'VITAL_SIGN_RATE_LIMITED',
      'still limited in the same instant',
    );
    clock += 5000;
    t.equal(await codeOf(reader.accept('{"seq":')), 'VITAL_SIGN_INVALID:not JSON');
    t.equal(await codeOf(reader.accept('x'.repeat(5000))), 'VITAL_SIGN_INVALID:too large');
  },
);

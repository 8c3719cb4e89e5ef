import t from 'tap';
import type { types } from 'mediasoup';
import type { Page } from 'playwright-core';
import type * as Sdk from '../../src/sdk/index.js';
import { fromHex } from '../../src/sdk/e2ee/bytes.js';
import { deriveDataKey } from '../../src/sdk/e2ee/dataKeys.js';
import { FrameCryptor } from '../../src/sdk/e2ee/frameCrypto.js';
import { decodeHeader } from '../../src/sdk/e2ee/sframe.js';
import { buildSdkBundle, waitFor } from '../browser/harness.js';
import { chromiumAvailable, launchBrowser, localhostUrl, type TestPage } from '../support/browser.js';
import { startTestServer } from '../support/server.js';

/**
 * Vital signs end to end in Chromium, in a room that requires end-to-end encryption: the patient's
 * SDK sends oximeter readings over a vital-signs data channel, the server relays them (a
 * DirectTransport consumer inside the server records exactly what it relays), and the
 * practitioner's SDK emits them as typed, validated events in order.
 */
interface DeviceRecord {
  vitals: Sdk.VitalSignEvent[];
  rejected: string[];
  errors: string[];
  channel?: Sdk.VitalSignsChannel;
}

declare global {
  interface Window {
    deviceTest?: { room: Sdk.Room; record: DeviceRecord };
  }
}

const skip = (await chromiumAvailable()) ? false : 'chromium is not installed';

async function join(page: Page, url: string, token: string): Promise<void> {
  await page.evaluate(
    async ({ url, token }) => {
      const sdk = (await import(['/sdk', 'teleconsult-sdk.js'].join('/'))) as typeof Sdk;
      const room = await sdk.connect(url, token, {
        handlerName: 'Chrome111',
        locale: 'en',
        e2ee: { __testing: true },
      });
      const record: DeviceRecord = { vitals: [], rejected: [], errors: [] };
      room.on('vitalSign', (event) => record.vitals.push(event));
      room.on('vitalSignRejected', ({ error }) =>
        record.rejected.push(`${error.code}:${error.detail ?? ''}`),
      );
      room.on('error', (error) => record.errors.push(`${error.code}: ${error.detail ?? ''}`));
      window.deviceTest = { room, record };
    },
    { url, token },
  );
}

function inPage<T>(page: Page, fn: (room: Sdk.Room, record: DeviceRecord) => T | Promise<T>): Promise<T> {
  return page.evaluate(async (source) => {
    const test = window.deviceTest;
    if (!test) throw new Error('not joined');
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    const run = new Function('room', 'record', `return (${source})(room, record);`) as (
      room: Sdk.Room,
      record: DeviceRecord,
    ) => unknown;
    return run(test.room, test.record);
  }, fn.toString()) as Promise<T>;
}

function details(...pages: TestPage[]): string {
  return pages.map((p) => p.problems.slice(-5).join('\n')).join('\n');
}

t.test(
  'vital signs in an E2EE room: in order, validated, and only ciphertext in the server',
  { skip },
  async (t) => {
    await buildSdkBundle();
    const server = await startTestServer({ quality: { enabled: false } });
    t.teardown(() => server.stop());
    const browser = await launchBrowser();
    t.teardown(() => browser.close());
    const origin = localhostUrl(server.url);
    const roomId = (
      await server.rest<{ id: string }>('POST', '/v1/rooms', {
        options: { waitingRoom: false, e2eeRequired: true },
      })
    ).body.id;
    const doctor = await browser.openPage(`${origin}/`);
    const patient = await browser.openPage(`${origin}/`);
    await join(
      doctor.page,
      origin,
      await server.token({ room: roomId, participantId: 'doc', role: 'practitioner' }),
    );
    await join(
      patient.page,
      origin,
      await server.token({ room: roomId, participantId: 'pat', role: 'patient' }),
    );
    await inPage(patient.page, async (room) => {
      const text = (await room.getConsentTexts()).find((x) => x.purpose === 'teleconsultation');
      if (!text) throw new Error('no consent text');
      await room.giveConsent(text);
    });
    await waitFor('the patient admitted', () =>
      inPage(patient.page, (room) => room.admissionState === 'admitted'),
    );
    // Keys exchanged both ways (the data key derives from the media sender key).
    await waitFor('end-to-end keys', () =>
      inPage(
        doctor.page,
        (room) => room.e2ee?.stateOf('pat') === 'encrypted' && (room.e2ee?.keyGeneration ?? 0) > 0,
      ),
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${details(doctor, patient)}`);
    });
    await waitFor('the patient’s key', () =>
      inPage(patient.page, (room) => (room.e2ee?.keyGeneration ?? 0) > 0),
    );

    await inPage(patient.page, async (room, record) => {
      record.channel = await room.publishVitalSigns({ deviceType: 'pulse-oximeter' });
    });
    const serverRoom = server.server.rooms.get(roomId)!;
    const dataProducer = await waitFor('the vital-signs data producer', async () =>
      [...(serverRoom.participants.get('pat')?.dataProducers.values() ?? [])].find(
        (p) => (p.appData as { source?: string }).source === 'vital-signs',
      ),
    );
    // Inside the server: a consumer of the same data producer records what the SFU relays.
    const router = (serverRoom as unknown as { router: types.Router }).router;
    const direct = await router.createDirectTransport();
    t.teardown(() => direct.close());
    const relayed: { ppid: number; bytes: Buffer }[] = [];
    const tap = await direct.consumeData({ dataProducerId: dataProducer.id });
    tap.on('message', (message: Buffer, ppid: number) => relayed.push({ ppid, bytes: Buffer.from(message) }));
    await waitFor('the doctor’s data consumer and an open channel', () =>
      inPage(patient.page, (_room, record) => record.channel?.open === true),
    );
    await waitFor('the doctor subscribed to the readings', async () =>
      [...(serverRoom.participants.get('doc')?.dataConsumers.values() ?? [])].some(
        (c) => c.dataProducerId === dataProducer.id,
      ),
    );

    const sent = await inPage(patient.page, async (_room, record) => {
      const channel = record.channel!;
      const readings = [];
      // An oximeter reports about once a second; here 4 a second, within the SDK's rate limit.
      const pause = () => new Promise((resolve) => setTimeout(resolve, 250));
      for (let i = 0; i < 6; i++) {
        await pause();
        readings.push(await channel.send({ kind: 'spo2', value: 94 + (i % 5), unit: '%' }));
        await pause();
        readings.push(await channel.send({ kind: 'pulse-rate', value: 70 + i, unit: '/min' }));
      }
      const refused = await channel.send({ kind: 'spo2', value: 140, unit: '%' }).then(
        () => 'sent',
        (err: Sdk.TeleconsultError) => `${err.code}:${err.detail ?? ''}`,
      );
      return { readings, refused };
    });
    t.equal(sent.refused, 'VITAL_SIGN_INVALID:value', 'an impossible SpO2 is refused by the sender, typed');

    const received = await waitFor('twelve readings at the doctor', async () => {
      const record = await inPage(doctor.page, (_room, r) => r);
      return record.vitals.length >= 12 ? record : undefined;
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${details(doctor, patient)}`);
    });
    t.same(
      received.vitals.map((v) => v.reading),
      sent.readings,
      'the practitioner gets every reading, as sent, in order',
    );
    t.ok(
      received.vitals.every(
        (v) => v.encrypted && v.participantId === 'pat' && v.deviceType === 'pulse-oximeter',
      ),
    );
    t.same(received.rejected, [], 'nothing rejected on the way');

    t.equal(relayed.length, 12, 'the server relayed twelve messages');
    const keys = await inPage(patient.page, (room) => room.e2ee?.testing?.exportKeys());
    const opener = new FrameCryptor();
    for (const { generation, key } of keys?.sent ?? [])
      await opener.addReceiveKey('pat', generation, await deriveDataKey(fromHex(key)));
    let opened = 0;
    for (const [i, { ppid, bytes }] of relayed.entries()) {
      t.equal(ppid, 53, 'binary (WebRTC Binary PPID), not a string');
      const text = bytes.toString('latin1');
      t.notMatch(
        text,
        /spo2|pulse|deviceType|value|"seq"/,
        `message ${i}: no reading in clear inside the server`,
      );
      const header = decodeHeader(bytes);
      t.ok(header.kid > 0, `message ${i} is SFrame (KID ${header.kid})`);
      const plain = await opener.decrypt('pat', 'other', bytes);
      if (
        plain &&
        (JSON.parse(new TextDecoder().decode(plain)) as { seq: number }).seq === sent.readings[i]!.seq
      )
        opened++;
    }
    t.equal(
      opened,
      12,
      'with the participant’s key (and only with it) each message opens to the reading sent',
    );
    await browser.close();
  },
);

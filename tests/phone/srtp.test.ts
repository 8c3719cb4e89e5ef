import t from 'tap';
import {
  aesCmKeystream,
  deriveSessionKeys,
  parseSdesInline,
  SrtpContext,
} from '../../src/phone/media/srtp.js';
import { buildRtp, parseRtp } from '../../src/phone/media/rtp.js';

const hex = (value: string) => Buffer.from(value.replace(/\s+/g, ''), 'hex');

void t.test('AES-CM keystream: RFC 3711 Appendix B.2', (t) => {
  const keystream = aesCmKeystream(
    hex('2B7E151628AED2A6ABF7158809CF4F3C'),
    hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000'),
    48,
  );
  t.equal(
    keystream.toString('hex').toUpperCase(),
    'E03EAD0935C95E80E166B16DD92B4EB4' +
      'D23513162B02D0F72A43A2FE4A5F97AB' +
      '41E95B3BB0A2E8DD477901E4FCA894C0',
  );
  t.end();
});

void t.test('key derivation: RFC 3711 Appendix B.3', (t) => {
  const keys = deriveSessionKeys(
    hex('E1F97A0D3E018BE0D64FA32C06DE4139'),
    hex('0EC675AD498AFEEBB6960B3AABE6'),
  );
  t.equal(keys.cipherKey.toString('hex').toUpperCase(), 'C61E7A93744F39EE10734AFE3FF7A087', 'cipher key');
  t.equal(keys.salt.toString('hex').toUpperCase(), '30CBBC08863D8C85D49DB34A9AE1', 'cipher salt');
  t.equal(
    keys.authKey.subarray(0, 16).toString('hex').toUpperCase(),
    'CEBE321F6FF7716B6FD4AB49AF256A15',
    'authentication key',
  );
  t.end();
});

void t.test('protected packets are not plain RTP payloads, and unprotect them back once', (t) => {
  const master = { key: hex('E1F97A0D3E018BE0D64FA32C06DE4139'), salt: hex('0EC675AD498AFEEBB6960B3AABE6') };
  const sender = new SrtpContext(master.key, master.salt);
  const receiver = new SrtpContext(master.key, master.salt);
  const payload = Buffer.alloc(160, 0xff); // PCMU silence
  for (const seq of [65533, 65534, 65535, 0, 1, 2]) {
    const packet = buildRtp({
      payloadType: 0,
      marker: false,
      sequenceNumber: seq,
      timestamp: seq * 160,
      ssrc: 0xcafe,
      payload,
    });
    const wire = sender.protect(packet);
    t.equal(wire.length, packet.length + 10, 'an 80-bit tag is appended');
    t.not(
      parseRtp(wire.subarray(0, packet.length))?.payload.toString('hex'),
      payload.toString('hex'),
      'payload encrypted',
    );
    t.same(receiver.unprotect(wire), packet, `packet ${seq} decrypts across the rollover`);
    t.equal(receiver.unprotect(wire), undefined, 'a replay is refused');
  }
  const forged = sender.protect(
    buildRtp({ payloadType: 0, marker: false, sequenceNumber: 3, timestamp: 480, ssrc: 0xcafe, payload }),
  );
  forged[20] = (forged[20] ?? 0) ^ 1;
  t.equal(receiver.unprotect(forged), undefined, 'a modified packet is refused');
  t.end();
});

void t.test('SDES inline keys are read strictly', (t) => {
  const inline = Buffer.alloc(30, 7).toString('base64');
  t.ok(parseSdesInline(`inline:${inline}`));
  t.ok(parseSdesInline(`inline:${inline}|2^31`));
  t.notOk(parseSdesInline(`inline:${inline.slice(0, -4)}`), 'short key');
  t.notOk(parseSdesInline('inline:not-base64!'));
  t.end();
});

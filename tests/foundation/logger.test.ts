import t from 'tap';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observability/logger.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { lines, stream };
}

t.test('tokens, SDP, keys, names and health identifiers never reach the log', async (t) => {
  const { lines, stream } = capture();
  const log = createLogger('info', stream).child({ module: 'test' });
  log.info(
    {
      token: 'eyJhbGciOiJIUzI1NiJ9.secret',
      sdp: 'v=0 o=- 1 1 IN IP4 127.0.0.1',
      displayName: 'Jeanne Dupont',
      participant: { name: 'Jeanne Dupont', rpps: '10101010101', phoneNumber: '+33612345678' },
      dtlsParameters: { fingerprints: [{ algorithm: 'sha-256', value: 'AB:CD' }] },
      room: 'room-1',
    },
    'joined',
  );
  const text = lines.join('');
  for (const secret of ['eyJhbGci', 'v=0', 'Jeanne', '10101010101', '+3361', 'AB:CD']) {
    t.notMatch(text, secret, `${secret} is redacted`);
  }
  t.match(text, /room-1/, 'non-personal context stays');
  t.match(text, /"module":"test"/);
});

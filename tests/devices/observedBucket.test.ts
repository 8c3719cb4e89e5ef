import t from 'tap';
import { ObservedBucket, rateLimitOf } from '../../src/rooms/dataRateGuard.js';
import { testConfig } from '../support/server.js';

/** The decisions of the data-channel rate limit, check by check (counts observed after the fact). */
const limit = rateLimitOf(testConfig().dataChannels, 'vital-signs');

t.test('defaults: a vital-signs channel gets the receiving SDK limit, 10/s bursts of 20', async (t) => {
  t.same(limit, { messagesPerSecond: 10, messageBurst: 20, bytesPerSecond: 16384, byteBurst: 32768 });
});

t.test('a burst up to the bucket, then the sustained rate, is always forwarded', async (t) => {
  const bucket = new ObservedBucket(limit, 3000);
  t.equal(bucket.observe(20, 20 * 150, 250, 250), 'forward', 'a full burst');
  for (let now = 500; now <= 10_000; now += 250)
    t.equal(bucket.observe(2, 300, 250, now), 'forward', `at ${now} ms: 8/s`);
});

t.test('over the bucket: held; released once the sender slows down', async (t) => {
  const bucket = new ObservedBucket(limit, 3000);
  t.equal(bucket.observe(25, 2500, 250, 250), 'hold');
  t.ok(bucket.held);
  t.equal(bucket.observe(100, 10_000, 250, 500), 'hold', 'still flooding');
  t.equal(bucket.observe(1, 100, 250, 750), 'release', 'within the rate again');
  t.notOk(bucket.held);
  t.equal(bucket.observe(2, 200, 250, 1000), 'forward');
});

t.test('bytes count too: few but large messages are held', async (t) => {
  const bucket = new ObservedBucket(limit, 3000);
  t.equal(bucket.observe(3, 40_000, 250, 250), 'hold');
});

t.test('a flood that goes on for floodCloseMs is closed', async (t) => {
  const bucket = new ObservedBucket(limit, 1000);
  t.equal(bucket.observe(500, 50_000, 250, 250), 'hold');
  t.equal(bucket.observe(500, 50_000, 250, 500), 'hold');
  t.equal(bucket.observe(500, 50_000, 250, 1000), 'hold');
  t.equal(bucket.observe(500, 50_000, 250, 1250), 'close');
});

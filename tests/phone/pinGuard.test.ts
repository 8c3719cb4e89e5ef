import t from 'tap';
import { PinGuard } from '../../src/phone/pinGuard.js';

const options = {
  callerMaxFailures: 3,
  callerWindowS: 60,
  callerLockoutS: 120,
  globalAttemptsPerMinute: 600,
  globalBurst: 2,
};

void t.test('a caller number is locked out after its failures in the window, and only that number', (t) => {
  let now = 1_000_000;
  const guard = new PinGuard({ ...options, now: () => now });
  t.notOk(guard.recordFailure('0600000001'));
  t.notOk(guard.recordFailure('0600000001'));
  t.ok(guard.recordFailure('0600000001'), 'the third failure starts the lockout');
  t.ok(guard.isLocked('0600000001'));
  t.notOk(guard.isLocked('0600000002'), 'another number is not affected');
  t.notOk(guard.recordFailure(undefined), 'an anonymous caller never starts a lockout');
  t.notOk(guard.isLocked(undefined));
  now += 121_000;
  t.notOk(guard.isLocked('0600000001'), 'the lockout ends');
  guard.recordFailure('0600000003');
  guard.recordFailure('0600000003');
  now += 61_000;
  t.notOk(guard.recordFailure('0600000003'), 'failures older than the window do not count');
  guard.close();
  t.end();
});

void t.test(
  'the global budget lets a burst through, then grants checks one by one in arrival order',
  async (t) => {
    const exhausted: boolean[] = [];
    const guard = new PinGuard({ ...options, onBudgetExhausted: (e) => exhausted.push(e) });
    t.teardown(() => guard.close());
    const never = new Promise<void>(() => undefined);
    t.equal(await guard.acquire(never), true);
    t.equal(await guard.acquire(never), true);
    t.equal(guard.waiting, 0, 'the burst did not wait');
    const order: number[] = [];
    let cancel!: () => void;
    const cancelled = new Promise<void>((resolve) => (cancel = resolve));
    const waits = [0, 1, 2, 3].map((i) =>
      guard.acquire(i === 2 ? cancelled : never).then((granted) => {
        order.push(i);
        return granted;
      }),
    );
    t.equal(guard.waiting, 4, 'beyond the burst, checks wait');
    t.same(exhausted, [true], 'waiting callers raise the exhausted signal');
    cancel();
    const granted = await Promise.all(waits);
    t.same(granted, [true, true, false, true], 'a call that ends while waiting gives its turn up');
    t.same(order, [2, 0, 1, 3], 'the others are served first come, first served');
    t.same(exhausted, [true, false], 'the signal clears when nobody waits');
  },
);

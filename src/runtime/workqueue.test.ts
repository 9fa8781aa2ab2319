import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../lib/clock.js';
import { WorkQueue } from './workqueue.js';
import { settle } from '../testing/wait.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

test('keys are deduplicated while queued and processed in order', async () => {
  const q = new WorkQueue({ clock: new FakeClock() });
  for (const k of ['a', 'b', 'a', 'c', 'b', 'a']) q.add(k);
  assert.equal(q.length, 3);
  const seen: string[] = [];
  q.run(1, async (k) => void seen.push(k));
  await q.shutdown();
  assert.deepEqual(seen, ['a', 'b', 'c']);
});

test('a key is never processed by two workers at once, and a re-add while processing runs again after', async () => {
  const q = new WorkQueue({ clock: new FakeClock() });
  const gate = deferred();
  const active = new Map<string, number>();
  let maxSameKey = 0;
  const runs: string[] = [];
  q.run(3, async (k) => {
    const n = (active.get(k) ?? 0) + 1;
    active.set(k, n);
    maxSameKey = Math.max(maxSameKey, n);
    runs.push(k);
    if (k === 'a' && runs.filter((r) => r === 'a').length === 1) await gate.promise;
    active.set(k, n - 1);
  });
  q.add('a');
  await settle();
  q.add('a'); // while 'a' is being processed: must wait
  q.add('a'); // merged with the previous re-add
  q.add('b'); // another key runs concurrently
  await settle();
  assert.deepEqual(runs, ['a', 'b'], 'the second "a" waits for the first');
  gate.resolve();
  await settle();
  assert.deepEqual(runs, ['a', 'b', 'a'], 'the re-added "a" ran exactly once more');
  assert.equal(maxSameKey, 1);
  await q.shutdown();
});

test('rate-limited requeues back off exponentially per key, capped, and reset on forget', () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock, baseDelayMs: 5, maxDelayMs: 60 });
  const delays = Array.from({ length: 6 }, () => q.addRateLimited('k'));
  assert.deepEqual(delays, [5, 10, 20, 40, 60, 60]);
  assert.equal(q.numRequeues('k'), 6);
  assert.equal(q.addRateLimited('other'), 5, 'backoff is per key');
  q.forget('k');
  assert.equal(q.numRequeues('k'), 0);
  assert.equal(q.addRateLimited('k'), 5);
});

test('a backed-off key becomes available only when its delay has passed on the clock', () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  q.addRateLimited('k'); // 5 ms
  q.addRateLimited('k'); // 10 ms: the earlier pending time (5 ms) wins
  clock.advance(4);
  assert.equal(q.length, 0);
  clock.advance(1);
  assert.equal(q.length, 1);
});

test('addAfter: the earliest requested time wins, a zero delay adds at once', () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  q.addAfter('x', 100);
  q.addAfter('x', 30);
  q.addAfter('x', 500);
  clock.advance(29);
  assert.equal(q.length, 0);
  clock.advance(1);
  assert.equal(q.length, 1);
  clock.advance(1000);
  assert.equal(q.length, 1, 'the superseded timers did not add it again');
  q.addAfter('y', 0);
  assert.equal(q.length, 2);
});

test('shutdown drains queued keys, cancels delayed ones and ignores later adds', async () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  const seen: string[] = [];
  q.add('a');
  q.add('b');
  q.addAfter('later', 1000);
  q.run(2, async (k) => void seen.push(k));
  await q.shutdown();
  q.add('c');
  assert.deepEqual(seen.sort(), ['a', 'b']);
  assert.equal(clock.pending(), 0, 'the delayed add was cancelled');
  assert.equal(q.length, 0);
  assert.equal(await q.get(), undefined);
});

test('shutdown without drain drops queued keys but waits for the one in flight', async () => {
  const q = new WorkQueue({ clock: new FakeClock() });
  const gate = deferred();
  const seen: string[] = [];
  let finished = false;
  q.run(1, async (k) => {
    seen.push(k);
    if (k === 'a') {
      await gate.promise;
      finished = true;
    }
  });
  q.add('a');
  await settle();
  q.add('b');
  const stopped = q.shutdown({ drain: false });
  gate.resolve();
  await stopped;
  assert.equal(finished, true);
  assert.deepEqual(seen, ['a']);
});

test('metrics hooks see adds, retries and depth', async () => {
  const counts = { add: 0, retry: 0 };
  const depths: number[] = [];
  const clock = new FakeClock();
  const q = new WorkQueue({
    name: 'm',
    clock,
    metrics: {
      add: (name) => {
        assert.equal(name, 'm');
        counts.add++;
      },
      retry: () => void counts.retry++,
      depth: (_n, d) => void depths.push(d),
    },
  });
  q.add('a');
  q.add('a');
  q.addRateLimited('b');
  clock.advance(5);
  assert.deepEqual(counts, { add: 3, retry: 1 });
  assert.equal(depths.at(-1), 2);
  q.run(1, async () => {});
  await q.shutdown();
  assert.equal(depths.at(-1), 0);
});

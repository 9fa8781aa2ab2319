import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { FakeClock } from '../lib/clock.js';
import type { ObjectClient } from './client.js';
import { formatMicroTime, LeaderElector, type LeaseSpec } from './leader.js';
import { leaseKind } from '../kinds/index.js';
import { openRegistryHarness, settle } from '../testing/registry-harness.js';

async function setup(t: TestContext) {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  // No metalplane-system namespace: the first elector creates it along with the lease.
  const { client: fake } = await openRegistryHarness({ clock, test: t });
  const log: string[] = [];
  const make = (identity: string, client: ObjectClient) =>
    new LeaderElector({
      client,
      identity,
      clock,
      leaseName: 'controllers',
      onStartedLeading: () => void log.push(`${identity} started`),
      onStoppedLeading: () => void log.push(`${identity} stopped`),
    });
  const lease = async () => ((await fake.get(leaseKind, 'metalplane-system', 'controllers'))?.spec ?? {}) as LeaseSpec;
  /** Moves time in small steps, letting the electors' async calls finish, and checks safety all along. */
  const run = async (ms: number, electors: LeaderElector[], step = 250) => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(step);
      await settle(4);
      assert.ok(electors.filter((e) => e.isLeader()).length <= 1, `two leaders at once at +${t} ms`);
    }
  };
  return { clock, fake, log, make, lease, run };
}

test('MicroTime has microsecond precision', () => {
  assert.equal(formatMicroTime(Date.UTC(2026, 0, 1, 0, 0, 0, 123)), '2026-01-01T00:00:00.123000Z');
});

test('of two electors exactly one leads, and keeps leading while it renews', async (t) => {
  const { fake, log, make, lease, run } = await setup(t);
  const a = make('a', fake);
  const b = make('b', fake);
  a.start();
  await run(250, [a, b]);
  b.start();
  await run(20_000, [a, b]);
  assert.equal(a.isLeader(), true);
  assert.equal(b.isLeader(), false);
  assert.deepEqual(log, ['a started']);
  const spec = await lease();
  assert.equal(spec.holderIdentity, 'a');
  assert.equal(spec.leaseDurationSeconds, 15);
  assert.equal(spec.leaseTransitions, 0);
  assert.match(spec.renewTime!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  assert.ok(spec.renewTime! > spec.acquireTime!, 'renewed since acquired');
  assert.equal(b.leader(), 'a');
  await b.stop();
  await a.stop();
});

test('a partitioned leader steps down, and the other takes over only after the lease expired', async (t) => {
  const { clock, fake, log, make, lease, run } = await setup(t);
  let aDown = false;
  const a = make('a', fake.view(() => aDown));
  const b = make('b', fake);
  a.start();
  await run(250, [a, b]);
  b.start();
  await run(4_000, [a, b]);
  assert.equal(a.isLeader(), true);
  const lastRenew = Date.parse((await lease()).renewTime!);

  aDown = true;
  await run(9_000, [a, b]);
  assert.equal(a.isLeader(), true, 'still within the renew deadline (10 s)');
  await run(2_000, [a, b]);
  assert.equal(a.isLeader(), false, 'stepped down after the renew deadline');
  assert.equal(b.isLeader(), false, 'the lease is not expired yet for b');
  await run(6_000, [a, b]);
  assert.equal(b.isLeader(), true);
  const spec = await lease();
  assert.equal(spec.holderIdentity, 'b');
  assert.equal(spec.leaseTransitions, 1);
  assert.ok(Date.parse(spec.acquireTime!) - lastRenew >= 15_000, 'b waited a full lease duration since the last renewal it saw');
  assert.deepEqual(log, ['a started', 'a stopped', 'b started']);

  // a comes back: it must not take the lease from b.
  aDown = false;
  await run(10_000, [a, b]);
  assert.equal(b.isLeader(), true);
  assert.equal(a.isLeader(), false);
  assert.ok(clock.now() > 0);
  await a.stop();
  await b.stop();
});

test('stop releases the lease so the next replica takes over without waiting for expiry', async (t) => {
  const { fake, log, make, lease, run } = await setup(t);
  const a = make('a', fake);
  const b = make('b', fake);
  a.start();
  await run(250, [a, b]);
  b.start();
  await run(3_000, [a, b]);
  await a.stop();
  assert.equal((await lease()).holderIdentity, '');
  await run(3_000, [a, b]);
  assert.equal(b.isLeader(), true, 'within a retry interval, far below the 15 s lease');
  assert.deepEqual(log, ['a started', 'a stopped', 'b started']);
  assert.equal((await lease()).leaseTransitions, 1);
  await b.stop();
});

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import pino from 'pino';
import { FakeClock } from '../lib/clock.js';
import { ApiError } from '../lib/errors.js';
import { Controller, enqueueOwners, TerminalError, type ReconcileOutcome, type Result } from './controller.js';
import { Informer } from './informer.js';
import { memoryLogger, type Logger } from './logger.js';
import { configMapKind as ConfigMap, namespaceKind as Namespace } from '../kinds/index.js';
import { eventually, openRegistryHarness, settle, testKinds } from '../testing/registry-harness.js';

// A custom kind without rules of its own stands in for any owner kind.
const { Widget } = testKinds;

// The runtime's Logger must accept the server's pino logger as is.
const _pinoFits: Logger = pino({ level: 'silent' });
void _pinoFits;

async function setup(t: TestContext) {
  const clock = new FakeClock();
  const { client } = await openRegistryHarness({ clock, test: t });
  await client.create(Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns' } });
  return { clock, client };
}

test('results decide what happens next: done, after, error with backoff, terminal, thrown', async (t) => {
  const { clock, client } = await setup(t);
  const cms = new Informer({ client, kind: ConfigMap, clock });
  const calls = new Map<string, number[]>();
  const outcomes: ReconcileOutcome[] = [];
  const script: Record<string, (n: number) => Result> = {
    'ns/done': () => ({ done: true }),
    'ns/after': (n) => (n < 3 ? { after: 1000 } : { done: true }),
    'ns/flaky': (n) => (n < 4 ? { error: new Error('not yet') } : { done: true }),
    'ns/terminal': () => ({ error: new Error('bad spec'), terminal: true }),
    'ns/throws': (n) => {
      if (n < 2) throw new Error('thrown');
      return { done: true };
    },
    'ns/throws-terminal': () => {
      throw new TerminalError('never');
    },
  };
  const log = memoryLogger();
  const c = new Controller({
    name: 'test',
    clock,
    logger: log,
    workers: 2,
    watches: [{ informer: cms }],
    metrics: { observeReconcile: (_n, o) => void outcomes.push(o) },
    reconciler: {
      async reconcile(key) {
        const times = calls.get(key) ?? [];
        times.push(clock.now());
        calls.set(key, times);
        return script[key]!(times.length);
      },
    },
  });
  for (const name of Object.keys(script)) {
    await client.create(ConfigMap, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name.slice(3), namespace: 'ns' } });
  }
  await c.start();
  const t0 = clock.now();
  await eventually(() => (calls.get('ns/after')?.length ?? 0) === 3 && (calls.get('ns/flaky')?.length ?? 0) === 4, { clock, stepMs: 5, rounds: 1000 });
  await settle();
  clock.advance(60_000);
  await settle();

  const count = (k: string) => calls.get(k)?.length ?? 0;
  assert.equal(count('ns/done'), 1);
  assert.equal(count('ns/after'), 3);
  assert.equal(count('ns/flaky'), 4);
  assert.equal(count('ns/terminal'), 1, 'terminal errors are not retried');
  assert.equal(count('ns/throws'), 2, 'a thrown error is retried');
  assert.equal(count('ns/throws-terminal'), 1);
  const gaps = (k: string) => calls.get(k)!.slice(1).map((t, i) => t - calls.get(k)![i]!);
  assert.deepEqual(gaps('ns/flaky'), [5, 10, 20], 'exponential backoff from 5 ms');
  assert.deepEqual(gaps('ns/after'), [1000, 1000]);
  assert.ok(calls.get('ns/after')![0]! - t0 < 10);
  const terminalLogs = log.entries.filter((e) => e.level === 'error' && /terminal/.test(e.msg ?? ''));
  assert.equal(terminalLogs.length, 2);
  assert.ok(outcomes.includes('terminal_error') && outcomes.includes('requeue_after') && outcomes.includes('error') && outcomes.includes('success'));
  await c.stop();
  cms.stop();
});

test('watched kinds map to owner keys; stop waits for the reconcile in flight and takes no more keys', async (t) => {
  const { clock, client } = await setup(t);
  const devices = new Informer({ client, kind: Widget, clock });
  const cms = new Informer({ client, kind: ConfigMap, clock });
  const seen: string[] = [];
  const c = new Controller({
    name: 'devices',
    clock,
    watches: [{ informer: devices }, { informer: cms, map: enqueueOwners(Widget) }],
    reconciler: {
      async reconcile(key) {
        seen.push(key);
        return { done: true };
      },
    },
  });
  await c.start();
  const d = await client.create(Widget, { apiVersion: 'test.metalplane.dev/v1', kind: 'Widget', metadata: { name: 'd1', namespace: 'ns' }, spec: {} });
  await eventually(() => seen.length === 1);
  await client.create(ConfigMap, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'userdata', namespace: 'ns', ownerReferences: [{ apiVersion: 'test.metalplane.dev/v1', kind: 'Widget', name: 'd1', uid: d.metadata.uid }] },
  });
  await client.create(ConfigMap, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'unowned', namespace: 'ns' } });
  await eventually(() => seen.length === 2);
  await settle();
  assert.deepEqual(seen, ['ns/d1', 'ns/d1'], 'the owned ConfigMap enqueued its Widget; the unowned one nothing');
  await c.stop();
  await client.create(Widget, { apiVersion: 'test.metalplane.dev/v1', kind: 'Widget', metadata: { name: 'd2', namespace: 'ns' }, spec: {} });
  await settle(5);
  assert.equal(seen.length, 2, 'nothing reconciled after stop');
  devices.stop();
  cms.stop();
});

test('conflicts are retried quietly (debug), other errors are logged as errors', async (t) => {
  const { clock, client } = await setup(t);
  const cms = new Informer({ client, kind: ConfigMap, clock });
  const log = memoryLogger();
  let n = 0;
  const c = new Controller({
    name: 'x',
    clock,
    logger: log,
    watches: [{ informer: cms }],
    reconciler: {
      async reconcile() {
        n++;
        if (n === 1) return { error: ApiError.conflict('modified') };
        if (n === 2) return { error: new Error('boom') };
        return { done: true };
      },
    },
  });
  await client.create(ConfigMap, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'ns' } });
  await c.start();
  await eventually(() => n === 3, { clock, stepMs: 5 });
  const failures = log.entries.filter((e) => /retrying/.test(e.msg ?? '')).map((e) => e.level);
  assert.deepEqual(failures, ['debug', 'error']);
  await c.stop();
  cms.stop();
});

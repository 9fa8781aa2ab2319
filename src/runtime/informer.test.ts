import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { FakeClock } from '../lib/clock.js';
import { ApiError } from '../lib/errors.js';
import type { StoredObject } from '../kinds/types.js';
import { Informer, InformerFactory } from './informer.js';
import { configMapKind as ConfigMap, namespaceKind as Namespace } from '../kinds/index.js';
import { eventually, openRegistryHarness, settle } from '../testing/registry-harness.js';

function recorder() {
  const events: string[] = [];
  return {
    events,
    handler: {
      onAdd: (o: StoredObject) => void events.push(`add ${o.metadata.name}`),
      onUpdate: (a: StoredObject, b: StoredObject) => void events.push(`${a === b ? 'resync' : 'update'} ${b.metadata.name}`),
      onDelete: (o: StoredObject) => void events.push(`delete ${o.metadata.name}`),
    },
  };
}

async function setup(t: TestContext, n: number) {
  const clock = new FakeClock();
  const { client } = await openRegistryHarness({ clock, test: t });
  await client.create(Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns' } });
  for (let i = 1; i <= n; i++) {
    await client.create(ConfigMap, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i}`, namespace: 'ns' }, data: { v: '0' } });
  }
  return { clock, client };
}

const cm = (name: string, v: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'ns' }, data: { v } });

test('lists in pages, syncs, then follows the watch', async (t) => {
  const { clock, client } = await setup(t, 7);
  const inf = new Informer({ client, kind: ConfigMap, clock, pageSize: 3 });
  const r = recorder();
  inf.addHandler(r.handler);
  inf.start();
  await inf.waitForSync();
  assert.equal(client.calls.list, 3, '7 objects in pages of 3');
  assert.ok(inf.hasSynced());
  assert.equal(inf.list().length, 7);
  assert.equal(r.events.filter((e) => e.startsWith('add')).length, 7);

  r.events.length = 0;
  await client.create(ConfigMap, cm('cm-8', '0'));
  const cur = (await client.get(ConfigMap, 'ns', 'cm-1'))!;
  await client.update(ConfigMap, { ...cur, data: { v: '1' } });
  await client.delete(ConfigMap, 'ns', 'cm-2');
  await eventually(() => r.events.length === 3);
  assert.deepEqual(r.events, ['add cm-8', 'update cm-1', 'delete cm-2']);
  assert.deepEqual(inf.get('ns', 'cm-1')!.data, { v: '1' });
  assert.equal(inf.lastSyncResourceVersion(), String(await client.revision()));
  inf.stop();
  assert.equal(client.openWatches(), 0);
});

test('after a 410 Expired it relists and emits what it missed: deletes, updates, adds — nothing else', async (t) => {
  const { clock, client } = await setup(t, 4);
  const inf = new Informer({ client, kind: ConfigMap, clock });
  const r = recorder();
  inf.addHandler(r.handler);
  inf.start();
  await inf.waitForSync();
  r.events.length = 0;

  // The stream breaks: these changes never reach the informer, then history is compacted away.
  client.dropWatchEvents = true;
  await client.delete(ConfigMap, 'ns', 'cm-1');
  const cm2 = (await client.get(ConfigMap, 'ns', 'cm-2'))!;
  await client.update(ConfigMap, { ...cm2, data: { v: 'changed' } });
  await client.create(ConfigMap, cm('cm-5', '0'));
  // cm-3 is deleted and re-created under the same name: a different object.
  await client.delete(ConfigMap, 'ns', 'cm-3');
  await client.create(ConfigMap, cm('cm-3', 'again'));
  await settle();
  assert.deepEqual(r.events, [], 'the informer saw nothing yet');
  client.dropWatchEvents = false;
  await client.compact();
  const listsBefore = client.calls.list;
  client.expireWatches();

  await eventually(() => r.events.length >= 5);
  assert.equal(client.calls.list, listsBefore + 1, 'relisted once, at once (no backoff for the first expiry)');
  assert.deepEqual(r.events.sort(), ['add cm-3', 'add cm-5', 'delete cm-1', 'delete cm-3', 'update cm-2'].sort());
  assert.deepEqual(inf.list().map((o) => o.metadata.name).sort(), ['cm-2', 'cm-3', 'cm-4', 'cm-5']);
  assert.deepEqual(inf.get('ns', 'cm-3')!.data, { v: 'again' });

  // And it watches again from the new list's revision.
  r.events.length = 0;
  await client.create(ConfigMap, cm('cm-6', '0'));
  await eventually(() => r.events.length === 1);
  assert.deepEqual(r.events, ['add cm-6']);
  assert.equal(client.openWatches(), 1);
  inf.stop();
});

test('a watch that is refused with 410 (revision compacted between list and watch) relists at once', async (t) => {
  const { clock, client } = await setup(t, 2);
  client.failNext('watch', ApiError.gone('too old resource version'));
  const inf = new Informer({ client, kind: ConfigMap, clock });
  inf.start();
  await eventually(() => client.openWatches() === 1);
  assert.equal(client.calls.list, 2, 'listed again without waiting for the clock');
  assert.equal(client.calls.watch, 2);
  await client.create(ConfigMap, cm('cm-3', '0'));
  await eventually(() => inf.list().length === 3);
  inf.stop();
});

test('failed lists are retried with backoff on the clock', async (t) => {
  const { clock, client } = await setup(t, 1);
  client.failNext('list', new ApiError(503, 'ServiceUnavailable', 'down'), 3);
  const inf = new Informer({ client, kind: ConfigMap, clock, retryBaseDelayMs: 100 });
  inf.start();
  await settle();
  assert.equal(client.calls.list, 1);
  assert.equal(inf.hasSynced(), false);
  clock.advance(99);
  await settle();
  assert.equal(client.calls.list, 1, 'not before the first backoff (100 ms)');
  clock.advance(1);
  await settle();
  assert.equal(client.calls.list, 2);
  clock.advance(199);
  await settle();
  assert.equal(client.calls.list, 2, 'the second backoff is 200 ms');
  clock.advance(1);
  await settle();
  assert.equal(client.calls.list, 3);
  clock.advance(400);
  await inf.waitForSync();
  assert.equal(inf.list().length, 1);
  inf.stop();
});

test('periodic resync re-notifies every cached object; late handlers get the cache replayed', async (t) => {
  const { clock, client } = await setup(t, 2);
  const inf = new Informer({ client, kind: ConfigMap, clock, resyncIntervalMs: 1000 });
  const r = recorder();
  inf.addHandler(r.handler);
  inf.start();
  await inf.waitForSync();
  r.events.length = 0;
  clock.advance(1000);
  assert.deepEqual(r.events.sort(), ['resync cm-1', 'resync cm-2']);
  const late = recorder();
  inf.addHandler(late.handler);
  assert.deepEqual(late.events.sort(), ['add cm-1', 'add cm-2']);
  inf.stop();
});

test('objects in the cache are frozen copies: the client may keep mutating its own', async (t) => {
  const { clock, client } = await setup(t, 1);
  const inf = new Informer({ client, kind: ConfigMap, clock });
  inf.start();
  await inf.waitForSync();
  const o = inf.get('ns', 'cm-1')!;
  assert.ok(Object.isFrozen(o.metadata));
  assert.throws(() => {
    (o as unknown as { data: unknown }).data = {};
  }, TypeError);
  const stop = new Informer({ client, kind: ConfigMap, clock });
  const pending = stop.waitForSync();
  stop.stop();
  await assert.rejects(pending, /stopped before it synced/);
  inf.stop();
});

test('a metadata-only informer keeps what identifies objects and drives their lifecycle, not their content', async (t) => {
  const { clock, client } = await setup(t, 2);
  const inf = new Informer({ client, kind: ConfigMap, clock, pageSize: 1, metadataOnly: true });
  const r = recorder();
  inf.addHandler(r.handler);
  inf.start();
  await inf.waitForSync();
  const listed = inf.get('ns', 'cm-1')!;
  assert.deepEqual(Object.keys(listed).sort(), ['apiVersion', 'kind', 'metadata']);
  assert.deepEqual(Object.keys(listed.metadata).sort(), ['creationTimestamp', 'name', 'namespace', 'resourceVersion', 'uid']);
  assert.ok(Object.isFrozen(listed) && Object.isFrozen(listed.metadata));

  // Changes of content and of lifecycle both arrive; only the lifecycle is kept.
  r.events.length = 0;
  const cur = (await client.get(ConfigMap, 'ns', 'cm-1'))!;
  await client.update(ConfigMap, { ...cur, metadata: { ...cur.metadata, labels: { a: 'b' }, annotations: { note: 'x'.repeat(100) }, finalizers: ['example.com/hold'] }, data: { v: '1' } });
  await client.delete(ConfigMap, 'ns', 'cm-1');
  await client.delete(ConfigMap, 'ns', 'cm-2');
  await eventually(() => r.events.length === 3);
  assert.deepEqual(r.events, ['update cm-1', 'update cm-1', 'delete cm-2']);
  const held = inf.get('ns', 'cm-1')!;
  assert.deepEqual(held.metadata.labels, { a: 'b' });
  assert.deepEqual(held.metadata.finalizers, ['example.com/hold']);
  assert.ok(held.metadata.deletionTimestamp, 'being deleted');
  assert.equal(held.metadata.annotations, undefined);
  assert.equal(held.metadata.managedFields, undefined);
  assert.equal((held as { data?: unknown }).data, undefined);
  assert.equal(held.metadata.resourceVersion, (await client.get(ConfigMap, 'ns', 'cm-1'))!.metadata.resourceVersion);
  inf.stop();
});

test('metadata-only informers share one projection per stored version; a factory reuses its whole-object informer', async (t) => {
  const { clock, client } = await setup(t, 1);
  const a = new InformerFactory({ client, clock });
  const b = new InformerFactory({ client, clock });
  const ia = a.metadataInformerFor(ConfigMap);
  const ib = b.metadataInformerFor(ConfigMap);
  assert.equal(a.metadataInformerFor(ConfigMap), ia, 'shared within a factory');
  a.start();
  b.start();
  await Promise.all([a.waitForSync(), b.waitForSync()]);
  assert.equal(ia.get('ns', 'cm-1'), ib.get('ns', 'cm-1'), 'the listed projection is one object');
  await client.create(ConfigMap, cm('cm-2', '0'));
  await eventually(() => ia.get('ns', 'cm-2') !== undefined && ib.get('ns', 'cm-2') !== undefined);
  assert.equal(ia.get('ns', 'cm-2'), ib.get('ns', 'cm-2'), 'the watched projection is one object');

  const whole = b.informerFor(Namespace);
  assert.equal(b.metadataInformerFor(Namespace), whole, 'a whole-object informer of the kind is a superset');
  a.stop();
  b.stop();
});

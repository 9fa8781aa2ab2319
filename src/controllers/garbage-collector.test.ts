import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { FakeClock } from '../lib/clock.js';
import type { KindDeclaration, OwnerReference, StoredObject } from '../kinds/types.js';
import { apiVersionOf } from '../kinds/types.js';
import { configMapKind as ConfigMap, namespaceKind as Namespace } from '../kinds/index.js';
import { eventually, openRegistryHarness, settle, testKinds } from '../testing/registry-harness.js';
import { startCoreControllers } from './index.js';

// Custom kinds without rules of their own, namespaced and cluster-scoped: owners and dependents of any kind.
const { Widget, ClusterWidget } = testKinds;

function ref(kind: KindDeclaration, owner: StoredObject, extra: Partial<OwnerReference> = {}): OwnerReference {
  return { apiVersion: apiVersionOf(kind), kind: kind.kind, name: owner.metadata.name, uid: owner.metadata.uid, ...extra };
}

async function setup(t: TestContext) {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const { client, kinds } = await openRegistryHarness({ clock, test: t });
  await client.create(Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns' } });
  await client.create(Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other' } });
  const make = (kind: KindDeclaration, name: string, meta: Partial<StoredObject['metadata']> = {}, namespace = 'ns') =>
    client.create(kind, {
      apiVersion: apiVersionOf(kind),
      kind: kind.kind,
      metadata: { name, ...(kind.scope === 'Namespaced' ? { namespace } : {}), ...meta },
      spec: {},
    });
  const exists = async (kind: KindDeclaration, name: string, namespace = 'ns') =>
    (await client.get(kind, kind.scope === 'Namespaced' ? namespace : undefined, name)) !== undefined;
  const get = async (kind: KindDeclaration, name: string, namespace = 'ns') => (await client.get(kind, kind.scope === 'Namespaced' ? namespace : undefined, name))!;
  let core: ReturnType<typeof startCoreControllers> | undefined;
  const start = async () => {
    core = startCoreControllers({ client, kinds, clock, resyncIntervalMs: 0 });
    await core.informers.waitForSync();
    await settle(5);
  };
  const stop = () => core?.stop();
  /** Records the revision at which each object was deleted. */
  const deletions = new Map<string, number>();
  for (const k of [ConfigMap, Widget, ClusterWidget]) {
    await client.watch(k, { resourceVersion: '0' }, (e) => {
      if (e.type === 'DELETED') deletions.set(`${e.object.kind}/${e.object.metadata.name}`, Number(e.object.metadata.resourceVersion));
    });
  }
  return { clock, client, make, exists, get, start, stop, deletions };
}

test('background: a dependent goes when all its owners are gone; one live owner keeps it', async (t) => {
  const { client, make, exists, get, start, stop } = await setup(t);
  const hw1 = await make(ClusterWidget, 'hw1');
  const hw2 = await make(ClusterWidget, 'hw2');
  await make(Widget, 'only-hw1', { ownerReferences: [ref(ClusterWidget, hw1)] });
  await make(Widget, 'both', { ownerReferences: [ref(ClusterWidget, hw1), ref(ClusterWidget, hw2)] });
  await make(Widget, 'only-hw2', { ownerReferences: [ref(ClusterWidget, hw2)] });
  await start();
  await settle(10);
  assert.ok(await exists(Widget, 'only-hw1'), 'nothing is collected while owners live');

  await client.delete(ClusterWidget, undefined, 'hw1');
  await eventually(async () => !(await exists(Widget, 'only-hw1')));
  await eventually(async () => (await get(Widget, 'both')).metadata.ownerReferences?.length === 1);
  assert.deepEqual((await get(Widget, 'both')).metadata.ownerReferences!.map((r) => r.name), ['hw2'], 'the dangling reference was pruned');
  assert.ok(await exists(Widget, 'only-hw2'));
  await stop();
});

test('background: dangling references at start-up are collected, including wrong uids and invalid scopes', async (t) => {
  const { make, exists, start, stop } = await setup(t);
  const hw = await make(ClusterWidget, 'hw');
  const d = await make(Widget, 'd');
  await make(ConfigMap, 'no-such-owner', { ownerReferences: [{ apiVersion: 'metalplane.dev/v1alpha1', kind: 'Hardware', name: 'ghost', uid: 'ghost-uid' }] });
  await make(ConfigMap, 'wrong-uid', { ownerReferences: [{ ...ref(ClusterWidget, hw), uid: 'an-older-hw' }] });
  await make(ConfigMap, 'other-namespace', { ownerReferences: [ref(Widget, d)] }, 'other');
  await make(ClusterWidget, 'owned-by-namespaced', { ownerReferences: [ref(Widget, d)] });
  await make(ConfigMap, 'fine', { ownerReferences: [ref(Widget, d)] });
  await make(ConfigMap, 'unknown-kind', { ownerReferences: [{ apiVersion: 'example.com/v1', kind: 'Widget', name: 'w', uid: 'w-uid' }] });
  await start();
  await eventually(async () => !(await exists(ConfigMap, 'no-such-owner')));
  await eventually(async () => !(await exists(ConfigMap, 'wrong-uid')));
  await eventually(async () => !(await exists(ConfigMap, 'other-namespace', 'other')));
  await eventually(async () => !(await exists(ClusterWidget, 'owned-by-namespaced')));
  await settle(10);
  assert.ok(await exists(ConfigMap, 'fine'));
  assert.ok(await exists(ConfigMap, 'unknown-kind'), 'an owner of an unknown kind cannot be proven absent');
  await stop();
});

test('background: an owner the cache has not seen yet is confirmed live, not taken for gone', async (t) => {
  const { client, make, exists, start, stop } = await setup(t);
  await start();
  // The Widget informer lags behind the ConfigMap informer: the GC sees the dependent first.
  const release = client.holdWatchEvents(Widget);
  const owner = await make(Widget, 'd');
  // Counted before the dependent is written: the store delivers its watch event before the write resolves.
  const gets = client.calls.get;
  await make(ConfigMap, 'c', { ownerReferences: [ref(Widget, owner)] });
  await settle(20);
  assert.ok(client.calls.get > gets, 'the GC looked the owner up live');
  assert.ok(await exists(ConfigMap, 'c'));
  release();
  await settle(20);
  assert.ok(await exists(ConfigMap, 'c'));
  await stop();
});

test('foreground: dependents go first (down the chain), blocking ones hold the owner, shared ones are released', async (t) => {
  const { client, make, exists, get, start, stop, deletions } = await setup(t);
  const owner = await make(Widget, 'owner');
  const keeper = await make(Widget, 'keeper');
  const block = { blockOwnerDeletion: true };
  await make(ConfigMap, 'leaf', { ownerReferences: [ref(Widget, owner, block)] });
  const mid = await make(Widget, 'mid', { ownerReferences: [ref(Widget, owner, block)] });
  await make(ConfigMap, 'grandchild', { ownerReferences: [ref(Widget, mid, block)] });
  await make(ConfigMap, 'held', { ownerReferences: [ref(Widget, owner, block)], finalizers: ['example.com/hold'] });
  await make(ConfigMap, 'shared', { ownerReferences: [ref(Widget, owner, block), ref(Widget, keeper)] });
  await make(ConfigMap, 'loose', { ownerReferences: [ref(Widget, owner)] });
  await start();

  const marked = await client.delete(Widget, 'ns', 'owner', { propagationPolicy: 'Foreground' });
  assert.deepEqual(marked.metadata.finalizers, ['foregroundDeletion']);

  await eventually(async () => !(await exists(ConfigMap, 'leaf')) && !(await exists(Widget, 'mid')) && !(await exists(ConfigMap, 'loose')));
  assert.ok(!(await exists(ConfigMap, 'grandchild')));
  assert.ok(deletions.get('ConfigMap/grandchild')! < deletions.get('Widget/mid')!, 'mid waited for its own dependent');
  await eventually(async () => (await get(ConfigMap, 'shared')).metadata.ownerReferences?.length === 1);
  assert.deepEqual((await get(ConfigMap, 'shared')).metadata.ownerReferences!.map((r) => r.name), ['keeper']);

  // The dependent held by a finalizer still blocks the owner.
  await settle(10);
  const waiting = await get(Widget, 'owner');
  assert.ok(waiting.metadata.deletionTimestamp);
  assert.deepEqual(waiting.metadata.finalizers, ['foregroundDeletion']);
  const held = await get(ConfigMap, 'held');
  assert.ok(held.metadata.deletionTimestamp);

  await client.update(ConfigMap, { ...held, metadata: { ...held.metadata, finalizers: [] } });
  await eventually(async () => !(await exists(Widget, 'owner')));
  assert.ok(deletions.get('Widget/owner')! > deletions.get('ConfigMap/held')!);
  assert.ok(deletions.get('Widget/owner')! > deletions.get('Widget/mid')!);
  assert.ok(await exists(ConfigMap, 'shared'));
  assert.ok(await exists(Widget, 'keeper'));
  await stop();
});

test('orphan: dependents lose the reference and stay; then the owner goes', async (t) => {
  const { client, make, exists, get, start, stop } = await setup(t);
  const owner = await make(Widget, 'owner');
  const other = await make(Widget, 'other-owner');
  await make(ConfigMap, 'a', { ownerReferences: [ref(Widget, owner, { controller: true, blockOwnerDeletion: true })] });
  await make(ConfigMap, 'b', { ownerReferences: [ref(Widget, owner), ref(Widget, other)] });
  await start();
  const marked = await client.delete(Widget, 'ns', 'owner', { propagationPolicy: 'Orphan' });
  assert.deepEqual(marked.metadata.finalizers, ['orphan']);
  await eventually(async () => !(await exists(Widget, 'owner')));
  await settle(10);
  assert.ok(await exists(ConfigMap, 'a'));
  assert.equal((await get(ConfigMap, 'a')).metadata.ownerReferences, undefined);
  assert.deepEqual((await get(ConfigMap, 'b')).metadata.ownerReferences!.map((r) => r.name), ['other-owner']);
  await stop();
});

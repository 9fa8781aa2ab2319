import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { FakeClock } from '../lib/clock.js';
import type { Condition, KubeObject } from '../kinds/types.js';
import { getCondition } from '../runtime/conditions.js';
import { InformerFactory } from '../runtime/informer.js';
import { configMapKind as ConfigMap, namespaceKind as Namespace } from '../kinds/index.js';
import { eventually, openRegistryHarness, settle, testKinds } from '../testing/registry-harness.js';
import { createNamespaceController, NamespaceConditionType } from './namespace.js';

// A custom kind without rules of its own (a real Device would also carry the device controller's finalizer).
const { Widget } = testKinds;

async function setup(t: TestContext) {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const { client, kinds } = await openRegistryHarness({ clock, test: t });
  const informers = new InformerFactory({ client, clock });
  const controller = createNamespaceController({ client, kinds, informers, clock, recheckMs: 5_000 });
  const ns = (name: string) => client.create(Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  const cm = (namespace: string, name: string, finalizers?: string[]) =>
    client.create(ConfigMap, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, ...(finalizers ? { finalizers } : {}) } });
  const widget = (namespace: string, name: string, finalizers?: string[]) =>
    client.create(Widget, { apiVersion: 'test.metalplane.dev/v1', kind: 'Widget', metadata: { name, namespace, ...(finalizers ? { finalizers } : {}) }, spec: { plan: 'c3.small.x86' } });
  const conditions = async (name: string) => (((await client.get(Namespace, undefined, name))?.status ?? {}) as { conditions?: Condition[] }).conditions;
  const start = async () => {
    informers.start();
    await controller.start();
  };
  const stop = async () => {
    await controller.stop();
    informers.stop();
  };
  return { clock, client, ns, cm, widget, conditions, start, stop };
}

test('a deleted namespace is emptied, waits for finalizers, reports what remains, then goes', async (t) => {
  const { client, ns, cm, widget, conditions, start, stop } = await setup(t);
  await ns('doomed');
  await ns('keep');
  await cm('doomed', 'a');
  await cm('doomed', 'b');
  await widget('doomed', 'free');
  await widget('doomed', 'held', ['example.com/hold']);
  await cm('keep', 'a');
  await start();

  const deleting = await client.delete(Namespace, undefined, 'doomed');
  assert.ok(deleting.metadata.deletionTimestamp, 'held by spec.finalizers ["kubernetes"]');

  await eventually(async () => (await conditions('doomed'))?.length === 3);
  assert.deepEqual(await client.all(ConfigMap, 'doomed'), []);
  const left = await client.all(Widget, 'doomed');
  assert.deepEqual(left.map((d) => d.metadata.name), ['held']);
  assert.ok(left[0]!.metadata.deletionTimestamp);
  const conds = (await conditions('doomed'))!;
  assert.deepEqual(
    [NamespaceConditionType.ContentFailure, NamespaceConditionType.ContentRemaining, NamespaceConditionType.FinalizersRemaining].map((t) => {
      const c = getCondition(conds, t)!;
      return [c.status, c.reason, c.message];
    }),
    [
      ['False', 'ContentDeleted', 'All content successfully deleted, may be waiting on finalization'],
      ['True', 'SomeResourcesRemain', 'Some resources are remaining: widgets.test.metalplane.dev has 1 resource instances'],
      ['True', 'SomeFinalizersRemain', 'Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances'],
    ],
  );
  const nsNow = (await client.get(Namespace, undefined, 'doomed'))!;
  assert.equal((nsNow.status as { phase: string }).phase, 'Terminating');
  assert.deepEqual((nsNow.spec as { finalizers: string[] }).finalizers, ['kubernetes']);

  // The holder lets go: the deletion event alone (no clock movement) brings the namespace back for a look.
  const held = left[0]!;
  await client.update(Widget, { ...held, metadata: { ...held.metadata, finalizers: [] } });
  await eventually(async () => (await client.get(Namespace, undefined, 'doomed')) === undefined);

  assert.equal((await client.all(ConfigMap, 'keep')).length, 1, 'other namespaces are untouched');
  assert.ok(await client.get(Namespace, undefined, 'keep'));
  await stop();
});

test('waiting is level-based: rechecks without rewriting an unchanged status', async (t) => {
  const { clock, client, ns, cm, start, stop } = await setup(t);
  await ns('doomed');
  await cm('doomed', 'held', ['example.com/hold']);
  await start();
  await client.delete(Namespace, undefined, 'doomed');
  await eventually(() => client.calls.updateStatus === 1);
  const lists = client.calls.list;
  for (let i = 0; i < 4; i++) {
    clock.advance(5_000);
    await settle(5);
  }
  assert.ok(client.calls.list >= lists + 4 * 4, 'listed content again at every recheck');
  assert.equal(client.calls.updateStatus, 1, 'the unchanged conditions were not written again');
  await stop();
});

test('an empty namespace goes at once; a live one and one without the kubernetes finalizer are left alone', async (t) => {
  const { client, ns, cm, start, stop } = await setup(t);
  await ns('empty');
  await ns('live');
  await cm('live', 'a');
  const other: KubeObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'foreign', finalizers: ['example.com/x'] } };
  const created = await client.create(Namespace, other);
  // A create always gets the kubernetes finalizer (as in kube); only /finalize can take it away.
  await client.update(Namespace, { ...structuredClone(created), spec: { finalizers: [] } }, { subresource: 'finalize' });
  await cm('foreign', 'a');
  await start();
  await client.delete(Namespace, undefined, 'empty');
  await client.delete(Namespace, undefined, 'foreign');
  await eventually(async () => (await client.get(Namespace, undefined, 'empty')) === undefined);
  await settle(5);
  assert.equal((await client.all(ConfigMap, 'live')).length, 1);
  assert.equal((await client.all(ConfigMap, 'foreign')).length, 1, 'not ours to empty: no kubernetes finalizer');
  assert.ok(await client.get(Namespace, undefined, 'foreign'));
  await stop();
});

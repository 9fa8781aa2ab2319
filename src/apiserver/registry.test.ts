// Registry semantics that are hard to reach through kubectl: watch and continue tokens after compaction,
// bookmarks, selector transitions in watches, generation, finalizers and the status subresource.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/types.js';
import { KindRegistry, allKinds } from '../kinds/index.js';
import type { KindDeclaration, KubeObject } from '../kinds/types.js';
import type { ObjectWatchEvent } from '../runtime/client.js';
import { Registry } from './registry.js';
import { ApiError } from '../lib/errors.js';

function cm(name: string, labels: Record<string, string> = {}, data: Record<string, string> = { a: '1' }): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default', labels }, data };
}

async function collect(events: ObjectWatchEvent[], n: number, ms = 2000): Promise<ObjectWatchEvent[]> {
  const deadline = Date.now() + ms;
  while (events.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  return events;
}

describe('Registry', () => {
  let store: Store;
  let reg: Registry;
  let cmKind: KindDeclaration;
  let nsKind: KindDeclaration;
  let planKind: KindDeclaration;

  before(async () => {
    store = openSqliteStore(':memory:');
    reg = new Registry({ store, kinds: new KindRegistry(allKinds), bookmarkIntervalMs: 50 });
    cmKind = reg.kind('', 'ConfigMap');
    nsKind = reg.kind('', 'Namespace');
    planKind = reg.kind('metalplane.dev', 'Plan');
    await reg.start();
    await reg.create(nsKind, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
  });
  after(async () => {
    reg.close();
    await store.close();
  });

  it('answers a create with the text JSON.stringify writes of the created object, spliced or not', async () => {
    const cases: Array<{ name: string; obj: KubeObject; spliced: boolean }> = [
      { name: 'apiVersion, kind, metadata first', obj: cm('json-1', { a: 'b' }), spliced: true },
      { name: 'data first', obj: { data: { x: '}"{' }, metadata: { name: 'json-2', namespace: 'default' }, kind: 'ConfigMap', apiVersion: 'v1' }, spliced: false },
      { name: 'a resourceVersion sent (dropped on create)', obj: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'json-3', namespace: 'default', resourceVersion: '5' } }, spliced: true },
    ];
    for (const c of cases) {
      const { object, json } = await reg.createWithJson(cmKind, c.obj, { fieldManager: 'test' });
      assert.equal(json !== undefined, c.spliced, c.name);
      if (json !== undefined) assert.equal(json, JSON.stringify(object), c.name);
      assert.equal(object.metadata.resourceVersion, String((await reg.getVersion(cmKind, 'default', c.obj.metadata.name!))!.modRevision), c.name);
    }
  });

  it('answers a watch from a compacted resourceVersion with a 410 Expired ERROR event', async () => {
    const first = await reg.create(cmKind, cm('compact-me'));
    for (let i = 0; i < 5; i++) await reg.mergePatch(cmKind, 'default', 'compact-me', { data: { a: String(i) } });
    await store.compact(await store.currentRevision());
    const events: ObjectWatchEvent[] = [];
    await reg.watch(cmKind, { namespace: 'default', resourceVersion: first.metadata.resourceVersion }, (e) => events.push(e));
    assert.equal(events.length, 1);
    assert.equal(events[0].type, 'ERROR');
    const status = events[0].object as unknown as { code: number; reason: string; message: string };
    assert.equal(status.code, 410);
    assert.equal(status.reason, 'Expired');
    assert.match(status.message, /too old resource version/);
  });

  it('refuses a continue token older than the compacted revision with 410', async () => {
    for (let i = 0; i < 4; i++) await reg.create(cmKind, cm(`page-${i}`));
    const page = await reg.list(cmKind, { namespace: 'default', limit: 2 });
    assert.ok(page.continue, 'a first page of 2 must carry a continue token');
    await reg.mergePatch(cmKind, 'default', 'page-0', { data: { b: '2' } });
    await store.compact(await store.currentRevision());
    await assert.rejects(reg.list(cmKind, { namespace: 'default', limit: 2, continue: page.continue }), (e: unknown) => e instanceof ApiError && e.code === 410);
  });

  it('pages consistently at the first page revision while writes happen', async () => {
    const ns = 'paging';
    await reg.create(nsKind, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    for (let i = 0; i < 5; i++) await reg.create(cmKind, { ...cm(`p${i}`), metadata: { name: `p${i}`, namespace: ns } });
    const p1 = await reg.list(cmKind, { namespace: ns, limit: 2 });
    await reg.create(cmKind, { ...cm('p0a'), metadata: { name: 'p0a', namespace: ns } });
    await reg.delete(cmKind, ns, 'p4');
    const names = p1.items.map((o) => o.metadata.name);
    let cont = p1.continue;
    while (cont) {
      const p = await reg.list(cmKind, { namespace: ns, limit: 2, continue: cont });
      assert.equal(p.resourceVersion, p1.resourceVersion);
      names.push(...p.items.map((o) => o.metadata.name));
      cont = p.continue;
    }
    assert.deepEqual(names, ['p0', 'p1', 'p2', 'p3', 'p4']);
  });

  it('sends bookmarks to watches that ask for them, and only to those', async () => {
    const withBm: ObjectWatchEvent[] = [];
    const without: ObjectWatchEvent[] = [];
    const rv = String(await store.currentRevision());
    const w1 = await reg.watch(cmKind, { namespace: 'default', resourceVersion: rv, allowWatchBookmarks: true }, (e) => withBm.push(e));
    const w2 = await reg.watch(cmKind, { namespace: 'default', resourceVersion: rv }, (e) => without.push(e));
    await collect(withBm, 1, 1000);
    w1.stop();
    w2.stop();
    assert.ok(withBm.some((e) => e.type === 'BOOKMARK' && Number(e.object.metadata.resourceVersion) >= Number(rv)));
    assert.equal(without.filter((e) => e.type === 'BOOKMARK').length, 0);
  });

  it('turns label changes into ADDED/DELETED for a selector watch', async () => {
    await reg.create(cmKind, cm('sel', { tier: 'web' }));
    const events: ObjectWatchEvent[] = [];
    const w = await reg.watch(cmKind, { namespace: 'default', resourceVersion: String(await store.currentRevision()), labelSelector: 'tier=db' }, (e) => events.push(e));
    await reg.mergePatch(cmKind, 'default', 'sel', { metadata: { labels: { tier: 'db' } } });
    await reg.mergePatch(cmKind, 'default', 'sel', { data: { x: 'y' } });
    await reg.mergePatch(cmKind, 'default', 'sel', { metadata: { labels: { tier: 'web' } } });
    await collect(events, 3);
    w.stop();
    assert.deepEqual(events.map((e) => e.type), ['ADDED', 'MODIFIED', 'DELETED']);
  });

  it('bumps generation on spec changes only, and keeps status out of main-resource writes', async () => {
    const spec = {
      slug: 'gen.small.x86',
      name: 'Generation test',
      class: 'gen.small.x86',
      line: 'baremetal',
      specs: { cpus: [{ count: 1, type: 'x' }], memory: { total: '8GB' } },
      pricing: { hour: 0.1 },
    };
    const created = await reg.create(planKind, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Plan', metadata: { name: 'gen.small.x86' }, spec, status: { ignored: true } } as KubeObject);
    assert.equal(created.metadata.generation, 1);
    assert.equal(created.status, undefined, 'status is dropped on create when the kind has a status subresource');
    const labelled = await reg.mergePatch(planKind, undefined, 'gen.small.x86', { metadata: { labels: { a: 'b' } } });
    assert.equal(labelled.metadata.generation, 1, 'a metadata change does not bump generation');
    const changed = await reg.mergePatch(planKind, undefined, 'gen.small.x86', { spec: { pricing: { hour: 0.2 } } });
    assert.equal(changed.metadata.generation, 2);
    const withStatus = await reg.mergePatch(planKind, undefined, 'gen.small.x86', { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'Test', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }] } }, { subresource: 'status' });
    assert.equal(withStatus.metadata.generation, 2, 'a status write does not bump generation');
    assert.equal((withStatus.status as { conditions: unknown[] }).conditions.length, 1);
    const mainWrite = await reg.mergePatch(planKind, undefined, 'gen.small.x86', { status: null, spec: { pricing: { hour: 0.3 } } });
    assert.equal((mainWrite.status as { conditions: unknown[] }).conditions.length, 1, 'the main resource cannot change status');
    assert.equal(mainWrite.metadata.generation, 3);
  });

  it('never changes the object a caller hands to create or update', async () => {
    const input = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { generateName: 'untouched-', namespace: 'default', labels: { a: 'b' } }, data: { k: 'v' } } as KubeObject;
    const before = structuredClone(input);
    const created = await reg.create(cmKind, input);
    assert.deepEqual(input, before);
    const change = { ...created, metadata: { ...created.metadata, labels: { a: 'c' } }, data: { k: 'w' } } as KubeObject;
    const snapshot = structuredClone(change);
    const updated = await reg.update(cmKind, change);
    assert.deepEqual(change, snapshot);
    assert.equal(updated.data && (updated.data as Record<string, string>).k, 'w');
    const patched = await reg.mergePatch(cmKind, 'default', created.metadata.name, { data: { k: 'x' } });
    assert.equal((patched.data as Record<string, string>).k, 'x');
    assert.equal((updated.data as Record<string, string>).k, 'w', 'a returned object is the caller\'s own, not shared');
  });

  it('prepares an update from the shared decode when one is at hand, and still answers with objects the caller owns', async () => {
    const created = await reg.create(cmKind, cm('shared-cur', { a: 'b' }, { k: 'v' }));
    const shared = await reg.get(cmKind, 'default', 'shared-cur');
    assert.ok(shared && Object.isFrozen(shared), 'get hands out the shared, frozen decode');
    const codec = (reg as unknown as { codec: { own: (kv: unknown) => unknown } }).codec;
    const own = codec.own.bind(codec);
    let parses = 0;
    codec.own = (kv) => (parses++, own(kv));
    try {
      // A change: prepared from the shared decode (no parse), which stays as it was.
      const changed = await reg.update(cmKind, { ...created, metadata: { ...created.metadata, labels: { a: 'c' } } });
      assert.equal(parses, 0, 'the update parsed the stored text although its decode was at hand');
      assert.equal(changed.metadata.labels!.a, 'c');
      assert.equal(shared.metadata.labels!.a, 'b', 'the shared decode of the old version is unchanged');
      assert.ok(!Object.isFrozen(changed) && !Object.isFrozen(changed.metadata));
      // A no-op: answered with the current version, as a fresh object rather than the shared one.
      const current = await reg.get(cmKind, 'default', 'shared-cur');
      const same = await reg.update(cmKind, { ...changed, metadata: { ...changed.metadata } });
      assert.equal(same.metadata.resourceVersion, changed.metadata.resourceVersion, 'a no-op keeps the resourceVersion');
      assert.notEqual(same, current);
      assert.ok(!Object.isFrozen(same) && !Object.isFrozen(same.metadata) && !Object.isFrozen(same.data));
      (same.data as Record<string, string>).k = 'mine';
      assert.equal((current!.data as Record<string, string>).k, 'v', 'changing the answer does not reach the shared decode');
      assert.equal(((await reg.get(cmKind, 'default', 'shared-cur'))!.data as Record<string, string>).k, 'v');
    } finally {
      codec.own = own;
    }
  });

  it('creates an object by server-side apply in one write, owned by the Apply manager', async () => {
    const events: ObjectWatchEvent[] = [];
    const w = await reg.watch(cmKind, { namespace: 'default', resourceVersion: String(await store.currentRevision()), fieldSelector: 'metadata.name=applied' }, (e) => events.push(e));
    const created = await reg.patch(cmKind, 'default', 'applied', 'apply', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'applied' }, data: { k: 'v' } }, { fieldManager: 'tester' });
    await collect(events, 2, 300);
    w.stop();
    assert.deepEqual(events.map((e) => e.type), ['ADDED']);
    assert.equal(events[0].object.metadata.resourceVersion, created.metadata.resourceVersion);
    const mf = created.metadata.managedFields ?? [];
    assert.deepEqual(mf.map((e) => [e.manager, e.operation]), [['tester', 'Apply']]);
    assert.deepEqual(mf[0].fieldsV1, { 'f:data': { 'f:k': {} } });
  });

  it('checks namespaces from the store before start() and from the in-memory current versions after it', async () => {
    const cold = new Registry({ store, kinds: new KindRegistry(allKinds) });
    try {
      await assert.rejects(cold.create(cmKind, { ...cm('x'), metadata: { name: 'x', namespace: 'nowhere' } }), (e: unknown) => e instanceof ApiError && e.code === 404 && /namespaces "nowhere" not found/.test(e.message));
      await reg.create(nsKind, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'fresh' } });
      // Both see the new namespace at once: the cached registry through its watch, the cold one from the store.
      await reg.create(cmKind, { ...cm('in-fresh'), metadata: { name: 'in-fresh', namespace: 'fresh' } });
      await cold.create(cmKind, { ...cm('in-fresh-2'), metadata: { name: 'in-fresh-2', namespace: 'fresh' } });
      await reg.delete(nsKind, undefined, 'fresh');
      for (const r of [reg, cold]) {
        await assert.rejects(r.create(cmKind, { ...cm('late'), metadata: { name: 'late', namespace: 'fresh' } }), (e: unknown) => e instanceof ApiError && e.code === 403);
      }
    } finally {
      cold.close();
    }
  });

  it('serves point reads that always match the store, even right after concurrent writes are acknowledged', async () => {
    await Promise.all(Array.from({ length: 20 }, (_, i) => reg.create(cmKind, cm(`rw-${i}`))));
    await Promise.all(Array.from({ length: 20 }, (_, i) => reg.mergePatch(cmKind, 'default', `rw-${i % 5}`, { data: { [`k${i}`]: 'v' } })));
    await Promise.all(Array.from({ length: 5 }, (_, i) => reg.delete(cmKind, 'default', `rw-${i + 10}`)));
    for (let i = 0; i < 20; i++) {
      const fromStore = await store.get(`/registry/core/configmaps/default/rw-${i}`);
      const fromRegistry = await reg.get(cmKind, 'default', `rw-${i}`);
      assert.equal(fromRegistry?.metadata.resourceVersion, fromStore ? String(fromStore.modRevision) : undefined, `rw-${i}`);
    }
    const patched = await reg.get(cmKind, 'default', 'rw-0');
    assert.deepEqual(Object.keys(patched!.data as object).sort(), ['a', 'k0', 'k10', 'k15', 'k5']);
  });

  it('keeps an object with finalizers until the last one is removed', async () => {
    await reg.create(cmKind, { ...cm('fin'), metadata: { name: 'fin', namespace: 'default', finalizers: ['example.com/hold'] } });
    const r = await reg.deleteWithResult(cmKind, 'default', 'fin');
    assert.equal(r.gone, false);
    assert.ok(r.object.metadata.deletionTimestamp);
    await assert.rejects(
      reg.mergePatch(cmKind, 'default', 'fin', { metadata: { finalizers: ['example.com/hold', 'example.com/new'] } }),
      (e: unknown) => e instanceof ApiError && e.code === 422 && /no new finalizers/.test(e.message),
    );
    await reg.mergePatch(cmKind, 'default', 'fin', { metadata: { finalizers: null } });
    assert.equal(await reg.get(cmKind, 'default', 'fin'), undefined);
  });

  it('refuses a stale resourceVersion on update with a Conflict', async () => {
    const a = await reg.create(cmKind, cm('stale'));
    await reg.mergePatch(cmKind, 'default', 'stale', { data: { a: '2' } });
    await assert.rejects(reg.update(cmKind, { ...a, data: { a: '3' } }), (e: unknown) => e instanceof ApiError && e.code === 409 && /has been modified/.test(e.message));
  });

  it('refuses creates in a terminating namespace with 403', async () => {
    await reg.create(nsKind, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'doomed' } });
    const r = await reg.deleteWithResult(nsKind, undefined, 'doomed');
    assert.equal(r.gone, false, 'the kubernetes finalizer holds the namespace');
    assert.equal((r.object.status as { phase?: string }).phase, 'Terminating');
    await assert.rejects(
      reg.create(cmKind, { ...cm('late'), metadata: { name: 'late', namespace: 'doomed' } }),
      (e: unknown) => e instanceof ApiError && e.code === 403 && /being terminated/.test(e.message),
    );
  });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StoredObject } from '../kinds/types.js';
import { byLabel, byOwnerUid, Cache, NamespaceIndex, objectKey, splitKey } from './cache.js';

let rv = 0;
function obj(ns: string | undefined, name: string, meta: Partial<StoredObject['metadata']> = {}): StoredObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, ...(ns ? { namespace: ns } : {}), uid: `uid-${ns ?? ''}-${name}`, resourceVersion: String(++rv), creationTimestamp: '2026-01-01T00:00:00Z', ...meta },
  };
}
const owner = (uid: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', name: uid, uid });

test('keys: namespace/name for namespaced objects, name for cluster-scoped ones', () => {
  assert.equal(objectKey(obj('ns', 'a')), 'ns/a');
  assert.equal(objectKey(obj(undefined, 'h')), 'h');
  assert.deepEqual(splitKey('ns/a'), { namespace: 'ns', name: 'a' });
  assert.deepEqual(splitKey('h'), { name: 'h' });
});

test('indexes follow adds, updates and deletes', () => {
  const c = new Cache();
  c.addIndex('owner', byOwnerUid);
  c.addIndex('label', byLabel);
  c.set(obj('ns', 'a', { ownerReferences: [owner('o1')], labels: { app: 'web' } }));
  c.set(obj('ns', 'b', { ownerReferences: [owner('o1'), owner('o2')], labels: { app: 'db' } }));
  c.set(obj('other', 'c', { labels: { app: 'web' } }));

  const names = (xs: StoredObject[]) => xs.map((x) => x.metadata.name).sort();
  const cases: Array<[string, () => string[], string[]]> = [
    ['by owner o1', () => names(c.byIndex('owner', 'o1')), ['a', 'b']],
    ['by owner o2', () => names(c.byIndex('owner', 'o2')), ['b']],
    ['by label app=web', () => names(c.byIndex('label', 'app=web')), ['a', 'c']],
    ['by namespace ns', () => names(c.byIndex(NamespaceIndex, 'ns')), ['a', 'b']],
    ['list(other)', () => names(c.list('other')), ['c']],
  ];
  for (const [name, got, want] of cases) assert.deepEqual(got(), want, name);

  // b loses owner o1 and changes label: old index entries must go.
  c.set(obj('ns', 'b', { ownerReferences: [owner('o2')], labels: { app: 'web' } }));
  assert.deepEqual(names(c.byIndex('owner', 'o1')), ['a']);
  assert.deepEqual(names(c.byIndex('label', 'app=web')), ['a', 'b', 'c']);
  assert.deepEqual(c.byIndex('label', 'app=db'), []);

  c.delete('ns/a');
  assert.deepEqual(c.byIndex('owner', 'o1'), []);
  assert.equal(c.get('ns/a'), undefined);
  assert.equal(c.size, 2);
});

test('the namespace index, built on its first use, covers the writes before it and follows those after', () => {
  const c = new Cache();
  c.set(obj('ns', 'a'));
  c.set(obj('ns', 'b'));
  c.set(obj('other', 'c'));
  c.set(obj(undefined, 'cluster-wide'));
  c.delete('ns/b');
  assert.ok(c.hasIndex(NamespaceIndex));
  assert.throws(() => c.addIndex(NamespaceIndex, () => []), /already exists/);
  const names = (xs: StoredObject[]) => xs.map((x) => x.metadata.name).sort();
  assert.deepEqual(names(c.list('ns')), ['a']);
  assert.deepEqual(names(c.list('other')), ['c']);
  c.set(obj('ns', 'd'));
  c.set(obj('ns', 'a', { labels: { moved: 'no' } }));
  c.delete('other/c');
  assert.deepEqual(names(c.byIndex(NamespaceIndex, 'ns')), ['a', 'd']);
  assert.deepEqual(c.list('other'), []);
  c.clear();
  assert.deepEqual(c.list('ns'), []);
  c.set(obj('ns', 'e'));
  assert.deepEqual(names(c.list('ns')), ['e'], 'kept after clear');
});

test('an index added later covers existing objects; unknown or duplicate indexes are errors', () => {
  const c = new Cache();
  c.set(obj('ns', 'a', { ownerReferences: [owner('o1')] }));
  c.addIndex('owner', byOwnerUid);
  assert.equal(c.byIndex('owner', 'o1').length, 1);
  assert.throws(() => c.addIndex('owner', byOwnerUid), /already exists/);
  assert.throws(() => c.byIndex('nope', 'x'), /does not exist/);
});

test('cached objects are deep-frozen: a caller cannot mutate what others read', () => {
  const c = new Cache();
  c.set(obj('ns', 'a', { labels: { app: 'web' } }));
  const got = c.get('ns/a')!;
  assert.ok(Object.isFrozen(got) && Object.isFrozen(got.metadata) && Object.isFrozen(got.metadata.labels));
  assert.throws(() => {
    (got.metadata.labels as Record<string, string>).app = 'evil';
  }, TypeError);
  const copy = structuredClone(got);
  copy.metadata.labels!.app = 'fine';
  assert.equal(c.get('ns/a')!.metadata.labels!.app, 'web');
});

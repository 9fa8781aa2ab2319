// The codec's texts and objects: a stored version served as JSON is the decoded object (resourceVersion spliced
// in first), from every path (a list's splice, a GET's remembered text, past the few it remembers), and decodes
// are frozen objects shared by the readers of one version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyValue } from '../../store/types.js';
import { ObjectCodec } from './codec.js';

const stored = (i: number, meta: Record<string, unknown> = { name: `cm-${i}`, namespace: 'ns' }): KeyValue => ({
  key: `/registry/configmaps/ns/cm-${i}`,
  value: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: meta, data: { i: String(i), quote: 'a "}{" b' } }),
  createRevision: i,
  modRevision: i + 1000,
});

test('a stored version as JSON text is the decoded object, remembered or not, past the cache size', () => {
  const codec = new ObjectCodec();
  const kvs = Array.from({ length: 600 }, (_, i) => stored(i));
  kvs.push(stored(600, {}));
  for (const round of [1, 2]) {
    for (const kv of kvs) {
      const want = codec.decode(kv);
      const list = codec.rawJson(kv);
      assert.deepEqual(JSON.parse(list), want, `round ${round}, list path`);
      assert.equal(codec.rawJson(kv, true), list, `round ${round}, GET path`);
    }
  }
  const o = JSON.parse(codec.rawJson(kvs[3]!, true)) as { metadata: { resourceVersion: string } };
  assert.equal(o.metadata.resourceVersion, '1003');
});

test('decodes are frozen and shared by the readers of one version; a held version stays shared past the recent ones', () => {
  const codec = new ObjectCodec();
  const held = stored(1);
  const a = codec.decode(held, true);
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.metadata));
  for (let i = 2; i < 600; i++) codec.decode(stored(i));
  assert.equal(codec.decode(held), a, 'held: the same object after 600 other decodes');
  const once = stored(9999);
  const b = codec.decode(once);
  for (let i = 2; i < 600; i++) codec.decode(stored(i));
  assert.notEqual(codec.decode(once), b, 'not held: decoded again once it left the recent ones');
  assert.deepEqual(codec.decode(once), b);
  assert.equal(codec.metadata(held), codec.metadata(held), 'one projection per version');
  assert.equal(codec.metadata(held).metadata.labels, a.metadata.labels);
});

test('a version written through `writing` is projected from the writer\'s object: the same projection, and the writer\'s object stays its own', async () => {
  const codec = new ObjectCodec();
  const obj = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'w', namespace: 'ns', uid: 'u-1', creationTimestamp: '2026-12-01T00:00:00Z', generation: 2, labels: { a: 'b' }, finalizers: ['f'], ownerReferences: [{ apiVersion: 'v1', kind: 'K', name: 'o', uid: 'o-1' }], annotations: { x: 'y' } },
    data: { k: 'v' },
  };
  const value = codec.encode(obj);
  const kv: KeyValue = { key: '/registry/configmaps/ns/w', value, createRevision: 7, modRevision: 7 };
  // The projection a cache gets while the write runs (the store broadcasts before the write resolves)…
  const during = await codec.writing(kv.key, value, obj, async () => codec.metadata(kv));
  // …is what parsing the stored text gives.
  assert.deepEqual(during, new ObjectCodec().metadata(kv));
  assert.equal(during.metadata.resourceVersion, '7');
  assert.ok(Object.isFrozen(during.metadata.labels));
  // The writer may go on changing its object: nothing of it was frozen, nor shared with the projection.
  assert.ok(!Object.isFrozen(obj.metadata.labels) && !Object.isFrozen(obj.metadata.finalizers) && !Object.isFrozen(obj.metadata.ownerReferences[0]));
  obj.metadata.labels.a = 'changed';
  assert.equal(during.metadata.labels!.a, 'b');
  // A version whose text is not the one being written (another write of the key) is parsed, as before.
  const other: KeyValue = { ...kv, value: value.replace('"a":"b"', '"a":"c"'), modRevision: 8 };
  const p = await codec.writing(kv.key, value, obj, async () => codec.metadata(other));
  assert.equal(p.metadata.labels!.a, 'c');
  // After the write, nothing of it is kept.
  const later: KeyValue = { ...kv, modRevision: 9 };
  obj.metadata.labels.a = 'not stored';
  assert.equal(codec.metadata(later).metadata.labels!.a, 'b');
});

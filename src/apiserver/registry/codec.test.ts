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

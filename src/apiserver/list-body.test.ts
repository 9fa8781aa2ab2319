// The streamed list body is exactly the text of the joined list, whatever the number of items; streamed stored
// versions are exactly their joined rawJson.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { streamedList, streamedVersions } from './list-body.js';
import { ObjectCodec } from './registry/codec.js';
import type { KeyValue } from '../store/types.js';

async function text(items: string[]): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of streamedList('{"items":[', items, (s) => s, ']}')) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

for (const n of [0, 1, 2, 511, 512, 513, 1024, 1025, 3000]) {
  test(`a streamed list of ${n} items is the joined list`, async () => {
    // Multi-byte text too: chunks are bytes, each item's UTF-8 kept whole.
    const items = Array.from({ length: n }, (_, i) => JSON.stringify({ name: `o-${i}`, note: i % 7 === 0 ? 'größe ✓' : 'x' }));
    const got = await text(items);
    assert.equal(got, `{"items":[${items.join(',')}]}`);
    assert.equal((JSON.parse(got) as { items: unknown[] }).items.length, n);
  });
}

for (const n of [0, 1, 511, 512, 513, 1025, 3000]) {
  test(`streamed stored versions (${n}) are the joined rawJson of each, byte for byte`, async () => {
    const codec = new ObjectCodec();
    const kvs: KeyValue[] = Array.from({ length: n }, (_, i) => {
      // Multi-byte text, an empty metadata (no comma after the revision), and text whose metadata is not where
      // the splice looks (rawJson re-serializes those).
      const value =
        i % 11 === 3 ? JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: {} })
        : i % 13 === 5 ? JSON.stringify({ data: { a: 'b' }, kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: `o-${i}` } }).replace('"metadata":{', '"metadata" : {')
        : JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `o-${i}`, namespace: 'ns' }, data: { note: i % 7 === 0 ? 'größe ✓ 🚀' : 'x'.repeat(i % 50) } });
      return { key: `/registry/core/configmaps/ns/o-${i}`, value, createRevision: 10 + i, modRevision: 1000 + i };
    });
    const chunks: Buffer[] = [];
    for await (const c of streamedVersions('{"items":[', kvs, codec, ']}')) chunks.push(c as Buffer);
    const got = Buffer.concat(chunks).toString('utf8');
    assert.equal(got, `{"items":[${kvs.map((kv) => codec.rawJson(kv)).join(',')}]}`);
    const items = (JSON.parse(got) as { items: Array<{ metadata: { resourceVersion: string } }> }).items;
    assert.deepEqual(items.map((o) => o.metadata.resourceVersion), kvs.map((kv) => String(kv.modRevision)));
  });
}

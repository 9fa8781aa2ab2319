// The streamed list body is exactly the text of the joined list, whatever the number of items.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { streamedList } from './list-body.js';

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

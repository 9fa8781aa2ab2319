import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../lib/errors.js';
import { applyMergePatch, mergePatch } from './merge-patch.js';

// The examples of RFC 7386, appendix A, plus the object-level rules kubectl relies on.
const cases: Array<{ name: string; target: unknown; patch: unknown; want: unknown }> = [
  { name: 'replace a member', target: { a: 'b' }, patch: { a: 'c' }, want: { a: 'c' } },
  { name: 'add a member', target: { a: 'b' }, patch: { b: 'c' }, want: { a: 'b', b: 'c' } },
  { name: 'null removes', target: { a: 'b' }, patch: { a: null }, want: {} },
  { name: 'null removes one of several', target: { a: 'b', b: 'c' }, patch: { a: null }, want: { b: 'c' } },
  { name: 'array replaces array', target: { a: ['b'] }, patch: { a: 'c' }, want: { a: 'c' } },
  { name: 'scalar replaces array', target: { a: 'c' }, patch: { a: ['b'] }, want: { a: ['b'] } },
  { name: 'nested merge with delete', target: { a: { b: 'c' } }, patch: { a: { b: 'd', c: null } }, want: { a: { b: 'd' } } },
  { name: 'arrays are not merged', target: { a: [{ b: 'c' }] }, patch: { a: [1] }, want: { a: [1] } },
  { name: 'non-object patch replaces', target: ['a', 'b'], patch: ['c', 'd'], want: ['c', 'd'] },
  { name: 'object patch on non-object target', target: { a: 'b' }, patch: ['c'], want: ['c'] },
  { name: 'a null patch replaces the document', target: { a: 'foo' }, patch: null, want: null },
  { name: 'object replaces a scalar', target: 'string', patch: { a: 'b', c: null }, want: { a: 'b' } },
  { name: 'nested nulls in new members are dropped', target: {}, patch: { a: { bb: { ccc: null } } }, want: { a: { bb: {} } } },
  { name: 'kubectl label removal', target: { metadata: { labels: { app: 'web', tier: 'fe' } } }, patch: { metadata: { labels: { tier: null } } }, want: { metadata: { labels: { app: 'web' } } } },
];

for (const c of cases) {
  test(`merge patch: ${c.name}`, () => {
    const before = structuredClone(c.target);
    assert.deepEqual(mergePatch(c.target, c.patch), c.want);
    assert.deepEqual(c.target, before, 'the target is not modified');
  });
}

test('merge patch of an object must be an object', () => {
  for (const patch of [['x'], 'x', 3, null]) {
    assert.throws(
      () => applyMergePatch({ a: 1 }, patch),
      (e: unknown) => e instanceof ApiError && e.code === 400 && /must be a JSON object/.test(e.message),
    );
  }
  assert.deepEqual(applyMergePatch({ a: 1, b: { c: 2 } }, { b: { c: null, d: 3 } }), { a: 1, b: { d: 3 } });
});

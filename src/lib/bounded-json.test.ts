import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isApiError } from './errors.js';
import { formatPath, hasMoreBracketsThan, jsonTextDepth, measureValue, measureWalk, parseBoundedJson, stringifyJsonDeep } from './bounded-json.js';

const depths: { name: string; text: string; depth: number }[] = [
  { name: 'a scalar', text: '"x"', depth: 0 },
  { name: 'nested containers', text: '{"a":[{"b":[]}]}', depth: 4 },
  { name: 'brackets in strings are text', text: '{"a":"[[[[{{{{"}', depth: 1 },
  { name: 'escaped quotes do not end a string', text: '{"a":"\\"[[[[","b":[]}', depth: 2 },
  { name: 'an escaped backslash before the closing quote', text: '["\\\\",[[]]]', depth: 3 },
  { name: 'unbalanced closings do not go below zero', text: ']]]][[', depth: 2 },
];

for (const c of depths) {
  test(`jsonTextDepth: ${c.name}`, () => assert.equal(jsonTextDepth(c.text), c.depth));
}

test('property: jsonTextDepth of JSON text is the depth of its value', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 8 }), (v) => {
      assert.equal(jsonTextDepth(JSON.stringify(v)), measureValue(v, { maxDepth: Infinity, maxBytes: Infinity }).depth);
    }),
    { numRuns: 1000, seed: 14 },
  );
});

const bracketCounts: { name: string; text: string; max: number; more: boolean }[] = [
  { name: 'no brackets', text: '"x"', max: 0, more: false },
  { name: 'exactly max, of both kinds', text: '{"a":[{"b":[]}]}', max: 4, more: false },
  { name: 'one past max, of both kinds', text: '{"a":[{"b":[]}]}', max: 3, more: true },
  { name: 'brackets in strings count too', text: '{"a":"[[[["}', max: 4, more: true },
  { name: 'many siblings, shallow', text: '[' + '{},'.repeat(600) + '{}]', max: 500, more: true },
];

for (const c of bracketCounts) {
  test(`hasMoreBracketsThan: ${c.name}`, () => assert.equal(hasMoreBracketsThan(c.text, c.max), c.more));
}

test('property: text with at most max brackets nests at most max levels (the scan may be skipped)', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 8 }), (v, max) => {
      const text = JSON.stringify(v);
      if (!hasMoreBracketsThan(text, max)) assert.ok(jsonTextDepth(text) <= max);
    }),
    { numRuns: 1000, seed: 15 },
  );
});

test('parseBoundedJson parses shallow text with more brackets than the depth bound', () => {
  const text = '[' + '{"a":[]},'.repeat(600) + '{}]';
  assert.deepEqual(parseBoundedJson(text, { what: 'the body', maxDepth: 500 }), JSON.parse(text));
});

test('parseBoundedJson refuses deep text before parsing it, and broken text with a 400', () => {
  for (const [text, message] of [
    ['['.repeat(501) + ']'.repeat(501), /the body is nested more than 500 levels deep/],
    ['['.repeat(1_000_000), /nested more than 500 levels deep/],
    ['{"a":', /invalid JSON in the body/],
  ] as const) {
    assert.throws(
      () => parseBoundedJson(text, { what: 'the body', maxDepth: 500 }),
      (e: unknown) => isApiError(e) && e.code === 400 && message.test(e.message),
    );
  }
  assert.deepEqual(parseBoundedJson('['.repeat(500) + ']'.repeat(500), { what: 'the body', maxDepth: 500 }), JSON.parse('['.repeat(500) + ']'.repeat(500)));
});

test('measureValue: the recursive walk and the iterative one agree on depth, size and the bound passed', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 1, max: 10 }), fc.oneof(fc.constant(Infinity), fc.integer({ min: 1, max: 400 })), (v, maxDepth, maxBytes) => {
      const limits = { maxDepth, maxBytes };
      const fast = measureValue(v, limits);
      const walked = measureWalk(v, limits);
      assert.deepEqual(fast, walked);
    }),
    { numRuns: 3000 },
  );
});

test('measureValue stops at the first bound passed and says where', () => {
  const deep = JSON.parse('{"a":'.repeat(10) + '1' + '}'.repeat(10)) as unknown;
  const { depth, exceeded, at } = measureValue(deep, { maxDepth: 5, maxBytes: Infinity });
  assert.deepEqual({ depth, exceeded, at }, { depth: 6, exceeded: 'depth', at: ['a', 'a', 'a', 'a', 'a'] });
  const shared = { big: 'x'.repeat(100) };
  const aliased = Array.from({ length: 100 }, () => shared);
  const r = measureValue(aliased, { maxDepth: 10, maxBytes: 5000 });
  assert.equal(r.exceeded, 'bytes', 'shared references count once per reference, as JSON writes them');
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  assert.equal(measureValue(cycle, { maxDepth: 50, maxBytes: Infinity }).exceeded, 'depth');
});

test('formatPath', () => {
  assert.equal(formatPath([]), '<root>');
  assert.equal(formatPath(['spec', 'actions', 0, 'params', 'a b']), 'spec.actions[0].params["a b"]');
  assert.equal(formatPath(Array(20).fill('x')), 'x.x.x.x.x.x…(8 more)…x.x.x.x.x.x');
});

test('property: stringifyJsonDeep is JSON.stringify, however deep', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 6 }), fc.integer({ min: 0, max: 1200 }), (v, wrap) => {
      let w: unknown = v;
      for (let i = 0; i < wrap; i++) w = i % 2 ? [w] : { k: w };
      const text = stringifyJsonDeep(w);
      assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(w)));
    }),
    { numRuns: 300, seed: 14 },
  );
  const deep = '{"a":['.repeat(30_000) + ']}'.repeat(30_000);
  assert.equal(stringifyJsonDeep(JSON.parse(deep)), deep);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../lib/errors.js';
import { applyJsonPatch, formatJsonPointer, parseJsonPointer } from './json-patch.js';

const doc = () => ({
  metadata: { name: 'cm', labels: { app: 'web', 'a/b': 'slash', 'm~n': 'tilde' } },
  data: { key: 'v' },
  list: ['a', 'b', 'c'],
});

const ok: Array<{ name: string; patch: unknown; want: unknown }> = [
  { name: 'add a member', patch: [{ op: 'add', path: '/data/new', value: 'x' }], want: { ...doc(), data: { key: 'v', new: 'x' } } },
  { name: 'add replaces an existing member', patch: [{ op: 'add', path: '/data/key', value: 'w' }], want: { ...doc(), data: { key: 'w' } } },
  { name: 'add null is a value', patch: [{ op: 'add', path: '/data/n', value: null }], want: { ...doc(), data: { key: 'v', n: null } } },
  { name: 'add inserts into an array', patch: [{ op: 'add', path: '/list/1', value: 'z' }], want: { ...doc(), list: ['a', 'z', 'b', 'c'] } },
  { name: 'add - appends', patch: [{ op: 'add', path: '/list/-', value: 'd' }], want: { ...doc(), list: ['a', 'b', 'c', 'd'] } },
  { name: 'add at the array length appends', patch: [{ op: 'add', path: '/list/3', value: 'd' }], want: { ...doc(), list: ['a', 'b', 'c', 'd'] } },
  { name: 'remove a member', patch: [{ op: 'remove', path: '/data/key' }], want: { ...doc(), data: {} } },
  { name: 'remove an element', patch: [{ op: 'remove', path: '/list/0' }], want: { ...doc(), list: ['b', 'c'] } },
  { name: '~1 unescapes to /', patch: [{ op: 'remove', path: '/metadata/labels/a~1b' }], want: { ...doc(), metadata: { name: 'cm', labels: { app: 'web', 'm~n': 'tilde' } } } },
  { name: '~0 unescapes to ~', patch: [{ op: 'replace', path: '/metadata/labels/m~0n', value: 'T' }], want: { ...doc(), metadata: { name: 'cm', labels: { app: 'web', 'a/b': 'slash', 'm~n': 'T' } } } },
  { name: 'replace an element', patch: [{ op: 'replace', path: '/list/2', value: 'C' }], want: { ...doc(), list: ['a', 'b', 'C'] } },
  { name: 'replace the whole document', patch: [{ op: 'replace', path: '', value: { x: 1 } }], want: { x: 1 } },
  { name: 'move a member', patch: [{ op: 'move', from: '/data/key', path: '/data/moved' }], want: { ...doc(), data: { moved: 'v' } } },
  { name: 'move within an array', patch: [{ op: 'move', from: '/list/0', path: '/list/-' }], want: { ...doc(), list: ['b', 'c', 'a'] } },
  { name: 'copy deep', patch: [{ op: 'copy', from: '/data', path: '/copy' }], want: { ...doc(), copy: { key: 'v' } } },
  { name: 'test passes then replace', patch: [{ op: 'test', path: '/data/key', value: 'v' }, { op: 'replace', path: '/data/key', value: 'w' }], want: { ...doc(), data: { key: 'w' } } },
  { name: 'test compares deeply regardless of key order', patch: [{ op: 'test', path: '/metadata', value: { labels: { 'm~n': 'tilde', 'a/b': 'slash', app: 'web' }, name: 'cm' } }], want: doc() },
  { name: 'empty patch', patch: [], want: doc() },
];

for (const c of ok) {
  test(`json patch: ${c.name}`, () => {
    const original = doc();
    assert.deepEqual(applyJsonPatch(original, c.patch), c.want);
    assert.deepEqual(original, doc(), 'the input document is not modified');
  });
}

const bad: Array<{ name: string; patch: unknown; code: number; message: RegExp }> = [
  { name: 'not an array', patch: { op: 'add' }, code: 400, message: /must be an array of operations, got object/ },
  { name: 'unknown op', patch: [{ op: 'merge', path: '/a' }], code: 400, message: /operation 0: "op" must be one of add, remove, replace, move, copy, test, got "merge"/ },
  { name: 'missing value', patch: [{ op: 'add', path: '/a' }], code: 400, message: /operation 0 \(add \/a\): "value" is required/ },
  { name: 'path without leading slash', patch: [{ op: 'remove', path: 'data' }], code: 400, message: /must be empty or start with "\/"/ },
  { name: 'bad escape', patch: [{ op: 'remove', path: '/a~2b' }], code: 400, message: /invalid escape/ },
  { name: 'move without from', patch: [{ op: 'move', path: '/a' }], code: 400, message: /"from" must be a string/ },
  { name: 'failing test', patch: [{ op: 'add', path: '/data/x', value: 1 }, { op: 'test', path: '/data/key', value: 'nope' }], code: 422, message: /JSON patch operation 1 \(test \/data\/key\) failed: the value at \/data\/key is not equal/ },
  { name: 'test of a missing path', patch: [{ op: 'test', path: '/data/missing', value: null }], code: 422, message: /operation 0 \(test \/data\/missing\) failed: \/data\/missing does not exist/ },
  { name: 'remove missing member', patch: [{ op: 'remove', path: '/data/missing' }], code: 422, message: /operation 0 \(remove \/data\/missing\) failed: \/data\/missing does not exist/ },
  { name: 'replace missing member', patch: [{ op: 'replace', path: '/spec/replicas', value: 2 }], code: 422, message: /\/spec does not exist/ },
  { name: 'add below a missing parent', patch: [{ op: 'add', path: '/spec/replicas', value: 2 }], code: 422, message: /operation 0 \(add \/spec\/replicas\) failed: \/spec does not exist/ },
  { name: 'array index out of range', patch: [{ op: 'add', path: '/list/9', value: 'x' }], code: 422, message: /index "9" is not valid for an array of length 3/ },
  { name: 'leading zero index', patch: [{ op: 'replace', path: '/list/01', value: 'x' }], code: 422, message: /\/list\/01 does not exist/ },
  { name: 'move into own child', patch: [{ op: 'move', from: '/data', path: '/data/inner' }], code: 422, message: /cannot move \/data into its own child/ },
  { name: 'add into a scalar', patch: [{ op: 'add', path: '/data/key/x', value: 1 }], code: 422, message: /\/data\/key is a string, not an object or array/ },
];

for (const c of bad) {
  test(`json patch rejects: ${c.name}`, () => {
    assert.throws(
      () => applyJsonPatch(doc(), c.patch),
      (e: unknown) => e instanceof ApiError && e.code === c.code && c.message.test(e.message),
    );
  });
}

test('json patch: a failed operation leaves nothing applied (all or nothing)', () => {
  const original = doc();
  assert.throws(() => applyJsonPatch(original, [{ op: 'remove', path: '/data/key' }, { op: 'remove', path: '/nope' }]));
  assert.deepEqual(original, doc());
});

test('json pointer round trip', () => {
  for (const tokens of [[], ['a'], ['a/b', 'm~n', ''], ['~1']]) {
    assert.deepEqual(parseJsonPointer(formatJsonPointer(tokens)), tokens);
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../lib/errors.js';
import { schemaHintsFrom } from './schema-hints.js';
import { applyStrategicMergePatch } from './strategic-merge.js';

const hints = schemaHintsFrom({
  type: 'object',
  properties: {
    data: { type: 'object', additionalProperties: { type: 'string' } },
    spec: {
      type: 'object',
      properties: {
        containers: {
          type: 'array',
          'x-kubernetes-patch-strategy': 'merge',
          'x-kubernetes-patch-merge-key': 'name',
          items: {
            type: 'object',
            properties: {
              name: { type: 'string' },
              image: { type: 'string' },
              args: { type: 'array', items: { type: 'string' } },
              ports: {
                type: 'array',
                'x-kubernetes-patch-strategy': 'merge',
                'x-kubernetes-patch-merge-key': 'containerPort',
                items: { type: 'object', properties: { containerPort: { type: 'integer' }, protocol: { type: 'string' } } },
              },
            },
          },
        },
        hosts: { type: 'array', items: { type: 'string' }, 'x-kubernetes-patch-strategy': 'merge' },
        tags: { type: 'array', items: { type: 'string' } },
        strategy: {
          type: 'object',
          'x-kubernetes-patch-strategy': 'retainKeys',
          properties: { type: { type: 'string' }, rollingUpdate: { type: 'object', properties: { maxSurge: { type: 'integer' } } } },
        },
        selector: { type: 'object', 'x-kubernetes-patch-strategy': 'replace', additionalProperties: { type: 'string' } },
      },
    },
  },
});

const c = (name: string, image = '1') => ({ name, image });

const cases: Array<{ name: string; original: Record<string, unknown>; patch: unknown; want: unknown }> = [
  {
    name: 'kubectl label: maps merge, null deletes',
    original: { metadata: { name: 'x', labels: { app: 'web', tier: 'fe' } } },
    patch: { metadata: { labels: { tier: null, env: 'prod' } } },
    want: { metadata: { name: 'x', labels: { app: 'web', env: 'prod' } } },
  },
  {
    name: 'null for an absent member adds nothing',
    original: { data: { a: '1' } },
    patch: { data: { b: null } },
    want: { data: { a: '1' } },
  },
  {
    name: 'kubectl client-side apply of a ConfigMap',
    original: { metadata: { name: 'cm', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"old":1}\n' } }, data: { key: 'a', gone: 'x' } },
    patch: { data: { key: 'b', gone: null }, metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"new":1}\n' } } },
    want: { metadata: { name: 'cm', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"new":1}\n' } }, data: { key: 'b' } },
  },
  {
    name: 'finalizers merge as a set; new values come first as in kube',
    original: { metadata: { finalizers: ['a'] } },
    patch: { metadata: { finalizers: ['b', 'a'] } },
    want: { metadata: { finalizers: ['b', 'a'] } },
  },
  {
    name: 'finalizers: $deleteFromPrimitiveList with $setElementOrder (kubectl apply removing one)',
    original: { metadata: { finalizers: ['a', 'b'] } },
    patch: { metadata: { '$setElementOrder/finalizers': ['c', 'b'], '$deleteFromPrimitiveList/finalizers': ['a'], finalizers: ['c'] } },
    want: { metadata: { finalizers: ['c', 'b'] } },
  },
  {
    name: 'primitive merge list dedupes',
    original: { spec: { hosts: ['a', 'b'] } },
    patch: { spec: { hosts: ['b', 'c'] } },
    want: { spec: { hosts: ['a', 'b', 'c'] } },
  },
  {
    name: 'lists without a merge strategy are replaced',
    original: { spec: { tags: ['a', 'b'], containers: [{ name: 'a', args: ['x', 'y'] }] } },
    patch: { spec: { tags: ['c'], containers: [{ name: 'a', args: ['z'] }] } },
    want: { spec: { tags: ['c'], containers: [{ name: 'a', args: ['z'] }] } },
  },
  {
    name: 'merge list by key: matching element merges in place',
    original: { spec: { containers: [c('a'), c('b')] } },
    patch: { spec: { containers: [{ name: 'b', image: '2' }] } },
    want: { spec: { containers: [c('a'), c('b', '2')] } },
  },
  {
    name: 'merge list by key: a new element is added, nested merge lists merge',
    original: { spec: { containers: [{ name: 'a', ports: [{ containerPort: 80, protocol: 'TCP' }] }] } },
    patch: { spec: { containers: [{ name: 'a', ports: [{ containerPort: 443 }] }, c('z')] } },
    want: { spec: { containers: [{ name: 'a', ports: [{ containerPort: 443 }, { containerPort: 80, protocol: 'TCP' }] }, c('z')] } },
  },
  {
    name: '$patch: delete removes an element by key',
    original: { spec: { containers: [c('a'), c('b'), c('c')] } },
    patch: { spec: { containers: [{ name: 'b', $patch: 'delete' }] } },
    want: { spec: { containers: [c('a'), c('c')] } },
  },
  {
    name: '$patch: replace in a list replaces it with the other elements',
    original: { spec: { containers: [c('a'), c('b')] } },
    patch: { spec: { containers: [{ $patch: 'replace' }, c('z')] } },
    want: { spec: { containers: [c('z')] } },
  },
  {
    name: '$patch: replace in an object replaces the object',
    original: { metadata: { labels: { a: '1', b: '2' } } },
    patch: { metadata: { labels: { $patch: 'replace', c: '3' } } },
    want: { metadata: { labels: { c: '3' } } },
  },
  {
    name: '$patch: delete in an object empties it, as kube',
    original: { metadata: { name: 'x', labels: { a: '1' } } },
    patch: { metadata: { labels: { $patch: 'delete' } } },
    want: { metadata: { name: 'x', labels: {} } },
  },
  {
    name: '$patch: merge is the default',
    original: { data: { a: '1' } },
    patch: { data: { $patch: 'merge', b: '2' } },
    want: { data: { a: '1', b: '2' } },
  },
  {
    name: '$retainKeys clears the members it does not list',
    original: { spec: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } } } },
    patch: { spec: { strategy: { $retainKeys: ['type'], type: 'Recreate' } } },
    want: { spec: { strategy: { type: 'Recreate' } } },
  },
  {
    name: '$setElementOrder reorders a merge list',
    original: { spec: { containers: [c('a'), c('b'), c('c')] } },
    patch: { spec: { '$setElementOrder/containers': [{ name: 'c' }, { name: 'a' }, { name: 'b' }] } },
    want: { spec: { containers: [c('c'), c('a'), c('b')] } },
  },
  {
    // kube keeps a server-only element before the patch elements that followed it in the live list.
    name: '$setElementOrder with changes and server-only elements',
    original: { spec: { containers: [c('a'), c('srv'), c('b')] } },
    patch: { spec: { '$setElementOrder/containers': [{ name: 'b' }, { name: 'a' }], containers: [{ name: 'b', image: '2' }] } },
    want: { spec: { containers: [c('srv'), c('b', '2'), c('a')] } },
  },
  {
    name: 'a map with replace strategy is replaced',
    original: { spec: { selector: { a: '1', b: '2' } } },
    patch: { spec: { selector: { c: '3' } } },
    want: { spec: { selector: { c: '3' } } },
  },
  {
    name: 'directives are stripped from members that did not exist',
    original: {},
    patch: { spec: { strategy: { $retainKeys: ['type'], type: 'Recreate' }, containers: [{ name: 'b', $patch: 'delete' }, c('a')] }, data: { $patch: 'replace', k: 'v', n: null } },
    want: { spec: { strategy: { type: 'Recreate' }, containers: [c('a')] }, data: { k: 'v' } },
  },
  {
    name: 'a type change replaces',
    original: { spec: { tags: 'oops' } },
    patch: { spec: { tags: ['a'] } },
    want: { spec: { tags: ['a'] } },
  },
];

for (const tc of cases) {
  test(`strategic merge: ${tc.name}`, () => {
    const before = structuredClone(tc.original);
    assert.deepEqual(applyStrategicMergePatch(tc.original, tc.patch, hints), tc.want);
    assert.deepEqual(tc.original, before, 'the original is not modified');
  });
}

const bad: Array<{ name: string; patch: unknown; message: RegExp }> = [
  { name: 'not an object', patch: [{ a: 1 }], message: /must be a JSON object, got array/ },
  { name: 'unknown directive', patch: { metadata: { $foo: 1 } }, message: /at \.metadata: unknown directive "\$foo"/ },
  { name: 'unknown $patch in an object', patch: { data: { $patch: 'nuke' } }, message: /at \.data: unknown \$patch directive "nuke" in an object/ },
  { name: 'unknown $patch in a list', patch: { spec: { containers: [{ name: 'a', $patch: 'nuke' }] } }, message: /\.spec\.containers: element 0: unknown \$patch directive "nuke"/ },
  { name: 'merge element without its key', patch: { spec: { containers: [{ image: 'x' }] } }, message: /\.spec\.containers: element 0 does not contain the merge key "name"/ },
  { name: 'delete without its key', patch: { spec: { containers: [{ $patch: 'delete' }] } }, message: /element 0: \$patch: delete without the merge key "name"/ },
  { name: '$retainKeys missing a patched key', patch: { spec: { strategy: { $retainKeys: ['type'], rollingUpdate: { maxSurge: 2 } } } }, message: /"rollingUpdate" is patched but missing from \$retainKeys/ },
  { name: '$retainKeys not a list', patch: { spec: { strategy: { $retainKeys: 'type' } } }, message: /\$retainKeys must be a list/ },
  { name: '$setElementOrder disagreeing with the patch', patch: { spec: { '$setElementOrder/containers': [{ name: 'a' }], containers: [{ name: 'b' }] } }, message: /does not match its \$setElementOrder list/ },
  { name: '$deleteFromPrimitiveList not a list', patch: { metadata: { '$deleteFromPrimitiveList/finalizers': 'a' } }, message: /must be a list/ },
];

for (const tc of bad) {
  test(`strategic merge rejects: ${tc.name}`, () => {
    const original = { metadata: { finalizers: ['a'] }, data: { a: '1' }, spec: { containers: [c('a')], strategy: { type: 'X' } } };
    assert.throws(
      () => applyStrategicMergePatch(original, tc.patch, hints),
      (e: unknown) => e instanceof ApiError && e.code === 400 && tc.message.test(e.message),
    );
  });
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import fc from 'fast-check';
import {
  compareObjects,
  createdFieldsV1,
  FieldSet,
  fieldSetFromFieldsV1,
  fieldSetFromObject,
  fieldSetToFieldsV1,
  formatPath,
  isTrackedPath,
  parsePathElement,
  serializePathElement,
  withNamedAncestors,
  type FieldPath,
} from './managed-fields.js';
import { defaultSchemaHints, schemaHintsFrom, type SchemaHints } from './schema-hints.js';
import { tracked } from './managers.js';
import { cloneJson, type JsonObject, type JsonValue } from './json-value.js';
import { allKinds } from '../../kinds/index.js';
import { configMapKind } from '../../kinds/core.js';

// A kind declared the way src/kinds does it: TypeBox, with the Kubernetes list extensions.
const Condition = Type.Object({ type: Type.String(), status: Type.String(), reason: Type.Optional(Type.String()) });
const schema = Type.Object({
  spec: Type.Optional(
    Type.Object({
      replicas: Type.Optional(Type.Integer()),
      containers: Type.Optional(
        Type.Array(
          Type.Object({
            name: Type.String(),
            image: Type.Optional(Type.String()),
            ports: Type.Optional(
              Type.Array(Type.Object({ containerPort: Type.Integer(), protocol: Type.String() }), {
                'x-kubernetes-list-type': 'map',
                'x-kubernetes-list-map-keys': ['containerPort', 'protocol'],
              }),
            ),
          }),
          { 'x-kubernetes-patch-strategy': 'merge', 'x-kubernetes-patch-merge-key': 'name' },
        ),
      ),
      tags: Type.Optional(Type.Array(Type.String())),
      hosts: Type.Optional(Type.Array(Type.String(), { 'x-kubernetes-list-type': 'set' })),
      selector: Type.Optional(Type.Record(Type.String(), Type.String(), { 'x-kubernetes-map-type': 'atomic' })),
      env: Type.Optional(Type.Record(Type.String(), Type.Object({ value: Type.String() }))),
      nullable: Type.Optional(Type.Union([Type.Object({ a: Type.Optional(Type.String()) }), Type.Null()])),
    }),
  ),
  status: Type.Optional(
    Type.Object({
      conditions: Type.Optional(Type.Array(Condition, { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })),
    }),
  ),
});
const hints = schemaHintsFrom(schema);

const object = {
  apiVersion: 'example.com/v1',
  kind: 'Thing',
  metadata: {
    name: 'x',
    namespace: 'default',
    uid: 'u',
    resourceVersion: '7',
    generation: 2,
    creationTimestamp: '2024-01-01T00:00:00Z',
    labels: { app: 'web' },
    finalizers: ['example.com/cleanup'],
    ownerReferences: [{ apiVersion: 'v1', kind: 'Namespace', name: 'default', uid: 'ns-uid' }],
    managedFields: [{ manager: 'm', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: {} }],
  },
  spec: {
    replicas: 2,
    containers: [{ name: 'nginx', image: 'nginx:1', ports: [{ containerPort: 80, protocol: 'TCP' }] }],
    tags: ['a', 'b'],
    hosts: ['h1'],
    selector: { app: 'web' },
    env: { HOME: { value: '/root' } },
    nullable: null,
  },
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
};

test('field set of an object serializes to FieldsV1 exactly as kube writes it', () => {
  const fieldsV1 = fieldSetToFieldsV1(fieldSetFromObject(object, hints));
  const want = {
    'f:metadata': {
      'f:finalizers': { 'v:"example.com/cleanup"': {} },
      'f:labels': { 'f:app': {} },
      'f:ownerReferences': {
        'k:{"uid":"ns-uid"}': { '.': {}, 'f:apiVersion': {}, 'f:kind': {}, 'f:name': {}, 'f:uid': {} },
      },
    },
    'f:spec': {
      'f:containers': {
        'k:{"name":"nginx"}': {
          '.': {},
          'f:image': {},
          'f:name': {},
          'f:ports': { 'k:{"containerPort":80,"protocol":"TCP"}': { '.': {}, 'f:containerPort': {}, 'f:protocol': {} } },
        },
      },
      'f:env': { 'f:HOME': { '.': {}, 'f:value': {} } },
      'f:hosts': { 'v:"h1"': {} },
      'f:nullable': {},
      'f:replicas': {},
      'f:selector': {},
      'f:tags': {},
    },
  };
  // Key order matters to byte-compare with kube's output.
  assert.equal(JSON.stringify(fieldsV1), JSON.stringify(want));
});

test('FieldsV1 round-trips', () => {
  const set = fieldSetFromObject(object, hints);
  const back = fieldSetFromFieldsV1(JSON.parse(JSON.stringify(fieldSetToFieldsV1(set))));
  assert.ok(back.equals(set));
  assert.equal(back.size, set.size);
});

// compareObjects and fieldSetFromFieldsV1 key their paths as they walk instead of serializing each path from its
// root: the sets they build must be the very sets the path-list constructor builds from the same paths.
test('sets built while walking hold the same keys as sets built from their paths', () => {
  const changed = {
    ...object,
    metadata: { ...object.metadata, labels: { app: 'api', tier: 'x' } },
    spec: {
      ...object.spec,
      containers: [{ name: 'nginx', image: 'nginx:2', ports: [{ containerPort: 443, protocol: 'TCP' }] }, { name: 'side' }],
      hosts: ['h1', 'h2', 'h2'],
      env: {},
    },
    status: { conditions: [{ type: 'Ready', status: 'False' }, { type: 'Synced', status: 'True' }] },
  };
  const rows: { name: string; lhs: object | undefined; rhs: object | undefined }[] = [
    { name: 'create', lhs: {}, rhs: object },
    { name: 'update', lhs: object, rhs: changed },
    { name: 'delete', lhs: changed, rhs: undefined },
  ];
  for (const row of rows) {
    const c = compareObjects(row.lhs as never, row.rhs as never, hints);
    for (const [part, set] of Object.entries(c)) {
      const rebuilt = new FieldSet(set.paths());
      assert.ok(set.equals(rebuilt) && rebuilt.equals(set), `${row.name}: ${part}`);
      for (const p of set.paths()) assert.ok(set.has(p), `${row.name}: ${part} has ${formatPath(p)}`);
    }
    assert.ok(row.name === 'delete' || !c.added.isEmpty() || !c.modified.isEmpty(), `${row.name} finds changes`);
  }
  const set = fieldSetFromObject(changed as never, hints);
  const parsed = fieldSetFromFieldsV1(fieldSetToFieldsV1(set));
  for (const p of set.paths()) assert.ok(parsed.has(p), `parsed FieldsV1 has ${formatPath(p)}`);
  assert.ok(new FieldSet(parsed.paths()).equals(parsed));
});

// compareObjects(…, onlyTracked) skips members no operation tracks; after `tracked` it must equal the full walk.
test('a comparison that skips never-tracked members keeps every tracked path of the full one', () => {
  const changed = {
    ...object,
    apiVersion: 'example.com/v2',
    metadata: { ...object.metadata, name: 'y', uid: 'v', generation: 3, labels: { app: 'api' }, finalizers: [] },
    spec: { ...object.spec, replicas: 5 },
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  };
  const rows: { name: string; lhs: object | undefined; rhs: object | undefined }[] = [
    { name: 'create', lhs: {}, rhs: object },
    { name: 'update', lhs: object, rhs: changed },
    { name: 'metadata and top level only', lhs: { kind: 'A', metadata: { name: 'a' } }, rhs: { kind: 'B', metadata: { name: 'b', labels: { x: 'y' } } } },
    { name: 'delete', lhs: changed, rhs: undefined },
  ];
  const keep = (set: FieldSet, sub: string | undefined): string[] => set.filter((p) => isTrackedPath(p, sub)).paths().map(formatPath);
  for (const row of rows) {
    for (const sub of [undefined, 'status']) {
      const full = compareObjects(row.lhs as never, row.rhs as never, hints);
      const skipped = compareObjects(row.lhs as never, row.rhs as never, hints, true);
      for (const part of ['added', 'modified', 'removed'] as const) {
        assert.deepEqual(keep(skipped[part], sub), keep(full[part], sub), `${row.name} ${sub ?? 'main'}: ${part}`);
      }
      assert.ok(skipped.added.size + skipped.modified.size + skipped.removed.size <= full.added.size + full.modified.size + full.removed.size);
    }
  }
  const full = compareObjects({}, object, hints);
  const skipped = compareObjects({}, object, hints, true);
  assert.ok(full.added.has([{ field: 'metadata' }, { field: 'uid' }]) && !skipped.added.has([{ field: 'metadata' }, { field: 'uid' }]), 'server-owned metadata is not walked');
});

test('status is tracked only for the status subresource', () => {
  const main = fieldSetFromObject(object, hints);
  const status = fieldSetFromObject(object, hints, 'status');
  assert.equal(JSON.stringify(fieldSetToFieldsV1(status)), JSON.stringify({
    'f:status': { 'f:conditions': { 'k:{"type":"Ready"}': { '.': {}, 'f:status': {}, 'f:type': {} } } },
  }));
  assert.ok(main.paths().every((p) => 'field' in p[0]! && p[0].field !== 'status'));
});

const never: Array<{ path: FieldPath; subresource?: 'status'; tracked: boolean }> = [
  { path: [{ field: 'apiVersion' }], tracked: false },
  { path: [{ field: 'kind' }], tracked: false },
  { path: [{ field: 'metadata' }], tracked: false },
  ...['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'managedFields'].map((f) => ({
    path: [{ field: 'metadata' }, { field: f }] as FieldPath,
    tracked: false,
  })),
  { path: [{ field: 'metadata' }, { field: 'labels' }, { field: 'app' }], tracked: true },
  { path: [{ field: 'metadata' }, { field: 'generateName' }], tracked: true },
  { path: [{ field: 'status' }, { field: 'phase' }], tracked: false },
  { path: [{ field: 'status' }, { field: 'phase' }], subresource: 'status', tracked: true },
  { path: [{ field: 'spec' }, { field: 'replicas' }], subresource: 'status', tracked: false },
  { path: [{ field: 'spec' }, { field: 'replicas' }], tracked: true },
];
for (const c of never) {
  test(`isTrackedPath ${formatPath(c.path)}${c.subresource ? ' (status)' : ''} = ${c.tracked}`, () => {
    assert.equal(isTrackedPath(c.path, c.subresource), c.tracked);
  });
}

const pretty: Array<{ path: FieldPath; want: string; wire: string[] }> = [
  { path: [{ field: 'spec' }, { field: 'replicas' }], want: '.spec.replicas', wire: ['f:spec', 'f:replicas'] },
  {
    path: [{ field: 'spec' }, { field: 'containers' }, { key: [['name', 'nginx']] }, { field: 'image' }],
    want: '.spec.containers[name="nginx"].image',
    wire: ['f:spec', 'f:containers', 'k:{"name":"nginx"}', 'f:image'],
  },
  { path: [{ field: 'metadata' }, { field: 'labels' }, { field: 'app' }], want: '.metadata.labels.app', wire: ['f:metadata', 'f:labels', 'f:app'] },
  { path: [{ field: 'metadata' }, { field: 'finalizers' }, { value: 'x' }], want: '.metadata.finalizers[="x"]', wire: ['f:metadata', 'f:finalizers', 'v:"x"'] },
  {
    path: [{ field: 'ports' }, { key: [['containerPort', 80], ['protocol', 'TCP']] }],
    want: '.ports[containerPort=80,protocol="TCP"]',
    wire: ['f:ports', 'k:{"containerPort":80,"protocol":"TCP"}'],
  },
  { path: [{ field: 'args' }, { index: 3 }], want: '.args[3]', wire: ['f:args', 'i:3'] },
  { path: [{ field: 'data' }, { field: 'a.b/c' }], want: '.data.a.b/c', wire: ['f:data', 'f:a.b/c'] },
];
for (const c of pretty) {
  test(`path ${c.want}`, () => {
    assert.equal(formatPath(c.path), c.want);
    assert.deepEqual(c.path.map(serializePathElement), c.wire);
    assert.deepEqual(c.wire.map(parsePathElement), c.path);
  });
}

test('key elements are sorted by field name whatever the JSON order', () => {
  assert.deepEqual(parsePathElement('k:{"protocol":"TCP","containerPort":80}'), { key: [['containerPort', 80], ['protocol', 'TCP']] });
});

const p = (...fields: string[]): FieldPath => fields.map((field) => ({ field }));
const set = (...paths: FieldPath[]) => new FieldSet(paths);
const ops: Array<{ name: string; got: () => FieldSet; want: FieldSet }> = [
  { name: 'union', got: () => set(p('a'), p('b')).union(set(p('b'), p('c'))), want: set(p('a'), p('b'), p('c')) },
  { name: 'intersection', got: () => set(p('a'), p('b')).intersection(set(p('b'), p('c'))), want: set(p('b')) },
  { name: 'difference', got: () => set(p('a'), p('b'), p('a', 'x')).difference(set(p('a'))), want: set(p('b'), p('a', 'x')) },
  { name: 'recursive difference', got: () => set(p('a'), p('b'), p('a', 'x'), p('ab')).recursiveDifference(set(p('a'))), want: set(p('b'), p('ab')) },
  { name: 'named ancestors', got: () => withNamedAncestors(set(p('metadata', 'labels', 'app'), p('spec', 'env', 'HOME', 'value')), hints), want: set(p('metadata', 'labels', 'app'), p('metadata'), p('metadata', 'labels'), p('spec'), p('spec', 'env'), p('spec', 'env', 'HOME', 'value')) },
];
for (const c of ops) {
  test(`field set ${c.name}`, () => {
    const got = c.got();
    assert.ok(got.equals(c.want), `got\n${got}\nwant\n${c.want}`);
  });
}

test('field set emptiness, membership and prefixes', () => {
  assert.ok(new FieldSet().isEmpty());
  const s = set(p('spec', 'replicas'));
  assert.ok(!s.isEmpty());
  assert.ok(s.has(p('spec', 'replicas')));
  assert.ok(!s.has(p('spec')));
  assert.ok(s.hasPrefix(p('spec')));
  assert.ok(!s.hasPrefix(p('sp')));
  assert.equal(s.toString(), '.spec.replicas');
});

const malformed: Array<{ name: string; fieldsV1: unknown; message: RegExp }> = [
  { name: 'unknown element type', fieldsV1: { 'x:foo': {} }, message: /unknown path element type "x"/ },
  { name: 'missing colon', fieldsV1: { foo: {} }, message: /is not a path element/ },
  { name: 'bad key JSON', fieldsV1: { 'f:a': { 'k:{name': {} } }, message: /the key is not valid JSON/ },
  { name: 'non-object child', fieldsV1: { 'f:a': 1 }, message: /\.a must be an object, got number/ },
  { name: 'dot at the top', fieldsV1: { '.': {} }, message: /"\." is not allowed at the top/ },
];
for (const c of malformed) {
  test(`FieldsV1 rejects: ${c.name}`, () => {
    assert.throws(() => fieldSetFromFieldsV1(c.fieldsV1), c.message);
  });
}

const comparisons: Array<{ name: string; lhs: unknown; rhs: unknown; added: string[]; modified: string[]; removed: string[] }> = [
  { name: 'same', lhs: { data: { a: '1' } }, rhs: { data: { a: '1' } }, added: [], modified: [], removed: [] },
  { name: 'a new map is added with its node', lhs: {}, rhs: { data: { a: '1' } }, added: ['.data', '.data.a'], modified: [], removed: [] },
  { name: 'changed leaf', lhs: { spec: { replicas: 1 } }, rhs: { spec: { replicas: 2 } }, added: [], modified: ['.spec.replicas'], removed: [] },
  { name: 'removed subtree', lhs: { data: { a: '1' } }, rhs: {}, added: [], modified: [], removed: ['.data', '.data.a'] },
  { name: 'atomic list is a leaf', lhs: { spec: { tags: ['a'] } }, rhs: { spec: { tags: ['a', 'b'] } }, added: [], modified: ['.spec.tags'], removed: [] },
  { name: 'set list by value', lhs: { spec: { hosts: ['a'] } }, rhs: { spec: { hosts: ['b', 'a'] } }, added: ['.spec.hosts[="b"]'], modified: [], removed: [] },
  {
    name: 'map list by key',
    lhs: { status: { conditions: [{ type: 'Ready', status: 'False' }] } },
    rhs: { status: { conditions: [{ type: 'Synced', status: 'True' }, { type: 'Ready', status: 'True' }] } },
    added: ['.status.conditions[type="Synced"]', '.status.conditions[type="Synced"].status', '.status.conditions[type="Synced"].type'],
    modified: ['.status.conditions[type="Ready"].status'],
    removed: [],
  },
  { name: 'empty map vs absent', lhs: { metadata: { labels: {} } }, rhs: { metadata: {} }, added: [], modified: [], removed: ['.metadata.labels'] },
];
for (const c of comparisons) {
  test(`compare: ${c.name}`, () => {
    const got = compareObjects(c.lhs as never, c.rhs as never, hints);
    assert.deepEqual(got.added.paths().map(formatPath), c.added);
    assert.deepEqual(got.modified.paths().map(formatPath), c.modified);
    assert.deepEqual(got.removed.paths().map(formatPath), c.removed);
  });
}

test('schema hints: metadata is ObjectMeta whatever the schema; unknown is atomic lists, granular maps', () => {
  for (const h of [hints, defaultSchemaHints, schemaHintsFrom({ properties: { metadata: { type: 'object' } } })]) {
    const meta = h.field('metadata');
    assert.equal(meta.field('finalizers').listType, 'set');
    assert.equal(meta.field('ownerReferences').listType, 'map');
    assert.deepEqual(meta.field('ownerReferences').listMapKeys, ['uid']);
    assert.equal(meta.field('labels').mapType, 'granular');
    assert.equal(meta.field('labels').isNamedField('app'), false);
    assert.equal(meta.isNamedField('labels'), true);
  }
  assert.equal(defaultSchemaHints.field('spec').field('anything').listType, 'atomic');
  assert.equal(defaultSchemaHints.field('spec').mapType, 'granular');
  const spec = hints.field('spec');
  assert.equal(spec.field('containers').listType, 'map', 'merge strategy with a key means a map list');
  assert.deepEqual(spec.field('containers').listMapKeys, ['name']);
  assert.deepEqual(spec.field('containers').items().field('ports').listMapKeys, ['containerPort', 'protocol']);
  assert.equal(spec.field('selector').mapType, 'atomic');
  assert.equal(spec.field('nullable').field('a').listType, 'atomic', 'anyOf branches are walked');
  assert.equal(hints.field('status').field('conditions').listType, 'map');
});

test('schema hints follow local $refs and allOf', () => {
  const h = schemaHintsFrom({
    $defs: { Cond: { type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'], items: { type: 'object' } } },
    allOf: [{ properties: { status: { properties: { conditions: { $ref: '#/$defs/Cond' } } } } }],
  });
  assert.deepEqual(h.field('status').field('conditions').listMapKeys, ['type']);
});

// ---------------------------------------------------------------------------------------------------------
// createdFieldsV1: a create's FieldsV1 in one walk must be exactly what the general path gives

/** The general path: the tracked paths compareObjects({}, obj) adds, as FieldsV1 (null when none). */
function generalCreatedFieldsV1(obj: JsonObject, h: SchemaHints): Record<string, unknown> | null {
  const set = tracked(compareObjects({}, obj, h, true), undefined).added;
  return set.isEmpty() ? null : fieldSetToFieldsV1(set);
}

const sameAsGeneral = (obj: JsonObject, h: SchemaHints): boolean => {
  const fast = createdFieldsV1(obj, h);
  if (fast === undefined) return false;
  // JSON text, not deepEqual: the members' order is part of what kube writes.
  // The general path works on a copy, which (like the stored JSON) has no undefined members.
  assert.equal(JSON.stringify(fast), JSON.stringify(generalCreatedFieldsV1(cloneJson(obj), h)), JSON.stringify(obj));
  return true;
};

const atomicLeaf = { listType: 'atomic', listMapKeys: [], mapType: 'atomic', patchStrategies: [], patchMergeKey: undefined } as const;

test('createdFieldsV1: the cases it takes, and the ones it leaves to the general path', () => {
  const taken: Array<[string, JsonObject]> = [
    ['labels and data', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'd', uid: 'u', labels: { b: '1', a: '2' } }, data: { z: 'x', y: '' } }],
    ['only server-owned metadata: nothing tracked', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', creationTimestamp: 't' } }],
    ['status is never tracked by a main-resource write', { metadata: { name: 'a' }, status: { phase: 'x' }, spec: { replicas: 1 } }],
    ['empty maps and lists are leaves', { metadata: { annotations: {} }, spec: { tags: [], env: {} } }],
    ['atomic lists and maps are leaves', { metadata: {}, spec: { tags: ['a', 'b'], selector: { a: 'b' } } }],
    ['members set to undefined are absent, as in the stored JSON', { metadata: { labels: { a: undefined } as unknown as JsonObject, annotations: undefined as unknown as JsonObject }, spec: { env: { A: { value: undefined } as unknown as JsonObject } }, data: undefined as unknown as JsonObject }],
    ['nested maps get "."', { metadata: { generateName: 'g-' }, spec: { env: { B: { value: '1' }, A: { value: '2' } }, nullable: null } }],
    ['more members than the small sort takes', { metadata: { labels: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`l${19 - i}`, 'x'])) }, data: { b: '', a: '' } }],
    ['field names sort as strings (10 before 9, Z before a)', { metadata: {}, spec: { env: { '9': { value: 'x' }, '10': { value: 'y' }, Z: { value: '' }, a: { value: '' } } } }],
  ];
  for (const [what, obj] of taken) assert.ok(sameAsGeneral(obj, hints), what);
  const left: Array<[string, JsonObject, SchemaHints]> = [
    ['a map list', { metadata: {}, spec: { containers: [{ name: 'c' }] } }, hints],
    ['a set list', { metadata: {}, spec: { hosts: ['h'] } }, hints],
    ['owner references (a map list)', { metadata: { ownerReferences: [{ uid: 'u', name: 'n', kind: 'K', apiVersion: 'v1' }] } }, schemaHintsFrom(configMapKind.schema as object)],
    ['no metadata', { spec: { replicas: 1 } }, hints],
    // (schemaHintsFrom never makes a root atomic; other SchemaHints may.)
    ['an atomic root', { metadata: {}, a: 1 }, { ...atomicLeaf, field: () => defaultSchemaHints, items: () => defaultSchemaHints, isNamedField: () => true }],
  ];
  for (const [what, obj, h] of left) assert.equal(createdFieldsV1(obj, h), undefined, what);
});

test('createdFieldsV1 equals the general path on random objects, under random and declared schemas', () => {
  const name = fc.constantFrom('metadata', 'status', 'apiVersion', 'kind', 'spec', 'data', 'labels', 'name', 'uid', 'a', 'b', 'Z', '10', '9', '.', 'f:x', 'é');
  const value = fc.letrec((tie) => ({
    // undefined too: an object built in code (a kind's defaulting) may hold members set to undefined.
    v: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 0 }), fc.constant(undefined), fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(name, tie('v'), { maxKeys: 4 })),
  })).v as fc.Arbitrary<JsonValue>;
  const body = fc.record({ metadata: fc.dictionary(name, value, { maxKeys: 5 }) }, { requiredKeys: [] }).chain((m) =>
    fc.dictionary(name, value, { maxKeys: 5 }).map((rest) => ({ ...rest, ...m }) as JsonObject),
  );
  // Schemas that make members atomic, or lists sets or maps, wherever the random object has them.
  const schemaNode: fc.Arbitrary<Record<string, unknown>> = fc.letrec((tie) => ({
    s: fc.oneof(
      { depthSize: 'small', maxDepth: 4 },
      fc.constant({}),
      fc.record(
        {
          'x-kubernetes-map-type': fc.constantFrom('atomic', 'granular'),
          'x-kubernetes-list-type': fc.constantFrom('atomic', 'set'),
          properties: fc.dictionary(name, tie('s'), { maxKeys: 3 }),
          additionalProperties: tie('s'),
          items: tie('s'),
        },
        { requiredKeys: [] },
      ),
    ),
  })).s as fc.Arbitrary<Record<string, unknown>>;
  const declared = allKinds.map((k) => schemaHintsFrom(k.schema as object));
  let taken = 0;
  fc.assert(
    fc.property(body, fc.oneof(schemaNode.map((s) => schemaHintsFrom(s)), fc.constantFrom(...declared, hints, defaultSchemaHints)), (obj, h) => {
      if (createdFieldsV1(obj, h) === undefined) return;
      taken++;
      sameAsGeneral(obj, h);
    }),
    { numRuns: 2000 },
  );
  // The property says something only if the shortcut was taken often.
  assert.ok(taken > 600, `the shortcut was taken in ${taken} of 2000 runs`);
});

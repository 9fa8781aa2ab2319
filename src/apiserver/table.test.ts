import { test } from 'node:test';
import assert from 'node:assert/strict';
import { humanDuration } from '../kinds/common.js';
import { configMapKind, eventKind, namespaceKind, planKind } from '../kinds/index.js';
import type { KindDeclaration, KubeObject, ManagedFieldsEntry } from '../kinds/types.js';
import { evalJsonPath, tableColumnsFor, toTable } from './table.js';

const now = Date.parse('2025-01-10T12:00:00Z');
const ago = (ms: number) => new Date(now - ms).toISOString();

test('column layout: NAME first, printer columns, AGE last; Event as kubectl shows it', () => {
  const cases: [KindDeclaration, string[]][] = [
    [planKind, ['Name', 'CPU', 'Memory', 'Drives', 'Price/Hr', 'Metros', 'Class', 'NICs', 'Age']],
    [namespaceKind, ['Name', 'Status', 'Age']],
    [configMapKind, ['Name', 'Data', 'Age']],
    [eventKind, ['Last Seen', 'Type', 'Reason', 'Object', 'Subobject', 'Source', 'Message', 'First Seen', 'Count', 'Name']],
  ];
  for (const [kind, want] of cases) assert.deepEqual(tableColumnsFor(kind).map((c) => c.name), want, kind.kind);
  const name = tableColumnsFor(planKind)[0]!;
  assert.equal(name.format, 'name');
  assert.equal(tableColumnsFor(planKind).find((c) => c.name === 'Class')!.priority, 1);
});

test('human durations like kube', () => {
  const cases: [number, string][] = [
    [-5_000, '<invalid>'],
    [0, '0s'],
    [45_000, '45s'],
    [119_000, '119s'],
    [312_000, '5m12s'],
    [300_000, '5m'],
    [45 * 60_000, '45m'],
    [(3 * 60 + 20) * 60_000, '3h20m'],
    [20 * 3600_000, '20h'],
    [(3 * 24 + 4) * 3600_000, '3d4h'],
    [3 * 24 * 3600_000, '3d'],
    [40 * 24 * 3600_000, '40d'],
    [(2 * 365 + 10) * 24 * 3600_000, '2y10d'],
    [9 * 365 * 24 * 3600_000, '9y'],
  ];
  for (const [ms, want] of cases) assert.equal(humanDuration(ms), want, String(ms));
});

const plan: KubeObject = {
  apiVersion: 'metalplane.dev/v1alpha1',
  kind: 'Plan',
  metadata: { name: 'c3.small.x86', creationTimestamp: ago(312_000), uid: 'u1' },
  spec: {
    class: 'c3.small.x86',
    specs: {
      cpus: [{ count: 1, type: 'Intel Xeon E-2278G' }],
      memory: { total: '32GB' },
      drives: [{ count: 2, size: '480GB', type: 'SSD' }],
      nics: [{ count: 2, type: '10Gbps' }],
    },
    pricing: { hour: 0.75 },
    availableIn: ['da', 'ny'],
  },
  status: { conditions: [{ type: 'Synced', status: 'True' }, { type: 'Ready', status: 'False' }] },
};

test('rows: cells formatted like kube, missing values null, includeObject modes', () => {
  const t = toTable(planKind, [plan, { ...plan, metadata: { name: 'bare' }, spec: { specs: {} } }], { now, includeObject: 'Metadata' });
  assert.equal(t.kind, 'Table');
  assert.equal(t.apiVersion, 'meta.k8s.io/v1');
  assert.deepEqual(t.rows[0]!.cells, ['c3.small.x86', '1x Intel Xeon E-2278G', '32GB', '2x 480GB SSD', 0.75, 'da,ny', 'c3.small.x86', '2x 10Gbps', '5m12s']);
  assert.deepEqual(t.rows[1]!.cells, ['bare', null, null, null, null, null, null, null, '<unknown>']);
  assert.deepEqual(t.rows[0]!.object, { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: plan.metadata });
  assert.equal(toTable(planKind, [plan], { now, includeObject: 'Object' }).rows[0]!.object, plan);
  assert.equal(toTable(planKind, [plan], { now, includeObject: 'None' }).rows[0]!.object, undefined);
  const narrow = toTable(planKind, [plan], { now, wide: false });
  assert.deepEqual(narrow.columnDefinitions.map((c) => c.name), ['Name', 'CPU', 'Memory', 'Drives', 'Price/Hr', 'Metros', 'Age']);
  assert.equal(narrow.rows[0]!.cells.length, 7);
});

test('rows: Metadata carries the metadata without managedFields, Object the whole object with them', () => {
  const managedFields: ManagedFieldsEntry[] = [{ manager: 'kubectl', operation: 'Apply', apiVersion: 'metalplane.dev/v1alpha1', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': {} } }];
  const tracked = { ...plan, metadata: { ...plan.metadata, labels: { tier: 'a' }, managedFields } };
  const row = toTable(planKind, [tracked], { now, includeObject: 'Metadata' }).rows[0]!;
  const { managedFields: _dropped, ...rest } = tracked.metadata;
  assert.deepEqual(row.object, { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: rest });
  assert.deepEqual(tracked.metadata.managedFields, managedFields, 'the object itself is untouched');
  assert.equal(toTable(planKind, [tracked], { now, includeObject: 'Object' }).rows[0]!.object, tracked);
});

test('computed columns: ConfigMap DATA, Event LAST SEEN and OBJECT', () => {
  const cm: KubeObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', creationTimestamp: ago(1000) }, data: { a: '1', b: '2' }, binaryData: { c: 'eA==' } };
  assert.deepEqual(toTable(configMapKind, [cm], { now }).rows[0]!.cells, ['c', 3, '1s']);
  const ev: KubeObject = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: 'dev1.1', namespace: 'p' },
    involvedObject: { kind: 'Device', name: 'dev1' },
    reason: 'Provisioned',
    message: 'ready',
    type: 'Normal',
    firstTimestamp: ago(600_000),
    lastTimestamp: ago(121_000),
    count: 3,
    source: { component: 'device-controller' },
  };
  const cells = toTable(eventKind, [ev], { now }).rows[0]!.cells;
  assert.deepEqual(cells, ['2m1s (x3 over 10m)', 'Normal', 'Provisioned', 'device/dev1', null, 'device-controller', 'ready', '10m', 3, 'dev1.1']);
});

test('JSONPath subset', () => {
  const cases: [path: string, want: unknown[]][] = [
    ['.spec.class', ['c3.small.x86']],
    ['{.spec.class}', ['c3.small.x86']],
    ['$.spec.class', ['c3.small.x86']],
    ['.spec.specs.cpus[0].type', ['Intel Xeon E-2278G']],
    ['.spec.availableIn[-1]', ['ny']],
    ['.spec.availableIn[*]', ['da', 'ny']],
    ['.spec.specs.drives[*].size', ['480GB']],
    ['.status.conditions[?(@.type=="Ready")].status', ['False']],
    ["{.status.conditions[?(@.type=='Synced')].status}", ['True']],
    ['.status.conditions[?(@.type!="Ready")].type', ['Synced']],
    ['.spec.pricing[?(@ > 0.5)]', [0.75]],
    ['.metadata["name"]', ['c3.small.x86']],
    ['..total', ['32GB']],
    ['.spec.nope', []],
    ['.spec.availableIn[5]', []],
  ];
  for (const [path, want] of cases) assert.deepEqual(evalJsonPath(plan, path), want, path);
  assert.deepEqual(evalJsonPath({ metadata: { labels: { 'app.kubernetes.io/name': 'x' } } }, ".metadata.labels['app.kubernetes.io/name']"), ['x']);
  assert.throws(() => evalJsonPath(plan, '.a[?(@.x =~ /y/)]'), /invalid JSONPath/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../lib/errors.js';
import type { KubeObject } from '../../kinds/types.js';
import { applyPatch, LAST_APPLIED_ANNOTATION, managedFieldSets, trackUpdate } from './apply.js';
import { formatPath } from './managed-fields.js';
import { schemaHintsFrom } from './schema-hints.js';

const T1 = '2024-05-01T10:00:00Z';
const T2 = '2024-05-01T10:05:00Z';
const T3 = '2024-05-01T10:10:00Z';

const configMapHints = schemaHintsFrom({
  type: 'object',
  properties: {
    data: { type: 'object', additionalProperties: { type: 'string' } },
    binaryData: { type: 'object', additionalProperties: { type: 'string' } },
    immutable: { type: 'boolean' },
  },
});

const machineHints = schemaHintsFrom({
  type: 'object',
  properties: {
    spec: {
      type: 'object',
      properties: {
        plan: { type: 'string' },
        tags: { type: 'array', items: { type: 'string' } },
        containers: {
          type: 'array',
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['name'],
          items: { type: 'object', properties: { name: { type: 'string' }, image: { type: 'string' } } },
        },
      },
    },
    status: {
      type: 'object',
      properties: {
        phase: { type: 'string' },
        conditions: {
          type: 'array',
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['type'],
          items: { type: 'object', properties: { type: { type: 'string' }, status: { type: 'string' }, reason: { type: 'string' } } },
        },
      },
    },
  },
});

function cm(data: Record<string, string>, annotations?: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'cm', namespace: 'default', ...(annotations ? { annotations } : {}) },
    data,
  };
}

/** What kubectl's client-side apply sends on create: the object plus its own last-applied annotation. */
function clientSideApplied(data: Record<string, string>): KubeObject {
  const lastApplied = JSON.stringify({ apiVersion: 'v1', data, kind: 'ConfigMap', metadata: { annotations: {}, name: 'cm', namespace: 'default' } }) + '\n';
  return cm(data, { [LAST_APPLIED_ANNOTATION]: lastApplied });
}

/** The stored object after a write: what the registry would persist (server fields set). */
function stored(obj: KubeObject): KubeObject {
  return { ...obj, metadata: { ...obj.metadata, uid: 'uid-1', resourceVersion: '1', creationTimestamp: T1 } };
}

/** Ownership as `manager/Operation[/subresource]` → paths. */
function owners(obj: KubeObject): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const { entry, set } of managedFieldSets(obj)) {
    out[[entry.manager, entry.operation, entry.subresource].filter(Boolean).join('/')] = set.paths().map(formatPath);
  }
  return out;
}

function conflictOf(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  assert.fail('expected a conflict');
}

const csaCreate = () =>
  stored(trackUpdate({ old: undefined, updated: clientSideApplied({ key: 'a' }), manager: 'kubectl-client-side-apply', hints: configMapHints, apiVersion: 'v1', now: T1 }));

test('create by kubectl client-side apply records an Update entry exactly as kube', () => {
  assert.deepEqual(JSON.parse(JSON.stringify(csaCreate().metadata.managedFields)), [
    {
      manager: 'kubectl-client-side-apply',
      operation: 'Update',
      apiVersion: 'v1',
      time: T1,
      fieldsType: 'FieldsV1',
      fieldsV1: {
        'f:data': { '.': {}, 'f:key': {} },
        'f:metadata': { 'f:annotations': { '.': {}, 'f:kubectl.kubernetes.io/last-applied-configuration': {} } },
      },
    },
  ]);
});

test('server-side apply after client-side apply: a changed value conflicts when the client-side annotation is gone', () => {
  // `kubectl annotate cm kubectl.kubernetes.io/last-applied-configuration-` between the two applies.
  const live0 = csaCreate();
  const withoutAnnotation = cm({ key: 'a' }, {});
  delete withoutAnnotation.metadata.annotations;
  const live = stored(trackUpdate({ old: live0, updated: { ...withoutAnnotation, metadata: { ...withoutAnnotation.metadata, managedFields: live0.metadata.managedFields } }, manager: 'kubectl-annotate', hints: configMapHints, apiVersion: 'v1', now: T2 }));
  assert.deepEqual(owners(live), { 'kubectl-client-side-apply/Update': ['.data', '.data.key'] });

  const err = conflictOf(() => applyPatch({ live, applied: cm({ key: 'b' }), manager: 'kubectl', force: false, hints: configMapHints, apiVersion: 'v1', now: T3 }));
  assert.equal(err.code, 409);
  assert.equal(err.reason, 'Conflict');
  assert.equal(err.message, 'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .data.key');
  assert.deepEqual(err.details, {
    causes: [{ reason: 'FieldManagerConflict', message: 'conflict with "kubectl-client-side-apply" using v1', field: '.data.key' }],
  });
});

test('server-side apply by another manager conflicts with client-side apply even with the annotation', () => {
  const err = conflictOf(() => applyPatch({ live: csaCreate(), applied: cm({ key: 'b' }), manager: 'deployer', force: false, hints: configMapHints, apiVersion: 'v1', now: T2 }));
  assert.equal(err.message, 'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .data.key');
});

test('kubectl apply --server-side takes over from client-side apply as kube does (annotation still matches live)', () => {
  const { object } = applyPatch({ live: csaCreate(), applied: cm({ key: 'b' }), manager: 'kubectl', force: false, hints: configMapHints, apiVersion: 'v1', now: T2 });
  assert.deepEqual(object.data, { key: 'b' });
  assert.deepEqual(owners(object), {
    'kubectl/Apply': ['.data.key'],
    'kubectl-client-side-apply/Update': ['.data', `.metadata.annotations`, `.metadata.annotations.${LAST_APPLIED_ANNOTATION}`],
  });
  // The client-side annotation follows the server-side apply, so a later client-side apply diffs correctly.
  assert.equal(object.metadata.annotations?.[LAST_APPLIED_ANNOTATION], '{"apiVersion":"v1","data":{"key":"b"},"kind":"ConfigMap","metadata":{"name":"cm","namespace":"default"}}\n');
});

test('force takes ownership of conflicting fields from the other manager', () => {
  const live = stored(trackUpdate({ old: undefined, updated: cm({ key: 'a', other: 'x' }), manager: 'kubectl-client-side-apply', hints: configMapHints, apiVersion: 'v1', now: T1 }));
  const { object } = applyPatch({ live, applied: cm({ key: 'b' }), manager: 'kubectl', force: true, hints: configMapHints, apiVersion: 'v1', now: T2 });
  assert.deepEqual(object.data, { key: 'b', other: 'x' });
  assert.deepEqual(owners(object), {
    'kubectl/Apply': ['.data.key'],
    'kubectl-client-side-apply/Update': ['.data', '.data.other'],
  });
  assert.equal(object.metadata.managedFields?.[0]?.time, T2);
  assert.equal(object.metadata.managedFields?.[1]?.time, T1, 'the other manager keeps its time');
});

test('force moving every field of a manager drops its entry', () => {
  const live = stored(applyPatch({ live: undefined, applied: cm({ key: 'a' }), manager: 'alice', force: false, hints: configMapHints, apiVersion: 'v1', now: T1 }).object);
  const { object } = applyPatch({ live, applied: cm({ key: 'b' }), manager: 'bob', force: true, hints: configMapHints, apiVersion: 'v1', now: T2 });
  assert.deepEqual(owners(object), { 'bob/Apply': ['.data.key'] });
});

interface Step {
  manager: string;
  data: Record<string, string>;
  force?: boolean;
  /** Expected conflict message, or the data and owners after the step. */
  conflict?: string;
  want?: { data: Record<string, string> | undefined; owners: Record<string, string[]> };
}

const flows: Array<{ name: string; steps: Step[] }> = [
  {
    name: 'a second manager applying a disjoint field: no conflict, both own their fields',
    steps: [
      { manager: 'alice', data: { a: '1' }, want: { data: { a: '1' }, owners: { 'alice/Apply': ['.data.a'] } } },
      { manager: 'bob', data: { b: '2' }, want: { data: { a: '1', b: '2' }, owners: { 'alice/Apply': ['.data.a'], 'bob/Apply': ['.data.b'] } } },
    ],
  },
  {
    name: 'applying again without a field removes it',
    steps: [
      { manager: 'alice', data: { a: '1', b: '2' } },
      { manager: 'alice', data: { a: '1' }, want: { data: { a: '1' }, owners: { 'alice/Apply': ['.data.a'] } } },
      // An applied empty map is owned as a leaf: the map stays, empty.
      { manager: 'alice', data: {}, want: { data: {}, owners: { 'alice/Apply': ['.data'] } } },
    ],
  },
  {
    name: 'shared ownership keeps a field the other manager still applies',
    steps: [
      { manager: 'alice', data: { a: '1', b: '2' } },
      { manager: 'bob', data: { a: '1' }, want: { data: { a: '1', b: '2' }, owners: { 'alice/Apply': ['.data.a', '.data.b'], 'bob/Apply': ['.data.a'] } } },
      { manager: 'alice', data: { b: '2' }, want: { data: { a: '1', b: '2' }, owners: { 'alice/Apply': ['.data.b'], 'bob/Apply': ['.data.a'] } } },
      { manager: 'bob', data: { c: '3' }, want: { data: { b: '2', c: '3' }, owners: { 'alice/Apply': ['.data.b'], 'bob/Apply': ['.data.c'] } } },
    ],
  },
  {
    name: 'a different value conflicts; several conflicts are grouped by manager',
    steps: [
      { manager: 'alice', data: { a: '1', b: '1' } },
      { manager: 'bob', data: { c: '1' } },
      { manager: 'carol', data: { a: '2' }, conflict: 'Apply failed with 1 conflict: conflict with "alice": .data.a' },
      {
        manager: 'carol',
        data: { a: '2', b: '2', c: '2' },
        conflict: 'Apply failed with 3 conflicts: conflicts with "alice":\n- .data.a\n- .data.b\nconflicts with "bob":\n- .data.c',
      },
      { manager: 'carol', data: { a: '2', c: '2' }, force: true, want: { data: { a: '2', b: '1', c: '2' }, owners: { 'alice/Apply': ['.data.b'], 'carol/Apply': ['.data.a', '.data.c'] } } },
      // alice no longer owns .data.a, so dropping it from her config leaves carol's value alone.
      { manager: 'alice', data: { b: '1' }, want: { data: { a: '2', b: '1', c: '2' }, owners: { 'alice/Apply': ['.data.b'], 'carol/Apply': ['.data.a', '.data.c'] } } },
    ],
  },
];

for (const flow of flows) {
  test(`apply flow: ${flow.name}`, () => {
    let live: KubeObject | undefined;
    let now = Date.parse(T1);
    for (const [i, step] of flow.steps.entries()) {
      const input = { live, applied: cm(step.data), manager: step.manager, force: step.force ?? false, hints: configMapHints, apiVersion: 'v1', now: new Date((now += 60_000)).toISOString() };
      if (step.conflict) {
        const err = conflictOf(() => applyPatch(input));
        assert.equal(err.code, 409, `step ${i}`);
        assert.equal(err.message, step.conflict, `step ${i}`);
        continue;
      }
      live = stored(applyPatch(input).object);
      if (step.want) {
        assert.deepEqual(live.data, step.want.data, `step ${i} data`);
        assert.deepEqual(owners(live), step.want.owners, `step ${i} owners`);
      }
    }
  });
}

test('conflict causes list every field, grouped by manager', () => {
  let live = stored(applyPatch({ live: undefined, applied: cm({ a: '1', b: '1' }), manager: 'alice', force: false, hints: configMapHints, apiVersion: 'v1', now: T1 }).object);
  live = stored(trackUpdate({ old: live, updated: { ...live, data: { a: '1', b: '1', c: '1' } }, manager: 'kubectl-edit', hints: configMapHints, apiVersion: 'v1', now: T2 }));
  const err = conflictOf(() => applyPatch({ live, applied: cm({ a: '2', c: '2' }), manager: 'bob', force: false, hints: configMapHints, apiVersion: 'v1', now: T3 }));
  assert.equal(err.message, 'Apply failed with 2 conflicts: conflicts with "alice":\n- .data.a\nconflicts with "kubectl-edit" using v1:\n- .data.c');
  assert.deepEqual(err.details?.causes, [
    { reason: 'FieldManagerConflict', message: 'conflict with "alice"', field: '.data.a' },
    { reason: 'FieldManagerConflict', message: 'conflict with "kubectl-edit" using v1', field: '.data.c' },
  ]);
});

test('apply creates a missing object; status is not applied through the main resource', () => {
  const applied: KubeObject = { apiVersion: 'example.com/v1', kind: 'Machine', metadata: { name: 'm1', labels: { app: 'x' } }, spec: { plan: 'c3.small' }, status: { phase: 'Ready' } };
  const { object } = applyPatch({ live: undefined, applied, manager: 'tf', force: false, hints: machineHints, apiVersion: 'example.com/v1', now: T1 });
  assert.deepEqual({ ...object, metadata: { ...object.metadata, managedFields: undefined } }, {
    apiVersion: 'example.com/v1',
    kind: 'Machine',
    metadata: { name: 'm1', labels: { app: 'x' }, managedFields: undefined },
    spec: { plan: 'c3.small' },
  });
  assert.deepEqual(JSON.parse(JSON.stringify(object.metadata.managedFields)), [
    { manager: 'tf', operation: 'Apply', apiVersion: 'example.com/v1', time: T1, fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:labels': { 'f:app': {} } }, 'f:spec': { 'f:plan': {} } } },
  ]);
});

const machine = (spec: Record<string, unknown>, status?: Record<string, unknown>): KubeObject => ({
  apiVersion: 'example.com/v1',
  kind: 'Machine',
  metadata: { name: 'm1' },
  spec,
  ...(status ? { status } : {}),
});

test('map-list by key: conditions owned per type by status appliers', () => {
  const base = { hints: machineHints, apiVersion: 'example.com/v1', force: false, subresource: 'status' as const };
  let live = stored(trackUpdate({ old: undefined, updated: machine({ plan: 'p' }), manager: 'kubectl-create', hints: machineHints, apiVersion: 'example.com/v1', now: T1 }));
  live = stored(applyPatch({ ...base, live, applied: machine({}, { conditions: [{ type: 'Ready', status: 'False', reason: 'Booting' }] }), manager: 'machine-controller', now: T2 }).object);
  live = stored(applyPatch({ ...base, live, applied: machine({}, { conditions: [{ type: 'Synced', status: 'True' }] }), manager: 'sync-controller', now: T2 }).object);
  assert.deepEqual(live.status, { conditions: [{ type: 'Ready', status: 'False', reason: 'Booting' }, { type: 'Synced', status: 'True' }] });
  assert.deepEqual(live.spec, { plan: 'p' }, 'a status apply leaves spec alone');
  assert.deepEqual(owners(live), {
    'kubectl-create/Update': ['.spec', '.spec.plan'],
    'machine-controller/Apply/status': ['.status.conditions[type="Ready"]', '.status.conditions[type="Ready"].reason', '.status.conditions[type="Ready"].status', '.status.conditions[type="Ready"].type'],
    'sync-controller/Apply/status': ['.status.conditions[type="Synced"]', '.status.conditions[type="Synced"].status', '.status.conditions[type="Synced"].type'],
  });

  // Changing another controller's condition conflicts, naming the element by its key.
  const err = conflictOf(() => applyPatch({ ...base, live, applied: machine({}, { conditions: [{ type: 'Ready', status: 'True' }] }), manager: 'sync-controller', now: T3 }));
  assert.equal(err.message, 'Apply failed with 1 conflict: conflict with "machine-controller" with subresource "status": .status.conditions[type="Ready"].status');

  // An applier that stops applying its condition removes it (and only it); dropping a member removes that member.
  const next = applyPatch({ ...base, live, applied: machine({}, { conditions: [{ type: 'Ready', status: 'True' }] }), manager: 'machine-controller', now: T3 }).object;
  assert.deepEqual(next.status, { conditions: [{ type: 'Ready', status: 'True' }, { type: 'Synced', status: 'True' }] });
  const after = applyPatch({ ...base, live: stored(next), applied: machine({}, { phase: 'Running' }), manager: 'machine-controller', now: T3 }).object;
  assert.deepEqual(after.status, { phase: 'Running', conditions: [{ type: 'Synced', status: 'True' }] });
});

test('map-list by key in spec: merged in applied order, removed element pruned, duplicates rejected', () => {
  const base = { hints: machineHints, apiVersion: 'example.com/v1', force: false };
  let live = stored(applyPatch({ ...base, live: undefined, applied: machine({ containers: [{ name: 'a', image: '1' }, { name: 'b', image: '1' }] }), manager: 'alice', now: T1 }).object);
  live = stored(applyPatch({ ...base, live, applied: machine({ containers: [{ name: 'sidecar', image: 's' }] }), manager: 'bob', now: T2 }).object);
  assert.deepEqual((live.spec as { containers: unknown[] }).containers, [{ name: 'a', image: '1' }, { name: 'b', image: '1' }, { name: 'sidecar', image: 's' }]);
  live = stored(applyPatch({ ...base, live, applied: machine({ containers: [{ name: 'b', image: '2' }] }), manager: 'alice', now: T3 }).object);
  assert.deepEqual((live.spec as { containers: unknown[] }).containers, [{ name: 'b', image: '2' }, { name: 'sidecar', image: 's' }]);
  assert.throws(
    () => applyPatch({ ...base, live, applied: machine({ containers: [{ name: 'x' }, { name: 'x' }] }), manager: 'alice', now: T3 }),
    (e: unknown) => e instanceof ApiError && e.code === 422 && e.message === '.spec.containers: duplicate entries for key [name="x"]',
  );
  assert.throws(
    () => applyPatch({ ...base, live, applied: machine({ containers: [{ image: 'x' }] }), manager: 'alice', now: T3 }),
    (e: unknown) => e instanceof ApiError && e.code === 422 && /omits key field "name"/.test(e.message),
  );
});

test('atomic lists are replaced whole and owned as a leaf', () => {
  const base = { hints: machineHints, apiVersion: 'example.com/v1', force: false };
  const live = stored(applyPatch({ ...base, live: undefined, applied: machine({ tags: ['a', 'b'] }), manager: 'alice', now: T1 }).object);
  assert.deepEqual(owners(live), { 'alice/Apply': ['.spec.tags'] });
  const err = conflictOf(() => applyPatch({ ...base, live, applied: machine({ tags: ['a'] }), manager: 'bob', now: T2 }));
  assert.equal(err.message, 'Apply failed with 1 conflict: conflict with "alice": .spec.tags');
});

test('finalizers merge as a set across managers', () => {
  const withFinalizers = (f: string[]): KubeObject => ({ ...cm({}), metadata: { name: 'cm', namespace: 'default', finalizers: f } });
  const base = { hints: configMapHints, apiVersion: 'v1', force: false };
  let live = stored(applyPatch({ ...base, live: undefined, applied: withFinalizers(['a.example/x']), manager: 'alice', now: T1 }).object);
  live = stored(applyPatch({ ...base, live, applied: withFinalizers(['b.example/y']), manager: 'bob', now: T2 }).object);
  assert.deepEqual(live.metadata.finalizers, ['a.example/x', 'b.example/y']);
  live = stored(applyPatch({ ...base, live, applied: withFinalizers([]), manager: 'alice', now: T3 }).object);
  assert.deepEqual(live.metadata.finalizers, ['b.example/y']);
});

test('the first apply to an object without managedFields conflicts with "before-first-apply"', () => {
  const live = stored(cm({ key: 'a' }));
  const err = conflictOf(() => applyPatch({ live, applied: cm({ key: 'b' }), manager: 'helm', force: false, hints: configMapHints, apiVersion: 'v1', now: T2 }));
  assert.equal(err.message, 'Apply failed with 1 conflict: conflict with "before-first-apply" using v1: .data.key');
  const same = applyPatch({ live, applied: cm({ key: 'a' }), manager: 'helm', force: false, hints: configMapHints, apiVersion: 'v1', now: T2 }).object;
  assert.deepEqual(owners(same), { 'helm/Apply': ['.data.key'], 'before-first-apply/Update': ['.data', '.data.key'] });
});

test('a repeated apply that changes nothing keeps the old timestamps', () => {
  const live = stored(applyPatch({ live: undefined, applied: cm({ a: '1' }), manager: 'alice', force: false, hints: configMapHints, apiVersion: 'v1', now: T1 }).object);
  const again = applyPatch({ live, applied: cm({ a: '1' }), manager: 'alice', force: false, hints: configMapHints, apiVersion: 'v1', now: T3 }).object;
  assert.deepEqual(again, live);
});

const badApplies: Array<{ name: string; applied: unknown; code: number; message: RegExp }> = [
  { name: 'managedFields in the configuration', applied: { ...cm({}), metadata: { name: 'cm', managedFields: [] } }, code: 400, message: /metadata\.managedFields must be nil/ },
  { name: 'another apiVersion', applied: { ...cm({}), apiVersion: 'v2' }, code: 400, message: /invalid object type: the applied configuration has apiVersion "v2", but this resource is served as "v1"/ },
  { name: 'another kind', applied: { ...cm({}), kind: 'Secret' }, code: 400, message: /has kind "Secret", but the object is a ConfigMap/ },
  { name: 'not an object', applied: [cm({})], code: 400, message: /must be a JSON object, got array/ },
];
for (const c of badApplies) {
  test(`apply rejects: ${c.name}`, () => {
    assert.throws(
      () => applyPatch({ live: stored(cm({})), applied: c.applied as KubeObject, manager: 'm', force: false, hints: configMapHints, apiVersion: 'v1', now: T1 }),
      (e: unknown) => e instanceof ApiError && e.code === c.code && c.message.test(e.message),
    );
  });
}

// ---------------------------------------------------------------------------------------------------------
// trackUpdate

test('an update takes the fields it changed or added from other managers; emptied managers are dropped', () => {
  let live = stored(applyPatch({ live: undefined, applied: cm({ a: '1', b: '1' }), manager: 'alice', force: false, hints: configMapHints, apiVersion: 'v1', now: T1 }).object);
  live = stored(applyPatch({ live, applied: cm({ c: '1' }), manager: 'bob', force: false, hints: configMapHints, apiVersion: 'v1', now: T1 }).object);
  const edited = trackUpdate({ old: live, updated: { ...live, data: { a: '2', b: '1', d: '1' } }, manager: 'kubectl-edit', hints: configMapHints, apiVersion: 'v1', now: T2 });
  assert.deepEqual(owners(edited), { 'alice/Apply': ['.data.b'], 'kubectl-edit/Update': ['.data.a', '.data.d'] });
  assert.deepEqual(edited.metadata.managedFields?.map((e) => e.time), [T1, T2]);
  // The same manager updating again accumulates, and the removal of a field drops it from every set.
  const again = trackUpdate({ old: stored(edited), updated: { ...stored(edited), data: { a: '2', d: '2' } }, manager: 'kubectl-edit', hints: configMapHints, apiVersion: 'v1', now: T3 });
  assert.deepEqual(owners(again), { 'kubectl-edit/Update': ['.data.a', '.data.d'] });
});

test('an update that changes nothing keeps managedFields (and their times) as they were', () => {
  const live = csaCreate();
  const same = trackUpdate({ old: live, updated: structuredClone(live), manager: 'kubectl-replace', hints: configMapHints, apiVersion: 'v1', now: T3 });
  assert.deepEqual(same.metadata.managedFields, live.metadata.managedFields);
});

const sentManagedFields: Array<{ name: string; sent: unknown; want: Record<string, string[]> }> = [
  { name: 'not sent: the stored entries stay', sent: undefined, want: { 'kubectl-client-side-apply/Update': ['.data', '.data.key', '.metadata.annotations', `.metadata.annotations.${LAST_APPLIED_ANNOTATION}`], 'kubectl-label/Update': ['.metadata.labels', '.metadata.labels.x'] } },
  { name: 'an empty list resets', sent: [], want: { 'kubectl-label/Update': ['.metadata.labels', '.metadata.labels.x'] } },
  { name: 'a list of one empty entry resets', sent: [{}], want: { 'kubectl-label/Update': ['.metadata.labels', '.metadata.labels.x'] } },
  { name: 'undecodable entries are ignored', sent: [{ manager: 'x', operation: 'Bogus' }], want: { 'kubectl-client-side-apply/Update': ['.data', '.data.key', '.metadata.annotations', `.metadata.annotations.${LAST_APPLIED_ANNOTATION}`], 'kubectl-label/Update': ['.metadata.labels', '.metadata.labels.x'] } },
  {
    name: 'valid entries the client changed are honoured, as kube does',
    sent: [{ manager: 'someone', operation: 'Apply', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:data': { 'f:key': {} } } }],
    want: { 'someone/Apply': ['.data.key'], 'kubectl-label/Update': ['.metadata.labels', '.metadata.labels.x'] },
  },
];
for (const c of sentManagedFields) {
  test(`update with client managedFields: ${c.name}`, () => {
    const live = csaCreate();
    const updated = structuredClone(live);
    updated.metadata.labels = { x: 'y' };
    if (c.sent === undefined) delete updated.metadata.managedFields;
    else updated.metadata.managedFields = c.sent as never;
    assert.deepEqual(owners(trackUpdate({ old: live, updated, manager: 'kubectl-label', hints: configMapHints, apiVersion: 'v1', now: T2 })), c.want);
  });
}

test('a status update is tracked with its subresource and only for status; main updates ignore status', () => {
  const live = stored(trackUpdate({ old: undefined, updated: machine({ plan: 'p' }, { phase: 'Pending' }), manager: 'kubectl-create', hints: machineHints, apiVersion: 'example.com/v1', now: T1 }));
  assert.deepEqual(owners(live), { 'kubectl-create/Update': ['.spec', '.spec.plan'] });
  const updated = trackUpdate({ old: live, updated: { ...live, status: { phase: 'Running' } }, manager: 'machine-controller', hints: machineHints, apiVersion: 'example.com/v1', now: T2, subresource: 'status' });
  assert.deepEqual(owners(updated), { 'kubectl-create/Update': ['.spec', '.spec.plan'], 'machine-controller/Update/status': ['.status.phase'] });
  assert.equal(updated.metadata.managedFields?.[1]?.subresource, 'status');
  // A main-resource apply changing spec does not conflict with status owners.
  const applied = applyPatch({ live: stored(updated), applied: machine({ plan: 'q' }), manager: 'kubectl-create-2', force: true, hints: machineHints, apiVersion: 'example.com/v1', now: T3 }).object;
  assert.deepEqual(applied.status, { phase: 'Running' });
  assert.deepEqual(owners(applied)['machine-controller/Update/status'], ['.status.phase']);
});

test('pruning removes declared objects left empty, keeps metadata, and leaves unowned siblings alone', () => {
  const base = { hints: machineHints, apiVersion: 'example.com/v1', force: false };
  const withLabels: KubeObject = { ...machine({ plan: 'p' }), metadata: { name: 'm1', labels: { app: 'x' } } };
  let live = stored(applyPatch({ ...base, live: undefined, applied: withLabels, manager: 'alice', now: T1 }).object);
  const next = applyPatch({ ...base, live, applied: { apiVersion: 'example.com/v1', kind: 'Machine', metadata: { name: 'm1' } }, manager: 'alice', now: T2 }).object;
  assert.equal(next.spec, undefined);
  assert.equal(next.metadata.labels, undefined);
  assert.equal(next.metadata.name, 'm1');
  assert.equal(next.metadata.uid, 'uid-1');
  assert.equal(next.metadata.managedFields, undefined, 'a manager owning nothing has no entry');

  // A field someone else set by an update survives alice dropping her own.
  live = stored(trackUpdate({ old: live, updated: { ...live, spec: { plan: 'p', tags: ['t'] } }, manager: 'kubectl-edit', hints: machineHints, apiVersion: 'example.com/v1', now: T2 }));
  const kept = applyPatch({ ...base, live, applied: { apiVersion: 'example.com/v1', kind: 'Machine', metadata: { name: 'm1' } }, manager: 'alice', now: T3 }).object;
  assert.deepEqual(kept.spec, { tags: ['t'] });
  assert.deepEqual(owners(kept), { 'kubectl-edit/Update': ['.spec.tags'] });
});

test('server-set metadata in an applied configuration is ignored; times are whole seconds', () => {
  const live = stored(applyPatch({ live: undefined, applied: cm({ a: '1' }), manager: 'alice', force: false, hints: configMapHints, apiVersion: 'v1', now: T1 }).object);
  const applied = { ...cm({ a: '2' }), metadata: { name: 'cm', namespace: 'default', creationTimestamp: null, uid: 'other' } } as unknown as KubeObject;
  const { object } = applyPatch({ live, applied, manager: 'alice', force: false, hints: configMapHints, apiVersion: 'v1', now: '2024-05-01T10:05:00.789Z' });
  assert.equal(object.metadata.creationTimestamp, T1);
  assert.equal(object.metadata.uid, 'uid-1');
  assert.equal(object.metadata.managedFields?.[0]?.time, T2);
});

test('a create is tracked the same through the one-walk shortcut as through the general path', () => {
  // managedFields: [] asks kube to reset ownership, which takes the general path and starts from no managers too.
  const cases: Array<[string, KubeObject, ReturnType<typeof schemaHintsFrom>]> = [
    ['a ConfigMap', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'd', labels: { b: '1', a: '2' }, annotations: {} }, data: { z: 'x', y: '' } }, configMapHints],
    ['nothing tracked', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'd' } }, configMapHints],
    ['a machine with status', { apiVersion: 'example.com/v1', kind: 'Machine', metadata: { name: 'm', generateName: 'm-' }, spec: { power: 'on' }, status: { phase: 'x' } } as KubeObject, machineHints],
  ];
  for (const [what, obj, hints] of cases) {
    const args = { old: undefined, manager: 'kubectl-create', hints, apiVersion: 'v1', now: T1 };
    const shortcut = trackUpdate({ ...args, updated: obj });
    const general = trackUpdate({ ...args, updated: { ...obj, metadata: { ...obj.metadata, managedFields: [] } } });
    assert.equal(JSON.stringify(shortcut), JSON.stringify(general), what);
  }
  // …and the shortcut did run: the object it returns is a copy, with the one manager kube would record.
  const obj: KubeObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' }, data: { k: 'v' } };
  const out = trackUpdate({ old: undefined, updated: obj, manager: 'kubectl-create', hints: configMapHints, apiVersion: 'v1', now: T1 });
  assert.notEqual(out, obj);
  assert.equal(obj.metadata.managedFields, undefined);
  assert.deepEqual(out.metadata.managedFields, [{ manager: 'kubectl-create', operation: 'Update', apiVersion: 'v1', time: T1.replace(/\.\d+Z$/, 'Z'), fieldsType: 'FieldsV1', fieldsV1: { 'f:data': { '.': {}, 'f:k': {} } } }]);
});

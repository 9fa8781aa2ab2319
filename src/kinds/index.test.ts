import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allKinds, KindRegistry, keyFor, parseKey, prefixFor, selectableFieldsOf } from './index.js';
import { configMapKind, eventKind, namespaceKind, planKind } from './index.js';
import type { KindDeclaration } from './types.js';

const registry = new KindRegistry();

test('lookups by resource, kind, apiVersion+kind, singular and short name', () => {
  const cases: [name: string, got: KindDeclaration | undefined, want: KindDeclaration][] = [
    ['resource plans', registry.byResource('metalplane.dev', 'v1alpha1', 'plans'), planKind],
    ['resource core configmaps', registry.byResource('', 'v1', 'configmaps'), configMapKind],
    ['kind Plan', registry.byKind('metalplane.dev', 'v1alpha1', 'Plan'), planKind],
    ['apiVersion+kind Namespace', registry.byApiVersionKind('v1', 'Namespace'), namespaceKind],
    ['singular plan', registry.bySingular('metalplane.dev', 'v1alpha1', 'plan'), planKind],
    ['short name ns', registry.byShortName('ns')[0], namespaceKind],
  ];
  for (const [name, got, want] of cases) assert.equal(got, want, name);
  assert.equal(registry.byResource('metalplane.dev', 'v1alpha1', 'nope'), undefined);
  assert.equal(registry.byResource('', 'v1', 'plans'), undefined, 'plans are not in the core group');
  assert.equal(registry.byApiVersionKind('metalplane.dev/v1', 'Plan'), undefined, 'wrong version');
});

test('resolve understands what users type at kubectl', () => {
  const cases: [typed: string, want: string[]][] = [
    ['plans', ['Plan']],
    ['plan', ['Plan']],
    ['Plan', ['Plan']],
    ['os', ['OperatingSystem']],
    ['fac', ['Facility']],
    ['plans.metalplane.dev', ['Plan']],
    ['plan.v1alpha1.metalplane.dev', ['Plan']],
    ['cm', ['ConfigMap']],
    ['leases.coordination.k8s.io', ['Lease']],
    ['ev', ['Event']],
    ['nonsense', []],
  ];
  for (const [typed, want] of cases) assert.deepEqual(registry.resolve(typed).map((k) => k.kind), want, typed);
});

test('group-versions: core first, each once, with OpenAPI index paths', () => {
  assert.deepEqual(
    registry.groupVersions().map((g) => g.path),
    ['api/v1', 'apis/coordination.k8s.io/v1', 'apis/metalplane.dev/v1alpha1'],
  );
  assert.deepEqual(
    registry.kindsIn('metalplane.dev', 'v1alpha1').map((k) => k.kind),
    ['Metro', 'Facility', 'Plan', 'OperatingSystem', 'Hardware', 'Device', 'Workflow', 'IPPool', 'IPAddress', 'IPReservation', 'SSHKey', 'Organization', 'User', 'APIKey', 'UsageRecord', 'VirtualNetwork', 'BGPConfig', 'BGPSession', 'VLANAssignmentBatch', 'CloudConfig'],
  );
});

test('a kind declared twice is refused', () => {
  assert.throws(() => new KindRegistry([...allKinds, planKind]), /declared twice/);
});

test('storage keys', () => {
  assert.equal(keyFor(configMapKind, 'team-a', 'cfg'), '/registry/core/configmaps/team-a/cfg');
  assert.equal(keyFor(planKind, undefined, 'c3.small.x86'), '/registry/metalplane.dev/plans/c3.small.x86');
  assert.equal(prefixFor(configMapKind, 'team-a'), '/registry/core/configmaps/team-a/');
  assert.equal(prefixFor(configMapKind), '/registry/core/configmaps/');
  assert.equal(prefixFor(planKind, 'ignored'), '/registry/metalplane.dev/plans/');
  assert.throws(() => keyFor(configMapKind, undefined, 'cfg'), /namespace is required/);
  assert.deepEqual(parseKey(configMapKind, '/registry/core/configmaps/team-a/cfg'), { namespace: 'team-a', name: 'cfg' });
  assert.deepEqual(parseKey(planKind, '/registry/metalplane.dev/plans/c3.small.x86'), { name: 'c3.small.x86' });
  assert.equal(parseKey(planKind, '/registry/metalplane.dev/plansets/x'), undefined);
});

test('selectable fields include metadata and the kind\'s own, aliases resolved', () => {
  const fields = selectableFieldsOf(eventKind);
  assert.deepEqual(fields.slice(0, 2).map((f) => f.name), ['metadata.name', 'metadata.namespace']);
  assert.deepEqual(fields.find((f) => f.name === 'involvedObject.kind'), { name: 'involvedObject.kind', jsonPath: '.involvedObject.kind' });
  assert.deepEqual(fields.find((f) => f.name === 'source'), { name: 'source', jsonPath: '.source.component' });
});

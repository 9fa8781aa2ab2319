// kubectl compatibility, part 2: writes. Client- and server-side apply, diff, label/annotate, the three patch
// types, field-manager conflicts, server dry-run, optimistic concurrency and strict field validation.
// Drives the real kubectl against a real `metalplane up` (one server for the file).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { kubectl, kubectlOk, startTestServer, writeTemp, type TestServer } from './helpers/server.js';
import { exists, kubectlFails, kubectlJson, kubectlSkipReason } from './helpers/kubectl.js';

const skip = kubectlSkipReason();

const configMap = (ns: string, name: string, data: Record<string, string>, meta: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: ns, ...meta },
  data,
});

const plan = (name: string, hour: number, extraSpec: Record<string, unknown> = {}) => ({
  apiVersion: 'metalplane.dev/v1alpha1',
  kind: 'Plan',
  metadata: { name },
  spec: {
    class: name,
    specs: { cpus: [{ count: 1, type: 'Test CPU 4-Core', cores: 4 }], memory: { total: '16GB' } },
    pricing: { hour },
    ...extraSpec,
  },
});

interface ManagedFieldsEntry {
  manager: string;
  operation: string;
  fieldsV1: Record<string, Record<string, unknown>>;
}

describe('kubectl: apply, diff, label, annotate, patch, conflicts, dry-run, validation', { skip }, () => {
  let s: TestServer;
  let dir: string;
  before(async () => {
    s = await startTestServer();
    dir = mkdtempSync(join(tmpdir(), 'metalplane-kubectl-'));
    for (const ns of ['apply', 'patch', 'ssa', 'dry', 'stale']) kubectlOk(s, ['create', 'namespace', ns]);
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('kubectl apply: created, unchanged, configured (ConfigMap)', () => {
    const file = writeTemp(dir, 'cm.json', JSON.stringify(configMap('apply', 'settings', { color: 'blue' })));
    assert.equal(kubectlOk(s, ['apply', '-f', file]).trim(), 'configmap/settings created');
    const rv1 = kubectlOk(s, ['get', 'cm', 'settings', '-n', 'apply', '-o', 'jsonpath={.metadata.resourceVersion}']);
    assert.equal(kubectlOk(s, ['apply', '-f', file]).trim(), 'configmap/settings unchanged');
    assert.equal(kubectlOk(s, ['get', 'cm', 'settings', '-n', 'apply', '-o', 'jsonpath={.metadata.resourceVersion}']), rv1, 'an unchanged apply must not write');

    writeTemp(dir, 'cm.json', JSON.stringify(configMap('apply', 'settings', { color: 'green', size: 'L' })));
    assert.equal(kubectlOk(s, ['apply', '-f', file]).trim(), 'configmap/settings configured');
    const cm = kubectlJson(s, ['get', 'cm', 'settings', '-n', 'apply']);
    assert.deepEqual(cm.data, { color: 'green', size: 'L' });
    assert.notEqual(cm.metadata.resourceVersion, rv1);
    const last = JSON.parse(cm.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']);
    assert.deepEqual(last.data, { color: 'green', size: 'L' });

    // A key dropped from the manifest is removed (three-way merge with last-applied).
    writeTemp(dir, 'cm.json', JSON.stringify(configMap('apply', 'settings', { color: 'green' })));
    assert.equal(kubectlOk(s, ['apply', '-f', file]).trim(), 'configmap/settings configured');
    assert.deepEqual(kubectlJson(s, ['get', 'cm', 'settings', '-n', 'apply']).data, { color: 'green' });
  });

  test('kubectl apply: created, unchanged, configured (Plan, a metalplane.dev kind)', () => {
    const file = writeTemp(dir, 'plan.json', JSON.stringify(plan('t1.test.x86', 0.5)));
    assert.equal(kubectlOk(s, ['apply', '-f', file]).trim(), 'plan.metalplane.dev/t1.test.x86 created');
    assert.equal(kubectlOk(s, ['apply', '-f', file]).trim(), 'plan.metalplane.dev/t1.test.x86 unchanged');
    const gen1 = kubectlJson(s, ['get', 'plan', 't1.test.x86']).metadata.generation;
    writeTemp(dir, 'plan.json', JSON.stringify(plan('t1.test.x86', 0.65)));
    assert.equal(kubectlOk(s, ['apply', '-f', file]).trim(), 'plan.metalplane.dev/t1.test.x86 configured');
    const p = kubectlJson(s, ['get', 'plan', 't1.test.x86']);
    assert.equal(p.spec.pricing.hour, 0.65);
    assert.equal(p.metadata.generation, gen1 + 1, 'a spec change bumps generation');
    // Columns whose value is absent (DRIVES, METROS) are empty cells, as kube's CRD table convertor sends them.
    assert.match(kubectlOk(s, ['get', 'plans']), /^t1\.test\.x86\s+1x Test CPU 4-Core\s+16GB\s+0\.65\s+\d+s$/m);
  });

  test('kubectl diff: exit 1 with a diff when changed, 0 when the same', () => {
    const file = writeTemp(dir, 'diff.json', JSON.stringify(configMap('apply', 'diffme', { a: '1' })));
    kubectlOk(s, ['apply', '-f', file]);
    const same = kubectl(s, ['diff', '-f', file]);
    assert.equal(same.status, 0, same.stderr);
    assert.equal(same.stdout, '');

    writeTemp(dir, 'diff.json', JSON.stringify(configMap('apply', 'diffme', { a: '2' })));
    const changed = kubectl(s, ['diff', '-f', file]);
    assert.equal(changed.status, 1, changed.stderr);
    assert.match(changed.stdout, /^-  a: "1"$/m);
    assert.match(changed.stdout, /^\+  a: "2"$/m);
    assert.equal(kubectlJson(s, ['get', 'cm', 'diffme', '-n', 'apply']).data.a, '1', 'diff must not change the object');

    const planFile = writeTemp(dir, 'diff-plan.json', JSON.stringify(plan('t2.test.x86', 1)));
    kubectlOk(s, ['apply', '-f', planFile]);
    assert.equal(kubectl(s, ['diff', '-f', planFile]).status, 0);
    writeTemp(dir, 'diff-plan.json', JSON.stringify(plan('t2.test.x86', 2)));
    const planDiff = kubectl(s, ['diff', '-f', planFile]);
    assert.equal(planDiff.status, 1, planDiff.stderr);
    assert.match(planDiff.stdout, /^-\s+hour: 1$/m);
    assert.match(planDiff.stdout, /^\+\s+hour: 2$/m);

    const serverSide = kubectl(s, ['diff', '--server-side', '-f', planFile]);
    assert.equal(serverSide.status, 1, serverSide.stderr);
    assert.match(serverSide.stdout, /^\+\s+hour: 2$/m);
  });

  test('kubectl label and annotate, with and without --overwrite, and removal', () => {
    kubectlOk(s, ['create', 'configmap', 'tags', '-n', 'patch', '--from-literal=a=b']);
    assert.equal(kubectlOk(s, ['label', 'cm', 'tags', '-n', 'patch', 'tier=web']).trim(), 'configmap/tags labeled');
    const refused = kubectlFails(s, ['label', 'cm', 'tags', '-n', 'patch', 'tier=db']);
    assert.match(refused.stderr, /'tier' already has a value \(web\), and --overwrite is false/);
    assert.equal(kubectlOk(s, ['label', 'cm', 'tags', '-n', 'patch', 'tier=db', '--overwrite']).trim(), 'configmap/tags labeled');
    assert.equal(kubectlOk(s, ['get', 'cm', 'tags', '-n', 'patch', '-o', 'jsonpath={.metadata.labels.tier}']), 'db');

    assert.equal(kubectlOk(s, ['annotate', 'cm', 'tags', '-n', 'patch', 'owner=team-a']).trim(), 'configmap/tags annotated');
    kubectlFails(s, ['annotate', 'cm', 'tags', '-n', 'patch', 'owner=team-b']);
    kubectlOk(s, ['annotate', 'cm', 'tags', '-n', 'patch', 'owner=team-b', '--overwrite']);
    assert.equal(kubectlOk(s, ['get', 'cm', 'tags', '-n', 'patch', '-o', 'jsonpath={.metadata.annotations.owner}']), 'team-b');

    kubectlOk(s, ['label', 'cm', 'tags', '-n', 'patch', 'tier-']);
    const meta = kubectlJson(s, ['get', 'cm', 'tags', '-n', 'patch']).metadata;
    assert.equal(meta.labels?.tier, undefined);

    // The same on a metalplane kind (JSON merge patch under the hood).
    assert.equal(kubectlOk(s, ['label', 'plan', 'c3.small.x86', 'tier=gold']).trim(), 'plan.metalplane.dev/c3.small.x86 labeled');
    assert.equal(kubectlOk(s, ['get', 'plans', '-l', 'tier=gold', '-o', 'name']).trim(), 'plan.metalplane.dev/c3.small.x86');
    kubectlOk(s, ['annotate', 'plan', 'c3.small.x86', 'note=popular']);
    assert.equal(kubectlOk(s, ['get', 'plan', 'c3.small.x86', '-o', 'jsonpath={.metadata.annotations.note}']), 'popular');
    kubectlOk(s, ['label', 'plan', 'c3.small.x86', 'tier-']);
  });

  test('kubectl patch: --type merge, --type json, strategic (the default for ConfigMap)', () => {
    kubectlOk(s, ['create', 'configmap', 'p', '-n', 'patch', '--from-literal=a=1', '--from-literal=b=2']);
    assert.equal(kubectlOk(s, ['patch', 'cm', 'p', '-n', 'patch', '--type', 'merge', '-p', '{"data":{"a":"10","b":null}}']).trim(), 'configmap/p patched');
    assert.deepEqual(kubectlJson(s, ['get', 'cm', 'p', '-n', 'patch']).data, { a: '10' });

    kubectlOk(s, ['patch', 'cm', 'p', '-n', 'patch', '--type', 'json', '-p', '[{"op":"add","path":"/data/c","value":"3"},{"op":"replace","path":"/data/a","value":"11"}]']);
    assert.deepEqual(kubectlJson(s, ['get', 'cm', 'p', '-n', 'patch']).data, { a: '11', c: '3' });
    const failedTest = kubectlFails(s, ['patch', 'cm', 'p', '-n', 'patch', '--type', 'json', '-p', '[{"op":"test","path":"/data/a","value":"nope"},{"op":"remove","path":"/data/a"}]']);
    assert.match(failedTest.stderr, /test/i);
    assert.equal(kubectlJson(s, ['get', 'cm', 'p', '-n', 'patch']).data.a, '11', 'a failed json patch changes nothing');

    // Strategic merge: metadata.finalizers merges as a set (a JSON merge patch would replace the list).
    kubectlOk(s, ['patch', 'cm', 'p', '-n', 'patch', '-p', '{"metadata":{"finalizers":["example.com/a"]}}']);
    assert.equal(kubectlOk(s, ['patch', 'cm', 'p', '-n', 'patch', '-p', '{"metadata":{"finalizers":["example.com/b"]},"data":{"d":"4"}}']).trim(), 'configmap/p patched');
    const sm = kubectlJson(s, ['get', 'cm', 'p', '-n', 'patch']);
    // Both kept; kube orders the patch's items first when the live list does not relate them (normalizeElementOrder).
    assert.deepEqual(sm.metadata.finalizers, ['example.com/b', 'example.com/a']);
    assert.deepEqual(sm.data, { a: '11', c: '3', d: '4' });
    kubectlOk(s, ['patch', 'cm', 'p', '-n', 'patch', '--type', 'merge', '-p', '{"metadata":{"finalizers":null}}']);
    assert.equal(kubectlJson(s, ['get', 'cm', 'p', '-n', 'patch']).metadata.finalizers, undefined);

    const unchanged = kubectlOk(s, ['patch', 'cm', 'p', '-n', 'patch', '--type', 'merge', '-p', '{"data":{"a":"11"}}']).trim();
    assert.equal(unchanged, 'configmap/p patched (no change)');

    // A metalplane kind: merge and json patches of spec.
    kubectlOk(s, ['apply', '-f', '-'], JSON.stringify(plan('t3.test.x86', 1)));
    kubectlOk(s, ['patch', 'plan', 't3.test.x86', '--type', 'merge', '-p', '{"spec":{"pricing":{"hour":1.25}}}']);
    kubectlOk(s, ['patch', 'plan', 't3.test.x86', '--type', 'json', '-p', '[{"op":"add","path":"/spec/availableIn","value":["da","ny"]}]']);
    const p = kubectlJson(s, ['get', 'plan', 't3.test.x86']);
    assert.equal(p.spec.pricing.hour, 1.25);
    assert.deepEqual(p.spec.availableIn, ['da', 'ny']);
    const invalid = kubectlFails(s, ['patch', 'plan', 't3.test.x86', '--type', 'merge', '-p', '{"spec":{"pricing":{"hour":-1}}}']);
    assert.match(invalid.stderr, /spec\.pricing\.hour/);
  });

  test('server-side apply: a conflicting manager is refused naming the field; --force-conflicts takes it over', () => {
    const file = writeTemp(dir, 'ssa.json', JSON.stringify(configMap('ssa', 'shared', { owner: 'first', keep: 'x' })));
    assert.equal(kubectlOk(s, ['apply', '--server-side', '-f', file]).trim(), 'configmap/shared serverside-applied');
    assert.equal(kubectlOk(s, ['apply', '--server-side', '-f', file]).trim(), 'configmap/shared serverside-applied');

    const other = writeTemp(dir, 'ssa-other.json', JSON.stringify(configMap('ssa', 'shared', { owner: 'second' })));
    const conflict = kubectlFails(s, ['apply', '--server-side', '--field-manager', 'other', '-f', other]);
    assert.match(conflict.stderr, /conflict/i);
    assert.match(conflict.stderr, /conflict with "kubectl"/);
    assert.match(conflict.stderr, /\.data\.owner/);
    assert.equal(kubectlOk(s, ['get', 'cm', 'shared', '-n', 'ssa', '-o', 'jsonpath={.data.owner}']), 'first');

    // Applying the same value is no conflict: both managers then share the field.
    const agree = writeTemp(dir, 'ssa-agree.json', JSON.stringify(configMap('ssa', 'shared', { keep: 'x' })));
    kubectlOk(s, ['apply', '--server-side', '--field-manager', 'third', '-f', agree]);

    assert.equal(kubectlOk(s, ['apply', '--server-side', '--field-manager', 'other', '--force-conflicts', '-f', other]).trim(), 'configmap/shared serverside-applied');
    const cm = kubectlJson(s, ['get', 'cm', 'shared', '-n', 'ssa', '--show-managed-fields']);
    assert.deepEqual(cm.data, { owner: 'second', keep: 'x' });
    const mf = cm.metadata.managedFields as ManagedFieldsEntry[];
    const byManager = new Map(mf.map((e) => [e.manager, e]));
    assert.equal(byManager.get('other')?.operation, 'Apply');
    assert.ok('f:owner' in (byManager.get('other')?.fieldsV1['f:data'] ?? {}), JSON.stringify(mf));
    assert.ok(!('f:owner' in (byManager.get('kubectl')?.fieldsV1['f:data'] ?? {})), `kubectl must have lost .data.owner: ${JSON.stringify(mf)}`);
    assert.ok('f:keep' in (byManager.get('kubectl')?.fieldsV1['f:data'] ?? {}), JSON.stringify(mf));
    assert.ok('f:keep' in (byManager.get('third')?.fieldsV1['f:data'] ?? {}), JSON.stringify(mf));

    // Without --show-managed-fields kubectl hides them.
    assert.equal(kubectlJson(s, ['get', 'cm', 'shared', '-n', 'ssa']).metadata.managedFields, undefined);

    // An Update (kubectl edit/patch) of an applied field conflicts on the next apply by the old owner.
    kubectlOk(s, ['patch', 'cm', 'shared', '-n', 'ssa', '--type', 'merge', '-p', '{"data":{"keep":"y"}}']);
    const again = kubectlFails(s, ['apply', '--server-side', '--field-manager', 'third', '-f', agree]);
    assert.match(again.stderr, /conflict with "kubectl-patch"/);
    assert.match(again.stderr, /\.data\.keep/);
  });

  test('server-side apply of a metalplane kind, then a conflict on spec', () => {
    const file = writeTemp(dir, 'ssa-plan.json', JSON.stringify(plan('t4.test.x86', 2)));
    kubectlOk(s, ['apply', '--server-side', '-f', file]);
    const other = writeTemp(dir, 'ssa-plan-other.json', JSON.stringify({ apiVersion: 'metalplane.dev/v1alpha1', kind: 'Plan', metadata: { name: 't4.test.x86' }, spec: { pricing: { hour: 3 } } }));
    const conflict = kubectlFails(s, ['apply', '--server-side', '--field-manager', 'pricing-bot', '-f', other]);
    assert.match(conflict.stderr, /conflict with "kubectl".*\.spec\.pricing\.hour|\.spec\.pricing\.hour[\s\S]*conflict with "kubectl"/);
    kubectlOk(s, ['apply', '--server-side', '--field-manager', 'pricing-bot', '--force-conflicts', '-f', other]);
    const p = kubectlJson(s, ['get', 'plan', 't4.test.x86', '--show-managed-fields']);
    assert.equal(p.spec.pricing.hour, 3);
    assert.equal(p.spec.specs.memory.total, '16GB', 'fields only kubectl applied stay');
    assert.ok((p.metadata.managedFields as ManagedFieldsEntry[]).some((e) => e.manager === 'pricing-bot' && e.operation === 'Apply'));
  });

  test('--dry-run=server: create, apply, patch, delete report success and persist nothing', () => {
    assert.equal(kubectlOk(s, ['create', 'configmap', 'ghost', '-n', 'dry', '--from-literal=a=b', '--dry-run=server']).trim(), 'configmap/ghost created (server dry run)');
    assert.equal(exists(s, ['cm', 'ghost', '-n', 'dry']), false);

    const out = kubectlOk(s, ['apply', '-f', '-', '--dry-run=server', '-o', 'json'], JSON.stringify(configMap('dry', 'ghost2', { a: 'b' })));
    assert.equal(JSON.parse(out).data.a, 'b');
    assert.equal(exists(s, ['cm', 'ghost2', '-n', 'dry']), false);

    kubectlOk(s, ['create', 'configmap', 'real', '-n', 'dry', '--from-literal=a=1']);
    const rv = kubectlOk(s, ['get', 'cm', 'real', '-n', 'dry', '-o', 'jsonpath={.metadata.resourceVersion}']);
    assert.equal(kubectlOk(s, ['apply', '-f', '-', '--dry-run=server'], JSON.stringify(configMap('dry', 'real', { a: '2' }))).trim(), 'configmap/real configured (server dry run)');
    // kubectl 1.32's patch drops the "(server dry run)" suffix (its ToPrinter overwrites the operation).
    assert.match(kubectlOk(s, ['patch', 'cm', 'real', '-n', 'dry', '--type', 'merge', '-p', '{"data":{"a":"3"}}', '--dry-run=server']).trim(), /^configmap\/real patched/);
    assert.equal(kubectlOk(s, ['apply', '--server-side', '--force-conflicts', '-f', '-', '--dry-run=server'], JSON.stringify(configMap('dry', 'real', { a: '4' }))).trim(), 'configmap/real serverside-applied (server dry run)');
    assert.equal(kubectlOk(s, ['label', 'cm', 'real', '-n', 'dry', 'x=y', '--dry-run=server']).trim(), 'configmap/real labeled (server dry run)');
    assert.equal(kubectlOk(s, ['delete', 'cm', 'real', '-n', 'dry', '--dry-run=server']).trim(), 'configmap "real" deleted (server dry run)');
    const cm = kubectlJson(s, ['get', 'cm', 'real', '-n', 'dry']);
    assert.equal(cm.data.a, '1');
    assert.equal(cm.metadata.labels, undefined);
    assert.equal(cm.metadata.resourceVersion, rv, 'nothing was written');

    kubectlOk(s, ['apply', '-f', '-', '--dry-run=server'], JSON.stringify(plan('t5.test.x86', 1)));
    assert.equal(exists(s, ['plan', 't5.test.x86']), false);
    // Dry run still validates.
    const invalid = kubectlFails(s, ['apply', '-f', '-', '--dry-run=server'], JSON.stringify(plan('t6.test.x86', -5)));
    assert.match(invalid.stderr, /spec\.pricing\.hour/);
  });

  test('a stale resourceVersion is refused: "the object has been modified"', () => {
    kubectlOk(s, ['create', 'configmap', 'cas', '-n', 'stale', '--from-literal=a=1']);
    const old = kubectlJson(s, ['get', 'cm', 'cas', '-n', 'stale']);
    kubectlOk(s, ['patch', 'cm', 'cas', '-n', 'stale', '--type', 'merge', '-p', '{"data":{"a":"2"}}']);

    const replaced = kubectlFails(s, ['replace', '-f', '-'], JSON.stringify({ ...old, data: { a: 'from-stale-copy' } }));
    assert.match(replaced.stderr, /Operation cannot be fulfilled on configmaps "cas": the object has been modified; please apply your changes to the latest version and try again/);

    const applied = kubectlFails(s, ['apply', '-f', '-'], JSON.stringify({ ...configMap('stale', 'cas', { a: 'also-stale' }), metadata: { name: 'cas', namespace: 'stale', resourceVersion: old.metadata.resourceVersion } }));
    assert.match(applied.stderr, /the object has been modified/);
    assert.equal(kubectlOk(s, ['get', 'cm', 'cas', '-n', 'stale', '-o', 'jsonpath={.data.a}']), '2');

    // With the current resourceVersion replace works.
    const cur = kubectlJson(s, ['get', 'cm', 'cas', '-n', 'stale']);
    assert.equal(kubectlOk(s, ['replace', '-f', '-'], JSON.stringify({ ...cur, data: { a: '3' } })).trim(), 'configmap/cas replaced');
    assert.equal(kubectlOk(s, ['get', 'cm', 'cas', '-n', 'stale', '-o', 'jsonpath={.data.a}']), '3');

    const oldPlan = kubectlJson(s, ['get', 'plan', 'c3.medium.x86']);
    kubectlOk(s, ['label', 'plan', 'c3.medium.x86', 'touched=yes']);
    const stalePlan = kubectlFails(s, ['replace', '-f', '-'], JSON.stringify(oldPlan));
    assert.match(stalePlan.stderr, /Operation cannot be fulfilled on plans\.metalplane\.dev "c3\.medium\.x86": the object has been modified/);
  });

  test('an unknown field is refused (strict field validation), naming the field', () => {
    const bogus = { ...plan('t7.test.x86', 1, { bogus: true }) };
    const created = kubectlFails(s, ['apply', '-f', '-'], JSON.stringify(bogus));
    assert.match(created.stderr, /unknown field "spec\.bogus"/);
    assert.equal(exists(s, ['plan', 't7.test.x86']), false);

    kubectlOk(s, ['apply', '-f', '-'], JSON.stringify(plan('t7.test.x86', 1)));
    const updated = kubectlFails(s, ['apply', '-f', '-'], JSON.stringify(bogus));
    assert.match(updated.stderr, /unknown field "spec\.bogus"/);
    const ssa = kubectlFails(s, ['apply', '--server-side', '-f', '-'], JSON.stringify(bogus));
    assert.match(ssa.stderr, /spec\.bogus/);
    const created2 = kubectlFails(s, ['create', '-f', '-'], JSON.stringify(plan('t8.test.x86', 1, { nested: { deep: 1 } })));
    assert.match(created2.stderr, /unknown field "spec\.nested"/);

    const cmBogus = kubectlFails(s, ['apply', '-f', '-'], JSON.stringify({ ...configMap('apply', 'strict', { a: 'b' }), bogus: 1 }));
    assert.match(cmBogus.stderr, /unknown field "bogus"/);

    // --validate=false sends fieldValidation=Ignore: the field is dropped, the object stored.
    kubectlOk(s, ['create', '-f', '-', '--validate=false'], JSON.stringify(plan('t9.test.x86', 1, { bogus: true })));
    assert.equal(kubectlJson(s, ['get', 'plan', 't9.test.x86']).spec.bogus, undefined);
  });
});

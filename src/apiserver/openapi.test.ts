import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KindRegistry } from '../kinds/index.js';
import { openApiNameOf, openApiV2, openApiV3For, openApiV3Hash, openApiV3Index } from './openapi.js';

/** Parsed JSON as the tests walk it: every step is another object (leaves are compared as unknown). */
type Json = { [key: string]: Json };
const list = (v: Json): Json[] => v as unknown as Json[];

const registry = new KindRegistry();

test('index lists every group-version with a hash-pinned URL; hashes are stable', () => {
  const index = openApiV3Index(registry);
  assert.deepEqual(Object.keys(index.paths), ['api/v1', 'apis/coordination.k8s.io/v1', 'apis/metalplane.dev/v1alpha1']);
  const url = index.paths['apis/metalplane.dev/v1alpha1']!.serverRelativeURL;
  assert.match(url, /^\/openapi\/v3\/apis\/metalplane\.dev\/v1alpha1\?hash=[0-9A-F]{128}$/);
  assert.equal(url.split('hash=')[1], openApiV3Hash(registry, 'apis/metalplane.dev/v1alpha1'));
  // A fresh registry over the same kinds renders the same documents.
  assert.deepEqual(openApiV3Index(new KindRegistry()), index);
  assert.equal(openApiV3For(registry, '/openapi/v3/apis/metalplane.dev/v1alpha1?hash=x'), openApiV3For(registry, 'apis/metalplane.dev/v1alpha1'));
  assert.equal(openApiV3For(registry, 'apis/nope/v1'), undefined);
});

test('schema names follow kube: io.k8s.api… for built-ins, reverse domain for ours', () => {
  const names = registry.all().map(openApiNameOf);
  for (const n of ['io.k8s.api.core.v1.ConfigMap', 'io.k8s.api.coordination.v1.Lease', 'dev.metalplane.v1alpha1.Plan']) assert.ok(names.includes(n), n);
});

test('v3 components: GVK list on kinds, ObjectMeta referenced and included, descriptions for explain', () => {
  const doc = openApiV3For(registry, 'apis/metalplane.dev/v1alpha1') as Json;
  const schemas = doc.components.schemas;
  const planSchema = schemas['dev.metalplane.v1alpha1.Plan'];
  assert.deepEqual(planSchema['x-kubernetes-group-version-kind'], [{ group: 'metalplane.dev', version: 'v1alpha1', kind: 'Plan' }]);
  assert.deepEqual(planSchema.properties.metadata.allOf, [{ $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta' }]);
  assert.ok(schemas['io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta'].properties.labels.additionalProperties);
  assert.ok(schemas['dev.metalplane.v1alpha1.PlanList']);
  const specFields = planSchema.properties.spec.properties;
  for (const [field, s] of Object.entries<Json>(specFields)) assert.ok(s.description, `spec.${field} has a description`);
  // Every $ref resolves inside the document.
  const refs = JSON.stringify(doc).match(/"#\/components\/schemas\/[^"]+"/g) ?? [];
  for (const r of refs) assert.ok(schemas[r.slice(22, -1)], `${r} resolves`);
});

/** kubectl's QueryParamVerifierV3 and apply's patch-type choice, as plain code over our document. */
function patchOperationFor(doc: Json, gvk: { group: string; version: string; kind: string }): Json | undefined {
  for (const item of Object.values<Json>(doc.paths)) {
    const op = item.patch;
    const ext = op?.['x-kubernetes-group-version-kind'];
    if (ext && !Array.isArray(ext) && String(ext.group) === gvk.group && String(ext.version) === gvk.version && String(ext.kind) === gvk.kind) return op;
  }
  return undefined;
}

test('every kind: PATCH operations carry a GVK object and the query params kubectl probes for', () => {
  for (const kind of registry.all()) {
    const gv = registry.groupVersions().find((g) => g.group === kind.group && g.version === kind.version)!;
    const doc = openApiV3For(registry, gv.path) as Json;
    const gvk = { group: kind.group, version: kind.version, kind: kind.kind };
    const patches = Object.values<Json>(doc.paths)
      .map((p) => p.patch)
      .filter((op) => op && String(op['x-kubernetes-group-version-kind']!.kind) === kind.kind);
    assert.ok(patches.length >= 1, kind.kind);
    for (const op of patches) {
      const names = list(op.parameters!).map((p) => String(p.name));
      for (const want of ['fieldValidation', 'dryRun', 'fieldManager', 'force']) assert.ok(names.includes(want), `${kind.kind} PATCH has ${want}`);
      const smp = 'application/strategic-merge-patch+json' in op.requestBody.content;
      assert.equal(smp, kind.builtin === true, `${kind.kind}: strategic merge patch only for built-ins`);
      assert.ok('application/merge-patch+json' in op.requestBody.content);
    }
    assert.ok(patchOperationFor(doc, gvk));
  }
});

test('paths follow kube URLs, namespaced and cluster-scoped, with status subresources', () => {
  const core = openApiV3For(registry, 'api/v1') as Json;
  const ours = openApiV3For(registry, 'apis/metalplane.dev/v1alpha1') as Json;
  for (const p of ['/api/v1/namespaces/{namespace}/configmaps/{name}', '/api/v1/namespaces/{namespace}/configmaps', '/api/v1/configmaps', '/api/v1/namespaces/{name}']) {
    assert.ok(core.paths[p], p);
  }
  for (const p of ['/apis/metalplane.dev/v1alpha1/plans', '/apis/metalplane.dev/v1alpha1/plans/{name}', '/apis/metalplane.dev/v1alpha1/plans/{name}/status']) {
    assert.ok(ours.paths[p], p);
  }
  const item = ours.paths['/apis/metalplane.dev/v1alpha1/plans/{name}'];
  assert.deepEqual(Object.keys(item).filter((k) => k !== 'parameters').sort(), ['delete', 'get', 'patch', 'put']);
  assert.equal(item.get.operationId, 'readMetalplaneDevV1alpha1Plan');
  assert.equal(core.paths['/api/v1/namespaces/{namespace}/configmaps/{name}'].get.operationId, 'readCoreV1NamespacedConfigMap');
});

test('v2: one swagger document with definitions, refs rewritten, patch consumes', () => {
  const doc = openApiV2(registry) as Json;
  assert.equal(doc.swagger, '2.0');
  const plan = doc.definitions['dev.metalplane.v1alpha1.Plan'];
  assert.deepEqual(plan['x-kubernetes-group-version-kind'], [{ group: 'metalplane.dev', version: 'v1alpha1', kind: 'Plan' }]);
  assert.equal(plan.properties.metadata.$ref, '#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta');
  assert.ok(!JSON.stringify(doc).includes('#/components/'));
  const refs = JSON.stringify(doc).match(/"#\/definitions\/[^"]+"/g) ?? [];
  for (const r of refs) assert.ok(doc.definitions[r.slice(15, -1)], `${r} resolves`);
  const cmPatch = doc.paths['/api/v1/namespaces/{namespace}/configmaps/{name}'].patch;
  assert.ok(list(cmPatch.consumes!).map(String).includes('application/strategic-merge-patch+json'));
  const planPatch = doc.paths!['/apis/metalplane.dev/v1alpha1/plans/{name}']!.patch!;
  assert.ok(!list(planPatch.consumes!).map(String).includes('application/strategic-merge-patch+json'));
  assert.deepEqual(cmPatch['x-kubernetes-group-version-kind'], { group: '', version: 'v1', kind: 'ConfigMap' });
  assert.equal(openApiV2(registry), doc, 'memoized');
});

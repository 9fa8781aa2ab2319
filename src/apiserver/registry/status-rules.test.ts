// For every kind with a status subresource: a write to the main resource (PUT, merge/JSON/strategic patch,
// server-side apply) leaves status as it was, and a write to /status leaves everything else as it was. One
// table of fixtures, one loop; a new kind with a status subresource and no fixture fails the coverage test.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openStore } from '../../store/index.js';
import type { Store } from '../../store/types.js';
import { KindRegistry, allKinds } from '../../kinds/index.js';
import { catalogSeed } from '../../kinds/catalog-seed.js';
import type { KindDeclaration, KubeObject, StoredObject } from '../../kinds/types.js';
import { apiVersionOf } from '../../kinds/types.js';
import { Registry, type PatchType } from '../registry.js';

const ns = 'rules';

/** A valid object of each kind with a status subresource, and a status its controller could write. */
function fixtures(): { obj: KubeObject; status: Record<string, unknown> }[] {
  const seed = catalogSeed();
  const first = (kind: string): KubeObject => structuredClone(seed.find((o) => o.kind === kind)!);
  return [
    { obj: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'status-rules-ns' } }, status: { phase: 'Terminating' } },
    { obj: first('Metro'), status: { conditions: [] } },
    { obj: first('Facility'), status: { conditions: [] } },
    { obj: first('Plan'), status: { conditions: [] } },
    { obj: first('OperatingSystem'), status: { conditions: [] } },
    { obj: first('IPPool'), status: { conditions: [] } },
    {
      obj: {
        apiVersion: 'metalplane.dev/v1alpha1',
        kind: 'Hardware',
        metadata: { name: 'rules-hw' },
        spec: {
          metro: 'da',
          facility: 'da11',
          rack: 'r01',
          slot: 1,
          plan: 'c3.small.x86',
          bmc: { driver: 'redfish', address: 'http://127.0.0.1:1', credentialsSecret: { name: 'bmc', namespace: ns } },
          nics: [{ name: 'eth0', mac: '02:00:00:00:00:01', pxe: true }],
          disks: [{ device: '/dev/sda', sizeGB: 480, type: 'SSD' }],
        },
      },
      status: { state: 'available' },
    },
    {
      obj: {
        apiVersion: 'metalplane.dev/v1alpha1',
        kind: 'Device',
        metadata: { name: 'rules-dev', namespace: ns },
        spec: { metro: 'da', plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04' },
      },
      status: { state: 'active' },
    },
    {
      obj: {
        apiVersion: 'metalplane.dev/v1alpha1',
        kind: 'Workflow',
        metadata: { name: 'rules-wf', namespace: ns },
        spec: { hardware: 'rules-hw', purpose: 'discover', actions: [{ name: 'power-on', type: 'power', executor: 'bmc', timeoutSeconds: 60, params: {} }] },
      },
      status: { state: 'running' },
    },
    {
      obj: {
        apiVersion: 'metalplane.dev/v1alpha1',
        kind: 'IPReservation',
        metadata: { name: 'rules-ipr', namespace: ns },
        spec: { metro: 'da', type: 'public_ipv4', quantity: 8 },
      },
      status: { state: 'pending' },
    },
    {
      obj: {
        apiVersion: 'metalplane.dev/v1alpha1',
        kind: 'CloudConfig',
        metadata: { name: 'rules-cc', namespace: ns },
        spec: { parts: [{ contentType: 'text/x-shellscript', content: '#!/bin/sh\ntrue\n' }] },
      },
      status: { hash: 'sha256:00', size: 15 },
    },
  ];
}

/** The fields a write may not touch, of a stored object: everything but status, or only status. */
const specSide = (o: KubeObject): unknown => {
  const { status: _s, metadata, ...rest } = o;
  return { ...rest, labels: metadata.labels, annotations: metadata.annotations, finalizers: metadata.finalizers };
};

describe('status subresource rules, for every kind that has one', () => {
  let store: Store;
  let reg: Registry;
  const kinds = new KindRegistry(allKinds);
  const byKind = (k: string): KindDeclaration => kinds.all().find((d) => d.kind === k)!;

  before(async () => {
    store = await openStore('sqlite::memory:');
    reg = new Registry({ store, kinds });
    await reg.start();
    await reg.create(byKind('Namespace'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  });
  after(async () => {
    reg.close();
    await store.close();
  });

  test('the fixture table covers every kind with a status subresource', () => {
    const covered = new Set(fixtures().map((f) => f.obj.kind));
    const missing = allKinds.filter((k) => k.statusSubresource && !covered.has(k.kind)).map((k) => k.kind);
    assert.deepEqual(missing, [], 'add a fixture for each of these kinds');
  });

  const mainWrites: { name: string; write: (kind: KindDeclaration, cur: StoredObject, status: unknown) => Promise<StoredObject> }[] = [
    { name: 'PUT', write: (kind, cur, status) => reg.update(kind, { ...structuredClone(cur), status: status as never }) },
    { name: 'PUT without status', write: (kind, cur) => reg.update(kind, { ...structuredClone(cur), status: undefined }) },
    ...(['merge', 'strategic'] as PatchType[]).map((type) => ({
      name: `${type} patch`,
      write: (kind: KindDeclaration, cur: StoredObject, status: unknown) => reg.patch(kind, cur.metadata.namespace, cur.metadata.name, type, { status, metadata: { labels: { touched: type } } }),
    })),
    {
      name: 'JSON patch',
      write: (kind, cur, status) => reg.patch(kind, cur.metadata.namespace, cur.metadata.name, 'json', [{ op: 'add', path: '/status', value: status }]),
    },
    {
      name: 'server-side apply',
      write: (kind, cur, status) =>
        reg.patch(kind, cur.metadata.namespace, cur.metadata.name, 'apply', { apiVersion: apiVersionOf(kind), kind: kind.kind, metadata: { name: cur.metadata.name, labels: { applied: 'yes' } }, status }, { fieldManager: 'rules-test', force: true }),
    },
  ];

  for (const f of fixtures()) {
    test(`${f.obj.kind}: main-resource writes leave status unchanged; status writes leave the rest unchanged`, async () => {
      const kind = byKind(f.obj.kind);
      const created = await reg.create(kind, f.obj);
      // The controller's view: a status written through the subresource.
      const withStatus = await reg.updateStatus(kind, { ...structuredClone(created), status: { ...(created.status as object), ...f.status } });
      const status = structuredClone(withStatus.status);
      assert.ok(status !== undefined, 'the status write is stored');
      const other = kind.kind === 'Namespace' ? { phase: 'Active' } : { conditions: [{ type: 'Forged', status: 'True', reason: 'Forged', message: 'x', lastTransitionTime: '2026-01-01T00:00:00Z' }] };

      for (const w of mainWrites) {
        const cur = (await reg.get(kind, withStatus.metadata.namespace, withStatus.metadata.name))!;
        const out = await w.write(kind, cur, { ...(status as object), ...other });
        assert.deepEqual(out.status, status, `${w.name}: status is unchanged`);
        const stored = (await reg.get(kind, withStatus.metadata.namespace, withStatus.metadata.name))!;
        assert.deepEqual(stored.status, status, `${w.name}: stored status is unchanged`);
      }

      // Status writes: a changed spec or label in the same body is ignored.
      const before = (await reg.get(kind, withStatus.metadata.namespace, withStatus.metadata.name))!;
      const forged = { ...structuredClone(before), spec: { forged: true }, metadata: { ...structuredClone(before.metadata), labels: { forged: 'yes' } } };
      const afterPut = await reg.updateStatus(kind, forged);
      assert.deepEqual(specSide(afterPut), specSide(before), 'PUT /status leaves spec and metadata unchanged');
      const afterPatch = await reg.patch(kind, before.metadata.namespace, before.metadata.name, 'merge', { spec: { forged: true }, metadata: { labels: { forged: 'yes' } } }, { subresource: 'status' });
      assert.deepEqual(specSide(afterPatch), specSide(before), 'PATCH /status leaves spec and metadata unchanged');
      assert.equal(afterPatch.metadata.generation, before.metadata.generation, 'a status write does not bump generation');
    });
  }

  test('Namespace: only /finalize changes spec.finalizers', async () => {
    const kind = byKind('Namespace');
    const created = await reg.create(kind, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'finalize-only' } });
    assert.deepEqual((created.spec as { finalizers: string[] }).finalizers, ['kubernetes']);
    const patched = await reg.patch(kind, undefined, 'finalize-only', 'merge', { spec: { finalizers: [] } });
    assert.deepEqual((patched.spec as { finalizers: string[] }).finalizers, ['kubernetes'], 'a main-resource patch keeps spec.finalizers');
    const put = await reg.update(kind, { ...structuredClone(patched), spec: { finalizers: ['other'] } });
    assert.deepEqual((put.spec as { finalizers: string[] }).finalizers, ['kubernetes'], 'a main-resource PUT keeps spec.finalizers');

    const deleting = await reg.delete(kind, undefined, 'finalize-only');
    assert.equal((deleting.status as { phase: string }).phase, 'Terminating');
    const finalized = await reg.update(kind, { ...structuredClone(deleting), spec: { finalizers: [] } }, { subresource: 'finalize' });
    assert.ok(finalized.metadata.deletionTimestamp, 'the finalize write that removes the last finalizer deletes the namespace');
    assert.equal(await reg.get(kind, undefined, 'finalize-only'), undefined, 'the namespace is gone');
  });

  test('a subresource the kind does not declare is 404', async () => {
    const kind = byKind('Plan');
    const plan = (await reg.list(kind)).items[0]!;
    await assert.rejects(reg.update(kind, plan, { subresource: 'finalize' }), (e: { code?: number }) => e.code === 404);
  });
});

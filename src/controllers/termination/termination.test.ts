// The termination controller on the real Registry: a device whose termination time has come is deleted (its
// finalizers then run the deprovisioning), a later one is looked at again when its time comes, and none is left.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openRegistryHarness } from '../../testing/registry-harness.js';
import { deviceKind } from '../../kinds/device.js';
import { namespaceKind } from '../../kinds/core.js';
import { TerminationReconciler } from './termination-controller.js';
import type { ProvisioningDeps } from '../provisioning-context.js';
import type { Result } from '../../runtime/controller.js';
import { FakeClock } from '../../lib/clock.js';

test('termination time: past → deleted, future → requeued until then, absent → left alone', async (t) => {
  const h = await openRegistryHarness({ test: t, clock: new FakeClock(Date.parse('2026-12-01T10:00:00Z')) });
  await h.client.create(namespaceKind, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'p' } });
  const dev = (name: string, terminationTime?: string) =>
    h.client.create(deviceKind, {
      apiVersion: 'metalplane.dev/v1alpha1',
      kind: 'Device',
      metadata: { name, namespace: 'p' },
      spec: { metro: 'da', plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04', ...(terminationTime ? { terminationTime } : {}) },
    });
  await dev('past', '2026-12-01T09:59:00Z');
  await dev('future', '2026-12-01T10:30:00Z');
  await dev('none');
  const r = new TerminationReconciler({ client: h.client, kinds: { device: deviceKind }, clock: h.clock } as unknown as ProvisioningDeps);

  const rows: [string, (res: Result) => void, boolean][] = [
    ['past', (res) => assert.deepEqual(res, { done: true }), true],
    ['future', (res) => assert.deepEqual(res, { after: 30 * 60_000 }), false],
    ['none', (res) => assert.deepEqual(res, { done: true }), false],
  ];
  for (const [name, check, deleting] of rows) {
    check(await r.reconcile(`p/${name}`));
    const d = await h.client.get(deviceKind, 'p', name);
    assert.equal(d?.metadata.deletionTimestamp !== undefined, deleting, `${name}: deletion started`);
  }
  // When the later time comes, it goes too.
  h.clock.advance(30 * 60_000);
  assert.deepEqual(await r.reconcile('p/future'), { done: true });
  assert.ok((await h.client.get(deviceKind, 'p', 'future'))?.metadata.deletionTimestamp);
});

// The optimistic lock that keeps two concurrent assignments from one reservation from overlapping, made
// deterministic: both calls start in the same turn of the event loop, so each checks for overlaps before the
// other has written anything — only the reservation's resourceVersion, updated in the same transaction as the
// assignment, can make the second one look again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenAuthenticator } from '../apiserver/auth.js';
import { deviceKind } from '../kinds/device.js';
import { ipAddressKind, type IPAddressSpec } from '../kinds/ip-address.js';
import { ipReservationKind } from '../kinds/ip-reservation.js';
import { namespaceKind } from '../kinds/core.js';
import { organizationKind } from '../kinds/organization.js';
import { userKind } from '../kinds/user.js';
import { isApiError } from '../lib/errors.js';
import { InformerFactory } from '../runtime/informer.js';
import { openRegistryHarness } from '../testing/registry-harness.js';
import { MetalContext } from './context.js';
import { assignReservedAddress, ipKinds } from './ips.js';

test('concurrent assignments of overlapping addresses from one reservation: exactly one wins, every time', async (t) => {
  const { registry, store, clock } = await openRegistryHarness({ test: t });
  const informers = new InformerFactory({ client: registry, clock });
  t.after(() => informers.stop());
  const ctx = new MetalContext({ registry, informers, tokens: new TokenAuthenticator(store), clock });
  await ctx.ensureIdentity();
  await ctx.start([namespaceKind, deviceKind, userKind, organizationKind, ...ipKinds]);
  await registry.create(namespaceKind, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'p' } });
  const r = await registry.create(ipReservationKind, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'IPReservation', metadata: { name: 'r', namespace: 'p' }, spec: { metro: 'da', type: 'public_ipv4', quantity: 8 } });
  await registry.updateStatus(ipReservationKind, { ...r, status: { state: 'created', network: '147.75.0.8', cidr: 29, cidrNotation: '147.75.0.8/29', gateway: '147.75.0.9', netmask: '255.255.255.248', pool: 'da-public-ipv4' } });
  const dev = await registry.create(deviceKind, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Device', metadata: { name: 'd', namespace: 'p' }, spec: { metro: 'da', plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04' } });
  const p = { user: await ctx.defaultUser(), readOnly: false, admin: true };

  const rounds: Array<[string, string]> = [
    ['147.75.0.8/32', '147.75.0.8/31'],
    ['147.75.0.10/31', '147.75.0.11/32'],
    ['147.75.0.12/30', '147.75.0.14/32'],
  ];
  for (const [a, b] of rounds) {
    const results = await Promise.allSettled([assignReservedAddress(ctx, p, dev, a), assignReservedAddress(ctx, p, dev, b)]);
    const won = results.filter((x) => x.status === 'fulfilled');
    assert.equal(won.length, 1, `${a} vs ${b}: ${results.map((x) => (x.status === 'fulfilled' ? 'assigned' : (x.reason as Error).message)).join(' | ')}`);
    const lost = results.find((x) => x.status === 'rejected') as PromiseRejectedResult;
    assert.ok(isApiError(lost.reason) && lost.reason.code === 422, String(lost.reason));
    assert.match((lost.reason as Error).message, /overlaps .* already assigned to device d/);
  }
  const claims = ctx.list(ipAddressKind).map((o) => o.spec as IPAddressSpec).filter((s) => s.use === 'assignment');
  assert.equal(claims.length, 3);
});

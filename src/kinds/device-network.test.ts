import assert from 'node:assert/strict';
import { test } from 'node:test';
import { declareNetwork, portId, resolveNetwork, uuidV5, validateDeviceNetwork, type DeviceNetworkSpec } from './device-network.js';

const NICS = [{ name: 'eth0', mac: '0c:c4:7a:00:00:01' }, { name: 'eth1', mac: '0c:c4:7a:00:00:02' }];

test('the composite network type follows the declaration', () => {
  const cases: Array<[string, DeviceNetworkSpec | undefined, string]> = [
    ['nothing declared', undefined, 'layer3'],
    ['VLANs on the layer 3 bond', { ports: [{ name: 'bond0', vlans: ['da-1000'] }] }, 'hybrid-bonded'],
    ['eth1 out of the bond', { ports: [{ name: 'eth1', bonded: false }] }, 'hybrid'],
    ['bond in layer 2', { ports: [{ name: 'bond0', layer2: true }] }, 'layer2-bonded'],
    ['layer 2, both NICs alone', { ports: [{ name: 'bond0', layer2: true }, { name: 'eth0', bonded: false }, { name: 'eth1', bonded: false }] }, 'layer2-individual'],
  ];
  for (const [what, net, want] of cases) assert.equal(resolveNetwork(net, NICS).type, want, what);
});

test('declareNetwork lists only what differs from the default, and round-trips', () => {
  assert.deepEqual(declareNetwork(resolveNetwork(undefined, NICS)), {});
  const net: DeviceNetworkSpec = { ports: [{ name: 'bond0', layer2: true, vlans: ['da-1000'], nativeVlan: 'da-1000' }, { name: 'eth1', bonded: false, vlans: ['da-1001'] }] };
  assert.deepEqual(declareNetwork(resolveNetwork(net, NICS)), net);
  // A bonded NIC carries nothing of its own: its VLANs are the bond's.
  const r = resolveNetwork({ ports: [{ name: 'eth1', vlans: ['x'] }] }, NICS);
  assert.deepEqual(r.nics[1]!.vlans, []);
});

test('validateDeviceNetwork names the field and what would be right', () => {
  const cases: Array<[string, DeviceNetworkSpec, RegExp | undefined]> = [
    ['fine', { ports: [{ name: 'eth1', bonded: false, vlans: ['a'], nativeVlan: 'a' }] }, undefined],
    ['bonded on bond0', { ports: [{ name: 'bond0', bonded: false }] }, /ports\[0\]\.bonded/],
    ['layer2 on a NIC', { ports: [{ name: 'eth1', layer2: true }] }, /ports\[0\]\.layer2/],
    ['VLANs on a bonded NIC', { ports: [{ name: 'eth1', vlans: ['a'] }] }, /put the VLANs on bond0/],
    ['native not carried', { ports: [{ name: 'bond0', vlans: ['a'], nativeVlan: 'b' }] }, /nativeVlan/],
  ];
  for (const [what, net, want] of cases) {
    const causes = validateDeviceNetwork(net);
    if (!want) assert.deepEqual(causes, [], what);
    else assert.match(causes.map((c) => `${c.field}: ${c.message}`).join('; '), want, what);
  }
});

test('port ids are RFC 4122 v5 UUIDs, stable per machine and port, distinct otherwise', () => {
  // The RFC 4122 appendix example: the DNS namespace and "www.example.com".
  assert.equal(uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8'), '2ed6657d-e927-568b-95e1-2665a8aea6a2');
  const id = portId('8f0c6c3e-0000-4000-8000-000000000001', 'bond0');
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(portId('8f0c6c3e-0000-4000-8000-000000000001', 'bond0'), id);
  assert.notEqual(portId('8f0c6c3e-0000-4000-8000-000000000001', 'eth0'), id);
  assert.notEqual(portId('8f0c6c3e-0000-4000-8000-000000000002', 'bond0'), id);
});

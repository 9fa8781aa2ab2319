import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SwitchError } from '../drivers/switch/types.js';
import { SimSwitchFabric, type SimCable } from './switch.js';

const CABLES: SimCable[] = [
  { machine: 'm1', nic: 'eth0', mac: '02:00:00:00:01:00', switch: 'da11-r01-tor', port: 'Ethernet1' },
  { machine: 'm1', nic: 'eth1', mac: '02:00:00:00:01:01', switch: 'da11-r01-tor', port: 'Ethernet2' },
  { machine: 'm2', nic: 'eth0', mac: '02:00:00:00:02:00', switch: 'da11-r01-tor', port: 'Ethernet5' },
];

test('the fabric records ports by MAC, keeps two projects\' VLAN 1000 apart, counts only real changes', async () => {
  const f = new SimSwitchFabric(() => CABLES);
  const l3 = (nic: string, mac: string) => ({ nic, mac, mode: 'layer3' as const, lag: 'm1-bond0', vlans: [] });
  await f.configureMachine({ machine: 'm1', ports: [l3('eth0', '02:00:00:00:01:00'), l3('eth1', '02:00:00:00:01:01')], bgp: [] });
  assert.ok(f.machine('m1').ports.every((p) => p.changes === 0), 'the factory default is no change');
  const refs = await f.configureMachine({
    machine: 'm1',
    ports: [
      { nic: 'eth0', mac: '02:00:00:00:01:00', mode: 'layer3', lag: 'm1-bond0', vlans: [] },
      { nic: 'eth1', mac: '02:00:00:00:01:01', mode: 'layer2', vlans: [{ vid: 1000, network: 'project-a-vlan' }], native: 1000 },
    ],
    bgp: [{ family: 4, address: '10.0.0.2', remoteAs: 65000, defaultRoute: false }],
  });
  assert.deepEqual(refs, [{ nic: 'eth0', switch: 'da11-r01-tor', port: 'Ethernet1' }, { nic: 'eth1', switch: 'da11-r01-tor', port: 'Ethernet2' }]);
  await f.configureMachine({ machine: 'm2', ports: [{ nic: 'eth0', mac: '02:00:00:00:02:00', mode: 'layer2', vlans: [{ vid: 1000, network: 'project-b-vlan' }] }], bgp: [] });
  const m1 = f.machine('m1');
  const eth1 = m1.ports.find((p) => p.nic === 'eth1')!;
  assert.equal(eth1.mode, 'layer2');
  assert.equal(eth1.changes, 1);
  assert.equal(eth1.native, 1000);
  assert.notEqual(eth1.vlans[0]!.vni, f.machine('m2').ports[0]!.vlans[0]!.vni);
  assert.equal(m1.bgpPeers.length, 1);
  // Told the same again: no change, the peer not doubled; told no peers: gone.
  await f.configureMachine({ machine: 'm1', ports: [l3('eth0', '02:00:00:00:01:00'), { nic: 'eth1', mac: '02:00:00:00:01:01', mode: 'layer2', vlans: [{ vid: 1000, network: 'project-a-vlan' }], native: 1000 }], bgp: [] });
  assert.equal(f.machine('m1').ports.find((p) => p.nic === 'eth1')!.changes, 1);
  assert.equal(f.machine('m1').bgpPeers.length, 0);
});

test('a NIC the fabric has no port for is refused and changes nothing', async () => {
  const f = new SimSwitchFabric(() => CABLES);
  await assert.rejects(
    f.configureMachine({ machine: 'm1', ports: [{ nic: 'eth0', mac: '02:00:00:00:01:00', mode: 'layer2', vlans: [] }, { nic: 'eth9', mac: '02:00:00:00:09:09', mode: 'layer2', vlans: [] }], bgp: [] }),
    (e: unknown) => e instanceof SwitchError && e.kind === 'not-found' && /02:00:00:00:09:09/.test(e.message),
  );
  assert.equal(f.machine('m1').ports.find((p) => p.nic === 'eth0')!.mode, 'layer3');
});

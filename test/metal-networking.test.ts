// Layer 2 and BGP through the Metal API, on devices that really provisioned on the simulated datacenter: VLANs
// per project and metro, a device's ports (bond0 and its NICs) converted to layer 2 and back, VLANs assigned
// singly and in batches — and what the simulated switches were told, read from the sim's operator view. Then BGP:
// the config (200 also before it is enabled), sessions with the "already has session" 422 that Cluster API's
// provider and the cloud controller manager match, neighbors. Every call is checked against the spec; isolation
// between two projects' keys and a table of invalid requests close it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, startTestServer, waitFor, type TestServer } from './helpers/server.js';
import { metal } from './helpers/metal.js';
import { portId } from '../src/kinds/device-network.js';
import { networkPortsJson } from '../src/metal-api/networking.js';

type Obj = { metadata: { name: string; uid: string; namespace?: string; generation?: number }; spec: any; status?: any };

interface Tenant {
  id: string;
  ns: string;
  key: string;
  readOnlyKey: string;
  device: Obj;
  hardware: Obj;
}

const KUBE = '/apis/metalplane.dev/v1alpha1';

async function kubeGet(s: TestServer, path: string): Promise<Obj> {
  const r = await api(s, 'GET', path);
  assert.equal(r.status, 200, `GET ${path}: ${r.text}`);
  return r.body as Obj;
}

interface SimPort {
  switch: string;
  port: string;
  nic: string;
  mode: string;
  lag?: string;
  vlans: Array<{ vid: number; vni: number }>;
  native?: number;
}

async function simNetwork(s: TestServer, machine: string): Promise<{ ports: SimPort[]; bgpPeers: Array<{ family: number; address: string; remoteAs: number; md5?: string }> }> {
  const r = await api(s, 'GET', `/sim/v1/machines/${machine}/network`);
  assert.equal(r.status, 200, r.text);
  return r.body;
}

describe('Metal API: VLANs, ports and BGP on the simulated datacenter', () => {
  let s: TestServer;
  let a: Tenant;
  let b: Tenant;
  let metro: string;

  async function tenant(name: string, hw: Obj): Promise<Tenant> {
    const p = await metal(s, 'POST', '/projects', { name });
    assert.equal(p.status, 201, p.text);
    const key = (await metal(s, 'POST', `/projects/${p.body.id}/api-keys`, { description: 'rw' })).body.token as string;
    const readOnlyKey = (await metal(s, 'POST', `/projects/${p.body.id}/api-keys`, { description: 'ro', read_only: true })).body.token as string;
    const nsList = (await api(s, 'GET', '/api/v1/namespaces')).body.items as Obj[];
    const ns = nsList.find((n) => n.metadata.uid === p.body.id)!.metadata.name;
    // The device is made through the kube API, as kubectl would; the Metal API sees the same object.
    const r = await api(s, 'POST', `${KUBE}/namespaces/${ns}/devices`, {
      apiVersion: 'metalplane.dev/v1alpha1',
      kind: 'Device',
      metadata: { name: 'node-1' },
      spec: { metro: hw.spec.metro, plan: hw.spec.plan, operatingSystem: 'ubuntu_24_04', hardwareReservation: hw.metadata.name },
    });
    assert.equal(r.status, 201, r.text);
    return { id: p.body.id, ns, key, readOnlyKey, device: r.body, hardware: hw };
  }

  async function activeDevice(t: Tenant): Promise<Obj> {
    return waitFor(`device in ${t.ns} active`, async () => {
      const d = await kubeGet(s, `${KUBE}/namespaces/${t.ns}/devices/node-1`);
      assert.notEqual(d.status?.state, 'failed', JSON.stringify(d.status));
      return d.status?.state === 'active' ? d : undefined;
    }, 60_000, 100);
  }

  const port = (t: Tenant, name: string): string => portId(t.hardware.metadata.uid, name);

  before(async () => {
    s = await startTestServer({ args: ['--sim', '--sim-machines', '4', '--sim-speed', 'max'] });
    const hw = await waitFor('4 machines available', async () => {
      const items = (await api(s, 'GET', `${KUBE}/hardware`)).body.items as Obj[];
      return items.length === 4 && items.every((h) => h.status?.state === 'available') ? items : undefined;
    }, 30_000);
    // Two machines of one metro, so that both projects' VLANs meet on the same fabric.
    const byMetro = new Map<string, Obj[]>();
    for (const h of hw) byMetro.set(h.spec.metro, [...(byMetro.get(h.spec.metro) ?? []), h]);
    const pair = [...byMetro.values()].find((l) => l.length >= 2) ?? hw;
    metro = pair[0]!.spec.metro;
    a = await tenant('net-a', pair[0]!);
    b = await tenant('net-b', pair[1]!);
    a.device = await activeDevice(a);
    b.device = await activeDevice(b);
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
  });

  test('VLANs: vxlan unique per project and metro, picked when not named, listed, filtered, found by id', async () => {
    const v = await metal(s, 'POST', `/projects/${a.id}/virtual-networks`, { metro, vxlan: 1000, description: 'backend' }, { token: a.key });
    assert.equal(v.status, 201, v.text);
    assert.equal(v.body.vxlan, 1000);
    assert.equal(v.body.metro_code, metro);
    assert.ok(v.body.metro.href.startsWith('/metal/v1/locations/metros/'));
    const dup = await metal(s, 'POST', `/projects/${a.id}/virtual-networks`, { metro, vxlan: 1000 }, { token: a.key });
    assert.equal(dup.status, 422);
    assert.match(dup.body.errors.join(' '), /vxlan: 1000 is already/);
    // Another project may use the same vxlan in the same metro: the switch keeps them apart.
    const other = await metal(s, 'POST', `/projects/${b.id}/virtual-networks`, { metro, vxlan: 1000 }, { token: b.key });
    assert.equal(other.status, 201, other.text);
    const auto = await metal(s, 'POST', `/projects/${a.id}/virtual-networks`, { metro }, { token: a.key });
    assert.equal(auto.status, 201, auto.text);
    assert.equal(auto.body.vxlan, 1001, 'the next free id from 1000');
    const list = await metal(s, 'GET', `/projects/${a.id}/virtual-networks?metro=${metro}`, undefined, { token: a.key });
    assert.deepEqual(list.body.virtual_networks.map((x: { vxlan: number }) => x.vxlan), [1000, 1001]);
    const none = await metal(s, 'GET', `/projects/${a.id}/virtual-networks?metro=${metro === 'da' ? 'ny' : 'da'}`, undefined, { token: a.key });
    assert.deepEqual(none.body.virtual_networks, []);
    const got = await metal(s, 'GET', `/virtual-networks/${v.body.id}`, undefined, { token: a.key });
    assert.equal(got.body.id, v.body.id);
    const del = await metal(s, 'DELETE', `/virtual-networks/${auto.body.id}`, undefined, { token: a.key });
    assert.equal(del.status, 200);
    assert.equal((await metal(s, 'GET', `/virtual-networks/${auto.body.id}`, undefined, { token: a.key })).status, 404);
  });

  test('ports: bond0 and the NICs, the same as the device JSON renders them; layer 2 and back, told to the switch', async () => {
    const bond = port(a, 'bond0');
    const eth0 = port(a, 'eth0');
    const p = await metal(s, 'GET', `/ports/${bond}`, undefined, { token: a.key });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.body.type, 'NetworkBondPort');
    assert.equal(p.body.network_type, 'layer3');
    const rendered = networkPortsJson(a.device as never, a.hardware as never);
    assert.deepEqual(rendered.map((x) => x.id), [bond, eth0, port(a, 'eth1')]);
    assert.deepEqual(rendered[0], p.body, 'the Device JSON\'s network_ports and /ports/{id} agree');

    const vlans = (await metal(s, 'GET', `/projects/${a.id}/virtual-networks`, undefined, { token: a.key })).body.virtual_networks;
    const v1000 = vlans.find((x: { vxlan: number }) => x.vxlan === 1000);
    const onNic = await metal(s, 'POST', `/ports/${eth0}/assign`, { vnid: '1000' }, { token: a.key });
    assert.equal(onNic.status, 422);
    assert.match(onNic.body.errors[0], /bonded into bond0/);

    const l2 = await metal(s, 'POST', `/ports/${bond}/convert/layer-2`, {}, { token: a.key });
    assert.equal(l2.status, 200, l2.text);
    assert.equal(l2.body.network_type, 'layer2-bonded');
    const assigned = await metal(s, 'POST', `/ports/${bond}/assign`, { vnid: v1000.id }, { token: a.key });
    assert.equal(assigned.status, 200, assigned.text);
    assert.deepEqual(assigned.body.virtual_networks, [{ href: `/metal/v1/virtual-networks/${v1000.id}` }]);
    const again = await metal(s, 'POST', `/ports/${bond}/assign`, { vnid: '1000' }, { token: a.key });
    assert.equal(again.status, 422);
    const native = await metal(s, 'POST', `/ports/${bond}/native-vlan?vnid=1000`, undefined, { token: a.key });
    assert.equal(native.status, 200, native.text);
    assert.equal(native.body.native_virtual_network.vxlan, 1000);
    const va = await metal(s, 'GET', `/ports/${bond}/vlan-assignments`, undefined, { token: a.key });
    assert.equal(va.body.vlan_assignments.length, 1);
    assert.equal(va.body.vlan_assignments[0].native, true);
    const one = await metal(s, 'GET', `/ports/${bond}/vlan-assignments/${va.body.vlan_assignments[0].id}`, undefined, { token: a.key });
    assert.equal(one.body.vlan, 1000);

    // The switch was told: both NICs layer 2 in the LAG, carrying VLAN 1000 untagged.
    const hw = a.hardware.metadata.name;
    const sw = await waitFor('the switch carries VLAN 1000', async () => {
      const n = await simNetwork(s, hw);
      return n.ports.length === 2 && n.ports.every((x) => x.mode === 'layer2' && x.vlans.some((v) => v.vid === 1000) && x.native === 1000) ? n : undefined;
    });
    assert.ok(sw.ports.every((x) => x.lag === `${hw}-bond0`));
    const dev = await waitFor('Device status.network synced', async () => {
      const d = await kubeGet(s, `${KUBE}/namespaces/${a.ns}/devices/node-1`);
      return d.status?.network?.synced === true && d.status.network.observedGeneration === d.metadata.generation ? d : undefined;
    });
    assert.equal(dev.status.network.switchPorts.length, 2);
    assert.deepEqual(dev.spec.network.ports, [{ name: 'bond0', layer2: true, vlans: [`${metro}-1000`], nativeVlan: `${metro}-1000` }]);
    // Project B's VLAN 1000 is a different network on the same fabric.
    const vniA = sw.ports[0]!.vlans[0]!.vni;
    const bl2 = await metal(s, 'POST', `/ports/${port(b, 'bond0')}/convert/layer-2`, { vnid: '1000' }, { token: b.key });
    assert.equal(bl2.status, 200, bl2.text);
    const swB = await waitFor('the switch carries B\'s VLAN 1000', async () => {
      const n = await simNetwork(s, b.hardware.metadata.name);
      return n.ports.every((x) => x.vlans.length === 1) ? n : undefined;
    });
    assert.notEqual(swB.ports[0]!.vlans[0]!.vni, vniA, 'two projects\' VLAN 1000 are two VNIs');

    const delUsed = await metal(s, 'DELETE', `/virtual-networks/${v1000.id}`, undefined, { token: a.key });
    assert.equal(delUsed.status, 422);
    const l3Refused = await metal(s, 'POST', `/ports/${bond}/convert/layer-3`, {}, { token: a.key });
    assert.equal(l3Refused.status, 422);
    assert.match(l3Refused.body.errors[0], /unassign them first/);
    assert.equal((await metal(s, 'DELETE', `/ports/${bond}/native-vlan`, undefined, { token: a.key })).body.native_virtual_network, undefined);
    assert.equal((await metal(s, 'POST', `/ports/${bond}/unassign`, { vnid: '1000' }, { token: a.key })).status, 200);
    const l3 = await metal(s, 'POST', `/ports/${bond}/convert/layer-3`, { request_ips: [{ address_family: 4, public: true }] }, { token: a.key });
    assert.equal(l3.status, 200, l3.text);
    assert.equal(l3.body.network_type, 'layer3');
    await waitFor('the switch routes the bond again', async () => {
      const n = await simNetwork(s, hw);
      return n.ports.every((x) => x.mode === 'layer3' && x.vlans.length === 0) ? true : undefined;
    });
  });

  test('hybrid: eth1 out of the bond carries VLANs from a batch; the batch completes once the switch has it', async () => {
    const eth0 = port(a, 'eth0');
    const eth1 = port(a, 'eth1');
    const refused = await metal(s, 'POST', `/ports/${eth0}/disbond`, undefined, { token: a.key });
    assert.equal(refused.status, 422, 'eth0 carries the layer 3 addresses');
    const d = await metal(s, 'POST', `/ports/${eth1}/disbond`, undefined, { token: a.key });
    assert.equal(d.status, 200, d.text);
    assert.equal(d.body.network_type, 'hybrid');
    assert.equal(d.body.data.bonded, false);
    const batch = await metal(s, 'POST', `/ports/${eth1}/vlan-assignments/batches`, { vlan_assignments: [{ vlan: '1000', state: 'assigned', native: true }] }, { token: a.key });
    assert.equal(batch.status, 201, batch.text);
    assert.equal(batch.body.quantity, 1);
    const done = await waitFor('batch completed', async () => {
      const r = await metal(s, 'GET', `/ports/${eth1}/vlan-assignments/batches/${batch.body.id}`, undefined, { token: a.key });
      assert.notEqual(r.body.state, 'failed', JSON.stringify(r.body.error_messages));
      return r.body.state === 'completed' ? r.body : undefined;
    });
    assert.deepEqual(done.port.virtual_networks.length, 1);
    const list = await metal(s, 'GET', `/ports/${eth1}/vlan-assignments/batches`, undefined, { token: a.key });
    assert.deepEqual(list.body.batches.map((x: { id: string }) => x.id), [batch.body.id]);
    const n = await simNetwork(s, a.hardware.metadata.name);
    const byNic = new Map(n.ports.map((x) => [x.nic, x]));
    assert.equal(byNic.get('eth0')!.mode, 'layer3');
    assert.equal(byNic.get('eth1')!.mode, 'layer2');
    assert.equal(byNic.get('eth1')!.lag, undefined);
    assert.deepEqual(byNic.get('eth1')!.vlans.map((v) => v.vid), [1000]);

    const rebondRefused = await metal(s, 'POST', `/ports/${eth1}/bond`, undefined, { token: a.key });
    assert.equal(rebondRefused.status, 422);
    const undo = await metal(s, 'POST', `/ports/${eth1}/vlan-assignments/batches`, { vlan_assignments: [{ vlan: '1000', state: 'unassigned' }] }, { token: a.key });
    assert.equal(undo.status, 201, undo.text);
    const rebond = await metal(s, 'POST', `/ports/${eth1}/bond`, undefined, { token: a.key });
    assert.equal(rebond.status, 200, rebond.text);
    assert.equal(rebond.body.network_type, 'layer3');
  });

  test('BGP: config 200 before and after enabling, sessions with "already has session", neighbors, the switch peers', async () => {
    const before = await metal(s, 'GET', `/projects/${a.id}/bgp-config`, undefined, { token: a.key });
    assert.equal(before.status, 200);
    assert.deepEqual(before.body, {});
    const dev = `/devices/${a.device.metadata.uid}`;
    const early = await metal(s, 'POST', `${dev}/bgp/sessions`, { address_family: 'ipv4' }, { token: a.key });
    assert.equal(early.status, 422);
    assert.match(early.body.errors[0], /not enabled/);

    const en = await metal(s, 'POST', `/projects/${a.id}/bgp-configs`, { deployment_type: 'local', asn: 65000, md5: 'Secret12345' }, { token: a.key });
    assert.equal(en.status, 204, en.text);
    const cfg = await metal(s, 'GET', `/projects/${a.id}/bgp-config`, undefined, { token: a.key });
    assert.equal(cfg.body.status, 'enabled');
    assert.equal(cfg.body.asn, 65000);
    assert.equal(cfg.body.deployment_type, 'local');

    const sess = await metal(s, 'POST', `${dev}/bgp/sessions`, { address_family: 'ipv4', default_route: false }, { token: a.key });
    assert.equal(sess.status, 201, sess.text);
    assert.equal(sess.body.address_family, 'ipv4');
    const second = await metal(s, 'POST', `${dev}/bgp/sessions`, { address_family: 'ipv4' }, { token: a.key });
    assert.equal(second.status, 422);
    assert.match(second.body.errors.join(' '), /already has session/);

    assert.deepEqual((await metal(s, 'GET', `${dev}/bgp/sessions`, undefined, { token: a.key })).body.bgp_sessions.map((x: { id: string }) => x.id), [sess.body.id]);
    assert.deepEqual((await metal(s, 'GET', `/projects/${a.id}/bgp/sessions`, undefined, { token: a.key })).body.bgp_sessions.map((x: { id: string }) => x.id), [sess.body.id]);
    const put = await metal(s, 'PUT', `/bgp/sessions/${sess.body.id}`, 'true', { token: a.key, headers: { 'content-type': 'application/json' } });
    assert.equal(put.status, 200, put.text);
    assert.equal((await metal(s, 'GET', `/bgp/sessions/${sess.body.id}`, undefined, { token: a.key })).body.default_route, true);

    const private4 = a.device.status.ipAddresses.find((i: { family: number; public: boolean }) => i.family === 4 && !i.public);
    const nb = await metal(s, 'GET', `${dev}/bgp/neighbors`, undefined, { token: a.key });
    assert.equal(nb.status, 200);
    const n = nb.body.bgp_neighbors[0];
    assert.equal(n.address_family, 4);
    assert.equal(n.peer_as, 65530);
    assert.deepEqual(n.peer_ips, ['169.254.255.1', '169.254.255.2']);
    assert.equal(n.customer_as, 65000);
    assert.equal(n.customer_ip, private4.address);
    assert.equal(n.md5_enabled, true);
    assert.deepEqual(n.routes_out, [{ route: '0.0.0.0/0', exact: true }]);

    const peers = await waitFor('the switch accepts the device as a BGP peer', async () => {
      const net = await simNetwork(s, a.hardware.metadata.name);
      return net.bgpPeers.length === 1 ? net.bgpPeers : undefined;
    });
    assert.deepEqual({ ...peers[0], machine: undefined }, { family: 4, address: private4.address, remoteAs: 65000, md5: 'Secret12345', defaultRoute: true, machine: undefined });

    assert.equal((await metal(s, 'DELETE', `/bgp/sessions/${sess.body.id}`, undefined, { token: a.key })).status, 204);
    assert.equal((await metal(s, 'GET', `/bgp/sessions/${sess.body.id}`, undefined, { token: a.key })).status, 404);
    await waitFor('the switch drops the peer', async () => ((await simNetwork(s, a.hardware.metadata.name)).bgpPeers.length === 0 ? true : undefined));
  });

  test('isolation: a project key reaches none of the other project\'s VLANs, ports, batches or sessions; read-only keys never write', async () => {
    // B enables BGP and opens a session, so there is something of B's to reach for.
    assert.equal((await metal(s, 'POST', `/projects/${b.id}/bgp-configs`, { deployment_type: 'local', asn: 65001 }, { token: b.key })).status, 204);
    const bs = await metal(s, 'POST', `/devices/${b.device.metadata.uid}/bgp/sessions`, { address_family: 'ipv4' }, { token: b.key });
    assert.equal(bs.status, 201, bs.text);
    const bVlan = (await metal(s, 'GET', `/projects/${b.id}/virtual-networks`, undefined, { token: b.key })).body.virtual_networks[0];
    const bBond = port(b, 'bond0');
    const calls: Array<[string, string, unknown?]> = [
      ['GET', `/projects/${b.id}/virtual-networks`],
      ['POST', `/projects/${b.id}/virtual-networks`, { metro }],
      ['GET', `/virtual-networks/${bVlan.id}`],
      ['DELETE', `/virtual-networks/${bVlan.id}`],
      ['GET', `/ports/${bBond}`],
      ['POST', `/ports/${bBond}/assign`, { vnid: '1000' }],
      ['POST', `/ports/${bBond}/unassign`, { vnid: '1000' }],
      ['POST', `/ports/${bBond}/bond`],
      ['POST', `/ports/${bBond}/disbond`],
      ['POST', `/ports/${bBond}/convert/layer-2`, {}],
      ['POST', `/ports/${bBond}/convert/layer-3`, {}],
      ['POST', `/ports/${bBond}/native-vlan?vnid=1000`],
      ['DELETE', `/ports/${bBond}/native-vlan`],
      ['GET', `/ports/${bBond}/vlan-assignments`],
      ['GET', `/ports/${bBond}/vlan-assignments/batches`],
      ['POST', `/ports/${bBond}/vlan-assignments/batches`, { vlan_assignments: [{ vlan: '1000' }] }],
      ['GET', `/projects/${b.id}/bgp-config`],
      ['POST', `/projects/${b.id}/bgp-configs`, { deployment_type: 'local', asn: 65002 }],
      ['GET', `/projects/${b.id}/bgp/sessions`],
      ['GET', `/devices/${b.device.metadata.uid}/bgp/sessions`],
      ['POST', `/devices/${b.device.metadata.uid}/bgp/sessions`, { address_family: 'ipv6' }],
      ['GET', `/devices/${b.device.metadata.uid}/bgp/neighbors`],
      ['GET', `/bgp/sessions/${bs.body.id}`],
      ['DELETE', `/bgp/sessions/${bs.body.id}`],
    ];
    for (const [method, path, body] of calls) {
      const r = await metal(s, method, path, body, { token: a.key });
      assert.equal(r.status, 404, `${method} ${path} with A's key: ${r.text}`);
    }
    // B's things are untouched.
    assert.equal((await metal(s, 'GET', `/bgp/sessions/${bs.body.id}`, undefined, { token: b.key })).status, 200);
    assert.equal((await metal(s, 'GET', `/ports/${bBond}`, undefined, { token: b.key })).body.network_type, 'layer2-bonded');
    // A's lists show only A's.
    const aSessions = (await metal(s, 'GET', `/projects/${a.id}/bgp/sessions`, undefined, { token: a.key })).body.bgp_sessions;
    assert.ok(!aSessions.some((x: { id: string }) => x.id === bs.body.id));

    // A's read-only key reads, and every write is a 403.
    const ro = { token: a.readOnlyKey };
    const aBond = port(a, 'bond0');
    assert.equal((await metal(s, 'GET', `/ports/${aBond}`, undefined, ro)).status, 200);
    assert.equal((await metal(s, 'GET', `/projects/${a.id}/bgp-config`, undefined, ro)).status, 200);
    const writes: Array<[string, string, unknown?]> = [
      ['POST', `/projects/${a.id}/virtual-networks`, { metro }],
      ['POST', `/ports/${aBond}/convert/layer-2`, {}],
      ['POST', `/ports/${aBond}/disbond`],
      ['POST', `/ports/${aBond}/vlan-assignments/batches`, { vlan_assignments: [{ vlan: '1000' }] }],
      ['POST', `/projects/${a.id}/bgp-configs`, { deployment_type: 'local', asn: 65003 }],
      ['POST', `/devices/${a.device.metadata.uid}/bgp/sessions`, { address_family: 'ipv4' }],
    ];
    for (const [method, path, body] of writes) {
      const r = await metal(s, method, path, body, ro);
      assert.equal(r.status, 403, `${method} ${path} read-only: ${r.text}`);
    }
  });

  test('invalid requests answer 4xx {errors} saying what is wrong', async () => {
    const bond = port(a, 'bond0');
    const unknown = '00000000-0000-4000-8000-000000000000';
    const cases: Array<{ what: string; method: string; path: string; body?: unknown; status: number; match?: RegExp }> = [
      { what: 'vxlan too low', method: 'POST', path: `/projects/${a.id}/virtual-networks`, body: { metro, vxlan: 1 }, status: 422, match: /vxlan/ },
      { what: 'vxlan too high', method: 'POST', path: `/projects/${a.id}/virtual-networks`, body: { metro, vxlan: 4000 }, status: 422, match: /vxlan/ },
      { what: 'vxlan not a number', method: 'POST', path: `/projects/${a.id}/virtual-networks`, body: { metro, vxlan: 'ten' }, status: 422, match: /vxlan/ },
      { what: 'duplicate vxlan', method: 'POST', path: `/projects/${a.id}/virtual-networks`, body: { metro, vxlan: 1000 }, status: 422, match: /already/ },
      { what: 'unknown metro, the known ones named', method: 'POST', path: `/projects/${a.id}/virtual-networks`, body: { metro: 'zz', vxlan: 1200 }, status: 422, match: new RegExp(`known metros: .*${metro}`) },
      { what: 'no metro', method: 'POST', path: `/projects/${a.id}/virtual-networks`, body: { vxlan: 1200 }, status: 422, match: /metro is required/ },
      { what: 'body not JSON', method: 'POST', path: `/projects/${a.id}/virtual-networks`, body: '{"metro":', status: 400 },
      { what: 'unknown project', method: 'GET', path: `/projects/${unknown}/virtual-networks`, status: 404 },
      { what: 'unknown VLAN', method: 'GET', path: `/virtual-networks/${unknown}`, status: 404 },
      { what: 'unknown port', method: 'GET', path: `/ports/${unknown}`, status: 404 },
      { what: 'port id not a UUID', method: 'GET', path: '/ports/not-a-uuid', status: 404 },
      { what: 'unknown VLAN to assign', method: 'POST', path: `/ports/${bond}/assign`, body: { vnid: '3999' }, status: 422, match: /not a virtual network/ },
      { what: 'assign without vnid', method: 'POST', path: `/ports/${bond}/assign`, body: {}, status: 422, match: /vnid is required/ },
      { what: 'native VLAN not assigned', method: 'POST', path: `/ports/${bond}/native-vlan?vnid=1000`, status: 422, match: /assign it first/ },
      { what: 'unassign what is not assigned', method: 'POST', path: `/ports/${bond}/unassign`, body: { vnid: '1000' }, status: 422, match: /not assigned/ },
      { what: 'empty batch', method: 'POST', path: `/ports/${bond}/vlan-assignments/batches`, body: { vlan_assignments: [] }, status: 422 },
      { what: 'batch state not in the enum', method: 'POST', path: `/ports/${bond}/vlan-assignments/batches`, body: { vlan_assignments: [{ vlan: '1000', state: 'maybe' }] }, status: 422 },
      { what: 'unknown batch', method: 'GET', path: `/ports/${bond}/vlan-assignments/batches/${unknown}`, status: 404 },
      { what: 'ASN out of range', method: 'POST', path: `/projects/${a.id}/bgp-configs`, body: { deployment_type: 'local', asn: 5_000_000_000 }, status: 422, match: /asn/ },
      { what: 'ASN that is the peer\'s', method: 'POST', path: `/projects/${a.id}/bgp-configs`, body: { deployment_type: 'local', asn: 65530 }, status: 422, match: /asn: 65530/ },
      { what: 'ASN missing', method: 'POST', path: `/projects/${a.id}/bgp-configs`, body: { deployment_type: 'local' }, status: 422, match: /asn is required/ },
      { what: 'deployment type not in the enum', method: 'POST', path: `/projects/${a.id}/bgp-configs`, body: { deployment_type: 'regional', asn: 65000 }, status: 422, match: /deployment_type/ },
      { what: 'weak MD5', method: 'POST', path: `/projects/${a.id}/bgp-configs`, body: { deployment_type: 'local', asn: 65000, md5: 'short' }, status: 422, match: /md5/ },
      { what: 'address family not in the enum', method: 'POST', path: `/devices/${a.device.metadata.uid}/bgp/sessions`, body: { address_family: 'ipv5' }, status: 422, match: /address_family/ },
      { what: 'no address family', method: 'POST', path: `/devices/${a.device.metadata.uid}/bgp/sessions`, body: {}, status: 422, match: /address_family is required/ },
      { what: 'unknown device', method: 'GET', path: `/devices/${unknown}/bgp/neighbors`, status: 404 },
      { what: 'unknown session', method: 'GET', path: `/bgp/sessions/${unknown}`, status: 404 },
      { what: 'update of an unknown session', method: 'PUT', path: `/bgp/sessions/${unknown}`, body: 'true', status: 404 },
    ];
    for (const c of cases) {
      const r = await metal(s, c.method, c.path, c.body, { token: a.key, headers: typeof c.body === 'string' ? { 'content-type': 'application/json' } : {} });
      assert.equal(r.status, c.status, `${c.what}: ${r.text}`);
      if (c.match) assert.match(r.body.errors.join(' '), c.match, c.what);
    }
    // A session update whose body is not a boolean, on a session that exists.
    await metal(s, 'POST', `/devices/${a.device.metadata.uid}/bgp/sessions`, { address_family: 'ipv4' }, { token: a.key });
    const sid = (await metal(s, 'GET', `/devices/${a.device.metadata.uid}/bgp/sessions`, undefined, { token: a.key })).body.bgp_sessions[0].id;
    const bad = await metal(s, 'PUT', `/bgp/sessions/${sid}`, { default_route: true }, { token: a.key });
    assert.equal(bad.status, 422);
    assert.match(bad.body.errors[0], /true or false/);
  });
});

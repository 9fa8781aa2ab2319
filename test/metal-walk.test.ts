// What an Equinix Metal SDK user does, in one walk through /metal/v1 on the simulated datacenter, every response
// checked against the spec: the catalog, a project, an SSH key, a device with user data polled to `active` (and
// seen through kubectl mid-way), its IPs and events, reboot, power off (`inactive`) and on, a reserved IP block
// assigned to it, a VLAN attached to its port, BGP enabled with a session, its usage — then deleted (404).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, waitFor, type TestServer } from './helpers/server.js';
import { kubectlJson, kubectlSkipReason } from './helpers/kubectl.js';
import { metal } from './helpers/metal.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0IGZvciB0ZXN0cyBvbmx5IC0ga2V5IHcgICAgICAgIA walker@laptop';

describe('Metal API: the SDK user walk', { skip: kubectlSkipReason() }, () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ args: ['--sim', '--sim-machines', '6', '--sim-speed', 'max'], timeoutMs: 60_000 });
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
  });

  const device = async (id: string): Promise<any> => (await metal(s, 'GET', `/devices/${id}`)).body;
  const untilState = (id: string, state: string, what: string): Promise<any> =>
    waitFor(what, async () => {
      const d = await device(id);
      return d.state === state ? d : undefined;
    }, 90_000, 200);

  test('catalog → project → key → device → actions → IPs → VLAN → BGP → usage → delete', async () => {
    // The catalog, as an SDK lists it before choosing.
    // A plan is available where it has free machines: once the simulated machines are discovered.
    const small = await waitFor('c3.small.x86 available somewhere', async () => {
      const plans = await metal(s, 'GET', '/plans');
      const p = plans.body.plans.find((x: { slug: string }) => x.slug === 'c3.small.x86');
      return p?.available_in_metros?.length ? p : undefined;
    }, 60_000, 200);
    assert.ok(small.available_in_metros.every((m: { href: string }) => m.href.startsWith('/metal/v1/locations/metros/')));
    const metros = await metal(s, 'GET', '/locations/metros');
    assert.ok(metros.body.metros.some((m: { code: string }) => m.code === 'da'));
    const oses = await metal(s, 'GET', '/operating-systems');
    assert.ok(oses.body.operating_systems.some((o: { slug: string }) => o.slug === 'ubuntu_24_04'));

    const project = (await metal(s, 'POST', '/projects', { name: 'Walk — prod' })).body;
    const key = await metal(s, 'POST', `/projects/${project.id}/ssh-keys`, { label: 'walker', key: KEY });
    assert.equal(key.status, 201);
    assert.match(key.body.fingerprint, /^SHA256:/);

    const created = await metal(s, 'POST', `/projects/${project.id}/devices`, {
      metro: 'da',
      plan: 'c3.small.x86',
      operating_system: 'ubuntu_24_04',
      hostname: 'walk-1',
      userdata: '#cloud-config\nruncmd:\n  - echo hello > /tmp/walk\n',
      tags: ['walk'],
    });
    assert.equal(created.status, 201, created.text);
    const id = created.body.id as string;
    assert.ok(['queued', 'provisioning'].includes(created.body.state), created.body.state);

    // Mid-way, kubectl sees the same device: its uid is the Metal id.
    const kube = await waitFor('kubectl sees the device', () => {
      const list = kubectlJson(s, ['get', 'devices', '-A', '-o', 'json']);
      return list.items.find((d: { metadata: { uid: string } }) => d.metadata.uid === id);
    });
    assert.equal(kube.spec.hostname, 'walk-1');
    assert.equal((await metal(s, 'GET', `/devices/${id}/userdata`)).body.userdata, kube.spec.userData);

    const active = await untilState(id, 'active', 'the device active');
    assert.ok(active.ip_addresses.length >= 2, 'public and private addresses');
    const ips = await metal(s, 'GET', `/devices/${id}/ips`);
    assert.ok(ips.body.ip_addresses.some((a: { public: boolean; address_family: number }) => a.public && a.address_family === 4));
    const events = await metal(s, 'GET', `/devices/${id}/events`);
    assert.ok(events.body.events.length > 0);

    // Actions: reboot, then power off (inactive) and on (active).
    assert.equal((await metal(s, 'POST', `/devices/${id}/actions`, { type: 'reboot' })).status, 202);
    await waitFor('the reboot recorded', async () => ((await metal(s, 'GET', `/devices/${id}/events?per_page=100`)).body.events.some((e: { type: string }) => e.type === 'instance.action-succeeded') ? true : undefined), 60_000, 200);
    assert.equal((await metal(s, 'POST', `/devices/${id}/actions`, { type: 'power_off' })).status, 202);
    await untilState(id, 'inactive', 'powered off: inactive');
    assert.equal((await metal(s, 'POST', `/devices/${id}/actions`, { type: 'power_on' })).status, 202);
    await untilState(id, 'active', 'powered on again');

    // A reserved block, one of its addresses assigned to the device.
    const block = await metal(s, 'POST', `/projects/${project.id}/ips`, { type: 'public_ipv4', metro: 'da', quantity: 4 });
    assert.equal(block.status, 201, block.text);
    const assigned = await metal(s, 'POST', `/devices/${id}/ips`, { address: `${block.body.address ?? block.body.network}/32` });
    assert.equal(assigned.status, 201, assigned.text);
    assert.equal(assigned.body.assigned_to.href, `/metal/v1/devices/${id}`);

    // A VLAN on the device's bond, in layer 2.
    const vlan = await metal(s, 'POST', `/projects/${project.id}/virtual-networks`, { metro: 'da', vxlan: 1234, description: 'walk' });
    assert.equal(vlan.status, 201, vlan.text);
    const bond = (await device(id)).network_ports.find((p: { name: string }) => p.name === 'bond0');
    assert.equal((await metal(s, 'POST', `/ports/${bond.id}/convert/layer-2`, {})).status, 200);
    const attached = await metal(s, 'POST', `/ports/${bond.id}/assign`, { vnid: vlan.body.id });
    assert.equal(attached.status, 200, attached.text);
    assert.ok(attached.body.virtual_networks.some((v: { href: string }) => v.href === `/metal/v1/virtual-networks/${vlan.body.id}`));

    // BGP: enabled for the project, one session for the device; a second of the same family is refused as the
    // original refused it (Cluster API's provider matches this text).
    assert.equal((await metal(s, 'POST', `/projects/${project.id}/bgp-configs`, { deployment_type: 'local', asn: 65000 })).status, 204);
    const session = await metal(s, 'POST', `/devices/${id}/bgp/sessions`, { address_family: 'ipv4' });
    assert.equal(session.status, 201, session.text);
    const again = await metal(s, 'POST', `/devices/${id}/bgp/sessions`, { address_family: 'ipv4' });
    assert.equal(again.status, 422);
    assert.match(again.body.errors.join(' '), /already has session/);

    // Usage: the running device is billed by the hour at its plan's price.
    const usage = await metal(s, 'GET', `/projects/${project.id}/usages`);
    const line = usage.body.usages.find((u: { name: string }) => u.name === 'walk-1');
    assert.ok(line, JSON.stringify(usage.body));
    assert.equal(line.unit, 'hour');

    // Delete: 204, then 404 once the machine is wiped.
    assert.equal((await metal(s, 'DELETE', `/devices/${id}`)).status, 204);
    await waitFor('the device gone', async () => ((await metal(s, 'GET', `/devices/${id}`)).status === 404 ? true : undefined), 90_000, 200);
  });
});

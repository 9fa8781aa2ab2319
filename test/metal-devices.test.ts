// Devices and SSH keys on the Metal API, end to end on the simulated datacenter, every response checked against
// the spec (test/helpers/metal.ts): what an SDK user does (a project, keys, a device with user data polled to
// active, its IPs and events, reboot, power off/on, delete), the same device through kubectl mid-way, isolation
// between projects (project keys, read-only keys), and a table of invalid requests that must be 4xx {errors}.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, startTestServer, waitFor, type TestServer } from './helpers/server.js';
import { kubectlJson, kubectlSkipReason } from './helpers/kubectl.js';
import { metal } from './helpers/metal.js';

const KEY_A = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0IGZvciB0ZXN0cyBvbmx5IC0ga2V5IGEgICAgICAgIA alice@laptop';
const KEY_B = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0IGZvciB0ZXN0cyBvbmx5IC0ga2V5IGIgICAgICAgIA bob@laptop';
const KEY_U = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0IGZvciB0ZXN0cyBvbmx5IC0ga2V5IHUgICAgICAgIA admin@home';
const NIL = '00000000-0000-4000-8000-000000000000';

/** What a generated SDK sends for a device create when the user sets only metro, plan, OS and hostname. */
function sdkDefaults(): Record<string, unknown> {
  return {
    always_pxe: false,
    billing_cycle: 'hourly',
    customdata: {},
    hardware_reservation_id: '',
    ip_addresses: [
      { address_family: 4, public: true },
      { address_family: 4, public: false },
      { address_family: 6, public: true },
    ],
    locked: false,
    no_ssh_keys: false,
    private_ipv4_subnet_size: 28,
    public_ipv4_subnet_size: 31,
    project_ssh_keys: [],
    user_ssh_keys: [],
    ssh_keys: [],
    tags: [],
    features: [],
    spot_instance: false,
  };
}

async function project(s: TestServer, name: string): Promise<string> {
  const r = await metal(s, 'POST', '/projects', { name });
  assert.equal(r.status, 201, r.text);
  return r.body.id;
}

async function waitState(s: TestServer, id: string, state: string, token?: string): Promise<any> {
  return waitFor(`device ${id} ${state}`, async () => {
    const r = await metal(s, 'GET', `/devices/${id}`, undefined, { token });
    assert.equal(r.status, 200, r.text);
    assert.notEqual(r.body.state, 'failed', `device failed: ${JSON.stringify(r.body)}`);
    return r.body.state === state ? r.body : undefined;
  }, 60_000, 150);
}

async function waitGone(s: TestServer, id: string): Promise<void> {
  await waitFor(`device ${id} gone`, async () => ((await metal(s, 'GET', `/devices/${id}`)).status === 404 ? true : undefined), 60_000, 150);
}

async function eventTypes(s: TestServer, id: string): Promise<string[]> {
  const r = await metal(s, 'GET', `/devices/${id}/events?per_page=100`);
  assert.equal(r.status, 200, r.text);
  return r.body.events.map((e: { type: string }) => e.type);
}

describe('Metal API: devices and SSH keys on the simulated datacenter', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ args: ['--sim', '--sim-machines', '16', '--sim-speed', 'max'] });
    await waitFor('16 machines available', async () => {
      const r = await api(s, 'GET', '/apis/metalplane.dev/v1alpha1/hardware');
      const items = (r.body?.items ?? []) as Array<{ status?: { state?: string } }>;
      return items.length === 16 && items.every((h) => h.status?.state === 'available') ? true : undefined;
    }, 60_000);
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
  });

  test('an SDK user: project, keys, a device with user data to active, IPs, events, reboot, power off and on, delete', async () => {
    const pid = await project(s, 'sdk walk');
    const pk = await metal(s, 'POST', `/projects/${pid}/ssh-keys`, { label: 'deploy', key: KEY_A });
    assert.equal(pk.status, 201, pk.text);
    assert.match(pk.body.fingerprint, /^SHA256:/);
    assert.equal(pk.body.entity.href, `/metal/v1/projects/${pid}`);
    const uk = await metal(s, 'POST', '/ssh-keys', { label: 'home', key: KEY_U });
    assert.equal(uk.status, 201, uk.text);
    assert.match(uk.body.entity.href, /^\/metal\/v1\/users\//);

    const userdata = '#cloud-config\nruncmd:\n  - echo hello\n';
    const created = await metal(s, 'POST', `/projects/${pid}/devices`, {
      ...sdkDefaults(),
      metro: 'da',
      plan: 'c3.small.x86',
      operating_system: 'ubuntu_24_04',
      hostname: 'web-1',
      userdata,
      customdata: { role: 'web' },
      tags: ['web', 'prod'],
      description: 'the web server',
    });
    assert.equal(created.status, 201, created.text);
    const id = created.body.id;
    assert.ok(['queued', 'provisioning'].includes(created.body.state), created.body.state);
    assert.equal(created.body.hostname, 'web-1');
    assert.equal(created.body.plan.slug, 'c3.small.x86');
    assert.equal(created.body.metro.code, 'da');
    assert.equal(created.body.operating_system.slug, 'ubuntu_24_04');
    assert.equal(created.body.project.id, pid);
    assert.ok(created.body.created_by.id);
    assert.deepEqual(created.body.tags, ['web', 'prod']);
    // The default keys: the project's and the organization members' (the admin's personal key).
    assert.deepEqual(created.body.ssh_keys.map((k: { href: string }) => k.href).sort(), [`/metal/v1/ssh-keys/${pk.body.id}`, `/metal/v1/ssh-keys/${uk.body.id}`].sort());

    // Mid-way, kubectl sees the same device: the id is its uid.
    const ns = (await api(s, 'GET', '/api/v1/namespaces')).body.items.find((n: { metadata: { uid: string } }) => n.metadata.uid === pid).metadata.name as string;
    if (!kubectlSkipReason()) {
      const list = kubectlJson(s, ['get', 'devices', '-n', ns]);
      const d = list.items.find((x: { metadata: { uid: string } }) => x.metadata.uid === id);
      assert.ok(d, 'kubectl get devices shows the device');
      assert.equal(d.spec.hostname, 'web-1');
      assert.equal(d.spec.userData, userdata);
      assert.deepEqual(d.spec.customData, { role: 'web' });
    }

    const active = await waitState(s, id, 'active');
    assert.ok(active.facility.code.startsWith('da'));
    const fams = active.ip_addresses.map((i: any) => `${i.address_family}/${i.public}`).sort();
    assert.deepEqual(fams, ['4/false', '4/true', '6/true']);
    for (const ip of active.ip_addresses) {
      assert.equal(ip.type, 'IPAssignment');
      assert.equal(ip.management, true);
      assert.ok(ip.gateway && ip.cidr && ip.parent_block?.network, JSON.stringify(ip));
      assert.equal(ip.assigned_to.href, `/metal/v1/devices/${id}`);
    }
    assert.ok(active.network_ports.length >= 2);
    assert.ok(active.network_ports.every((p: { network_type: string }) => p.network_type === 'layer3'));
    assert.ok(active.network_ports.some((p: { data: { mac?: string } }) => /^[0-9a-f:]{17}$/.test(p.data.mac ?? '')));

    const ips = await metal(s, 'GET', `/devices/${id}/ips`);
    assert.equal(ips.status, 200);
    assert.deepEqual(ips.body.ip_addresses.map((i: { address: string }) => i.address).sort(), active.ip_addresses.map((i: { address: string }) => i.address).sort());
    assert.deepEqual((await metal(s, 'GET', `/devices/${id}/userdata`)).body, { userdata });
    assert.deepEqual((await metal(s, 'GET', `/devices/${id}/customdata`)).body, { role: 'web' });
    const keys = await metal(s, 'GET', `/devices/${id}/ssh-keys`);
    assert.deepEqual(keys.body.ssh_keys.map((k: { key: string }) => k.key).sort(), [KEY_A, KEY_U].sort());
    // The machine read its metadata with both keys (the project's and the admin's personal one).
    const hwName = (await api(s, 'GET', `/apis/metalplane.dev/v1alpha1/namespaces/${ns}/devices/${active.hostname}`)).body.status.hardware as string;
    const machine = (await api(s, 'GET', `/sim/v1/machines/${hwName}`)).body as { datasource: string };
    const meta = await fetch(`${machine.datasource}meta-data`).then((r) => r.text());
    for (const k of [KEY_A, KEY_U]) assert.ok(meta.includes(k), `meta-data has ${k}:\n${meta}`);
    assert.equal(await fetch(`${machine.datasource}user-data`).then((r) => r.text()), userdata);
    const types = await eventTypes(s, id);
    assert.ok(types.includes('instance.scheduled') && types.includes('instance.provisioned'), types.join(', '));

    // Reboot: accepted, carried out (an event says so), still active.
    assert.equal((await metal(s, 'POST', `/devices/${id}/actions`, { type: 'reboot' })).status, 202);
    await waitFor('reboot done', async () => ((await eventTypes(s, id)).includes('instance.action-succeeded') ? true : undefined), 30_000, 150);
    await waitState(s, id, 'active');

    // Power off: inactive (a state of the spec's enum); then on again.
    assert.equal((await metal(s, 'POST', `/devices/${id}/actions`, { type: 'power_off' })).status, 202);
    await waitState(s, id, 'inactive');
    assert.equal((await metal(s, 'POST', `/devices/${id}/actions`, { type: 'power_off' })).status, 422, 'already off');
    assert.equal((await metal(s, 'POST', `/devices/${id}/actions`, { type: 'power_on' })).status, 202);
    await waitState(s, id, 'active');

    // Reinstall with another OS: the device is reinstalled and active with it.
    assert.equal((await metal(s, 'POST', `/devices/${id}/actions`, { type: 'reinstall', operating_system: 'ubuntu_22_04', deprovision_fast: true, preserve_data: false })).status, 202);
    await waitFor('reinstall done', async () => ((await eventTypes(s, id)).includes('instance.reinstalled') ? true : undefined), 60_000, 150);
    const reinstalled = await waitState(s, id, 'active');
    assert.equal(reinstalled.operating_system.slug, 'ubuntu_22_04');

    // Update: replaces what is sent, keeps the rest.
    const put = await metal(s, 'PUT', `/devices/${id}`, { hostname: 'web-01', tags: ['web'], customdata: { tier: 1 } });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.hostname, 'web-01');
    assert.deepEqual(put.body.tags, ['web']);
    assert.deepEqual(put.body.customdata, { tier: 1 });
    assert.equal(put.body.userdata, userdata);

    // Filters and search.
    const byTag = await metal(s, 'GET', `/projects/${pid}/devices?tag=web`);
    assert.deepEqual(byTag.body.devices.map((d: { id: string }) => d.id), [id]);
    assert.equal((await metal(s, 'GET', `/projects/${pid}/devices?tag=db`)).body.devices.length, 0);
    assert.equal((await metal(s, 'GET', `/projects/${pid}/devices?search=web-0`)).body.meta.total, 1);
    assert.equal((await metal(s, 'GET', `/projects/${pid}/devices?metro=ny`)).body.meta.total, 0);
    const withProject = await metal(s, 'GET', `/projects/${pid}/devices?include=project`);
    assert.equal(withProject.body.devices[0].project.name, 'sdk walk');

    // Delete: deprovisioning, then gone (404).
    assert.equal((await metal(s, 'DELETE', `/devices/${id}?force_delete=true`)).status, 204);
    await waitGone(s, id);
    assert.equal((await metal(s, 'GET', `/devices/${id}/events`)).status, 404);
  });

  test('batch create: every device of a valid batch; a batch with one bad device creates none', async () => {
    const pid = await project(s, 'batches');
    const bad = await metal(s, 'POST', `/projects/${pid}/devices/batch`, {
      batches: [
        { hostnames: ['b-1'], metro: 'da', plan: 'c3.small.x86', operating_system: 'ubuntu_24_04' },
        { hostnames: ['b-2'], metro: 'da', plan: 'c9.nope', operating_system: 'ubuntu_24_04' },
      ],
    });
    assert.equal(bad.status, 422, bad.text);
    assert.match(bad.body.errors.join(' '), /batches\[1\]\..*c3\.small\.x86/);
    assert.equal((await metal(s, 'GET', `/projects/${pid}/devices`)).body.meta.total, 0);
    const ok = await metal(s, 'POST', `/projects/${pid}/devices/batch`, { batches: [{ hostnames: ['b-1', 'b-2'], metro: 'da', plan: 'c3.small.x86', operating_system: 'ubuntu_24_04', no_ssh_keys: true }] });
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.body.batches[0].devices.length, 2);
    const listed = await metal(s, 'GET', `/projects/${pid}/devices`);
    assert.deepEqual(listed.body.devices.map((d: { hostname: string }) => d.hostname).sort(), ['b-1', 'b-2']);
    assert.ok(listed.body.devices.every((d: { ssh_keys: unknown[] }) => d.ssh_keys.length === 0), 'no_ssh_keys: no keys');
    for (const d of listed.body.devices) assert.equal((await metal(s, 'DELETE', `/devices/${d.id}`)).status, 204);
    for (const d of listed.body.devices) await waitGone(s, d.id);
  });

  test('project isolation: project keys reach their project only (lists included); read-only keys never write', async () => {
    const a = await project(s, 'iso a');
    const b = await project(s, 'iso b');
    const ka = (await metal(s, 'POST', `/projects/${a}/api-keys`, { description: 'a' })).body.token;
    const kaRo = (await metal(s, 'POST', `/projects/${a}/api-keys`, { description: 'a ro', read_only: true })).body.token;
    const keyA = (await metal(s, 'POST', `/projects/${a}/ssh-keys`, { label: 'a', key: KEY_A }, { token: ka })).body;
    assert.ok(keyA.id, 'a project key creates its project\'s keys');
    const keyB = (await metal(s, 'POST', `/projects/${b}/ssh-keys`, { label: 'b', key: KEY_B })).body;
    const userKey = (await metal(s, 'POST', '/ssh-keys', { label: 'mine', key: KEY_B })).body;
    const body = { metro: 'da', plan: 'c3.small.x86', operating_system: 'ubuntu_24_04', hostname: 'iso' };
    const devA = await metal(s, 'POST', `/projects/${a}/devices`, { ...body, project_ssh_keys: [keyA.id] }, { token: ka });
    assert.equal(devA.status, 201, devA.text);
    const devB = (await metal(s, 'POST', `/projects/${b}/devices`, body)).body;

    // Nothing of B through A's key: not found, as if it did not exist.
    const notFound: Array<[string, string, unknown?]> = [
      ['GET', `/devices/${devB.id}`],
      ['PUT', `/devices/${devB.id}`, { hostname: 'x' }],
      ['DELETE', `/devices/${devB.id}`],
      ['POST', `/devices/${devB.id}/actions`, { type: 'reboot' }],
      ['GET', `/devices/${devB.id}/ips`],
      ['GET', `/devices/${devB.id}/events`],
      ['GET', `/devices/${devB.id}/userdata`],
      ['GET', `/devices/${devB.id}/customdata`],
      ['GET', `/devices/${devB.id}/ssh-keys`],
      ['GET', `/projects/${b}/devices`],
      ['POST', `/projects/${b}/devices`, body],
      ['POST', `/projects/${b}/devices/batch`, { batches: [{ ...body, hostnames: ['x'] }] }],
      ['GET', `/projects/${b}/ssh-keys`],
      ['POST', `/projects/${b}/ssh-keys`, { key: KEY_A }],
      ['GET', `/ssh-keys/${keyB.id}`],
      ['PUT', `/ssh-keys/${keyB.id}`, { label: 'x' }],
      ['DELETE', `/ssh-keys/${keyB.id}`],
      ['GET', `/ssh-keys/${userKey.id}`],
    ];
    for (const [method, path, b2] of notFound) {
      const r = await metal(s, method, path, b2, { token: ka });
      assert.equal(r.status, 404, `${method} ${path}: ${r.text}`);
    }
    // Lists show A's only.
    const listA = await metal(s, 'GET', `/projects/${a}/devices`, undefined, { token: ka });
    assert.deepEqual(listA.body.devices.map((d: { id: string }) => d.id), [devA.body.id]);
    const keysA = await metal(s, 'GET', '/ssh-keys', undefined, { token: ka });
    assert.deepEqual(keysA.body.ssh_keys.map((k: { id: string }) => k.id), [keyA.id]);
    assert.equal((await metal(s, 'GET', `/projects/${a}/ssh-keys`, undefined, { token: ka })).body.ssh_keys.length, 1);
    // A key of B named on a device of A is not A's.
    const foreign = await metal(s, 'POST', `/projects/${a}/devices`, { ...body, project_ssh_keys: [keyB.id] }, { token: ka });
    assert.equal(foreign.status, 422);
    // User-level endpoints refuse project keys.
    assert.equal((await metal(s, 'POST', '/ssh-keys', { key: KEY_A }, { token: ka })).status, 403);
    const org = (await metal(s, 'GET', '/organizations')).body.organizations[0].id;
    assert.equal((await metal(s, 'GET', `/organizations/${org}/devices`, undefined, { token: ka })).status, 403);
    const orgDevices = await metal(s, 'GET', `/organizations/${org}/devices?per_page=100`);
    assert.ok([devA.body.id, devB.id].every((id) => orgDevices.body.devices.some((d: { id: string }) => d.id === id)));

    // Read-only: reads work, every write is a 403.
    assert.equal((await metal(s, 'GET', `/devices/${devA.body.id}`, undefined, { token: kaRo })).status, 200);
    const writes: Array<[string, string, unknown?]> = [
      ['POST', `/projects/${a}/devices`, body],
      ['POST', `/projects/${a}/devices/batch`, { batches: [{ ...body, hostnames: ['x'] }] }],
      ['PUT', `/devices/${devA.body.id}`, { hostname: 'x' }],
      ['DELETE', `/devices/${devA.body.id}`],
      ['POST', `/devices/${devA.body.id}/actions`, { type: 'reboot' }],
      ['POST', `/projects/${a}/ssh-keys`, { key: KEY_B }],
      ['PUT', `/ssh-keys/${keyA.id}`, { label: 'x' }],
      ['DELETE', `/ssh-keys/${keyA.id}`],
    ];
    for (const [method, path, b2] of writes) {
      const r = await metal(s, method, path, b2, { token: kaRo });
      assert.equal(r.status, 403, `${method} ${path}: ${r.text}`);
    }
    assert.equal((await metal(s, 'GET', `/devices/${devA.body.id}`)).body.hostname, 'iso', 'nothing changed');

    for (const id of [devA.body.id, devB.id]) assert.equal((await metal(s, 'DELETE', `/devices/${id}`)).status, 204);
    for (const id of [devA.body.id, devB.id]) await waitGone(s, id);
  });

  test('SSH keys: CRUD, fingerprint, validation, duplicates', async () => {
    const pid = await project(s, 'keys');
    const k = await metal(s, 'POST', `/projects/${pid}/ssh-keys`, { label: 'ci', key: KEY_A, tags: ['ci'] });
    assert.equal(k.status, 201, k.text);
    assert.deepEqual(k.body.tags, ['ci']);
    assert.equal((await metal(s, 'POST', `/projects/${pid}/ssh-keys`, { label: 'again', key: KEY_A })).status, 422, 'the same key twice');
    const got = await metal(s, 'GET', `/ssh-keys/${k.body.id}`);
    assert.equal(got.body.fingerprint, k.body.fingerprint);
    const put = await metal(s, 'PUT', `/ssh-keys/${k.body.id}`, { label: 'ci-2' });
    assert.equal(put.body.label, 'ci-2');
    assert.equal(put.body.key, KEY_A);
    const search = await metal(s, 'GET', `/projects/${pid}/ssh-keys?query=ci-2`);
    assert.equal(search.body.ssh_keys.length, 1);
    const bad = await metal(s, 'PUT', `/ssh-keys/${k.body.id}`, { key: 'ssh-rsa notbase64!!' });
    assert.equal(bad.status, 422);
    assert.match(bad.body.errors.join(' '), /^key: /);
    assert.equal((await metal(s, 'DELETE', `/ssh-keys/${k.body.id}`)).status, 204);
    assert.equal((await metal(s, 'GET', `/ssh-keys/${k.body.id}`)).status, 404);
  });

  test('invalid device and key requests are 4xx {errors} naming what is wrong', async () => {
    const pid = await project(s, 'invalid');
    const ok = { metro: 'da', plan: 'c3.small.x86', operating_system: 'ubuntu_24_04', hostname: 'v' };
    const creates: Array<[string, unknown, number, RegExp?]> = [
      ['not JSON', '{"plan":', 400],
      ['an array', '[1]', 422],
      ['missing plan', { metro: 'da', operating_system: 'ubuntu_24_04' }, 422, /plan is required/],
      ['plan of the wrong type', { ...ok, plan: 5 }, 422, /plan/],
      ['unknown plan', { ...ok, plan: 'c9.huge' }, 422, /known plans: .*c3\.small\.x86/],
      ['unknown metro', { ...ok, metro: 'zz' }, 422, /known metros: .*da/],
      ['unknown OS', { ...ok, operating_system: 'windows_95' }, 422, /known: .*ubuntu_24_04/],
      ['no location', { plan: 'c3.small.x86', operating_system: 'ubuntu_24_04' }, 422, /metro/],
      ['unknown facility', { ...ok, metro: undefined, facility: ['xx9'] }, 422, /known facilities/],
      ['facility of another metro', { ...ok, facility: ['ny5'] }, 422, /ny5 is in metro ny/],
      ['no machines of the plan there', { ...ok, plan: 'n3.xlarge.x86' }, 422, /there are no n3\.xlarge\.x86 machines in metro da; metros with n3\.xlarge\.x86 machines: /],
      ['bad billing cycle', { ...ok, billing_cycle: 'weekly' }, 422, /billing_cycle/],
      ['custom_ipxe without a URL', { ...ok, operating_system: 'custom_ipxe' }, 422, /ipxe_script_url/],
      ['custom_ipxe with #!ipxe user data', { ...ok, operating_system: 'custom_ipxe', userdata: '#!ipxe\nchain http://x/y' }, 422, /ipxe_script_url/],
      ['a bad iPXE URL', { ...ok, operating_system: 'custom_ipxe', ipxe_script_url: 'ftp://x/y' }, 422, /^ipxe_script_url: /],
      ['a hostname that is not one', { ...ok, hostname: 'bad_host!' }, 422, /^hostname: /],
      ['tags not a list', { ...ok, tags: 'web' }, 422, /tags/],
      ['a subnet size not offered', { ...ok, ip_addresses: [{ address_family: 4, public: true, cidr: 28 }] }, 422, /cidr/],
      ['address family not an enum value', { ...ok, ip_addresses: [{ address_family: 5, public: true }] }, 422, /address_family/],
      ['unknown project key', { ...ok, project_ssh_keys: [NIL] }, 422, /project_ssh_keys/],
      ['unknown hardware reservation', { ...ok, hardware_reservation_id: NIL }, 422, /hardware_reservation_id/],
      ['termination time not a time', { ...ok, termination_time: 'tomorrow' }, 422, /termination_time/],
      ['no_ssh_keys with named keys', { ...ok, no_ssh_keys: true, user_ssh_keys: [NIL] }, 422, /no_ssh_keys/],
    ];
    for (const [what, body, code, re] of creates) {
      const r = await metal(s, 'POST', `/projects/${pid}/devices`, body, { headers: typeof body === 'string' ? { 'content-type': 'application/json' } : {} });
      assert.equal(r.status, code, `${what}: ${r.text}`);
      if (re) assert.match(r.body.errors.join('\n'), re, what);
    }
    assert.equal((await metal(s, 'GET', `/projects/${pid}/devices`)).body.meta.total, 0, 'nothing was created');

    const dev = await metal(s, 'POST', `/projects/${pid}/devices`, { ...ok, facility: 'any', metro: undefined });
    assert.equal(dev.status, 201, `facility "any" as a string: ${dev.text}`);
    const id = dev.body.id;
    await waitState(s, id, 'active');
    const others: Array<[string, string, string, unknown, number, RegExp?]> = [
      ['unknown project', 'POST', `/projects/${NIL}/devices`, ok, 404],
      ['project id not a uuid', 'GET', '/projects/nope/devices', undefined, 404],
      ['unknown device', 'GET', `/devices/${NIL}`, undefined, 404],
      ['device id not a uuid', 'GET', '/devices/nope', undefined, 404],
      ['page 0', 'GET', `/projects/${pid}/devices?page=0`, undefined, 422, /page/],
      ['per_page not a number', 'GET', `/projects/${pid}/devices?per_page=ten`, undefined, 422, /per_page/],
      ['per_page too big', 'GET', `/projects/${pid}/devices?per_page=5000`, undefined, 422, /per_page/],
      ['reserved not a boolean', 'GET', `/projects/${pid}/devices?reserved=maybe`, undefined, 422, /reserved/],
      ['unknown type', 'GET', `/projects/${pid}/devices?type=huge`, undefined, 422, /type/],
      ['unknown category', 'GET', `/projects/${pid}/devices?categories=gpu`, undefined, 422, /categories/],
      ['events page bad', 'GET', `/devices/${id}/events?per_page=-1`, undefined, 422, /per_page/],
      ['update: bad billing cycle', 'PUT', `/devices/${id}`, { billing_cycle: 'weekly' }, 422, /billing_cycle/],
      ['update: hostname of the wrong type', 'PUT', `/devices/${id}`, { hostname: 5 }, 422, /hostname/],
      ['update: a bad hostname', 'PUT', `/devices/${id}`, { hostname: 'no spaces please' }, 422, /^hostname: /],
      ['update: not JSON', 'PUT', `/devices/${id}`, '{', 400],
      ['action: unknown type', 'POST', `/devices/${id}/actions`, { type: 'explode' }, 422, /power_on/],
      ['action: no type', 'POST', `/devices/${id}/actions`, {}, 422, /type is required/],
      ['action: power_on when on', 'POST', `/devices/${id}/actions`, { type: 'power_on' }, 422, /already powered on/],
      ['action: reinstall with an unknown OS', 'POST', `/devices/${id}/actions`, { type: 'reinstall', operating_system: 'nope_1' }, 422, /known: /],
      ['action: reinstall keeping data', 'POST', `/devices/${id}/actions`, { type: 'reinstall', preserve_data: true }, 422, /preserve_data/],
      ['delete: force_delete not a boolean', 'DELETE', `/devices/${id}?force_delete=perhaps`, undefined, 422, /force_delete/],
      ['batch: no batches', 'POST', `/projects/${pid}/devices/batch`, { batches: [] }, 422, /batches/],
      ['batch: neither hostnames nor quantity', 'POST', `/projects/${pid}/devices/batch`, { batches: [ok] }, 422, /hostnames/],
      ['key: missing', 'POST', `/projects/${pid}/ssh-keys`, { label: 'x' }, 422, /^key: /],
      ['key: not a key', 'POST', `/projects/${pid}/ssh-keys`, { key: 'hello world' }, 422, /^key: /],
      ['key: wrong type', 'POST', '/ssh-keys', { key: 42 }, 422, /key/],
      ['key: unknown id', 'GET', `/ssh-keys/${NIL}`, undefined, 404],
    ];
    for (const [what, method, path, body, code, re] of others) {
      const r = await metal(s, method, path, body, { headers: typeof body === 'string' ? { 'content-type': 'application/json' } : {} });
      assert.equal(r.status, code, `${what}: ${r.text}`);
      if (re) assert.match(r.body.errors.join('\n'), re, what);
    }

    // A locked device is not deleted until it is unlocked.
    assert.equal((await metal(s, 'PUT', `/devices/${id}`, { locked: true })).body.locked, true);
    const locked = await metal(s, 'DELETE', `/devices/${id}`);
    assert.equal(locked.status, 422);
    assert.match(locked.body.errors[0], /locked/);
    assert.equal((await metal(s, 'PUT', `/devices/${id}`, { locked: false })).body.locked, false);
    assert.equal((await metal(s, 'DELETE', `/devices/${id}`)).status, 204);
    await waitGone(s, id);
  });
});

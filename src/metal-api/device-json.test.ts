// The Device ↔ Metal JSON translation without a server: state words, the rendered Device against the spec's
// schema, create bodies (SDK defaults, locations, keys, reservations) to Device specs, updates, action rules.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DeviceStates, type DeviceSpec } from '../kinds/device.js';
import type { StoredObject } from '../kinds/types.js';
import { ApiError } from '../lib/errors.js';
import {
  actionProblem,
  applySpecChanges,
  deviceJson,
  devicePatchFromUpdate,
  deviceSpecFromCreate,
  inMetalFields,
  metalState,
  portId,
  type CreateContext,
  type DeviceCreateBody,
  type DeviceWorld,
} from './device-json.js';
import { eventJson } from './events.js';
import { describeErrors, metalSpec } from './spec.js';

let uid = 0;
function obj(kind: string, name: string, spec: Record<string, unknown>, extra: { metadata?: Record<string, unknown>; status?: unknown } = {}): StoredObject {
  uid++;
  return {
    apiVersion: 'metalplane.dev/v1alpha1',
    kind,
    metadata: { name, uid: `00000000-0000-4000-8000-${String(uid).padStart(12, '0')}`, resourceVersion: String(uid), creationTimestamp: '2025-01-01T00:00:00Z', ...(extra.metadata ?? {}) },
    spec,
    ...(extra.status ? { status: extra.status } : {}),
  };
}

const plans = [obj('Plan', 'c3.small.x86', { slug: 'c3.small.x86', categories: ['compute'], specs: { cpus: [{ count: 1, type: 'x' }] }, pricing: { hour: 0.5 } }), obj('Plan', 'n3.xlarge.x86', { specs: {} })];
const metros = [obj('Metro', 'da', { code: 'da', name: 'Dallas', country: 'US' }), obj('Metro', 'ny', { code: 'ny', name: 'New York', country: 'US' })];
const facilities = [
  obj('Facility', 'da11', { code: 'da11', metro: 'da', name: 'Dallas DA11', address: { city: 'Dallas', country: 'US' } }),
  obj('Facility', 'da6', { code: 'da6', metro: 'da', name: 'Dallas DA6' }),
  obj('Facility', 'ny5', { code: 'ny5', metro: 'ny', name: 'New York NY5' }),
];
const oses = [
  obj('OperatingSystem', 'ubuntu-24-04', { slug: 'ubuntu_24_04', name: 'Ubuntu 24.04', distro: 'ubuntu', version: '24.04', provisionableOn: ['c3.*'] }),
  obj('OperatingSystem', 'custom-ipxe', { slug: 'custom_ipxe', name: 'Custom iPXE', distro: 'custom', version: '1', provisionableOn: ['*'], customIpxe: true }),
];
const hw = (name: string, facility: string, state: string, plan = 'c3.small.x86'): StoredObject =>
  obj('Hardware', name, { metro: facility.replace(/[0-9]+$/, ''), facility, plan, bmc: {}, nics: [{ name: 'eth0', mac: '02:00:00:00:00:01' }, { name: 'eth1', mac: '02:00:00:00:00:02' }] }, { status: { state } });
const machines = [hw('da6-1', 'da6', 'in-use'), hw('da11-1', 'da11', 'available'), hw('ny5-1', 'ny5', 'available')];
const pools = [obj('IPPool', 'pub', { metro: 'da', family: 4, public: true, cidr: '147.75.0.0/20', assignPrefix: 31 })];
const admin = obj('User', 'admin', { email: 'a@b', organizations: ['default'] });
const projectKey = obj('SSHKey', 'deploy', { key: 'ssh-ed25519 AAAA', label: 'deploy' }, { metadata: { namespace: 'p' } });

const byName = (list: StoredObject[]) => (n: string) => list.find((o) => o.metadata.name === n);
const world: DeviceWorld = {
  plan: byName(plans),
  plans: () => plans,
  metro: byName(metros),
  metros: () => metros,
  facility: byName(facilities),
  facilities: () => facilities,
  operatingSystem: (slug) => oses.find((o) => (o.spec as { slug: string }).slug === slug),
  operatingSystems: () => oses,
  hardware: byName(machines),
  hardwareList: () => machines,
  ipPools: () => pools,
  ipAssignments: () => [],
  projectBlocks: () => [],
  projectJson: (ns, shape) => (shape ? { id: '00000000-0000-4000-8000-00000000abcd', href: '/metal/v1/projects/00000000-0000-4000-8000-00000000abcd', name: ns } : { id: '00000000-0000-4000-8000-00000000abcd', href: '/metal/v1/projects/00000000-0000-4000-8000-00000000abcd' }),
  user: byName([admin]),
  sshKeysOf: () => [projectKey],
};
const cc: CreateContext = { namespace: 'p', projectKeys: [projectKey], members: [admin] };
const base: DeviceCreateBody = { metro: 'da', plan: 'c3.small.x86', operating_system: 'ubuntu_24_04', hostname: 'web-1' };

function device(spec: Partial<DeviceSpec>, status: Record<string, unknown> = {}, meta: Record<string, unknown> = {}): StoredObject {
  return obj('Device', 'web-1', { plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04', metro: 'da', ...spec }, { metadata: { namespace: 'p', ...meta }, status });
}

function problems(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ApiError && e.code === 422, String(e));
    return (e.details?.causes ?? []).map((c) => c.message).join('\n');
  }
  assert.fail('expected a 422');
}

describe('device JSON', () => {
  test('every Device state renders as a state of the spec\'s enum; a device being deleted is deprovisioning', () => {
    const v = metalSpec().validator('Device');
    for (const state of DeviceStates) {
      const json = deviceJson(device({ tags: ['a'] }, { state, hardware: 'da11-1', facility: 'da11', metro: 'da', provisioningPercentage: 40 }), world, { include: {}, exclude: {} });
      assert.ok(v(json), `${state}: ${describeErrors(v.errors).join('; ')}`);
      assert.equal(json.state, state);
    }
    assert.equal(metalState(device({})), 'queued', 'a new device is queued');
    assert.equal(metalState(device({}, { state: 'active' }, { deletionTimestamp: '2025-01-01T00:00:00Z' })), 'deprovisioning');
  });

  test('references and objects: plan, metro, facility, OS, project (included or not), ports of the machine', () => {
    const d = device({ customData: { a: 1 } }, { state: 'active', hardware: 'da11-1', facility: 'da11', metro: 'da' });
    const ref = deviceJson(d, world, { include: {}, exclude: {} });
    assert.deepEqual(ref.project, { id: '00000000-0000-4000-8000-00000000abcd', href: '/metal/v1/projects/00000000-0000-4000-8000-00000000abcd' });
    assert.equal((ref.plan as { slug: string }).slug, 'c3.small.x86');
    assert.equal((ref.facility as { metro: { code: string } }).metro.code, 'da');
    assert.equal((ref.operating_system as { slug: string }).slug, 'ubuntu_24_04');
    assert.deepEqual(ref.customdata, { a: 1 });
    const ports = ref.network_ports as Array<{ name: string; type: string; network_type: string; id: string }>;
    assert.deepEqual(ports.map((p) => `${p.name}/${p.type}/${p.network_type}`), ['bond0/NetworkBondPort/layer3', 'eth0/NetworkPort/layer3', 'eth1/NetworkPort/layer3']);
    const full = deviceJson(d, world, { include: { project: {} }, exclude: { userdata: {} } });
    assert.equal((full.project as { name: string }).name, 'p');
    assert.equal(full.userdata, undefined, 'excluded');
    assert.equal(deviceJson(device({}, { state: 'provisioning' }), world, { include: {}, exclude: {} }).network_ports instanceof Array, true);
  });

  test('port ids are stable UUIDs', () => {
    const id = portId('u1', 'eth0');
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(portId('u1', 'eth0'), id);
    assert.notEqual(portId('u1', 'eth1'), id);
  });

  test('an event about a device as the spec\'s Event', () => {
    const ev = { ...obj('Event', 'web-1.1', {}), involvedObject: { kind: 'Device', name: 'web-1', uid: 'dev-uid' }, reason: 'ActionSucceeded', message: 'reboot: done', type: 'Normal', lastTimestamp: '2025-01-02T00:00:00Z' } as StoredObject;
    const json = eventJson(ev);
    assert.equal(json.type, 'instance.action-succeeded');
    assert.equal(json.body, 'reboot: done');
    assert.ok(metalSpec().validator('Event')(json));
    assert.deepEqual(json.relationships, [{ href: '/metal/v1/devices/dev-uid' }]);
  });
});

describe('create bodies to Device specs', () => {
  const cases: Array<{ name: string; body: Partial<DeviceCreateBody> & Record<string, unknown>; want?: Partial<DeviceSpec>; absent?: (keyof DeviceSpec)[]; error?: RegExp }> = [
    {
      name: 'every default a generated SDK sends is accepted and means the default',
      body: { always_pxe: false, billing_cycle: 'hourly', customdata: {}, hardware_reservation_id: '', locked: false, no_ssh_keys: false, private_ipv4_subnet_size: 28, public_ipv4_subnet_size: 31, project_ssh_keys: [], user_ssh_keys: [], ssh_keys: [], tags: [], spot_instance: false, storage: {} },
      want: { metro: 'da', plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04', hostname: 'web-1', billingCycle: 'hourly', sshKeyUsers: ['admin'] },
      absent: ['sshKeys', 'alwaysPxe', 'locked', 'hardwareReservation', 'customData', 'tags'],
    },
    { name: 'facility "any": the facility with a free machine', body: { metro: undefined, facility: ['any'] }, want: { facility: 'da11' }, absent: ['metro'] },
    { name: 'a facility list: the first with a free machine', body: { metro: undefined, facility: ['da6', 'ny5'] }, want: { facility: 'ny5' } },
    { name: 'a facility list with none free: the first that has the plan (the device waits)', body: { metro: undefined, facility: ['da6'] }, want: { facility: 'da6' } },
    { name: 'metro by id', body: { metro: metros[1]!.metadata.uid }, want: { metro: 'ny' } },
    { name: 'no_ssh_keys: none at all', body: { no_ssh_keys: true }, want: { sshKeys: [] }, absent: ['sshKeyUsers'] },
    { name: 'named keys only', body: { project_ssh_keys: [projectKey.metadata.uid] }, want: { sshKeys: ['deploy'] }, absent: ['sshKeyUsers'] },
    { name: 'named users only', body: { user_ssh_keys: [admin.metadata.uid] }, want: { sshKeys: [], sshKeyUsers: ['admin'] } },
    { name: 'next-available reservation', body: { hardware_reservation_id: 'next-available' }, want: { hardwareReservation: 'next-available' } },
    { name: 'a reservation by the machine\'s id', body: { hardware_reservation_id: machines[1]!.metadata.uid }, want: { hardwareReservation: 'da11-1' } },
    { name: 'termination time normalized to UTC', body: { termination_time: '2030-01-02T03:04:05+02:00' }, want: { terminationTime: '2030-01-02T01:04:05Z' } },
    { name: 'addresses as the kind writes them', body: { ip_addresses: [{ address_family: 4, public: false }, { address_family: 4, public: true, cidr: 31 }] }, want: { ipAddresses: [{ family: 4, public: false }, { family: 4, public: true }] } },
    { name: 'custom_ipxe with a URL', body: { operating_system: 'custom_ipxe', ipxe_script_url: 'https://x/y.ipxe', always_pxe: true }, want: { operatingSystem: 'custom_ipxe', ipxeScriptUrl: 'https://x/y.ipxe', alwaysPxe: true } },
    { name: 'unknown plan names the known ones', body: { plan: 'c9.huge' }, error: /known plans: c3\.small\.x86, n3\.xlarge\.x86/ },
    { name: 'unknown metro names the known ones', body: { metro: 'zz' }, error: /known metros: da, ny/ },
    { name: 'unknown OS names the known ones', body: { operating_system: 'nope' }, error: /known: custom_ipxe, ubuntu_24_04/ },
    { name: 'OS not for the plan', body: { plan: 'n3.xlarge.x86' }, error: /cannot be installed on plan n3\.xlarge\.x86/ },
    { name: 'another metro with machines of the plan', body: { metro: 'ny' }, want: { metro: 'ny' } },
    { name: 'a metro without machines of the plan names those that have them', body: { metro: 'ny', plan: 'n3.xlarge.x86', operating_system: 'custom_ipxe', ipxe_script_url: 'http://x/y' }, error: /no n3\.xlarge\.x86 machines in metro ny; metros with n3\.xlarge\.x86 machines: \(none\)/ },
    { name: 'custom_ipxe without a URL', body: { operating_system: 'custom_ipxe' }, error: /ipxe_script_url/ },
    { name: 'custom_ipxe with #!ipxe user data says why it is not enough', body: { operating_system: 'custom_ipxe', userdata: '#!ipxe\nchain x' }, error: /does not boot an iPXE script given as user data/ },
    { name: 'a subnet size the pool does not give', body: { ip_addresses: [{ address_family: 4, public: true, cidr: 29 }] }, error: /assigns public IPv4 as \/31/ },
    { name: 'a deprecated size that is neither the default nor the pool\'s', body: { public_ipv4_subnet_size: 29 }, error: /public_ipv4_subnet_size/ },
    { name: 'a reservation of another plan', body: { hardware_reservation_id: hw('x', 'da11', 'available', 'n3.xlarge.x86').metadata.uid }, error: /hardware_reservation_id/ },
    { name: 'a facility of another metro', body: { facility: ['ny5'] }, error: /ny5 is in metro ny, not in metro da/ },
    { name: 'a foreign project key', body: { project_ssh_keys: ['00000000-0000-4000-8000-999999999999'] }, error: /project_ssh_keys/ },
    { name: 'spot instances', body: { spot_instance: true }, error: /spot_instance/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const body = { ...base, ...c.body } as DeviceCreateBody;
      if (c.error) {
        assert.match(problems(() => deviceSpecFromCreate(body, cc, world)), c.error);
        return;
      }
      const spec = deviceSpecFromCreate(body, cc, world);
      for (const [k, v] of Object.entries(c.want ?? {})) assert.deepEqual(spec[k as keyof DeviceSpec], v, k);
      for (const k of c.absent ?? []) assert.equal(spec[k], undefined, `${k} is not set`);
    });
  }
});

describe('updates and actions', () => {
  test('an update replaces what is sent (customdata too) and removes what is emptied', () => {
    const spec = { plan: 'p', operatingSystem: 'o', tags: ['a'], customData: { a: 1, b: 2 }, locked: true, description: 'x' } as DeviceSpec;
    const next = applySpecChanges(spec, devicePatchFromUpdate({ customdata: { c: 3 }, tags: [], locked: false, description: 'y' }));
    assert.deepEqual(next.customData, { c: 3 });
    assert.equal(next.tags, undefined);
    assert.equal(next.locked, undefined);
    assert.equal(next.description, 'y');
    assert.match(problems(() => devicePatchFromUpdate({ billing_cycle: 'weekly' })), /billing_cycle: must be one of hourly/);
  });

  test('the kind\'s causes in the Metal API\'s field names', () => {
    const e = inMetalFields(ApiError.invalid('Device', 'x', [{ field: 'spec.hostname', reason: 'FieldValueInvalid', message: 'must be a hostname label' }, { field: 'metadata.name', reason: 'FieldValueInvalid', message: 'bad' }]));
    assert.ok(e instanceof ApiError);
    assert.deepEqual(e.details?.causes?.map((c) => c.field), ['hostname', 'metadata.name']);
    const other = ApiError.notFound('device', 'x');
    assert.equal(inMetalFields(other), other);
  });

  const actionCases: Array<[string, Record<string, unknown>, Partial<DeviceSpec>, Parameters<typeof actionProblem>[1], RegExp | undefined, Record<string, string>?]> = [
    ['reboot an active device', { state: 'active' }, {}, 'reboot', undefined],
    ['power off an inactive one', { state: 'inactive' }, {}, 'power_off', /already powered off/],
    ['power on an active one', { state: 'active' }, {}, 'power_on', /already powered on/],
    ['anything while provisioning', { state: 'provisioning' }, {}, 'reboot', /provisioning; reboot needs it active/],
    ['reinstall a failed one', { state: 'failed' }, {}, 'reinstall', undefined],
    ['reinstall a locked one', { state: 'active' }, { locked: true }, 'reinstall', /locked/],
    ['while another action is asked for', { state: 'active', lastAction: { request: 'reboot/1', type: 'reboot', state: 'succeeded' } }, {}, 'power_off', /another action \(reboot\)/, { 'metalplane.dev/action': 'reboot/7' }],
    ['while another action runs', { state: 'active', lastAction: { request: 'reboot/1', type: 'reboot', state: 'running' } }, {}, 'power_off', /another action/, { 'metalplane.dev/action': 'reboot/1' }],
  ];
  for (const [name, status, spec, type, want, annotations] of actionCases) {
    test(`action: ${name}`, () => {
      const problem = actionProblem(device(spec, status, annotations ? { annotations } : {}), type);
      if (want) assert.match(problem ?? '', want);
      else assert.equal(problem, undefined);
    });
  }
});

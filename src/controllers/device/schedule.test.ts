// Scheduling as data: one table of snapshots (device, catalog, machines, assumptions, pools and claims) and
// the decision each must give — where the device goes and which addresses it gets, or why it waits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceSpec, DeviceStatus } from '../../kinds/device.js';
import type { HardwareSpec, HardwareStatus } from '../../kinds/hardware.js';
import type { IPAddressSpec } from '../../kinds/ip-address.js';
import type { StoredObject } from '../../kinds/types.js';
import type { Claim, Pool } from '../ipam/allocate.js';
import { decidePlacement, forgetSeenAssumptions, type PlacementDecision, type PlacementSnapshot } from './schedule.js';

function machine(name: string, o: { plan?: string; facility?: string; metro?: string; state?: HardwareStatus['state']; claim?: string; maintenance?: boolean; rv?: number } = {}): StoredObject {
  const spec: HardwareSpec = {
    metro: o.metro ?? 'da',
    facility: o.facility ?? 'da11',
    plan: o.plan ?? 'c3.small.x86',
    rack: 'r1',
    bmc: { driver: 'redfish', address: 'http://127.0.0.1:1', credentialsSecret: { name: 'bmc' } },
    nics: [{ mac: '00:00:00:00:00:01' }],
    ...(o.maintenance ? { maintenance: true } : {}),
  };
  const status: HardwareStatus = { state: o.state ?? 'available', ...(o.claim ? { claim: { namespace: 'p', name: o.claim, uid: `uid-${o.claim}` } } : {}) };
  return {
    apiVersion: 'metalplane.dev/v1alpha1',
    kind: 'Hardware',
    metadata: { name, uid: `uid-${name}`, resourceVersion: String(o.rv ?? 10), creationTimestamp: '2026-01-01T00:00:00Z' },
    spec,
    status,
  };
}

const pools: Pool[] = [
  { name: 'da-public-v4', metro: 'da', family: 4, public: true, cidr: '147.75.80.0/30', assignPrefix: 31 },
  { name: 'da-private-v4', metro: 'da', family: 4, public: false, cidr: '10.0.0.0/24', assignPrefix: 31, projectPrefix: 25 },
  { name: 'da-v6', metro: 'da', family: 6, public: true, cidr: '2604:1380::/48', assignPrefix: 127, projectPrefix: 56 },
  { name: 'ny-public-v4', metro: 'ny', family: 4, public: true, cidr: '147.75.90.0/24', assignPrefix: 31 },
];

function snapshot(o: {
  spec?: Partial<DeviceSpec>;
  status?: DeviceStatus;
  hardware?: StoredObject[];
  warm?: string[];
  assumedHardware?: Array<[string, number]>;
  claims?: Claim[];
  assumedAddresses?: string[];
}): PlacementSnapshot {
  const claims = o.claims ?? [];
  return {
    device: {
      namespace: 'p',
      name: 'web',
      uid: 'uid-web',
      spec: { metro: 'da', plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04', ipAddresses: [{ family: 4, public: true }], ...o.spec },
      status: o.status ?? {},
    },
    plans: ['c3.small.x86', 'm3.large.x86'],
    operatingSystems: [
      { name: 'ubuntu-24-04', slug: 'ubuntu_24_04', provisionableOn: ['c3.*', 'm3.*'] },
      { name: 'windows-2022', slug: 'windows_2022', provisionableOn: ['m3.large.x86'] },
    ],
    facilities: new Map([
      ['da11', 'da'],
      ['da12', 'da'],
      ['ny5', 'ny'],
    ]),
    hardware: o.hardware ?? [machine('hw-b'), machine('hw-a')],
    warm: new Set(o.warm ?? []),
    assumedHardware: new Map(o.assumedHardware ?? []),
    pools,
    claimsIn: (metro) => claims.filter((c) => pools.find((p) => p.name === c.pool)?.metro === metro),
    assumedAddresses: new Set(o.assumedAddresses ?? []),
  };
}

/** What a decision says, in short: `hw-a 147.75.80.1` or `NoCapacity: <message>`. */
function summary(d: PlacementDecision): string {
  if (!d.placed) return `${d.reason}: ${d.message}`;
  return [d.hardware.metadata.name, ...d.ips.map((i) => i.address)].join(' ');
}

const publicClaim = (network: string): Claim => ({ key: `ipv4-${network}-31`, pool: 'da-public-v4', family: 4, network, prefix: 31, kind: 'assignment' });

const cases: Array<{ name: string; snap: PlacementSnapshot; want: string | RegExp }> = [
  { name: 'the first free machine by name, the lowest free address', snap: snapshot({}), want: 'hw-a 147.75.80.1' },
  { name: 'a warm machine (agent already running) goes first', snap: snapshot({ warm: ['hw-b'] }), want: 'hw-b 147.75.80.1' },
  {
    name: 'machines of another plan, metro, state, claim or in maintenance are not candidates',
    snap: snapshot({
      hardware: [
        machine('hw-a', { plan: 'm3.large.x86' }),
        machine('hw-b', { metro: 'ny', facility: 'ny5' }),
        machine('hw-c', { state: 'provisioning' }),
        machine('hw-d', { claim: 'other' }),
        machine('hw-e', { maintenance: true }),
        machine('hw-f'),
      ],
    }),
    want: 'hw-f 147.75.80.1',
  },
  {
    name: 'a machine given to a placement not yet in the cache is taken',
    snap: snapshot({ assumedHardware: [['hw-a', 10]] }),
    want: 'hw-b 147.75.80.1',
  },
  {
    name: 'a machine newer than its assumption (the cache caught up and it is free again) is a candidate',
    snap: snapshot({ hardware: [machine('hw-a', { rv: 12 })], assumedHardware: [['hw-a', 10]] }),
    want: 'hw-a 147.75.80.1',
  },
  {
    name: 'claimed addresses are skipped',
    snap: snapshot({ claims: [publicClaim('147.75.80.0')], assumedAddresses: [] }),
    want: 'hw-a 147.75.80.3',
  },
  {
    name: 'a facility narrows the machines to that facility',
    snap: snapshot({ spec: { metro: undefined, facility: 'da12' }, hardware: [machine('hw-a'), machine('hw-b', { facility: 'da12' })] }),
    want: 'hw-b 147.75.80.1',
  },
  {
    name: 'a hardware reservation places on that machine only',
    snap: snapshot({ spec: { hardwareReservation: 'hw-b' } }),
    want: 'hw-b 147.75.80.1',
  },
  { name: 'next-available is no reservation', snap: snapshot({ spec: { hardwareReservation: 'next-available' } }), want: 'hw-a 147.75.80.1' },
  {
    name: 'a rescheduled device in the same metro keeps its addresses',
    snap: snapshot({ status: { metro: 'da', ipAddresses: [{ address: '147.75.80.3', network: '147.75.80.2', cidr: 31, gateway: '147.75.80.2', family: 4, public: true }] } }),
    want: 'hw-a 147.75.80.3',
  },
  {
    name: 'the default addresses: public IPv4, private IPv4 in a new project block, public IPv6',
    snap: snapshot({ spec: { ipAddresses: undefined } }),
    want: 'hw-a 147.75.80.1 10.0.0.1 2604:1380::1',
  },
  { name: 'an unknown plan', snap: snapshot({ spec: { plan: 'c9.huge.x86' } }), want: 'InvalidPlan: spec.plan: "c9.huge.x86" is not a plan; known plans: c3.small.x86, m3.large.x86' },
  { name: 'an unknown operating system', snap: snapshot({ spec: { operatingSystem: 'beos' } }), want: 'InvalidOperatingSystem: spec.operatingSystem: "beos" is not an operating system; known: ubuntu_24_04, windows_2022' },
  {
    name: 'an operating system not for the plan',
    snap: snapshot({ spec: { operatingSystem: 'windows_2022' } }),
    want: 'InvalidOperatingSystem: operating system windows_2022 cannot be installed on plan c3.small.x86 (it is for m3.large.x86)',
  },
  { name: 'an unknown facility', snap: snapshot({ spec: { facility: 'zz1' } }), want: 'InvalidFacility: spec.facility: "zz1" is not a facility; known: da11, da12, ny5' },
  { name: 'a facility outside the metro', snap: snapshot({ spec: { facility: 'ny5' } }), want: 'InvalidFacility: facility ny5 is in metro ny, not da' },
  {
    name: 'no free machine: the counts by state',
    snap: snapshot({ hardware: [machine('hw-a', { state: 'provisioning' }), machine('hw-b', { state: 'in-use', claim: 'x' }), machine('hw-c', { state: 'in-use', claim: 'y' })] }),
    want: 'NoCapacity: no available c3.small.x86 machine in metro da (3 there: 1 provisioning, 2 in-use); the device waits for one to become available',
  },
  { name: 'no machine of the plan at all', snap: snapshot({ hardware: [machine('hw-a', { plan: 'm3.large.x86' })] }), want: 'NoCapacity: no c3.small.x86 machines exist in metro da; the device waits until one is added' },
  { name: 'a reservation of a machine that does not exist', snap: snapshot({ spec: { hardwareReservation: 'hw-z' } }), want: 'NoCapacity: hardware reservation hw-z does not exist' },
  {
    name: 'a reservation of a machine of another plan',
    snap: snapshot({ spec: { hardwareReservation: 'hw-a' }, hardware: [machine('hw-a', { plan: 'm3.large.x86' })] }),
    want: 'NoCapacity: reserved hardware hw-a is plan m3.large.x86, not c3.small.x86',
  },
  {
    name: 'a reservation of a machine in use',
    snap: snapshot({ spec: { hardwareReservation: 'hw-a' }, hardware: [machine('hw-a', { state: 'in-use', claim: 'db' })] }),
    want: 'NoCapacity: reserved hardware hw-a is in use by p/db; waiting for it to be available',
  },
  {
    name: 'every address of the pool taken (claimed or assumed)',
    snap: snapshot({ claims: [publicClaim('147.75.80.0')], assumedAddresses: ['ipv4-147.75.80.2-31'] }),
    want: /^NoIPAddresses: no free public IPv4 \/31 in metro da/,
  },
];

for (const c of cases) {
  test(`placement: ${c.name}`, () => {
    const got = summary(decidePlacement(c.snap));
    if (typeof c.want === 'string') assert.equal(got, c.want);
    else assert.match(got, c.want);
  });
}

test('placement: the claims to create are one per new block and assignment, labelled by metro and project, the assignment naming the device', () => {
  const d = decidePlacement(snapshot({ spec: { ipAddresses: [{ family: 4, public: false }] } }));
  assert.ok(d.placed);
  assert.deepEqual(
    d.claims.map((c) => [c.metadata.name, (c.spec as IPAddressSpec).use, c.metadata.labels]),
    [
      ['ipv4-10.0.0.0-25', 'block', { 'metalplane.dev/metro': 'da', 'metalplane.dev/project': 'p' }],
      ['ipv4-10.0.0.0-31', 'assignment', { 'metalplane.dev/metro': 'da', 'metalplane.dev/project': 'p' }],
    ],
  );
  assert.deepEqual((d.claims[1]!.spec as IPAddressSpec).device, { namespace: 'p', name: 'web', uid: 'uid-web' });
  assert.deepEqual([d.metro, d.facility], ['da', 'da11']);
});

test('placement: a device keeping its addresses creates no claims', () => {
  const ips = [{ address: '147.75.80.3', network: '147.75.80.2', cidr: 31, gateway: '147.75.80.2', family: 4 as const, public: true }];
  const d = decidePlacement(snapshot({ status: { metro: 'da', ipAddresses: ips } }));
  assert.ok(d.placed);
  assert.deepEqual(d.claims, []);
});

test('assumptions are forgotten once the cache shows a newer machine or the claimed address', () => {
  const hw = new Map([
    ['seen', 10],
    ['pending', 10],
    ['gone', 10],
  ]);
  const ips = new Set(['a-seen', 'a-pending']);
  const versions: Record<string, number> = { seen: 11, pending: 10 };
  forgetSeenAssumptions(hw, ips, { hardwareVersion: (n) => versions[n], hasAddress: (k) => k === 'a-seen' });
  assert.deepEqual([...hw.keys()], ['pending']);
  assert.deepEqual([...ips], ['a-pending']);
});

test('an assumed address is forgotten once the cache is current past its commit, even if the claim is gone by then', () => {
  // a-gone was committed at 20 and deleted before any placement looked; a-later was committed at 30; a-flight
  // is still being committed (no revision yet).
  const committedAt: Record<string, number> = { 'a-gone': 20, 'a-later': 30 };
  const ips = new Set(['a-gone', 'a-later', 'a-flight']);
  const cacheRevision = 25;
  forgetSeenAssumptions(new Map(), ips, { hardwareVersion: () => undefined, hasAddress: () => false, caughtUpWith: (k) => committedAt[k] !== undefined && cacheRevision >= committedAt[k]! });
  assert.deepEqual([...ips], ['a-later', 'a-flight']);
});

// Scheduling as a pure function: given a snapshot — the device, the catalog it names (plans, operating
// systems, facilities), the machines, what earlier placements assumed but the caches do not show yet, and
// the IP pools with their claims — decide where the device goes and which addresses it gets, or why it
// cannot be placed. No I/O: the device controller reads the snapshot from its informers under the scheduling
// lock and commits the decision (machine, IP claims, workflow, device status) in one transaction.
import type { AddressRequest, DeviceIp, DeviceSpec, DeviceStatus } from '../../kinds/device.js';
import { DefaultDeviceAddresses } from '../../kinds/device.js';
import type { HardwareSpec, HardwareStatus } from '../../kinds/hardware.js';
import type { IPAddressSpec } from '../../kinds/ip-address.js';
import { isProvisionableOn, operatingSystemName } from '../../kinds/operating-system.js';
import type { KubeObject, StoredObject } from '../../kinds/types.js';
import { IpExhaustedError, planDeviceAddresses, type Assignment, type BlockClaim, type Claim, type ClaimIndex, type Pool } from '../ipam/allocate.js';

export interface DeviceView {
  namespace: string;
  name: string;
  uid: string;
  spec: DeviceSpec;
  status: DeviceStatus;
}

export interface OperatingSystemView {
  /** The object name (operatingSystemName of the slug). */
  name: string;
  slug: string;
  provisionableOn?: readonly string[];
}

export interface PlacementSnapshot {
  device: DeviceView;
  plans: readonly string[];
  operatingSystems: readonly OperatingSystemView[];
  /** Facility name → its metro. */
  facilities: ReadonlyMap<string, string>;
  /** Every machine (the scheduler picks among them). */
  hardware: readonly StoredObject[];
  /** Machines whose agent already runs (the warm pool): they skip power-on and netboot, so they go first. */
  warm: { has(hardware: string): boolean };
  /**
   * Placements decided but perhaps not yet in the caches (kube-scheduler's "assume"): machine name → the
   * resourceVersion it had when it was given away. A machine not newer than that is taken.
   */
  assumedHardware: ReadonlyMap<string, number>;
  pools: readonly Pool[];
  /** The claims on the pools of a metro, or an index of claims that holds them (asked for only when addresses are planned). */
  claimsIn(metro: string): Iterable<Claim> | ClaimIndex;
  /** Address keys given to placements not yet in the caches. */
  assumedAddresses: ReadonlySet<string>;
}

export type PlacementDecision =
  | { placed: false; reason: string; message: string }
  | {
      placed: true;
      hardware: StoredObject;
      metro: string;
      facility: string;
      ips: DeviceIp[];
      /** IPAddress claims to create (empty when the device keeps its addresses across a reschedule). */
      claims: KubeObject[];
    };

export function decidePlacement(s: PlacementSnapshot): PlacementDecision {
  const spec = s.device.spec;
  const problem = checkReferences(s);
  if (problem) return { placed: false, ...problem };
  const metro = spec.metro ?? s.facilities.get(spec.facility!)!;
  const hw = bestCandidate(s, metro);
  if (!hw) return { placed: false, reason: 'NoCapacity', message: noCapacityMessage(s, metro) };
  const hspec = hw.spec as HardwareSpec;

  // A device moved to another machine of the same metro keeps its addresses.
  const st = s.device.status;
  if (st.ipAddresses && st.metro === hspec.metro) {
    return { placed: true, hardware: hw, metro: hspec.metro, facility: hspec.facility, ips: st.ipAddresses, claims: [] };
  }
  try {
    const { ips, claims } = planAddresses(s, hspec.metro);
    return { placed: true, hardware: hw, metro: hspec.metro, facility: hspec.facility, ips, claims };
  } catch (e) {
    if (e instanceof IpExhaustedError) return { placed: false, reason: 'NoIPAddresses', message: e.message };
    throw e;
  }
}

/** What is wrong with the device's references to the catalog, if anything. */
function checkReferences(s: PlacementSnapshot): { reason: string; message: string } | undefined {
  const spec = s.device.spec;
  if (!s.plans.includes(spec.plan)) {
    return { reason: 'InvalidPlan', message: `spec.plan: ${JSON.stringify(spec.plan)} is not a plan; known plans: ${[...s.plans].sort().join(', ')}` };
  }
  const os = s.operatingSystems.find((o) => o.name === operatingSystemName(spec.operatingSystem));
  if (!os) {
    const slugs = s.operatingSystems.map((o) => o.slug).sort();
    return { reason: 'InvalidOperatingSystem', message: `spec.operatingSystem: ${JSON.stringify(spec.operatingSystem)} is not an operating system; known: ${slugs.join(', ')}` };
  }
  const on = os.provisionableOn ?? [];
  if (!isProvisionableOn(on, spec.plan)) {
    return { reason: 'InvalidOperatingSystem', message: `operating system ${spec.operatingSystem} cannot be installed on plan ${spec.plan} (it is for ${on.join(', ')})` };
  }
  if (spec.facility) {
    const fm = s.facilities.get(spec.facility);
    if (fm === undefined) {
      return { reason: 'InvalidFacility', message: `spec.facility: ${JSON.stringify(spec.facility)} is not a facility; known: ${[...s.facilities.keys()].sort().join(', ')}` };
    }
    if (spec.metro && fm !== spec.metro) return { reason: 'InvalidFacility', message: `facility ${spec.facility} is in metro ${fm}, not ${spec.metro}` };
  }
  return undefined;
}

function reservedMachine(spec: DeviceSpec): string | undefined {
  return spec.hardwareReservation && spec.hardwareReservation !== 'next-available' ? spec.hardwareReservation : undefined;
}

function inPlace(spec: DeviceSpec, metro: string, hs: HardwareSpec): boolean {
  return spec.facility ? hs.facility === spec.facility : hs.metro === metro;
}

/**
 * The free machine of the device's plan and place to take: a warm one first, then the lowest name. One pass,
 * no sort: a fleet of 10 000 is scanned once per placement.
 */
export function bestCandidate(s: PlacementSnapshot, metro: string): StoredObject | undefined {
  const spec = s.device.spec;
  const reserved = reservedMachine(spec);
  let best: StoredObject | undefined;
  let bestWarm = false;
  for (const hw of s.hardware) {
    if (reserved && hw.metadata.name !== reserved) continue;
    const hs = hw.spec as HardwareSpec;
    const st = (hw.status ?? {}) as HardwareStatus;
    if (st.state !== 'available' || st.claim || hs.maintenance) continue;
    if (hs.plan !== spec.plan || !inPlace(spec, metro, hs)) continue;
    const assumed = s.assumedHardware.get(hw.metadata.name);
    if (assumed !== undefined && Number(hw.metadata.resourceVersion) <= assumed) continue;
    // Warmth is asked only of machines that could beat the best so far.
    if (best !== undefined && bestWarm && hw.metadata.name > best.metadata.name) continue;
    const warm = s.warm.has(hw.metadata.name);
    if (best === undefined || (warm && !bestWarm) || (warm === bestWarm && hw.metadata.name < best.metadata.name)) {
      best = hw;
      bestWarm = warm;
    }
  }
  return best;
}

function noCapacityMessage(s: PlacementSnapshot, metro: string): string {
  const spec = s.device.spec;
  const where = spec.facility ? `facility ${spec.facility}` : `metro ${metro}`;
  const reserved = reservedMachine(spec);
  if (reserved) {
    const hw = s.hardware.find((h) => h.metadata.name === reserved);
    if (!hw) return `hardware reservation ${reserved} does not exist`;
    const hs = hw.spec as HardwareSpec;
    const st = (hw.status ?? {}) as HardwareStatus;
    if (hs.plan !== spec.plan) return `reserved hardware ${hw.metadata.name} is plan ${hs.plan}, not ${spec.plan}`;
    return `reserved hardware ${hw.metadata.name} is ${st.claim ? `in use by ${st.claim.namespace}/${st.claim.name}` : st.state ?? 'not discovered yet'}; waiting for it to be available`;
  }
  const counts = new Map<string, number>();
  let total = 0;
  for (const hw of s.hardware) {
    const hs = hw.spec as HardwareSpec;
    if (hs.plan !== spec.plan || !inPlace(spec, metro, hs)) continue;
    total++;
    const state = (hw.status as HardwareStatus | undefined)?.state ?? 'discovering';
    counts.set(state, (counts.get(state) ?? 0) + 1);
  }
  if (total === 0) return `no ${spec.plan} machines exist in ${where}; the device waits until one is added`;
  const parts = [...counts].map(([state, n]) => `${n} ${state}`).join(', ');
  return `no available ${spec.plan} machine in ${where} (${total} there: ${parts}); the device waits for one to become available`;
}

/** The device's addresses in `metro` and the IPAddress claims that hold them (new project blocks first). */
function planAddresses(s: PlacementSnapshot, metro: string): { ips: DeviceIp[]; claims: KubeObject[] } {
  const d = s.device;
  // The kind's default hook fills spec.ipAddresses on create; an object replaced without it gets the same.
  const want: AddressRequest[] = d.spec.ipAddresses ?? [...DefaultDeviceAddresses];
  const pools = [...s.pools];
  const plan = planDeviceAddresses({ project: d.namespace, metro, want, pools, claims: s.claimsIn(metro), reserved: new Set(s.assumedAddresses) });
  const claims = [
    ...plan.newBlocks.map((b) => claimObject(metro, b.key, blockSpec(b, pools))),
    ...plan.assignments.map((a) => claimObject(metro, a.key, assignmentSpec(a, d))),
  ];
  const ips = plan.assignments.map(
    (a): DeviceIp => ({ address: a.address, network: a.network, cidr: a.prefix, gateway: a.gateway, ...(a.netmask ? { netmask: a.netmask } : {}), family: a.family, public: a.public }),
  );
  return { ips, claims };
}

function blockSpec(b: BlockClaim, pools: readonly Pool[]): IPAddressSpec {
  const pool = pools.find((p) => p.name === b.pool)!;
  return { pool: b.pool, family: b.family, public: pool.public, network: b.network, prefix: b.prefix, use: 'block', project: b.project };
}

function assignmentSpec(a: Assignment, d: DeviceView): IPAddressSpec {
  return {
    pool: a.pool,
    family: a.family,
    public: a.public,
    network: a.network,
    prefix: a.prefix,
    address: a.address,
    gateway: a.gateway,
    use: 'assignment',
    project: d.namespace,
    device: { namespace: d.namespace, name: d.name, uid: d.uid },
  };
}

function claimObject(metro: string, name: string, spec: IPAddressSpec): KubeObject {
  return {
    apiVersion: 'metalplane.dev/v1alpha1',
    kind: 'IPAddress',
    metadata: { name, labels: { 'metalplane.dev/metro': metro, ...(spec.project ? { 'metalplane.dev/project': spec.project } : {}) } },
    spec,
  };
}

/**
 * Drops the assumptions the caches have caught up with (or that no longer matter), so the assume sets stay
 * as small as the placements in flight. Mutates the maps it is given (the controller's own).
 *
 * An address is forgotten once the cache has the claim, or once the cache is current past the commit that
 * created it (`caughtUpWith`): a claim created and deleted between two placements is never seen in the cache,
 * and its address would otherwise stay assumed, and unused, until a restart.
 */
export function forgetSeenAssumptions(
  assumedHardware: Map<string, number>,
  assumedAddresses: Set<string>,
  cached: { hardwareVersion(name: string): number | undefined; hasAddress(key: string): boolean; caughtUpWith?(key: string): boolean },
): void {
  for (const [name, rv] of assumedHardware) {
    const now = cached.hardwareVersion(name);
    if (now === undefined || now > rv) assumedHardware.delete(name);
  }
  for (const key of assumedAddresses) if (cached.hasAddress(key) || cached.caughtUpWith?.(key)) assumedAddresses.delete(key);
}

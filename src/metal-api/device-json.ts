// The Device ↔ Metal API JSON translation, as pure functions over plain objects: a Device (with the catalog,
// Hardware, IP claims and keys it refers to, handed in as a `DeviceWorld`) rendered as the original's `Device`
// JSON that the SDKs decode, and a `POST /projects/{id}/devices` or `PUT /devices/{id}` body turned into a
// Device spec (or a 422 naming the field and what would be right). No I/O here: the routes (devices.ts) read
// the informer caches and write through the registry.
import type { FacilitySpec } from './catalog.js';
import { facilityJsonWith, metroJson, operatingSystemJson, planBaseJson } from './catalog.js';
import { networkPortsJson } from './networking.js';
import { DeviceActions, type DeviceActionType, type DeviceSpec, type DeviceStatus, type DeviceState } from '../kinds/device.js';
import type { HardwareSpec, HardwareStatus } from '../kinds/hardware.js';
import type { IPAddressSpec } from '../kinds/ip-address.js';
import type { IPPoolSpec } from '../kinds/ip-pool.js';
import { isProvisionableOn } from '../kinds/operating-system.js';
import type { SSHKeySpec } from '../kinds/ssh-key.js';
import type { StoredObject } from '../kinds/types.js';
import { ApiError, type ErrorCause } from '../lib/errors.js';
import { applyExclude, href, inner, isIncluded, matchesSearch, unprocessable, type Shape, cmp } from './http.js';

/** Everything a device's JSON refers to, looked up by the caller (informer caches in the routes, arrays in tests). */
export interface DeviceWorld {
  plan(slug: string): StoredObject | undefined;
  plans(): StoredObject[];
  metro(code: string): StoredObject | undefined;
  metros(): StoredObject[];
  facility(code: string): StoredObject | undefined;
  facilities(): StoredObject[];
  /** By slug (`ubuntu_24_04`). */
  operatingSystem(slug: string): StoredObject | undefined;
  operatingSystems(): StoredObject[];
  hardware(name: string): StoredObject | undefined;
  hardwareList(): StoredObject[];
  ipPools(): StoredObject[];
  /** The IPAddress claims assigned to a device (by device uid). */
  ipAssignments(deviceUid: string): StoredObject[];
  /** The `block` IPAddress claims of a project (the parent blocks of its private and IPv6 assignments). */
  projectBlocks(namespace: string): StoredObject[];
  /** The project as the spec's Project: the full object with a shape (included), else a reference `{id, href}`. */
  projectJson(namespace: string, shape?: Shape): Record<string, unknown> | undefined;
  user(name: string): StoredObject | undefined;
  /** The SSH keys the device gets (project keys by its spec, and its users' personal keys). */
  sshKeysOf(device: StoredObject): StoredObject[];
  /** The project's VirtualNetworks (VLANs), for the ports' `virtual_networks`. */
  vlans(namespace: string): StoredObject[];
  /** The device's user data as text: spec.userData or its CloudConfig's render (absent: spec.userData). */
  userData?(device: StoredObject): string | undefined;
}

export const CREATED_BY_ANNOTATION = 'metalplane.dev/created-by';

/**
 * The Metal API's field for each Device spec field: declared once, used to turn the kind's validation causes
 * (`spec.hostname`) into the names a Metal API client sent (`hostname`).
 */
export const METAL_FIELD: Partial<Record<keyof DeviceSpec, string>> = {
  hostname: 'hostname',
  metro: 'metro',
  facility: 'facility',
  plan: 'plan',
  operatingSystem: 'operating_system',
  userData: 'userdata',
  sshKeys: 'project_ssh_keys',
  sshKeyUsers: 'user_ssh_keys',
  tags: 'tags',
  hardwareReservation: 'hardware_reservation_id',
  ipxeScriptUrl: 'ipxe_script_url',
  alwaysPxe: 'always_pxe',
  locked: 'locked',
  billingCycle: 'billing_cycle',
  ipAddresses: 'ip_addresses',
  description: 'description',
  customData: 'customdata',
  terminationTime: 'termination_time',
};

/** A kind validation error (422 with `spec.…` causes) in the Metal API's field names; anything else unchanged. */
export function inMetalFields(err: unknown): unknown {
  if (!(err instanceof ApiError) || err.reason !== 'Invalid' || !err.details?.causes?.length) return err;
  const causes: ErrorCause[] = err.details.causes.map((c) => {
    const m = /^spec\.([A-Za-z]+)(.*)$/.exec(c.field ?? '');
    const metal = m ? METAL_FIELD[m[1] as keyof DeviceSpec] : undefined;
    return metal ? { ...c, field: metal + m![2] } : c;
  });
  return new ApiError(422, 'Invalid', causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join('; '), { ...err.details, causes });
}

// ---------------------------------------------------------------- state

/** The spec's `state`: the Device's own state words (all in the spec's enum); one being deleted is deprovisioning. */
export function metalState(dev: StoredObject): DeviceState {
  if (dev.metadata.deletionTimestamp) return 'deprovisioning';
  return (dev.status as DeviceStatus | undefined)?.state ?? 'queued';
}

const ACTION_NAMES: Record<DeviceActionType, string> = {
  power_on: 'Power On',
  power_off: 'Power Off',
  reboot: 'Reboot',
  reinstall: 'Reinstall',
  rescue: 'Rescue',
};

/** Why an action cannot be asked for now (the controller's rules, checked before writing), or undefined. */
export function actionProblem(dev: StoredObject, type: DeviceActionType): string | undefined {
  const st = (dev.status ?? {}) as DeviceStatus;
  const state = metalState(dev);
  const pending = dev.metadata.annotations?.['metalplane.dev/action'];
  if (pending && pending !== st.lastAction?.request) return `another action (${pending.split('/')[0]}) is still being carried out; retry when it is done`;
  if (st.lastAction?.state === 'running' || st.lastAction?.state === 'pending') return `another action (${st.lastAction.type}) is still being carried out; retry when it is done`;
  const ok = state === 'active' || state === 'inactive' || (type === 'reinstall' && state === 'failed');
  if (!ok) return `the device is ${state}; ${type} needs it active or inactive${type === 'reinstall' ? ' (or failed)' : ''}`;
  if (type === 'power_on' && state === 'active') return 'the device is already powered on (active)';
  if (type === 'power_off' && state === 'inactive') return 'the device is already powered off (inactive)';
  if (type === 'reinstall' && (dev.spec as DeviceSpec).locked) return 'the device is locked; unlock it (PUT locked: false) first';
  return undefined;
}

function availableActions(dev: StoredObject): Array<{ type: string; name: string }> {
  return DeviceActions.filter((t) => actionProblem(dev, t) === undefined).map((t) => ({ type: t, name: ACTION_NAMES[t] }));
}

// ---------------------------------------------------------------- IPs and ports

function ipv4Netmask(prefix: number): string {
  const m = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.');
}

/** Whether a.b.c.d/p lies inside n/q (IPv4 or IPv6), by prefix comparison of the expanded address bits. */
function inside(address: string, network: string, prefix: number, family: 4 | 6): boolean {
  const bits = (a: string): string => {
    if (family === 4) return a.split('.').map((x) => Number(x).toString(2).padStart(8, '0')).join('');
    const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
    const h = head ? head.split(':') : [];
    const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
    const groups = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
    return groups.map((g) => parseInt(g || '0', 16).toString(2).padStart(16, '0')).join('');
  };
  return bits(address).slice(0, prefix) === bits(network).slice(0, prefix);
}

/** One IPAddress claim of a device as the spec's IPAssignment. */
export function ipAssignmentJson(ip: StoredObject, dev: StoredObject, world: Pick<DeviceWorld, 'metro' | 'projectBlocks'>): Record<string, unknown> {
  const s = ip.spec as IPAddressSpec;
  const metroCode = ip.metadata.labels?.['metalplane.dev/metro'] ?? (dev.status as DeviceStatus | undefined)?.metro;
  const metro = metroCode ? world.metro(metroCode) : undefined;
  const block = world.projectBlocks(dev.metadata.namespace!).find((b) => {
    const bs = b.spec as IPAddressSpec;
    return bs.pool === s.pool && bs.prefix <= s.prefix && inside(s.network, bs.network, bs.prefix, s.family);
  });
  const parent = block ? (block.spec as IPAddressSpec) : s;
  return {
    id: ip.metadata.uid,
    href: href(`/ips/${ip.metadata.uid}`).href,
    type: 'IPAssignment',
    address: s.address ?? s.network,
    address_family: s.family,
    cidr: s.prefix,
    network: s.network,
    gateway: s.gateway ?? s.address ?? s.network,
    ...(s.family === 4 ? { netmask: ipv4Netmask(s.prefix) } : {}),
    public: s.public,
    // The addresses a device gets when it is created are its management addresses; a reserved one assigned
    // later is not.
    management: s.reservation === undefined,
    manageable: true,
    enabled: true,
    global_ip: false,
    created_at: ip.metadata.creationTimestamp,
    assigned_to: href(`/devices/${dev.metadata.uid}`),
    ...(metro ? { metro: metroJson(metro) } : {}),
    parent_block: {
      network: parent.network,
      cidr: parent.prefix,
      ...(s.family === 4 ? { netmask: ipv4Netmask(parent.prefix) } : {}),
      href: href(`/ips/${(block ?? ip).metadata.uid}`).href,
    },
  };
}

// ---------------------------------------------------------------- the device

function hardwareReservationJson(hw: StoredObject, world: DeviceWorld, dev: StoredObject, shape: Shape): Record<string, unknown> {
  const hs = hw.spec as HardwareSpec;
  const plan = world.plan(hs.plan);
  const fac = world.facility(hs.facility);
  const project = isIncluded(shape, 'project') ? world.projectJson(dev.metadata.namespace!, inner(shape, 'project')) : world.projectJson(dev.metadata.namespace!);
  return {
    id: hw.metadata.uid,
    href: href(`/hardware-reservations/${hw.metadata.uid}`).href,
    short_id: hw.metadata.uid.slice(0, 8),
    created_at: hw.metadata.creationTimestamp,
    provisionable: !hs.maintenance,
    spare: false,
    need_of_service: (hw.status as HardwareStatus | undefined)?.state === 'failed',
    ...(plan ? { plan: planBaseJson(plan) } : {}),
    ...(fac ? { facility: facilityJsonWith(fac, world.metro((fac.spec as { metro: string }).metro)) } : {}),
    ...(project ? { project } : {}),
  };
}

/** The SSH keys of a device as `{href}`s. */
export function sshKeyRefs(keys: StoredObject[]): Array<{ href: string }> {
  return keys.map((k) => href(`/ssh-keys/${k.metadata.uid}`));
}

/** A Device as the spec's Device JSON; `shape` is the request's include/exclude. */
export function deviceJson(dev: StoredObject, world: DeviceWorld, shape: Shape): Record<string, unknown> {
  const spec = dev.spec as DeviceSpec;
  const st = (dev.status ?? {}) as DeviceStatus;
  const id = dev.metadata.uid;
  const state = metalState(dev);
  const hw = st.hardware ? world.hardware(st.hardware) : undefined;
  const facilityCode = st.facility ?? spec.facility;
  const fac = facilityCode ? world.facility(facilityCode) : undefined;
  const metroCode = st.metro ?? spec.metro ?? (fac?.spec as FacilitySpec | undefined)?.metro;
  const metro = metroCode ? world.metro(metroCode) : undefined;
  const plan = world.plan(spec.plan);
  const os = world.operatingSystem(spec.operatingSystem);
  const reserved = spec.hardwareReservation && spec.hardwareReservation !== 'next-available' ? world.hardware(spec.hardwareReservation) : undefined;
  const creator = dev.metadata.annotations?.[CREATED_BY_ANNOTATION];
  const user = creator ? world.user(creator) : undefined;
  const ips = world.ipAssignments(id);
  const ipShape = inner(shape, 'ip_addresses');
  const updated = (dev.metadata.managedFields ?? []).map((m) => m.time ?? '').filter(Boolean).sort().pop() ?? dev.metadata.creationTimestamp;
  const projectRef = world.projectJson(dev.metadata.namespace!) ?? {};
  const out: Record<string, unknown> = {
    id,
    href: href(`/devices/${id}`).href,
    short_id: id.slice(0, 8),
    hostname: spec.hostname ?? dev.metadata.name,
    description: spec.description ?? '',
    state,
    tags: spec.tags ?? [],
    customdata: spec.customData ?? {},
    userdata: (world.userData ? world.userData(dev) : spec.userData) ?? '',
    billing_cycle: spec.billingCycle ?? 'hourly',
    always_pxe: spec.alwaysPxe === true,
    locked: spec.locked === true,
    ...(spec.ipxeScriptUrl ? { ipxe_script_url: spec.ipxeScriptUrl } : {}),
    ...(spec.terminationTime ? { termination_time: spec.terminationTime } : {}),
    ...(st.provisioningPercentage !== undefined && state !== 'active' && state !== 'inactive' ? { provisioning_percentage: st.provisioningPercentage } : {}),
    created_at: dev.metadata.creationTimestamp,
    updated_at: updated,
    network_frozen: false,
    spot_instance: false,
    user: os ? ((os.spec as { defaultUser?: string }).defaultUser ?? 'root') : 'root',
    actions: availableActions(dev),
    ...(plan ? { plan: planBaseJson(plan) } : {}),
    ...(metro ? { metro: metroJson(metro) } : {}),
    ...(fac ? { facility: facilityJsonWith(fac, world.metro((fac.spec as { metro: string }).metro)) } : {}),
    ...(os ? { operating_system: operatingSystemJson(os) } : {}),
    project: isIncluded(shape, 'project') ? (world.projectJson(dev.metadata.namespace!, inner(shape, 'project')) ?? projectRef) : projectRef,
    project_lite: href(`/projects/${(projectRef.id as string | undefined) ?? ''}`),
    ...(user ? { created_by: userLiteJson(user) } : {}),
    ...(reserved ? { hardware_reservation: hardwareReservationJson(reserved, world, dev, inner(shape, 'hardware_reservation')) } : {}),
    ip_addresses: ips.map((ip) => applyExclude(ipAssignmentJson(ip, dev, world), ipShape)),
    network_ports: networkPortsJson(dev, hw, world.vlans(dev.metadata.namespace!)),
    ssh_keys: sshKeyRefs(world.sshKeysOf(dev)),
    volumes: [],
    provisioning_events: [],
  };
  if (isIncluded(shape, 'ssh_keys')) out.ssh_keys = world.sshKeysOf(dev).map((k) => sshKeyJson(k, world));
  return applyExclude(out, shape);
}

export function userLiteJson(u: StoredObject): Record<string, unknown> {
  const s = u.spec as { email?: string; firstName?: string; lastName?: string };
  const full = [s.firstName, s.lastName].filter(Boolean).join(' ');
  return {
    id: u.metadata.uid,
    short_id: u.metadata.uid.slice(0, 8),
    href: href(`/users/${u.metadata.uid}`).href,
    email: s.email ?? '',
    first_name: s.firstName ?? '',
    last_name: s.lastName ?? '',
    full_name: full || u.metadata.name,
    created_at: u.metadata.creationTimestamp,
    updated_at: u.metadata.creationTimestamp,
  };
}

/** An SSHKey as the spec's SSHKey; the entity is its owner (a user) or its project. */
export function sshKeyJson(k: StoredObject, world: Pick<DeviceWorld, 'user' | 'projectJson'>): Record<string, unknown> {
  const s = k.spec as SSHKeySpec;
  const fp = (k.status as { fingerprint?: string } | undefined)?.fingerprint ?? '';
  const owner = s.owner ? world.user(s.owner) : undefined;
  const project = s.owner ? undefined : world.projectJson(k.metadata.namespace!);
  const entity = owner ? href(`/users/${owner.metadata.uid}`) : project ? href(`/projects/${project.id as string}`) : undefined;
  const updated = (k.metadata.managedFields ?? []).map((m) => m.time ?? '').filter(Boolean).sort().pop() ?? k.metadata.creationTimestamp;
  return {
    id: k.metadata.uid,
    href: href(`/ssh-keys/${k.metadata.uid}`).href,
    label: s.label ?? '',
    key: s.key,
    fingerprint: fp,
    tags: s.tags ?? [],
    created_at: k.metadata.creationTimestamp,
    updated_at: updated,
    ...(entity ? { entity } : {}),
  };
}

/** A core v1 Event about a device as the spec's Event. */
// ---------------------------------------------------------------- list filters

export const DEVICE_CATEGORIES = ['compute', 'storage', 'vmce', 'legacy_gen', 'current_gen'] as const;
export const DEVICE_TYPES = ['ondemand', 'spot', 'reserved'] as const;

export interface DeviceFilter {
  search?: string;
  categories?: string[];
  facility?: string;
  metro?: string;
  hostname?: string;
  reserved?: boolean;
  tag?: string;
  type?: string;
  hasTerminationTime?: boolean;
}

export function deviceMatches(dev: StoredObject, f: DeviceFilter, world: DeviceWorld): boolean {
  const spec = dev.spec as DeviceSpec;
  const st = (dev.status ?? {}) as DeviceStatus;
  const facility = st.facility ?? spec.facility;
  const metro = st.metro ?? spec.metro ?? (facility ? (world.facility(facility)?.spec as FacilitySpec | undefined)?.metro : undefined);
  const isReserved = !!spec.hardwareReservation;
  const plan = world.plan(spec.plan);
  const os = world.operatingSystem(spec.operatingSystem);
  if (f.facility !== undefined && facility !== f.facility) return false;
  if (f.metro !== undefined && metro !== f.metro) return false;
  if (f.hostname !== undefined && !(spec.hostname ?? dev.metadata.name).toLowerCase().includes(f.hostname.toLowerCase())) return false;
  if (f.reserved !== undefined && isReserved !== f.reserved) return false;
  if (f.tag !== undefined && !(spec.tags ?? []).includes(f.tag)) return false;
  if (f.type !== undefined && f.type !== (isReserved ? 'reserved' : 'ondemand')) return false;
  if (f.hasTerminationTime !== undefined && !!spec.terminationTime !== f.hasTerminationTime) return false;
  if (f.categories?.length) {
    const cats = (plan?.spec as { categories?: string[] } | undefined)?.categories ?? [];
    if (!f.categories.some((c) => cats.includes(c))) return false;
  }
  if (f.search) {
    const fields = [
      spec.hostname ?? dev.metadata.name,
      spec.description,
      dev.metadata.uid.slice(0, 8),
      ...(spec.tags ?? []),
      spec.plan,
      (plan?.spec as { name?: string } | undefined)?.name,
      facility,
      facility ? (world.facility(facility)?.spec as FacilitySpec | undefined)?.name : undefined,
      spec.operatingSystem,
      (os?.spec as { name?: string } | undefined)?.name,
      ...(st.ipAddresses ?? []).map((i) => i.address),
    ];
    if (!matchesSearch(f.search, ...fields)) return false;
  }
  return true;
}

// ---------------------------------------------------------------- create and update input

/** The body of `POST /projects/{id}/devices` (DeviceCreateInMetroInput / DeviceCreateInFacilityInput), after schema validation. */
export interface DeviceCreateBody {
  metro?: string;
  facility?: string[];
  plan: string;
  operating_system: string;
  hostname?: string;
  description?: string;
  userdata?: string;
  customdata?: Record<string, unknown>;
  tags?: string[];
  ipxe_script_url?: string;
  always_pxe?: boolean;
  ip_addresses?: Array<{ address_family?: 4 | 6; public?: boolean; cidr?: number; ip_reservations?: string[] }>;
  public_ipv4_subnet_size?: number;
  private_ipv4_subnet_size?: number;
  project_ssh_keys?: string[];
  user_ssh_keys?: string[];
  no_ssh_keys?: boolean;
  ssh_keys?: unknown[];
  locked?: boolean;
  billing_cycle?: 'hourly' | 'daily' | 'monthly' | 'yearly';
  hardware_reservation_id?: string;
  termination_time?: string;
  spot_instance?: boolean;
  spot_price_max?: number;
  features?: unknown;
  storage?: unknown;
  network_frozen?: boolean;
  firmware_set_id?: string;
}

/** What a create needs beyond the catalog: the project's keys and the users who may have their keys installed. */
export interface CreateContext {
  namespace: string;
  /** The project's SSHKey objects. */
  projectKeys: StoredObject[];
  /** Users by uid who may be named in user_ssh_keys (members of the project's organization). */
  members: StoredObject[];
}

const known = (names: string[]): string => (names.length ? names.sort().join(', ') : '(none)');

function hardwareOf(world: DeviceWorld, plan: string, where: (hs: HardwareSpec) => boolean): StoredObject[] {
  return world.hardwareList().filter((h) => {
    const hs = h.spec as HardwareSpec;
    return hs.plan === plan && where(hs);
  });
}

function isFree(h: StoredObject): boolean {
  const st = (h.status ?? {}) as HardwareStatus;
  return st.state === 'available' && !st.claim && !(h.spec as HardwareSpec).maintenance;
}

/**
 * The location of a create: `metro` (code or id), or `facility` as a prioritized list that may contain `any`.
 * The first listed facility with a free machine of the plan wins; if none has one, the first that has any such
 * machine (the device waits for it). A location with no machine of the plan at all is refused, as the
 * original refuses what it cannot ever place.
 */
function resolveLocation(body: DeviceCreateBody, world: DeviceWorld, problems: string[]): { metro?: string; facility?: string } {
  let metro: string | undefined;
  if (body.metro !== undefined) {
    const m = world.metro(body.metro) ?? world.metros().find((x) => x.metadata.uid === body.metro);
    if (!m) {
      problems.push(`metro: ${JSON.stringify(body.metro)} is not a metro; known metros: ${known(world.metros().map((x) => x.metadata.name))}`);
      return {};
    }
    metro = m.metadata.name;
  }
  const planMetros = (): string => known([...new Set(hardwareOf(world, body.plan, () => true).map((h) => (h.spec as HardwareSpec).metro))]);
  if (!body.facility || body.facility.length === 0) {
    if (metro === undefined) {
      problems.push('metro: a metro (or facility) is required');
      return {};
    }
    if (hardwareOf(world, body.plan, (hs) => hs.metro === metro).length === 0) {
      problems.push(`metro: there are no ${body.plan} machines in metro ${metro}; metros with ${body.plan} machines: ${planMetros()}`);
    }
    return { metro };
  }
  const candidates: string[] = [];
  for (const code of body.facility) {
    if (code === 'any') {
      candidates.push('any');
      continue;
    }
    const f = world.facility(code);
    if (!f) {
      problems.push(`facility: ${JSON.stringify(code)} is not a facility; known facilities: ${known(world.facilities().map((x) => x.metadata.name))}, or "any"`);
      continue;
    }
    const fm = (f.spec as FacilitySpec).metro;
    if (metro !== undefined && fm !== metro) problems.push(`facility: ${code} is in metro ${fm}, not in metro ${metro}`);
    candidates.push(code);
  }
  if (problems.length) return {};
  const inScope = (hs: HardwareSpec, c: string): boolean => (c === 'any' ? metro === undefined || hs.metro === metro : hs.facility === c);
  const pick = (ok: (h: StoredObject) => boolean): StoredObject | undefined => {
    for (const c of candidates) {
      const h = hardwareOf(world, body.plan, (hs) => inScope(hs, c)).filter(ok).sort((a, b) => cmp(a.metadata.name, b.metadata.name))[0];
      if (h) return h;
    }
    return undefined;
  };
  const hw = pick(isFree) ?? pick(() => true);
  if (!hw) {
    problems.push(`facility: there are no ${body.plan} machines in ${body.facility.join(', ')}${metro ? ` (metro ${metro})` : ''}; metros with ${body.plan} machines: ${planMetros()}`);
    return {};
  }
  const hs = hw.spec as HardwareSpec;
  // A concrete facility asked for is kept as asked; `any` becomes the facility that has the machine.
  return { facility: hs.facility, ...(metro ? { metro } : {}) };
}

/** The addresses asked for, checked against what the metro's pools assign (metalplane gives one size per pool). */
function resolveAddresses(body: DeviceCreateBody, metro: string | undefined, world: DeviceWorld, problems: string[]): DeviceSpec['ipAddresses'] {
  const pools = world.ipPools().map((p) => p.spec as IPPoolSpec).filter((p) => metro === undefined || p.metro === metro);
  const poolPrefix = (family: 4 | 6, pub: boolean): number | undefined => pools.find((p) => p.family === family && p.public === pub)?.assignPrefix;
  // The deprecated sizes: their spec defaults (31 public, 28 private) are what generated SDKs send; accepted.
  for (const [field, pub, dflt] of [['public_ipv4_subnet_size', true, 31], ['private_ipv4_subnet_size', false, 28]] as const) {
    const v = body[field];
    const have = poolPrefix(4, pub);
    if (v !== undefined && v !== dflt && v !== have) problems.push(`${field}: metalplane assigns ${pub ? 'public' : 'private'} IPv4 as /${have ?? 31}; leave ${field} out (it is deprecated) or send ${have ?? 31}`);
  }
  if (!body.ip_addresses) return undefined;
  if (body.ip_addresses.length === 0) {
    problems.push('ip_addresses: must not be empty; leave it out for the default (public IPv4, private IPv4, public IPv6)');
    return undefined;
  }
  const out: Array<{ family: 4 | 6; public: boolean }> = [];
  body.ip_addresses.forEach((a, i) => {
    const family = a.address_family ?? 4;
    const pub = a.public ?? true;
    if (a.ip_reservations?.length) {
      problems.push(`ip_addresses[${i}].ip_reservations: addresses from a reservation are assigned after the device exists (POST /devices/{id}/ips); leave it out here`);
    }
    const have = poolPrefix(family, pub);
    if (a.cidr !== undefined && have !== undefined && a.cidr !== have) {
      problems.push(`ip_addresses[${i}].cidr: metalplane assigns ${pub ? 'public' : 'private'} IPv${family} as /${have}; send ${have} or leave cidr out`);
    }
    if (family === 6 && !pub) problems.push(`ip_addresses[${i}]: private IPv6 is not offered; use address_family 6 with public true`);
    if (out.some((o) => o.family === family && o.public === pub)) problems.push(`ip_addresses[${i}]: ${pub ? 'public' : 'private'} IPv${family} is listed twice`);
    out.push({ family, public: pub });
  });
  return out;
}

/** The Device spec of a create body, or a 422 listing every problem with what would be right. */
export function deviceSpecFromCreate(body: DeviceCreateBody, cc: CreateContext, world: DeviceWorld): DeviceSpec {
  const problems: string[] = [];
  const plan = world.plan(body.plan) ?? world.plans().find((p) => p.metadata.uid === body.plan);
  if (!plan) problems.push(`plan: ${JSON.stringify(body.plan)} is not a plan; known plans: ${known(world.plans().map((p) => p.metadata.name))}`);
  const os = world.operatingSystem(body.operating_system);
  if (!os) problems.push(`operating_system: ${JSON.stringify(body.operating_system)} is not an operating system; known: ${known(world.operatingSystems().map((o) => (o.spec as { slug: string }).slug))}`);
  if (plan && os) {
    const on = (os.spec as { provisionableOn: string[] }).provisionableOn;
    if (!isProvisionableOn(on, plan.metadata.name)) problems.push(`operating_system: ${body.operating_system} cannot be installed on plan ${plan.metadata.name} (it is for ${on.join(', ')})`);
  }
  const customIpxe = os ? (os.spec as { customIpxe?: boolean }).customIpxe === true || body.operating_system === 'custom_ipxe' : false;
  if (customIpxe && !body.ipxe_script_url) {
    problems.push(
      `ipxe_script_url: operating_system ${body.operating_system} boots your iPXE script and needs its URL (http:// or https://)` +
        (body.userdata?.trimStart().startsWith('#!ipxe') ? '; metalplane does not boot an iPXE script given as user data: serve it at a URL' : ''),
    );
  }
  const loc = plan ? resolveLocation({ ...body, plan: plan.metadata.name }, world, problems) : {};
  const metroOfLoc = loc.metro ?? (loc.facility ? (world.facility(loc.facility)?.spec as FacilitySpec | undefined)?.metro : undefined);
  const ipAddresses = resolveAddresses(body, metroOfLoc, world, problems);

  let hardwareReservation: string | undefined;
  const hr = body.hardware_reservation_id;
  if (hr === 'next-available') hardwareReservation = 'next-available';
  else if (hr) {
    const hw = world.hardwareList().find((h) => h.metadata.uid === hr);
    if (!hw) problems.push(`hardware_reservation_id: ${JSON.stringify(hr)} is not a hardware reservation; send its id, "next-available", or leave it out`);
    else if (plan && (hw.spec as HardwareSpec).plan !== plan.metadata.name) problems.push(`hardware_reservation_id: the reserved machine is plan ${(hw.spec as HardwareSpec).plan}, not ${plan.metadata.name}`);
    else hardwareReservation = hw.metadata.name;
  }

  // SSH keys, as the original: none named (and no_ssh_keys false) means the project's keys and the keys of the
  // organization's members.
  let sshKeys: string[] | undefined;
  let sshKeyUsers: string[] | undefined;
  if (body.ssh_keys?.length) problems.push('ssh_keys: keys are created first (POST /projects/{id}/ssh-keys) and named in project_ssh_keys');
  const named = (body.project_ssh_keys?.length ?? 0) + (body.user_ssh_keys?.length ?? 0) > 0;
  if (body.no_ssh_keys) {
    if (named) problems.push('no_ssh_keys: true conflicts with project_ssh_keys/user_ssh_keys; send one or the other');
    sshKeys = [];
  } else if (named) {
    sshKeys = [];
    for (const id of body.project_ssh_keys ?? []) {
      const k = cc.projectKeys.find((x) => x.metadata.uid === id);
      if (!k) problems.push(`project_ssh_keys: ${JSON.stringify(id)} is not an SSH key of this project`);
      else sshKeys.push(k.metadata.name);
    }
    sshKeyUsers = [];
    for (const id of body.user_ssh_keys ?? []) {
      const u = cc.members.find((x) => x.metadata.uid === id);
      if (!u) problems.push(`user_ssh_keys: ${JSON.stringify(id)} is not a user of this project's organization`);
      else sshKeyUsers.push(u.metadata.name);
    }
  } else {
    sshKeyUsers = cc.members.map((u) => u.metadata.name);
  }

  if (body.spot_instance) problems.push('spot_instance: the spot market is not offered; send false or leave it out');
  if (body.network_frozen) problems.push('network_frozen: not supported; send false or leave it out');
  if (body.firmware_set_id) problems.push('firmware_set_id: firmware sets are not offered; leave it out');
  if (body.storage !== undefined && body.storage !== null && Object.keys(body.storage as object).length > 0) problems.push('storage: custom storage layouts are not offered; leave it out');
  if (body.termination_time !== undefined && !(Date.parse(body.termination_time) > 0)) problems.push(`termination_time: ${JSON.stringify(body.termination_time)} is not a date-time; send RFC 3339, e.g. 2030-01-02T15:04:05Z`);
  if (problems.length) throw unprocessable(...problems);

  const spec: DeviceSpec = {
    plan: plan!.metadata.name,
    operatingSystem: (os!.spec as { slug: string }).slug,
    ...loc,
    ...(body.hostname ? { hostname: body.hostname } : {}),
    ...(body.description ? { description: body.description } : {}),
    ...(body.userdata ? { userData: body.userdata } : {}),
    ...(body.customdata && Object.keys(body.customdata).length ? { customData: body.customdata } : {}),
    ...(body.tags?.length ? { tags: [...new Set(body.tags)] } : {}),
    ...(body.ipxe_script_url ? { ipxeScriptUrl: body.ipxe_script_url } : {}),
    ...(body.always_pxe ? { alwaysPxe: true } : {}),
    ...(body.locked ? { locked: true } : {}),
    ...(body.billing_cycle ? { billingCycle: body.billing_cycle } : {}),
    ...(hardwareReservation ? { hardwareReservation } : {}),
    ...(body.termination_time ? { terminationTime: new Date(body.termination_time).toISOString().replace(/\.000Z$/, 'Z') } : {}),
    ...(ipAddresses ? { ipAddresses } : {}),
    ...(sshKeys !== undefined ? { sshKeys } : {}),
    ...(sshKeyUsers?.length ? { sshKeyUsers } : {}),
  };
  return spec;
}

/** `PUT /devices/{id}` (DeviceUpdateInput, schema-validated). */
export interface DeviceUpdateBody {
  hostname?: string;
  description?: string;
  tags?: string[];
  customdata?: Record<string, unknown>;
  userdata?: string;
  locked?: boolean;
  always_pxe?: boolean;
  ipxe_script_url?: string;
  billing_cycle?: string;
  network_frozen?: boolean;
  spot_instance?: boolean;
  firmware_set_id?: string;
}

const BILLING_CYCLES = ['hourly', 'daily', 'monthly', 'yearly'];

/** The spec changes of an update body (null removes a field), or a 422. Replaces, never merges (customdata too). */
export function devicePatchFromUpdate(body: DeviceUpdateBody): Record<string, unknown> {
  const problems: string[] = [];
  if (body.billing_cycle !== undefined && !BILLING_CYCLES.includes(body.billing_cycle)) problems.push(`billing_cycle: must be one of ${BILLING_CYCLES.join(', ')}, got ${JSON.stringify(body.billing_cycle)}`);
  if (body.network_frozen) problems.push('network_frozen: not supported; send false or leave it out');
  if (body.spot_instance) problems.push('spot_instance: the spot market is not offered; send false or leave it out');
  if (body.firmware_set_id) problems.push('firmware_set_id: firmware sets are not offered; leave it out');
  if (problems.length) throw unprocessable(...problems);
  const patch: Record<string, unknown> = {};
  const set = (field: keyof DeviceSpec, v: unknown, empty: (v: unknown) => boolean): void => {
    if (v === undefined) return;
    patch[field] = empty(v) ? null : v;
  };
  const blank = (v: unknown): boolean => v === '';
  set('hostname', body.hostname, blank);
  set('description', body.description, blank);
  set('tags', body.tags && [...new Set(body.tags)], (v) => (v as string[]).length === 0);
  set('customData', body.customdata, (v) => Object.keys(v as object).length === 0);
  set('userData', body.userdata, blank);
  set('locked', body.locked, (v) => v === false);
  set('alwaysPxe', body.always_pxe, (v) => v === false);
  set('ipxeScriptUrl', body.ipxe_script_url, blank);
  set('billingCycle', body.billing_cycle, () => false);
  return patch;
}

/** A spec with changes applied: null removes a field, anything else replaces it. */
export function applySpecChanges(spec: DeviceSpec, changes: Record<string, unknown>): DeviceSpec {
  const out: Record<string, unknown> = { ...spec };
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out as unknown as DeviceSpec;
}

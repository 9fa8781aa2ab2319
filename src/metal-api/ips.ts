// IP reservations and assignments of the Metal API, over the IPAM kinds: a reservation is an IPReservation
// (allocated by the reservation controller, which claims its block unit by unit as IPAddress objects), a
// project's managed private IPv4 and IPv6 blocks are its `block` IPAddress claims, and an assignment is an
// IPAddress of use `assignment` — a device's own addresses (made by the device controller) or an address of a
// reservation assigned here with `POST /devices/{id}/ips`.
//
// No address is handed out twice. Blocks: the store's unique claim names (see src/controllers/ipam/). Addresses
// assigned from a reservation: an assignment is created in one transaction with an update of its reservation at
// the resourceVersion the overlap check read, so of two concurrent assignments from one reservation the second
// fails with a conflict, re-reads, and sees the first.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { addressKey, contains, formatAddress, ipv4Netmask, lastAddress, parseAddress, parseCidr, subnetAt, subnetCount, type Cidr } from '../controllers/ipam/addresses.js';
import { deviceKind, type DeviceSpec, type DeviceStatus } from '../kinds/device.js';
import { facilityKind } from '../kinds/facility.js';
import { IPAddressDeviceUidIndex, ipAddressDeviceUid, ipAddressKind, type IPAddressSpec } from '../kinds/ip-address.js';
import { ipPoolKind, type IPPoolSpec } from '../kinds/ip-pool.js';
import { ipReservationKind, reservationFamily, type IPReservationSpec, type IPReservationStatus, type IPReservationType } from '../kinds/ip-reservation.js';
import { metroKind } from '../kinds/metro.js';
import type { KindDeclaration, KubeObject, StoredObject } from '../kinds/types.js';
import { ApiError, isAlreadyExists, isConflict, isNotFound } from '../lib/errors.js';
import { getCondition } from '../runtime/conditions.js';
import { listQuery, metroByCode, metroJson, metroOrUnprocessable } from './catalog.js';
import type { MetalContext, Principal } from './context.js';
import { applyExclude, href, inner, isIncluded, jsonBody, paginate, q1, shapeOf, unprocessable, type Query, type Shape } from './http.js';
import type { MetalRoutes } from './index.js';
import { projectHref, projectJson } from './projects.js';

/** The kinds these routes read through the context's informers. */
export const ipKinds: KindDeclaration[] = [ipReservationKind, ipAddressKind, ipPoolKind, metroKind, facilityKind];

const noShape: Shape = { include: {}, exclude: {} };
const FieldManager = 'metal-api';
const CUSTOMDATA_ANNOTATION = 'metalplane.dev/customdata';
/**
 * Bumped by every assignment made from a reservation: the write that makes two concurrent assignments from one
 * reservation conflict (an optimistic lock on its resourceVersion). It means nothing else.
 */
const ASSIGNMENT_SERIAL_ANNOTATION = 'metalplane.dev/assignment-serial';
/** How long a reserve request waits for the reservation controller to allocate before answering `pending`. */
const ALLOCATION_WAIT_MS = 10_000;
/** At most this many CIDRs are listed by /ips/{id}/available (an IPv6 block has more /128s than can be sent). */
const MAX_AVAILABLE = 1024;
const RESERVATION_TYPES = ['global_ipv4', 'private_ipv4', 'public_ipv4', 'public_ipv6', 'vrf'] as const;

const BY_DEVICE = IPAddressDeviceUidIndex;
const BY_PROJECT = 'metal-project';
const BY_RESERVATION = 'metal-reservation';

function ipIndexes(ctx: MetalContext): void {
  const cache = ctx.informer(ipAddressKind).cache;
  if (!cache.hasIndex(BY_DEVICE)) cache.addIndex(BY_DEVICE, ipAddressDeviceUid);
  if (!cache.hasIndex(BY_PROJECT)) cache.addIndex(BY_PROJECT, (o) => ((o.spec as IPAddressSpec).project ? [(o.spec as IPAddressSpec).project!] : []));
  if (!cache.hasIndex(BY_RESERVATION)) {
    cache.addIndex(BY_RESERVATION, (o) => {
      const r = (o.spec as IPAddressSpec).reservation;
      return r ? [`${r.namespace}/${r.name}`] : [];
    });
  }
}

const spec = (ip: StoredObject): IPAddressSpec => ip.spec as IPAddressSpec;
const cidrOf = (s: { network: string; prefix: number }): Cidr => parseCidr(`${s.network}/${s.prefix}`);
const live = (o: StoredObject | undefined): StoredObject | undefined => (o && !o.metadata.deletionTimestamp ? o : undefined);

function customdata(obj: StoredObject): Record<string, unknown> {
  const v = obj.metadata.annotations?.[CUSTOMDATA_ANNOTATION];
  if (!v) return {};
  try {
    const parsed: unknown = JSON.parse(v);
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function metroRef(ctx: MetalContext, code: string | undefined): Record<string, unknown> {
  const m = code ? metroByCode(ctx, code) : undefined;
  return m ? { metro: metroJson(m) } : {};
}

/** The `assignment` claims of a reservation (addresses of it given to devices). */
function assignmentsOf(ctx: MetalContext, r: StoredObject): StoredObject[] {
  return ctx
    .informer(ipAddressKind)
    .cache.byIndex(BY_RESERVATION, `${r.metadata.namespace}/${r.metadata.name}`)
    .filter((a) => spec(a).use === 'assignment');
}

/** The project's managed block (private /25, IPv6 /56) an address of a device lies in. */
function blockOf(ctx: MetalContext, ip: StoredObject): StoredObject | undefined {
  const s = spec(ip);
  if (!s.project) return undefined;
  const c = cidrOf(s);
  return ctx
    .informer(ipAddressKind)
    .cache.byIndex(BY_PROJECT, s.project)
    .find((b) => spec(b).use === 'block' && spec(b).pool === s.pool && contains(cidrOf(spec(b)), c));
}

function reservationOfClaim(ctx: MetalContext, ip: StoredObject): StoredObject | undefined {
  const r = spec(ip).reservation;
  return r ? ctx.informer(ipReservationKind).cache.getByName(r.namespace, r.name) : undefined;
}

// ---------------------------------------------------------------- JSON

/**
 * An IPAssignment as the SDKs decode it (the device JSON's `ip_addresses[]` too): an IPAddress claim of use
 * `assignment`. A device's own addresses are `management`; its parent block is the project block it lies in,
 * the reservation it was assigned from, or (public IPv4 /31s, which come from the metro's pool directly) itself.
 */
export function ipAssignmentJson(ctx: MetalContext, ip: StoredObject, shape: Shape = noShape): Record<string, unknown> {
  const s = spec(ip);
  const reservation = reservationOfClaim(ctx, ip);
  const rst = (reservation?.status ?? {}) as IPReservationStatus;
  const block = reservation ? undefined : blockOf(ctx, ip);
  const parent = reservation && rst.network !== undefined && rst.cidr !== undefined
    ? { network: rst.network, cidr: rst.cidr, ...(rst.netmask ? { netmask: rst.netmask } : {}), href: href(`/ips/${reservation.metadata.uid}`).href }
    : block
      ? { network: spec(block).network, cidr: spec(block).prefix, ...(s.family === 4 ? { netmask: ipv4Netmask(spec(block).prefix) } : {}), href: href(`/ips/${block.metadata.uid}`).href }
      : { network: s.network, cidr: s.prefix, ...(s.family === 4 ? { netmask: ipv4Netmask(s.prefix) } : {}), href: href(`/ips/${ip.metadata.uid}`).href };
  const metro = reservation ? (reservation.spec as IPReservationSpec).metro : ip.metadata.labels?.['metalplane.dev/metro'] ?? poolMetro(ctx, s.pool);
  return applyExclude(
    {
      id: ip.metadata.uid,
      href: href(`/ips/${ip.metadata.uid}`).href,
      type: 'IPAssignment',
      address_family: s.family,
      public: s.public,
      management: !reservation,
      manageable: true,
      enabled: true,
      global_ip: false,
      address: s.address ?? s.network,
      network: s.network,
      cidr: s.prefix,
      gateway: s.gateway ?? rst.gateway ?? s.network,
      ...(s.family === 4 ? { netmask: ipv4Netmask(s.prefix) } : {}),
      created_at: ip.metadata.creationTimestamp,
      ...(s.device ? { assigned_to: href(`/devices/${s.device.uid}`) } : {}),
      parent_block: parent,
      ...metroRef(ctx, metro),
    },
    shape,
  );
}

/** A device's IP assignments (its own and those from reservations), public IPv4 first, then private, then IPv6. */
export function deviceIpAddresses(ctx: MetalContext, device: StoredObject): StoredObject[] {
  ipIndexes(ctx);
  const rank = (ip: StoredObject): number => (spec(ip).family === 4 ? (spec(ip).public ? 0 : 1) : 2);
  return ctx
    .informer(ipAddressKind)
    .cache.byIndex(BY_DEVICE, device.metadata.uid)
    .filter((ip) => spec(ip).use === 'assignment')
    .sort((a, b) => rank(a) - rank(b) || (reservationOfClaim(ctx, a) ? 1 : 0) - (reservationOfClaim(ctx, b) ? 1 : 0) || a.metadata.name.localeCompare(b.metadata.name));
}

/** The device JSON's `ip_addresses`. */
export function deviceIpAssignmentsJson(ctx: MetalContext, device: StoredObject, shape: Shape = noShape): Record<string, unknown>[] {
  return deviceIpAddresses(ctx, device).map((ip) => ipAssignmentJson(ctx, ip, shape));
}

function poolMetro(ctx: MetalContext, pool: string): string | undefined {
  return (ctx.informer(ipPoolKind).cache.getByName(undefined, pool)?.spec as IPPoolSpec | undefined)?.metro;
}

function projectField(ctx: MetalContext, ns: StoredObject | undefined, shape: Shape): Record<string, unknown> {
  if (!ns) return {};
  return { project: isIncluded(shape, 'project') ? projectJson(ctx, ns, inner(shape, 'project')) : projectHref(ns), project_lite: projectHref(ns) };
}

function assignmentsField(ctx: MetalContext, assignments: StoredObject[], shape: Shape): Record<string, unknown>[] {
  return isIncluded(shape, 'assignments') ? assignments.map((a) => ipAssignmentJson(ctx, a, inner(shape, 'assignments'))) : assignments.map((a) => href(`/ips/${a.metadata.uid}`));
}

/** A user's reservation as the spec's IPReservation. Until the controller has allocated it, it is `pending`. */
export function reservationJson(ctx: MetalContext, r: StoredObject, shape: Shape = noShape): Record<string, unknown> {
  const s = r.spec as IPReservationSpec;
  const st = (r.status ?? {}) as IPReservationStatus;
  const { family, public: isPublic } = reservationFamily(s.type);
  const allocated = st.state === 'created' && st.network !== undefined && st.cidr !== undefined;
  return applyExclude(
    {
      id: r.metadata.uid,
      href: href(`/ips/${r.metadata.uid}`).href,
      type: s.type,
      address_family: family,
      public: isPublic,
      management: false,
      manageable: true,
      global_ip: false,
      addon: true,
      bill: true,
      enabled: true,
      state: allocated ? 'created' : 'pending',
      ...(allocated
        ? { network: st.network, address: st.network, cidr: st.cidr, gateway: st.gateway, ...(st.netmask ? { netmask: st.netmask } : {}), available: href(`/ips/${r.metadata.uid}/available`).href }
        : {}),
      tags: s.tags ?? [],
      ...(s.details !== undefined ? { details: s.details } : {}),
      customdata: customdata(r),
      created_at: r.metadata.creationTimestamp,
      ...metroRef(ctx, s.metro),
      ...projectField(ctx, ctx.registryNamespace(r.metadata.namespace!), shape),
      assignments: assignmentsField(ctx, assignmentsOf(ctx, r), shape),
    },
    shape,
  );
}

/** A project's managed block (its private IPv4 /25 or IPv6 /56 in a metro, made with its first device there). */
function blockJson(ctx: MetalContext, b: StoredObject, shape: Shape = noShape): Record<string, unknown> {
  const s = spec(b);
  const c = cidrOf(s);
  const inside = ctx
    .informer(ipAddressKind)
    .cache.byIndex(BY_PROJECT, s.project ?? '')
    .filter((a) => spec(a).use === 'assignment' && spec(a).pool === s.pool && contains(c, cidrOf(spec(a))));
  return applyExclude(
    {
      id: b.metadata.uid,
      href: href(`/ips/${b.metadata.uid}`).href,
      type: blockType(s),
      address_family: s.family,
      public: s.public,
      management: true,
      manageable: false,
      global_ip: false,
      addon: false,
      bill: false,
      enabled: true,
      state: 'created',
      network: s.network,
      address: s.network,
      cidr: s.prefix,
      gateway: formatAddress(s.family, c.network + 1n),
      ...(s.family === 4 ? { netmask: ipv4Netmask(s.prefix) } : {}),
      available: href(`/ips/${b.metadata.uid}/available`).href,
      tags: [],
      customdata: customdata(b),
      created_at: b.metadata.creationTimestamp,
      ...metroRef(ctx, b.metadata.labels?.['metalplane.dev/metro'] ?? poolMetro(ctx, s.pool)),
      ...projectField(ctx, s.project ? ctx.registryNamespace(s.project) : undefined, shape),
      assignments: assignmentsField(ctx, inside, shape),
    },
    shape,
  );
}

function blockType(s: IPAddressSpec): IPReservationType {
  return s.family === 6 ? 'public_ipv6' : s.public ? 'public_ipv4' : 'private_ipv4';
}

// ---------------------------------------------------------------- look-ups by id

type IpObject = { what: 'reservation'; obj: StoredObject; project: StoredObject } | { what: 'block' | 'assignment'; obj: StoredObject; project: StoredObject };

/** What `/ips/{id}` names — a reservation, a project block or an assignment — if the caller sees its project; else 404. */
function ipById(ctx: MetalContext, p: Principal, id: string): IpObject {
  const r = live(ctx.byId(ipReservationKind, id));
  if (r) {
    const { obj, project } = ctx.objectById(p, ipReservationKind, id, 'ip address');
    return { what: 'reservation', obj, project };
  }
  const ip = ctx.byId(ipAddressKind, id);
  const s = ip ? spec(ip) : undefined;
  const ns = s?.project ? ctx.registryNamespace(s.project) : undefined;
  if (ip && s && ns && ctx.canSeeProject(p, ns) && (s.use === 'block' || s.use === 'assignment')) return { what: s.use, obj: ip, project: ns };
  throw ApiError.notFound('ip address', id);
}

function ipJson(ctx: MetalContext, o: IpObject, shape: Shape): Record<string, unknown> {
  if (o.what === 'reservation') return reservationJson(ctx, o.obj, shape);
  if (o.what === 'block') return blockJson(ctx, o.obj, shape);
  return ipAssignmentJson(ctx, o.obj, shape);
}

// ---------------------------------------------------------------- reserving

interface ReservationInput {
  type: string;
  quantity: number;
  metro?: string;
  facility?: string;
  tags?: string[];
  details?: string;
  comments?: string;
  customdata?: Record<string, unknown>;
  fail_on_approval_required?: boolean;
}

const MAX_IPV4_RESERVATION = 256;

/** The request checked against what the kinds and pools can give; a 422 saying what would be right otherwise. */
function checkReservation(ctx: MetalContext, input: ReservationInput): { metro: string; type: IPReservationType; quantity: number } {
  const t = input.type;
  if (t === 'vrf') throw unprocessable('type: VRF IP reservations are not offered by metalplane; use public_ipv4 or private_ipv4');
  if (t === 'global_ipv4') throw unprocessable('type: global_ipv4 (anycast) is not offered: metalplane has no global pools; reserve public_ipv4 in a metro');
  if (t !== 'public_ipv4' && t !== 'private_ipv4' && t !== 'public_ipv6') {
    throw unprocessable(`type: ${JSON.stringify(t)} is not an IP reservation type; use public_ipv4, private_ipv4 or public_ipv6`);
  }
  let metroCode: string;
  if (input.metro) metroCode = metroOrUnprocessable(ctx, 'metro', input.metro).metadata.name;
  else if (input.facility) {
    const f = ctx.byId(facilityKind, input.facility) ?? ctx.informer(facilityKind).cache.getByName(undefined, input.facility.toLowerCase());
    if (!f) throw unprocessable(`facility: ${JSON.stringify(input.facility)} is not a facility; known facilities: ${ctx.list(facilityKind).map((x) => x.metadata.name).sort().join(', ')}`);
    metroCode = (f.spec as { metro: string }).metro;
  } else {
    throw unprocessable(`metro: required (the metro to reserve in); known metros: ${ctx.list(metroKind).map((m) => m.metadata.name).sort().join(', ')}`);
  }
  const q = input.quantity;
  const { family } = reservationFamily(t);
  if (family === 6) throw unprocessable('type: public_ipv6 comes as each project\'s own /56 per metro (made with its first device there; see GET /projects/{id}/ips?types=public_ipv6); metalplane does not reserve more');
  if (!Number.isInteger(q) || q < 1 || q > MAX_IPV4_RESERVATION || (q & (q - 1)) !== 0) {
    throw unprocessable(`quantity: ${q} is not a power of two from 1 to ${MAX_IPV4_RESERVATION}; ask for 1, 2, 4, 8, 16, 32, 64, 128 or 256 addresses`);
  }
  return { metro: metroCode, type: t, quantity: q };
}

/** Waits (bounded) until the informer's copy of an object satisfies `done`, or it is gone. */
function waitFor(ctx: MetalContext, kind: KindDeclaration, uid: string, done: (o: StoredObject) => boolean, ms: number): Promise<StoredObject | undefined> {
  const inf = ctx.informer(kind);
  return new Promise((resolve) => {
    let settled = false;
    let remove: () => void = () => undefined;
    const finish = (o: StoredObject | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      remove();
      resolve(o);
    };
    const check = (o: StoredObject): void => {
      if (o.metadata.uid === uid && done(o)) finish(o);
    };
    const timer = setTimeout(() => finish(ctx.byId(kind, uid)), ms);
    remove = inf.addHandler({ onAdd: check, onUpdate: (_old, o) => check(o), onDelete: (o) => (o.metadata.uid === uid ? finish(undefined) : undefined) });
    const now = ctx.byId(kind, uid);
    if (now) check(now);
  });
}

const isDecided = (o: StoredObject): boolean => {
  const st = (o.status ?? {}) as IPReservationStatus;
  return st.state === 'created' || getCondition(st.conditions, 'Ready')?.status === 'False';
};

async function reserve(ctx: MetalContext, p: Principal, ns: StoredObject, input: ReservationInput): Promise<StoredObject> {
  const want = checkReservation(ctx, input);
  const annotations: Record<string, string> = input.customdata ? { [CUSTOMDATA_ANNOTATION]: JSON.stringify(input.customdata) } : {};
  let created: StoredObject | undefined;
  for (let attempt = 0; !created; attempt++) {
    const obj: KubeObject = {
      apiVersion: 'metalplane.dev/v1alpha1',
      kind: 'IPReservation',
      metadata: { name: `ip-${randomBytes(5).toString('hex')}`, namespace: ns.metadata.name, annotations },
      spec: {
        metro: want.metro,
        type: want.type,
        quantity: want.quantity,
        ...(input.tags ? { tags: input.tags } : {}),
        ...(input.details !== undefined ? { details: input.details } : {}),
      } satisfies IPReservationSpec,
    };
    try {
      created = await ctx.registry.create(ipReservationKind, obj, { fieldManager: `${FieldManager}/${p.user.metadata.name}` });
    } catch (e) {
      if (isAlreadyExists(e) && attempt < 3) continue;
      throw e;
    }
  }
  const decided = await waitFor(ctx, ipReservationKind, created.metadata.uid, isDecided, ALLOCATION_WAIT_MS);
  const st = (decided?.status ?? {}) as IPReservationStatus;
  const ready = getCondition(st.conditions, 'Ready');
  if (decided && st.state !== 'created' && ready?.status === 'False') {
    // No room (or nothing to reserve from): the original answers 422, and nothing is kept.
    await ctx.registry.delete(ipReservationKind, ns.metadata.name, created.metadata.name).catch((e: unknown) => {
      if (!isNotFound(e)) throw e;
    });
    throw unprocessable(`no ${want.quantity} ${want.type} address${want.quantity > 1 ? 'es' : ''} can be reserved in metro ${want.metro}: ${ready.message ?? ready.reason}`);
  }
  return decided ?? created;
}

// ---------------------------------------------------------------- assigning

function deviceMetro(ctx: MetalContext, dev: StoredObject): string | undefined {
  const s = dev.spec as DeviceSpec;
  const st = (dev.status ?? {}) as DeviceStatus;
  if (st.metro) return st.metro;
  if (s.metro) return s.metro;
  return s.facility ? (ctx.informer(facilityKind).cache.getByName(undefined, s.facility)?.spec as { metro?: string } | undefined)?.metro : undefined;
}

function parseAssignedCidr(address: string): Cidr {
  const text = address.trim();
  try {
    if (text.includes('/')) return parseCidr(text);
    const a = parseAddress(text);
    return { family: a.family, network: a.value, prefix: a.family === 4 ? 32 : 128 };
  } catch (e) {
    throw unprocessable(`address: ${(e as Error).message}; give an address of one of the project's reserved blocks, e.g. 147.75.80.9/32`);
  }
}

const cidrText = (c: Cidr): string => `${formatAddress(c.family, c.network)}/${c.prefix}`;
const overlaps = (a: Cidr, b: Cidr): boolean => a.family === b.family && a.network <= lastAddress(b) && b.network <= lastAddress(a);

/** One attempt: reads the caches, checks, writes the assignment with the reservation at the version it read. */
async function assignOnce(ctx: MetalContext, p: Principal, dev: StoredObject, address: string, data?: Record<string, unknown>): Promise<StoredObject> {
  const ns = dev.metadata.namespace!;
  const want = parseAssignedCidr(address);
  const reservations = ctx.list(ipReservationKind, ns).filter((r) => live(r) && (r.status as IPReservationStatus | undefined)?.state === 'created');
  const r = reservations.find((x) => {
    const st = x.status as IPReservationStatus;
    return contains(parseCidr(`${st.network}/${st.cidr}`), want);
  });
  if (!r) {
    const blocks = reservations.map((x) => (x.status as IPReservationStatus).cidrNotation).filter(Boolean);
    throw unprocessable(
      `address: ${cidrText(want)} is in none of the project's reserved blocks${blocks.length ? ` (${blocks.join(', ')})` : ' (it has none)'}; reserve one with POST /projects/{id}/ips, then assign an address of it`,
    );
  }
  const rs = r.spec as IPReservationSpec;
  const st = r.status as IPReservationStatus;
  const metro = deviceMetro(ctx, dev);
  if (metro !== rs.metro) throw unprocessable(`address: ${cidrText(want)} is reserved in metro ${rs.metro}, but the device is in ${metro ?? 'no metro yet'}; assign an address reserved in the device's metro`);
  for (const a of assignmentsOf(ctx, r)) {
    const c = cidrOf(spec(a));
    if (overlaps(c, want)) {
      const to = spec(a).device;
      throw unprocessable(`address: ${cidrText(want)} overlaps ${cidrText(c)}, already assigned${to ? ` to device ${to.name}` : ''}; unassign it first (DELETE /ips/${a.metadata.uid}) or choose a free one (GET /ips/${r.metadata.uid}/available)`);
    }
  }
  const { family, public: isPublic } = reservationFamily(rs.type);
  const serial = Number(r.metadata.annotations?.[ASSIGNMENT_SERIAL_ANNOTATION] ?? '0') + 1;
  const name = `assigned-${addressKey(want.family, want.network, want.prefix)}`;
  const claim: KubeObject = {
    apiVersion: 'metalplane.dev/v1alpha1',
    kind: 'IPAddress',
    metadata: { name, labels: { 'metalplane.dev/metro': rs.metro, 'metalplane.dev/project': ns }, ...(data ? { annotations: { [CUSTOMDATA_ANNOTATION]: JSON.stringify(data) } } : {}) },
    spec: {
      pool: st.pool!,
      family,
      public: isPublic,
      network: formatAddress(want.family, want.network),
      prefix: want.prefix,
      address: formatAddress(want.family, want.network),
      ...(st.gateway ? { gateway: st.gateway } : {}),
      use: 'assignment',
      project: ns,
      device: { namespace: ns, name: dev.metadata.name, uid: dev.metadata.uid },
      reservation: { namespace: ns, name: r.metadata.name },
    } satisfies IPAddressSpec,
  };
  const lock: KubeObject = { ...r, metadata: { ...r.metadata, annotations: { ...r.metadata.annotations, [ASSIGNMENT_SERIAL_ANNOTATION]: String(serial) } } };
  const [made] = await ctx.registry.transact(
    [
      { op: 'create', kind: ipAddressKind, object: claim },
      { op: 'update', kind: ipReservationKind, object: lock },
    ],
    { fieldManager: `${FieldManager}/${p.user.metadata.name}` },
  );
  return ctx.byId(ipAddressKind, made!.metadata.uid) ?? made!;
}

/** Assigns an address (or a CIDR) of one of the device's project's reservations to the device. */
export async function assignReservedAddress(ctx: MetalContext, p: Principal, dev: StoredObject, address: string, data?: Record<string, unknown>): Promise<StoredObject> {
  ipIndexes(ctx);
  for (let attempt = 0; ; attempt++) {
    try {
      return await assignOnce(ctx, p, dev, address, data);
    } catch (e) {
      // A concurrent assignment from the same reservation won: look again (it is in the cache now).
      if (isConflict(e) && attempt < 50) continue;
      if (isAlreadyExists(e)) throw unprocessable(`address: ${address} is already assigned`);
      throw e;
    }
  }
}

// ---------------------------------------------------------------- available

function availableIn(ctx: MetalContext, o: IpObject, prefixText: string | undefined): string[] {
  let block: Cidr;
  let taken: Cidr[];
  if (o.what === 'reservation') {
    const st = (o.obj.status ?? {}) as IPReservationStatus;
    if (st.state !== 'created') throw unprocessable('the reservation is not allocated yet (state pending); try again shortly');
    block = parseCidr(`${st.network}/${st.cidr}`);
    taken = assignmentsOf(ctx, o.obj).map((a) => cidrOf(spec(a)));
  } else if (o.what === 'block') {
    const s = spec(o.obj);
    block = cidrOf(s);
    taken = ctx
      .informer(ipAddressKind)
      .cache.byIndex(BY_PROJECT, s.project ?? '')
      .filter((a) => spec(a).use === 'assignment' && spec(a).pool === s.pool)
      .map((a) => cidrOf(spec(a)))
      .filter((c) => overlaps(c, block));
  } else {
    throw unprocessable('an IP assignment has no available addresses; ask its reservation (parent_block.href)');
  }
  const bits = block.family === 4 ? 32 : 128;
  if (prefixText === undefined || !/^[0-9]{1,3}$/.test(prefixText)) throw unprocessable(`cidr: required, the prefix length of the subnets to list, from ${block.prefix} to ${bits}`);
  const prefix = Number(prefixText);
  if (prefix < block.prefix || prefix > bits) throw unprocessable(`cidr: ${prefix} does not fit ${cidrText(block)}; use a prefix length from ${block.prefix} to ${bits}`);
  const out: string[] = [];
  const n = subnetCount(block, prefix);
  for (let i = 0n; i < n && out.length < MAX_AVAILABLE; i++) {
    const c = subnetAt(block, prefix, i);
    if (!taken.some((t) => overlaps(t, c))) out.push(cidrText(c));
  }
  return out;
}

// ---------------------------------------------------------------- routes

function listProjectIps(ctx: MetalContext, ns: StoredObject, query: Query): Array<{ what: 'reservation' | 'block'; obj: StoredObject }> {
  const types = listQuery(query, 'types', RESERVATION_TYPES);
  const reservations = ctx
    .list(ipReservationKind, ns.metadata.name)
    .filter((r) => live(r))
    .map((obj) => ({ what: 'reservation' as const, obj, type: (obj.spec as IPReservationSpec).type as string }));
  const blocks = ctx
    .informer(ipAddressKind)
    .cache.byIndex(BY_PROJECT, ns.metadata.name)
    .filter((b) => spec(b).use === 'block')
    .map((obj) => ({ what: 'block' as const, obj, type: blockType(spec(obj)) as string }));
  return [...blocks, ...reservations]
    .filter((x) => !types || types.includes(x.type))
    .sort((a, b) => a.obj.metadata.creationTimestamp.localeCompare(b.obj.metadata.creationTimestamp) || a.obj.metadata.name.localeCompare(b.obj.metadata.name));
}

interface UpdateInput {
  details?: string;
  tags?: string[];
  customdata?: Record<string, unknown>;
}

export const registerIpRoutes: MetalRoutes = (app: FastifyInstance, ctx: MetalContext) => {
  ipIndexes(ctx);

  app.get('/projects/:id/ips', async (req) => {
    const ns = ctx.project(req.metal!, (req.params as { id: string }).id);
    const query = req.query as Query;
    const shape = shapeOf(query);
    const page = paginate(listProjectIps(ctx, ns, query), query, `/projects/${ns.metadata.uid}/ips`, 250);
    return { ip_addresses: page.items.map((x) => (x.what === 'reservation' ? reservationJson(ctx, x.obj, shape) : blockJson(ctx, x.obj, shape))), meta: page.meta };
  });

  app.post('/projects/:id/ips', async (req, reply) => {
    const p = req.metal!;
    const ns = ctx.project(p, (req.params as { id: string }).id);
    ctx.requireWrite(p);
    const raw = jsonBody<Record<string, unknown>>(req);
    if (raw.type === 'vrf' || 'vrf_id' in raw || 'vrf' in raw) throw unprocessable('type: VRF IP reservations are not offered by metalplane; use public_ipv4 or private_ipv4');
    const input = jsonBody<ReservationInput>(req, 'IPReservationRequestInput');
    const r = await reserve(ctx, p, ns, input);
    return reply.code(201).send(reservationJson(ctx, ctx.byId(ipReservationKind, r.metadata.uid) ?? r, shapeOf(req.query as Query)));
  });

  app.get('/ips/:id', async (req) => {
    const { id } = req.params as { id: string };
    return ipJson(ctx, ipById(ctx, req.metal!, id), shapeOf(req.query as Query));
  });

  app.patch('/ips/:id', async (req) => {
    const p = req.metal!;
    const { id } = req.params as { id: string };
    const o = ipById(ctx, p, id);
    ctx.requireWrite(p);
    const input = jsonBody<UpdateInput>(req, 'IPAssignmentUpdateInput');
    const annotations = input.customdata !== undefined ? { [CUSTOMDATA_ANNOTATION]: JSON.stringify(input.customdata) } : undefined;
    const fieldManager = `${FieldManager}/${p.user.metadata.name}`;
    if (o.what === 'reservation') {
      const patch: Record<string, unknown> = {};
      if (input.tags !== undefined) patch.tags = input.tags;
      if (input.details !== undefined) patch.details = input.details;
      await ctx.registry.mergePatch(ipReservationKind, o.obj.metadata.namespace, o.obj.metadata.name, { metadata: annotations ? { annotations } : {}, spec: patch }, { fieldManager });
    } else {
      if (input.tags !== undefined || input.details !== undefined) {
        throw unprocessable(`${input.tags !== undefined ? 'tags' : 'details'}: only IP reservations have tags and details; this is ${o.what === 'block' ? "a project's managed block" : 'an IP assignment'} (customdata can be set)`);
      }
      if (annotations) await ctx.registry.mergePatch(ipAddressKind, undefined, o.obj.metadata.name, { metadata: { annotations } }, { fieldManager });
    }
    return ipJson(ctx, ipById(ctx, p, id), shapeOf(req.query as Query));
  });

  app.delete('/ips/:id', async (req, reply) => {
    const p = req.metal!;
    const { id } = req.params as { id: string };
    const o = ipById(ctx, p, id);
    ctx.requireWrite(p);
    if (o.what === 'block') throw unprocessable(`${spec(o.obj).network}/${spec(o.obj).prefix} is the project's own ${blockType(spec(o.obj))} block in its metro; it goes with the project`);
    if (o.what === 'assignment') {
      if (!spec(o.obj).reservation) {
        throw unprocessable(`${spec(o.obj).address ?? spec(o.obj).network} is an address the device was provisioned with; it is released with the device (only addresses assigned from a reservation can be unassigned)`);
      }
      await ctx.registry.delete(ipAddressKind, undefined, o.obj.metadata.name, { preconditions: { uid: o.obj.metadata.uid } }).catch((e: unknown) => {
        if (!isNotFound(e)) throw e;
      });
      return reply.code(204).send();
    }
    for (let attempt = 0; ; attempt++) {
      const r = ctx.byId(ipReservationKind, id);
      if (!live(r)) return reply.code(204).send();
      const assigned = assignmentsOf(ctx, r!);
      if (assigned.length) {
        throw unprocessable(`the reservation has ${assigned.length} assigned address${assigned.length > 1 ? 'es' : ''} (${assigned.slice(0, 5).map((a) => `${spec(a).network}/${spec(a).prefix}`).join(', ')}); unassign them first (DELETE /ips/{assignment id})`);
      }
      try {
        // At the version the check read: an assignment made meanwhile bumps it, and the check runs again.
        await ctx.registry.delete(ipReservationKind, r!.metadata.namespace, r!.metadata.name, { preconditions: { uid: r!.metadata.uid, resourceVersion: r!.metadata.resourceVersion } });
        // The controller releases the block and drops its finalizer; to clients the reservation is gone now.
        return reply.code(204).send();
      } catch (e) {
        if (isConflict(e) && attempt < 20) continue;
        if (isNotFound(e)) return reply.code(204).send();
        throw e;
      }
    }
  });

  app.get('/ips/:id/available', async (req) => {
    const { id } = req.params as { id: string };
    const o = ipById(ctx, req.metal!, id);
    return { available: availableIn(ctx, o, q1(req.query as Query, 'cidr')) };
  });

  app.post('/devices/:id/ips', async (req, reply) => {
    const p = req.metal!;
    const { id } = req.params as { id: string };
    const { obj: dev } = ctx.objectById(p, deviceKind, id, 'device');
    ctx.requireWrite(p);
    const input = jsonBody<{ address: string; customdata?: Record<string, unknown> }>(req, 'IPAssignmentInput');
    if (dev.metadata.deletionTimestamp) throw unprocessable(`device ${id} is being deleted; addresses cannot be assigned to it`);
    const ip = await assignReservedAddress(ctx, p, dev, input.address, input.customdata);
    return reply.code(201).send(ipAssignmentJson(ctx, ip, shapeOf(req.query as Query)));
  });
};

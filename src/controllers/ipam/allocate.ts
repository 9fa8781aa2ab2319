// Allocation planning: which ranges of which IPPools a device's addresses, a project's blocks and a user's IP
// reservation get, given what is already claimed. Pure: the caller reads pools and claims (IPAddress objects)
// and creates one claim per returned key; the store's unique names turn a race between two planners into a
// conflict and a retry, never a double allocation.
//
// Free space is found from the claimed ranges, not by enumerating units: the claims that overlap a pool are
// sorted once by start, and one pass finds the lowest aligned gap. CIDR ranges are either nested or disjoint,
// so a claim of any size (an assignment, a project block, a reservation, a stray) blocks exactly what it covers.
import { ApiError } from '../../lib/errors.js';
import { validatePool, type Pool } from './pools.js';
import {
  addressKey,
  blockSize,
  cidrString,
  familyBits,
  formatAddress,
  ipv4Netmask,
  lastAddress,
  parseAddress,
  parseAddressKey,
  parseCidr,
  subnetAt,
  subnetCount,
  type Cidr,
  type Family,
} from './addresses.js';

export { validatePool, validatePools, type Pool, type PoolProblem } from './pools.js';

/** What an IPAddress claims; `kind` is its `spec.use`. */
export type ClaimKind = 'assignment' | 'block' | 'reservation';

/** What is already taken, from existing IPAddress objects. */
export interface Claim {
  key: string;
  pool: string;
  family: Family;
  network: string;
  prefix: number;
  /** For block claims: the project owning the block. */
  project?: string;
  kind: ClaimKind;
}

export interface Assignment {
  key: string;
  pool: string;
  family: Family;
  public: boolean;
  /** e.g. 147.75.80.16 */
  network: string;
  prefix: number;
  /** The device's address: network+1 for /31 and /127, network+2 for larger ranges, the network itself for /32 and /128. */
  address: string;
  /**
   * network+0 for /31 and /127 (Equinix Metal's convention), network+1 for larger ranges. A /32 or /128 has no
   * on-link gateway: it is reported as the address itself, as Equinix does, and must not get a default route.
   */
  gateway: string;
  /** IPv4 only, dotted. */
  netmask?: string;
  /** The key of the project block it lies in (pools with `projectPrefix`). */
  block?: string;
}

export interface BlockClaim {
  key: string;
  pool: string;
  family: Family;
  network: string;
  prefix: number;
  project: string;
}

export interface Plan {
  assignments: Assignment[];
  newBlocks: BlockClaim[];
}


/** No free range for a request (422): every candidate pool is full, or none exists. Retrying helps only once
 * addresses are released or a pool is added. */
export class IpExhaustedError extends ApiError {
  constructor(
    message: string,
    readonly metro: string,
    readonly family: Family,
    readonly isPublic: boolean,
    /** The prefix length that was asked for. */
    readonly prefix: number,
    /** The pools that were tried, in order. */
    readonly pools: string[],
    readonly project?: string,
  ) {
    super(422, 'Invalid', message, { causes: [{ reason: 'IpExhausted', message }] });
    this.name = 'IpExhaustedError';
  }
}

/** At most this many addresses are reserved at once in IPv4 (a /24), as the IPReservation kind allows. */
export const MAX_RESERVATION_IPV4_ADDRESSES = 256;
/** At most this many assignment-sized units are claimed for one reservation (it bounds `unitKeys`). */
export const MAX_RESERVATION_UNITS = 256;

// ---- the index of claimed ranges --------------------------------------------------------------------------

/** A claimed range, inclusive at both ends. */
interface Span {
  start: bigint;
  end: bigint;
}

interface PoolIndex {
  pool: Pool;
  cidr: Cidr;
  /** Claimed ranges overlapping the pool, sorted by start. */
  spans: Span[];
  /** The project's blocks in this pool (pools with projectPrefix), lowest first. */
  projectBlocks: Cidr[];
}

const byStart = (a: Span, b: Span): number => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0);

function candidatePools(pools: Pool[], metro: string, family: Family, isPublic: boolean): Pool[] {
  return pools
    .filter((p) => p.metro === metro && p.family === family && p.public === isPublic)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function poolCidr(pool: Pool): Cidr {
  const problems = validatePool(pool);
  if (problems.length > 0) {
    throw ApiError.internal(`IPPool "${pool.name}" is invalid: ${problems.map((p) => `${p.field}: ${p.message}`).join(', ')}`);
  }
  return parseCidr(pool.cidr);
}

/**
 * Claims parsed before, by family, network and prefix (frozen: they are shared). Every placement indexes every
 * claimed range of its metro again, and parsing those addresses into numbers was half of that: about 2 % of the
 * server's CPU while 1000 devices provision.
 */
const parsedClaims = new Map<string, Cidr>();

function claimCidr(claim: Claim): Cidr {
  // Only well-typed claims are remembered: a corrupt one (a prefix or family of another type) must still throw.
  const memo = typeof claim.family === 'number' && typeof claim.prefix === 'number' && typeof claim.network === 'string' ? `${claim.family} ${claim.network}/${claim.prefix}` : undefined;
  const known = memo === undefined ? undefined : parsedClaims.get(memo);
  if (known) return known;
  try {
    const a = parseAddress(claim.network);
    if (a.family !== claim.family) throw new Error(`network ${claim.network} is not IPv${claim.family}`);
    const prefixOk = Number.isInteger(claim.prefix) && claim.prefix >= 0 && claim.prefix <= familyBits(a.family);
    if (!prefixOk || (a.value & (blockSize(a.family, claim.prefix) - 1n)) !== 0n) {
      throw new Error(`${claim.network}/${claim.prefix} is not a network`);
    }
    const c: Cidr = Object.freeze({ family: a.family, network: a.value, prefix: claim.prefix });
    if (memo !== undefined) {
      if (parsedClaims.size >= 65_536) parsedClaims.clear();
      parsedClaims.set(memo, c);
    }
    return c;
  } catch (e) {
    throw ApiError.internal(`IP claim "${claim.key}" is corrupt: ${(e as Error).message}`);
  }
}

/**
 * One pass over the claims (and reserved keys) for the given pools. A claim belongs to every pool whose range
 * it overlaps, whatever its `pool` field says: the addresses are the truth.
 */
function indexPools(pools: Pool[], claims: Iterable<Claim>, reserved: Set<string> | undefined, project: string | undefined): PoolIndex[] {
  const indexes: PoolIndex[] = pools.map((pool) => ({ pool, cidr: poolCidr(pool), spans: [], projectBlocks: [] }));
  const families = new Set(indexes.map((ix) => ix.cidr.family));
  const place = (c: Cidr, claim?: Claim): void => {
    const span = { start: c.network, end: lastAddress(c) };
    for (const ix of indexes) {
      if (ix.cidr.family !== c.family || span.end < ix.cidr.network || span.start > lastAddress(ix.cidr)) continue;
      ix.spans.push(span);
      const isOwnBlock =
        claim !== undefined &&
        claim.kind === 'block' &&
        project !== undefined &&
        claim.project === project &&
        c.prefix === ix.pool.projectPrefix &&
        c.network >= ix.cidr.network;
      if (isOwnBlock) ix.projectBlocks.push(c);
    }
  };
  for (const claim of claims) {
    if (families.has(claim.family)) place(claimCidr(claim), claim);
  }
  for (const key of reserved ?? []) {
    // Keys that are not addressKeys cannot name a range, so they cannot collide with one we plan either.
    const c = parseAddressKey(key);
    if (c && families.has(c.family)) place(c);
  }
  for (const ix of indexes) {
    ix.spans.sort(byStart);
    ix.projectBlocks.sort((a, b) => (a.network < b.network ? -1 : a.network > b.network ? 1 : 0));
  }
  return indexes;
}

/** Records a range planned in this call, so that a later request in the same call does not take it again. */
function addSpan(indexes: PoolIndex[], c: Cidr): void {
  const span = { start: c.network, end: lastAddress(c) };
  for (const ix of indexes) {
    if (ix.cidr.family !== c.family || span.end < ix.cidr.network || span.start > lastAddress(ix.cidr)) continue;
    ix.spans.splice(lowerBound(ix.spans, span.start), 0, span);
  }
}

/** The index of the first span starting at or after `start`. */
function lowerBound(spans: Span[], start: bigint): number {
  let lo = 0;
  let hi = spans.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (spans[mid].start < start) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The lowest `size`-aligned start in [from, to] whose `size` addresses overlap no considered span, or undefined.
 * Spans are sorted by start, so the scan stops at the first gap: O(spans before it), never O(units).
 */
function lowestFree(spans: Span[], firstIndex: number, from: bigint, to: bigint, size: bigint, consider: (s: Span) => boolean): bigint | undefined {
  let cur = from;
  for (let i = firstIndex; i < spans.length; i++) {
    const s = spans[i];
    if (cur + size - 1n > to) return undefined;
    if (s.start > cur + size - 1n) break;
    if (s.end < cur || !consider(s)) continue;
    cur = ((s.end + size) / size) * size; // the next aligned start after s
  }
  return cur + size - 1n <= to ? cur : undefined;
}

const everySpan = (): boolean => true;

/** The lowest free unit of `prefix` anywhere in the pool. */
function lowestFreeInPool(ix: PoolIndex, prefix: number): Cidr | undefined {
  const network = lowestFree(ix.spans, 0, ix.cidr.network, lastAddress(ix.cidr), blockSize(ix.cidr.family, prefix), everySpan);
  return network === undefined ? undefined : { family: ix.cidr.family, network, prefix };
}

/**
 * The lowest free unit of `prefix` inside `block`, counting every claim but the block's own. A claim that
 * contains the block (a reservation laid over it, a block of an older projectPrefix) leaves it no room. The scan
 * starts at the pool's lowest span because such a claim may start before the block.
 */
function lowestFreeInBlock(ix: PoolIndex, block: Cidr, prefix: number): Cidr | undefined {
  const end = lastAddress(block);
  const notTheBlock = (s: Span): boolean => !(s.start === block.network && s.end === end);
  const network = lowestFree(ix.spans, 0, block.network, end, blockSize(block.family, prefix), notTheBlock);
  return network === undefined ? undefined : { family: block.family, network, prefix };
}

// ---- device addresses -------------------------------------------------------------------------------------

const describe = (family: Family, isPublic: boolean): string => `${isPublic ? 'public' : 'private'} IPv${family}`;
const poolLabel = (pool: Pool): string => `pool ${pool.name} (${pool.cidr})`;

function assignmentOf(pool: Pool, unit: Cidr, block?: Cidr): Assignment {
  const bits = familyBits(unit.family);
  const n = unit.network;
  const [gateway, address] = unit.prefix === bits ? [n, n] : unit.prefix === bits - 1 ? [n, n + 1n] : [n + 1n, n + 2n];
  return {
    key: addressKey(unit.family, n, unit.prefix),
    pool: pool.name,
    family: unit.family,
    public: pool.public,
    network: formatAddress(unit.family, n),
    prefix: unit.prefix,
    address: formatAddress(unit.family, address),
    gateway: formatAddress(unit.family, gateway),
    ...(unit.family === 4 ? { netmask: ipv4Netmask(unit.prefix) } : {}),
    ...(block ? { block: addressKey(block.family, block.network, block.prefix) } : {}),
  };
}

/** Why a pool could not give a device an assignment, for the error message. */
function fullReason(ix: PoolIndex, project: string): string {
  const { pool, cidr } = ix;
  if (pool.projectPrefix === undefined) {
    return `${poolLabel(pool)} has all ${subnetCount(cidr, pool.assignPrefix)} assignments taken`;
  }
  const perBlock = 1n << BigInt(pool.assignPrefix - pool.projectPrefix);
  const blocks = ix.projectBlocks.map(cidrString);
  const own =
    blocks.length === 0
      ? `project ${project} has no block`
      : `project ${project}'s ${blocks.length === 1 ? `block ${blocks[0]} has` : `blocks ${blocks.join(', ')} have`} all ${perBlock} assignments taken`;
  return `${poolLabel(pool)}: ${own} and all ${subnetCount(cidr, pool.projectPrefix)} /${pool.projectPrefix} project blocks are taken`;
}

/**
 * For one device in `metro` of `project`: one assignment per entry of `want` (e.g. public IPv4, private IPv4,
 * IPv6), each the lowest free unit of the first pool (by name) of that metro, family and publicness that has
 * room. In a pool with `projectPrefix` the assignment comes from the project's lowest block with room, or from
 * a new block (the lowest free one), returned in `newBlocks`.
 *
 * `reserved` holds keys to treat as taken. To plan several devices in one batch, pass the earlier plans'
 * claims (`planClaims`) along with `claims`, so that a block planned for the project is reused, not doubled.
 *
 * Throws IpExhaustedError when a wanted address cannot be had.
 */
export function planDeviceAddresses(input: {
  project: string;
  metro: string;
  want: Array<{ family: Family; public: boolean }>;
  pools: Pool[];
  claims: Iterable<Claim>;
  reserved?: Set<string>;
}): Plan {
  const { project, metro } = input;
  const relevant = input.pools.filter((p) => p.metro === metro && input.want.some((w) => w.family === p.family && w.public === p.public));
  const indexes = indexPools(relevant, input.claims, input.reserved, project);
  const plan: Plan = { assignments: [], newBlocks: [] };

  for (const want of input.want) {
    const candidates = candidatePools(relevant, metro, want.family, want.public);
    const tried = candidates.map((p) => indexes.find((ix) => ix.pool === p)).filter((ix): ix is PoolIndex => ix !== undefined);
    const assignPrefixes = [...new Set(candidates.map((p) => p.assignPrefix))];
    const what = `${describe(want.family, want.public)}${assignPrefixes.length === 1 ? ` /${assignPrefixes[0]}` : ''}`;
    const fail = (detail: string): IpExhaustedError =>
      new IpExhaustedError(
        `no free ${what} in metro ${metro}${tried.some((ix) => ix.pool.projectPrefix !== undefined) ? ` for project ${project}` : ''}: ${detail}`,
        metro,
        want.family,
        want.public,
        assignPrefixes[0] ?? familyBits(want.family) - 1,
        candidates.map((p) => p.name),
        project,
      );
    if (tried.length === 0) throw fail(`no ${describe(want.family, want.public)} pool is configured there`);

    let done = false;
    for (const ix of tried) {
      const { pool } = ix;
      if (pool.projectPrefix === undefined) {
        const unit = lowestFreeInPool(ix, pool.assignPrefix);
        if (!unit) continue;
        plan.assignments.push(assignmentOf(pool, unit));
        addSpan(indexes, unit);
        done = true;
        break;
      }
      for (const block of ix.projectBlocks) {
        const unit = lowestFreeInBlock(ix, block, pool.assignPrefix);
        if (!unit) continue;
        plan.assignments.push(assignmentOf(pool, unit, block));
        addSpan(indexes, unit);
        done = true;
        break;
      }
      if (done) break;
      const block = lowestFreeInPool(ix, pool.projectPrefix);
      if (!block) continue;
      const newBlock: BlockClaim = {
        key: addressKey(block.family, block.network, block.prefix),
        pool: pool.name,
        family: block.family,
        network: formatAddress(block.family, block.network),
        prefix: block.prefix,
        project,
      };
      plan.newBlocks.push(newBlock);
      addSpan(indexes, block);
      ix.projectBlocks.push(block);
      // A fresh block is empty: its first unit is free.
      const unit: Cidr = { family: block.family, network: block.network, prefix: pool.assignPrefix };
      plan.assignments.push(assignmentOf(pool, unit, block));
      addSpan(indexes, unit);
      done = true;
      break;
    }
    if (!done) throw fail(tried.map((ix) => fullReason(ix, project)).join('; '));
  }
  return plan;
}

/** The claims a plan will create, to pass to the next plan of the same batch. */
export function planClaims(plan: Plan): Claim[] {
  return [
    ...plan.newBlocks.map((b): Claim => ({ ...b, kind: 'block' })),
    ...plan.assignments.map((a): Claim => ({ key: a.key, pool: a.pool, family: a.family, network: a.network, prefix: a.prefix, kind: 'assignment' })),
  ];
}

// ---- IP reservations --------------------------------------------------------------------------------------

export interface ReservationPlan {
  /** The reserved block: prefix = 32 (or 128) − log2(quantity), aligned to its size. Recorded on the
   * IPReservation; the claims to create are `unitKeys`. */
  block: BlockClaim;
  /**
   * The keys of every assignPrefix-sized unit the block covers, all free: claiming them is what keeps device
   * assignments and reservations from overlapping, through the store's unique names. A block smaller than one
   * unit (a /32 in a /31 pool) takes that whole unit, so `unitKeys` is then the unit's key and the rest of the
   * unit stays unused. When the block is exactly one unit, its key is that unit's key.
   */
  unitKeys: string[];
}

function quantityError(message: string): ApiError {
  return ApiError.badRequest(message, [{ reason: 'FieldValueInvalid', field: 'quantity', message }]);
}

/**
 * A user's IP reservation (Equinix Metal's "request IP block"): `quantity` addresses (a power of two) from the
 * first pool (by name) of the metro, family and publicness with room, at the lowest free aligned position.
 * Only pools without `projectPrefix` are used: in the others every project's addresses already come as a block
 * of its own (the managed private IPv4 and IPv6 reservations, planned by planDeviceAddresses).
 *
 * Limits: at most 256 IPv4 addresses (a /24), and at most 256 assignment units in any family (a /119 of /127
 * units in IPv6), which bounds `unitKeys`.
 */
export function planReservation(input: {
  project: string;
  metro: string;
  family: Family;
  public: boolean;
  quantity: number | bigint;
  pools: Pool[];
  claims: Iterable<Claim>;
  reserved?: Set<string>;
}): ReservationPlan {
  const { project, metro, family } = input;
  const bits = familyBits(family);
  const q = input.quantity;
  if (typeof q === 'number' ? !Number.isInteger(q) || q < 1 : q < 1n) {
    throw quantityError(`quantity ${q} is not a positive whole number of addresses`);
  }
  const quantity = BigInt(q);
  if ((quantity & (quantity - 1n)) !== 0n) {
    throw quantityError(`quantity ${quantity} is not a power of two; ask for 1, 2, 4, 8, … addresses`);
  }
  const log2 = quantity.toString(2).length - 1;
  if (family === 4 && quantity > BigInt(MAX_RESERVATION_IPV4_ADDRESSES)) {
    throw quantityError(`quantity ${quantity} is too large: at most ${MAX_RESERVATION_IPV4_ADDRESSES} IPv4 addresses (a /24) can be reserved at once`);
  }
  if (log2 > bits) throw quantityError(`quantity ${quantity} is more addresses than IPv${family} has`);
  const prefix = bits - log2;

  const candidates = candidatePools(input.pools, metro, family, input.public);
  const eligible = candidates.filter((p) => p.projectPrefix === undefined);
  const fail = (detail: string): IpExhaustedError =>
    new IpExhaustedError(
      `no free ${describe(family, input.public)} /${prefix} in metro ${metro}: ${detail}`,
      metro,
      family,
      input.public,
      prefix,
      eligible.map((p) => p.name),
      project,
    );
  if (candidates.length === 0) throw fail(`no ${describe(family, input.public)} pool is configured there`);
  if (eligible.length === 0) {
    throw fail(`its pools (${candidates.map((p) => p.name).join(', ')}) give each project a block of its own, so there is none to reserve from`);
  }

  const indexes = indexPools(eligible, input.claims, input.reserved, undefined);
  const reasons: string[] = [];
  for (const ix of indexes) {
    const { pool, cidr } = ix;
    if (prefix < cidr.prefix) {
      reasons.push(`${poolLabel(pool)} is smaller than a /${prefix}`);
      continue;
    }
    // Claim whole units: a block smaller than a unit takes the unit it lies in.
    const claimPrefix = Math.min(prefix, pool.assignPrefix);
    const units = 1n << BigInt(pool.assignPrefix - claimPrefix);
    if (units > BigInt(MAX_RESERVATION_UNITS)) {
      reasons.push(`${poolLabel(pool)} would need ${units} /${pool.assignPrefix} units for a /${prefix}, more than ${MAX_RESERVATION_UNITS}`);
      continue;
    }
    const free = lowestFreeInPool(ix, claimPrefix);
    if (!free) {
      reasons.push(`${poolLabel(pool)} has no free aligned /${claimPrefix} of ${subnetCount(cidr, claimPrefix)}`);
      continue;
    }
    const unitKeys: string[] = [];
    for (let i = 0n; i < units; i++) {
      const u = subnetAt(free, pool.assignPrefix, i);
      unitKeys.push(addressKey(u.family, u.network, u.prefix));
    }
    return {
      block: {
        key: addressKey(family, free.network, prefix),
        pool: pool.name,
        family,
        network: formatAddress(family, free.network),
        prefix,
        project,
      },
      unitKeys,
    };
  }
  throw fail(reasons.join('; '));
}

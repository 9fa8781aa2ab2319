// Allocation planning: which ranges of which IPPools a device's addresses, a project's blocks and a user's IP
// reservation get, given what is already claimed. The planners do no I/O: the caller gives pools and claims
// (IPAddress objects, or a ClaimIndex kept up to date with them) and creates one claim per returned key; the
// store's unique names turn a race between two planners into a conflict and a retry, never a double allocation.
//
// Free space is found from the claimed ranges, not by enumerating units: the ranges are kept sorted and merged
// into runs, and a search steps from run to run to the lowest aligned gap. CIDR ranges are either nested or
// disjoint, so a claim of any size (an assignment, a project block, a reservation, a stray) blocks exactly what
// it covers.
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

const byStart = (a: Span, b: Span): number => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0);

/** The index of the first of `spans` (sorted by `field`) whose `field` is at or after `at`. */
function firstAtOrAfter(spans: readonly Span[], field: 'start' | 'end', at: bigint): number {
  let lo = 0;
  let hi = spans.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (spans[mid][field] < at) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Adds `s` to `runs` (disjoint, sorted, none adjacent), merging it with every run it overlaps or touches. */
function mergeRun(runs: Span[], s: Span): void {
  const lo = firstAtOrAfter(runs, 'end', s.start - 1n);
  let end = lo;
  while (end < runs.length && runs[end].start <= s.end + 1n) end++;
  if (end === lo) {
    runs.splice(lo, 0, { start: s.start, end: s.end });
    return;
  }
  const first = runs[lo];
  const last = runs[end - 1];
  runs.splice(lo, end - lo, { start: first.start < s.start ? first.start : s.start, end: last.end > s.end ? last.end : s.end });
}

/**
 * The claimed ranges of one family: sorted by start, and merged into runs (disjoint, sorted) so that a search
 * for free space steps over a whole run of claims at once — a packed pool is one run, found by binary search.
 * Ranges are CIDRs, so two of them are nested or disjoint; that keeps a removal local: only the removed range's
 * own addresses can become free, and only where no range nested in it (or containing it) still covers them.
 */
class SpanSet {
  private spans: Span[] = [];
  private runs: Span[] | undefined = [];

  constructor(private readonly bits: number) {}

  /** Many at once (one sort). */
  load(spans: Span[]): void {
    this.spans = spans.concat(this.spans).sort(byStart);
    this.runs = undefined;
  }

  add(s: Span): void {
    this.spans.splice(firstAtOrAfter(this.spans, 'start', s.start + 1n), 0, s);
    if (this.runs) mergeRun(this.runs, s);
  }

  /** Removes one span equal to `s`. */
  remove(s: Span): void {
    let i = firstAtOrAfter(this.spans, 'start', s.start);
    while (i < this.spans.length && this.spans[i].start === s.start && this.spans[i].end !== s.end) i++;
    if (i >= this.spans.length || this.spans[i].start !== s.start) return;
    this.spans.splice(i, 1);
    const runs = this.runs;
    if (!runs || this.covers(s)) return;
    // Split the run that held it: its addresses before and after `s` are still covered by other ranges (none of
    // which overlaps `s` without nesting in it), and inside `s` what the ranges nested in it cover.
    const r = firstAtOrAfter(runs, 'end', s.start);
    const run = runs[r];
    if (run === undefined || run.start > s.start) return;
    runs.splice(r, 1);
    if (run.start < s.start) mergeRun(runs, { start: run.start, end: s.start - 1n });
    if (s.end < run.end) mergeRun(runs, { start: s.end + 1n, end: run.end });
    for (const nested of this.startingIn(s.start, s.end)) mergeRun(runs, nested);
  }

  /**
   * Whether a range equals or contains the CIDR `s`: one starting where `s` or a supernet of it starts, and
   * reaching its end. With `otherThan`, ranges equal to `s` do not count.
   */
  covers(s: Span, otherThan = false): boolean {
    for (let size = s.end - s.start + 1n; size <= 1n << BigInt(this.bits); size <<= 1n) {
      const start = s.start - (s.start % size);
      for (let i = firstAtOrAfter(this.spans, 'start', start); i < this.spans.length && this.spans[i].start === start; i++) {
        const o = this.spans[i];
        if (o.end >= s.end && !(otherThan && o.start === s.start && o.end === s.end)) return true;
      }
    }
    return false;
  }

  /** A run of claims that overlaps [first, last], if any. */
  runOver(first: bigint, last: bigint): Span | undefined {
    const runs = this.merged();
    const r = runs[firstAtOrAfter(runs, 'end', first)];
    return r !== undefined && r.start <= last ? r : undefined;
  }

  /** The spans starting in [from, to], in order. */
  startingIn(from: bigint, to: bigint): Span[] {
    const out: Span[] = [];
    for (let i = firstAtOrAfter(this.spans, 'start', from); i < this.spans.length && this.spans[i].start <= to; i++) out.push(this.spans[i]);
    return out;
  }

  private merged(): Span[] {
    if (!this.runs) {
      const runs: Span[] = [];
      for (const s of this.spans) {
        const last = runs[runs.length - 1];
        if (last !== undefined && s.start <= last.end + 1n) {
          if (s.end > last.end) runs[runs.length - 1] = { start: last.start, end: s.end };
        } else runs.push({ start: s.start, end: s.end });
      }
      this.runs = runs;
    }
    return this.runs;
  }
}

interface Indexed {
  claim: Claim;
  cidr: Cidr;
  span: Span;
}

const spanOf = (c: Cidr): Span => ({ start: c.network, end: lastAddress(c) });

const sameClaim = (a: Claim, b: Claim): boolean =>
  a.pool === b.pool && a.family === b.family && a.network === b.network && a.prefix === b.prefix && a.kind === b.kind && a.project === b.project;

/**
 * What is claimed, kept up to date claim by claim (a scheduler follows the IPAddress objects with one), so that
 * planning an address costs about the same with 30 000 claims as with 30. Every planning before re-read, parsed
 * and sorted all the claimed ranges of the metro: 2 ms per device at 1000 devices, 32 ms at 10 000.
 *
 * Project blocks are kept apart from the other claims: the search inside a block skips the block itself.
 * A claim that is not well-formed is remembered as corrupt; planning in its pool then refuses (500) instead of
 * allocating over it. A claim of no known family names no range and is left out, as before.
 */
export class ClaimIndex {
  private readonly byKey = new Map<string, Indexed>();
  private readonly sets: Record<Family, { blocks: SpanSet; others: SpanSet }> = {
    4: { blocks: new SpanSet(32), others: new SpanSet(32) },
    6: { blocks: new SpanSet(128), others: new SpanSet(128) },
  };
  /** Block claims by project, by key. */
  private readonly blocks = new Map<string, Map<string, Cidr>>();
  /** Claims that are not well-formed, by key, with their pool and what is wrong. */
  private readonly corrupt = new Map<string, { pool: unknown; error: Error }>();

  /** An index of `claims`, built in one pass and one sort. */
  static of(claims: Iterable<Claim>): ClaimIndex {
    const ix = new ClaimIndex();
    const latest = new Map<string, Claim>();
    for (const claim of claims) latest.set(claim.key, claim);
    const batch: Record<Family, { blocks: Span[]; others: Span[] }> = { 4: { blocks: [], others: [] }, 6: { blocks: [], others: [] } };
    for (const claim of latest.values()) {
      const e = ix.entry(claim);
      if (e) batch[e.cidr.family][claim.kind === 'block' ? 'blocks' : 'others'].push(e.span);
    }
    for (const f of [4, 6] as const) {
      ix.sets[f].blocks.load(batch[f].blocks);
      ix.sets[f].others.load(batch[f].others);
    }
    return ix;
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Adds a claim, or replaces the one of the same key. */
  set(claim: Claim): void {
    const prev = this.byKey.get(claim.key);
    if (prev && sameClaim(prev.claim, claim)) return;
    this.delete(claim.key);
    const e = this.entry(claim);
    if (e) this.sets[e.cidr.family][claim.kind === 'block' ? 'blocks' : 'others'].add(e.span);
  }

  delete(key: string): void {
    this.corrupt.delete(key);
    const e = this.byKey.get(key);
    if (!e) return;
    this.byKey.delete(key);
    this.sets[e.cidr.family][e.claim.kind === 'block' ? 'blocks' : 'others'].remove(e.span);
    if (e.claim.kind === 'block' && e.claim.project !== undefined) {
      const mine = this.blocks.get(e.claim.project);
      mine?.delete(key);
      if (mine?.size === 0) this.blocks.delete(e.claim.project);
    }
  }

  /** Records a claim in every map but the span sets (the caller adds its span); undefined when it names no range. */
  private entry(claim: Claim): Indexed | undefined {
    if (claim.family !== 4 && claim.family !== 6) return undefined;
    let cidr: Cidr;
    try {
      cidr = claimCidr(claim);
    } catch (e) {
      this.corrupt.set(claim.key, { pool: claim.pool, error: e as Error });
      return undefined;
    }
    const e: Indexed = { claim: { ...claim }, cidr, span: spanOf(cidr) };
    this.byKey.set(claim.key, e);
    if (claim.kind === 'block' && claim.project !== undefined) {
      let mine = this.blocks.get(claim.project);
      if (!mine) this.blocks.set(claim.project, (mine = new Map()));
      mine.set(claim.key, cidr);
    }
    return e;
  }

  /** Throws the error of the first corrupt claim of one of `pools`. */
  checkPools(pools: ReadonlySet<string>): void {
    for (const c of this.corrupt.values()) if (pools.has(c.pool as string)) throw c.error;
  }

  /** The project's blocks of `prefix` inside [from, to], lowest first. */
  projectBlocks(project: string, family: Family, prefix: number, from: bigint, to: bigint): Cidr[] {
    const out: Cidr[] = [];
    for (const c of this.blocks.get(project)?.values() ?? []) {
      if (c.family === family && c.prefix === prefix && c.network >= from && c.network <= to) out.push(c);
    }
    return out.sort((a, b) => (a.network < b.network ? -1 : a.network > b.network ? 1 : 0));
  }

  /** The span sets of one family (for the planner in this module). */
  setsOf(family: Family): { blocks: SpanSet; others: SpanSet } {
    return this.sets[family];
  }
}

const indexOf = (claims: Iterable<Claim> | ClaimIndex): ClaimIndex => (claims instanceof ClaimIndex ? claims : ClaimIndex.of(claims));

/** A pool as one planning sees it: its range and the project's blocks in it. */
interface PoolView {
  pool: Pool;
  cidr: Cidr;
  /** The project's blocks in this pool (pools with projectPrefix), lowest first. */
  projectBlocks: Cidr[];
}

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
 * Claims parsed before, by family, network and prefix (frozen: they are shared). Parsing every claimed address
 * into numbers was about 2 % of the server's CPU while 1000 devices provision, when each placement parsed them all.
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
 * One planning call: the index, plus what this call must also treat as taken — the reserved keys (placements
 * decided but not in the caches yet) and the ranges the call itself has planned so far.
 */
class Planning {
  private readonly extra: Array<Span & { family: Family }> = [];

  constructor(
    readonly index: ClaimIndex,
    reserved: Iterable<string> | undefined,
  ) {
    // Keys that are not addressKeys cannot name a range, so they cannot collide with one we plan either.
    for (const key of reserved ?? []) {
      const c = parseAddressKey(key);
      if (c) this.taken(c);
    }
  }

  /** Records a range planned in this call, so that a later request in the same call does not take it again. */
  taken(c: Cidr): void {
    this.extra.push({ ...spanOf(c), family: c.family });
  }

  view(pool: Pool, project: string | undefined): PoolView {
    const cidr = poolCidr(pool);
    return {
      pool,
      cidr,
      projectBlocks: project === undefined || pool.projectPrefix === undefined ? [] : this.index.projectBlocks(project, cidr.family, pool.projectPrefix, cidr.network, lastAddress(cidr)),
    };
  }

  /** The lowest free unit of `prefix` anywhere in the pool. */
  lowestFreeInPool(ix: PoolView, prefix: number): Cidr | undefined {
    const { family } = ix.cidr;
    const { blocks, others } = this.index.setsOf(family);
    const extra = this.extraOf(family);
    const network = lowestFree(ix.cidr.network, lastAddress(ix.cidr), blockSize(family, prefix), [
      (first, last) => others.runOver(first, last),
      (first, last) => blocks.runOver(first, last),
      (first, last) => overlapping(extra, first, last),
    ]);
    return network === undefined ? undefined : { family, network, prefix };
  }

  /**
   * The lowest free unit of `prefix` inside `block`, counting every claim but the block's own. A claim that
   * contains the block (a reservation laid over it, a block of an older projectPrefix) leaves it no room.
   */
  lowestFreeInBlock(block: Cidr, prefix: number): Cidr | undefined {
    const { family } = block;
    const end = lastAddress(block);
    const notTheBlock = (s: Span): boolean => !(s.start === block.network && s.end === end);
    const { blocks, others } = this.index.setsOf(family);
    // Other blocks: nested or disjoint, so one that overlaps this one lies inside it or contains it.
    if (blocks.covers({ start: block.network, end }, true)) return undefined;
    const inside = blocks.startingIn(block.network, end).filter(notTheBlock);
    const extra = this.extraOf(family).filter(notTheBlock);
    const network = lowestFree(block.network, end, blockSize(family, prefix), [
      (first, last) => others.runOver(first, last),
      (first, last) => overlapping(inside, first, last),
      (first, last) => overlapping(extra, first, last),
    ]);
    return network === undefined ? undefined : { family, network, prefix };
  }

  private extraOf(family: Family): Span[] {
    return this.extra.filter((s) => s.family === family);
  }
}

/** A span of `spans` overlapping [first, last], if any. */
function overlapping(spans: readonly Span[], first: bigint, last: bigint): Span | undefined {
  for (const s of spans) if (s.end >= first && s.start <= last) return s;
  return undefined;
}

/**
 * The lowest `size`-aligned start in [from, to] whose `size` addresses meet no obstacle, or undefined. Each
 * obstacle answers with one of its spans overlapping a range; the search then resumes at the first aligned start
 * after that span, since every aligned start up to its end overlaps it. `from` is aligned to `size`.
 */
function lowestFree(from: bigint, to: bigint, size: bigint, obstacles: Array<(first: bigint, last: bigint) => Span | undefined>): bigint | undefined {
  let cur = from;
  for (;;) {
    const last = cur + size - 1n;
    if (last > to) return undefined;
    let hit: Span | undefined;
    for (const o of obstacles) if ((hit = o(cur, last)) !== undefined) break;
    if (hit === undefined) return cur;
    cur = ((hit.end + size) / size) * size; // the next aligned start after the span
  }
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
function fullReason(ix: PoolView, project: string): string {
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
  /** What is claimed: the claims, or an index kept up to date with them. */
  claims: Iterable<Claim> | ClaimIndex;
  reserved?: Set<string>;
}): Plan {
  const { project, metro } = input;
  const relevant = input.pools.filter((p) => p.metro === metro && input.want.some((w) => w.family === p.family && w.public === p.public));
  const planning = new Planning(indexOf(input.claims), input.reserved);
  planning.index.checkPools(new Set(relevant.map((p) => p.name)));
  const views = relevant.map((pool) => planning.view(pool, project));
  const plan: Plan = { assignments: [], newBlocks: [] };

  for (const want of input.want) {
    const candidates = candidatePools(relevant, metro, want.family, want.public);
    const tried = candidates.map((p) => views.find((ix) => ix.pool === p)).filter((ix): ix is PoolView => ix !== undefined);
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
        const unit = planning.lowestFreeInPool(ix, pool.assignPrefix);
        if (!unit) continue;
        plan.assignments.push(assignmentOf(pool, unit));
        planning.taken(unit);
        done = true;
        break;
      }
      for (const block of ix.projectBlocks) {
        const unit = planning.lowestFreeInBlock(block, pool.assignPrefix);
        if (!unit) continue;
        plan.assignments.push(assignmentOf(pool, unit, block));
        planning.taken(unit);
        done = true;
        break;
      }
      if (done) break;
      const block = planning.lowestFreeInPool(ix, pool.projectPrefix);
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
      planning.taken(block);
      ix.projectBlocks.push(block);
      // A fresh block is empty: its first unit is free.
      const unit: Cidr = { family: block.family, network: block.network, prefix: pool.assignPrefix };
      plan.assignments.push(assignmentOf(pool, unit, block));
      planning.taken(unit);
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
  /** What is claimed: the claims, or an index kept up to date with them. */
  claims: Iterable<Claim> | ClaimIndex;
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

  const planning = new Planning(indexOf(input.claims), input.reserved);
  planning.index.checkPools(new Set(eligible.map((p) => p.name)));
  const reasons: string[] = [];
  for (const ix of eligible.map((pool) => planning.view(pool, undefined))) {
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
    const free = planning.lowestFreeInPool(ix, claimPrefix);
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

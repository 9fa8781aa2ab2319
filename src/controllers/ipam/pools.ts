// IP pools as the allocator sees them, and the checks a set of pools must pass before anything is allocated
// from it: a valid range of its family, assignment and project prefixes that fit, no two pools sharing an
// address (claim names derive from addresses alone, so two pools sharing addresses would share claims).
import { familyBits, lastAddress, parseCidr, type Cidr, type Family } from './addresses.js';

export interface Pool {
  name: string;
  metro: string;
  family: Family;
  public: boolean;
  cidr: string;
  /** Prefix length of one device assignment, e.g. 31 (IPv4) or 127 (IPv6). */
  assignPrefix: number;
  /**
   * When set: each project first gets a block of this prefix from the pool (e.g. 25 for private IPv4, 56 for
   * IPv6), and devices get assignments inside their project's block.
   */
  projectPrefix?: number;
}

export interface PoolProblem {
  field: 'name' | 'metro' | 'family' | 'cidr' | 'assignPrefix' | 'projectPrefix';
  message: string;
}

export function validatePool(pool: Pool): PoolProblem[] {
  const problems: PoolProblem[] = [];
  if (!pool.name) problems.push({ field: 'name', message: 'must not be empty' });
  if (!pool.metro) problems.push({ field: 'metro', message: 'must not be empty' });
  if (pool.family !== 4 && pool.family !== 6) {
    problems.push({ field: 'family', message: `${String(pool.family)} is not an address family; use 4 or 6` });
    return problems;
  }
  let cidr: Cidr;
  try {
    cidr = parseCidr(pool.cidr);
  } catch (e) {
    problems.push({ field: 'cidr', message: (e as Error).message });
    return problems;
  }
  if (cidr.family !== pool.family) {
    problems.push({ field: 'family', message: `is ${pool.family}, but cidr ${pool.cidr} is IPv${cidr.family}` });
    return problems;
  }
  const bits = familyBits(cidr.family);
  const assignOk = Number.isInteger(pool.assignPrefix) && pool.assignPrefix >= cidr.prefix && pool.assignPrefix <= bits;
  if (!assignOk) {
    problems.push({
      field: 'assignPrefix',
      message: `${pool.assignPrefix} must be a whole number from ${cidr.prefix} (the whole pool ${pool.cidr}) to ${bits}, e.g. ${bits - 1}`,
    });
  }
  if (pool.projectPrefix !== undefined) {
    const p = pool.projectPrefix;
    if (!Number.isInteger(p) || p < cidr.prefix || p > bits) {
      problems.push({ field: 'projectPrefix', message: `${p} must be a whole number from ${cidr.prefix} (the whole pool ${pool.cidr}) to ${bits}` });
    } else if (assignOk && p > pool.assignPrefix) {
      problems.push({
        field: 'projectPrefix',
        message: `a project block of /${p} cannot hold an assignment of /${pool.assignPrefix}; use a projectPrefix of at most ${pool.assignPrefix}`,
      });
    }
  }
  return problems;
}

/** `validatePool` for each pool, plus what only the set shows: duplicate names and overlapping ranges (claim
 * names derive from addresses alone, so two pools sharing addresses would share claims). */
export function validatePools(pools: Pool[]): Array<PoolProblem & { pool: string }> {
  const out: Array<PoolProblem & { pool: string }> = [];
  const valid: Array<{ pool: Pool; cidr: Cidr }> = [];
  const seen = new Set<string>();
  for (const pool of pools) {
    const problems = validatePool(pool);
    for (const p of problems) out.push({ pool: pool.name, ...p });
    if (seen.has(pool.name)) out.push({ pool: pool.name, field: 'name', message: `pool "${pool.name}" is declared twice` });
    seen.add(pool.name);
    if (problems.length === 0) valid.push({ pool, cidr: parseCidr(pool.cidr) });
  }
  for (let i = 0; i < valid.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = valid[i];
      const b = valid[j];
      if (a.cidr.family === b.cidr.family && a.cidr.network <= lastAddress(b.cidr) && b.cidr.network <= lastAddress(a.cidr)) {
        out.push({ pool: a.pool.name, field: 'cidr', message: `${a.pool.cidr} overlaps pool "${b.pool.name}" (${b.pool.cidr}); pools must not share addresses` });
      }
    }
  }
  return out;
}

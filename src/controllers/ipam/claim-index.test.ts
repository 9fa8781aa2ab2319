// The claim index against a brute-force planner that tries every unit in order, on small pools with random
// claims of every kind (assignments, project blocks of several prefixes, reservations laid over blocks,
// stray claims across pool borders) and random reserved keys; and an index kept up to date by random adds,
// replacements and deletes against one built afresh from the claims that remain.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { addressKey, blockSize, formatAddress, lastAddress, parseAddressKey, parseCidr, type Cidr, type Family } from './addresses.js';
import { ClaimIndex, IpExhaustedError, planDeviceAddresses, planReservation, type Claim, type ClaimKind, type Pool } from './allocate.js';

// Small pools, so that random claims fill them and every search meets full and fragmented space.
const pools: Pool[] = [
  { name: 'a-public-v4', metro: 'da', family: 4, public: true, cidr: '192.0.2.0/26', assignPrefix: 31 },
  { name: 'b-public-v4', metro: 'da', family: 4, public: true, cidr: '192.0.2.64/27', assignPrefix: 31 },
  { name: 'private-v4', metro: 'da', family: 4, public: false, cidr: '10.0.0.0/25', assignPrefix: 31, projectPrefix: 28 },
  { name: 'v6', metro: 'da', family: 6, public: true, cidr: '2001:db8::/120', assignPrefix: 127, projectPrefix: 124 },
];
const want = [
  { family: 4 as const, public: true },
  { family: 4 as const, public: false },
  { family: 6 as const, public: true },
];
const projects = ['p1', 'p2', 'p3'];

interface Span {
  start: bigint;
  end: bigint;
}
const spanOf = (c: Cidr): Span => ({ start: c.network, end: lastAddress(c) });
const overlaps = (a: Span, b: Span): boolean => a.start <= b.end && b.start <= a.end;

/** The plan, found by trying every aligned unit in order: what planDeviceAddresses promises. */
function bruteForce(project: string, claims: Claim[], reserved: string[]): { assignments: string[]; newBlocks: string[] } | 'exhausted' {
  const taken: Array<Span & { family: Family }> = [];
  const ownBlocks = new Map<string, Cidr[]>();
  for (const c of claims) {
    const cidr = parseCidr(`${c.network}/${c.prefix}`);
    taken.push({ ...spanOf(cidr), family: c.family });
    if (c.kind === 'block' && c.project === project) ownBlocks.set(c.pool, [...(ownBlocks.get(c.pool) ?? []), cidr]);
  }
  for (const k of reserved) {
    const c = parseAddressKey(k)!;
    taken.push({ ...spanOf(c), family: c.family });
  }
  const free = (c: Cidr, except?: Span): boolean =>
    !taken.some((t) => t.family === c.family && overlaps(t, spanOf(c)) && !(except && t.start === except.start && t.end === except.end));
  const units = function* (within: Cidr, prefix: number): Generator<Cidr> {
    for (let n = within.network; n <= lastAddress(within); n += blockSize(within.family, prefix)) yield { family: within.family, network: n, prefix };
  };
  const out = { assignments: [] as string[], newBlocks: [] as string[] };
  const take = (c: Cidr, list: string[]): void => {
    list.push(addressKey(c.family, c.network, c.prefix));
    taken.push({ ...spanOf(c), family: c.family });
  };
  for (const w of want) {
    let done = false;
    for (const pool of pools.filter((p) => p.family === w.family && p.public === w.public).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const cidr = parseCidr(pool.cidr);
      if (pool.projectPrefix === undefined) {
        const unit = [...units(cidr, pool.assignPrefix)].find((u) => free(u));
        if (unit) (take(unit, out.assignments), (done = true));
      } else {
        const mine = (ownBlocks.get(pool.name) ?? []).filter((b) => b.prefix === pool.projectPrefix).sort((a, b) => (a.network < b.network ? -1 : 1));
        for (const b of mine) {
          const unit = [...units(b, pool.assignPrefix)].find((u) => free(u, spanOf(b)));
          if (unit) {
            take(unit, out.assignments);
            done = true;
            break;
          }
        }
        if (!done) {
          const block = [...units(cidr, pool.projectPrefix)].find((b) => free(b));
          if (block) {
            take(block, out.newBlocks);
            ownBlocks.set(pool.name, [...(ownBlocks.get(pool.name) ?? []), block]);
            take({ ...block, prefix: pool.assignPrefix }, out.assignments);
            done = true;
          }
        }
      }
      if (done) break;
    }
    if (!done) return 'exhausted';
  }
  return out;
}

function planned(project: string, claims: Iterable<Claim> | ClaimIndex, reserved: string[]): { assignments: string[]; newBlocks: string[] } | 'exhausted' {
  try {
    const p = planDeviceAddresses({ project, metro: 'da', want, pools, claims, reserved: new Set(reserved) });
    return { assignments: p.assignments.map((a) => a.key), newBlocks: p.newBlocks.map((b) => b.key) };
  } catch (e) {
    if (e instanceof IpExhaustedError) return 'exhausted';
    throw e;
  }
}

/** A random claim: any aligned range of a pool, or across the border of a pool, of any kind. */
const claimArb: fc.Arbitrary<Claim> = fc
  .record({
    pool: fc.constantFrom(...pools),
    prefixOffset: fc.integer({ min: 0, max: 6 }),
    index: fc.nat(),
    kind: fc.constantFrom<ClaimKind>('assignment', 'assignment', 'assignment', 'block', 'reservation'),
    project: fc.constantFrom(...projects),
    // Rarely: a range wider than its pool (it covers the pool and its neighbour, so everything there is taken).
    wider: fc.integer({ min: 0, max: 19 }).map((n) => n === 0),
  })
  .map(({ pool, prefixOffset, index, kind, project, wider }) => {
    const cidr = parseCidr(pool.cidr);
    const bits = pool.family === 4 ? 32 : 128;
    // Blocks get the pool's projectPrefix mostly, and sometimes another prefix (an older projectPrefix).
    const prefix = wider ? Math.max(cidr.prefix - 1, 0) : kind === 'block' && pool.projectPrefix !== undefined && prefixOffset < 4 ? pool.projectPrefix : Math.min(bits, pool.assignPrefix - prefixOffset + 1);
    const size = blockSize(cidr.family, prefix);
    const count = prefix >= cidr.prefix ? blockSize(cidr.family, cidr.prefix) / size : 1n;
    const network = (cidr.network & ~(size - 1n)) + (BigInt(index) % count) * size;
    return {
      key: addressKey(cidr.family, network, prefix),
      pool: pool.name,
      family: cidr.family,
      network: formatAddress(cidr.family, network),
      prefix,
      kind,
      ...(kind === 'block' ? { project } : {}),
    };
  });

const reservedArb = fc.array(claimArb.map((c) => c.key), { maxLength: 4 });

describe('ClaimIndex', () => {
  it('plans what trying every unit in order plans, with any claims and reserved keys', () => {
    fc.assert(
      fc.property(fc.array(claimArb, { maxLength: 60 }), reservedArb, fc.constantFrom(...projects), (claims, reserved, project) => {
        assert.deepEqual(planned(project, claims, reserved), bruteForce(project, [...new Map(claims.map((c) => [c.key, c])).values()], reserved));
      }),
      { numRuns: 1500 },
    );
  });

  it('kept up to date by adds, replacements and deletes, plans as one built afresh from what remains', () => {
    const op = fc.oneof(claimArb.map((c) => ({ set: c })), fc.nat().map((n) => ({ del: n })));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), reservedArb, fc.constantFrom(...projects), (ops, reserved, project) => {
        const index = new ClaimIndex();
        const live = new Map<string, Claim>();
        for (const o of ops) {
          if ('set' in o) {
            index.set(o.set);
            live.set(o.set.key, o.set);
          } else if (live.size > 0) {
            const key = [...live.keys()][o.del % live.size]!;
            index.delete(key);
            live.delete(key);
          }
        }
        assert.equal(index.size, live.size);
        const expected = bruteForce(project, [...live.values()], reserved);
        assert.deepEqual(planned(project, index, reserved), expected);
        assert.deepEqual(planned(project, ClaimIndex.of(live.values()), reserved), expected);
        // Planning leaves the index as it was: the same plan again.
        assert.deepEqual(planned(project, index, reserved), expected);
      }),
      { numRuns: 1000 },
    );
  });

  it('a reservation planned from a kept index is the one planned from the claims', () => {
    fc.assert(
      fc.property(fc.array(claimArb, { maxLength: 40 }), fc.constantFrom(1, 2, 4, 8, 16), (claims, quantity) => {
        const index = new ClaimIndex();
        for (const c of claims) index.set(c);
        const plan = (from: Iterable<Claim> | ClaimIndex): unknown => {
          try {
            return planReservation({ project: 'p1', metro: 'da', family: 4, public: true, quantity, pools, claims: from });
          } catch (e) {
            if (e instanceof IpExhaustedError) return 'exhausted';
            throw e;
          }
        };
        assert.deepEqual(plan(index), plan(claims));
      }),
      { numRuns: 500 },
    );
  });

  it('a project block inside a wider block (an older projectPrefix) has no room: the project gets a new block', () => {
    const block = (network: string, prefix: number, project: string): Claim => ({ key: addressKey(4, parseCidr(`${network}/${prefix}`).network, prefix), pool: 'private-v4', family: 4, network, prefix, kind: 'block', project });
    const claims = [block('10.0.0.0', 28, 'p1'), block('10.0.0.0', 27, 'p2')];
    for (const from of [claims, ClaimIndex.of(claims)]) {
      const p = planned('p1', from, []);
      assert.deepEqual(p, bruteForce('p1', claims, []));
      assert.ok(p !== 'exhausted');
      assert.deepEqual(p.newBlocks.filter((k) => k.startsWith('ipv4-')), [addressKey(4, parseCidr('10.0.0.32/28').network, 28)]);
    }
  });

  it('a corrupt claim refuses planning in its pool until it is replaced or deleted', () => {
    const index = new ClaimIndex();
    const good: Claim = { key: 'ipv4-192.0.2.0-31', pool: 'a-public-v4', family: 4, network: '192.0.2.0', prefix: 31, kind: 'assignment' };
    index.set({ ...good, network: '192.0.2.1' });
    assert.throws(() => planned('p1', index, []), /IP claim "ipv4-192\.0\.2\.0-31" is corrupt: 192\.0\.2\.1\/31 is not a network/);
    index.set(good);
    assert.deepEqual(planned('p1', index, []), bruteForce('p1', [good], []));
    index.set({ ...good, prefix: '31' as unknown as number });
    assert.throws(() => planned('p1', index, []), /is corrupt/);
    index.delete(good.key);
    assert.equal(index.size, 0);
    assert.deepEqual(planned('p1', index, []), bruteForce('p1', [], []));
  });
});

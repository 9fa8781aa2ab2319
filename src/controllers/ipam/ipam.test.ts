import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../../lib/errors.js';
import { isDns1123Subdomain } from '../../kinds/validation.js';
import {
  AddressError,
  addressKey,
  cidrString,
  contains,
  formatAddress,
  ipv4Netmask,
  parseAddress,
  parseAddressKey,
  parseCidr,
  subnetAt,
  subnetCount,
  subnets,
  type Family,
} from './addresses.js';
import {
  IpExhaustedError,
  planClaims,
  planDeviceAddresses,
  planReservation,
  validatePool,
  validatePools,
  type Claim,
  type ClaimKind,
  type Pool,
} from './allocate.js';

// ---- fixtures ---------------------------------------------------------------------------------------------

const publicV4: Pool = { name: 'da-public-v4', metro: 'da', family: 4, public: true, cidr: '147.75.80.0/24', assignPrefix: 31 };
const privateV4: Pool = { name: 'da-private-v4', metro: 'da', family: 4, public: false, cidr: '10.70.0.0/16', assignPrefix: 31, projectPrefix: 25 };
const publicV6: Pool = { name: 'da-v6', metro: 'da', family: 6, public: true, cidr: '2604:1380:4641::/48', assignPrefix: 127, projectPrefix: 56 };
const svPublicV4: Pool = { name: 'sv-public-v4', metro: 'sv', family: 4, public: true, cidr: '147.75.90.0/24', assignPrefix: 31 };
const pools = [publicV4, privateV4, publicV6, svPublicV4];

const allThree = [
  { family: 4 as const, public: true },
  { family: 4 as const, public: false },
  { family: 6 as const, public: true },
];
const publicOnly = [{ family: 4 as const, public: true }];

/** A claim on `cidr` (e.g. "147.75.80.0/31"), keyed as the allocator keys it. */
function claim(cidr: string, pool: string, kind: ClaimKind = 'assignment', project?: string): Claim {
  const c = parseCidr(cidr);
  return {
    key: addressKey(c.family, c.network, c.prefix),
    pool,
    family: c.family,
    network: formatAddress(c.family, c.network),
    prefix: c.prefix,
    kind,
    ...(project ? { project } : {}),
  };
}

/** Claims on the first `n` units of `prefix` in `poolCidr`, skipping the indexes in `except`. */
function fill(pool: Pool, prefix: number, n: number, except: number[] = []): Claim[] {
  const out: Claim[] = [];
  const base = parseCidr(pool.cidr);
  for (let i = 0; i < n; i++) {
    if (except.includes(i)) continue;
    out.push(claim(cidrString(subnetAt(base, prefix, i)), pool.name));
  }
  return out;
}

const keyOf = (cidr: string): string => {
  const c = parseCidr(cidr);
  return addressKey(c.family, c.network, c.prefix);
};

const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

// ---- addresses --------------------------------------------------------------------------------------------

describe('parseAddress and formatAddress', () => {
  const cases: Array<{ name: string; input: string; family: Family; value?: bigint; canonical: string }> = [
    { name: 'IPv4', input: '192.0.2.1', family: 4, value: 0xc0000201n, canonical: '192.0.2.1' },
    { name: 'IPv4 zero', input: '0.0.0.0', family: 4, value: 0n, canonical: '0.0.0.0' },
    { name: 'IPv4 all ones', input: '255.255.255.255', family: 4, value: 0xffffffffn, canonical: '255.255.255.255' },
    { name: 'IPv6 compressed', input: '2001:db8::1', family: 6, value: 0x20010db8000000000000000000000001n, canonical: '2001:db8::1' },
    { name: 'IPv6 unspecified', input: '::', family: 6, value: 0n, canonical: '::' },
    { name: 'IPv6 loopback', input: '::1', family: 6, value: 1n, canonical: '::1' },
    { name: 'IPv6 trailing run', input: '1::', family: 6, value: 1n << 112n, canonical: '1::' },
    { name: 'IPv6 tie: the first run is compressed', input: '2001:db8:0:0:1:0:0:1', family: 6, canonical: '2001:db8::1:0:0:1' },
    { name: 'IPv6 the longest run is compressed', input: '2001:0:0:1:0:0:0:1', family: 6, canonical: '2001:0:0:1::1' },
    { name: 'IPv6 a single zero group is not compressed', input: 'fe80::1:2:3:4:5:6', family: 6, canonical: 'fe80:0:1:2:3:4:5:6' },
    { name: 'IPv6 fully expanded with leading zeros', input: '2001:0db8:0000:0000:0000:0000:0000:0001', family: 6, canonical: '2001:db8::1' },
    { name: 'IPv6 upper case is lowered', input: '2001:DB8::ABCD', family: 6, canonical: '2001:db8::abcd' },
    { name: 'IPv6 no zeros', input: '1:2:3:4:5:6:7:8', family: 6, canonical: '1:2:3:4:5:6:7:8' },
    { name: 'IPv4-mapped in mixed notation', input: '::ffff:192.0.2.1', family: 6, value: 0xffffc0000201n, canonical: '::ffff:192.0.2.1' },
    { name: 'IPv4-mapped written in hex', input: '::ffff:c000:201', family: 6, canonical: '::ffff:192.0.2.1' },
    { name: 'embedded IPv4 outside ::ffff:0:0/96 stays hex', input: '64:ff9b::192.0.2.1', family: 6, canonical: '64:ff9b::c000:201' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const a = parseAddress(c.input);
      assert.equal(a.family, c.family);
      if (c.value !== undefined) assert.equal(a.value, c.value);
      const formatted = formatAddress(a.family, a.value);
      assert.equal(formatted, c.canonical);
      assert.deepEqual(parseAddress(formatted), a, 'the canonical form parses back to the same address');
    });
  }

  it('formatAddress refuses values outside the family', () => {
    assert.throws(() => formatAddress(4, 1n << 32n), RangeError);
    assert.throws(() => formatAddress(6, -1n), RangeError);
  });
});

describe('parseAddress rejects bad input with a reason', () => {
  const cases: Array<{ name: string; input: string; message: RegExp }> = [
    { name: 'empty', input: '', message: /^"" is not an IP address; expected IPv4 like 192\.0\.2\.1 or IPv6 like 2001:db8::1$/ },
    { name: 'a word', input: 'gateway', message: /"gateway" is not an IP address/ },
    { name: 'three octets', input: '10.0.0', message: /"10\.0\.0" is not a valid IPv4 address: expected four decimal numbers/ },
    { name: 'octet over 255', input: '10.0.0.256', message: /"10\.0\.0\.256" is not a valid IPv4 address: 256 is greater than 255/ },
    { name: 'leading zero', input: '10.0.0.01', message: /"01" has a leading zero \(ambiguous with octal\); write 1/ },
    { name: 'two ::', input: '1::2::3', message: /"::" may appear only once/ },
    { name: 'seven groups', input: '1:2:3:4:5:6:7', message: /expected 8 groups, got 7/ },
    { name: 'nine groups', input: '1:2:3:4:5:6:7:8:9', message: /expected 8 groups, got 9/ },
    { name: ':: standing for nothing', input: '1:2:3:4::5:6:7:8', message: /"::" must stand for at least one group/ },
    { name: 'five hex digits', input: '12345::', message: /"12345" is not a group of 1-4 hex digits/ },
    { name: 'not hex', input: '2001:db8::g', message: /"g" is not a group of 1-4 hex digits/ },
    { name: 'single leading colon', input: ':1::', message: /empty group/ },
    { name: 'zone', input: 'fe80::1%eth0', message: /zone identifiers/ },
    { name: 'bad embedded IPv4', input: '::ffff:1.2.3', message: /embedded IPv4 address "1\.2\.3"/ },
    { name: 'embedded IPv4 not last', input: '::1.2.3.4:1', message: /"1\.2\.3\.4" is not a group/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.throws(
        () => parseAddress(c.input),
        (e: unknown) => e instanceof AddressError && e.code === 400 && c.message.test(e.message),
      );
    });
  }
});

describe('parseCidr', () => {
  const good: Array<{ input: string; family: Family; network: bigint; prefix: number }> = [
    { input: '10.0.0.0/24', family: 4, network: 0x0a000000n, prefix: 24 },
    { input: '10.0.0.1/32', family: 4, network: 0x0a000001n, prefix: 32 },
    { input: '0.0.0.0/0', family: 4, network: 0n, prefix: 0 },
    { input: '2604:1380:4641:a000::/52', family: 6, network: 0x26041380_4641a000n << 64n, prefix: 52 },
    { input: '::/0', family: 6, network: 0n, prefix: 0 },
  ];
  for (const c of good) {
    it(`parses ${c.input}`, () => {
      const got = parseCidr(c.input);
      assert.deepEqual(got, { family: c.family, network: c.network, prefix: c.prefix });
      assert.equal(cidrString(got), c.input);
    });
  }

  const bad: Array<{ input: string; message: string | RegExp }> = [
    { input: '10.0.0.1/24', message: '10.0.0.1/24 is not a network address; did you mean 10.0.0.0/24?' },
    { input: '2001:db8::1/64', message: '2001:db8::1/64 is not a network address; did you mean 2001:db8::/64?' },
    { input: '147.75.80.17/31', message: '147.75.80.17/31 is not a network address; did you mean 147.75.80.16/31?' },
    { input: '10.0.0.0', message: /^"10\.0\.0\.0" is not a CIDR: expected address\/prefix/ },
    { input: '10.0.0.0/33', message: /prefix length must be a whole number from 0 to 32 for IPv4/ },
    { input: '2001:db8::/129', message: /from 0 to 128 for IPv6/ },
    { input: '10.0.0.0/-1', message: /prefix length must be a whole number/ },
    { input: '10.0.0.0/024', message: /prefix length must be a whole number/ },
    { input: '10.0.0.0/', message: /prefix length must be a whole number/ },
    { input: 'x/24', message: /^"x\/24" is not a CIDR: "x" is not an IP address/ },
  ];
  for (const c of bad) {
    it(`rejects ${c.input}`, () => {
      assert.throws(
        () => parseCidr(c.input),
        (e: unknown) => e instanceof AddressError && (typeof c.message === 'string' ? e.message === c.message : c.message.test(e.message)),
      );
    });
  }
});

describe('contains', () => {
  const cases: Array<{ cidr: string; x: string; want: boolean }> = [
    { cidr: '10.0.0.0/24', x: '10.0.0.0', want: true },
    { cidr: '10.0.0.0/24', x: '10.0.0.255', want: true },
    { cidr: '10.0.0.0/24', x: '10.0.1.0', want: false },
    { cidr: '10.0.0.0/24', x: '9.255.255.255', want: false },
    { cidr: '10.0.0.0/24', x: '10.0.0.128/25', want: true },
    { cidr: '10.0.0.0/24', x: '10.0.0.0/23', want: false },
    { cidr: '0.0.0.0/0', x: '::', want: false },
    { cidr: '2604:1380:4641::/48', x: '2604:1380:4641:ffff:ffff:ffff:ffff:ffff', want: true },
    { cidr: '2604:1380:4641::/48', x: '2604:1380:4642::', want: false },
  ];
  for (const c of cases) {
    it(`${c.cidr} ∋ ${c.x} is ${c.want}`, () => {
      const x = c.x.includes('/') ? parseCidr(c.x) : parseAddress(c.x);
      assert.equal(contains(parseCidr(c.cidr), x), c.want);
    });
  }
});

describe('subnetAt and subnetCount', () => {
  const cases: Array<{ cidr: string; prefix: number; index: bigint; count: bigint; want: string }> = [
    { cidr: '147.75.80.0/24', prefix: 31, index: 0n, count: 128n, want: '147.75.80.0/31' },
    { cidr: '147.75.80.0/24', prefix: 31, index: 8n, count: 128n, want: '147.75.80.16/31' },
    { cidr: '147.75.80.0/24', prefix: 31, index: 127n, count: 128n, want: '147.75.80.254/31' },
    { cidr: '147.75.80.0/24', prefix: 24, index: 0n, count: 1n, want: '147.75.80.0/24' },
    { cidr: '10.70.0.0/16', prefix: 25, index: 3n, count: 512n, want: '10.70.1.128/25' },
    { cidr: '2604:1380:4641::/48', prefix: 56, index: 255n, count: 256n, want: '2604:1380:4641:ff00::/56' },
    {
      cidr: '2604:1380:4641::/48',
      prefix: 127,
      index: (1n << 79n) - 1n,
      count: 1n << 79n,
      want: '2604:1380:4641:ffff:ffff:ffff:ffff:fffe/127',
    },
  ];
  for (const c of cases) {
    it(`${c.cidr} /${c.prefix} #${c.index}`, () => {
      const base = parseCidr(c.cidr);
      assert.equal(subnetCount(base, c.prefix), c.count);
      assert.equal(cidrString(subnetAt(base, c.prefix, c.index)), c.want);
    });
  }

  it('refuses an index past the end, a negative index and a prefix shorter than the network', () => {
    const base = parseCidr('147.75.80.0/24');
    assert.throws(() => subnetAt(base, 31, 128), /has 128 subnets of \/31; index 128 is out of range/);
    assert.throws(() => subnetAt(base, 31, -1), RangeError);
    assert.throws(() => subnetCount(base, 23), /a \/23 does not fit in 147\.75\.80\.0\/24/);
    assert.throws(() => subnetCount(base, 33), RangeError);
  });

  it('subnets() is lazy: taking 3 of the 2^80 /128s of a /48 returns at once', () => {
    const got: string[] = [];
    for (const s of subnets(parseCidr('2604:1380:4641::/48'), 128)) {
      got.push(cidrString(s));
      if (got.length === 3) break;
    }
    assert.deepEqual(got, ['2604:1380:4641::/128', '2604:1380:4641::1/128', '2604:1380:4641::2/128']);
    assert.deepEqual([...subnets(parseCidr('10.0.0.0/30'), 31)].map(cidrString), ['10.0.0.0/31', '10.0.0.2/31']);
  });
});

describe('ipv4Netmask', () => {
  const cases: Array<[number, string]> = [
    [0, '0.0.0.0'],
    [24, '255.255.255.0'],
    [25, '255.255.255.128'],
    [29, '255.255.255.248'],
    [31, '255.255.255.254'],
    [32, '255.255.255.255'],
  ];
  for (const [prefix, want] of cases) it(`/${prefix} → ${want}`, () => assert.equal(ipv4Netmask(prefix), want));
});

describe('addressKey', () => {
  const cases: Array<{ cidr: string; want: string }> = [
    { cidr: '147.75.80.16/31', want: 'ipv4-147.75.80.16-31' },
    { cidr: '10.70.0.0/25', want: 'ipv4-10.70.0.0-25' },
    { cidr: '0.0.0.0/0', want: 'ipv4-0.0.0.0-0' },
    { cidr: '255.255.255.255/32', want: 'ipv4-255.255.255.255-32' },
    { cidr: '2604:1380:4641:a000::/127', want: 'ipv6-2604-1380-4641-a000-0000-0000-0000-0000-127' },
    { cidr: '::/0', want: 'ipv6-0000-0000-0000-0000-0000-0000-0000-0000-0' },
    { cidr: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128', want: 'ipv6-ffff-ffff-ffff-ffff-ffff-ffff-ffff-ffff-128' },
  ];
  for (const c of cases) {
    it(`${c.cidr} → ${c.want}, a valid object name that parses back`, () => {
      const n = parseCidr(c.cidr);
      const key = addressKey(n.family, n.network, n.prefix);
      assert.equal(key, c.want);
      assert.match(key, dns1123Subdomain);
      assert.ok(key.length <= 253);
      assert.equal(key, key.toLowerCase());
      assert.deepEqual(isDns1123Subdomain(key), [], 'the kinds package accepts it as metadata.name');
      assert.deepEqual(parseAddressKey(key), n);
    });
  }

  it('refuses a range with host bits set', () => {
    assert.throws(() => addressKey(4, parseAddress('10.0.0.1').value, 31), /10\.0\.0\.1\/31 is not a network address/);
  });

  const notKeys = ['foo', 'ipv4-10.0.0.1-24', 'ipv4-010.0.0.0-24', 'ipv4-10.0.0.0-33', 'ipv6-2604-1380-4641-a000-0000-0000-0000-127', 'IPV4-10.0.0.0-24'];
  for (const k of notKeys) it(`parseAddressKey(${JSON.stringify(k)}) is undefined`, () => assert.equal(parseAddressKey(k), undefined));
});

// ---- pools ------------------------------------------------------------------------------------------------

describe('validatePool', () => {
  const cases: Array<{ name: string; pool: Pool; fields: string[]; message?: RegExp }> = [
    { name: 'public IPv4', pool: publicV4, fields: [] },
    { name: 'private IPv4 with project blocks', pool: privateV4, fields: [] },
    { name: 'IPv6 with project blocks', pool: publicV6, fields: [] },
    { name: '/32 assignments', pool: { ...publicV4, assignPrefix: 32 }, fields: [] },
    { name: '/128 assignments', pool: { ...publicV6, assignPrefix: 128, projectPrefix: undefined }, fields: [] },
    { name: 'cidr does not parse', pool: { ...publicV4, cidr: '147.75.80/24' }, fields: ['cidr'], message: /not a valid IPv4 address/ },
    { name: 'cidr has host bits', pool: { ...publicV4, cidr: '147.75.80.1/24' }, fields: ['cidr'], message: /did you mean 147\.75\.80\.0\/24\?/ },
    { name: 'family does not match the cidr', pool: { ...publicV4, family: 6 }, fields: ['family'], message: /cidr 147\.75\.80\.0\/24 is IPv4/ },
    { name: 'assignPrefix past 32', pool: { ...publicV4, assignPrefix: 33 }, fields: ['assignPrefix'], message: /from 24 .* to 32/ },
    { name: 'assignPrefix wider than the pool', pool: { ...publicV4, assignPrefix: 23 }, fields: ['assignPrefix'] },
    { name: 'projectPrefix wider than the pool', pool: { ...privateV4, projectPrefix: 15 }, fields: ['projectPrefix'] },
    {
      name: 'projectPrefix block smaller than one assignment',
      pool: { ...privateV4, projectPrefix: 30, assignPrefix: 29 },
      fields: ['projectPrefix'],
      message: /a project block of \/30 cannot hold an assignment of \/29/,
    },
    { name: 'empty name and metro', pool: { ...publicV4, name: '', metro: '' }, fields: ['name', 'metro'] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const problems = validatePool(c.pool);
      assert.deepEqual(
        problems.map((p) => p.field),
        c.fields,
      );
      if (c.message) assert.match(problems[0].message, c.message);
    });
  }

  it('validatePools reports overlapping pools and duplicate names', () => {
    const problems = validatePools([publicV4, { ...publicV4, name: 'da-public-v4-b', cidr: '147.75.80.128/25' }, { ...svPublicV4, name: 'da-public-v4' }]);
    assert.deepEqual(problems, [
      { pool: 'da-public-v4', field: 'name', message: 'pool "da-public-v4" is declared twice' },
      {
        pool: 'da-public-v4-b',
        field: 'cidr',
        message: '147.75.80.128/25 overlaps pool "da-public-v4" (147.75.80.0/24); pools must not share addresses',
      },
    ]);
    assert.deepEqual(validatePools(pools), []);
  });
});

// ---- device addresses -------------------------------------------------------------------------------------

/** The assignments of a plan as `pool network/prefix address gw gateway`. */
const summary = (a: { pool: string; network: string; prefix: number; address: string; gateway: string }): string =>
  `${a.pool} ${a.network}/${a.prefix} ${a.address} gw ${a.gateway}`;

describe('planDeviceAddresses', () => {
  const cases: Array<{
    name: string;
    project?: string;
    want?: Array<{ family: Family; public: boolean }>;
    pools?: Pool[];
    claims?: Claim[];
    reserved?: string[];
    assignments: string[];
    newBlocks: string[];
  }> = [
    {
      name: 'first allocation takes the lowest unit of each pool, and a new block in pools with project blocks',
      want: allThree,
      assignments: [
        'da-public-v4 147.75.80.0/31 147.75.80.1 gw 147.75.80.0',
        'da-private-v4 10.70.0.0/31 10.70.0.1 gw 10.70.0.0',
        'da-v6 2604:1380:4641::/127 2604:1380:4641::1 gw 2604:1380:4641::',
      ],
      newBlocks: ['ipv4-10.70.0.0-25', 'ipv6-2604-1380-4641-0000-0000-0000-0000-0000-56'],
    },
    {
      name: 'taken units are skipped',
      claims: [claim('147.75.80.0/31', 'da-public-v4'), claim('147.75.80.2/31', 'da-public-v4')],
      assignments: ['da-public-v4 147.75.80.4/31 147.75.80.5 gw 147.75.80.4'],
      newBlocks: [],
    },
    {
      name: 'the lowest gap is filled first',
      claims: [claim('147.75.80.0/31', 'da-public-v4'), claim('147.75.80.4/31', 'da-public-v4')],
      assignments: ['da-public-v4 147.75.80.2/31 147.75.80.3 gw 147.75.80.2'],
      newBlocks: [],
    },
    {
      name: 'reserved keys are treated as taken',
      claims: [claim('147.75.80.0/31', 'da-public-v4')],
      reserved: [keyOf('147.75.80.2/31'), 'not-a-key'],
      assignments: ['da-public-v4 147.75.80.4/31 147.75.80.5 gw 147.75.80.4'],
      newBlocks: [],
    },
    {
      name: 'a reservation block covers the units inside it',
      claims: [claim('147.75.80.0/29', 'da-public-v4', 'reservation', 'other')],
      assignments: ['da-public-v4 147.75.80.8/31 147.75.80.9 gw 147.75.80.8'],
      newBlocks: [],
    },
    {
      name: 'claims are matched by address, whatever pool they name',
      claims: [claim('147.75.80.0/31', 'renamed-pool')],
      assignments: ['da-public-v4 147.75.80.2/31 147.75.80.3 gw 147.75.80.2'],
      newBlocks: [],
    },
    {
      name: 'claims in another metro do not count',
      claims: [claim('147.75.90.0/31', 'sv-public-v4')],
      assignments: ['da-public-v4 147.75.80.0/31 147.75.80.1 gw 147.75.80.0'],
      newBlocks: [],
    },
    {
      name: 'two addresses of one kind are two different units',
      want: [...publicOnly, ...publicOnly],
      assignments: ['da-public-v4 147.75.80.0/31 147.75.80.1 gw 147.75.80.0', 'da-public-v4 147.75.80.2/31 147.75.80.3 gw 147.75.80.2'],
      newBlocks: [],
    },
    {
      name: 'the project block is reused',
      project: 'a',
      want: [{ family: 4, public: false }],
      claims: [claim('10.70.0.0/25', 'da-private-v4', 'block', 'a'), claim('10.70.0.0/31', 'da-private-v4')],
      assignments: ['da-private-v4 10.70.0.2/31 10.70.0.3 gw 10.70.0.2'],
      newBlocks: [],
    },
    {
      name: "another project's block is not used and not overlapped",
      project: 'b',
      want: [{ family: 4, public: false }],
      claims: [claim('10.70.0.0/25', 'da-private-v4', 'block', 'a'), claim('10.70.0.0/31', 'da-private-v4')],
      assignments: ['da-private-v4 10.70.0.128/31 10.70.0.129 gw 10.70.0.128'],
      newBlocks: ['ipv4-10.70.0.128-25'],
    },
    {
      name: 'a full project block leads to a second block for the project',
      project: 'a',
      want: [{ family: 4, public: false }],
      claims: [
        claim('10.70.0.0/25', 'da-private-v4', 'block', 'a'),
        ...fill({ ...privateV4, cidr: '10.70.0.0/25' }, 31, 64),
        claim('10.70.0.128/25', 'da-private-v4', 'block', 'b'),
      ],
      assignments: ['da-private-v4 10.70.1.0/31 10.70.1.1 gw 10.70.1.0'],
      newBlocks: ['ipv4-10.70.1.0-25'],
    },
    {
      name: 'two private addresses for a new project: one new block holds both',
      project: 'a',
      want: [
        { family: 4, public: false },
        { family: 4, public: false },
      ],
      assignments: ['da-private-v4 10.70.0.0/31 10.70.0.1 gw 10.70.0.0', 'da-private-v4 10.70.0.2/31 10.70.0.3 gw 10.70.0.2'],
      newBlocks: ['ipv4-10.70.0.0-25'],
    },
    {
      name: "the project's block in another metro's pool is not used here",
      project: 'a',
      want: [{ family: 4, public: false }],
      claims: [claim('10.80.0.0/25', 'sv-private-v4', 'block', 'a')],
      assignments: ['da-private-v4 10.70.0.0/31 10.70.0.1 gw 10.70.0.0'],
      newBlocks: ['ipv4-10.70.0.0-25'],
    },
    {
      name: "the project's own reservation of block size is not a block for its devices",
      project: 'a',
      want: [{ family: 4, public: false }],
      claims: [claim('10.70.0.0/25', 'da-private-v4', 'reservation', 'a')],
      assignments: ['da-private-v4 10.70.0.128/31 10.70.0.129 gw 10.70.0.128'],
      newBlocks: ['ipv4-10.70.0.128-25'],
    },
    {
      name: 'a claim laid over the project block (same start) leaves it no room',
      project: 'a',
      want: [{ family: 4, public: false }],
      claims: [claim('10.70.0.0/25', 'da-private-v4', 'block', 'a'), claim('10.70.0.0/24', 'da-private-v4', 'reservation', 'other')],
      assignments: ['da-private-v4 10.70.1.0/31 10.70.1.1 gw 10.70.1.0'],
      newBlocks: ['ipv4-10.70.1.0-25'],
    },
    {
      name: 'a claim laid over the project block (earlier start) leaves it no room',
      project: 'a',
      want: [{ family: 4, public: false }],
      claims: [claim('10.70.0.128/25', 'da-private-v4', 'block', 'a'), claim('10.70.0.0/24', 'da-private-v4', 'reservation', 'other')],
      assignments: ['da-private-v4 10.70.1.0/31 10.70.1.1 gw 10.70.1.0'],
      newBlocks: ['ipv4-10.70.1.0-25'],
    },
    {
      name: 'with two blocks, the lower one with room is used',
      project: 'a',
      want: [{ family: 6, public: true }],
      claims: [
        claim('2604:1380:4641:100::/56', 'da-v6', 'block', 'a'),
        claim('2604:1380:4641::/56', 'da-v6', 'block', 'a'),
        claim('2604:1380:4641::/127', 'da-v6'),
      ],
      assignments: ['da-v6 2604:1380:4641::2/127 2604:1380:4641::3 gw 2604:1380:4641::2'],
      newBlocks: [],
    },
    {
      name: 'pools are tried in name order, skipping full ones',
      pools: [
        { ...publicV4, name: 'da-public-v4-c', cidr: '147.75.82.0/30' },
        { ...publicV4, name: 'da-public-v4-b', cidr: '147.75.81.0/30' },
        { ...publicV4, name: 'da-public-v4-a', cidr: '147.75.80.0/30' },
      ],
      claims: [claim('147.75.80.0/31', 'da-public-v4-a'), claim('147.75.80.2/31', 'da-public-v4-a')],
      assignments: ['da-public-v4-b 147.75.81.0/31 147.75.81.1 gw 147.75.81.0'],
      newBlocks: [],
    },
    {
      name: 'assignments larger than /31: gateway network+1, address network+2',
      pools: [{ ...publicV4, assignPrefix: 29 }],
      claims: [claim('147.75.80.0/29', 'da-public-v4')],
      assignments: ['da-public-v4 147.75.80.8/29 147.75.80.10 gw 147.75.80.9'],
      newBlocks: [],
    },
    {
      name: 'a /32 assignment is its own address (no on-link gateway)',
      pools: [{ ...publicV4, assignPrefix: 32 }],
      claims: [claim('147.75.80.0/32', 'da-public-v4')],
      assignments: ['da-public-v4 147.75.80.1/32 147.75.80.1 gw 147.75.80.1'],
      newBlocks: [],
    },
    {
      name: 'only wanted families are planned',
      want: [{ family: 6, public: true }],
      assignments: ['da-v6 2604:1380:4641::/127 2604:1380:4641::1 gw 2604:1380:4641::'],
      newBlocks: ['ipv6-2604-1380-4641-0000-0000-0000-0000-0000-56'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const plan = planDeviceAddresses({
        project: c.project ?? 'p',
        metro: 'da',
        want: c.want ?? publicOnly,
        pools: c.pools ?? pools,
        claims: c.claims ?? [],
        ...(c.reserved ? { reserved: new Set(c.reserved) } : {}),
      });
      assert.deepEqual(plan.assignments.map(summary), c.assignments);
      assert.deepEqual(
        plan.newBlocks.map((b) => b.key),
        c.newBlocks,
      );
      for (const b of plan.newBlocks) assert.equal(b.project, c.project ?? 'p');
    });
  }

  it('fills in keys, netmask, family, publicness and the block an assignment lies in', () => {
    const plan = planDeviceAddresses({ project: 'p', metro: 'da', want: allThree, pools, claims: [] });
    assert.deepEqual(plan.assignments, [
      {
        key: 'ipv4-147.75.80.0-31',
        pool: 'da-public-v4',
        family: 4,
        public: true,
        network: '147.75.80.0',
        prefix: 31,
        address: '147.75.80.1',
        gateway: '147.75.80.0',
        netmask: '255.255.255.254',
      },
      {
        key: 'ipv4-10.70.0.0-31',
        pool: 'da-private-v4',
        family: 4,
        public: false,
        network: '10.70.0.0',
        prefix: 31,
        address: '10.70.0.1',
        gateway: '10.70.0.0',
        netmask: '255.255.255.254',
        block: 'ipv4-10.70.0.0-25',
      },
      {
        key: 'ipv6-2604-1380-4641-0000-0000-0000-0000-0000-127',
        pool: 'da-v6',
        family: 6,
        public: true,
        network: '2604:1380:4641::',
        prefix: 127,
        address: '2604:1380:4641::1',
        gateway: '2604:1380:4641::',
        block: 'ipv6-2604-1380-4641-0000-0000-0000-0000-0000-56',
      },
    ]);
    assert.deepEqual(plan.newBlocks, [
      { key: 'ipv4-10.70.0.0-25', pool: 'da-private-v4', family: 4, network: '10.70.0.0', prefix: 25, project: 'p' },
      { key: 'ipv6-2604-1380-4641-0000-0000-0000-0000-0000-56', pool: 'da-v6', family: 6, network: '2604:1380:4641::', prefix: 56, project: 'p' },
    ]);
  });

  it('a batch: project blocks are created once, then reused; another project gets other blocks', () => {
    const claims: Claim[] = [];
    const plan = (project: string) => {
      const p = planDeviceAddresses({ project, metro: 'da', want: allThree, pools, claims });
      claims.push(...planClaims(p));
      return p;
    };
    const a1 = plan('a');
    const a2 = plan('a');
    const b1 = plan('b');
    const a3 = plan('a');
    assert.deepEqual(a1.newBlocks.map((b) => `${b.network}/${b.prefix}`), ['10.70.0.0/25', '2604:1380:4641::/56']);
    assert.deepEqual(a2.newBlocks, []);
    assert.deepEqual(b1.newBlocks.map((b) => `${b.network}/${b.prefix}`), ['10.70.0.128/25', '2604:1380:4641:100::/56']);
    assert.deepEqual(a3.newBlocks, []);
    assert.deepEqual(
      [a1, a2, b1, a3].map((p) => p.assignments.map((a) => a.address)),
      [
        ['147.75.80.1', '10.70.0.1', '2604:1380:4641::1'],
        ['147.75.80.3', '10.70.0.3', '2604:1380:4641::3'],
        ['147.75.80.5', '10.70.0.129', '2604:1380:4641:100::1'],
        ['147.75.80.7', '10.70.0.5', '2604:1380:4641::5'],
      ],
    );
    const keys = claims.map((c) => c.key);
    assert.equal(new Set(keys).size, keys.length, 'no key is planned twice');
  });

  it('plans correctly next to 10k existing claims in a /16 and a /48', () => {
    const big: Pool = { ...publicV4, cidr: '147.75.0.0/16' };
    const bigV6: Pool = { ...publicV6, projectPrefix: undefined };
    const claims = [...fill(big, 31, 10_000, [7_777]), ...fill(bigV6, 127, 10_000)];
    const gapFilled = planDeviceAddresses({ project: 'p', metro: 'da', want: [...publicOnly, { family: 6, public: true }], pools: [big, bigV6], claims });
    assert.deepEqual(
      gapFilled.assignments.map((a) => `${a.network}/${a.prefix}`),
      [cidrString(subnetAt(parseCidr(big.cidr), 31, 7_777)), cidrString(subnetAt(parseCidr(bigV6.cidr), 127, 10_000))],
    );
    const next = planDeviceAddresses({ project: 'p', metro: 'da', want: publicOnly, pools: [big], claims: [...claims, ...planClaims(gapFilled)] });
    assert.equal(`${next.assignments[0].network}/31`, cidrString(subnetAt(parseCidr(big.cidr), 31, 10_000)));
  });

  it('throws IpExhaustedError naming the pool when a pool is full', () => {
    const claims = fill(publicV4, 31, 128);
    assert.throws(
      () => planDeviceAddresses({ project: 'p', metro: 'da', want: publicOnly, pools, claims }),
      (e: unknown) => {
        assert.ok(e instanceof IpExhaustedError);
        assert.ok(e instanceof ApiError);
        assert.equal(e.message, 'no free public IPv4 /31 in metro da: pool da-public-v4 (147.75.80.0/24) has all 128 assignments taken');
        assert.equal(e.code, 422);
        assert.deepEqual([e.metro, e.family, e.isPublic, e.prefix, e.pools], ['da', 4, true, 31, ['da-public-v4']]);
        return true;
      },
    );
  });

  it('explains a full pool with project blocks, project and blocks included', () => {
    const tiny: Pool = { ...privateV4, cidr: '10.70.0.0/24' };
    const claims = [
      claim('10.70.0.0/25', tiny.name, 'block', 'a'),
      ...fill({ ...tiny, cidr: '10.70.0.0/25' }, 31, 64),
      claim('10.70.0.128/25', tiny.name, 'block', 'b'),
    ];
    assert.throws(
      () => planDeviceAddresses({ project: 'a', metro: 'da', want: [{ family: 4, public: false }], pools: [tiny], claims }),
      {
        name: 'IpExhaustedError',
        message:
          "no free private IPv4 /31 in metro da for project a: pool da-private-v4 (10.70.0.0/24): project a's block 10.70.0.0/25 has all 64 assignments taken and all 2 /25 project blocks are taken",
      },
    );
    assert.throws(() => planDeviceAddresses({ project: 'c', metro: 'da', want: [{ family: 4, public: false }], pools: [tiny], claims }), {
      message: /project c has no block and all 2 \/25 project blocks are taken/,
    });
  });

  it('throws IpExhaustedError when the metro has no such pool', () => {
    assert.throws(() => planDeviceAddresses({ project: 'p', metro: 'sv', want: [{ family: 6, public: true }], pools, claims: [] }), {
      name: 'IpExhaustedError',
      message: 'no free public IPv6 in metro sv: no public IPv6 pool is configured there',
    });
  });

  it('refuses a corrupt claim instead of allocating over it', () => {
    const bad: Claim = { ...claim('147.75.80.0/31', 'da-public-v4'), network: '147.75.80.1' };
    assert.throws(() => planDeviceAddresses({ project: 'p', metro: 'da', want: publicOnly, pools, claims: [bad] }), {
      message: /IP claim "ipv4-147\.75\.80\.0-31" is corrupt: 147\.75\.80\.1\/31 is not a network/,
    });
  });

  it('plans the same around claims seen before, and still refuses a corrupt one shaped like them', () => {
    const claims = [claim('147.75.80.0/31', 'da-public-v4'), claim('147.75.80.2/31', 'da-public-v4')];
    const first = planDeviceAddresses({ project: 'p', metro: 'da', want: publicOnly, pools, claims });
    // The same ranges again, as new claim objects (a later placement reads them anew from the cache).
    const again = planDeviceAddresses({ project: 'p', metro: 'da', want: publicOnly, pools, claims: claims.map((c) => ({ ...c })) });
    assert.deepEqual(again, first);
    assert.equal(first.assignments[0]!.network, '147.75.80.4', 'the remembered claims are still taken');
    const typedWrong = { ...claims[0]!, prefix: '31' } as unknown as Claim;
    assert.throws(() => planDeviceAddresses({ project: 'p', metro: 'da', want: publicOnly, pools, claims: [typedWrong] }), { message: /is corrupt/ });
  });
});

// ---- reservations -----------------------------------------------------------------------------------------

describe('planReservation', () => {
  const cases: Array<{ name: string; quantity: number; pools?: Pool[]; claims?: Claim[]; reserved?: string[]; block: string; pool?: string; units: string[] }> = [
    {
      name: 'an empty pool gives the lowest block',
      quantity: 8,
      block: '147.75.80.0/29',
      units: ['147.75.80.0/31', '147.75.80.2/31', '147.75.80.4/31', '147.75.80.6/31'],
    },
    {
      name: 'the block is aligned to its size, not placed right after a claim',
      quantity: 8,
      claims: [claim('147.75.80.0/31', 'da-public-v4')],
      block: '147.75.80.8/29',
      units: ['147.75.80.8/31', '147.75.80.10/31', '147.75.80.12/31', '147.75.80.14/31'],
    },
    {
      name: 'a small block fills the lowest gap',
      quantity: 2,
      claims: [claim('147.75.80.0/31', 'da-public-v4')],
      block: '147.75.80.2/31',
      units: ['147.75.80.2/31'],
    },
    {
      name: 'a block never overlaps a device assignment inside its range',
      quantity: 16,
      claims: [claim('147.75.80.10/31', 'da-public-v4')],
      block: '147.75.80.16/28',
      units: ['147.75.80.16/31', '147.75.80.18/31', '147.75.80.20/31', '147.75.80.22/31', '147.75.80.24/31', '147.75.80.26/31', '147.75.80.28/31', '147.75.80.30/31'],
    },
    {
      name: 'reserved keys count as taken',
      quantity: 4,
      reserved: [keyOf('147.75.80.2/31')],
      block: '147.75.80.4/30',
      units: ['147.75.80.4/31', '147.75.80.6/31'],
    },
    {
      name: 'a single address takes a whole /31 unit',
      quantity: 1,
      claims: [claim('147.75.80.0/31', 'da-public-v4')],
      block: '147.75.80.2/32',
      units: ['147.75.80.2/31'],
    },
    {
      name: '256 addresses, the most allowed',
      quantity: 256,
      pools: [{ ...publicV4, cidr: '147.75.80.0/23' }],
      claims: [claim('147.75.80.0/31', 'da-public-v4')],
      block: '147.75.81.0/24',
      units: [...subnets(parseCidr('147.75.81.0/24'), 31)].map(cidrString),
    },
    {
      name: 'pools with project blocks are passed over, pools are tried by name',
      quantity: 4,
      pools: [
        { ...publicV4, name: 'da-public-v4-b', cidr: '147.75.81.0/24' },
        { ...publicV4, name: 'da-public-v4-a', cidr: '147.75.80.0/30' },
        { ...publicV4, name: 'da-public-v4-0', cidr: '147.75.79.0/24', projectPrefix: 28 },
      ],
      claims: [claim('147.75.80.0/31', 'da-public-v4-a')],
      block: '147.75.81.0/30',
      pool: 'da-public-v4-b',
      units: ['147.75.81.0/31', '147.75.81.2/31'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = planReservation({
        project: 'p',
        metro: 'da',
        family: 4,
        public: true,
        quantity: c.quantity,
        pools: c.pools ?? pools,
        claims: c.claims ?? [],
        ...(c.reserved ? { reserved: new Set(c.reserved) } : {}),
      });
      assert.equal(`${r.block.network}/${r.block.prefix}`, c.block);
      assert.equal(r.block.key, keyOf(c.block));
      assert.equal(r.block.pool, c.pool ?? 'da-public-v4');
      assert.equal(r.block.project, 'p');
      assert.deepEqual(r.unitKeys, c.units.map(keyOf));
      const taken = new Set([...(c.claims ?? []).map((x) => x.key), ...(c.reserved ?? [])]);
      assert.deepEqual(r.unitKeys.filter((k) => taken.has(k)), [], 'no unit is already taken');
    });
  }

  it('devices and reservations share a pool without overlapping, either way round', () => {
    const claims: Claim[] = [];
    const device = () => {
      const p = planDeviceAddresses({ project: 'p', metro: 'da', want: publicOnly, pools, claims });
      claims.push(...planClaims(p));
      return `${p.assignments[0].network}/31`;
    };
    const reserve = (quantity: number) => {
      const r = planReservation({ project: 'p', metro: 'da', family: 4, public: true, quantity, pools, claims });
      // As the reconciler does: one claim per unit.
      for (const k of r.unitKeys) {
        const u = parseAddressKey(k);
        assert.ok(u);
        claims.push(claim(cidrString(u), r.block.pool, 'reservation', 'p'));
      }
      return `${r.block.network}/${r.block.prefix}`;
    };
    assert.deepEqual(
      [device(), reserve(4), device(), reserve(8), device(), reserve(1), device()],
      ['147.75.80.0/31', '147.75.80.4/30', '147.75.80.2/31', '147.75.80.8/29', '147.75.80.16/31', '147.75.80.18/32', '147.75.80.20/31'],
    );
    const keys = claims.map((c) => c.key);
    assert.equal(new Set(keys).size, keys.length);
  });

  it('an IPv6 reservation in a pool without project blocks', () => {
    const v6: Pool = { ...publicV6, name: 'da-v6-flat', projectPrefix: undefined };
    const r = planReservation({ project: 'p', metro: 'da', family: 6, public: true, quantity: 256, pools: [v6], claims: [claim('2604:1380:4641::/127', v6.name)] });
    assert.equal(`${r.block.network}/${r.block.prefix}`, '2604:1380:4641::100/120');
    assert.equal(r.unitKeys.length, 128);
    assert.equal(r.unitKeys[127], keyOf('2604:1380:4641::1fe/127'));
  });

  const errors: Array<{ name: string; family?: Family; quantity: number; pools?: Pool[]; claims?: Claim[]; error: { name?: string; code?: number; message: string | RegExp } }> = [
    { name: 'not a power of two', quantity: 3, error: { code: 400, message: 'quantity 3 is not a power of two; ask for 1, 2, 4, 8, … addresses' } },
    { name: 'zero', quantity: 0, error: { code: 400, message: 'quantity 0 is not a positive whole number of addresses' } },
    { name: 'a fraction', quantity: 1.5, error: { code: 400, message: /not a positive whole number/ } },
    {
      name: 'more than 256 IPv4 addresses',
      quantity: 512,
      error: { code: 400, message: 'quantity 512 is too large: at most 256 IPv4 addresses (a /24) can be reserved at once' },
    },
    {
      name: 'a full pool',
      quantity: 2,
      claims: fill(publicV4, 31, 128),
      error: { name: 'IpExhaustedError', message: 'no free public IPv4 /31 in metro da: pool da-public-v4 (147.75.80.0/24) has no free aligned /31 of 128' },
    },
    {
      name: 'fragmented: room for /31s but no aligned /29',
      quantity: 8,
      claims: fill(publicV4, 31, 128).filter((_, i) => i % 2 === 1),
      error: { name: 'IpExhaustedError', message: /has no free aligned \/29 of 32$/ },
    },
    {
      name: 'a block larger than the pool',
      quantity: 8,
      pools: [{ ...publicV4, cidr: '147.75.80.0/30' }],
      error: { name: 'IpExhaustedError', message: 'no free public IPv4 /29 in metro da: pool da-public-v4 (147.75.80.0/30) is smaller than a /29' },
    },
    {
      name: 'only pools with project blocks',
      family: 6,
      quantity: 2,
      error: {
        name: 'IpExhaustedError',
        message: 'no free public IPv6 /127 in metro da: its pools (da-v6) give each project a block of its own, so there is none to reserve from',
      },
    },
    {
      name: 'more units than allowed',
      family: 6,
      quantity: 1024,
      pools: [{ ...publicV6, projectPrefix: undefined }],
      error: { name: 'IpExhaustedError', message: /would need 512 \/127 units for a \/118, more than 256$/ },
    },
  ];
  for (const c of errors) {
    it(`refuses: ${c.name}`, () => {
      assert.throws(
        () =>
          planReservation({
            project: 'p',
            metro: 'da',
            family: c.family ?? 4,
            public: true,
            quantity: c.quantity,
            pools: c.pools ?? pools,
            claims: c.claims ?? [],
          }),
        c.error,
      );
    });
  }
});

// IPv4 and IPv6 arithmetic over bigints: parsing and canonical formatting (RFC 5952 for IPv6), CIDR
// containment, indexed subnetting and the object names of IP claims. Pure: no I/O, no state.
import { ApiError } from '../../lib/errors.js';

export type Family = 4 | 6;

/** A network: `network` has no host bits set below `prefix`. */
export interface Cidr {
  family: Family;
  network: bigint;
  prefix: number;
}

export interface Address {
  family: Family;
  value: bigint;
}

/** A malformed address or CIDR (400 BadRequest), so that a caller can tell it from other failures. */
export class AddressError extends ApiError {
  constructor(message: string) {
    super(400, 'BadRequest', message);
    this.name = 'AddressError';
  }
}

export function familyBits(family: Family): 32 | 128 {
  return family === 4 ? 32 : 128;
}

const familyName = (family: Family): string => (family === 4 ? 'IPv4' : 'IPv6');

function maxValue(family: Family): bigint {
  return (1n << BigInt(familyBits(family))) - 1n;
}

/** The number of addresses in a network of `prefix`. */
export function blockSize(family: Family, prefix: number): bigint {
  return 1n << BigInt(familyBits(family) - prefix);
}

/** The last address of a network (its broadcast address, for IPv4). */
export function lastAddress(cidr: Cidr): bigint {
  return cidr.network + blockSize(cidr.family, cidr.prefix) - 1n;
}

// ---- parsing ----------------------------------------------------------------------------------------------

const ipv4Re = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const hexGroupRe = /^[0-9a-fA-F]{1,4}$/;

/** Returns the value, or a reason the text is not a dotted-quad IPv4 address. */
function parseIpv4(s: string): bigint | string {
  const m = ipv4Re.exec(s);
  if (!m) return 'expected four decimal numbers separated by dots, e.g. 192.0.2.1';
  let v = 0; // a number until the end: one BigInt conversion instead of four (claims are parsed by the thousand)
  for (let i = 1; i <= 4; i++) {
    const part = m[i];
    // Leading zeros are refused, as Go's net.ParseIP does: inet_aton would read them as octal.
    if (part.length > 1 && part.startsWith('0')) return `"${part}" has a leading zero (ambiguous with octal); write ${Number(part)}`;
    const n = Number(part);
    if (n > 255) return `${part} is greater than 255`;
    v = v * 256 + n;
  }
  return BigInt(v);
}

/** Returns the value, or a reason the text is not an IPv6 address. */
function parseIpv6(s: string): bigint | string {
  if (s.includes('%')) return 'zone identifiers (%…) are not allowed';
  const halves = s.split('::');
  if (halves.length > 2) return '"::" may appear only once';
  const groupsOf = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const head = groupsOf(halves[0]);
  const tail = halves.length === 2 ? groupsOf(halves[1]) : [];
  const values: number[][] = [[], []];
  const lists = [head, tail];
  const last = halves.length === 2 ? (tail.length > 0 ? [1, tail.length - 1] : [-1, -1]) : [0, head.length - 1];
  for (let l = 0; l < 2; l++) {
    for (let i = 0; i < lists[l].length; i++) {
      const g = lists[l][i];
      if (g.includes('.') && l === last[0] && i === last[1]) {
        // An embedded IPv4 address (::ffff:192.0.2.1) stands for the last two groups.
        const v4 = parseIpv4(g);
        if (typeof v4 === 'string') return `embedded IPv4 address "${g}": ${v4}`;
        values[l].push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else if (hexGroupRe.test(g)) {
        values[l].push(parseInt(g, 16));
      } else {
        return g === '' ? 'empty group (a single ":" at the start or end, or ":::")' : `"${g}" is not a group of 1-4 hex digits`;
      }
    }
  }
  const count = values[0].length + values[1].length;
  if (halves.length === 1 && count !== 8) return `expected 8 groups, got ${count}`;
  if (halves.length === 2 && count > 7) return `"::" must stand for at least one group, but ${count} groups are given`;
  const groups = [...values[0], ...Array<number>(8 - count).fill(0), ...values[1]];
  return BigInt(`0x${groups.map((g) => g.toString(16).padStart(4, '0')).join('')}`);
}

/** Parses an IPv4 (dotted quad) or IPv6 address. */
export function parseAddress(s: string): Address {
  if (s.includes(':')) {
    const v = parseIpv6(s);
    if (typeof v === 'string') throw new AddressError(`"${s}" is not a valid IPv6 address: ${v}`);
    return { family: 6, value: v };
  }
  if (s.includes('.')) {
    const v = parseIpv4(s);
    if (typeof v === 'string') throw new AddressError(`"${s}" is not a valid IPv4 address: ${v}`);
    return { family: 4, value: v };
  }
  throw new AddressError(`"${s}" is not an IP address; expected IPv4 like 192.0.2.1 or IPv6 like 2001:db8::1`);
}

/** Parses `address/prefix`; the address must be the network address (no host bits set). */
export function parseCidr(s: string): Cidr {
  const slash = s.indexOf('/');
  if (slash < 0) throw new AddressError(`"${s}" is not a CIDR: expected address/prefix, e.g. 10.0.0.0/24 or 2001:db8::/48`);
  const addrText = s.slice(0, slash);
  const prefixText = s.slice(slash + 1);
  let addr: Address;
  try {
    addr = parseAddress(addrText);
  } catch (e) {
    throw new AddressError(`"${s}" is not a CIDR: ${(e as Error).message}`);
  }
  const bits = familyBits(addr.family);
  if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > bits) {
    throw new AddressError(`"${s}" is not a CIDR: the prefix length must be a whole number from 0 to ${bits} for ${familyName(addr.family)}`);
  }
  const prefix = Number(prefixText);
  const network = addr.value & ~(blockSize(addr.family, prefix) - 1n);
  if (network !== addr.value) {
    const suggestion = cidrString({ family: addr.family, network, prefix });
    throw new AddressError(`${s} is not a network address; did you mean ${suggestion}?`);
  }
  return { family: addr.family, network, prefix };
}

// ---- formatting -------------------------------------------------------------------------------------------

function checkRange(family: Family, n: bigint): void {
  if (n < 0n || n > maxValue(family)) throw new RangeError(`${n} is not an ${familyName(family)} address (out of range)`);
}

function formatIpv4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
}

function ipv6Groups(n: bigint): number[] {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  return groups;
}

/** IPv6 in RFC 5952 form: lower case, no leading zeros, the longest run (≥ 2) of zero groups as "::" (the
 * first one on a tie), and IPv4-mapped addresses (::ffff:0:0/96) in mixed notation. */
function formatIpv6(n: bigint): string {
  const groups = ipv6Groups(n);
  if (n >> 32n === 0xffffn) return `::ffff:${formatIpv4(n & 0xffffffffn)}`;
  let bestStart = -1;
  let bestLen = 1; // a single zero group is never compressed (RFC 5952 §4.2.2)
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

export function formatAddress(family: Family, n: bigint): string {
  checkRange(family, n);
  return family === 4 ? formatIpv4(n) : formatIpv6(n);
}

export function cidrString(cidr: Cidr): string {
  return `${formatAddress(cidr.family, cidr.network)}/${cidr.prefix}`;
}

/** The dotted netmask of an IPv4 prefix: 31 → 255.255.255.254. */
export function ipv4Netmask(prefix: number): string {
  checkPrefix(4, prefix);
  return formatIpv4(maxValue(4) ^ (blockSize(4, prefix) - 1n));
}

// ---- containment and subnets ------------------------------------------------------------------------------

function checkPrefix(family: Family, prefix: number): void {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > familyBits(family)) {
    throw new RangeError(`${prefix} is not an ${familyName(family)} prefix length (0-${familyBits(family)})`);
  }
}

/** Whether `x` (an address, or a whole network) lies inside `cidr`. Different families never contain each other. */
export function contains(cidr: Cidr, x: Address | Cidr): boolean {
  if (x.family !== cidr.family) return false;
  const start = 'value' in x ? x.value : x.network;
  const end = 'value' in x ? x.value : lastAddress(x);
  return start >= cidr.network && end <= lastAddress(cidr);
}

/** How many subnets of `newPrefix` `cidr` splits into. */
export function subnetCount(cidr: Cidr, newPrefix: number): bigint {
  checkPrefix(cidr.family, newPrefix);
  if (newPrefix < cidr.prefix) throw new RangeError(`a /${newPrefix} does not fit in ${cidrString(cidr)}`);
  return 1n << BigInt(newPrefix - cidr.prefix);
}

/** The `i`-th (from 0) subnet of `newPrefix` inside `cidr`, computed without enumerating the others. */
export function subnetAt(cidr: Cidr, newPrefix: number, i: bigint | number): Cidr {
  const count = subnetCount(cidr, newPrefix);
  const index = BigInt(i);
  if (index < 0n || index >= count) {
    throw new RangeError(`${cidrString(cidr)} has ${count} subnets of /${newPrefix}; index ${index} is out of range`);
  }
  return { family: cidr.family, network: cidr.network + index * blockSize(cidr.family, newPrefix), prefix: newPrefix };
}

/** The subnets of `newPrefix` inside `cidr`, lowest first, produced lazily (a /48 has 2^80 /128s). */
export function* subnets(cidr: Cidr, newPrefix: number): Generator<Cidr, void, undefined> {
  const count = subnetCount(cidr, newPrefix);
  for (let i = 0n; i < count; i++) yield subnetAt(cidr, newPrefix, i);
}

// ---- claim names ------------------------------------------------------------------------------------------

/**
 * The object name of the claim on a network: `ipv4-147.75.80.16-31`,
 * `ipv6-2604-1380-4641-a000-0000-0000-0000-0000-127`. IPv6 is fully expanded (8 groups of 4 hex digits, joined
 * by "-") so that one network has exactly one name and names sort like addresses. Always a lowercase DNS-1123
 * subdomain of at most 48 characters.
 */
export function addressKey(family: Family, network: bigint, prefix: number): string {
  checkRange(family, network);
  checkPrefix(family, prefix);
  if ((network & (blockSize(family, prefix) - 1n)) !== 0n) {
    throw new RangeError(`${formatAddress(family, network)}/${prefix} is not a network address; a claim key names a network`);
  }
  if (family === 4) return `ipv4-${formatIpv4(network)}-${prefix}`;
  const groups = ipv6Groups(network).map((g) => g.toString(16).padStart(4, '0'));
  return `ipv6-${groups.join('-')}-${prefix}`;
}

const ipv4KeyRe = /^ipv4-(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})-(\d{1,2})$/;
const ipv6KeyRe = /^ipv6-((?:[0-9a-f]{4}-){8})(\d{1,3})$/;

/** The network an `addressKey` names, or undefined when `key` is not one (exactly: round-trips only). */
export function parseAddressKey(key: string): Cidr | undefined {
  let cidr: Cidr;
  const m4 = ipv4KeyRe.exec(key);
  const m6 = m4 ? null : ipv6KeyRe.exec(key);
  if (m4) {
    const v = parseIpv4(m4[1]);
    if (typeof v === 'string') return undefined;
    cidr = { family: 4, network: v, prefix: Number(m4[2]) };
  } else if (m6) {
    cidr = { family: 6, network: BigInt(`0x${m6[1].replaceAll('-', '')}`), prefix: Number(m6[2]) };
  } else {
    return undefined;
  }
  try {
    return addressKey(cidr.family, cidr.network, cidr.prefix) === key ? cidr : undefined;
  } catch {
    return undefined;
  }
}

// Where plain HTTP is allowed on the shared port.
//
// Loopback peers may use plain HTTP for everything. Other peers may use it only for what a machine fetches
// before it can trust our CA: iPXE scripts and kernels, the metadata service and the cloud-init datasources,
// phone-home, and the probes. Everything else (both APIs, the console, the agent protocol, metrics) needs TLS,
// because it carries bearer tokens or tenant data.
//
// The decision is made on the path only, never on headers: the Authorization header is neither read nor echoed.

import { BlockList, isIP } from 'node:net';

export type PlainHttpDecision = { allow: true } | { allow: false; status: number; message: string };

export interface PlainHttpRequest {
  /** true when the request arrived over TLS (`req.socket.encrypted === true`) */
  encrypted: boolean;
  /** the peer address as Node reports it (`req.socket.remoteAddress`) */
  remoteAddress: string | undefined;
  /** the request target as received (`req.url`): path plus optional query */
  path: string;
  /** `--insecure-http`: serve everything over plain HTTP to everyone */
  insecureHttp: boolean;
}

/**
 * First path segments that non-loopback peers may fetch over plain HTTP. A path is allowed when its first segment
 * equals one of these exactly (so `/boot/x` and `/boot` match, `/bootx` does not).
 */
export const PLAIN_HTTP_SEGMENTS: readonly string[] = [
  // iPXE scripts, kernels and initramfs
  'boot',
  // our own metadata service (Equinix Metal style) and its user data
  'metadata',
  'userdata',
  // cloud-init phone_home, and the probes load balancers and kubelets hit
  'phone-home',
  'healthz',
  'livez',
  'readyz',
  // NoCloud over HTTP: `ds=nocloud;s=http://host:port/nocloud/` fetches meta-data, user-data, vendor-data and
  // network-config under the seed URL; the bare file names cover a seed URL pointing at the root.
  'nocloud',
  'meta-data',
  'user-data',
  'vendor-data',
  'network-config',
  // EC2 datasource: cloud-init probes `<version>/meta-data/instance-id` for its extended versions, newest first,
  // then the minimum version; IMDSv2 asks for a token with `PUT /latest/api/token`.
  'latest',
  '2021-03-23',
  '2018-09-24',
  '2016-09-02',
  '2009-04-04',
  // OpenStack datasource over HTTP: `openstack/latest/meta_data.json`, `openstack/<date>/user_data`, …
  'openstack',
];

const ALLOWED = new Set(PLAIN_HTTP_SEGMENTS);

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');
// IPv4-mapped loopback (`::ffff:127.0.0.1`) as a dual-stack socket reports it.
loopback.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

// Every request on the shared port asks about its peer, and BlockList.check costs microseconds (it builds a
// SocketAddress): the answers for the few addresses a server sees are remembered (bounded).
const loopbackAnswers = new Map<string, boolean>();

export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  let known = loopbackAnswers.get(address);
  if (known === undefined) {
    known = checkLoopback(address);
    if (loopbackAnswers.size >= 4096) loopbackAnswers.clear();
    loopbackAnswers.set(address, known);
  }
  return known;
}

function checkLoopback(address: string): boolean {
  // A link-local zone (`fe80::1%eth0`) never makes an address loopback; drop it so isIP accepts the rest.
  const bare = address.split('%')[0]!;
  const family = isIP(bare);
  if (family === 4) return loopback.check(bare, 'ipv4');
  if (family === 6) return loopback.check(bare, 'ipv6');
  return false;
}

export const HTTPS_REQUIRED_MESSAGE =
  'plain HTTP from this address is only served for boot, metadata, cloud-init, phone-home and health paths; ' +
  'use https:// on the same port (the CA certificate is ca.crt in the metalplane data dir)';

const DENY: PlainHttpDecision = { allow: false, status: 403, message: HTTPS_REQUIRED_MESSAGE };
const ALLOW: PlainHttpDecision = { allow: true };

export function plainHttpDecision(req: PlainHttpRequest): PlainHttpDecision {
  if (req.encrypted || req.insecureHttp || isLoopbackAddress(req.remoteAddress)) return ALLOW;
  return isPlainHttpPath(req.path) ? ALLOW : DENY;
}

/**
 * Whether a request target may be served over plain HTTP to a non-loopback peer.
 *
 * Routers and handlers differ in how they treat `..`, `%2F` and backslashes, so the path must be allowed under
 * every reading: as sent (segments split on `/` without decoding), and after each round of percent-decoding with
 * dot segments resolved. `/boot/../api` and `/boot/%2e%2e/api` are refused because they resolve to `/api`;
 * `/api/..%2F..%2Fboot` is refused because a router sees `/api/…`.
 */
export function isPlainHttpPath(target: string): boolean {
  const path = requestPath(target);
  if (path === undefined) return false;
  if (!firstSegmentAllowed(path.split('/'))) return false;
  let current = path;
  // A bounded number of decoding rounds: a handler that decodes twice must not see a different first segment.
  for (let round = 0; round < 3; round++) {
    if (!firstSegmentAllowed(resolveDotSegments(current))) return false;
    let decoded: string;
    try {
      decoded = decodeURIComponent(current);
    } catch {
      return false; // malformed percent-encoding: nobody legitimate sends it
    }
    if (decoded === current) return true;
    current = decoded;
  }
  return false;
}

/** The path of a request target without query or fragment; undefined for targets that are not a path. */
function requestPath(target: string): string | undefined {
  let path = target;
  // absolute-form (`GET http://host/x HTTP/1.1`): Node hands it through unchanged
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
    try {
      path = new URL(path).pathname;
    } catch {
      return undefined;
    }
  }
  const end = path.search(/[?#]/);
  if (end !== -1) path = path.slice(0, end);
  if (!path.startsWith('/')) return undefined; // `*` (OPTIONS *) and authority-form
  if (path.includes('\0')) return undefined;
  return path;
}

/** Segments after resolving `.` and `..`, treating `\` as `/` as some servers do. */
function resolveDotSegments(path: string): string[] {
  const out: string[] = [''];
  for (const segment of path.replace(/\\/g, '/').split('/').slice(1)) {
    if (segment === '.') continue;
    if (segment === '..') {
      if (out.length > 1) out.pop();
      continue;
    }
    out.push(segment);
  }
  return out;
}

function firstSegmentAllowed(segments: string[]): boolean {
  // segments[0] is the empty string before the leading slash
  const first = segments[1];
  return first !== undefined && ALLOWED.has(first);
}

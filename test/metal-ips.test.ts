// IP reservations and assignments of the Metal API through HTTP, every response checked against the spec:
// reserving public IPv4 blocks of 1, 2, 4, 8… addresses in a metro, listing with `types` and
// `include=assignments`, assigning a reserved address to a device and removing it, the project's managed
// blocks, isolation between projects and read-only keys — and no address handed out twice under concurrency.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from './helpers/server.js';
import { metal as metalCall, type MetalCallOptions, type MetalResult } from './helpers/metal.js';
import { describeErrors, metalSpec } from '../src/metal-api/spec.js';

/**
 * The contract client, plus what it cannot check alone: the spec answers `/ips/{id}` and the reserve request with
 * a `oneOf` (IPAssignment | IPReservation | VrfIpReservation), which a generated SDK decodes only if exactly one
 * alternative matches.
 */
async function metal(server: TestServer, method: string, path: string, body?: unknown, opts?: MetalCallOptions): Promise<MetalResult> {
  const r = await metalCall(server, method, path, body, opts);
  const p = path.split('?')[0]!;
  const oneOf = r.status < 300 && r.status !== 204 && (/^\/ips\/[^/]+$/.test(p) || (method === 'POST' && /^\/projects\/[^/]+\/ips$/.test(p)));
  if (oneOf) {
    const alternatives = ['IPAssignment', 'IPReservation', 'VrfIpReservation'];
    const matching = alternatives.filter((a) => metalSpec().validator(a)(r.body));
    const why = alternatives.map((a) => {
      const v = metalSpec().validator(a);
      v(r.body);
      return `${a}: ${describeErrors(v.errors).slice(0, 4).join('; ')}`;
    });
    assert.equal(matching.length, 1, `${method} ${path}: the body must match exactly one of ${alternatives.join(', ')}; matches ${matching.join(', ') || 'none'} (${why.join(' | ')})`);
  }
  return r;
}

const NO_SUCH = '00000000-0000-4000-8000-000000000000';

async function kube(s: TestServer, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${s.plainUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${s.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const out = await res.json();
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(out).slice(0, 300)}`);
  return out;
}

/** IPv4 CIDR as [first, last] integers. */
function range(cidr: string): [number, number] {
  const [addr, len] = cidr.split('/') as [string, string];
  const n = addr.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  return [n, n + 2 ** (32 - Number(len)) - 1];
}
const overlap = (a: string, b: string): boolean => {
  const [a0, a1] = range(a);
  const [b0, b1] = range(b);
  return a0 <= b1 && b0 <= a1;
};
function assertDisjoint(cidrs: string[], what: string): void {
  for (let i = 0; i < cidrs.length; i++) for (let j = 0; j < i; j++) assert.ok(!overlap(cidrs[i]!, cidrs[j]!), `${what}: ${cidrs[i]} overlaps ${cidrs[j]}`);
}
const ipOf = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

describe('Metal API: IP reservations and assignments', () => {
  let s: TestServer;
  const project: Record<'a' | 'b', { id: string; ns: string; rw: string; ro: string }> = {} as never;

  const device = async (ns: string, name: string, metro = 'da'): Promise<string> => {
    const d = await kube(s, 'POST', `/apis/metalplane.dev/v1alpha1/namespaces/${ns}/devices`, {
      apiVersion: 'metalplane.dev/v1alpha1',
      kind: 'Device',
      metadata: { name },
      spec: { metro, plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04', hostname: name },
    });
    return d.metadata.uid;
  };
  const reserve = (p: 'a' | 'b', body: unknown) => metal(s, 'POST', `/projects/${project[p].id}/ips`, body, { token: project[p].rw });
  const cidrOf = (r: { network: string; cidr: number }): string => `${r.network}/${r.cidr}`;

  before(async () => {
    s = await startTestServer();
    for (const p of ['a', 'b'] as const) {
      const created = await metal(s, 'POST', '/projects', { name: `ips ${p}` });
      const id = created.body.id as string;
      const ns = (await kube(s, 'GET', '/api/v1/namespaces')).items.find((x: { metadata: { uid: string } }) => x.metadata.uid === id).metadata.name;
      const rw = (await metal(s, 'POST', `/projects/${id}/api-keys`, { description: 'rw' })).body.token;
      const ro = (await metal(s, 'POST', `/projects/${id}/api-keys`, { description: 'ro', read_only: true })).body.token;
      project[p] = { id, ns, rw, ro };
    }
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
  });

  test('public IPv4 blocks of 1, 2, 4, 8 addresses: aligned, disjoint, kept as IPReservations', async () => {
    const got: string[] = [];
    for (const [quantity, cidr] of [[1, 32], [2, 31], [4, 30], [8, 29]] as const) {
      const r = await reserve('a', { type: 'public_ipv4', metro: 'da', quantity, tags: ['t'], details: 'd' });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.body.state, 'created');
      assert.equal(r.body.cidr, cidr);
      assert.equal(r.body.address_family, 4);
      assert.equal(r.body.public, true);
      assert.equal(r.body.metro.code, 'da');
      assert.deepEqual(r.body.tags, ['t']);
      assert.equal(range(cidrOf(r.body))[0] % quantity, 0, 'aligned to its size');
      got.push(cidrOf(r.body));
      const k = await kube(s, 'GET', `/apis/metalplane.dev/v1alpha1/namespaces/${project.a.ns}/ipreservations`);
      assert.ok(k.items.some((x: { metadata: { uid: string }; status: { cidrNotation: string } }) => x.metadata.uid === r.body.id && x.status.cidrNotation === cidrOf(r.body)), 'the same object kubectl sees');
    }
    assertDisjoint(got, 'reserved blocks');
    // By facility instead of metro: the facility's metro.
    const byFacility = await reserve('a', { type: 'public_ipv4', facility: 'da11', quantity: 2 });
    assert.equal(byFacility.status, 201);
    assert.equal(byFacility.body.metro.code, 'da');
  });

  test('list with types and include=assignments; get, patch, available', async () => {
    const r = await reserve('a', { type: 'public_ipv4', metro: 'ny', quantity: 4 });
    const id = r.body.id;
    const list = await metal(s, 'GET', `/projects/${project.a.id}/ips?types=public_ipv4`, undefined, { token: project.a.ro });
    assert.equal(list.status, 200);
    assert.ok(list.body.ip_addresses.some((x: { id: string }) => x.id === id));
    assert.ok(list.body.ip_addresses.every((x: { type: string }) => x.type === 'public_ipv4'));
    assert.equal(list.body.meta.total, list.body.ip_addresses.length);
    const none = await metal(s, 'GET', `/projects/${project.a.id}/ips?types=private_ipv4,public_ipv6`);
    assert.ok(none.body.ip_addresses.every((x: { type: string }) => x.type !== 'public_ipv4'));
    const got = await metal(s, 'GET', `/ips/${id}`, undefined, { token: project.a.ro });
    assert.equal(got.status, 200);
    assert.equal(got.body.network, r.body.network);
    const patched = await metal(s, 'PATCH', `/ips/${id}`, { tags: ['x', 'y'], details: 'edge', customdata: { k: 1 } }, { token: project.a.rw });
    assert.equal(patched.status, 200);
    assert.deepEqual([patched.body.tags, patched.body.details, patched.body.customdata], [['x', 'y'], 'edge', { k: 1 }]);
    const avail = await metal(s, 'GET', `/ips/${id}/available?cidr=32`);
    assert.equal(avail.status, 200);
    assert.equal(avail.body.available.length, 4);
    assert.equal((await metal(s, 'GET', `/ips/${id}/available?cidr=31`)).body.available.length, 2);
  });

  test('a reserved address assigned to a device, listed, and removed; the reservation goes only when unassigned', async () => {
    const r = await reserve('a', { type: 'public_ipv4', metro: 'da', quantity: 8 });
    const [first] = range(cidrOf(r.body));
    const dev = await device(project.a.ns, 'web-1');
    const addr = `${ipOf(first + 3)}/32`;
    const a = await metal(s, 'POST', `/devices/${dev}/ips`, { address: addr }, { token: project.a.rw });
    assert.equal(a.status, 201, a.text);
    assert.deepEqual([a.body.address, a.body.cidr, a.body.netmask, a.body.public, a.body.management], [ipOf(first + 3), 32, '255.255.255.255', true, false]);
    assert.equal(a.body.assigned_to.href, `/metal/v1/devices/${dev}`);
    assert.equal(a.body.parent_block.href, `/metal/v1/ips/${r.body.id}`);
    assert.equal(a.body.parent_block.network, r.body.network);
    assert.equal(a.body.gateway, r.body.gateway);
    const same = await metal(s, 'GET', `/ips/${a.body.id}`);
    assert.equal(same.status, 200);
    assert.equal(same.body.type, 'IPAssignment');
    const withAssignments = await metal(s, 'GET', `/ips/${r.body.id}?include=assignments`);
    assert.deepEqual(withAssignments.body.assignments.map((x: { address: string }) => x.address), [ipOf(first + 3)]);
    const refs = await metal(s, 'GET', `/projects/${project.a.id}/ips`);
    assert.deepEqual(refs.body.ip_addresses.find((x: { id: string }) => x.id === r.body.id).assignments, [{ href: `/metal/v1/ips/${a.body.id}` }]);
    assert.equal((await metal(s, 'GET', `/ips/${r.body.id}/available?cidr=32`)).body.available.length, 7);

    // Taken, overlapping, outside every reservation, or in another metro: 422 saying so.
    const other = await device(project.a.ns, 'web-sv', 'sv');
    const refused: Array<[string, string, unknown, RegExp]> = [
      ['the same address again', dev, { address: addr }, /overlaps .* already assigned to device web-1/],
      ['a /31 containing it', dev, { address: `${ipOf(first + 2)}/31` }, /overlaps/],
      ['outside every reservation', dev, { address: '192.0.2.1' }, /none of the project's reserved blocks/],
      ['a device in another metro', other, { address: `${ipOf(first + 4)}/32` }, /reserved in metro da, but the device is in sv/],
      ['not an address', dev, { address: 'nonsense' }, /address/],
      ['host bits set', dev, { address: `${ipOf(first + 1)}/30` }, /not a network address/],
    ];
    for (const [name, d, body, says] of refused) {
      const x = await metal(s, 'POST', `/devices/${d}/ips`, body, { token: project.a.rw });
      assert.equal(x.status, 422, `${name}: ${x.text}`);
      assert.match(x.body.errors.join(' '), says, name);
    }

    const del = await metal(s, 'DELETE', `/ips/${r.body.id}`, undefined, { token: project.a.rw });
    assert.equal(del.status, 422, 'a reservation with assignments stays');
    assert.match(del.body.errors.join(' '), /unassign/);
    assert.equal((await metal(s, 'DELETE', `/ips/${a.body.id}`, undefined, { token: project.a.rw })).status, 204);
    assert.equal((await metal(s, 'GET', `/ips/${a.body.id}`)).status, 404);
    assert.equal((await metal(s, 'GET', `/ips/${r.body.id}/available?cidr=32`)).body.available.length, 8);
    assert.equal((await metal(s, 'DELETE', `/ips/${r.body.id}`, undefined, { token: project.a.rw })).status, 204);
    assert.equal((await metal(s, 'GET', `/ips/${r.body.id}`)).status, 404);
    assert.ok(!(await metal(s, 'GET', `/projects/${project.a.id}/ips`)).body.ip_addresses.some((x: { id: string }) => x.id === r.body.id));
  });

  test("a project's managed block and a device's own address, from the IPAM's claims", async () => {
    const dev = await device(project.b.ns, 'db-1');
    const claim = (name: string, spec: Record<string, unknown>) =>
      kube(s, 'POST', '/apis/metalplane.dev/v1alpha1/ipaddresses', { apiVersion: 'metalplane.dev/v1alpha1', kind: 'IPAddress', metadata: { name, labels: { 'metalplane.dev/metro': 'da' } }, spec });
    // What the device controller writes when it places a project's first device in a metro.
    const block = await claim('ipv4-10.64.200.0-25', { pool: 'da-private-ipv4', family: 4, public: false, network: '10.64.200.0', prefix: 25, use: 'block', project: project.b.ns });
    const own = await claim('ipv4-10.64.200.0-31', { pool: 'da-private-ipv4', family: 4, public: false, network: '10.64.200.0', prefix: 31, address: '10.64.200.1', gateway: '10.64.200.0', use: 'assignment', project: project.b.ns, device: { namespace: project.b.ns, name: 'db-1', uid: dev } });
    const list = await metal(s, 'GET', `/projects/${project.b.id}/ips?types=private_ipv4&include=assignments`, undefined, { token: project.b.ro });
    const b = list.body.ip_addresses.find((x: { id: string }) => x.id === block.metadata.uid);
    assert.ok(b, list.text);
    assert.deepEqual([b.type, b.network, b.cidr, b.management, b.public], ['private_ipv4', '10.64.200.0', 25, true, false]);
    assert.deepEqual(b.assignments.map((x: { address: string }) => x.address), ['10.64.200.1']);
    const mine = await metal(s, 'GET', `/ips/${own.metadata.uid}`);
    assert.deepEqual([mine.body.address, mine.body.gateway, mine.body.cidr, mine.body.management, mine.body.parent_block.href], ['10.64.200.1', '10.64.200.0', 31, true, `/metal/v1/ips/${block.metadata.uid}`]);
    assert.equal((await metal(s, 'GET', `/ips/${block.metadata.uid}/available?cidr=31`)).body.available.length, 63);
    assert.equal((await metal(s, 'DELETE', `/ips/${block.metadata.uid}`, undefined, { token: project.b.rw })).status, 422);
    assert.equal((await metal(s, 'DELETE', `/ips/${own.metadata.uid}`, undefined, { token: project.b.rw })).status, 422);
    // Another project sees neither.
    assert.equal((await metal(s, 'GET', `/ips/${block.metadata.uid}`, undefined, { token: project.a.rw })).status, 404);
    assert.equal((await metal(s, 'GET', `/ips/${own.metadata.uid}`, undefined, { token: project.a.rw })).status, 404);
  });

  test('project isolation on every IP endpoint; read-only keys cannot write', async () => {
    const r = await reserve('a', { type: 'public_ipv4', metro: 'da', quantity: 2 });
    assert.equal(r.status, 201);
    const dev = await device(project.a.ns, 'iso-1');
    const assigned = await metal(s, 'POST', `/devices/${dev}/ips`, { address: `${r.body.network}/32` }, { token: project.a.rw });
    assert.equal(assigned.status, 201);
    const b = project.b.rw;
    const foreign: Array<[string, string, string, unknown]> = [
      ['list', 'GET', `/projects/${project.a.id}/ips`, undefined],
      ['reserve', 'POST', `/projects/${project.a.id}/ips`, { type: 'public_ipv4', metro: 'da', quantity: 1 }],
      ['get reservation', 'GET', `/ips/${r.body.id}`, undefined],
      ['get assignment', 'GET', `/ips/${assigned.body.id}`, undefined],
      ['patch', 'PATCH', `/ips/${r.body.id}`, { tags: ['mine'] }],
      ['delete reservation', 'DELETE', `/ips/${r.body.id}`, undefined],
      ['delete assignment', 'DELETE', `/ips/${assigned.body.id}`, undefined],
      ['available', 'GET', `/ips/${r.body.id}/available?cidr=32`, undefined],
      ['assign to a foreign device', 'POST', `/devices/${dev}/ips`, { address: `${ipOf(range(cidrOf(r.body))[0] + 1)}/32` }],
    ];
    for (const [name, method, path, body] of foreign) assert.equal((await metal(s, method, path, body, { token: b })).status, 404, `another project's key: ${name}`);
    // B cannot assign A's address to its own device either: it is in none of B's reservations.
    const bdev = await device(project.b.ns, 'iso-b');
    const steal = await metal(s, 'POST', `/devices/${bdev}/ips`, { address: `${ipOf(range(cidrOf(r.body))[0] + 1)}/32` }, { token: b });
    assert.equal(steal.status, 422);
    const ro = project.a.ro;
    const writes: Array<[string, string, string, unknown]> = [
      ['reserve', 'POST', `/projects/${project.a.id}/ips`, { type: 'public_ipv4', metro: 'da', quantity: 1 }],
      ['patch', 'PATCH', `/ips/${r.body.id}`, { tags: ['ro'] }],
      ['delete', 'DELETE', `/ips/${assigned.body.id}`, undefined],
      ['assign', 'POST', `/devices/${dev}/ips`, { address: `${ipOf(range(cidrOf(r.body))[0] + 1)}/32` }],
    ];
    for (const [name, method, path, body] of writes) assert.equal((await metal(s, method, path, body, { token: ro })).status, 403, `read-only key: ${name}`);
    assert.equal((await metal(s, 'GET', `/ips/${assigned.body.id}`, undefined, { token: ro })).status, 200, 'a read-only key reads');
    assert.deepEqual((await metal(s, 'GET', `/ips/${r.body.id}`)).body.tags, [], 'nothing was changed');
  });

  test('no address is handed out twice under concurrent reserve and assign requests', async () => {
    // 24 reservations at once, from two projects, of mixed sizes.
    const sizes = [1, 2, 4, 8];
    const reserved = await Promise.all(Array.from({ length: 24 }, (_, i) => reserve(i % 2 ? 'a' : 'b', { type: 'public_ipv4', metro: 'sv', quantity: sizes[i % 4] })));
    for (const r of reserved) assert.equal(r.status, 201, r.text);
    assertDisjoint(reserved.map((r) => cidrOf(r.body)), 'concurrent reservations');
    const claims = (await kube(s, 'GET', '/apis/metalplane.dev/v1alpha1/ipaddresses')).items as Array<{ spec: { network: string; prefix: number; family: number; pool: string; use: string } }>;
    assertDisjoint(claims.filter((c) => c.spec.family === 4 && c.spec.pool === 'sv-public-ipv4').map((c) => `${c.spec.network}/${c.spec.prefix}`), 'claims in the pool');

    // 16 addresses, each asked for by two devices at once, plus /31s over them: never overlapping winners.
    const block = await reserve('a', { type: 'public_ipv4', metro: 'da', quantity: 16 });
    const [first] = range(cidrOf(block.body));
    const devs = [await device(project.a.ns, 'race-1'), await device(project.a.ns, 'race-2')];
    const asks: Array<{ dev: string; address: string }> = [];
    for (let i = 0; i < 16; i++) for (const dev of devs) asks.push({ dev, address: `${ipOf(first + i)}/32` });
    for (let i = 0; i < 16; i += 2) asks.push({ dev: devs[i % 4 === 0 ? 0 : 1]!, address: `${ipOf(first + i)}/31` });
    const answers = await Promise.all(asks.map((a) => metal(s, 'POST', `/devices/${a.dev}/ips`, { address: a.address }, { token: project.a.rw })));
    for (const x of answers) assert.ok(x.status === 201 || x.status === 422, `${x.status} ${x.text}`);
    const won = answers.filter((x) => x.status === 201).map((x) => `${x.body.network}/${x.body.cidr}`);
    assertDisjoint(won, 'assignments won');
    const covered = won.reduce((n, c) => n + (range(c)[1] - range(c)[0] + 1), 0);
    assert.equal(covered, 16, 'every address of the block went to exactly one winner');
    const listed = await metal(s, 'GET', `/ips/${block.body.id}?include=assignments`);
    assert.deepEqual(listed.body.assignments.map((x: { network: string; cidr: number }) => `${x.network}/${x.cidr}`).sort(), [...won].sort());
    assert.equal((await metal(s, 'GET', `/ips/${block.body.id}/available?cidr=32`)).body.available.length, 0);
  });

  test('invalid IP requests are 4xx {errors} saying what would be right', async () => {
    const r = await reserve('a', { type: 'public_ipv4', metro: 'da', quantity: 2 });
    const p = `/projects/${project.a.id}/ips`;
    const cases: Array<[name: string, method: string, path: string, body: unknown, status: number, says?: RegExp]> = [
      ['quantity not a power of two', 'POST', p, { type: 'public_ipv4', metro: 'da', quantity: 3 }, 422, /power of two/],
      ['quantity zero', 'POST', p, { type: 'public_ipv4', metro: 'da', quantity: 0 }, 422, /power of two/],
      ['quantity too large', 'POST', p, { type: 'public_ipv4', metro: 'da', quantity: 512 }, 422, /256/],
      ['quantity of the wrong type', 'POST', p, { type: 'public_ipv4', metro: 'da', quantity: 'four' }, 422, /quantity/],
      ['no quantity', 'POST', p, { type: 'public_ipv4', metro: 'da' }, 422, /quantity/],
      ['no type', 'POST', p, { metro: 'da', quantity: 1 }, 422, /type/],
      ['unknown type', 'POST', p, { type: 'bogus', metro: 'da', quantity: 1 }, 422, /public_ipv4, private_ipv4/],
      ['type of the wrong type', 'POST', p, { type: 4, metro: 'da', quantity: 1 }, 422, /type/],
      ['global_ipv4', 'POST', p, { type: 'global_ipv4', quantity: 1 }, 422, /global/],
      ['vrf', 'POST', p, { type: 'vrf', vrf_id: NO_SUCH, network: '10.0.0.0', cidr: 24 }, 422, /VRF/],
      ['no metro, the known ones named', 'POST', p, { type: 'public_ipv4', quantity: 1 }, 422, /metro: required.*known metros: .*da/],
      ['unknown metro, the known ones named', 'POST', p, { type: 'public_ipv4', metro: 'xx', quantity: 1 }, 422, /"xx" is not a metro; known metros: .*da/],
      ['unknown facility', 'POST', p, { type: 'public_ipv4', facility: 'zz9', quantity: 1 }, 422, /known facilities/],
      ['private IPv4 comes as the project block', 'POST', p, { type: 'private_ipv4', metro: 'da', quantity: 8 }, 422, /block of its own/],
      ['IPv6 comes as the project block', 'POST', p, { type: 'public_ipv6', metro: 'da', quantity: 1 }, 422, /\/56/],
      ['not JSON', 'POST', p, '{"type":', 400],
      ['unknown project', 'POST', `/projects/${NO_SUCH}/ips`, { type: 'public_ipv4', metro: 'da', quantity: 1 }, 404],
      ['unknown types filter', 'GET', `${p}?types=bogus`, undefined, 422, /global_ipv4, private_ipv4, public_ipv4, public_ipv6, vrf/],
      ['bad paging', 'GET', `${p}?per_page=0`, undefined, 422, /per_page/],
      ['unknown ip id', 'GET', `/ips/${NO_SUCH}`, undefined, 404],
      ['an ip id that is not a UUID', 'GET', '/ips/nope', undefined, 404],
      ['patch of the wrong type', 'PATCH', `/ips/${r.body.id}`, { tags: 'x' }, 422, /tags/],
      ['patch of an unknown id', 'PATCH', `/ips/${NO_SUCH}`, { tags: [] }, 404],
      ['delete of an unknown id', 'DELETE', `/ips/${NO_SUCH}`, undefined, 404],
      ['available without cidr', 'GET', `/ips/${r.body.id}/available`, undefined, 422, /cidr: required/],
      ['available with a cidr larger than the block', 'GET', `/ips/${r.body.id}/available?cidr=24`, undefined, 422, /from 31 to 32/],
      ['assign to an unknown device', 'POST', `/devices/${NO_SUCH}/ips`, { address: `${r.body.network}/32` }, 404],
      ['assign without address', 'POST', `/devices/${NO_SUCH}/ips`, {}, 404],
    ];
    for (const [name, method, path, body, status, says] of cases) {
      const x = await metal(s, method, path, body, { token: project.a.rw, headers: typeof body === 'string' ? { 'content-type': 'application/json' } : {} });
      assert.equal(x.status, status, `${name}: ${x.text}`);
      if (says) assert.match(x.body.errors.join(' '), says, name);
    }
    const dev = await device(project.a.ns, 'bad-1');
    const noAddress = await metal(s, 'POST', `/devices/${dev}/ips`, {}, { token: project.a.rw });
    assert.equal(noAddress.status, 422);
    assert.match(noAddress.body.errors.join(' '), /address/);
  });
});

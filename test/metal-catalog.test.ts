// The Metal API's catalog and capacity through HTTP, every response checked against the spec: plans with where
// they can be had (from the simulated datacenter's Hardware, not the catalog's offer), metros, facilities,
// operating systems, the capacity reports and checks — and `kubectl get plans` agreeing with all of it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { kubectlOk, startTestServer, type TestServer } from './helpers/server.js';
import { kubectlSkipReason } from './helpers/kubectl.js';
import { metal } from './helpers/metal.js';

interface Hw {
  metadata: { name: string };
  spec: { metro: string; facility: string; plan: string; maintenance?: boolean };
  status?: { state?: string; claim?: unknown };
}

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

const hardware = async (s: TestServer): Promise<Hw[]> => (await kube(s, 'GET', '/apis/metalplane.dev/v1alpha1/hardware')).items;
const isFree = (h: Hw): boolean => h.status?.state === 'available' && !h.status.claim && !h.spec.maintenance;

/** Polls (bounded) until `cond` holds; the simulated machines are discovered asynchronously. */
async function until<T>(what: string, fn: () => Promise<T | undefined>, rounds = 600): Promise<T> {
  for (let i = 0; i < rounds; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('Metal API: catalog and capacity', () => {
  let s: TestServer;
  let metroCodeById: Map<string, string>;
  const sorted = (xs: Iterable<string>): string[] => [...new Set(xs)].sort();
  /** The metros with free machines of each plan, from the Hardware (the kube API's view). */
  const freeMetros = (hw: Hw[], plan: string): string[] => sorted(hw.filter((h) => h.spec.plan === plan && isFree(h)).map((h) => h.spec.metro));
  const metalMetros = (plan: { available_in_metros: Array<{ href: string }> }): string[] => sorted(plan.available_in_metros.map((m) => metroCodeById.get(m.href.split('/').pop()!)!));

  before(async () => {
    s = await startTestServer({ args: ['--sim', '--sim-machines', '10', '--sim-speed', 'max'] });
    const metros = await metal(s, 'GET', '/locations/metros');
    metroCodeById = new Map(metros.body.metros.map((m: { id: string; code: string }) => [m.id, m.code]));
    // Every simulated machine discovered, and the plans' status counted from them.
    await until('all hardware available and counted', async () => {
      const hw = await hardware(s);
      if (hw.length !== 10 || !hw.every(isFree)) return undefined;
      const plans = (await metal(s, 'GET', '/plans')).body.plans;
      return plans.every((p: { slug: string; available_in_metros: Array<{ href: string }> }) => metalMetros(p).join() === freeMetros(hw, p.slug).join()) ? true : undefined;
    });
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
  });

  test('plans are available where free machines of them are, not everywhere the catalog offers them', async () => {
    const hw = await hardware(s);
    const r = await metal(s, 'GET', '/plans');
    assert.equal(r.status, 200);
    const small = r.body.plans.find((p: { slug: string }) => p.slug === 'c3.small.x86');
    assert.ok(small, 'c3.small.x86 is listed');
    const offered = (await kube(s, 'GET', '/apis/metalplane.dev/v1alpha1/plans/c3.small.x86')).spec.availableIn as string[];
    const where = metalMetros(small);
    assert.deepEqual(where, freeMetros(hw, 'c3.small.x86'));
    assert.ok(where.length > 0 && where.length < offered.length, `offered in ${offered.join()} but machines only in ${where.join()}`);
    assert.ok(!where.includes('ty'), 'no machine is racked in Tokyo');
    for (const m of small.available_in_metros) assert.equal(m.price.hour, 0.75);
    assert.equal(small.pricing.hour, 0.75);
    assert.equal(small.specs.memory.total, '32GB');
    // available_in (facilities) likewise.
    const facilities = (await metal(s, 'GET', '/facilities')).body.facilities as Array<{ id: string; code: string }>;
    const facCode = new Map(facilities.map((f) => [f.id, f.code]));
    assert.deepEqual(sorted(small.available_in.map((f: { href: string }) => facCode.get(f.href.split('/').pop()!)!)), sorted(hw.filter((h) => h.spec.plan === 'c3.small.x86' && isFree(h)).map((h) => h.spec.facility)));
    // A plan of which no machine exists is available nowhere.
    const absent = r.body.plans.filter((p: { slug: string }) => !hw.some((h) => h.spec.plan === p.slug));
    for (const p of absent) assert.deepEqual(p.available_in_metros, [], p.slug);
    // include expands the metros; filters narrow the list.
    const inc = await metal(s, 'GET', '/plans?include=available_in_metros&slug=c3.small.x86');
    assert.equal(inc.body.plans.length, 1);
    assert.deepEqual(sorted(inc.body.plans[0].available_in_metros.map((m: { code: string }) => m.code)), where);
    const storage = await metal(s, 'GET', '/plans?categories=storage');
    assert.ok(storage.body.plans.length > 0 && storage.body.plans.every((p: { categories: string[] }) => p.categories.includes('storage')));
  });

  test('kubectl get plans shows METROS where machines of the plan exist, as the Metal API does', { skip: kubectlSkipReason() }, async () => {
    const hw = await hardware(s);
    const out = kubectlOk(s, ['get', 'plans', '--no-headers']);
    for (const line of out.trim().split('\n')) {
      const plan = line.split(/\s+/)[0]!;
      const where = sorted(hw.filter((h) => h.spec.plan === plan).map((h) => h.spec.metro));
      if (where.length === 0) continue;
      assert.ok(line.includes(` ${where.join(',')} `), `${plan}: METROS ${where.join(',')} in ${JSON.stringify(line)}`);
    }
    const small = kubectlOk(s, ['get', 'plan', 'c3.small.x86', '-o', 'jsonpath={.status.metros}']);
    assert.deepEqual(sorted(JSON.parse(small) as string[]), freeMetros(hw, 'c3.small.x86'));
  });

  test('capacity reports levels per metro and facility from the free machines; the POST check counts them', async () => {
    const hw = await hardware(s);
    const free = (plan: string, metro: string) => hw.filter((h) => h.spec.plan === plan && h.spec.metro === metro && isFree(h)).length;
    const byMetro = await metal(s, 'GET', '/capacity/metros');
    assert.equal(byMetro.status, 200);
    const [metro] = freeMetros(hw, 'c3.small.x86');
    assert.ok(metro);
    const n = free('c3.small.x86', metro!);
    assert.equal(byMetro.body.capacity[metro!]['c3.small.x86'].level, n >= 3 ? 'normal' : 'limited');
    assert.equal(byMetro.body.capacity.ty['c3.small.x86'].level, 'unavailable');
    for (const row of Object.values(byMetro.body.capacity) as Array<Record<string, { level: string }>>) {
      for (const c of Object.values(row)) assert.ok(['normal', 'limited', 'unavailable'].includes(c.level), c.level);
    }
    const byFacility = await metal(s, 'GET', '/capacity');
    assert.equal(byFacility.status, 200);
    assert.equal(byFacility.body.capacity.ty11['c3.small.x86'].level, 'unavailable');

    const check = await metal(s, 'POST', '/capacity/metros', {
      servers: [
        { metro: metro, plan: 'c3.small.x86', quantity: String(n) },
        { metro: metro, plan: 'c3.small.x86', quantity: String(n + 1) },
        { metro: 'ty', plan: 'c3.small.x86', quantity: '1' },
      ],
    });
    assert.equal(check.status, 200);
    assert.deepEqual(check.body.servers.map((x: { available: boolean }) => x.available), [true, false, false]);
    assert.equal(check.body.servers[0].quantity, String(n));
    const facility = hw.find((h) => h.spec.plan === 'c3.small.x86' && isFree(h))!.spec.facility;
    const fcheck = await metal(s, 'POST', '/capacity', { servers: [{ facility, plan: 'c3.small.x86', quantity: '1' }, { facility: 'ty11', plan: 'c3.small.x86', quantity: '1' }] });
    assert.equal(fcheck.status, 200);
    assert.deepEqual(fcheck.body.servers.map((x: { available: boolean }) => x.available), [true, false]);
  });

  test('a machine taken by a device leaves the free count (level-based: the Plan status follows the Hardware)', async () => {
    const hw = await hardware(s);
    const [metro] = freeMetros(hw, 'c3.small.x86');
    const n = hw.filter((h) => h.spec.plan === 'c3.small.x86' && h.spec.metro === metro && isFree(h)).length;
    const project = await metal(s, 'POST', '/projects', { name: 'capacity user' });
    const ns = (await kube(s, 'GET', '/api/v1/namespaces')).items.find((x: { metadata: { uid: string } }) => x.metadata.uid === project.body.id).metadata.name;
    await kube(s, 'POST', `/apis/metalplane.dev/v1alpha1/namespaces/${ns}/devices`, {
      apiVersion: 'metalplane.dev/v1alpha1',
      kind: 'Device',
      metadata: { name: 'taker' },
      spec: { metro, plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04', hostname: 'taker' },
    });
    const checkOf = async (q: number) =>
      (await metal(s, 'POST', '/capacity/metros', { servers: [{ metro, plan: 'c3.small.x86', quantity: String(q) }] })).body.servers[0].available as boolean;
    await until('the plan status to count the taken machine', async () => ((await checkOf(n)) ? undefined : true));
    if (n > 1) assert.equal(await checkOf(n - 1), true, 'the others are still free');
    const status = (await kube(s, 'GET', '/apis/metalplane.dev/v1alpha1/plans/c3.small.x86')).status;
    const m = status.capacity.find((c: { metro: string }) => c.metro === metro);
    assert.equal(m.available, n - 1);
    assert.ok(m.inUse >= 1);
  });

  test('metros, facilities and operating systems', async () => {
    const metros = await metal(s, 'GET', '/locations/metros');
    const da = metros.body.metros.find((m: { code: string }) => m.code === 'da');
    assert.deepEqual([da.name, da.country], ['Dallas', 'US']);
    const one = await metal(s, 'GET', `/locations/metros/${da.id}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.code, 'da');
    assert.equal((await metal(s, 'GET', '/locations/metros/00000000-0000-4000-8000-000000000000')).status, 404);
    const fac = await metal(s, 'GET', '/facilities');
    const da11 = fac.body.facilities.find((f: { code: string }) => f.code === 'da11');
    assert.equal(da11.metro.code, 'da');
    assert.ok(da11.features.includes('baremetal'));
    const os = await metal(s, 'GET', '/operating-systems');
    const ubuntu = os.body.operating_systems.find((o: { slug: string }) => o.slug === 'ubuntu_24_04');
    assert.ok(ubuntu && ubuntu.distro === 'ubuntu' && ubuntu.provisionable_on.length > 0);
  });

  test('project-scoped catalog reads: a project key sees its own project, not another', async () => {
    const a = (await metal(s, 'POST', '/projects', { name: 'catalog a' })).body.id;
    const b = (await metal(s, 'POST', '/projects', { name: 'catalog b' })).body.id;
    const key = (await metal(s, 'POST', `/projects/${a}/api-keys`, { description: 'a', read_only: true })).body.token as string;
    for (const path of ['plans', 'facilities']) {
      const own = await metal(s, 'GET', `/projects/${a}/${path}`, undefined, { token: key });
      assert.equal(own.status, 200, path);
      assert.ok((own.body[path] as unknown[]).length > 0, path);
      assert.equal((await metal(s, 'GET', `/projects/${b}/${path}`, undefined, { token: key })).status, 404, `${path} of another project`);
      assert.equal((await metal(s, 'GET', `/projects/00000000-0000-4000-8000-000000000000/${path}`)).status, 404, `${path} of no project`);
    }
  });

  test('invalid catalog and capacity requests are 4xx {errors} saying what would be right', async () => {
    const cases: Array<[name: string, method: string, path: string, body: unknown, status: number, says?: RegExp]> = [
      ['unknown plan type', 'GET', '/plans?type=huge', undefined, 422, /standard, workload_optimized, custom/],
      ['unknown category', 'GET', '/plans?categories=compute,bogus', undefined, 422, /bogus/],
      ['no servers', 'POST', '/capacity/metros', {}, 422, /servers/],
      ['unknown metro, the known ones named', 'POST', '/capacity/metros', { servers: [{ metro: 'xx', plan: 'c3.small.x86', quantity: '1' }] }, 422, /"xx" is not a metro; known metros: .*da/],
      ['unknown plan', 'POST', '/capacity/metros', { servers: [{ metro: 'da', plan: 'c9.huge', quantity: '1' }] }, 422, /known plans: .*c3\.small\.x86/],
      ['zero quantity', 'POST', '/capacity/metros', { servers: [{ metro: 'da', plan: 'c3.small.x86', quantity: '0' }] }, 422, /quantity/],
      ['quantity not a number', 'POST', '/capacity/metros', { servers: [{ metro: 'da', plan: 'c3.small.x86', quantity: 'lots' }] }, 422, /quantity/],
      ['quantity of the wrong type', 'POST', '/capacity/metros', { servers: [{ metro: 'da', plan: 'c3.small.x86', quantity: 2 }] }, 422, /quantity/],
      ['servers not a list', 'POST', '/capacity/metros', { servers: 'da' }, 422, /servers/],
      ['facility check without facility', 'POST', '/capacity', { servers: [{ plan: 'c3.small.x86', quantity: '1' }] }, 422, /facility/],
      ['unknown facility', 'POST', '/capacity', { servers: [{ facility: 'zz9', plan: 'c3.small.x86', quantity: '1' }] }, 422, /known facilities: .*da11/],
      ['not JSON', 'POST', '/capacity/metros', '{"servers":', 400],
      ['unknown metro id', 'GET', '/locations/metros/nope', undefined, 404],
    ];
    for (const [name, method, path, body, status, says] of cases) {
      const r = await metal(s, method, path, body, { headers: typeof body === 'string' ? { 'content-type': 'application/json' } : {} });
      assert.equal(r.status, status, `${name}: ${r.text}`);
      if (says) assert.match(r.body.errors.join(' '), says, name);
    }
  });
});

// Two `metalplane up` replicas on one PostgreSQL and the simulated datacenter as its own process (`metalplane
// sim`), end to end: kubectl and the Metal API see the same objects through either replica; a watch on B sees
// A's writes in order; kill -9 of the leader while devices are mid-provisioning, and the other replica takes
// the lease within the lease duration and brings every device to active, with no machine or IP given twice.
//
// The sim enrolls its machines through B's kube API (HTTPS, the replicas' one CA, A's admin token: tokens live
// in the store) and its machines netboot from B, so their agents call B; both replicas reach the sim's BMCs
// over Redfish and its switches through the HTTP switch driver (--sim-url). A leads first (it starts first),
// so A's controllers drive machines whose agents talk to B — agent liveness comes from heartbeats in the store.
// The machines run at speed 10 and the replicas are told so (--time-scale 10): a provisioning takes about 10 s,
// long enough to kill A in the middle of one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, kubectlOk, startTestServer, waitFor, type TestServer } from './helpers/server.js';
import { freePort, startTestSim, type TestSim } from './helpers/sim.js';
import { startTestPostgres } from '../src/store/postgres/testing.js';
import { formatKeyFile, newEncryptionKey } from '../src/store/encryption.js';

const DEVICES = '/apis/metalplane.dev/v1alpha1/namespaces/default/devices';
const WORKFLOWS = '/apis/metalplane.dev/v1alpha1/namespaces/default/workflows';
const HARDWARE = '/apis/metalplane.dev/v1alpha1/hardware';
const LEASE = '/apis/coordination.k8s.io/v1/namespaces/metalplane-system/leases/metalplane-controllers';
const MACHINES = 6;
// The sim's first six machines hold three c3.small.x86 in metro da.
const DEVICE_COUNT = 3;
const SPEED = '10';
/** The elector's retry interval (src/runtime/leader.ts): how often a candidate looks at the lease and tries it. */
const LEASE_RETRY_MS = 2_000;

interface Obj {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  spec: Record<string, unknown>;
  status?: Record<string, unknown>;
}

interface WorkflowStatus {
  state?: string;
  current?: number;
  actions?: Array<{ name: string; state: string }>;
}

const pg = await startTestPostgres();

describe('two replicas on one PostgreSQL with the sim as its own process', { skip: typeof pg === 'string' ? pg : false }, () => {
  let a: TestServer;
  let b: TestServer;
  let sim: TestSim;
  let dir: string;

  before(async () => {
    if (typeof pg === 'string') return;
    dir = mkdtempSync(join(tmpdir(), 'metalplane-replicas-'));
    const keyFile = join(dir, 'encryption.key');
    writeFileSync(keyFile, formatKeyFile([newEncryptionKey()]), { mode: 0o600 });
    const store = await pg.freshUrl();
    // The servers are told where the sim will listen before it runs: it enrolls into them.
    const simUrl = `http://127.0.0.1:${await freePort()}`;
    const shared = ['--store', store, '--encryption-key-file', keyFile, '--sim-url', simUrl, '--time-scale', SPEED];
    a = await startTestServer({ args: shared });
    const simToken = join(a.dataDir, 'admin-token');
    // A is up first, so it holds the lease. Its own admin token is the sim's; B is given the same file.
    b = await startTestServer({ args: [...shared, '--sim-token-file', simToken] });
    sim = await startTestSim(['--server', b.url, '--token-file', simToken, '--ca-file', join(a.dataDir, 'ca.crt'), '--listen', new URL(simUrl).host, '--machines', String(MACHINES), '--speed', SPEED, '--log-level', 'warn']);
    assert.equal(sim.url, simUrl);
    await waitFor(`${MACHINES} machines available, seen through A`, async () => {
      const hw = ((await api(a, 'GET', HARDWARE)).body as { items: Obj[] }).items;
      return hw.length === MACHINES && hw.every((h) => h.status?.state === 'available') ? true : undefined;
    }, 60_000);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop(), sim?.stop()]);
    a?.cleanup();
    b?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('kubectl with A kubeconfig works against B (one CA, shared tokens), and both see the same objects', async () => {
    assert.equal(a.ca, b.ca, 'the replicas share one CA');
    const toB = join(dir, 'kubeconfig-a-to-b');
    writeFileSync(toB, readFileSync(a.kubeconfig, 'utf8').replace(a.url, b.url));
    kubectlOk(a, ['create', 'namespace', 'made-on-a']);
    await waitFor('B serves the namespace created on A', () => {
      const out = kubectlOk({ kubeconfig: toB }, ['get', 'namespaces', '-o', 'name']);
      return out.includes('namespace/made-on-a') ? true : undefined;
    });
    // The sim's machines, enrolled through B, are the same through A; their BMCs are the sim process.
    const names = (kubeconfig: string) => kubectlOk({ kubeconfig }, ['get', 'hardware', '-o', 'jsonpath={range .items[*]}{.metadata.name} {.spec.bmc.address}{"\\n"}{end}']).trim().split('\n').sort();
    const viaA = names(a.kubeconfig);
    assert.equal(viaA.length, MACHINES);
    assert.deepEqual(names(toB), viaA);
    for (const line of viaA) assert.equal(line.split(' ')[1], sim.url, `${line}: the BMC address is the sim process`);
    // A's admin token as the Metal API key on both: tokens live in the store.
    const metal = (s: TestServer, path: string) => api(s, 'GET', path, undefined, { 'x-auth-token': a.token });
    for (const path of ['/metal/v1/projects', '/metal/v1/plans']) {
      const [ra, rb] = [await metal(a, path), await metal(b, path)];
      assert.equal(ra.status, 200, ra.text);
      assert.deepEqual(rb.body, ra.body, `${path} is the same through either replica`);
    }
    // Either replica passes its /sim/v1 on to the sim process.
    const [ma, mb] = [await api(a, 'GET', '/sim/v1/machines'), await api(b, 'GET', '/sim/v1/machines')];
    assert.equal(ma.status, 200, ma.text);
    assert.deepEqual((mb.body as { machines: Array<{ id: string }> }).machines.map((m) => m.id), (ma.body as { machines: Array<{ id: string }> }).machines.map((m) => m.id));
  });

  test('a watch on B sees the writes made on A, every one, in order', async () => {
    const rv = ((await api(b, 'GET', '/api/v1/namespaces')).body as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    const ctl = new AbortController();
    const res = await fetch(`${b.plainUrl}/api/v1/namespaces?watch=1&resourceVersion=${rv}`, { headers: { authorization: `Bearer ${b.token}` }, signal: ctl.signal });
    const seen: { type: string; name: string; rv: number }[] = [];
    const reading = (async () => {
      let buf = '';
      const dec = new TextDecoder();
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += dec.decode(chunk, { stream: true });
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + 1);
            if (!line.trim()) continue;
            const ev = JSON.parse(line) as { type: string; object: Obj };
            seen.push({ type: ev.type, name: ev.object.metadata.name, rv: Number(ev.object.metadata.resourceVersion) });
          }
        }
      } catch {
        // aborted at the end
      }
    })();
    const names = Array.from({ length: 10 }, (_, i) => `watched-${i}`);
    for (const n of names) {
      const r = await api(a, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: n } });
      assert.equal(r.status, 201, r.text);
    }
    await waitFor('B watch delivered all ten', () => (seen.filter((e) => e.name.startsWith('watched-')).length >= 10 ? true : undefined));
    ctl.abort();
    await reading;
    const added = seen.filter((e) => e.name.startsWith('watched-'));
    assert.deepEqual(added.map((e) => [e.type, e.name]), names.map((n) => ['ADDED', n]));
    for (let i = 1; i < added.length; i++) assert.ok(added[i].rv > added[i - 1].rv, 'resourceVersions increase');
  });

  test('kill -9 of the leader mid-provisioning: B takes the lease within the lease duration, every device becomes active, no machine or IP twice', async (t) => {
    const lease = async (s: TestServer) => (await api(s, 'GET', LEASE)).body as Obj;
    assert.match(String((await lease(b)).spec.holderIdentity), new RegExp(`_${a.proc.pid}$`), 'A leads');
    const names = Array.from({ length: DEVICE_COUNT }, (_, i) => `ha-${i}`);
    for (const name of names) {
      const r = await api(a, 'POST', DEVICES, {
        apiVersion: 'metalplane.dev/v1alpha1',
        kind: 'Device',
        metadata: { name },
        spec: { plan: 'c3.small.x86', metro: 'da', operatingSystem: 'ubuntu_24_04' },
      });
      assert.equal(r.status, 201, r.text);
    }
    // Mid-provisioning: every device's workflow running, with an action under way or done, and none finished;
    // one of them past the image, where the leader's own BMC call (set-boot-disk) and the reboot into the
    // installed OS are.
    const inFlight = await waitFor('every device mid-provisioning under A, one past the image', async () => {
      const devices = ((await api(b, 'GET', DEVICES)).body as { items: Obj[] }).items;
      const workflows = ((await api(b, 'GET', WORKFLOWS)).body as { items: Obj[] }).items;
      const progress = devices.map((d) => {
        const wf = workflows.find((w) => w.metadata.name === d.status?.workflow);
        const st = wf?.status as WorkflowStatus | undefined;
        const underway = d.status?.state === 'provisioning' && st?.state === 'running' && (st.actions ?? []).some((x) => x.state === 'running' || x.state === 'succeeded');
        return underway ? `${d.metadata.name}: ${st!.actions![st!.current ?? 0]!.name} ${st!.actions![st!.current ?? 0]!.state}` : undefined;
      });
      const pastImage = progress.some((p) => /: (set-boot-disk|reboot|phone-home) /.test(p ?? ''));
      return devices.length === DEVICE_COUNT && progress.every((p) => p !== undefined) && pastImage ? progress : undefined;
    }, 60_000, 50);
    await a.kill();
    const lastRenewByA = Date.parse(String((await lease(b)).spec.renewTime));

    const t0 = Date.now();
    const taken = await waitFor('B holds the lease', async () => {
      const l = await lease(b);
      return String(l.spec.holderIdentity).endsWith(`_${b.proc.pid}`) ? l : undefined;
    }, 60_000, 200);
    const durationMs = Number(taken.spec.leaseDurationSeconds) * 1000;
    // Measured on the lease itself (one host, one clock): from A's last renewal to B's acquisition. B counts the
    // duration from when it saw that renewal and tries every retry interval, so it may be up to two later.
    const gap = Date.parse(String(taken.spec.acquireTime)) - lastRenewByA;
    assert.ok(gap <= durationMs + 2 * LEASE_RETRY_MS, `B acquired the lease ${gap} ms after A's last renewal (lease ${durationMs} ms; seen by the test after ${Date.now() - t0} ms)`);
    t.diagnostic(`in flight at the kill: ${inFlight.join('; ')}; B took the lease ${gap} ms after A's last renewal`);

    let last: Obj[] = [];
    const devices = await waitFor('every device settled', async () => {
      const ds = ((await api(b, 'GET', DEVICES)).body as { items: Obj[] }).items;
      last = ds;
      return ds.length === DEVICE_COUNT && ds.every((d) => d.status?.state === 'active' || d.status?.state === 'failed') ? ds : undefined;
    }, 150_000, 200).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(last.map((d) => [d.metadata.name, d.status?.state, d.status?.hardware, (d.status?.conditions as { type: string; message: string }[] | undefined)?.map((c) => `${c.type}: ${c.message}`)]))}\nin flight at the kill: ${inFlight.join('; ')}\nB stderr: ${b.stderr().slice(-3000)}`);
    });
    assert.deepEqual(devices.map((d) => [d.metadata.name, d.status?.state]), devices.map((d) => [d.metadata.name, 'active']), `in flight at the kill: ${inFlight.join('; ')}`);
    const machines = devices.map((d) => d.status!.hardware as string);
    assert.equal(new Set(machines).size, DEVICE_COUNT, `one machine per device: ${machines.join(', ')}`);
    const ips = devices.flatMap((d) => (d.status!.ipAddresses as { address: string }[]).map((ip) => ip.address));
    assert.equal(new Set(ips).size, ips.length, `no IP address given twice: ${ips.join(', ')}`);
    // The machines outlived A: the same sim process, and each device's machine booted its installed OS.
    assert.equal(sim.proc.exitCode, null, 'the sim process still runs');
    const simApi = (path: string) => fetch(`${sim.url}${path}`, { headers: { authorization: `Bearer ${a.token}` } }).then((r) => r.json());
    for (const m of machines) {
      const snap = (await simApi(`/sim/v1/machines/${m}`)) as { phase: string; installedImage?: string; phonedHomeAt?: string };
      assert.deepEqual([snap.phase, snap.installedImage, typeof snap.phonedHomeAt], ['os', 'ubuntu_24_04', 'string'], `${m} runs its OS`);
      // The network controller told the sim's switches through the HTTP switch driver: the NICs are bonded.
      const net = (await simApi(`/sim/v1/machines/${m}/network`)) as { ports: Array<{ lag?: string }> };
      assert.ok(net.ports.length > 0 && net.ports.every((p) => p.lag === `${m}-bond0`), `${m}: ports in the bond: ${JSON.stringify(net.ports)}`);
    }
  });
});

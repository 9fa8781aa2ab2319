// kill -9 during the first discovery, at the default sim speed: the restarted server (same data dir) finds
// discover workflows mid-way whose machines went down with the in-process simulation, and starts them over
// from power-on at once instead of waiting out their timeouts (which took 45–100 s). The bound below is a
// correctness bound with a wide margin (a cold discovery takes ~7 s at speed 10, the leader lease of the killed
// process ~15 s), not a benchmark.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, startTestServer, waitFor, type TestServer } from './helpers/server.js';

const HARDWARE = '/apis/metalplane.dev/v1alpha1/hardware';
const WORKFLOWS = '/apis/metalplane.dev/v1alpha1/namespaces/metalplane-system/workflows';
const LEASE = '/apis/coordination.k8s.io/v1/namespaces/metalplane-system/leases/metalplane-controllers';
const MACHINES = 12;

interface Obj {
  metadata: { name: string };
  spec: Record<string, any>;
  status?: Record<string, any>;
}

async function list(s: TestServer, path: string): Promise<Obj[]> {
  const r = await api(s, 'GET', path);
  assert.equal(r.status, 200, `GET ${path}: ${r.text}`);
  return (r.body as { items: Obj[] }).items;
}

test('kill -9 during the first discovery: after the restart the machines are available within 30 s', async (t) => {
  const args = ['--sim', '--sim-machines', String(MACHINES)];
  const first = await startTestServer({ args });
  let second: TestServer | undefined;
  try {
    // Kill once every machine is being discovered and some are past power-on (booting, registering, inventory).
    await waitFor('discovery under way', async () => {
      const wfs = (await list(first, WORKFLOWS)).filter((w) => w.spec.purpose === 'discover');
      return wfs.length === MACHINES && wfs.every((w) => w.status?.state === 'running') && wfs.some((w) => (w.status?.current ?? 0) >= 1) ? true : undefined;
    }, 30_000, 50);
    await first.kill();
    assert.equal(first.proc.signalCode, 'SIGKILL');

    second = await startTestServer({ dataDir: first.dataDir, args });
    const restartedAt = Date.now();
    const pid = second.proc.pid;
    let ledAt: number | undefined;
    const hw = await waitFor('every machine available', async () => {
      if (ledAt === undefined) {
        const lease = await api(second!, 'GET', LEASE);
        if (lease.status === 200 && String(lease.body.spec?.holderIdentity ?? '').endsWith(`_${pid}`)) ledAt = Date.now();
      }
      const all = await list(second!, HARDWARE);
      return all.length === MACHINES && all.every((h) => h.status?.state === 'available') ? all : undefined;
    }, 30_000, 100);
    t.diagnostic(`${hw.length} machines available ${Date.now() - restartedAt} ms after the restart (the controllers took over the lease after ${ledAt === undefined ? '?' : ledAt - restartedAt} ms)`);
    const wfs = (await list(second, WORKFLOWS)).filter((w) => w.spec.purpose === 'discover');
    assert.ok(wfs.some((w) => (w.status?.restarts ?? 0) > 0), 'a discovery whose machine was lost started over');
    assert.ok(!wfs.some((w) => w.status?.state === 'failed'), `no discovery failed: ${JSON.stringify(wfs.filter((w) => w.status?.state === 'failed').map((w) => w.status?.failure))}`);
  } finally {
    await second?.stop();
    await first.kill();
    first.cleanup();
  }
});

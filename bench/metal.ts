// Metal API benchmarks through the real HTTP surface of a real `metalplane up`, each beside the kube API doing the
// same work in the same run:
//   metal.create — POST /metal/v1/projects/{id}/devices, against api.create.device (POST of a Device to the kube API);
//   metal.list   — GET /metal/v1/projects/{id}/devices?include=project,plan&per_page=1000 of 1000 devices, against
//                  the kube API's list of the same objects.
// The simulated datacenter has a few machines, so that creates are accepted; the other devices wait queued.
import { startTestServer } from '../test/helpers/server.js';
import { runLoad } from './load.js';
import type { BenchOptions, BenchResult } from './types.js';

function round(n: number, d = 1): number {
  const f = 10 ** d;
  return Math.round(n * f) / f;
}

async function median(times: number, fn: () => Promise<void>): Promise<number> {
  const out: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  out.sort((a, b) => a - b);
  return out[Math.floor(out.length / 2)]!;
}

export async function benchMetal(opts: BenchOptions): Promise<BenchResult[]> {
  const server = await startTestServer({ args: ['--sim', '--sim-machines', '4', '--sim-speed', 'max', '--log-level', 'error'], timeoutMs: 60_000 });
  const results: BenchResult[] = [];
  const metalHeaders = { 'x-auth-token': server.token };
  const kubeHeaders = { authorization: `Bearer ${server.token}` };
  try {
    const created = await fetch(`${server.plainUrl}/metal/v1/projects`, { method: 'POST', headers: { ...metalHeaders, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'bench' }) });
    const project = (await created.json()) as { id: string };
    const nsList = (await (await fetch(`${server.plainUrl}/api/v1/namespaces`, { headers: kubeHeaders })).json()) as { items: { metadata: { name: string; uid: string } }[] };
    const ns = nsList.items.find((n) => n.metadata.uid === project.id)!.metadata.name;
    const half = 500;
    const c = 16;
    const kubeDevice = (i: number): string =>
      JSON.stringify({ apiVersion: 'metalplane.dev/v1alpha1', kind: 'Device', metadata: { name: `kube-${i}` }, spec: { metro: 'da', plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04' } });
    const metalDevice = (i: number): string => JSON.stringify({ metro: 'da', plan: 'c3.small.x86', operating_system: 'ubuntu_24_04', hostname: `metal-${i}` });
    // Warm-up of both paths (JIT, the spec's input schema compiled once), not counted.
    await runLoad({ url: `${server.plainUrl}/apis/metalplane.dev/v1alpha1/namespaces/${ns}/devices`, method: 'POST', headers: kubeHeaders, body: (i) => kubeDevice(100_000 + i) }, 20, 4);
    await runLoad({ url: `${server.plainUrl}/metal/v1/projects/${project.id}/devices`, method: 'POST', headers: metalHeaders, body: (i) => metalDevice(100_000 + i) }, 20, 4);
    const kube = await runLoad({ url: `${server.plainUrl}/apis/metalplane.dev/v1alpha1/namespaces/${ns}/devices`, method: 'POST', headers: kubeHeaders, body: kubeDevice }, half - 20, c, 120_000);
    const metal = await runLoad({ url: `${server.plainUrl}/metal/v1/projects/${project.id}/devices`, method: 'POST', headers: metalHeaders, body: metalDevice }, half - 20, c, 120_000);
    if (kube.errors || metal.errors) throw new Error(`device creates failed: kube ${kube.errors}, metal ${metal.errors}`);
    results.push({
      name: 'metal.create',
      value: round(metal.perSecond),
      unit: 'req/s',
      baseline: 'api.create.device (kube API POST of a Device, same run)',
      baselineValue: round(kube.perSecond),
      ratio: round(metal.perSecond / kube.perSecond, 3),
      note: `p99 ${round(metal.p99ms, 2)} ms vs ${round(kube.p99ms, 2)} ms, ${half - 20} each, concurrency ${c}`,
    });

    const runs = opts.quick ? 3 : 7;
    let metalCount = 0;
    const metalMs = await median(runs, async () => {
      const r = await fetch(`${server.plainUrl}/metal/v1/projects/${project.id}/devices?include=project,plan&per_page=1000`, { headers: metalHeaders });
      const body = (await r.json()) as { devices: unknown[] };
      metalCount = body.devices.length;
    });
    let kubeCount = 0;
    const kubeMs = await median(runs, async () => {
      const r = await fetch(`${server.plainUrl}/apis/metalplane.dev/v1alpha1/namespaces/${ns}/devices`, { headers: kubeHeaders });
      const body = (await r.json()) as { items: unknown[] };
      kubeCount = body.items.length;
    });
    if (metalCount !== 1000 || kubeCount !== 1000) throw new Error(`metal.list: expected 1000 devices, got metal ${metalCount}, kube ${kubeCount}`);
    results.push({
      name: 'metal.list',
      value: round(metalMs),
      unit: 'ms',
      baseline: 'kube API list of the same 1000 devices (same run)',
      baselineValue: round(kubeMs),
      // For times, the ratio is baseline / value (higher is better), as for throughputs.
      ratio: round(kubeMs / metalMs, 3),
      note: `median of ${runs}; include=project,plan; per_page=1000`,
    });
  } finally {
    await server.stop();
    server.cleanup();
  }
  return results;
}

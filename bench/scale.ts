// One server at scale: 10 000 Hardware among 100 000 objects (the rest ~1 KB ConfigMaps in 30 namespaces).
// The objects are written through the registry in-process (the same validation and metadata as through the
// API, but without HTTP, so the load takes seconds rather than minutes) into the data dir of a server that ran
// once; then the server is started again on it, and measured: start-up to ready after that restart, resident
// memory once the informers synced (and its peak), `kubectl get hardware` (real kubectl: a Table, in pages of 500), a full
// list of the Hardware as JSON, a watch's initial state of them, and watch delivery latency with 100 watchers.
// --quick runs a tenth of it (1 000 Hardware, 10 000 objects); every row is named after what it ran.
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../test/helpers/server.js';
import { openStore } from '../src/store/index.js';
import { Registry } from '../src/apiserver/registry.js';
import { KindRegistry, allKinds } from '../src/kinds/index.js';
import type { KubeObject } from '../src/kinds/types.js';
import type { BenchOptions, BenchResult } from './types.js';
import { openDelayWatches } from './load.js';

const NAMESPACES = 30;

function round(n: number, d = 1): number {
  const f = 10 ** d;
  return Math.round(n * f) / f;
}

function hardware(i: number): KubeObject {
  const mac = (n: number): string => ['b4', '96', '91', (n >> 16) & 255, (n >> 8) & 255, n & 255].map((x) => (typeof x === 'string' ? x : x.toString(16).padStart(2, '0'))).join(':');
  return {
    apiVersion: 'metalplane.dev/v1alpha1',
    kind: 'Hardware',
    metadata: { name: `hw-${String(i).padStart(5, '0')}`, labels: { 'metalplane.dev/plan': 'c3.small.x86', rack: `r${i % 40}` } },
    spec: {
      metro: 'da',
      facility: 'da11',
      rack: `r${i % 40}`,
      slot: i % 42,
      plan: 'c3.small.x86',
      // Out of service, so the controllers leave the (unreachable) BMCs alone: this measures the API, not 10 000 BMC timeouts.
      maintenance: true,
      bmc: { driver: 'redfish', address: 'https://127.0.0.1:9', systemId: `/redfish/v1/Systems/${i}`, credentialsSecret: { name: `bmc-${i}` } },
      nics: [
        { name: 'eth0', mac: mac(2 * i), pxe: true },
        { name: 'eth1', mac: mac(2 * i + 1) },
      ],
      disks: [{ device: '/dev/nvme0n1', sizeGB: 480, type: 'NVME' }],
    },
  };
}

function configMap(ns: string, i: number): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i}`, namespace: ns, labels: { bench: 'scale', shard: String(i % 10) } }, data: { payload: 'x'.repeat(900) } };
}

/** Writes the objects through an in-process registry on the server's store file (the server is stopped). */
export async function loadScaleObjects(dataDir: string, hardwareCount: number, total: number): Promise<number> {
  const t0 = performance.now();
  const store = await openStore(join(dataDir, 'state.db'));
  const registry = new Registry({ store, kinds: new KindRegistry(allKinds) });
  const hwKind = registry.kind('metalplane.dev', 'Hardware');
  const cmKind = registry.kind('', 'ConfigMap');
  const nsKind = registry.kind('', 'Namespace');
  for (let n = 0; n < NAMESPACES; n++) await registry.create(nsKind, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: `scale-${n}` } });
  const jobs: Array<() => Promise<unknown>> = [];
  for (let i = 0; i < hardwareCount; i++) {
    jobs.push(async () => {
      const hw = await registry.create(hwKind, hardware(i));
      // The state the hardware controller would write for a machine in maintenance, so the restart has nothing to do.
      await registry.updateStatus(hwKind, { ...hw, status: { state: 'maintenance', power: 'unknown', observedGeneration: hw.metadata.generation } });
    });
  }
  for (let i = 0; i < total - hardwareCount - NAMESPACES; i++) jobs.push(() => registry.create(cmKind, configMap(`scale-${i % NAMESPACES}`, i)));
  // Many writes in flight share each group commit (one fsync per batch).
  let next = 0;
  await Promise.all(Array.from({ length: 256 }, async () => {
    while (next < jobs.length) await jobs[next++]!();
  }));
  registry.close();
  await store.close();
  return (performance.now() - t0) / 1000;
}

function procStatus(pid: number): { rssMB: number; hwmMB: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
  return { rssMB: kb('VmRSS') / 1024, hwmMB: kb('VmHWM') / 1024 };
}

function serverCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

function kubectlTimed(server: TestServer, args: string[]): { ms: number; stdout: string; stderr: string } {
  const t0 = performance.now();
  const r = spawnSync('kubectl', ['--kubeconfig', server.kubeconfig, ...args], { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, KUBECACHEDIR: join(server.dataDir, 'kube-cache') } });
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms: performance.now() - t0, stdout: r.stdout, stderr: r.stderr };
}

/** From kubectl's -v=6 log: its requests and the time they took, and what its client-side rate limiter waited. */
export function kubectlLog(stderr: string): { requests: number; requestMs: number; throttledMs: number } {
  let requests = 0;
  let requestMs = 0;
  let throttledMs = 0;
  for (const line of stderr.split('\n')) {
    const req = / (GET|POST|PUT|PATCH|DELETE) \S+ \d{3} .* in (\d+) milliseconds/.exec(line);
    if (req) {
      requests++;
      requestMs += Number(req[2]);
    }
    const wait = /Waited for ([\d.]+)(ms|s) due to client-side throttling/.exec(line);
    if (wait) throttledMs += Number(wait[1]) * (wait[2] === 's' ? 1000 : 1);
  }
  return { requests, requestMs, throttledMs };
}

const HW_PATH = '/apis/metalplane.dev/v1alpha1/hardware';

/** Time until a new watch without a resourceVersion has delivered the ADDED event of every Hardware. */
function initialWatch(server: TestServer, expected: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let seen = 0;
    let buf = '';
    const req = http.get(`${server.plainUrl}${HW_PATH}?watch=true`, { headers: { authorization: `Bearer ${server.token}` } }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          if (buf.startsWith('{"type":"ADDED"')) seen++;
          buf = buf.slice(nl + 1);
        }
        if (seen >= expected) {
          resolve(performance.now() - t0);
          req.destroy();
        }
      });
      res.on('error', () => undefined);
    });
    req.on('error', (e) => (seen >= expected ? undefined : reject(e)));
    setTimeout(() => reject(new Error(`initial watch: ${seen}/${expected} after 60 s`)), 60_000).unref();
  });
}

/** 100 watchers of one Hardware; p50/p99 of (delivery − patch sent) over `writes` patches. */
async function watchLatency(server: TestServer, writes: number): Promise<{ p50: number; p99: number; deliveries: number; expected: number }> {
  const watchers = 100;
  const w = await openDelayWatches({
    url: `${server.plainUrl}${HW_PATH}?watch=true&fieldSelector=metadata.name%3Dhw-00001&resourceVersion=0`,
    token: server.token,
    count: watchers,
    mark: /"scale-mark":"(m-\d+)"/,
    type: 'MODIFIED',
  });
  const { sentAt, delays } = w;
  for (let i = 0; i < writes; i++) {
    const mark = `m-${i}`;
    sentAt.set(mark, performance.now());
    const res = await fetch(`${server.plainUrl}${HW_PATH}/hw-00001`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({ metadata: { annotations: { 'scale-mark': mark } } }),
    });
    if (!res.ok) throw new Error(`patch: ${res.status} ${await res.text()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const expected = watchers * writes;
  await w.waitFor(expected, 20_000, 20);
  w.close();
  return { p50: pct(delays, 0.5), p99: pct(delays, 0.99), deliveries: delays.length, expected };
}

export async function benchScale(opts: BenchOptions): Promise<BenchResult[]> {
  const hardwareCount = opts.quick ? 1_000 : 10_000;
  const total = opts.quick ? 10_000 : 100_000;
  const tag = `scale.${total / 1000}k`;
  const what = `${hardwareCount} Hardware of ${total} objects`;
  // First start: data dir, certificates, tokens, the seed. Then the objects, with the server stopped.
  const first = await startTestServer({ args: ['--log-level', 'error'] });
  const dataDir = first.dataDir;
  await first.stop();
  const results: BenchResult[] = [];
  let server: TestServer | undefined;
  try {
    const loadSeconds = await loadScaleObjects(dataDir, hardwareCount, total);
    const t0 = performance.now();
    server = await startTestServer({ dataDir, args: ['--log-level', 'error'], timeoutMs: 120_000 });
    const readyMs = performance.now() - t0;
    const pid = server.proc.pid!;
    // Settled: the controllers' informers have synced (RSS stops growing: two readings 2 s apart within 1 %).
    const settleStart = performance.now();
    let settled = procStatus(pid);
    for (;;) {
      await new Promise((r) => setTimeout(r, 2_000));
      const now = procStatus(pid);
      const steady = Math.abs(now.rssMB - settled.rssMB) < settled.rssMB * 0.01;
      settled = now;
      if (steady || performance.now() - settleStart > 60_000) break;
    }
    const settleSeconds = (performance.now() - settleStart) / 1000;
    results.push({ name: `${tag}.ready`, value: round(readyMs / 1000, 2), unit: 's', target: '< 5 s', note: `${what}: process start to the ready line after a restart (loaded in-process in ${round(loadSeconds)} s)` });

    const gets: number[] = [];
    const waits: number[] = [];
    const served: number[] = [];
    let lines = 0;
    let pages = 0;
    for (let i = 0; i < 3; i++) {
      // -v=6 logs each request with the time the server took, and each wait of kubectl's own rate limiter.
      const r = kubectlTimed(server, ['get', 'hardware', '-v=6']);
      gets.push(r.ms);
      lines = r.stdout.trim().split('\n').length - 1;
      const log = kubectlLog(r.stderr);
      waits.push(log.throttledMs);
      served.push(log.requestMs);
      pages = log.requests;
    }
    if (lines !== hardwareCount) throw new Error(`kubectl get hardware printed ${lines} rows, expected ${hardwareCount}`);
    const whole: number[] = [];
    for (let i = 0; i < 3; i++) whole.push(kubectlTimed(server, ['get', 'hardware', '--chunk-size=0']).ms);
    results.push({
      name: `${tag}.kubectl-get-hardware`,
      value: round(median(gets) / 1000, 2),
      unit: 's',
      target: '< 1 s',
      note:
        `median of 3, real kubectl (process start included), ${lines} rows as a Table in ${pages} pages of 500: the requests took ${round(median(served))} ms in all, ` +
        `kubectl's client-side rate limit (5 requests/s after a burst of 10, whatever the server) waited ${round(median(waits))} ms (the waits it logs, those over 50 ms); ` +
        `with --chunk-size=0 (one request) ${round(median(whole) / 1000, 2)} s`,
    });

    const lists: number[] = [];
    const cpu0 = serverCpuMs(pid);
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const res = await fetch(`${server.plainUrl}${HW_PATH}`, { headers: { authorization: `Bearer ${server.token}` } });
      const body = (await res.json()) as { items: unknown[] };
      lists.push(performance.now() - t);
      if (body.items.length !== hardwareCount) throw new Error(`list: ${body.items.length} items`);
    }
    const cpu1 = serverCpuMs(pid);
    results.push({ name: `${tag}.list-hardware`, value: round(median(lists)), unit: 'ms', note: `median of 5, all ${hardwareCount} Hardware as JSON in one response (parse included), server CPU ${round((cpu1 - cpu0) / 5)} ms per list` });

    const initial = await initialWatch(server, hardwareCount);
    results.push({ name: `${tag}.watch-initial`, value: round(initial), unit: 'ms', note: `a new watch of hardware without a resourceVersion: until its ${hardwareCount} ADDED events arrived` });

    const w = await watchLatency(server, opts.quick ? 20 : 50);
    results.push({ name: `${tag}.watch-latency.p99`, value: round(w.p99, 2), unit: 'ms', note: `100 watchers of one Hardware, ${w.deliveries}/${w.expected} deliveries of a merge patch, p50 ${round(w.p50, 2)} ms` });

    const after = procStatus(pid);
    const metrics = await (await fetch(`${server.plainUrl}/metrics`, { headers: { authorization: `Bearer ${server.token}` } })).text();
    const gauge = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN);
    const held = `the current state holds ${gauge('metalplane_current_state_objects')} objects in ${round(gauge('metalplane_current_state_text_bytes') / 1048576)} MB of JSON, the heap ${round(gauge('metalplane_process_nodejs_heap_size_used_bytes') / 1048576)} MB in use`;
    results.push({ name: `${tag}.rss`, value: round(settled.rssMB), unit: 'MB', target: '< 600 MB', note: `${what}: resident memory once the informers synced (${round(settleSeconds)} s after ready); ${round(after.rssMB)} MB after the reads above, peak ${round(after.hwmMB)} MB; ${held}` });
  } finally {
    await server?.stop();
    (server ?? first).cleanup();
  }
  return results;
}

// API benchmarks through the real HTTP surface of a real `metalplane up` child process:
//   api.create / api.get (plain HTTP and TLS) against bare Fastify on the same protocol,
//   watch.fanout.p99 (1000 watchers), list.10k.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from '../test/helpers/server.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { openDelayWatches, runLoad } from './load.js';
import { configMap, runCannon } from './cannon.js';
import { benchPostgres, rawPgInsertsPerSecond } from './store.js';
import { formatKeyFile, newEncryptionKey } from '../src/store/encryption.js';
import type { BenchOptions, BenchResult } from './types.js';

const here = fileURLToPath(new URL('.', import.meta.url));

/** Bare Fastify; with `storeFile`, also the floor of a durable create on metalplane's store (see fastify-baseline.ts). */
export async function startBaseline(tls: { certFile: string; keyFile: string } | undefined, storeFile: string): Promise<{ port: number; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [join(here, 'fastify-baseline.js'), '--store', storeFile, ...(tls ? [tls.certFile, tls.keyFile] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    proc.once('exit', (c) => reject(new Error(`baseline exited ${c}`)));
  });
  return { port, proc };
}

// The ~1 KB ConfigMap every create benchmark writes (and the etcd baseline puts) is made in cannon.ts, whose
// autocannon child builds the bodies.
export { configMap } from './cannon.js';

function ratio(name: string, value: number, unit: string, baseline: string, baselineValue: number, target: string, note?: string): BenchResult {
  return { name, value: round(value), unit, baseline, baselineValue: round(baselineValue), ratio: round(value / baselineValue, 3), target, ...(note ? { note } : {}) };
}

/**
 * CPU time (user + system, ms) the server process has used so far, from /proc: unlike latency, what the server
 * spends per delivery or per list hardly depends on how busy the shared machine is. Undefined off Linux.
 */
export function serverCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the command name, in clock ticks (100/s).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

/**
 * Waits (at most 10 s) until process `pid` is idle: under 5 % of a core over 200 ms. A measured run then pays
 * only for its own requests, not for what the run before left behind (a major GC of the creates' garbage, a
 * compaction of their revisions), which the baseline, answering from nothing, never has.
 */
export async function settled(pid: number | undefined): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    const before = serverCpuMs(pid);
    await new Promise((r) => setTimeout(r, 200));
    const after = serverCpuMs(pid);
    if (before === undefined || after === undefined || after - before < 10) return;
  }
}

/**
 * Runs a load on an idle server (see `settled`) and adds the server's CPU per request (µs) to its result: unlike
 * throughput, it hardly depends on how busy the shared machine is.
 */
export async function withServerCpu<T extends { requests: number }>(pid: number | undefined, run: () => Promise<T>): Promise<T & { cpuUs?: number }> {
  await settled(pid);
  const before = serverCpuMs(pid);
  const r = await run();
  const after = serverCpuMs(pid);
  return { ...r, ...(before !== undefined && after !== undefined && r.requests > 0 ? { cpuUs: ((after - before) * 1000) / r.requests } : {}) };
}

function cpuNote(before: number | undefined, after: number | undefined, per: number, what: string): string {
  return before === undefined || after === undefined ? '' : `, server CPU ${round(((after - before) * 1000) / per, 1)} µs per ${what}`;
}

function round(n: number, d = 1): number {
  const f = 10 ** d;
  return Math.round(n * f) / f;
}

export async function benchApi(opts: BenchOptions): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const server = await startTestServer({ args: ['--log-level', 'error'] });
  const tlsFiles = { certFile: join(server.dataDir, 'tls.crt'), keyFile: join(server.dataDir, 'tls.key') };
  const floorDir = mkdtempSync(join(tmpdir(), 'mp-floor-'));
  const plainBase = await startBaseline(undefined, join(floorDir, 'plain.db'));
  const tlsBase = await startBaseline(tlsFiles, join(floorDir, 'tls.db'));
  const auth = { authorization: `Bearer ${server.token}` };
  const n = opts.quick ? 3000 : 20000;
  const c = 32;
  try {
    for (const proto of ['http', 'https'] as const) {
      const mp = proto === 'http' ? server.plainUrl : server.url;
      const base = `${proto}://127.0.0.1:${proto === 'http' ? plainBase.port : tlsBase.port}`;
      const suffix = proto === 'https' ? '.tls' : '';
      const offset = proto === 'https' ? 1_000_000 : 0;
      // Warm both sides up to their steady state before measuring: as many requests as are measured. The JIT
      // and the heap's young generation take tens of thousands of creates to settle; after a few hundred, a
      // create cost a third more CPU than it does for the rest of the server's life.
      await runCannon({ url: `${mp}/api/v1/namespaces/default/configmaps`, method: 'POST', headers: auth, body: { kind: 'configMap', offset: offset + 500_000 } }, n, c);
      await runCannon({ url: `${base}/echo`, method: 'POST', body: { kind: 'configMap', offset: 0, same: true } }, n, c);
      await runCannon({ url: `${base}/floor`, method: 'POST', body: { kind: 'configMap', offset: 500_000 } }, n, c);
      await runCannon({ url: `${base}/floor-minimal`, method: 'POST', body: { kind: 'configMap', offset: 500_000 } }, n, c);
      await runCannon({ url: `${mp}/api/v1/namespaces/default/configmaps/bench-${offset + 500_001}`, method: 'GET', headers: auth }, n, c);
      await runCannon({ url: `${base}/get`, method: 'GET' }, n, c);
      const basePid = proto === 'http' ? plainBase.proc.pid : tlsBase.proc.pid;
      const cpuVs = (ours?: number, theirs?: number): string => (ours !== undefined && theirs !== undefined ? `, server CPU ${round(ours, 1)} µs/req vs ${round(theirs, 1)} µs for bare Fastify (${round(ours / theirs, 2)}×)` : '');
      const create = await withServerCpu(server.proc.pid, () => runCannon({ url: `${mp}/api/v1/namespaces/default/configmaps`, method: 'POST', headers: auth, body: { kind: 'configMap', offset } }, n, c));
      const echo = await withServerCpu(basePid, () => runCannon({ url: `${base}/echo`, method: 'POST', body: { kind: 'configMap', offset: 0, same: true } }, n, c));
      if (create.errors) throw new Error(`api.create${suffix}: ${create.errors} errors`);
      results.push(ratio(`api.create${suffix}`, create.perSecond, 'req/s', `bare Fastify POST echo${suffix ? ' (TLS)' : ''}`, echo.perSecond, '≥ 0.5×', `p99 ${round(create.p99ms, 2)} ms${cpuVs(create.cpuUs, echo.cpuUs)}${create.cpuUs !== undefined ? ', goal ≤ 3×' : ''}`));
      // The floor: what a durable create costs on this stack before the API does anything of its own.
      const floor = await withServerCpu(basePid, () => runCannon({ url: `${base}/floor`, method: 'POST', body: { kind: 'configMap', offset } }, n, c));
      if (floor.errors) throw new Error(`api.create.floor${suffix}: ${floor.errors} errors`);
      const minimal = await withServerCpu(basePid, () => runCannon({ url: `${base}/floor-minimal`, method: 'POST', body: { kind: 'configMap', offset } }, n, c));
      if (minimal.errors) throw new Error(`api.create.floor${suffix} (minimal store): ${minimal.errors} errors`);
      const overFloor = create.cpuUs !== undefined && floor.cpuUs !== undefined ? `; api.create${suffix} costs ${round(create.cpuUs / floor.cpuUs, 2)}× its CPU` : '';
      const onMinimal = `; on a minimal store (one table, one unique index, no history or events: bench/minimal-store.ts) ${round(minimal.perSecond)} req/s (${round(minimal.perSecond / echo.perSecond, 3)}×)${minimal.cpuUs !== undefined && echo.cpuUs !== undefined ? `, ${round(minimal.cpuUs, 1)} µs/req (${round(minimal.cpuUs / echo.cpuUs, 2)}×)` : ''}`;
      results.push(ratio(`api.create.floor${suffix}`, floor.perSecond, 'req/s', `bare Fastify POST echo${suffix ? ' (TLS)' : ''}`, echo.perSecond, 'none: the floor of a durable create', `bare Fastify + the SQLite store's group commit (synchronous=FULL), no API${cpuVs(floor.cpuUs, echo.cpuUs)}${overFloor}${onMinimal}`));
      const get = await withServerCpu(server.proc.pid, () => runCannon({ url: `${mp}/api/v1/namespaces/default/configmaps/bench-${offset + 1}`, method: 'GET', headers: auth }, n, c));
      const bget = await withServerCpu(basePid, () => runCannon({ url: `${base}/get`, method: 'GET' }, n, c));
      if (get.errors) throw new Error(`api.get${suffix}: ${get.errors} errors`);
      results.push(ratio(`api.get${suffix}`, get.perSecond, 'req/s', `bare Fastify GET${suffix ? ' (TLS)' : ''}`, bget.perSecond, '≥ 0.7×', `p99 ${round(get.p99ms, 2)} ms${cpuVs(get.cpuUs, bget.cpuUs)}`));
    }
    results.push(await benchFanout(server, opts));
    results.push(await benchList(server, opts));
    results.push(...(await benchPostgresReplicas(opts)));
  } finally {
    plainBase.proc.kill();
    tlsBase.proc.kill();
    rmSync(floorDir, { recursive: true, force: true });
    await server.stop();
    server.cleanup();
  }
  return results;
}

/** 1000 watchers on one collection; p99 of (delivery time − time the write was sent) over all deliveries. */
async function benchFanout(server: TestServer, opts: BenchOptions): Promise<BenchResult> {
  const watchers = 1000;
  const writes = opts.quick ? 20 : 100;
  const w = await openDelayWatches({
    url: `${server.plainUrl}/api/v1/namespaces/default/configmaps?watch=true&labelSelector=fanout%3Dtrue&resourceVersion=0`,
    token: server.token,
    count: watchers,
    mark: /"name":"(fan-\d+)"/,
    type: 'ADDED',
  });
  const { sentAt, delays } = w;
  const post = (i: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `fan-${i}`, labels: { fanout: 'true' } }, data: { a: 'b' } });
      const r = http.request(`${server.plainUrl}/api/v1/namespaces/default/configmaps`, { method: 'POST', headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      r.on('error', reject);
      sentAt.set(`fan-${i}`, performance.now());
      r.end(body);
    });
  const cpu0 = serverCpuMs(server.proc.pid);
  for (let i = 0; i < writes; i++) {
    await post(i);
    await new Promise((r) => setTimeout(r, 50));
  }
  const expected = watchers * writes;
  await w.waitFor(expected, 30_000, 50);
  const cpu1 = serverCpuMs(server.proc.pid);
  w.close();
  delays.sort((a, b) => a - b);
  const p99 = delays[Math.min(delays.length - 1, Math.floor(0.99 * delays.length))];
  return {
    name: 'watch.fanout.p99',
    value: round(p99, 2),
    unit: 'ms',
    target: '< 50 ms',
    note: `${watchers} watchers × ${writes} writes, ${delays.length}/${expected} deliveries, p50 ${round(delays[Math.floor(delays.length / 2)], 2)} ms${cpuNote(cpu0, cpu1, delays.length, 'delivery')}`,
  };
}

async function benchList(server: TestServer, opts: BenchOptions): Promise<BenchResult> {
  const total = 10_000;
  const ns = 'bench-list';
  await fetch(`${server.plainUrl}/api/v1/namespaces`, { method: 'POST', headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ metadata: { name: ns } }) });
  const load = await runLoad(
    { url: `${server.plainUrl}/api/v1/namespaces/${ns}/configmaps`, method: 'POST', headers: { authorization: `Bearer ${server.token}` }, body: (i) => configMap(i) },
    total,
    32,
    120_000,
  );
  if (load.requests - load.errors < total) throw new Error(`list.10k: only ${load.requests - load.errors} objects created`);
  const times: number[] = [];
  const runs = opts.quick ? 3 : 7;
  const cpu0 = serverCpuMs(server.proc.pid);
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const res = await fetch(`${server.plainUrl}/api/v1/namespaces/${ns}/configmaps`, { headers: { authorization: `Bearer ${server.token}` } });
    const body = (await res.json()) as { items: unknown[] };
    times.push(performance.now() - t0);
    if (body.items.length !== total) throw new Error(`list.10k: got ${body.items.length} items`);
  }
  const cpu1 = serverCpuMs(server.proc.pid);
  times.sort((a, b) => a - b);
  return { name: 'list.10k', value: round(times[Math.floor(times.length / 2)], 1), unit: 'ms', target: '< 150 ms', note: `median of ${times.length}, ~1 KB ConfigMaps, JSON${cpu0 !== undefined && cpu1 !== undefined ? `, server CPU ${round((cpu1 - cpu0) / runs, 1)} ms per list` : ''}` };
}

/**
 * On PostgreSQL (a throwaway local server at full durability; skipped when PostgreSQL is not installed): two
 * `metalplane up` replicas on one database. api.create through replica A against raw `pg` inserts of the same
 * objects at the same durability and concurrency; and the cross-replica watch delay: a watch on B, creates on A
 * one at a time, from sending the create to B's ADDED event.
 */
export async function benchPostgresReplicas(opts: BenchOptions): Promise<BenchResult[]> {
  const db = await benchPostgres();
  if (!db) return [];
  const dir = mkdtempSync(join(tmpdir(), 'metalplane-bench-pg-'));
  const keyFile = join(dir, 'encryption.key');
  writeFileSync(keyFile, formatKeyFile([newEncryptionKey()]), { mode: 0o600 });
  const shared = ['--log-level', 'error', '--store', await db.freshUrl(), '--encryption-key-file', keyFile];
  const a = await startTestServer({ args: shared });
  const b = await startTestServer({ args: shared });
  const results: BenchResult[] = [];
  try {
    const n = opts.quick ? 2000 : 10000;
    const c = 32;
    const auth = { authorization: `Bearer ${a.token}` };
    const url = `${a.plainUrl}/api/v1/namespaces/default/configmaps`;
    await runLoad({ url, method: 'POST', headers: auth, body: (i) => configMap(500_000 + i) }, 300, c);
    const create = await runLoad({ url, method: 'POST', headers: auth, body: configMap }, n, c);
    if (create.errors) throw new Error(`api.create.pg: ${create.errors} errors`);
    const raw = await rawPgInsertsPerSecond(await db.freshUrl(), n, c, configMap);
    results.push(ratio('api.create.pg', create.perSecond, 'req/s', `raw pg inserts of the same ConfigMaps, one autocommit INSERT each on ${c} connections`, raw, '', `replica A of two on one PostgreSQL (fsync + synchronous_commit on), ${c} in flight, p99 ${round(create.p99ms, 2)} ms`));
    results.push(await crossReplicaWatch(a, b, opts.quick ? 50 : 200));
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    a.cleanup();
    b.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

async function crossReplicaWatch(a: TestServer, b: TestServer, writes: number): Promise<BenchResult> {
  const w = await openDelayWatches({
    url: `${b.plainUrl}/api/v1/namespaces/default/configmaps?watch=true&labelSelector=xreplica%3Dtrue&resourceVersion=0`,
    token: b.token,
    count: 1,
    mark: /"name":"(xr-\d+)"/,
    type: 'ADDED',
  });
  const { sentAt, delays } = w;
  for (let i = 0; i < writes; i++) {
    const name = `xr-${i}`;
    const body = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { xreplica: 'true' } }, data: { a: 'b' } });
    sentAt.set(name, performance.now());
    const res = await fetch(`${a.plainUrl}/api/v1/namespaces/default/configmaps`, { method: 'POST', headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/json' }, body });
    if (res.status !== 201) throw new Error(`watch.cross-replica: create on A answered ${res.status}: ${await res.text()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await w.waitFor(writes, 10_000, 20);
  w.close();
  delays.sort((x, y) => x - y);
  const pct = (q: number): number => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))];
  return {
    name: 'watch.cross-replica.p99',
    value: round(pct(0.99), 2),
    unit: 'ms',
    note: `create on replica A → ADDED on a watch on replica B (one PostgreSQL, LISTEN/NOTIFY wake-up), ${delays.length}/${writes} seen, p50 ${round(pct(0.5), 2)} ms; includes the create's own latency`,
  };
}

// etcd as a baseline for durable writes (issue 20): kube API creates through a real `metalplane up` against bare
// etcd v3 puts of the same ~1 KB bodies over etcd's JSON gateway, same load generator, concurrency and count as
// api.create, in the same run. Uses the etcd that Debian's `etcd-server` installs; installs nothing, and skips
// the row when etcd is not on PATH. etcd runs per run on loopback only, with a temp data dir and its default
// durability (the WAL is fsynced per commit), and is killed and removed at the end, also on failure.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { startTestServer } from '../test/helpers/server.js';
import { freePort } from '../test/helpers/sim.js';
import { runCannon } from './cannon.js';
import type { BenchOptions, BenchResult } from './types.js';
import { startBaseline, withServerCpu } from './api.js';

const START_TIMEOUT_MS = 15_000;
const LOAD_TIMEOUT_MS = 60_000;

// Both sides of the ratio move the same bytes: api.create's ConfigMap, and for etcd the same JSON as the
// value of its gateway's put (cannon.ts makes both bodies).

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

interface Etcd {
  proc: ChildProcess;
  clientUrl: string;
  /** SIGTERM (SIGKILL after 5 s), wait for exit, remove the data dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** Starts a single-member etcd on two free loopback ports and resolves once /health answers true. */
async function startEtcd(bin: string): Promise<Etcd> {
  const dir = mkdtempSync(join(tmpdir(), 'metalplane-bench-etcd-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name', 'bench',
    '--data-dir', join(dir, 'data'),
    '--listen-client-urls', clientUrl,
    '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `bench=${peerUrl}`,
    '--initial-cluster-state', 'new',
    '--logger', 'zap',
    '--log-outputs', 'stderr',
    '--log-level', 'warn',
  ];
  // A clean environment for etcd's own settings: ETCD_* variables would override the flags above.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_')));
  const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  // If the bench itself dies, etcd must not outlive it.
  const onExit = (): void => void proc.kill('SIGKILL');
  process.once('exit', onExit);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', onExit);
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  try {
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`etcd exited (${proc.exitCode ?? proc.signalCode}) before it was healthy: ${log.trim()}`);
      try {
        const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1_000) });
        const body = (await res.json()) as { health?: string };
        if (body.health === 'true') return { proc, clientUrl, stop };
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`etcd not healthy within ${START_TIMEOUT_MS} ms: ${log.trim()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    await stop();
    throw e;
  }
}

/** How many keys under a prefix etcd holds (a count-only range over [prefix, prefix with its last byte + 1)). */
async function etcdCount(clientUrl: string, prefix: string): Promise<number> {
  const key = Buffer.from(prefix);
  const end = Buffer.from(key);
  end[end.length - 1]++;
  const res = await fetch(`${clientUrl}/v3/kv/range`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key: key.toString('base64'), range_end: end.toString('base64'), count_only: true }),
    signal: AbortSignal.timeout(5_000),
  });
  if (!res.ok) throw new Error(`etcd range answered ${res.status}: ${await res.text()}`);
  // int64 fields come back as strings from the gateway, and are omitted when zero.
  const body = (await res.json()) as { count?: string };
  return Number(body.count ?? 0);
}

function round(n: number, d = 1): number {
  const f = 10 ** d;
  return Math.round(n * f) / f;
}

export async function benchEtcd(opts: BenchOptions): Promise<BenchResult[]> {
  const bin = findOnPath('etcd');
  if (!bin) {
    process.stderr.write('  skipping the etcd row: etcd is not installed (apt-get install etcd-server)\n');
    return [];
  }
  const n = opts.quick ? 3000 : 20000;
  const c = 32;
  const etcd = await startEtcd(bin);
  try {
    const server = await startTestServer({ args: ['--log-level', 'error'] });
    const floorDir = mkdtempSync(join(tmpdir(), 'mp-floor-'));
    const floorServer = await startBaseline(undefined, join(floorDir, 'floor.db'));
    try {
      const auth = { authorization: `Bearer ${server.token}` };
      const create = { url: `${server.plainUrl}/api/v1/namespaces/default/configmaps`, method: 'POST' as const, headers: auth };
      const put = { url: `${etcd.clientUrl}/v3/kv/put`, method: 'POST' as const };
      const floor = { url: `http://127.0.0.1:${floorServer.port}/floor`, method: 'POST' as const };
      // Warm both up to their steady state (JIT, heap, connections, WAL segments) on keys the measured runs do not use.
      await runCannon({ ...create, body: { kind: 'configMap', offset: 500_000 } }, n, c, LOAD_TIMEOUT_MS);
      const warmPuts = await runCannon({ ...put, body: { kind: 'etcdPut', offset: 500_000 } }, n, c, LOAD_TIMEOUT_MS);
      await runCannon({ ...floor, body: { kind: 'configMap', offset: 500_000 } }, n, c, LOAD_TIMEOUT_MS);
      const kube = await withServerCpu(server.proc.pid, () => runCannon({ ...create, body: { kind: 'configMap', offset: 0 } }, n, c, LOAD_TIMEOUT_MS));
      const bare = await withServerCpu(etcd.proc.pid, () => runCannon({ ...put, body: { kind: 'etcdPut', offset: 0 } }, n, c, LOAD_TIMEOUT_MS));
      // The floor of a durable create on this stack (bare Fastify + the store, see fastify-baseline.ts): whether
      // the API could reach the goal at all.
      const floorRun = await withServerCpu(floorServer.proc.pid, () => runCannon({ ...floor, body: { kind: 'configMap', offset: 0 } }, n, c, LOAD_TIMEOUT_MS));
      if (floorRun.errors) throw new Error(`api.create.floor.vs-etcd: ${floorRun.errors} errors`);
      if (kube.errors) throw new Error(`api.create.vs-etcd: ${kube.errors} kube API create errors`);
      if (bare.errors) throw new Error(`api.create.vs-etcd: ${bare.errors} etcd put errors`);
      // The puts must really be in etcd, or the baseline measured something else (a gateway answering 200 to a no-op).
      // (Every put has a key of its own: the warm-up's start at bench-500000.)
      const stored = await etcdCount(etcd.clientUrl, '/registry/configmaps/default/bench-');
      const puts = warmPuts.requests - warmPuts.errors + bare.requests;
      if (stored < puts) throw new Error(`api.create.vs-etcd: etcd holds ${stored} keys after ${puts} puts`);
      const cpu =
        kube.cpuUs !== undefined && bare.cpuUs !== undefined
          ? `, process CPU ${round(kube.cpuUs, 1)} µs per create vs etcd ${round(bare.cpuUs, 1)} µs per put (${round(kube.cpuUs / bare.cpuUs, 2)}×)`
          : '';
      return [
        {
          name: 'api.create.vs-etcd',
          value: round(kube.perSecond),
          unit: 'req/s',
          baseline: `bare etcd ${etcdVersion(bin)}v3 puts over its JSON gateway (POST /v3/kv/put), the same ConfigMap JSON as value, WAL fsync per commit`,
          baselineValue: round(bare.perSecond),
          ratio: round(kube.perSecond / bare.perSecond, 3),
          target: '≥ 2×',
          note: `durable kube API creates (fresh server, same run), ${kube.requests} vs ${bare.requests} requests, ${c} in flight; p99 ${round(kube.p99ms, 2)} ms vs etcd ${round(bare.p99ms, 2)} ms${cpu}`,
        },
        {
          name: 'api.create.floor.vs-etcd',
          value: round(floorRun.perSecond),
          unit: 'req/s',
          baseline: 'the same etcd puts',
          baselineValue: round(bare.perSecond),
          ratio: round(floorRun.perSecond / bare.perSecond, 3),
          target: 'none: the floor of a durable create',
          note: `bare Fastify + the SQLite store's group commit (synchronous=FULL), no API, same requests${floorRun.cpuUs !== undefined && bare.cpuUs !== undefined ? `, process CPU ${round(floorRun.cpuUs, 1)} µs per create (${round(floorRun.cpuUs / bare.cpuUs, 2)}× etcd's per put)` : ''}`,
        },
      ];
    } finally {
      floorServer.proc.kill();
      rmSync(floorDir, { recursive: true, force: true });
      await server.stop();
      server.cleanup();
    }
  } finally {
    await etcd.stop();
  }
}

/** "3.4.23 " (with a trailing space) or '': best effort, for the row's label only. */
function etcdVersion(bin: string): string {
  try {
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 5_000 });
    const v = /etcd Version: (\S+)/.exec(out)?.[1];
    return v ? `${v} ` : '';
  } catch {
    return '';
  }
}

// The load generator of the throughput rows (creates, GETs, etcd puts, and their bare-Fastify baselines):
// autocannon, the field's usual tool, in a process of its own. node:http costs a client more per request (a
// ClientRequest and an IncomingMessage each time) than the thin connection autocannon keeps, and on two cores
// shared with the server that cost capped the baselines: it measured the client as much as the server. Bodies
// are named here rather than passed as functions: they are made in the child.
//
// Run as a child: `node cannon.js '<CannonSpec JSON>'` prints one LoadResult as JSON.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import type { LoadResult } from './load.js';

/** One ~1 KB ConfigMap per i: what the create rows post (and the Fastify echo gets). */
export function configMap(i: number): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `bench-${i}`, labels: { bench: 'true' } }, data: { payload: 'x'.repeat(900) } });
}

/**
 * The etcd v3 JSON gateway's put of configMap(i) under the key kube-apiserver would use: key and value base64,
 * as the gateway maps proto `bytes` fields.
 */
export function etcdPut(i: number): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  return JSON.stringify({ key: b64(`/registry/configmaps/default/bench-${i}`), value: b64(configMap(i)) });
}

const BODIES = { configMap, etcdPut } as const;

export interface CannonTarget {
  /** http or https (autocannon does not verify the certificate: the bench talks to its own servers on loopback). */
  url: string;
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  /**
   * Request i's body is BODIES[kind](offset + i); or, `same`, every request's is BODIES[kind](offset), which
   * autocannon builds once (an echo needs no unique names, and rebuilding each request would make the client the
   * bottleneck of a server as fast as bare Fastify).
   */
  body?: { kind: keyof typeof BODIES; offset: number; same?: boolean };
}

interface CannonSpec extends CannonTarget {
  count: number;
  concurrency: number;
  maxMs: number;
}

/** `count` requests, `concurrency` keep-alive connections, at most `maxMs`; a request answered ≥ 400 is an error. */
export function runCannon(t: CannonTarget, count: number, concurrency: number, maxMs = 60_000): Promise<LoadResult> {
  const spec: CannonSpec = { ...t, count, concurrency, maxMs };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    // The child bounds itself by maxMs too; this is for a child that hangs anyway.
    const kill = setTimeout(() => child.kill('SIGKILL'), maxMs + 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(kill);
      if (code !== 0) return reject(new Error(`autocannon run on ${t.url} exited ${code}: ${err.trim() || out.trim()}`));
      try {
        resolve(JSON.parse(out) as LoadResult);
      } catch {
        reject(new Error(`autocannon run on ${t.url} printed no result: ${out.slice(0, 300)} ${err.slice(0, 300)}`));
      }
    });
  });
}

async function child(spec: CannonSpec): Promise<LoadResult> {
  const make = spec.body ? BODIES[spec.body.kind] : undefined;
  const offset = spec.body?.offset ?? 0;
  let i = 0;
  const headers = { ...(spec.headers ?? {}), ...(make ? { 'content-type': 'application/json' } : {}) };
  const started = performance.now();
  let last = started;
  const opts: autocannon.Options = {
    url: spec.url,
    method: spec.method,
    headers,
    // autocannon refuses more connections than requests.
    connections: Math.min(spec.concurrency, spec.count),
    amount: spec.count,
    timeout: 30,
    ...(make && spec.body?.same ? { body: make(offset) } : {}),
    ...(make && !spec.body?.same ? { requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, body: make(offset + i++) }) }] } : {}),
  };
  let settle!: (err: Error | null, result: autocannon.Result) => void;
  const done = new Promise<autocannon.Result>((resolve, reject) => (settle = (err, result) => (err ? reject(err) : resolve(result))));
  // Options autocannon refuses are answered at once (through the callback), with no instance.
  const run: autocannon.Instance | undefined = autocannon(opts, settle);
  if (!run) {
    await done;
    throw new Error('autocannon started no run');
  }
  // With an amount, autocannon ignores its duration: the time bound is ours.
  const bound = setTimeout(() => run.stop(), spec.maxMs);
  // autocannon's own duration ends on its next one-second sample tick, which on a run of a few seconds is
  // most of the error: the run's time is taken from the last response instead.
  run.on('response', () => (last = performance.now()));
  const r = await done.finally(() => clearTimeout(bound));
  const requests = r.requests.total;
  const seconds = (last - started) / 1000;
  return { requests, errors: r.errors + r.timeouts + r.non2xx, seconds, perSecond: seconds > 0 ? requests / seconds : 0, p50ms: r.latency.p50, p99ms: r.latency.p99 };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  child(JSON.parse(process.argv[2]!) as CannonSpec).then(
    (r) => process.stdout.write(JSON.stringify(r)),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}

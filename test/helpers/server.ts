// Starts the real `metalplane up` as a child process on an ephemeral loopback port with a temp data dir,
// and runs the real kubectl against it. End-to-end tests use this; nothing of ours is mocked.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestContext } from 'node:test';

export const REPO = resolve(new URL('../../..', import.meta.url).pathname);
export const BIN = join(REPO, 'bin', 'metalplane.js');

/** A running `metalplane` child: its process, output, and how to end it (what spawnUntilReady gives, minus the match). */
export type TestChild = Omit<ReadyChild, 'match'>;

export interface TestServer extends TestChild {
  dataDir: string;
  /** https://HOST:PORT as the ready line prints it (127.0.0.1 for loopback and wildcard listens) */
  url: string;
  /** http://HOST:PORT */
  plainUrl: string;
  /** the host of url */
  host: string;
  port: number;
  kubeconfig: string;
  token: string;
  ca: string;
  /** Removes the data dir (after stop). */
  cleanup(): void;
}

export interface StartOptions {
  dataDir?: string;
  args?: string[];
  port?: number;
  /** --listen HOST:PORT; default 127.0.0.1:<port ?? 0> */
  listen?: string;
  timeoutMs?: number;
  env?: Record<string, string>;
}

export async function startTestServer(opts: StartOptions = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'metalplane-test-'));
  const listen = opts.listen ?? `127.0.0.1:${opts.port ?? 0}`;
  const child = await spawnUntilReady(['up', '--data-dir', dataDir, '--listen', listen, '--no-sim', '--log-level', 'warn', ...(opts.args ?? [])], {
    ready: /kube API:\s+(https:\/\/(\[[^\]]+\]|[^:/\s]+):(\d+))/,
    env: opts.env,
    timeoutMs: opts.timeoutMs ?? 20_000,
  });
  const m = child.match;
  const host = m[2]!;
  const port = Number(m[3]);
  return {
    ...child,
    dataDir,
    url: m[1]!,
    plainUrl: `http://${host}:${port}`,
    host,
    port,
    kubeconfig: join(dataDir, 'kubeconfig'),
    token: readFileSync(join(dataDir, 'admin-token'), 'utf8').trim(),
    ca: readFileSync(join(dataDir, 'ca.crt'), 'utf8'),
    cleanup() {
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ReadyChild {
  proc: ChildProcess;
  /** The ready line's match. */
  match: RegExpExecArray;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
}

/**
 * `metalplane ARGS…` as a child process, resolved once its stdout matches `ready` (its ready line); it fails with
 * what the child printed if the child exits first or the line does not come within `timeoutMs`.
 */
export async function spawnUntilReady(args: string[], o: { ready: RegExp; env?: Record<string, string>; timeoutMs: number }): Promise<ReadyChild> {
  const what = `metalplane ${args[0]}`;
  const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
  track(proc);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    const match = o.ready.exec(out);
    if (match) {
      return {
        proc,
        match,
        stdout: () => out,
        stderr: () => err,
        async stop() {
          if (proc.exitCode !== null) return proc.exitCode;
          proc.kill('SIGTERM');
          return exited;
        },
        async kill() {
          if (proc.exitCode === null) {
            proc.kill('SIGKILL');
            await exited;
          }
        },
      };
    }
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}\nstdout:\n${out}\nstderr:\n${err}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`${what} did not print its ready line in time\nstdout:\n${out}\nstderr:\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

// A test file that fails (or is interrupted) must not leave servers running behind it.
const children = new Set<ChildProcess>();
function track(proc: ChildProcess): void {
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
}
process.once('exit', () => {
  for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `metalplane ARGS…` to completion (for commands that should exit, e.g. a failing `up`). */
export function runMetalplane(args: string[], timeoutMs = 20_000): Promise<RunResult> {
  const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  track(proc);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  return new Promise((r) =>
    proc.once('close', (status, signal) => {
      clearTimeout(timer);
      r({ status, signal, stdout: out, stderr: err });
    }),
  );
}

/**
 * Whether an external tool the test needs is present. `probe` is a command that must exit 0. When it is missing,
 * the test fails under CI (CI=true: the tool belongs on the machine) and is skipped locally with `installHint`.
 * Returns true when the test should go on.
 */
export function requireTool(t: TestContext, probe: string[], installHint: string): boolean {
  const r = spawnSync(probe[0], probe.slice(1), { encoding: 'utf8', timeout: 15_000 });
  if (!r.error && r.status === 0) return true;
  const why = r.error ? r.error.message : `\`${probe.join(' ')}\` exited ${r.status}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`;
  const msg = `${installHint} (${why})`;
  if (isCI()) throw new Error(`required tool missing under CI: ${msg}`);
  t.skip(msg);
  return false;
}

/**
 * Like requireTool, for a whole `describe` block: the reason to skip it (locally, when the tool is missing), or
 * undefined when the tool is there. Under CI a missing tool throws, so the file fails instead of skipping.
 */
export function toolSkipReason(probe: string[], installHint: string): string | undefined {
  const r = spawnSync(probe[0], probe.slice(1), { encoding: 'utf8', timeout: 15_000 });
  if (!r.error && r.status === 0) return undefined;
  const why = r.error ? r.error.message : `\`${probe.join(' ')}\` exited ${r.status}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`;
  const msg = `${installHint} (${why})`;
  if (isCI()) throw new Error(`required tool missing under CI: ${msg}`);
  return msg;
}

export function isCI(): boolean {
  const v = process.env.CI;
  return v !== undefined && v !== '' && v !== 'false' && v !== '0';
}

export interface HttpsResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: any;
}

/**
 * A request over HTTPS to the server, verifying it against `ca` (the server's CA by default; pass `ca: null` to
 * use only the system roots, which must then fail verification).
 */
export function httpsRequest(
  server: Pick<TestServer, 'url' | 'token' | 'ca'>,
  method: string,
  path: string,
  opts: { ca?: string | null; token?: string | null; body?: unknown; headers?: Record<string, string>; servername?: string } = {},
): Promise<HttpsResult> {
  const u = new URL(server.url + path);
  const body = opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  const token = opts.token === undefined ? server.token : opts.token;
  const headers: Record<string, string> = {
    ...(token !== null ? { authorization: `Bearer ${token}` } : {}),
    ...(body !== undefined && typeof opts.body !== 'string' ? { 'content-type': 'application/json' } : {}),
    ...opts.headers,
  };
  return new Promise((resolveReq, reject) => {
    const req = https.request(
      {
        method,
        host: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port,
        path: u.pathname + u.search,
        headers,
        ca: opts.ca === null ? undefined : (opts.ca ?? server.ca),
        servername: opts.servername,
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolveReq({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export interface KubectlResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the real kubectl with the server's kubeconfig (synchronously; kubectl is quick). */
export function kubectl(server: Pick<TestServer, 'kubeconfig'>, args: string[], input?: string, timeoutMs = 30_000): KubectlResult {
  const r = spawnSync('kubectl', ['--kubeconfig', server.kubeconfig, ...args], { input, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, KUBECACHEDIR: join(server.kubeconfig, '..', 'kube-cache') } });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Like kubectl() but throws with kubectl's output when it fails. */
export function kubectlOk(server: Pick<TestServer, 'kubeconfig'>, args: string[], input?: string): string {
  const r = kubectl(server, args, input);
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** Runs kubectl asynchronously (for -w watch and wait); `output`/`errors` are its stdout/stderr so far. */
export function kubectlAsync(server: Pick<TestServer, 'kubeconfig'>, args: string[]): { proc: ChildProcess; output: () => string; errors: () => string; done: Promise<KubectlResult> } {
  const proc = spawn('kubectl', ['--kubeconfig', server.kubeconfig, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECACHEDIR: join(server.kubeconfig, '..', 'kube-cache') } });
  track(proc);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<KubectlResult>((r) => proc.once('close', (code) => r({ status: code ?? -1, stdout: out, stderr: err })));
  return { proc, output: () => out, errors: () => err, done };
}

/** Authenticated fetch over HTTPS with the server's CA. */
export async function api(server: TestServer, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; text: string; headers: Headers }> {
  // Node's fetch cannot take a per-request CA, so tests speak plain HTTP over loopback (allowed by the peer rule)
  // here; TLS itself is covered by the kubectl and client-library tests.
  const res = await fetch(server.plainUrl + path, {
    method,
    headers: { authorization: `Bearer ${server.token}`, ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== null && v !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function writeTemp(dir: string, name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

// Starts the real `metalplane up` as a child process on an ephemeral loopback port with a temp data dir,
// and runs the real kubectl against it. End-to-end tests use this; nothing of ours is mocked.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO = resolve(new URL('../../..', import.meta.url).pathname);
export const BIN = join(REPO, 'bin', 'metalplane.js');

export interface TestServer {
  proc: ChildProcess;
  dataDir: string;
  /** https://127.0.0.1:PORT */
  url: string;
  /** http://127.0.0.1:PORT */
  plainUrl: string;
  port: number;
  kubeconfig: string;
  token: string;
  ca: string;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** Removes the data dir (after stop). */
  cleanup(): void;
}

export interface StartOptions {
  dataDir?: string;
  args?: string[];
  port?: number;
  timeoutMs?: number;
  env?: Record<string, string>;
}

export async function startTestServer(opts: StartOptions = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'metalplane-test-'));
  const args = [BIN, 'up', '--data-dir', dataDir, '--listen', `127.0.0.1:${opts.port ?? 0}`, '--no-sim', '--log-level', 'warn', ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  for (;;) {
    const m = /kube API:\s+(https:\/\/127\.0\.0\.1:(\d+))/.exec(out);
    if (m) {
      const port = Number(m[2]);
      const kubeconfig = join(dataDir, 'kubeconfig');
      return {
        proc,
        dataDir,
        url: m[1],
        plainUrl: `http://127.0.0.1:${port}`,
        port,
        kubeconfig,
        token: readFileSync(join(dataDir, 'admin-token'), 'utf8').trim(),
        ca: readFileSync(join(dataDir, 'ca.crt'), 'utf8'),
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
        cleanup() {
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    }
    if (proc.exitCode !== null) throw new Error(`metalplane up exited with ${proc.exitCode}\nstdout:\n${out}\nstderr:\n${err}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`metalplane up did not print its ready line in time\nstdout:\n${out}\nstderr:\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
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

/** Runs kubectl asynchronously (for -w watch and wait). */
export function kubectlAsync(server: Pick<TestServer, 'kubeconfig'>, args: string[]): { proc: ChildProcess; output: () => string; done: Promise<KubectlResult> } {
  const proc = spawn('kubectl', ['--kubeconfig', server.kubeconfig, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECACHEDIR: join(server.kubeconfig, '..', 'kube-cache') } });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<KubectlResult>((r) => proc.once('exit', (code) => r({ status: code ?? -1, stdout: out, stderr: err })));
  return { proc, output: () => out, done };
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

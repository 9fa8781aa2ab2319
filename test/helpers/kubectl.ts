// Small conveniences over the real kubectl for the compatibility suite (test/kubectl-*.test.ts): JSON output,
// expected failures, manifests on stdin, and background kubectl processes (watch, wait) whose output is awaited.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { kubectl, kubectlAsync, kubectlOk, toolSkipReason, waitFor, type KubectlResult, type TestServer } from './server.js';

/** Why the kubectl suite is skipped locally (kubectl missing), or undefined. Under CI a missing kubectl throws. */
export function kubectlSkipReason(): string | undefined {
  return toolSkipReason(['kubectl', 'version', '--client'], 'the kubectl compatibility suite needs the real kubectl (1.32) on PATH, e.g. /usr/bin/kubectl');
}

type Server = Pick<TestServer, 'kubeconfig'>;

/** `kubectl ARGS -o json`, parsed. */
export function kubectlJson<T = any>(s: Server, args: string[]): T {
  return JSON.parse(kubectlOk(s, [...args, '-o', 'json'])) as T;
}

/** Runs kubectl and asserts that it fails; returns its output for further assertions. */
export function kubectlFails(s: Server, args: string[], input?: string): KubectlResult {
  const r = kubectl(s, args, input);
  assert.notEqual(r.status, 0, `expected \`kubectl ${args.join(' ')}\` to fail, but it exited 0:\n${r.stdout}${r.stderr}`);
  return r;
}

/** `kubectl apply -f -` (plus extra args) of one object given as a JS value; returns stdout. */
export function applyObject(s: Server, obj: unknown, extra: string[] = []): string {
  return kubectlOk(s, ['apply', '-f', '-', ...extra], JSON.stringify(obj));
}

/** `kubectl create -f -` of one object; returns stdout. */
export function createObject(s: Server, obj: unknown, extra: string[] = []): string {
  return kubectlOk(s, ['create', '-f', '-', ...extra], JSON.stringify(obj));
}

/** Whether `kubectl get RESOURCE NAME` finds the object (false on NotFound; throws on other failures). */
export function exists(s: Server, args: string[]): boolean {
  const r = kubectl(s, ['get', ...args, '-o', 'name', '--ignore-not-found']);
  if (r.status !== 0) throw new Error(`kubectl get ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout.trim() !== '';
}

/** Waits until `kubectl get ARGS` no longer finds the object. */
export function waitGone(s: Server, args: string[], timeoutMs = 20_000): Promise<true> {
  return waitFor(`${args.join(' ')} to be gone`, () => !exists(s, args) || undefined, timeoutMs, 150);
}

export interface Background {
  proc: ChildProcess;
  output: () => string;
  done: Promise<KubectlResult>;
  /** Resolves once stdout matches `re` (rejects with the output so far on timeout). */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<void>;
  /**
   * Resolves once kubectl's watch request got its response headers: the watch is open on the server. Needs
   * `-v=6` among the args (kubectl then logs each request's status to stderr).
   */
  watchOpen(timeoutMs?: number): Promise<void>;
  /** Whether the process is still running. */
  running(): boolean;
  /** SIGTERM (if still running) and wait for exit. */
  stop(): Promise<KubectlResult>;
}

/** kubectl in the background (`get -w`, `wait`). */
export function background(s: Server, args: string[]): Background {
  const h = kubectlAsync(s, args);
  let result: KubectlResult | undefined;
  void h.done.then((r) => (result = r));
  return {
    ...h,
    running: () => result === undefined,
    async waitForOutput(re, timeoutMs = 15_000) {
      try {
        await waitFor(`kubectl ${args.join(' ')} to print ${re}`, () => re.test(h.output()) || undefined, timeoutMs, 50);
      } catch (e) {
        throw new Error(`${(e as Error).message}\nstdout so far:\n${h.output()}\nexited: ${result ? `${result.status}, stderr: ${result.stderr}` : 'no'}`);
      }
    },
    async watchOpen(timeoutMs = 15_000) {
      if (!args.includes('-v=6')) throw new Error('watchOpen needs -v=6 in the kubectl args');
      try {
        await waitFor(`kubectl ${args.join(' ')} to open its watch`, () => /GET https:\/\/\S+[?&]watch=true\S* 200 OK/.test(h.errors()) || undefined, timeoutMs, 50);
      } catch (e) {
        throw new Error(`${(e as Error).message}\nstderr so far:\n${h.errors()}`);
      }
    },
    async stop() {
      if (result === undefined) h.proc.kill('SIGTERM');
      return h.done;
    },
  };
}

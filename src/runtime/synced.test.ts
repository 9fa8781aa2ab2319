// The Synced condition around a reconciler, against the real Registry over an in-memory store: a failure is
// reported with its reason and message, the next success clears it, conflicts are not reported, healthy
// objects are never written, and the reconcile's own result always passes through.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from '../apiserver/registry.js';
import { KindRegistry, allKinds } from '../kinds/index.js';
import type { KindDeclaration, StoredObject } from '../kinds/types.js';
import { ApiError } from '../lib/errors.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { getCondition } from './conditions.js';
import { TerminalError, done, type Result } from './controller.js';
import { reportSynced } from './synced.js';

let reg: Registry;
let kind: KindDeclaration;

before(async () => {
  reg = new Registry({ store: openSqliteStore(':memory:'), kinds: new KindRegistry(allKinds) });
  kind = reg.kind('metalplane.dev', 'Hardware');
  await reg.start();
});
after(() => reg.close());

async function machine(name: string): Promise<StoredObject> {
  return reg.create(kind, {
    apiVersion: 'metalplane.dev/v1alpha1',
    kind: 'Hardware',
    metadata: { name },
    spec: { metro: 'da', facility: 'da11', plan: 'c3.small.x86', bmc: { driver: 'redfish', address: 'http://127.0.0.1:1', credentialsSecret: { name: 'bmc' } }, nics: [{ mac: '00:00:00:00:00:01' }] },
  });
}

/** A wrapped reconciler whose next outcome the test sets; the cache reads the store's current object. */
function wrapped(latest: Map<string, StoredObject>) {
  let next: () => Result = () => done;
  const r = reportSynced(
    { reconcile: async () => next() },
    { client: reg, kind, cache: { get: (_ns, name) => latest.get(name) }, fieldManager: 'test', reasonOf: (e) => (e.message.startsWith('bmc') ? 'BMCUnreachable' : undefined) },
  );
  return { r, set: (f: () => Result) => (next = f) };
}

const synced = async (name: string) => {
  const o = (await reg.get(kind, undefined, name))!;
  const c = getCondition((o.status as { conditions?: [] } | undefined)?.conditions, 'Synced');
  return { rv: o.metadata.resourceVersion, shown: c ? `${c.status}/${c.reason}: ${c.message}` : 'none' };
};

const steps: Array<{ name: string; outcome: () => Result; want: string; written: boolean; result: (r: Result) => boolean }> = [
  { name: 'a success of a healthy object writes nothing', outcome: () => done, want: 'none', written: false, result: (r) => 'done' in r },
  { name: 'a conflict is not reported', outcome: () => ({ error: ApiError.conflict('stale') }), want: 'none', written: false, result: (r) => 'error' in r },
  { name: 'a failure is reported with its reason and message', outcome: () => ({ error: ApiError.internal('the store is down') }), want: 'False/InternalError: the store is down', written: true, result: (r) => 'error' in r && !r.terminal },
  { name: 'the same failure again writes nothing new', outcome: () => ({ error: ApiError.internal('the store is down') }), want: 'False/InternalError: the store is down', written: false, result: (r) => 'error' in r },
  { name: 'a reason the caller knows', outcome: () => { throw new Error('bmc at 10.0.0.5: connection refused'); }, want: 'False/BMCUnreachable: bmc at 10.0.0.5: connection refused', written: true, result: (r) => 'error' in r },
  { name: 'a terminal error stays terminal', outcome: () => { throw new TerminalError('bad spec'); }, want: 'False/TerminalError: bad spec', written: true, result: (r) => 'error' in r && r.terminal === true },
  { name: 'the next success says Synced again', outcome: () => done, want: 'True/ReconcileSuccess: ', written: true, result: (r) => 'done' in r },
  { name: 'and then stays quiet', outcome: () => done, want: 'True/ReconcileSuccess: ', written: false, result: (r) => 'done' in r },
];

test('Synced follows the reconciles, step by step', async (t) => {
  await machine('m1');
  const latest = new Map<string, StoredObject>();
  const { r, set } = wrapped(latest);
  for (const step of steps) {
    await t.test(step.name, async () => {
      const before = await synced('m1');
      latest.set('m1', (await reg.get(kind, undefined, 'm1'))!);
      set(step.outcome);
      const result = await r.reconcile('m1');
      assert.ok(step.result(result), JSON.stringify(result));
      const now = await synced('m1');
      assert.equal(now.shown, step.want);
      assert.equal(now.rv !== before.rv, step.written, 'written');
    });
  }
});

test('after a restart, an object that shows Synced=False is cleared by the first success', async () => {
  await machine('m2');
  const latest = new Map<string, StoredObject>();
  const first = wrapped(latest);
  first.set(() => ({ error: ApiError.internal('boom') }));
  await first.r.reconcile('m2');
  assert.equal((await synced('m2')).shown, 'False/InternalError: boom');
  latest.set('m2', (await reg.get(kind, undefined, 'm2'))!);
  const second = wrapped(latest);
  await second.r.reconcile('m2');
  assert.equal((await synced('m2')).shown, 'True/ReconcileSuccess: ');
});

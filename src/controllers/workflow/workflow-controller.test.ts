// The workflow controller against the real Registry over an in-memory SQLite store, with a fake BMC (it is
// hardware): BMC calls are made only after their marker is in the store, a step found `running` after a
// restart is settled by observing the machine instead of calling again, machines lost while the control
// plane was down start over at once, and `Synced` says how the last reconcile went, written only on change.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Registry } from '../../apiserver/registry.js';
import { BmcError, type BmcClient, type BmcDriver, type BootDevice, type PowerAction } from '../../drivers/bmc/types.js';
import type { ActionStatus, WorkflowAction, WorkflowSpec, WorkflowStatus } from '../../kinds/workflow.js';
import { allKinds, KindRegistry } from '../../kinds/index.js';
import type { StoredObject } from '../../kinds/types.js';
import { FakeClock } from '../../lib/clock.js';
import { getCondition } from '../../runtime/conditions.js';
import type { Result } from '../../runtime/controller.js';
import { InformerFactory } from '../../runtime/informer.js';
import { silentLogger } from '../../runtime/logger.js';
import { openStore } from '../../store/index.js';
import { informersOf, kindsFrom, SystemNamespace, type ProvisioningDeps } from '../provisioning-context.js';
import { createTiming } from '../timing.js';
import { completeAction, startWorkflow } from './state.js';
import { discoverActions, provisionActions } from './templates.js';
import { WorkflowReconciler } from './workflow-controller.js';

const WF = 'wf-1';
const KEY = `${SystemNamespace}/${WF}`;

/** A BMC call as the fake saw it, with the state of the workflow's current action in the store at that moment. */
interface Call {
  op: string;
  /** For calls that change the machine: `state/attempts` of the action being run, read from the store. */
  stored?: string;
}

/** One machine behind a BMC that answers at once. */
class FakeBmc implements BmcDriver {
  power: 'on' | 'off' = 'off';
  override: { device: BootDevice | 'none'; once: boolean } = { device: 'none', once: false };
  /** Reset and on leave the machine off (a stuck power rail, or a BMC that lags). */
  powerStuck = false;
  failNext: BmcError | undefined;
  readonly calls: Call[] = [];

  constructor(private readonly storedAction: () => Promise<string>) {}

  connect(): BmcClient {
    const fail = (): void => {
      const e = this.failNext;
      this.failNext = undefined;
      if (e) throw e;
    };
    return {
      system: async () => {
        this.calls.push({ op: 'system' });
        fail();
        return { powerState: this.power, bootOverride: { ...this.override } };
      },
      powerState: async () => {
        this.calls.push({ op: 'powerState' });
        fail();
        return this.power;
      },
      setPower: async (action: PowerAction) => {
        this.calls.push({ op: `setPower ${action}`, stored: await this.storedAction() });
        fail();
        if (this.powerStuck) return;
        this.power = action === 'off' || action === 'soft-off' ? 'off' : 'on';
      },
      setBootDevice: async (device: BootDevice, opts?: { once?: boolean }) => {
        this.calls.push({ op: `setBootDevice ${device}${opts?.once ? ' once' : ''}`, stored: await this.storedAction() });
        fail();
        this.override = { device, once: opts?.once ?? false };
      },
    };
  }

  /** The calls that change the machine. */
  changes(): Call[] {
    return this.calls.filter((c) => c.stored !== undefined);
  }
}

interface World {
  clock: FakeClock;
  registry: Registry;
  bmc: FakeBmc;
  alive: Set<string>;
  deps: ProvisioningDeps;
  /** A reconciler as a freshly started controller has it (nothing in memory). */
  reconciler(): WorkflowReconciler;
  /** Reconciles once the informer caches hold the newest writes. */
  reconcile(r: WorkflowReconciler): Promise<Result>;
  workflow(): Promise<StoredObject>;
  status(): Promise<WorkflowStatus>;
}

async function world(t: TestContext, actions: WorkflowAction[], status: (spec: WorkflowSpec, now: string) => WorkflowStatus): Promise<World> {
  const clock = new FakeClock(Date.UTC(2026, 10, 25));
  const store = await openStore(':memory:');
  const registry = new Registry({ store, kinds: new KindRegistry(allKinds), clock });
  await registry.start();
  const kinds = kindsFrom(registry);
  const informers = new InformerFactory({ client: registry, clock });
  t.after(async () => {
    informers.stop();
    registry.close();
    await store.close();
  });
  await registry.create(registry.kind('', 'Namespace'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: SystemNamespace } });
  const spec: WorkflowSpec = { hardware: 'hw-1', purpose: 'discover', actions };
  const wf = await registry.create(kinds.workflow, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Workflow', metadata: { name: WF, namespace: SystemNamespace }, spec });
  await registry.updateStatus(kinds.workflow, { ...wf, status: status(spec, new Date(clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z')) });
  const hw = await registry.create(kinds.hardware, {
    apiVersion: 'metalplane.dev/v1alpha1',
    kind: 'Hardware',
    metadata: { name: 'hw-1' },
    spec: { metro: 'da', facility: 'da11', plan: 'c3.small.x86', bmc: { driver: 'redfish', address: 'http://127.0.0.1:1', credentialsSecret: { name: 'hw-1-bmc' } }, nics: [{ mac: '02:00:00:00:00:01' }] },
  });
  await registry.updateStatus(kinds.hardware, { ...hw, status: { state: 'discovering', workflow: { namespace: SystemNamespace, name: WF } } });
  const read = async () => (await registry.get(kinds.workflow, SystemNamespace, WF))!;
  const bmc = new FakeBmc(async () => {
    const st = (await read()).status as WorkflowStatus;
    const a = st.actions![st.current!]!;
    return `${a.state}/${a.attempts ?? 0}`;
  });
  const alive = new Set<string>();
  const deps: ProvisioningDeps = {
    client: registry,
    kinds,
    informers,
    bmc: { redfish: bmc },
    agents: { isAlive: (h) => alive.has(h), forget: (h) => void alive.delete(h) },
    timing: createTiming(10),
    clock,
    logger: silentLogger,
  };
  const inf = informersOf(deps);
  informers.start();
  await informers.waitForSync();
  // Objects are made; time passes before the (re)started controller looks: as after a restart.
  clock.advance(10_000);
  const caughtUp = async () => {
    for (let i = 0; i < 500; i++) {
      const [w, h] = await Promise.all([read(), registry.get(kinds.hardware, undefined, 'hw-1')]);
      if (inf.workflow.get(SystemNamespace, WF)?.metadata.resourceVersion === w.metadata.resourceVersion && inf.hardware.get(undefined, 'hw-1')?.metadata.resourceVersion === h!.metadata.resourceVersion) return;
      await new Promise((r) => setImmediate(r));
    }
    throw new Error('the informer caches did not catch up');
  };
  return {
    clock,
    registry,
    bmc,
    alive,
    deps,
    reconciler: () => new WorkflowReconciler(deps, inf),
    reconcile: async (r) => {
      await caughtUp();
      return r.reconcile(KEY);
    },
    workflow: read,
    status: async () => (await read()).status as WorkflowStatus,
  };
}

const states = (st: WorkflowStatus) => st.actions!.map((a) => `${a.name}:${a.state}/${a.attempts ?? 0}`);

/** A workflow whose action `i` is current and in `state` with `attempts`, as a crashed process left it. */
function at(i: number, patch: Partial<ActionStatus>): (spec: WorkflowSpec, now: string) => WorkflowStatus {
  return (spec, now) => {
    let st = startWorkflow(spec, now, false);
    for (let j = 0; j < i; j++) st = completeAction(spec, st, j, { ok: true }, now);
    st.actions![i] = { ...st.actions![i]!, ...patch };
    return st;
  };
}

const setBootDisk: WorkflowAction = { name: 'set-boot-disk', executor: 'bmc', type: 'set-boot-disk', timeoutSeconds: 120, retries: 5 };
const powerOff: WorkflowAction = { name: 'power-off', executor: 'bmc', type: 'power-off', timeoutSeconds: 120 };
const inventory: WorkflowAction = { name: 'inventory', executor: 'agent', type: 'inventory', timeoutSeconds: 120 };

test('every BMC call that changes the machine is made after its marker (running, with the attempt) is stored', async (t) => {
  const rows: Array<{ name: string; actions: WorkflowAction[]; power: 'on' | 'off'; calls: string[]; after: string }> = [
    { name: 'power on a machine that is off', actions: discoverActions(), power: 'off', calls: ['setBootDevice pxe once', 'setPower on'], after: 'power-on-pxe:succeeded/1' },
    { name: 'reset a machine that is on', actions: discoverActions(), power: 'on', calls: ['setBootDevice pxe once', 'setPower reset'], after: 'power-on-pxe:succeeded/1' },
    { name: 'set the boot disk', actions: [setBootDisk, inventory], power: 'on', calls: ['setBootDevice disk'], after: 'set-boot-disk:succeeded/1' },
    { name: 'power off', actions: [powerOff, inventory], power: 'on', calls: ['setPower off'], after: 'power-off:succeeded/1' },
  ];
  for (const row of rows) {
    await t.test(row.name, async (t) => {
      const w = await world(t, row.actions, (spec, now) => startWorkflow(spec, now, false));
      w.bmc.power = row.power;
      await w.reconcile(w.reconciler());
      assert.deepEqual(w.bmc.changes(), row.calls.map((op) => ({ op, stored: 'running/1' })), 'each call saw the marker in the store');
      assert.equal(states(await w.status())[0], row.after);
    });
  }
});

test('a step found running is settled by observing the BMC, not by calling again', async (t) => {
  const rows: Array<{ name: string; actions: WorkflowAction[]; power: 'on' | 'off'; override?: { device: BootDevice | 'none'; once: boolean }; calls: Call[]; after: string }> = [
    // The crash came after the reset: the machine is booting; a second reset would cut that boot short.
    { name: 'power-on-pxe running, machine on: done, no reset', actions: discoverActions(), power: 'on', calls: [], after: 'power-on-pxe:succeeded/1' },
    // The machine is off (the crash came before the call, or took an in-process simulation with it): nothing
    // runs, so a new attempt, marked first, powers it on (never a reset).
    { name: 'power-on-pxe running, machine off: a new marked attempt powers it on', actions: discoverActions(), power: 'off', calls: [{ op: 'setBootDevice pxe once', stored: 'running/2' }, { op: 'setPower on', stored: 'running/2' }], after: 'power-on-pxe:succeeded/2' },
    { name: 'set-boot-disk running, the disk is already set: done', actions: [setBootDisk, inventory], power: 'on', override: { device: 'disk', once: false }, calls: [], after: 'set-boot-disk:succeeded/1' },
    { name: 'set-boot-disk running, not set: a new marked attempt', actions: [setBootDisk, inventory], power: 'on', calls: [{ op: 'setBootDevice disk', stored: 'running/2' }], after: 'set-boot-disk:succeeded/2' },
    { name: 'power-off running, machine off: done', actions: [powerOff, inventory], power: 'off', calls: [], after: 'power-off:succeeded/1' },
  ];
  for (const row of rows) {
    await t.test(row.name, async (t) => {
      const w = await world(t, row.actions, at(0, { state: 'running', attempts: 1, message: 'marked by the process that crashed' }));
      w.bmc.power = row.power;
      if (row.override) w.bmc.override = row.override;
      await w.reconcile(w.reconciler());
      assert.deepEqual(w.bmc.changes(), row.calls);
      assert.equal(states(await w.status())[0], row.after);
    });
  }
});

test('a BMC step begun by a previous leader longer ago than its timeout is settled by observing, not timed out', async (t) => {
  // The old leader marked set-boot-disk and died; the new one took the lease a minute later (past the step's
  // 15 s scaled timeout). It is not timed out before the new leader has looked: the step is observed and run again.
  const w = await world(t, [setBootDisk, inventory], at(0, { state: 'running', attempts: 1, message: 'marked by the previous leader' }));
  w.bmc.power = 'on';
  w.clock.advance(60_000);
  const newLeader = w.reconciler();
  await w.reconcile(newLeader);
  assert.deepEqual(w.bmc.changes(), [{ op: 'setBootDevice disk', stored: 'running/2' }]);
  assert.equal(states(await w.status())[0], 'set-boot-disk:succeeded/2');
  assert.notEqual((await w.status()).state, 'failed');
});

test('while this process waits for its own power on, reconciles look and do not call again', async (t) => {
  const w = await world(t, discoverActions(), (spec, now) => startWorkflow(spec, now, false));
  w.bmc.powerStuck = true;
  const r = w.reconciler();
  for (let i = 0; i < 3; i++) {
    const res = await w.reconcile(r);
    assert.ok('after' in res, `reconcile ${i} looks again later`);
    w.clock.advance(200);
  }
  assert.deepEqual(w.bmc.changes().map((c) => c.op), ['setBootDevice pxe once', 'setPower on'], 'one call, however often it is reconciled');
  assert.deepEqual(states(await w.status())[0], 'power-on-pxe:running/1');
  w.bmc.powerStuck = false;
  w.bmc.power = 'on';
  await w.reconcile(r);
  assert.equal(states(await w.status())[0], 'power-on-pxe:succeeded/1');
  assert.equal(w.bmc.changes().length, 2);
});

test('a transient BMC error backs off (the marker write does not cut the wait short) and says so in Synced', async (t) => {
  const w = await world(t, discoverActions(), (spec, now) => startWorkflow(spec, now, false));
  const r = w.reconciler();
  w.bmc.failNext = new BmcError('unreachable', 'BMC http://127.0.0.1:1 unreachable: connect ECONNREFUSED');
  const first = await w.reconcile(r);
  assert.ok('after' in first && first.after > 0, 'requeued after a backoff');
  let st = await w.status();
  assert.equal(states(st)[0], 'power-on-pxe:running/1');
  const synced = getCondition(st.conditions, 'Synced')!;
  assert.deepEqual([synced.status, synced.reason], ['False', 'ReconcileError']);
  assert.match(synced.message, /ECONNREFUSED.*attempt 1 of 6; retrying/);
  // The marker's own watch event brings the key back at once: it must wait out the backoff, not call.
  const early = await w.reconcile(r);
  assert.ok('after' in early);
  assert.equal(w.bmc.changes().length, 1, 'no call before the backoff ran out');
  w.clock.advance(first.after);
  await w.reconcile(r);
  st = await w.status();
  assert.equal(states(st)[0], 'power-on-pxe:succeeded/2', 'the retry is a new, marked attempt');
  assert.deepEqual(w.bmc.changes().slice(1), [{ op: 'setBootDevice pxe once', stored: 'running/2' }, { op: 'setPower on', stored: 'running/2' }]);
  assert.deepEqual(getCondition(st.conditions, 'Synced')!.status, 'True');
});

test('Synced is written only when it changes', async (t) => {
  const w = await world(t, discoverActions(), at(1, {}));
  w.bmc.power = 'on';
  const r = w.reconciler();
  await w.reconcile(r); // register waits for the agent: nothing to write but Synced
  const once = await w.workflow();
  assert.equal(getCondition((once.status as WorkflowStatus).conditions, 'Synced')?.status, 'True');
  await w.reconcile(r);
  await w.reconcile(r);
  assert.equal((await w.workflow()).metadata.resourceVersion, once.metadata.resourceVersion, 'unchanged: not rewritten');
});

test('a machine lost while the control plane was down starts over from power-on at once', async (t) => {
  const provision = provisionActions({ os: 'ubuntu_24_04', instanceId: 'uid' });
  const rows: Array<{ name: string; actions: WorkflowAction[]; current: number; patch: Partial<ActionStatus>; power: 'on' | 'off'; alive: boolean; advanceMs: number; restarted: boolean }> = [
    { name: 'waiting for register, machine off', actions: discoverActions(), current: 1, patch: {}, power: 'off', alive: false, advanceMs: 0, restarted: true },
    { name: 'waiting for register, machine on (booting): keeps waiting', actions: discoverActions(), current: 1, patch: {}, power: 'on', alive: false, advanceMs: 0, restarted: false },
    { name: 'agent action, machine off', actions: discoverActions(), current: 2, patch: { state: 'running', attempts: 1 }, power: 'off', alive: false, advanceMs: 0, restarted: true },
    { name: 'agent action, machine on, agent not back yet: a short grace', actions: discoverActions(), current: 2, patch: { state: 'running', attempts: 1 }, power: 'on', alive: false, advanceMs: 1_000, restarted: false },
    { name: 'agent action, machine on, agent not back after the grace', actions: discoverActions(), current: 2, patch: { state: 'running', attempts: 1 }, power: 'on', alive: false, advanceMs: 3_000, restarted: true },
    { name: 'agent action, agent called back', actions: discoverActions(), current: 2, patch: { state: 'running', attempts: 1 }, power: 'on', alive: true, advanceMs: 3_000, restarted: false },
    { name: 'waiting for phone-home, machine off', actions: provision, current: 8, patch: {}, power: 'off', alive: false, advanceMs: 0, restarted: true },
  ];
  for (const row of rows) {
    await t.test(row.name, async (t) => {
      const w = await world(t, row.actions, at(row.current, row.patch));
      w.bmc.power = row.power;
      if (row.alive) w.alive.add('hw-1');
      const r = w.reconciler();
      await w.reconcile(r);
      if (row.advanceMs) {
        w.clock.advance(row.advanceMs);
        await w.reconcile(r);
      }
      const st = await w.status();
      assert.equal(st.restarts ?? 0, row.restarted ? 1 : 0, states(st).join(' '));
      if (row.restarted) assert.equal(st.current, 0, 'back at power-on');
      else assert.equal(st.current, row.current);
      assert.deepEqual(w.bmc.changes(), [], 'looking is all a reconcile of a lost machine does to it');
    });
  }
});

// Retry counts and backoffs live in the Workflow's status, so a new leader (a reconciler with nothing in memory)
// carries on from the same counts: not from zero, and not at once.
const unreachable = () => new BmcError('unreachable', 'BMC http://127.0.0.1:1 unreachable: connect ECONNREFUSED');

test('a takeover mid-retry waits out the same backoff and continues the count', async (t) => {
  const w = await world(t, [setBootDisk, inventory], (spec, now) => startWorkflow(spec, now, false));
  w.bmc.power = 'on';
  w.bmc.failNext = unreachable();
  const first = await w.reconcile(w.reconciler());
  assert.ok('after' in first && first.after > 0);
  assert.equal((await w.status()).actions![0]!.retry?.failures, 1);

  const newLeader = w.reconciler();
  const early = await w.reconcile(newLeader);
  assert.ok('after' in early && early.after > 0 && early.after <= first.after, `waits out the old leader's backoff: ${JSON.stringify(early)}`);
  assert.equal(w.bmc.changes().length, 1, 'no call before the backoff ran out');

  w.clock.advance(first.after);
  w.bmc.failNext = unreachable();
  const second = await w.reconcile(newLeader);
  assert.ok('after' in second && second.after > first.after, 'the backoff grows with the count');
  const st = await w.status();
  assert.equal(st.actions![0]!.retry?.failures, 2, 'the second failure, not a first one again');
  assert.match(getCondition(st.conditions, 'Synced')!.message, /ECONNREFUSED.*attempt 2 of 6; retrying/);
  assert.deepEqual(w.bmc.changes(), [
    { op: 'setBootDevice disk', stored: 'running/1' },
    { op: 'setBootDevice disk', stored: 'running/2' },
  ], 'the retry is a new marked attempt, made without looking first (the BMC said the call failed)');

  w.clock.advance(second.after);
  await w.reconcile(newLeader);
  const done = await w.status();
  assert.equal(states(done)[0], 'set-boot-disk:succeeded/3');
  assert.equal(done.actions![0]!.retry, undefined, 'a succeeded action has no try pending');
});

test('the retry budget is spent across a takeover', async (t) => {
  const w = await world(t, [{ ...setBootDisk, retries: 1 }, inventory], (spec, now) => startWorkflow(spec, now, false));
  w.bmc.power = 'on';
  w.bmc.failNext = unreachable();
  const first = await w.reconcile(w.reconciler());
  assert.ok('after' in first);
  w.clock.advance(first.after);
  w.bmc.failNext = unreachable();
  await w.reconcile(w.reconciler());
  const st = await w.status();
  assert.equal(st.state, 'failed', 'two failures of an action with one retry, under two leaders');
  assert.deepEqual(st.failure, { action: 'set-boot-disk', reason: 'BMCUnreachable', message: 'BMC http://127.0.0.1:1 unreachable: connect ECONNREFUSED' });
  assert.equal(st.actions![0]!.retry?.failures, 1, 'the record of the tries it had');
});

test("a BMC step of a previous leader times out by its stored clock once the new leader has looked", async (t) => {
  const w = await world(t, [setBootDisk, inventory], (spec, now) => startWorkflow(spec, now, false));
  w.bmc.power = 'on';
  w.bmc.failNext = unreachable();
  const first = await w.reconcile(w.reconciler());
  assert.ok('after' in first);
  // The old leader stops; the new one takes over after the step's (scaled, 15 s) timeout ran out.
  w.clock.advance(20_000);
  const newLeader = w.reconciler();
  w.bmc.failNext = unreachable();
  const look = await w.reconcile(newLeader);
  assert.ok('after' in look, 'not timed out unseen: the new leader tries once');
  assert.notEqual((await w.status()).state, 'failed');
  assert.equal(w.bmc.changes().length, 2);
  w.clock.advance(look.after);
  await w.reconcile(newLeader);
  const st = await w.status();
  assert.equal(st.state, 'failed', 'the stored clock ran out: no fresh timeout for the new leader');
  assert.equal(st.failure?.reason, 'BMCUnreachable');
  assert.match(st.failure!.message, /ECONNREFUSED \(2 attempts in 15 s\)$/);
  assert.equal(w.bmc.changes().length, 2);
});

// A timeout says what the machine took. The time a BMC action waits for this controller (a long queue under
// load, a paused process) is the controller's own, so its clock starts at the attempt's marker, not when it
// became current.
const writeDatasource: WorkflowAction = { name: 'write-datasource', executor: 'agent', type: 'write-datasource', timeoutSeconds: 120 };
const reboot: WorkflowAction = { name: 'reboot', executor: 'agent', type: 'reboot', timeoutSeconds: 120 };

/** Makes action `i` current now, as the agent API does when the action before it completes. */
async function makeCurrent(w: World, i: number): Promise<void> {
  const wf = await w.workflow();
  const now = new Date(w.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  await w.registry.updateStatus(w.deps.kinds.workflow, { ...wf, status: at(i, {})(wf.spec as WorkflowSpec, now) });
}

test('a BMC action that became current long before this controller got to it is attempted, not timed out', async (t) => {
  const rows: Array<{ name: string; actions: WorkflowAction[]; current: number; power: 'on' | 'off'; calls: string[]; after: string }> = [
    { name: 'set-boot-disk after write-datasource', actions: [writeDatasource, setBootDisk, reboot], current: 1, power: 'on', calls: ['setBootDevice disk'], after: 'set-boot-disk:succeeded/1' },
    { name: 'power-on-pxe at the start of a workflow', actions: discoverActions(), current: 0, power: 'off', calls: ['setBootDevice pxe once', 'setPower on'], after: 'power-on-pxe:succeeded/1' },
    { name: 'power-off', actions: [inventory, powerOff, reboot], current: 1, power: 'on', calls: ['setPower off'], after: 'power-off:succeeded/1' },
  ];
  for (const row of rows) {
    await t.test(row.name, async (t) => {
      const w = await world(t, row.actions, at(row.current, {}));
      w.bmc.power = row.power;
      // The controller runs; then the action becomes current and waits a minute, four times its scaled 15 s
      // timeout, for a worker.
      const r = w.reconciler();
      await makeCurrent(w, row.current);
      w.clock.advance(60_000);
      await w.reconcile(r);
      const st = await w.status();
      assert.notEqual(st.state, 'failed', JSON.stringify(st.failure));
      assert.deepEqual(w.bmc.changes(), row.calls.map((op) => ({ op, stored: 'running/1' })));
      assert.equal(states(st)[row.current], row.after);
    });
  }
});

test('a BMC action times out by the clock of its first attempt', async (t) => {
  // power-on-pxe has 30 s (300 s scaled by 10). It waits 60 s for the controller, then the power rail sticks.
  const w = await world(t, discoverActions(), at(0, {}));
  w.bmc.powerStuck = true;
  const r = w.reconciler();
  await makeCurrent(w, 0);
  w.clock.advance(60_000);
  const marked = w.clock.now();
  await w.reconcile(r);
  let st = await w.status();
  assert.equal(states(st)[0], 'power-on-pxe:running/1');
  assert.equal(Date.parse(st.actions![0]!.startedAt!), marked, 'the marker starts the clock');
  w.clock.advance(25_000);
  await w.reconcile(r);
  st = await w.status();
  assert.equal(states(st)[0], 'power-on-pxe:running/1', '25 s after the call: still within the 30 s');
  w.clock.advance(6_000);
  await w.reconcile(r);
  st = await w.status();
  assert.equal(st.state, 'failed', '31 s after the call');
  assert.equal(st.failure?.reason, 'PowerStuck');
  assert.deepEqual(w.bmc.changes().map((c) => c.op), ['setBootDevice pxe once', 'setPower on'], 'one call');
});

test('an agent that registered while power-on was current completes register, however late the controller looks', async (t) => {
  const rows: Array<{ name: string; registeredAfterPowerOnMs: number; alive: boolean; want: string }> = [
    { name: 'registered, agent calling in', registeredAfterPowerOnMs: 0, alive: true, want: 'register:succeeded' },
    { name: 'registered, agent quiet since', registeredAfterPowerOnMs: 0, alive: false, want: 'register:succeeded' },
    // A registration from before this workflow's power on belongs to a boot that is gone: the timeout stands.
    { name: 'only a stale registration, agent calling in', registeredAfterPowerOnMs: -60_000, alive: true, want: 'failed AgentTimeout' },
    { name: 'only a stale registration, agent quiet', registeredAfterPowerOnMs: -60_000, alive: false, want: 'restarted' },
  ];
  for (const row of rows) {
    await t.test(row.name, async (t) => {
      const w = await world(t, discoverActions(), at(1, {}));
      const poweredOn = Date.parse((await w.status()).actions![0]!.startedAt!);
      const hw = (await w.registry.get(w.deps.kinds.hardware, undefined, 'hw-1'))!;
      const registeredAt = new Date(poweredOn + row.registeredAfterPowerOnMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
      await w.registry.updateStatus(w.deps.kinds.hardware, { ...hw, status: { ...(hw.status as object), agent: { bootId: 'boot-1', registeredAt, lastHeartbeat: registeredAt } } });
      if (row.alive) w.alive.add('hw-1');
      w.bmc.power = 'on';
      // register has 60 s (600 s scaled by 10); the controller looks after two minutes.
      w.clock.advance(120_000);
      await w.reconcile(w.reconciler());
      const st = await w.status();
      const got = st.state === 'failed' ? `failed ${st.failure?.reason}` : (st.restarts ?? 0) > 0 ? 'restarted' : `register:${st.actions![1]!.state}`;
      assert.equal(got, row.want, states(st).join(' '));
    });
  }
});

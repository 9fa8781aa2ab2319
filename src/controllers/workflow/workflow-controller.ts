// The workflow controller runs what the agent cannot: BMC actions (power on into PXE, boot from disk), and
// watches the clock. Agent actions are pulled by the agent (src/provisioning/agent-api.ts); this controller
// completes `register` once the machine's agent of a fresh boot has registered, and fails any action that
// overruns its timeout with a reason saying what broke. Transient BMC errors retry with backoff up to the
// action's retries. A workflow that is no longer its machine's current one is abandoned. Every step is written
// before the next begins, and every BMC call after its marker (bmc-step.ts), so a restart resumes without
// repeating a power cycle. What decides a timeout or a retry — when the action started, how often it failed, when
// it may be tried again — is in the Workflow's status, so a new leader carries on from the same counts. A machine lost while the control plane was down (powered off, or its agent not
// calling back) starts over from power-on at once. `Synced` on the Workflow says how the last reconcile went.
import { BmcError, type BmcClient } from '../../drivers/bmc/types.js';
import type { HardwareStatus } from '../../kinds/hardware.js';
import type { StoredObject } from '../../kinds/types.js';
import type { WorkflowSpec, WorkflowStatus } from '../../kinds/workflow.js';
import { ConditionReason, ConditionType, formatTime, reconcileSuccess, setCondition, type ConditionInput } from '../../runtime/conditions.js';
import { Controller, done, failed, requeueAfter, TerminalError, type Reconciler, type Result } from '../../runtime/controller.js';
import { splitKey } from '../../runtime/cache.js';
import type { Informer } from '../../runtime/informer.js';
import { bmcFor, informersOf, type ProvisioningDeps, type ProvisioningKinds } from '../provisioning-context.js';
import { attemptId, isBmcActionType, markerMessage, nextBmcStep, type BmcActionType, type CallRecord } from './bmc-step.js';
import { abandon, completeAction, currentAction, isFinished, markAttempt, recordRetry, restartWorkflow, startWorkflow, timeLeft, type Outcome, type RetryRecord } from './state.js';
import { updateWorkflowStatus } from './write.js';

/** How often a workflow whose machine was lost starts over from power-on before it fails. */
const MaxRestarts = 2;

type Informers = Record<keyof ProvisioningKinds, Informer>;

export function createWorkflowController(deps: ProvisioningDeps, opts: { workers?: number } = {}): Controller {
  const inf = informersOf(deps);
  return new Controller({
    name: 'workflow',
    reconciler: new WorkflowReconciler(deps, inf),
    workers: opts.workers ?? 8,
    clock: deps.clock,
    logger: deps.logger,
    metrics: deps.metrics,
    queueMetrics: deps.queueMetrics,
    watches: [
      { informer: inf.workflow },
      // The machine's agent registering (or the machine changing hands) moves its current workflow.
      {
        informer: inf.hardware,
        map: (o) => {
          const ref = (o.status as HardwareStatus | undefined)?.workflow;
          return ref ? [`${ref.namespace}/${ref.name}`] : [];
        },
      },
    ],
  });
}

/** What one reconcile learned on the way, for the `Synced` condition. */
interface Pass {
  /** The reconcile did not get done what it tried (a transient BMC error it will retry). */
  problem?: string;
  /** A status write of this reconcile already carried `Synced: True`. */
  syncedWritten?: boolean;
}

export class WorkflowReconciler implements Reconciler {
  /** This process's own BMC calls per action: what lets it tell its own call from one made before a restart. */
  private readonly calls = new Map<string, CallRecord>();
  /** Workflows whose machine was looked at once after this controller started (see lostWhileDown). */
  private readonly observedAfterStart = new Set<string>();
  /** BMC actions begun before this controller started whose BMC it has consulted since (see `step`). */
  private readonly lookedAt = new Set<string>();
  /** When this controller started: actions begun before it were under a process that may be gone. */
  private readonly startedAt: number;

  constructor(
    private readonly deps: ProvisioningDeps,
    private readonly inf: Informers,
  ) {
    this.startedAt = deps.clock.now();
  }

  private now(): string {
    return formatTime(this.deps.clock.now());
  }

  async reconcile(key: string): Promise<Result> {
    const pass: Pass = {};
    let result: Result;
    try {
      result = await this.step(key, pass);
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      result = failed(error, e instanceof TerminalError);
    }
    const problem = 'error' in result ? result.error.message : pass.problem;
    if (problem !== undefined || !pass.syncedWritten) {
      try {
        await this.recordSynced(key, problem);
      } catch (e) {
        // The reconcile's own error says more than the failed write of its condition.
        if (!('error' in result)) return failed(e instanceof Error ? e : new Error(String(e)));
      }
    }
    return result;
  }

  /** Writes `Synced` when it changed: True after a reconcile that did what it set out to, else False with why. */
  private async recordSynced(key: string, problem: string | undefined): Promise<void> {
    const { namespace, name } = splitKey(key);
    const wf = this.inf.workflow.get(namespace, name);
    if (!wf || isFinished(wf.status as WorkflowStatus | undefined)) return;
    const input: ConditionInput = problem === undefined ? reconcileSuccess(wf.metadata.generation) : { type: ConditionType.Synced, status: 'False', reason: ConditionReason.ReconcileError, message: problem, observedGeneration: wf.metadata.generation };
    const cached = (wf.status as WorkflowStatus | undefined)?.conditions;
    if (!setCondition(cached, input, this.deps.clock.now()).changed) return;
    await updateWorkflowStatus(this.deps.client, this.deps.kinds.workflow, namespace!, name, (_s, st, cur) => {
      if (isFinished(st)) return undefined;
      const r = setCondition(st?.conditions, { ...input, observedGeneration: cur.metadata.generation }, this.deps.clock.now());
      return r.changed ? { ...(st ?? {}), conditions: r.conditions } : undefined;
    });
  }

  private async step(key: string, pass: Pass): Promise<Result> {
    const { namespace, name } = splitKey(key);
    const wf = this.inf.workflow.get(namespace, name);
    if (!wf) {
      this.forgetWorkflow(key);
      return done;
    }
    const spec = wf.spec as WorkflowSpec;
    const status = wf.status as WorkflowStatus | undefined;
    if (isFinished(status)) {
      this.forgetWorkflow(key);
      return done;
    }
    const hw = this.inf.hardware.get(undefined, spec.hardware);
    const ref = (hw?.status as HardwareStatus | undefined)?.workflow;
    if (!hw || ref?.namespace !== namespace || ref?.name !== name) {
      // Give the hardware cache a moment: the transaction that made this workflow current may not be in it yet.
      const age = this.deps.clock.now() - Date.parse(wf.metadata.creationTimestamp);
      if (age < 2_000) return requeueAfter(250);
      await this.write(wf, pass, () => abandon(status, spec, hw ? 'Superseded' : 'HardwareGone', hw ? `hardware ${spec.hardware} moved on to another workflow` : `hardware ${spec.hardware} does not exist`, this.now()));
      return done;
    }
    if (!status?.state || status.state === 'pending') {
      await this.write(wf, pass, (s, st) => (st?.state === 'running' ? undefined : startWorkflow(s, this.now(), this.isWarm(hw))));
      return done;
    }
    const cur = currentAction(spec, status);
    if (!cur) return done;
    // The agent of the boot this workflow caused registered while power-on was still current (the agent API
    // completes register itself only when it is current): the machine was in time, however late this
    // controller gets to it, so this comes before the timeout.
    if (cur.action.type === 'register' && this.agentRegisteredSince(hw, spec, status)) {
      await this.write(wf, pass, (s, st) => {
        const again = currentAction(s, st);
        if (!again || again.index !== cur.index) return undefined;
        return completeAction(s, st!, cur.index, { ok: true, message: `agent of boot ${(hw.status as HardwareStatus).agent?.bootId} registered` }, this.now(), true);
      });
      return done;
    }
    const began = Date.parse(cur.state.startedAt ?? status.startedAt ?? wf.metadata.creationTimestamp);
    // A BMC action's clock starts at its first marker, not when it became current (timeLeft): one this
    // controller has not attempted yet, however long it waited for a worker, has its whole timeout left.
    const stored = timeLeft(spec, status, this.deps.clock.now(), (s) => this.deps.timing.timeoutMs(s)) ?? 0;
    // A BMC step begun by a previous process or leader is settled by looking at the BMC (bmc-step.ts) before its
    // stored clock may time it out: the new leader's lease wait, when nobody could act on it, must not fail it
    // unseen. From that first look on, the stored clock — the same for every leader — decides (a new attempt
    // after the look starts it again).
    const lookKey = `${key}/${status.restarts ?? 0}/${cur.index}`;
    const firstLook = cur.action.executor === 'bmc' && cur.state.state === 'running' && began < this.startedAt && !this.lookedAt.has(lookKey);
    const left = firstLook ? Math.max(stored, this.deps.timing.timeoutMs(cur.action.timeoutSeconds)) : stored;
    const canRestart = spec.actions.some((a) => a.type === 'power-on-pxe') && (status.restarts ?? 0) < MaxRestarts;
    const restart = async (why: string): Promise<Result> => {
      await this.write(wf, pass, (s, st) => {
        const again = currentAction(s, st);
        if (!again || again.index !== cur.index) return undefined;
        return restartWorkflow(s, st!, this.now(), why);
      });
      return done;
    };
    if (left <= 0) {
      // The agent vanished mid-workflow (the machine lost power, or everything restarted): start over from
      // power-on, a couple of times, before calling it a failure. Every action is safe to run again.
      const lost = (cur.action.executor === 'os' || (cur.action.executor === 'agent' && !this.deps.agents.isAlive(spec.hardware))) && spec.actions.some((a) => a.type === 'power-on-pxe');
      await this.write(wf, pass, (s, st) => {
        const again = currentAction(s, st);
        if (!again || again.index !== cur.index) return undefined;
        if (lost && (st!.restarts ?? 0) < MaxRestarts) {
          const why = cur.action.executor === 'os' ? `the installed OS did not phone home (${this.timeoutOutcome(spec, status, cur.index).message})` : `the agent stopped calling in during ${cur.action.name}`;
          return restartWorkflow(s, st!, this.now(), why);
        }
        return completeAction(s, st!, cur.index, this.timeoutOutcome(spec, status, cur.index), this.now());
      });
      return done;
    }
    if (cur.action.executor !== 'bmc' && canRestart && began < this.startedAt && (await this.lostWhileDown(key, wf, hw))) {
      return restart(`the machine was found powered off during ${cur.action.name} when the control plane started`);
    }
    // An agent action whose agent stopped calling in (the machine lost power, or everything restarted) is not
    // waited out to its full timeout: after a minute of silence the machine is lost and the workflow starts over.
    // An action begun before this controller started was left by a process that is gone, and the agents it
    // talked to (which long-poll) call back within seconds: one that has not after a short grace is lost.
    if (cur.action.executor === 'agent' && cur.action.type !== 'register' && !this.deps.agents.isAlive(spec.hardware)) {
      const silent = this.deps.clock.now() - Math.max(began, this.startedAt);
      const grace = began < this.startedAt ? this.reconnectGraceMs() : this.deps.timing.timeoutMs(60);
      if (silent >= grace && canRestart) return restart(`the agent stopped calling in during ${cur.action.name}`);
      if (silent < grace) return requeueAfter(Math.min(left, grace - silent));
    }
    switch (cur.action.executor) {
      case 'bmc':
        return this.runBmc(wf, hw, cur.index, left, pass, () => firstLook && this.lookedAt.add(lookKey));
      default:
        // The agent (or the installed OS) moves it on; this controller only watches the clock.
        return requeueAfter(left);
    }
  }

  /**
   * How long an agent gets to call back after this controller started: sim agents and real ones retry within
   * a few (simulated) seconds of losing their long poll; a floor covers a control plane that is still busy
   * starting.
   */
  private reconnectGraceMs(): number {
    return Math.max(this.deps.timing.delayMs(10), 3_000);
  }

  /**
   * Once per workflow after this controller started, for an action begun before it: is the machine off? Then
   * nothing it was doing (booting, running the agent, the installed OS) can still be going on: it is lost, and
   * waiting for its timeout would only keep it (and the device queued for it) idle. A BMC that cannot be read
   * is asked again on the next reconcile.
   */
  private async lostWhileDown(key: string, wf: StoredObject, hw: StoredObject): Promise<boolean> {
    const st = wf.status as WorkflowStatus;
    const id = `${key}/${st.restarts ?? 0}/${st.current ?? 0}`;
    if (this.observedAfterStart.has(id)) return false;
    let power: string;
    try {
      power = await (await bmcFor(this.deps, hw)).powerState();
    } catch (e) {
      if (e instanceof BmcError) return false;
      throw e;
    }
    this.observedAfterStart.add(id);
    return power === 'off';
  }

  private forgetWorkflow(key: string): void {
    for (const k of this.calls.keys()) if (k.startsWith(`${key}/`)) this.calls.delete(k);
    for (const set of [this.observedAfterStart, this.lookedAt]) {
      for (const k of set) if (k.startsWith(`${key}/`)) set.delete(k);
    }
  }

  private isWarm(hw: StoredObject): boolean {
    const bootId = (hw.status as HardwareStatus | undefined)?.agent?.bootId;
    return bootId !== undefined && this.deps.agents.isAlive(hw.metadata.name, bootId);
  }

  /** The machine's agent registered after this workflow powered it on (a fresh boot, not a stale one). */
  private agentRegisteredSince(hw: StoredObject, spec: WorkflowSpec, status: WorkflowStatus): boolean {
    const at = (hw.status as HardwareStatus | undefined)?.agent?.registeredAt;
    if (!at) return false;
    const powerOn = spec.actions.findIndex((a) => a.type === 'power-on-pxe');
    const since = powerOn >= 0 ? status.actions?.[powerOn]?.startedAt : status.startedAt;
    return since !== undefined && Date.parse(at) >= Date.parse(since);
  }

  private timeoutOutcome(spec: WorkflowSpec, status: WorkflowStatus, i: number): Outcome {
    const a = spec.actions[i]!;
    const st = status.actions![i]!;
    const secs = Math.round(this.deps.timing.timeoutMs(a.timeoutSeconds) / 1000);
    const last = st.message ? ` (last: ${st.message})` : '';
    if (a.executor === 'bmc' && st.retry) return { ok: false, reason: st.retry.reason, message: `${st.retry.message} (${st.retry.failures} attempts in ${secs} s)` };
    switch (a.type) {
      case 'power-on-pxe':
        return { ok: false, reason: 'PowerStuck', message: `the BMC accepted power on, but the machine was not on after ${secs} s${last}` };
      case 'register':
        return { ok: false, reason: 'AgentTimeout', message: `no agent registered within ${secs} s of power on: the machine did not netboot (NIC down, PXE not answered, or a very slow boot)` };
      case 'phone-home':
        return { ok: false, reason: 'PhoneHomeTimeout', message: `the installed OS did not phone home within ${secs} s of the reboot` };
      default:
        if (a.executor === 'agent') {
          return st.state === 'running'
            ? { ok: false, reason: 'AgentTimeout', message: `the agent took ${a.name} but reported nothing within ${secs} s (agent hung or machine lost)` }
            : { ok: false, reason: 'AgentTimeout', message: `the agent did not ask for ${a.name} within ${secs} s (agent gone?)` };
        }
        return { ok: false, reason: 'Timeout', message: `${a.name} did not finish within ${secs} s${last}` };
    }
  }

  /**
   * One step of a BMC action: mark, then call; or observe what an earlier call did (bmc-step.ts). The marker is
   * in the store before the BMC is asked to do anything, so whoever looks (the boot service, a restarted
   * controller) sees the attempt before the machine does.
   */
  private async runBmc(wf: StoredObject, hw: StoredObject, i: number, left: number, pass: Pass, looking: () => void): Promise<Result> {
    const spec = wf.spec as WorkflowSpec;
    const action = spec.actions[i]!;
    const status = wf.status as WorkflowStatus;
    const key = `${wf.metadata.namespace}/${wf.metadata.name}/${i}`;
    const type = action.type;
    if (!isBmcActionType(type)) return this.finishBmc(wf, pass, hw, i, { ok: false, reason: 'UnsupportedAction', message: `no BMC action ${type}` });
    const input = { type, state: status.actions![i]!, attempt: attemptId(status, i), known: this.calls.get(key), now: this.deps.clock.now() };
    let step = nextBmcStep(input);
    if (step.do === 'backoff') {
      pass.problem = retryingMessage(action, input.state.retry);
      return requeueAfter(Math.min(left, step.ms));
    }
    let calling: string | undefined;
    // The attempt a failure belongs to: the one found, or the one this reconcile marked.
    let attempt = input.attempt;
    try {
      const bmc = await bmcFor(this.deps, hw);
      looking();
      if (step.do === 'observe') step = nextBmcStep({ ...input, observed: await bmc.system() });
      switch (step.do) {
        case 'backoff':
        case 'observe':
          throw new Error(`workflow ${key}: no BMC step after observing`);
        case 'wait':
          return requeueAfter(Math.min(left, this.deps.timing.delayMs(1)));
        case 'complete':
          return this.finishBmc(wf, pass, hw, i, { ok: true, ...(step.message ? { message: step.message } : {}) });
        case 'call': {
          const fresh = step.fresh;
          const marked = await this.write(wf, pass, (s, st) => {
            const again = currentAction(s, st);
            // Only the attempt decided on: anything newer in the store is someone else's step.
            if (!again || again.index !== i || attemptId(st!, i) !== input.attempt || again.state.state !== input.state.state) return undefined;
            return markAttempt(st!, i, this.now(), markerMessage[type], fresh);
          });
          if (!marked) return done;
          calling = attempt = attemptId(marked.status as WorkflowStatus, i);
          await this.callBmc(bmc, type, hw);
          this.calls.set(key, { attempt: calling, phase: 'sent' });
          calling = undefined;
          // Power on is done when the machine is on; a BMC that lags is looked at again (step 'wait').
          if (type === 'power-on-pxe' && (await bmc.powerState()) !== 'on') return requeueAfter(Math.min(left, this.deps.timing.delayMs(1)));
          return this.finishBmc(wf, pass, hw, i, { ok: true, ...(type === 'power-on-pxe' ? { message: 'powered on into PXE' } : type === 'set-boot-disk' ? { message: 'next boots from disk' } : {}) });
        }
      }
    } catch (e) {
      // A call cut short by anything may or may not have reached the BMC: the next try is a new attempt.
      if (calling !== undefined) this.calls.set(key, { attempt: calling, phase: 'failed', retryAt: this.deps.clock.now() });
      if (!(e instanceof BmcError)) throw e;
      return this.bmcFailed(wf, pass, i, attempt, e, calling, left);
    }
  }

  /**
   * A BMC error: within the action's retries (counted in the store, so a new leader continues the count) a
   * transient one is tried again after a backoff, recorded with it; else the action fails. The record's write
   * wakes this controller at once; the backoff in it (and in this process's call record, until its informer has
   * the write) keeps it waiting.
   */
  private async bmcFailed(wf: StoredObject, pass: Pass, i: number, attempt: string, e: BmcError, calling: string | undefined, left: number): Promise<Result> {
    const key = `${wf.metadata.namespace}/${wf.metadata.name}/${i}`;
    const action = (wf.spec as WorkflowSpec).actions[i]!;
    const reason = e.kind === 'unreachable' || e.kind === 'timeout' ? 'BMCUnreachable' : 'BMCError';
    const now = this.deps.clock.now();
    let retry: RetryRecord | undefined;
    let ms = 0;
    const written = await updateWorkflowStatus(this.deps.client, this.deps.kinds.workflow, wf.metadata.namespace!, wf.metadata.name, (s, st, cur) => {
      const again = currentAction(s, st);
      // Counted on the newest status: only while it is still the attempt this reconcile decided on.
      if (!again || again.index !== i || attemptId(st!, i) !== attempt) return undefined;
      const failures = (again.state.retry?.failures ?? 0) + 1;
      if (!e.transient || failures > (action.retries ?? 0)) {
        retry = undefined;
        const next = completeAction(s, st!, i, { ok: false, reason, message: e.message }, this.now());
        return { ...next, conditions: setCondition(next.conditions, reconcileSuccess(cur.metadata.generation), now).conditions };
      }
      // Backoff in simulated time, but never faster than a real BMC could recover (a BMC reboot takes seconds).
      ms = Math.min(left, Math.max(this.deps.timing.delayMs(2 ** failures), 125 * 2 ** failures));
      retry = { failures, notBefore: new Date(now + ms).toISOString(), reason, message: e.message, ...(calling !== undefined ? { attempt: calling } : {}) };
      const next = recordRetry(st!, i, retry);
      const synced: ConditionInput = { type: ConditionType.Synced, status: 'False', reason: ConditionReason.ReconcileError, message: retryingMessage(action, retry)!, observedGeneration: cur.metadata.generation };
      return { ...next, conditions: setCondition(next.conditions, synced, now).conditions };
    });
    if (!written) return done;
    pass.syncedWritten = true;
    if (!retry) {
      this.calls.delete(key);
      return done;
    }
    if (calling !== undefined) this.calls.set(key, { attempt: calling, phase: 'failed', retryAt: now + ms });
    pass.problem = retryingMessage(action, retry);
    return requeueAfter(ms);
  }

  /** The BMC calls of one action. Only ever made after the attempt's marker is in the store. */
  private async callBmc(bmc: BmcClient, type: BmcActionType, hw: StoredObject): Promise<void> {
    switch (type) {
      case 'power-on-pxe':
        // The machine's agent, if one ran, is gone with this boot.
        this.deps.agents.forget(hw.metadata.name);
        await bmc.setBootDevice('pxe', { once: true });
        await bmc.setPower((await bmc.powerState()) === 'on' ? 'reset' : 'on');
        return;
      case 'set-boot-disk':
        await bmc.setBootDevice('disk', { once: false });
        return;
      case 'power-off':
        await bmc.setPower('off');
        return;
    }
  }

  private async finishBmc(wf: StoredObject, pass: Pass, hw: StoredObject, i: number, o: Outcome): Promise<Result> {
    const key = `${wf.metadata.namespace}/${wf.metadata.name}/${i}`;
    const action = (wf.spec as WorkflowSpec).actions[i]!;
    this.calls.delete(key);
    await this.write(wf, pass, (s, st) => {
      const again = currentAction(s, st);
      if (!again || again.index !== i) return undefined;
      return completeAction(s, st!, i, o, this.now(), action.type !== 'power-on-pxe' && this.isWarm(hw));
    });
    return done;
  }

  /** Writes a new status, with `Synced: True`: this reconcile's step went through. */
  private write(wf: StoredObject, pass: Pass, change: (spec: WorkflowSpec, status: WorkflowStatus | undefined) => WorkflowStatus | undefined): Promise<StoredObject | undefined> {
    return updateWorkflowStatus(this.deps.client, this.deps.kinds.workflow, wf.metadata.namespace!, wf.metadata.name, (s, st, cur) => {
      const next = change(s, st);
      if (!next) return undefined;
      const synced = setCondition(next.conditions ?? st?.conditions, reconcileSuccess(cur.metadata.generation), this.deps.clock.now());
      return { ...next, conditions: synced.conditions };
    }).then((written) => {
      if (written) pass.syncedWritten = true;
      return written;
    });
  }
}

function retryingMessage(action: WorkflowSpec['actions'][number], retry: RetryRecord | undefined): string | undefined {
  return retry && `${action.name}: ${retry.message} (attempt ${retry.failures} of ${(action.retries ?? 0) + 1}; retrying)`;
}

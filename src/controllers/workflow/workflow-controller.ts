// The workflow controller runs what the agent cannot: BMC actions (power on into PXE, boot from disk), and
// watches the clock. Agent actions are pulled by the agent (src/provisioning/agent-api.ts); this controller
// wakes a waiting agent when an action is ready for it, completes `register` once the machine's agent of a
// fresh boot has registered, and fails any action that overruns its timeout with a reason saying what broke.
// Transient BMC errors retry with backoff up to the action's retries. A workflow that is no longer its
// machine's current one is abandoned. Every step is written before the next begins, so a restart resumes.
import { BmcError } from '../../drivers/bmc/types.js';
import type { HardwareStatus } from '../../kinds/hardware.js';
import type { StoredObject } from '../../kinds/types.js';
import type { WorkflowSpec, WorkflowStatus } from '../../kinds/workflow.js';
import { formatTime } from '../../runtime/conditions.js';
import { Controller, done, requeueAfter, type Reconciler, type Result } from '../../runtime/controller.js';
import { splitKey } from '../../runtime/cache.js';
import type { Informer } from '../../runtime/informer.js';
import { bmcFor, informersOf, type ProvisioningDeps, type ProvisioningKinds } from '../provisioning-context.js';
import { abandon, completeAction, currentAction, isFinished, restartWorkflow, startWorkflow, timeLeft, type Outcome } from './state.js';

const MaxRestarts = 2;
import { updateWorkflowStatus } from './write.js';

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

export class WorkflowReconciler implements Reconciler {
  private readonly bmcAttempts = new Map<string, { n: number; error: BmcError }>();

  constructor(
    private readonly deps: ProvisioningDeps,
    private readonly inf: Informers,
  ) {}

  private now(): string {
    return formatTime(this.deps.clock.now());
  }

  async reconcile(key: string): Promise<Result> {
    const { namespace, name } = splitKey(key);
    const wf = this.inf.workflow.get(namespace, name);
    if (!wf) return done;
    const spec = wf.spec as WorkflowSpec;
    const status = wf.status as WorkflowStatus | undefined;
    if (isFinished(status)) return done;
    const hw = this.inf.hardware.get(undefined, spec.hardware);
    const ref = (hw?.status as HardwareStatus | undefined)?.workflow;
    if (!hw || ref?.namespace !== namespace || ref?.name !== name) {
      // Give the hardware cache a moment: the transaction that made this workflow current may not be in it yet.
      const age = this.deps.clock.now() - Date.parse(wf.metadata.creationTimestamp);
      if (age < 2_000) return requeueAfter(250);
      await this.write(wf, () => abandon(status, spec, hw ? 'Superseded' : 'HardwareGone', hw ? `hardware ${spec.hardware} moved on to another workflow` : `hardware ${spec.hardware} does not exist`, this.now()));
      return done;
    }
    if (!status?.state || status.state === 'pending') {
      await this.write(wf, (s, st) => (st?.state === 'running' ? undefined : startWorkflow(s, this.now(), this.isWarm(hw))));
      return done;
    }
    const cur = currentAction(spec, status);
    if (!cur) return done;
    const left = timeLeft(spec, status, this.deps.clock.now(), (s) => this.deps.timing.timeoutMs(s)) ?? 0;
    if (left <= 0) {
      // The agent vanished mid-workflow (the machine lost power, or everything restarted): start over from
      // power-on, a couple of times, before calling it a failure. Every action is safe to run again.
      const lost = (cur.action.executor === 'os' || (cur.action.executor === 'agent' && !this.deps.agents.isAlive(spec.hardware))) && spec.actions.some((a) => a.type === 'power-on-pxe');
      await this.write(wf, (s, st) => {
        const again = currentAction(s, st);
        if (!again || again.index !== cur.index) return undefined;
        if (lost && (st!.restarts ?? 0) < MaxRestarts) {
          const why = cur.action.executor === 'os' ? `the installed OS did not phone home (${this.timeoutOutcome(key, spec, status, cur.index).message})` : `the agent stopped calling in during ${cur.action.name}`;
          return restartWorkflow(s, st!, this.now(), why);
        }
        return completeAction(s, st!, cur.index, this.timeoutOutcome(key, spec, status, cur.index), this.now());
      });
      return done;
    }
    // An agent action whose agent stopped calling in (the machine lost power, or everything restarted) is not
    // waited out to its full timeout: after a minute of silence the machine is lost and the workflow starts over.
    if (cur.action.executor === 'agent' && cur.action.type !== 'register' && !this.deps.agents.isAlive(spec.hardware)) {
      const silent = this.deps.clock.now() - Date.parse(cur.state.startedAt ?? status.startedAt ?? wf.metadata.creationTimestamp);
      const grace = this.deps.timing.timeoutMs(60);
      if (silent >= grace && (status.restarts ?? 0) < MaxRestarts && spec.actions.some((a) => a.type === 'power-on-pxe')) {
        await this.write(wf, (s, st) => {
          const again = currentAction(s, st);
          if (!again || again.index !== cur.index) return undefined;
          return restartWorkflow(s, st!, this.now(), `the agent stopped calling in during ${cur.action.name}`);
        });
        return done;
      }
      if (silent < grace) return requeueAfter(Math.min(left, grace - silent));
    }
    switch (cur.action.executor) {
      case 'bmc':
        return this.runBmc(wf, hw, cur.index, left);
      case 'agent':
        if (cur.action.type === 'register') {
          if (this.agentRegisteredSince(hw, spec, status)) {
            await this.write(wf, (s, st) => {
              const again = currentAction(s, st);
              if (!again || again.index !== cur.index) return undefined;
              return completeAction(s, st!, cur.index, { ok: true, message: `agent of boot ${(hw.status as HardwareStatus).agent?.bootId} registered` }, this.now(), true);
            });
            return done;
          }
          return requeueAfter(left);
        }
        return requeueAfter(left);
      default:
        return requeueAfter(left);
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

  private timeoutOutcome(wfKey: string, spec: WorkflowSpec, status: WorkflowStatus, i: number): Outcome {
    const a = spec.actions[i]!;
    const st = status.actions![i]!;
    const secs = Math.round(this.deps.timing.timeoutMs(a.timeoutSeconds) / 1000);
    const last = st.message ? ` (last: ${st.message})` : '';
    const bmcTry = a.executor === 'bmc' ? this.bmcAttempts.get(`${wfKey}/${i}`) : undefined;
    if (bmcTry) {
      this.bmcAttempts.delete(`${wfKey}/${i}`);
      const reason = bmcTry.error.kind === 'unreachable' || bmcTry.error.kind === 'timeout' ? 'BMCUnreachable' : 'BMCError';
      return { ok: false, reason, message: `${bmcTry.error.message} (${bmcTry.n} attempts in ${secs} s)` };
    }
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

  private async runBmc(wf: StoredObject, hw: StoredObject, i: number, left: number): Promise<Result> {
    const spec = wf.spec as WorkflowSpec;
    const action = spec.actions[i]!;
    const status = wf.status as WorkflowStatus;
    const attemptKey = `${wf.metadata.namespace}/${wf.metadata.name}/${i}`;
    const attempts = (this.bmcAttempts.get(attemptKey)?.n ?? 0) + 1;
    let outcome: Outcome | 'wait';
    try {
      const bmc = await bmcFor(this.deps, hw);
      if (action.type === 'power-on-pxe') {
        this.deps.agents.forget(hw.metadata.name);
        if (status.actions![i]!.state !== 'running') {
          await bmc.setBootDevice('pxe', { once: true });
          await bmc.setPower((await bmc.powerState()) === 'on' ? 'reset' : 'on');
          const marked = await this.write(wf, (s, st) => {
            const again = currentAction(s, st);
            if (!again || again.index !== i) return undefined;
            const next = { ...st!, actions: st!.actions!.map((a, j) => (j === i ? { ...a, state: 'running' as const, attempts: (a.attempts ?? 0) + 1, message: 'power on (boot once from PXE) sent' } : a)) };
            return next;
          });
          if (!marked) return done;
        }
        outcome = (await bmc.powerState()) === 'on' ? { ok: true, message: 'powered on into PXE' } : 'wait';
      } else if (action.type === 'set-boot-disk') {
        await bmc.setBootDevice('disk', { once: false });
        outcome = { ok: true, message: 'next boots from disk' };
      } else if (action.type === 'power-off') {
        await bmc.setPower('off');
        outcome = { ok: true };
      } else {
        outcome = { ok: false, reason: 'UnsupportedAction', message: `no BMC action ${action.type}` };
      }
    } catch (e) {
      if (!(e instanceof BmcError)) throw e;
      const retries = action.retries ?? 0;
      if (e.transient && attempts <= retries) {
        // Retries are counted in memory and not written: a write would wake this controller at once and skip
        // the backoff. After a restart the count starts again, which only ever means more patience.
        this.bmcAttempts.set(attemptKey, { n: attempts, error: e });
        // Backoff in simulated time, but never faster than a real BMC could recover (a BMC reboot takes seconds).
        return requeueAfter(Math.min(left, Math.max(this.deps.timing.delayMs(2 ** attempts), 125 * 2 ** attempts)));
      }
      outcome = { ok: false, reason: e.kind === 'unreachable' || e.kind === 'timeout' ? 'BMCUnreachable' : 'BMCError', message: e.message };
    }
    if (outcome === 'wait') return requeueAfter(Math.min(left, this.deps.timing.delayMs(1)));
    this.bmcAttempts.delete(attemptKey);
    const o = outcome;
    await this.write(wf, (s, st) => {
      const again = currentAction(s, st);
      if (!again || again.index !== i) return undefined;
      return completeAction(s, st!, i, o, this.now(), action.type !== 'power-on-pxe' && this.isWarm(hw));
    });
    return done;
  }

  private write(wf: StoredObject, change: (spec: WorkflowSpec, status: WorkflowStatus | undefined) => WorkflowStatus | undefined): Promise<StoredObject | undefined> {
    return updateWorkflowStatus(this.deps.client, this.deps.kinds.workflow, wf.metadata.namespace!, wf.metadata.name, change);
  }
}

// The hardware controller: the lifecycle of a machine that is not a Device's. A newly enrolled machine is
// discovered (power on into PXE, the agent registers and reports its inventory) and becomes `available` —
// its agent stays up, waiting: the warm pool. A failed machine with no device is tried again after a
// cool-down, so a machine whose fault went away returns by itself; `spec.maintenance` takes a free machine out
// of service. The power state is read from the BMC now and then and reported when it changes.
import { BmcError } from '../../drivers/bmc/types.js';
import type { HardwareSpec, HardwareStatus } from '../../kinds/hardware.js';
import type { KubeObject, StoredObject } from '../../kinds/types.js';
import type { WorkflowStatus } from '../../kinds/workflow.js';
import { formatTime, reconcileSuccess, setConditions, type ConditionInput } from '../../runtime/conditions.js';
import { Controller, done, requeueAfter, type Reconciler, type Result } from '../../runtime/controller.js';
import { splitKey } from '../../runtime/cache.js';
import type { Informer } from '../../runtime/informer.js';
import { reportSynced } from '../../runtime/synced.js';
import { bmcFor, informersOf, provisioningErrorReason, SystemNamespace, type ProvisioningDeps, type ProvisioningKinds } from '../provisioning-context.js';
import { isFinished } from '../workflow/state.js';
import { discoverActions, workflowName } from '../workflow/templates.js';

const FieldManager = 'metalplane-hardware-controller';
type Informers = Record<keyof ProvisioningKinds, Informer>;

export interface HardwareControllerOptions {
  workers?: number;
  /** How often to read the power state of each machine, real ms (default 60 s; 0 = never). */
  powerPollMs?: number;
  /** Cool-down before a failed free machine is discovered again, real-world seconds (scaled; default 300). */
  retryFailedSeconds?: number;
}

export function createHardwareController(deps: ProvisioningDeps, opts: HardwareControllerOptions = {}): Controller {
  const inf = informersOf(deps);
  return new Controller({
    name: 'hardware',
    reconciler: reportSynced(new HardwareReconciler(deps, inf, opts), { client: deps.client, kind: deps.kinds.hardware, cache: inf.hardware, fieldManager: FieldManager, clock: deps.clock, reasonOf: provisioningErrorReason }),
    workers: opts.workers ?? 4,
    clock: deps.clock,
    logger: deps.logger,
    metrics: deps.metrics,
    queueMetrics: deps.queueMetrics,
    watches: [
      { informer: inf.hardware },
      { informer: inf.workflow, map: (o) => (o.metadata.namespace === SystemNamespace && (o.spec as { purpose?: string }).purpose === 'discover' ? [(o.spec as { hardware: string }).hardware] : []) },
    ],
  });
}

export class HardwareReconciler implements Reconciler {
  private readonly lastPoll = new Map<string, number>();

  constructor(
    private readonly deps: ProvisioningDeps,
    private readonly inf: Informers,
    private readonly opts: HardwareControllerOptions,
  ) {}

  private now(): string {
    return formatTime(this.deps.clock.now());
  }

  async reconcile(key: string): Promise<Result> {
    const { name } = splitKey(key);
    const hw = await this.deps.client.get(this.deps.kinds.hardware, undefined, name);
    if (!hw) {
      this.lastPoll.delete(name);
      return done;
    }
    const spec = hw.spec as HardwareSpec;
    const st = (hw.status ?? {}) as HardwareStatus;
    if (st.claim) return this.pollPower(hw);
    if (spec.maintenance) {
      if (st.state !== 'maintenance') {
        await this.writeStatus(hw, { ...st, state: 'maintenance' }, 'Maintenance', 'taken out of service (spec.maintenance)');
      }
      return done;
    }
    if (!st.state || st.state === 'maintenance') return this.discover(hw);
    if (st.state === 'discovering') {
      const wf = st.workflow ? this.inf.workflow.get(st.workflow.namespace, st.workflow.name) : undefined;
      if (!wf) return st.workflow ? requeueAfter(500) : await this.discover(hw);
      const wst = wf.status as WorkflowStatus | undefined;
      if (!isFinished(wst)) return done;
      if (wst!.state === 'succeeded') {
        await this.writeStatus(hw, { ...withoutWorkflow(st), state: 'available', power: 'on' }, 'Available', 'discovered: the agent is up and the inventory matches');
        return done;
      }
      const f = wst!.failure ?? { action: '?', reason: 'DiscoveryFailed', message: 'discovery failed' };
      await this.writeStatus(hw, { ...withoutWorkflow(st), state: 'failed', lastFailure: { reason: f.reason, message: `${f.action}: ${f.message}`, time: this.now() } }, f.reason, `discovery failed at ${f.action}: ${f.message}`, 'Warning');
      return requeueAfter(this.retryMs());
    }
    if (st.state === 'failed') {
      const since = Date.parse(st.lastFailure?.time ?? hw.metadata.creationTimestamp);
      const wait = since + this.retryMs() - this.deps.clock.now();
      if (wait > 0) return requeueAfter(wait);
      return this.discover(hw);
    }
    return this.pollPower(hw);
  }

  private retryMs(): number {
    return this.deps.timing.timeoutMs(this.opts.retryFailedSeconds ?? 300);
  }

  private async discover(hw: StoredObject): Promise<Result> {
    const st = (hw.status ?? {}) as HardwareStatus;
    const name = workflowName(hw.metadata.name, 'discover', hw.metadata.resourceVersion);
    const wf: KubeObject = {
      apiVersion: 'metalplane.dev/v1alpha1',
      kind: 'Workflow',
      metadata: {
        name,
        namespace: SystemNamespace,
        labels: { 'metalplane.dev/hardware': hw.metadata.name, 'metalplane.dev/purpose': 'discover' },
        ownerReferences: [{ apiVersion: 'metalplane.dev/v1alpha1', kind: 'Hardware', name: hw.metadata.name, uid: hw.metadata.uid, controller: true }],
      },
      spec: { hardware: hw.metadata.name, purpose: 'discover', actions: discoverActions() },
    };
    const conditions = this.conditions(hw, st, { type: 'Ready', status: 'False', reason: 'Discovering', message: 'powering on into the agent to check the machine', observedGeneration: hw.metadata.generation });
    await this.deps.client.transact(
      [
        { op: 'create', kind: this.deps.kinds.workflow, object: wf },
        { op: 'update', kind: this.deps.kinds.hardware, object: { ...hw, status: { ...st, state: 'discovering', workflow: { namespace: SystemNamespace, name }, conditions } }, subresource: 'status' },
      ],
      { fieldManager: FieldManager },
    );
    return done;
  }

  /** The conditions of a status this reconcile writes: `ready` if given, and Synced=True (it got this far). */
  private conditions(hw: StoredObject, st: HardwareStatus, ready?: ConditionInput): HardwareStatus['conditions'] {
    const inputs = ready ? [ready, reconcileSuccess(hw.metadata.generation)] : [reconcileSuccess(hw.metadata.generation)];
    return setConditions(st.conditions, inputs, this.deps.clock.now()).conditions;
  }

  private async writeStatus(hw: StoredObject, status: HardwareStatus, reason: string, message: string, type: 'Normal' | 'Warning' = 'Normal'): Promise<void> {
    const ready = status.state === 'available' || status.state === 'in-use';
    status.conditions = this.conditions(hw, status, { type: 'Ready', status: ready ? 'True' : 'False', reason, message, observedGeneration: hw.metadata.generation });
    await this.deps.client.updateStatus(this.deps.kinds.hardware, { ...hw, status }, { fieldManager: FieldManager });
    void this.deps.recorder?.record(hw, type, reason, message);
  }

  /** Reads the power state now and then; writes it only when it changed. */
  private async pollPower(hw: StoredObject): Promise<Result> {
    const every = this.opts.powerPollMs ?? 60_000;
    if (every <= 0) return done;
    const last = this.lastPoll.get(hw.metadata.name) ?? 0;
    const wait = last + every - this.deps.clock.now();
    if (wait > 0) return requeueAfter(wait);
    this.lastPoll.set(hw.metadata.name, this.deps.clock.now());
    const st = (hw.status ?? {}) as HardwareStatus;
    let power: HardwareStatus['power'];
    try {
      power = await (await bmcFor(this.deps, hw)).powerState();
    } catch (e) {
      if (!(e instanceof BmcError)) throw e;
      power = 'unknown';
    }
    if (power !== st.power) {
      await this.deps.client.updateStatus(this.deps.kinds.hardware, { ...hw, status: { ...st, power, conditions: this.conditions(hw, st) } }, { fieldManager: FieldManager });
    }
    // Spread the polls so a thousand machines are not read in the same second.
    return requeueAfter(every + Math.floor(Math.random() * every * 0.2));
  }
}

function withoutWorkflow(st: HardwareStatus): HardwareStatus {
  const out = { ...st };
  delete out.workflow;
  return out;
}

// The capacity controller: keeps each Plan's status (where its machines are, how many are free, the capacity
// level per metro and facility) equal to what the Hardware says. Level-based: any Hardware change enqueues its
// plan (old and new, so a machine moved to another plan updates both), and the reconcile recounts from the
// cache; an unchanged count writes nothing.
import { isDeepStrictEqual } from 'node:util';
import type { HardwareSpec, HardwareStatus } from '../../kinds/hardware.js';
import type { PlanStatus } from '../../kinds/plan.js';
import { isConflict, isNotFound } from '../../lib/errors.js';
import { Controller, done, requeueAfter, type Reconciler, type Result } from '../../runtime/controller.js';
import type { Informer } from '../../runtime/informer.js';
import type { ProvisioningDeps } from '../provisioning-context.js';
import { planCapacity, type HardwareLike } from './capacity.js';

const FieldManager = 'metalplane-capacity';
const PlanIndex = 'plan';

export function createCapacityController(deps: Pick<ProvisioningDeps, 'client' | 'kinds' | 'informers' | 'clock' | 'logger' | 'metrics' | 'queueMetrics'>): Controller {
  const plans = deps.informers.informerFor(deps.kinds.plan);
  const hardware = deps.informers.informerFor(deps.kinds.hardware);
  if (!hardware.cache.hasIndex(PlanIndex)) hardware.addIndex(PlanIndex, (o) => [(o.spec as HardwareSpec).plan]);
  return new Controller({
    name: 'plan-capacity',
    reconciler: new CapacityReconciler(deps, plans, hardware),
    clock: deps.clock,
    logger: deps.logger,
    metrics: deps.metrics,
    queueMetrics: deps.queueMetrics,
    watches: [{ informer: plans }, { informer: hardware, map: (o) => [(o.spec as HardwareSpec).plan] }],
  });
}

export class CapacityReconciler implements Reconciler {
  constructor(
    private readonly deps: Pick<ProvisioningDeps, 'client' | 'kinds'>,
    private readonly plans: Informer,
    private readonly hardware: Informer,
  ) {}

  async reconcile(name: string): Promise<Result> {
    const plan = this.plans.get(undefined, name);
    if (!plan || plan.metadata.deletionTimestamp) return done;
    const st = (plan.status ?? {}) as PlanStatus;
    const machines: HardwareLike[] = this.hardware.cache.byIndex(PlanIndex, name).map((h) => ({ spec: h.spec as HardwareSpec, status: h.status as HardwareStatus | undefined }));
    const counted = planCapacity(name, machines);
    const next: PlanStatus = { ...st, metros: counted.metros, capacity: counted.capacity, observedGeneration: plan.metadata.generation };
    // No machines anywhere: no capacity list at all (an empty one would make `{.status.capacity[0]…}` an error).
    if (counted.capacity.length === 0) delete next.capacity;
    if (isDeepStrictEqual(next, st)) return done;
    try {
      await this.deps.client.updateStatus(this.deps.kinds.plan, { ...plan, status: next }, { fieldManager: FieldManager });
    } catch (e) {
      // A newer plan in the cache is on its way: its event enqueues the key again.
      if (isConflict(e)) return requeueAfter(10);
      if (isNotFound(e)) return done;
      throw e;
    }
    return done;
  }
}

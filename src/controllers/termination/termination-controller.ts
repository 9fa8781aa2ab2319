// The termination controller: a Device whose `spec.terminationTime` has come is deleted (the Metal API's
// `termination_time`), which runs the usual deprovisioning — wipe, release, usage record closed. Level-based: a
// device with a future time is looked at again when that time comes; an earlier or removed time is seen on the
// next change of the device.
import type { DeviceSpec } from '../../kinds/device.js';
import { isNotFound } from '../../lib/errors.js';
import { Controller, done, requeueAfter, type Reconciler, type Result } from '../../runtime/controller.js';
import { splitKey } from '../../runtime/cache.js';
import type { ProvisioningDeps } from '../provisioning-context.js';

/** Timers are capped so a far-away termination time is re-read now and then (and setTimeout's limit is kept). */
const MAX_WAIT_MS = 6 * 60 * 60 * 1000;

export function createTerminationController(deps: ProvisioningDeps): Controller {
  return new Controller({
    name: 'termination',
    reconciler: new TerminationReconciler(deps),
    workers: 1,
    clock: deps.clock,
    logger: deps.logger,
    metrics: deps.metrics,
    queueMetrics: deps.queueMetrics,
    watches: [{ informer: deps.informers.informerFor(deps.kinds.device) }],
  });
}

export class TerminationReconciler implements Reconciler {
  constructor(private readonly deps: ProvisioningDeps) {}

  async reconcile(key: string): Promise<Result> {
    const { namespace, name } = splitKey(key);
    const dev = await this.deps.client.get(this.deps.kinds.device, namespace, name);
    if (!dev || dev.metadata.deletionTimestamp) return done;
    const at = (dev.spec as DeviceSpec).terminationTime;
    if (!at) return done;
    const due = Date.parse(at) - this.deps.clock.now();
    if (Number.isNaN(due)) return done;
    if (due > 0) return requeueAfter(Math.min(due, MAX_WAIT_MS));
    try {
      await this.deps.client.delete(this.deps.kinds.device, namespace, name, { preconditions: { uid: dev.metadata.uid } });
      void this.deps.recorder?.record(dev, 'Normal', 'Terminated', `termination time ${at} reached: deleting the device`);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    return done;
  }
}

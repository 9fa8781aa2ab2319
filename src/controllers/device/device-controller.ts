// The device controller: places a Device on a machine and follows it through its life. The concerns live
// beside this file, each on its own:
// - scheduling (schedule.ts, pure; scheduler.ts, the lock, the assume sets and the one-transaction commit):
//   a queued Device is bound to one available Hardware of its metro/facility and plan (and reservation), gets
//   its IPs, and its provisioning Workflow is created, all at once or not at all;
// - the lifecycle (lifecycle.ts, the transition table and the conditions each state implies; follow.ts,
//   following the current workflow to `active` or `failed`, or to another machine);
// - the user's actions (actions.ts): power_on, power_off, reboot, reinstall, rescue via the annotation;
// - deletion (deletion.ts): the machine is wiped, then IPs, machine and finalizer are released together.
// Every reconcile's outcome is reported in the Synced condition (runtime/synced.ts); errors, conflicts included,
// are returned to the work queue, whose per-key backoff decides when to try again.
import { DeviceFinalizerName } from '../../kinds/device.js';
import type { HardwareStatus } from '../../kinds/hardware.js';
import { splitKey } from '../../runtime/cache.js';
import { Controller, done, type Reconciler, type Result } from '../../runtime/controller.js';
import { informersOf, provisioningErrorReason, type ProvisioningDeps } from '../provisioning-context.js';
import { reportSynced } from '../../runtime/synced.js';
import { FieldManager, statusOf, DeviceContext } from './context.js';
import { finalize } from './deletion.js';
import { follow } from './follow.js';
import { Scheduler } from './scheduler.js';
import { deviceKeyOf } from './workflows.js';
import { CloudConfigConsumerIndex, cloudConfigConsumerKeys } from './cloud-config.js';

export const DeviceFinalizer = DeviceFinalizerName;

export function createDeviceController(deps: ProvisioningDeps, opts: { workers?: number } = {}): Controller {
  const inf = informersOf(deps);
  if (!inf.device.cache.hasIndex(CloudConfigConsumerIndex)) inf.device.addIndex(CloudConfigConsumerIndex, cloudConfigConsumerKeys);
  const reconciler = new DeviceReconciler(new DeviceContext(deps, inf));
  return new Controller({
    name: 'device',
    reconciler: reportSynced(reconciler, { client: deps.client, kind: deps.kinds.device, cache: inf.device, fieldManager: FieldManager, clock: deps.clock, reasonOf: provisioningErrorReason }),
    // Many workers: a placement's commit is waited for outside the scheduling lock, so they group.
    workers: opts.workers ?? 16,
    clock: deps.clock,
    logger: deps.logger,
    metrics: deps.metrics,
    queueMetrics: deps.queueMetrics,
    watches: [
      { informer: inf.device },
      // A workflow's progress moves its device (a wipe in metalplane-system names the device's namespace).
      { informer: inf.workflow, map: (o) => { const k = deviceKeyOf(o); return k ? [k] : []; } },
      // A CloudConfig becoming Ready lets the devices waiting for it start provisioning.
      { informer: inf.cloudConfig, map: (o) => inf.device.cache.indexKeys(CloudConfigConsumerIndex, `${o.metadata.namespace}/${o.metadata.name}`) },
      // A machine that frees up may place a queued device; a claimed one moves its device.
      {
        informer: inf.hardware,
        map: (o) => {
          const st = o.status as HardwareStatus | undefined;
          if (st?.claim) return [`${st.claim.namespace}/${st.claim.name}`];
          if (st?.state !== 'available') return [];
          return reconciler.queuedKeys();
        },
      },
    ],
  });
}

export class DeviceReconciler implements Reconciler {
  private readonly scheduler: Scheduler;

  constructor(private readonly ctx: DeviceContext) {
    this.scheduler = new Scheduler(ctx);
  }

  /** Keys of devices waiting for a machine. */
  queuedKeys(): string[] {
    return this.scheduler.queuedKeys();
  }

  async reconcile(key: string): Promise<Result> {
    const { namespace, name } = splitKey(key);
    const { deps, kinds } = this.ctx;
    const dev = await deps.client.get(kinds.device, namespace, name);
    if (!dev) return done;
    if (dev.metadata.deletionTimestamp) return finalize(this.ctx, dev);
    if (!dev.metadata.finalizers?.includes(DeviceFinalizerName)) {
      // The kind's default hook adds it on create; this is for a device that lost it by a hand edit.
      await deps.client.update(kinds.device, { ...dev, metadata: { ...dev.metadata, finalizers: [...(dev.metadata.finalizers ?? []), DeviceFinalizerName] } }, { fieldManager: FieldManager });
      return done;
    }
    if (!statusOf(dev).hardware) return this.scheduler.schedule(namespace!, name);
    return follow(this.ctx, dev);
  }
}

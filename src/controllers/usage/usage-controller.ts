// The usage controller keeps the hourly-usage ledger: every Device has one UsageRecord (named by its uid), opened
// when a machine is given to the device (Scheduled), at its plan's price,, and closed with the moment its deletion was asked for.
// The device carries the `metalplane.dev/usage` finalizer from its creation, so that moment is never lost: after
// a kill -9 the controller finds the deleting device still there, closes the record, and lets it go. Level-based:
// each reconcile compares the record with the device and takes the one step that is missing.
import type { StoredObject } from '../../kinds/types.js';
import { UsageFinalizerName, type DeviceSpec, type DeviceStatus } from '../../kinds/device.js';
import { usageRecordKind, type UsageRecordSpec } from '../../kinds/usage-record.js';
import { namespaceKind } from '../../kinds/core.js';
import { isAlreadyExists, isConflict, isNotFound } from '../../lib/errors.js';
import { Controller, done, type Reconciler, type Result } from '../../runtime/controller.js';
import { splitKey } from '../../runtime/cache.js';
import type { ProvisioningDeps } from '../provisioning-context.js';

const FieldManager = 'metalplane-usage-controller';

/** When the device was given its machine: the Scheduled condition's transition to True. */
function scheduledAt(dev: StoredObject): string | undefined {
  const c = ((dev.status ?? {}) as DeviceStatus).conditions?.find((x) => x.type === 'Scheduled');
  return c?.status === 'True' ? c.lastTransitionTime : undefined;
}

export function createUsageController(deps: ProvisioningDeps): Controller {
  const devices = deps.informers.informerFor(deps.kinds.device);
  const records = deps.informers.informerFor(usageRecordKind);
  return new Controller({
    name: 'usage',
    reconciler: new UsageReconciler(deps),
    workers: 2,
    clock: deps.clock,
    logger: deps.logger,
    metrics: deps.metrics,
    queueMetrics: deps.queueMetrics,
    watches: [
      { informer: devices },
      // A record whose device is gone is reconciled under the device's key, to close it.
      { informer: records, map: (r) => [`${(r.spec as UsageRecordSpec).project}/${(r.spec as UsageRecordSpec).device}`] },
    ],
  });
}

export class UsageReconciler implements Reconciler {
  constructor(private readonly deps: ProvisioningDeps) {}

  async reconcile(key: string): Promise<Result> {
    const { namespace, name } = splitKey(key);
    const dev = await this.deps.client.get(this.deps.kinds.device, namespace, name);
    try {
      if (!dev) return await this.closeOrphans(namespace!, name);
      const record = await this.deps.client.get(usageRecordKind, undefined, dev.metadata.uid);
      const st = (dev.status ?? {}) as DeviceStatus;
      if (!record) {
        // Billing starts when a machine is given to the device; a device deleted while queued never used one.
        if (dev.metadata.deletionTimestamp) return await this.release(dev);
        if (st.hardware) await this.open(dev);
        return done;
      }
      if (dev.metadata.deletionTimestamp) return await this.close(dev, record);
      return await this.follow(dev, record);
    } catch (e) {
      // Someone wrote meanwhile: the next event brings the new version; the error keeps the per-key backoff.
      if (isConflict(e) && !isAlreadyExists(e)) return { error: e as Error };
      if (isAlreadyExists(e)) return done;
      throw e;
    }
  }

  private async open(dev: StoredObject): Promise<void> {
    const spec = dev.spec as DeviceSpec;
    const st = (dev.status ?? {}) as DeviceStatus;
    const plan = await this.deps.client.get(this.deps.kinds.plan, undefined, spec.plan);
    const ns = await this.deps.client.get(namespaceKind, undefined, dev.metadata.namespace!);
    const record: UsageRecordSpec = {
      project: dev.metadata.namespace!,
      projectUid: ns?.metadata.uid ?? '',
      device: dev.metadata.name,
      deviceUid: dev.metadata.uid,
      hostname: spec.hostname ?? dev.metadata.name,
      plan: spec.plan,
      ...(spec.metro ? { metro: spec.metro } : {}),
      ...(st.facility ? { facility: st.facility } : {}),
      pricePerHour: (plan?.spec as { pricing?: { hour?: number } } | undefined)?.pricing?.hour ?? 0,
      start: scheduledAt(dev) ?? new Date(this.deps.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      ...(dev.metadata.deletionTimestamp ? { end: dev.metadata.deletionTimestamp } : {}),
    };
    if (!record.projectUid) delete (record as Partial<UsageRecordSpec>).projectUid;
    await this.deps.client.create(usageRecordKind, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'UsageRecord', metadata: { name: dev.metadata.uid }, spec: record }, { fieldManager: FieldManager });
  }

  /** Keeps the record's placement current (the facility is known once the device is scheduled). */
  private async follow(dev: StoredObject, record: StoredObject): Promise<Result> {
    const facility = ((dev.status ?? {}) as DeviceStatus).facility;
    const rs = record.spec as UsageRecordSpec;
    if (facility && rs.facility !== facility) {
      await this.deps.client.mergePatch(usageRecordKind, undefined, record.metadata.name, { spec: { facility } }, { fieldManager: FieldManager });
    }
    return done;
  }

  private async close(dev: StoredObject, record: StoredObject): Promise<Result> {
    const rs = record.spec as UsageRecordSpec;
    if (!rs.end) {
      await this.deps.client.mergePatch(usageRecordKind, undefined, record.metadata.name, { spec: { end: dev.metadata.deletionTimestamp } }, { fieldManager: FieldManager });
    }
    return this.release(dev);
  }

  /** Lets the device go: the usage finalizer is removed once its record is closed (or it never had one). */
  private async release(dev: StoredObject): Promise<Result> {
    const finalizers = dev.metadata.finalizers ?? [];
    if (finalizers.includes(UsageFinalizerName)) {
      try {
        await this.deps.client.update(this.deps.kinds.device, {
          ...dev,
          metadata: { ...dev.metadata, finalizers: finalizers.filter((f) => f !== UsageFinalizerName) },
        }, { fieldManager: FieldManager });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
    return done;
  }

  /** Records of a device that is gone without its record closed (it predates the finalizer): closed now. */
  private async closeOrphans(namespace: string, name: string): Promise<Result> {
    const open = (await this.deps.client.list(usageRecordKind, { fieldSelector: `spec.project=${namespace}` })).items.filter(
      (r) => (r.spec as UsageRecordSpec).device === name && !(r.spec as UsageRecordSpec).end,
    );
    const now = new Date(this.deps.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    for (const r of open) {
      await this.deps.client.mergePatch(usageRecordKind, undefined, r.metadata.name, { spec: { end: now } }, { fieldManager: FieldManager });
    }
    return done;
  }
}

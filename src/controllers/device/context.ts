// What the parts of the device controller share: its dependencies and informers, the scheduling lock, and
// the one way a Device's status is written — with the conditions its state implies (lifecycle.ts) and
// Synced=True, since a reconcile that writes is one that succeeded so far.
import type { DeviceSpec, DeviceStatus } from '../../kinds/device.js';
import type { StoredObject } from '../../kinds/types.js';
import { formatTime, reconcileSuccess, setConditions } from '../../runtime/conditions.js';
import type { Informer } from '../../runtime/informer.js';
import { Mutex, type ProvisioningDeps, type ProvisioningKinds } from '../provisioning-context.js';
import { deviceConditions } from './lifecycle.js';

export const FieldManager = 'metalplane-device-controller';

export type Informers = Record<keyof ProvisioningKinds, Informer>;

export class DeviceContext {
  /** Placement decisions, and the start of a wipe, happen one at a time. */
  readonly lock = new Mutex();

  constructor(
    readonly deps: ProvisioningDeps,
    readonly inf: Informers,
  ) {}

  get kinds(): ProvisioningKinds {
    return this.deps.kinds;
  }

  now(): string {
    return formatTime(this.deps.clock.now());
  }

  event(obj: StoredObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    void this.deps.recorder?.record(obj, type, reason, message);
  }

  /**
   * `status` with the conditions it implies, Synced=True and observedGeneration set; `changed` when any of
   * those differ from what `status` had. `unscheduled` says why the device has no machine, when it has none.
   */
  deriveStatus(dev: StoredObject, status: DeviceStatus, unscheduled?: { reason: string; message: string }): { status: DeviceStatus; changed: boolean } {
    const generation = dev.metadata.generation;
    const inputs = deviceConditions(status, { operatingSystem: (dev.spec as DeviceSpec).operatingSystem, generation, unscheduled });
    inputs.push(reconcileSuccess(generation));
    const { conditions, changed } = setConditions(status.conditions, inputs, this.deps.clock.now());
    return { status: { ...status, conditions, observedGeneration: generation }, changed: changed || status.observedGeneration !== generation };
  }

  withConditions(dev: StoredObject, status: DeviceStatus, unscheduled?: { reason: string; message: string }): DeviceStatus {
    return this.deriveStatus(dev, status, unscheduled).status;
  }

  async writeStatus(dev: StoredObject, status: DeviceStatus): Promise<void> {
    await this.deps.client.updateStatus(this.kinds.device, { ...dev, status: this.withConditions(dev, status) }, { fieldManager: FieldManager });
  }
}

export function statusOf(dev: StoredObject): DeviceStatus {
  return (dev.status ?? {}) as DeviceStatus;
}

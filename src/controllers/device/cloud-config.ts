// A device whose user data comes from a CloudConfig (spec.cloudConfigRef) is scheduled like any other, but its
// provisioning workflow starts only once that CloudConfig is Ready for its current generation; until then the
// device's status says what it waits for (status.cloudConfig.waiting, which its conditions derive from). When
// the workflow starts, the render's hash is recorded, so the CloudConfig can list devices running an older one.
import type { DeviceSpec, DeviceStatus } from '../../kinds/device.js';
import type { CloudConfigStatus } from '../../kinds/cloud-config.js';
import type { StoredObject } from '../../kinds/types.js';
import { getCondition } from '../../runtime/conditions.js';
import { isRenderedCloudConfig } from '../cloudconfig/resolve.js';
import type { DeviceContext } from './context.js';

/** Devices by the CloudConfig they use (`namespace/name`); shared with the cloudconfig controller. */
export const CloudConfigConsumerIndex = 'cloudconfig-consumers';

/** The index values of a device under CloudConfigConsumerIndex. */
export function cloudConfigConsumerKeys(dev: StoredObject): string[] {
  const name = (dev.spec as DeviceSpec).cloudConfigRef?.name;
  return name && dev.metadata.namespace ? [`${dev.metadata.namespace}/${name}`] : [];
}

export type CloudConfigGate = { name: string; ready: true; hash: string } | { name: string; ready: false; waiting: string };

/** Whether the device's CloudConfig lets provisioning start; undefined for a device without one. */
export function cloudConfigGate(ctx: DeviceContext, dev: StoredObject): CloudConfigGate | undefined {
  const name = (dev.spec as DeviceSpec).cloudConfigRef?.name;
  if (!name) return undefined;
  const cc = ctx.inf.cloudConfig.get(dev.metadata.namespace, name);
  if (!cc) return { name, ready: false, waiting: `CloudConfig ${name} does not exist` };
  if (!isRenderedCloudConfig(cc)) {
    const ready = getCondition((cc.status as CloudConfigStatus | undefined)?.conditions, 'Ready');
    return { name, ready: false, waiting: `CloudConfig ${name} is not Ready${ready?.message ? `: ${ready.message}` : ''}` };
  }
  return { name, ready: true, hash: (cc.status as CloudConfigStatus).hash! };
}

/** `status` with what the gate says recorded in status.cloudConfig. */
export function withCloudConfig(status: DeviceStatus, gate: CloudConfigGate): DeviceStatus {
  return { ...status, cloudConfig: gate.ready ? { name: gate.name, hash: gate.hash } : { name: gate.name, ...(status.cloudConfig?.hash ? { hash: status.cloudConfig.hash } : {}), waiting: gate.waiting } };
}

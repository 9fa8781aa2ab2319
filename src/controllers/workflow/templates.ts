// The action lists of each workflow purpose, as pure data: what runs, on whom, with which timeout. Timeouts
// are real-world seconds (see ../timing.ts). The tink/rufio shape: ordered actions, the agent pulls its own.
import type { WorkflowAction, WorkflowPurpose } from '../../kinds/workflow.js';

export interface ProvisionInput {
  /** The OS slug, e.g. `ubuntu_24_04`. */
  os: string;
  imageUrl?: string;
  /** `<algorithm>:<hex>` from the OperatingSystem; the agent verifies what it wrote against it. */
  imageChecksum?: string;
  imageSizeMB?: number;
  instanceId: string;
  /** custom_ipxe: no image; the machine chains the user's script and we only wait for it to boot. */
  customIpxe?: boolean;
}

const powerOnPxe: WorkflowAction = { name: 'power-on-pxe', executor: 'bmc', type: 'power-on-pxe', timeoutSeconds: 300, retries: 5, skipIfWarm: true };
const register: WorkflowAction = { name: 'register', executor: 'agent', type: 'register', timeoutSeconds: 600, skipIfWarm: true };
const inventory: WorkflowAction = { name: 'inventory', executor: 'agent', type: 'inventory', timeoutSeconds: 120 };
const wipe: WorkflowAction = { name: 'wipe-disks', executor: 'agent', type: 'wipe-disks', timeoutSeconds: 900 };

export function discoverActions(): WorkflowAction[] {
  return [{ ...powerOnPxe, skipIfWarm: false }, { ...register, skipIfWarm: false }, inventory];
}

export function provisionActions(p: ProvisionInput): WorkflowAction[] {
  if (p.customIpxe) {
    return [
      { ...powerOnPxe, skipIfWarm: false },
      { name: 'phone-home', executor: 'os', type: 'phone-home', timeoutSeconds: 1800 },
    ];
  }
  return [
    powerOnPxe,
    register,
    inventory,
    wipe,
    { name: 'stream-image', executor: 'agent', type: 'stream-image', timeoutSeconds: 1800, params: { url: p.imageUrl ?? '', sizeMB: p.imageSizeMB ?? 1500, os: p.os, ...(p.imageChecksum ? { checksum: p.imageChecksum } : {}) } },
    { name: 'write-datasource', executor: 'agent', type: 'write-datasource', timeoutSeconds: 120, params: { instanceId: p.instanceId } },
    { name: 'set-boot-disk', executor: 'bmc', type: 'set-boot-disk', timeoutSeconds: 120, retries: 5 },
    { name: 'reboot', executor: 'agent', type: 'reboot', timeoutSeconds: 120 },
    { name: 'phone-home', executor: 'os', type: 'phone-home', timeoutSeconds: 900 },
  ];
}

export function deprovisionActions(): WorkflowAction[] {
  return [powerOnPxe, register, wipe];
}

export function rescueActions(): WorkflowAction[] {
  return [{ ...powerOnPxe, skipIfWarm: false }, { ...register, skipIfWarm: false }];
}

/** How much of a provisioning each action is worth, for Device status.provisioningPercentage. */
export const actionWeight: Record<string, number> = {
  'power-on-pxe': 10,
  register: 10,
  inventory: 3,
  'wipe-disks': 12,
  'stream-image': 35,
  'write-datasource': 2,
  'set-boot-disk': 3,
  reboot: 10,
  'phone-home': 15,
};

export function workflowName(device: string, purpose: WorkflowPurpose, suffix: string): string {
  const tail = `-${purpose}-${suffix}`;
  return device.slice(0, 253 - tail.length) + tail;
}

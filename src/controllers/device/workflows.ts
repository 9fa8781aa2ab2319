// The workflows a device runs on its machine: which actions each purpose has, where the Workflow object
// lives, and starting one (the workflow, the machine's pointer to it and the device's state in one
// transaction). A device's provisioning, reinstall and rescue live in its project; the wipe at deletion
// belongs to the machine and lives in metalplane-system, so that it can be created and finish while the
// project itself is being deleted (a terminating namespace takes no new objects).
import type { DeviceAction, DeviceSpec, DeviceStatus } from '../../kinds/device.js';
import type { HardwareStatus } from '../../kinds/hardware.js';
import { operatingSystemName } from '../../kinds/operating-system.js';
import type { KubeObject, StoredObject } from '../../kinds/types.js';
import type { WorkflowPurpose, WorkflowSpec } from '../../kinds/workflow.js';
import { SystemNamespace } from '../provisioning-context.js';
import { deprovisionActions, provisionActions, rescueActions, workflowName } from '../workflow/templates.js';
import { FieldManager, statusOf, type DeviceContext } from './context.js';
import { mustTransition, stateOf, type DeviceEvent } from './lifecycle.js';

export const DeviceNamespaceLabel = 'metalplane.dev/device-namespace';
export const DeviceUidLabel = 'metalplane.dev/device-uid';
const MaxLabelValue = 63;

/** The namespace a device's workflow of `purpose` lives in. */
export function workflowNamespace(dev: StoredObject, purpose: WorkflowPurpose): string {
  return purpose === 'deprovision' ? SystemNamespace : dev.metadata.namespace!;
}

/** Where the device's current workflow is: status.workflowNamespace, else the device's own namespace. */
export function currentWorkflowRef(dev: StoredObject): { namespace: string; name: string } | undefined {
  const st = statusOf(dev);
  return st.workflow ? { namespace: st.workflowNamespace ?? dev.metadata.namespace!, name: st.workflow } : undefined;
}

/** The device a workflow is for, as a work-queue key (`namespace/name`). */
export function deviceKeyOf(wf: StoredObject): string | undefined {
  const spec = wf.spec as WorkflowSpec;
  return spec.device ? `${spec.deviceNamespace ?? wf.metadata.namespace}/${spec.device}` : undefined;
}

export function workflowObject(ctx: DeviceContext, dev: StoredObject, hw: StoredObject, name: string, purpose: WorkflowPurpose): KubeObject {
  const spec = dev.spec as DeviceSpec;
  let actions;
  if (purpose === 'deprovision') actions = deprovisionActions();
  else if (purpose === 'rescue') actions = rescueActions();
  else {
    const os = ctx.inf.operatingSystem.get(undefined, operatingSystemName(spec.operatingSystem));
    const ospec = (os?.spec ?? {}) as { slug?: string; image?: { url?: string; checksum?: string }; customIpxe?: boolean };
    actions = provisionActions({
      os: spec.operatingSystem,
      imageUrl: ospec.image?.url,
      imageChecksum: ospec.image?.checksum,
      instanceId: dev.metadata.uid,
      customIpxe: ospec.customIpxe === true || spec.operatingSystem === 'custom_ipxe',
    });
  }
  const namespace = workflowNamespace(dev, purpose);
  const own = namespace === dev.metadata.namespace;
  const labels: Record<string, string> = { 'metalplane.dev/hardware': hw.metadata.name, 'metalplane.dev/purpose': purpose };
  if (dev.metadata.name.length <= MaxLabelValue) labels['metalplane.dev/device'] = dev.metadata.name;
  if (!own) Object.assign(labels, { [DeviceNamespaceLabel]: dev.metadata.namespace!, [DeviceUidLabel]: dev.metadata.uid });
  return {
    apiVersion: 'metalplane.dev/v1alpha1',
    kind: 'Workflow',
    metadata: {
      name,
      namespace,
      labels,
      // In the device's namespace the device owns it (deleted with it); the wipe belongs to the machine (an
      // owner must be in the same namespace or cluster-scoped) and is deleted when the wipe is done.
      ownerReferences: own
        ? [{ apiVersion: 'metalplane.dev/v1alpha1', kind: 'Device', name: dev.metadata.name, uid: dev.metadata.uid, controller: true, blockOwnerDeletion: true }]
        : [{ apiVersion: 'metalplane.dev/v1alpha1', kind: 'Hardware', name: hw.metadata.name, uid: hw.metadata.uid }],
    },
    spec: { hardware: hw.metadata.name, device: dev.metadata.name, ...(own ? {} : { deviceNamespace: dev.metadata.namespace }), purpose, actions } satisfies WorkflowSpec,
  };
}

const StartEvent: Record<Exclude<WorkflowPurpose, 'discover'>, DeviceEvent> = {
  provision: 'ProvisionRestarted',
  reinstall: 'ReinstallRequested',
  rescue: 'RescueRequested',
  deprovision: 'DeprovisionStarted',
};

/** Creates a workflow for the device's machine and makes it the machine's current one. */
export async function startWorkflow(ctx: DeviceContext, dev: StoredObject, hw: StoredObject, purpose: Exclude<WorkflowPurpose, 'discover'>, action?: DeviceAction): Promise<void> {
  const st = statusOf(dev);
  const name = workflowName(dev.metadata.name, purpose, dev.metadata.resourceVersion);
  const namespace = workflowNamespace(dev, purpose);
  const hst = (hw.status ?? {}) as HardwareStatus;
  const hwState = purpose === 'deprovision' ? 'deprovisioning' : purpose === 'rescue' ? hst.state : 'provisioning';
  const next: DeviceStatus = { ...st, state: mustTransition(stateOf(st), StartEvent[purpose]), workflow: name };
  if (namespace !== dev.metadata.namespace) next.workflowNamespace = namespace;
  else delete next.workflowNamespace;
  if (purpose === 'provision' || purpose === 'reinstall') next.provisioningPercentage = 0;
  if (action) next.lastAction = action;
  await ctx.deps.client.transact(
    [
      { op: 'create', kind: ctx.kinds.workflow, object: workflowObject(ctx, dev, hw, name, purpose) },
      { op: 'update', kind: ctx.kinds.hardware, object: { ...hw, status: { ...hst, state: hwState, workflow: { namespace, name } } }, subresource: 'status' },
      { op: 'update', kind: ctx.kinds.device, object: { ...dev, status: ctx.withConditions(dev, next) }, subresource: 'status' },
    ],
    { fieldManager: FieldManager },
  );
  ctx.event(dev, 'Normal', purpose === 'deprovision' ? 'Deprovisioning' : `${purpose[0]!.toUpperCase()}${purpose.slice(1)}Started`, `Workflow ${name} started on ${hw.metadata.name}`);
}

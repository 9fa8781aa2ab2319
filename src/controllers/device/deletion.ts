// Deleting a device: its finalizer holds it while its machine is wiped (the deprovision workflow, which
// belongs to the machine and runs in metalplane-system, so a project being deleted can still have its
// machines wiped); then, in one transaction, its IPs are released, the machine returns to `available` (or
// `failed`, if the wipe failed), the finished wipe is removed and the finalizer goes.
import { DeviceFinalizerName } from '../../kinds/device.js';
import type { HardwareStatus } from '../../kinds/hardware.js';
import type { IPAddressSpec } from '../../kinds/ip-address.js';
import type { StoredObject } from '../../kinds/types.js';
import type { WorkflowSpec, WorkflowStatus } from '../../kinds/workflow.js';
import type { TxWrite } from '../../runtime/client.js';
import { done, type Result } from '../../runtime/controller.js';
import { SystemNamespace } from '../provisioning-context.js';
import { isFinished } from '../workflow/state.js';
import { FieldManager, statusOf, type DeviceContext } from './context.js';
import { currentWorkflowRef, startWorkflow } from './workflows.js';

export async function finalize(ctx: DeviceContext, dev: StoredObject): Promise<Result> {
  if (!dev.metadata.finalizers?.includes(DeviceFinalizerName)) return done;
  const st = statusOf(dev);
  const hw = st.hardware ? await ctx.deps.client.get(ctx.kinds.hardware, undefined, st.hardware) : undefined;
  const ours = hw !== undefined && (hw.status as HardwareStatus | undefined)?.claim?.uid === dev.metadata.uid;
  if (!ours) return release(ctx, dev, undefined, undefined);
  const ref = currentWorkflowRef(dev);
  const wf = ref ? await ctx.deps.client.get(ctx.kinds.workflow, ref.namespace, ref.name) : undefined;
  if (!wf || (wf.spec as WorkflowSpec).purpose !== 'deprovision') return ctx.lock.run(() => startDeprovision(ctx, dev.metadata.namespace!, dev.metadata.name));
  if (!isFinished(wf.status as WorkflowStatus | undefined)) return done;
  return release(ctx, dev, hw, wf);
}

async function startDeprovision(ctx: DeviceContext, namespace: string, name: string): Promise<Result> {
  const dev = await ctx.deps.client.get(ctx.kinds.device, namespace, name);
  const hwName = dev ? statusOf(dev).hardware : undefined;
  if (!dev || !hwName) return done;
  const hw = await ctx.deps.client.get(ctx.kinds.hardware, undefined, hwName);
  if (!hw) return done;
  await startWorkflow(ctx, dev, hw, 'deprovision');
  return done;
}

/** One transaction: the device's IPs go back, the machine returns to the pool, the finalizer goes. */
async function release(ctx: DeviceContext, dev: StoredObject, hw: StoredObject | undefined, wf: StoredObject | undefined): Promise<Result> {
  const writes: TxWrite[] = [];
  for (const ip of ctx.inf.ipAddress.list()) {
    if ((ip.spec as IPAddressSpec).device?.uid === dev.metadata.uid) writes.push({ op: 'delete', kind: ctx.kinds.ipAddress, name: ip.metadata.name });
  }
  const wst = wf?.status as WorkflowStatus | undefined;
  const failedWipe = wst?.state === 'failed';
  if (hw) {
    const hst = { ...((hw.status ?? {}) as HardwareStatus) };
    delete hst.claim;
    delete hst.workflow;
    hst.state = failedWipe ? 'failed' : 'available';
    if (failedWipe) hst.lastFailure = { reason: wst.failure?.reason ?? 'DeprovisionFailed', message: `deprovisioning failed: ${wst.failure?.message ?? ''}`, time: ctx.now() };
    writes.push({ op: 'update', kind: ctx.kinds.hardware, object: { ...hw, status: hst }, subresource: 'status' });
  }
  // A finished wipe in metalplane-system has no owner to be collected with (the device's workflows in its
  // project are, with the device): remove it with the device. A failed one stays, for the operator to read.
  if (wf && wf.metadata.namespace === SystemNamespace && !failedWipe) {
    writes.push({ op: 'delete', kind: ctx.kinds.workflow, namespace: wf.metadata.namespace, name: wf.metadata.name, resourceVersion: wf.metadata.resourceVersion });
  }
  writes.push({ op: 'update', kind: ctx.kinds.device, object: { ...dev, metadata: { ...dev.metadata, finalizers: (dev.metadata.finalizers ?? []).filter((f) => f !== DeviceFinalizerName) } } });
  await ctx.deps.client.transact(writes, { fieldManager: FieldManager });
  if (hw) {
    const msg = failedWipe ? `Hardware ${hw.metadata.name} could not be wiped and is marked failed: ${wst.failure?.message ?? ''}` : `Hardware ${hw.metadata.name} wiped and returned to the pool`;
    ctx.event(hw, failedWipe ? 'Warning' : 'Normal', failedWipe ? 'DeprovisionFailed' : 'Deprovisioned', msg);
  }
  return done;
}

// Following a placed device's current workflow: its progress moves the device's state and percentage;
// success makes it `active` and its machine `in-use`; failure ends it `failed` with what broke — or, with
// `spec.remediation: reschedule`, marks the machine failed and queues the device for another one (it keeps
// its addresses within the metro). A finished workflow hands over to the user's actions (actions.ts).
import type { DeviceSpec, DeviceStatus, DeviceState } from '../../kinds/device.js';
import type { HardwareStatus } from '../../kinds/hardware.js';
import type { StoredObject } from '../../kinds/types.js';
import type { WorkflowPurpose, WorkflowSpec, WorkflowStatus } from '../../kinds/workflow.js';
import type { TxWrite } from '../../runtime/client.js';
import { done, type Result } from '../../runtime/controller.js';
import { percentage } from '../workflow/state.js';
import { finishAction, handleAction } from './actions.js';
import { FieldManager, statusOf, type DeviceContext } from './context.js';
import { mustTransition, stateOf, transition } from './lifecycle.js';
import { currentWorkflowRef, startWorkflow } from './workflows.js';
import { cloudConfigGate, withCloudConfig } from './cloud-config.js';

const MaxReschedules = 3;

/** Progress is written in steps of at least this many points, so a device is not rewritten for every small step. */
const ProgressStep = 10;

export async function follow(ctx: DeviceContext, dev: StoredObject): Promise<Result> {
  const st = statusOf(dev);
  const hw = ctx.inf.hardware.get(undefined, st.hardware!) ?? (await ctx.deps.client.get(ctx.kinds.hardware, undefined, st.hardware!));
  if (!hw) return fail(ctx, dev, undefined, 'HardwareGone', `hardware ${st.hardware} was removed`);
  const ref = currentWorkflowRef(dev);
  const wf = ref ? await ctx.deps.client.get(ctx.kinds.workflow, ref.namespace, ref.name) : undefined;
  if (!wf) {
    if (st.state === 'failed') return handleAction(ctx, dev, hw);
    // Not started yet because the CloudConfig was not Ready (scheduler.ts), or deleted by hand: provision
    // (again) on the same machine, once the CloudConfig lets it.
    const gate = cloudConfigGate(ctx, dev);
    if (gate && !gate.ready) {
      if (st.cloudConfig?.waiting !== gate.waiting) await ctx.writeStatus(dev, withCloudConfig(st, gate));
      return done;
    }
    await startWorkflow(ctx, gate ? { ...dev, status: withCloudConfig(st, gate) } : dev, hw, 'provision');
    return done;
  }
  const wspec = wf.spec as WorkflowSpec;
  const wst = wf.status as WorkflowStatus | undefined;
  const installs = wspec.purpose === 'provision' || wspec.purpose === 'reinstall';
  if (wst?.state === 'failed') {
    if (installs) {
      if (st.state === 'failed' || st.state === 'queued') return handleAction(ctx, dev, hw);
      const f = wst.failure ?? { action: '?', reason: 'Failed', message: 'the workflow failed' };
      return fail(ctx, dev, hw, f.reason, `${f.action}: ${f.message}`);
    }
    // A failed rescue leaves the device as it was, with the failure reported on the action.
    return finishAction(ctx, dev, 'failed', `${wspec.purpose} failed: ${wst.failure?.message ?? ''}`);
  }
  if (wst?.state === 'succeeded') {
    if (installs && transition(stateOf(st), 'Provisioned') !== undefined) return activate(ctx, dev, hw, wspec.purpose);
    if (wspec.purpose === 'rescue' && st.lastAction?.type === 'rescue' && st.lastAction.state === 'running') {
      return finishAction(ctx, dev, 'succeeded', 'the machine runs the rescue environment (in memory); reboot to return to the installed OS');
    }
    return handleAction(ctx, dev, hw);
  }
  // Running: report the progress.
  const state: DeviceState = wspec.purpose === 'reinstall' ? 'reinstalling' : wspec.purpose === 'provision' ? 'provisioning' : stateOf(st);
  const pct = installs ? percentage(wspec, wst) : st.provisioningPercentage;
  if (st.state !== state || (pct !== undefined && Math.abs(pct - (st.provisioningPercentage ?? 0)) >= ProgressStep)) {
    await ctx.writeStatus(dev, { ...st, state, ...(pct !== undefined ? { provisioningPercentage: pct } : {}) });
  }
  return done;
}

async function activate(ctx: DeviceContext, dev: StoredObject, hw: StoredObject, purpose: WorkflowPurpose): Promise<Result> {
  const st = statusOf(dev);
  const now = ctx.now();
  const next: DeviceStatus = { ...st, state: mustTransition(stateOf(st), 'Provisioned'), provisioningPercentage: 100, provisionedAt: now };
  if (st.lastAction?.type === 'reinstall' && st.lastAction.state === 'running') next.lastAction = { ...st.lastAction, state: 'succeeded', time: now, message: 'reinstalled' };
  const hst = (hw.status ?? {}) as HardwareStatus;
  await ctx.deps.client.transact(
    [
      { op: 'update', kind: ctx.kinds.device, object: { ...dev, status: ctx.withConditions(dev, next) }, subresource: 'status' },
      { op: 'update', kind: ctx.kinds.hardware, object: { ...hw, status: { ...hst, state: 'in-use' } }, subresource: 'status' },
    ],
    { fieldManager: FieldManager },
  );
  ctx.event(dev, 'Normal', purpose === 'reinstall' ? 'Reinstalled' : 'Provisioned', `Device is active on ${hw.metadata.name}: ${(st.ipAddresses ?? []).map((i) => i.address).join(', ')}`);
  return done;
}

/** A provisioning failure: end `failed` (and mark the machine), or move to another machine. */
async function fail(ctx: DeviceContext, dev: StoredObject, hw: StoredObject | undefined, reason: string, message: string): Promise<Result> {
  const st = statusOf(dev);
  const spec = dev.spec as DeviceSpec;
  const now = ctx.now();
  const onHw = hw ? ` on hardware ${hw.metadata.name}` : '';
  const writes: TxWrite[] = [];
  const reschedule = spec.remediation === 'reschedule' && (st.rescheduled ?? 0) < MaxReschedules && hw !== undefined && transition(stateOf(st), 'Rescheduled') !== undefined;
  if (hw) {
    const hst = { ...((hw.status ?? {}) as HardwareStatus) };
    hst.state = 'failed';
    hst.lastFailure = { reason, message, time: now };
    if (reschedule) {
      delete hst.claim;
      delete hst.workflow;
    }
    writes.push({ op: 'update', kind: ctx.kinds.hardware, object: { ...hw, status: hst }, subresource: 'status' });
  }
  const failure = { reason, message, time: now, ...(hw ? { hardware: hw.metadata.name } : {}) };
  let next: DeviceStatus;
  if (reschedule) {
    next = { ...st, state: mustTransition(stateOf(st), 'Rescheduled'), rescheduled: (st.rescheduled ?? 0) + 1, failure, provisioningPercentage: 0 };
    delete next.hardware;
    delete next.workflow;
    delete next.workflowNamespace;
    delete next.facility;
    next = ctx.withConditions(dev, next, { reason: 'Rescheduling', message: `${reason}${onHw}: ${message}; moving to another machine` });
  } else {
    next = { ...st, state: mustTransition(stateOf(st), 'ProvisionFailed'), failure };
    if (st.lastAction?.state === 'running') next.lastAction = { ...st.lastAction, state: 'failed', time: now, message };
    next = ctx.withConditions(dev, next);
  }
  writes.push({ op: 'update', kind: ctx.kinds.device, object: { ...dev, status: next }, subresource: 'status' });
  await ctx.deps.client.transact(writes, { fieldManager: FieldManager });
  ctx.event(dev, 'Warning', reschedule ? 'Rescheduling' : 'ProvisionFailed', `${reason}${onHw}: ${message}${reschedule ? ' — moving the device to another machine' : ''}`);
  return done;
}

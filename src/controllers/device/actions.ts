// The user's actions on a device, asked for with the `metalplane.dev/action` annotation (`<type>` or
// `<type>/<request id>`): power_on, power_off and reboot through the BMC; reinstall and rescue as workflows.
// A new annotation value is carried out once and reported in status.lastAction. An action the lifecycle
// does not allow in the device's state is refused (reported, not carried out). A non-idempotent BMC call is
// made only after the action is marked running, so a crash right after it never repeats it.
import { BmcError } from '../../drivers/bmc/types.js';
import { DeviceActionAnnotation, type DeviceAction, type DeviceActionType, type DeviceSpec, type DeviceState } from '../../kinds/device.js';
import type { StoredObject } from '../../kinds/types.js';
import { done, requeueAfter, type Result } from '../../runtime/controller.js';
import { bmcFor } from '../provisioning-context.js';
import { statusOf, type DeviceContext } from './context.js';
import { stateOf, transition, type DeviceEvent } from './lifecycle.js';
import { startWorkflow } from './workflows.js';
import { cloudConfigGate, withCloudConfig } from './cloud-config.js';

/** How long the BMC may take to show the power state asked for (real-world seconds, scaled). */
const PowerSettleSeconds = 120;

const RequestEvent: Record<DeviceActionType, DeviceEvent> = {
  power_on: 'PowerOnRequested',
  power_off: 'PowerOffRequested',
  reboot: 'RebootRequested',
  reinstall: 'ReinstallRequested',
  rescue: 'RescueRequested',
};

export async function handleAction(ctx: DeviceContext, dev: StoredObject, hw: StoredObject): Promise<Result> {
  const st = statusOf(dev);
  const request = dev.metadata.annotations?.[DeviceActionAnnotation];
  if (!request || request === st.lastAction?.request) return settlePower(ctx, dev, hw);
  const type = request.split('/')[0] as DeviceActionType;
  const now = ctx.now();
  const running: DeviceAction = { request, type, state: 'running', time: now };
  const refuse = async (message: string): Promise<Result> => {
    await ctx.writeStatus(dev, { ...st, lastAction: { request, type, state: 'failed', time: now, message } });
    ctx.event(dev, 'Warning', 'ActionRefused', `${type}: ${message}`);
    return done;
  };
  const from = stateOf(st);
  const to = transition(from, RequestEvent[type]);
  if (to === undefined) {
    return refuse(type === 'reinstall' ? `the device is ${from}; reinstall needs it active, inactive or failed` : `the device is ${from}; actions need it active or inactive`);
  }
  if (type === 'reinstall') {
    if ((dev.spec as DeviceSpec).locked) return refuse('the device is locked; unlock it (spec.locked: false) first');
    // A reinstall installs the CloudConfig's current render (if it is Ready; else the one it had).
    const gate = cloudConfigGate(ctx, dev);
    await startWorkflow(ctx, gate?.ready ? { ...dev, status: withCloudConfig(st, gate) } : dev, hw, 'reinstall', running);
    return done;
  }
  if (type === 'rescue') {
    await startWorkflow(ctx, dev, hw, 'rescue', running);
    return done;
  }
  try {
    const bmc = await bmcFor(ctx.deps, hw);
    // Marked running (and the state moved) before the call: a crash right after it must not repeat it.
    await ctx.writeStatus(dev, { ...st, state: to, lastAction: running });
    if (type === 'power_off') {
      await bmc.setPower('off');
      ctx.deps.agents.forget(hw.metadata.name);
    } else if (type === 'power_on') {
      await bmc.setPower('on');
    } else if (type === 'reboot') {
      await bmc.setPower('reset');
      ctx.deps.agents.forget(hw.metadata.name);
      const fresh = await ctx.deps.client.get(ctx.kinds.device, dev.metadata.namespace, dev.metadata.name);
      if (fresh) return finishAction(ctx, fresh, 'succeeded', 'the machine was reset');
    }
  } catch (e) {
    if (!(e instanceof BmcError)) throw e;
    const fresh = (await ctx.deps.client.get(ctx.kinds.device, dev.metadata.namespace, dev.metadata.name)) ?? dev;
    const fst = statusOf(fresh);
    if (e.transient && fst.lastAction?.request === request) throw e; // retried with backoff
    await ctx.writeStatus(fresh, { ...fst, state: st.state, lastAction: { request, type, state: 'failed', time: ctx.now(), message: e.message } });
    ctx.event(dev, 'Warning', 'ActionFailed', `${type}: ${e.message}`);
    return done;
  }
  return requeueAfter(ctx.deps.timing.delayMs(2));
}

/** After power_on/power_off: report the state once the BMC shows it. */
async function settlePower(ctx: DeviceContext, dev: StoredObject, hw: StoredObject): Promise<Result> {
  const st = statusOf(dev);
  if (st.state !== 'powering_off' && st.state !== 'powering_on') return done;
  const want = st.state === 'powering_off' ? 'off' : 'on';
  let power: string;
  try {
    power = await (await bmcFor(ctx.deps, hw)).powerState();
  } catch (e) {
    if (e instanceof BmcError && e.transient) throw e;
    return finishAction(ctx, dev, 'failed', (e as Error).message, transition(st.state, 'PowerFailed'));
  }
  if (power !== want) {
    const since = Date.parse(st.lastAction?.time ?? ctx.now());
    if (ctx.deps.clock.now() - since > ctx.deps.timing.timeoutMs(PowerSettleSeconds)) {
      return finishAction(ctx, dev, 'failed', `the BMC accepted power ${want}, but the machine is still ${power}`, transition(st.state, 'PowerFailed'));
    }
    return requeueAfter(ctx.deps.timing.delayMs(2));
  }
  return finishAction(ctx, dev, 'succeeded', `the machine is powered ${want}`, transition(st.state, 'PowerSettled'));
}

export async function finishAction(ctx: DeviceContext, dev: StoredObject, state: 'succeeded' | 'failed', message: string, deviceState?: DeviceState): Promise<Result> {
  const st = statusOf(dev);
  if (!st.lastAction) return done;
  await ctx.writeStatus(dev, { ...st, lastAction: { ...st.lastAction, state, message, time: ctx.now() }, ...(deviceState ? { state: deviceState } : {}) });
  ctx.event(dev, state === 'succeeded' ? 'Normal' : 'Warning', state === 'succeeded' ? 'ActionSucceeded' : 'ActionFailed', `${st.lastAction.type}: ${message}`);
  return done;
}

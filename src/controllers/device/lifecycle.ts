// The Device lifecycle as data (metal-stack's habit): which event moves a device from which state to which,
// and, per state, what its conditions say. The controller asks `transition` for the next state and writes the
// conditions `deviceConditions` derives, so a state and its conditions cannot disagree and a reader finds
// every rule in this one table. Pure: no I/O, no clock.
import type { DeviceState, DeviceStatus } from '../../kinds/device.js';
import type { ConditionInput } from '../../runtime/conditions.js';

export type DeviceEvent =
  /** Bound to a machine; its provisioning workflow starts. */
  | 'Scheduled'
  /** No machine (or an invalid reference): the device waits. */
  | 'Unschedulable'
  /** The provisioning workflow is started again on the same machine (it was deleted by hand). */
  | 'ProvisionRestarted'
  /** The provisioning (or reinstall) workflow succeeded. */
  | 'Provisioned'
  /** The provisioning (or reinstall) workflow failed, or the machine vanished. */
  | 'ProvisionFailed'
  /** It failed and `spec.remediation: reschedule` moves the device to another machine. */
  | 'Rescheduled'
  | 'ReinstallRequested'
  | 'RescueRequested'
  | 'RebootRequested'
  | 'PowerOffRequested'
  | 'PowerOnRequested'
  /** The BMC shows the power state asked for. */
  | 'PowerSettled'
  /** The BMC refused, or the machine did not reach the power state in time: back to where it was. */
  | 'PowerFailed'
  /** The device is being deleted: its machine is wiped. */
  | 'DeprovisionStarted';

/** `same`: the event leaves the state as it is (e.g. a rescue runs beside the installed OS). */
export type Target = DeviceState | 'same';

const Usable: readonly DeviceState[] = ['active', 'inactive'];
const NotDeleting: readonly DeviceState[] = ['queued', 'provisioning', 'active', 'powering_off', 'powering_on', 'inactive', 'reinstalling', 'failed'];

/**
 * state × event → next state. One row per event: the states it may happen in and where each leads. A state
 * not listed for an event means the event is refused there (for a user's action: reported, not carried out).
 */
export const DeviceTransitions: Readonly<Record<DeviceEvent, Partial<Record<DeviceState, Target>>>> = {
  Scheduled: { queued: 'provisioning', reinstalling: 'same' },
  Unschedulable: { queued: 'same', reinstalling: 'queued' },
  ProvisionRestarted: each(['provisioning', 'reinstalling', 'active', 'inactive', 'powering_off', 'powering_on'], 'provisioning'),
  Provisioned: each(['queued', 'provisioning', 'reinstalling', 'failed'], 'active'),
  ProvisionFailed: each(['queued', 'provisioning', 'reinstalling', 'active', 'inactive', 'powering_off', 'powering_on', 'failed'], 'failed'),
  Rescheduled: each(['provisioning', 'reinstalling', 'active', 'inactive', 'powering_off', 'powering_on'], 'queued'),
  ReinstallRequested: each([...Usable, 'failed'], 'reinstalling'),
  RescueRequested: each(Usable, 'same'),
  RebootRequested: each(Usable, 'same'),
  PowerOffRequested: each(Usable, 'powering_off'),
  PowerOnRequested: each(Usable, 'powering_on'),
  PowerSettled: { powering_off: 'inactive', powering_on: 'active' },
  PowerFailed: { powering_off: 'active', powering_on: 'inactive', active: 'same', inactive: 'same' },
  DeprovisionStarted: { ...each(NotDeleting, 'deprovisioning'), deprovisioning: 'same' },
};

function each(states: readonly DeviceState[], to: Target): Partial<Record<DeviceState, Target>> {
  return Object.fromEntries(states.map((s) => [s, to]));
}

/** The state a device without a state is in: it has just been created. */
export function stateOf(status: DeviceStatus | undefined): DeviceState {
  return status?.state ?? 'queued';
}

/** The next state, or undefined when the event cannot happen in `from`. */
export function transition(from: DeviceState, event: DeviceEvent): DeviceState | undefined {
  const to = DeviceTransitions[event][from];
  return to === 'same' ? from : to;
}

/** `transition` for events the controller only takes where they are allowed: a refused one is a bug. */
export function mustTransition(from: DeviceState, event: DeviceEvent): DeviceState {
  const to = transition(from, event);
  if (to === undefined) throw new Error(`device lifecycle: ${event} cannot happen in state ${from}`);
  return to;
}

type Cond = Omit<ConditionInput, 'type' | 'observedGeneration'>;

export interface ConditionContext {
  /** The OS slug (spec.operatingSystem), for the Provisioned message. */
  operatingSystem: string;
  /** metadata.generation, written as every condition's observedGeneration. */
  generation?: number;
  /** Why the device has no machine (set while scheduling fails or the device is being moved). */
  unscheduled?: { reason: string; message: string };
}

/** Per state: Ready (is the machine usable) and Provisioned (is the OS installed); undefined: left as it is. */
const ConditionsByState: Readonly<Record<DeviceState, (st: DeviceStatus, c: ConditionContext) => { ready: Cond; provisioned?: Cond }>> = {
  queued: (st) => ({
    ready: { status: 'False', reason: 'NotScheduled', message: st.rescheduled ? 'the device is waiting for another machine' : 'the device is waiting for a machine' },
  }),
  provisioning: (st, c) => {
    if (st.cloudConfig?.waiting && !st.workflow) {
      const waiting: Cond = { status: 'False', reason: 'WaitingForCloudConfig', message: `provisioning waits for ${st.cloudConfig.waiting}` };
      return { ready: waiting, provisioned: waiting };
    }
    return {
      ready: { status: 'False', reason: 'Provisioning', message: 'the machine is being provisioned' },
      provisioned: { status: 'False', reason: 'Provisioning', message: `installing ${c.operatingSystem} on ${st.hardware}` },
    };
  },
  reinstalling: (st, c) => ({
    ready: { status: 'False', reason: 'Reinstalling', message: 'the machine is being reinstalled' },
    provisioned: { status: 'False', reason: 'Reinstalling', message: `reinstalling ${c.operatingSystem} on ${st.hardware}` },
  }),
  active: (st, c) => ({ ready: active, provisioned: installed(st, c) }),
  // Powering off or on: the machine is still what it was until the BMC shows the new state.
  powering_off: (st, c) => ({ ready: active, provisioned: installed(st, c) }),
  powering_on: (st, c) => ({ ready: { status: 'False', reason: 'PoweredOff', message: 'the device is powering on' }, provisioned: installed(st, c) }),
  inactive: (st, c) => ({ ready: { status: 'False', reason: 'PoweredOff', message: 'the device is powered off' }, provisioned: installed(st, c) }),
  deprovisioning: () => ({ ready: { status: 'False', reason: 'Deprovisioning', message: 'the device is being deleted: wiping the machine' } }),
  failed: (st) => {
    const f: { reason: string; message: string; hardware?: string } = st.failure ?? { reason: 'Failed', message: 'the device failed' };
    const on = f.hardware ? ` on hardware ${f.hardware}` : '';
    const cond: Cond = { status: 'False', reason: f.reason, message: `${f.message}${on}` };
    return { ready: cond, provisioned: cond };
  },
};

const active: Cond = { status: 'True', reason: 'Active', message: 'the device is active' };

function installed(st: DeviceStatus, c: ConditionContext): Cond {
  return { status: 'True', reason: 'Provisioned', message: `${c.operatingSystem} installed on ${st.hardware}` };
}

/**
 * The conditions a device's status implies: Scheduled (is it bound to a machine), Provisioned and Ready.
 * Synced (did the last reconcile succeed) is the reconciler's, not the state's, and is not derived here.
 */
export function deviceConditions(st: DeviceStatus, c: ConditionContext): ConditionInput[] {
  const g = c.generation;
  const out: ConditionInput[] = [];
  if (c.unscheduled) out.push({ type: 'Scheduled', status: 'False', ...c.unscheduled, observedGeneration: g });
  else if (st.hardware) out.push({ type: 'Scheduled', status: 'True', reason: 'Scheduled', message: `bound to hardware ${st.hardware} in ${st.facility}`, observedGeneration: g });
  const { ready, provisioned } = ConditionsByState[stateOf(st)](st, c);
  if (provisioned) out.push({ type: 'Provisioned', ...provisioned, observedGeneration: g });
  out.push({ type: 'Ready', ...ready, observedGeneration: g });
  return out;
}

// The next step of a BMC action, as a pure function: crossplane-runtime's rule for non-idempotent external
// calls. A call (power on or reset into PXE, set the boot device, power off) is made only after its marker —
// the action `running`, with one more attempt — is in the store. An action found `running` whose call this
// process did not make (it restarted, or another replica made it) is settled by observing the machine, never
// by calling again blindly: a second reset would cut short a boot that is already under way. A transient
// failure is recorded in the action's status (`retry`), so whichever replica leads next waits out the same
// backoff and spends the same retry budget.
import type { SystemInfo } from '../../drivers/bmc/types.js';
import type { ActionStatus, WorkflowStatus } from '../../kinds/workflow.js';

/** The BMC action types the workflow controller runs. */
export const BmcActionTypes = ['power-on-pxe', 'set-boot-disk', 'power-off'] as const;
export type BmcActionType = (typeof BmcActionTypes)[number];

export function isBmcActionType(t: string): t is BmcActionType {
  return (BmcActionTypes as readonly string[]).includes(t);
}

/**
 * What this process remembers of its own call for one attempt: it went out (`sent`), or it failed or was cut
 * short (`failed`) and may be tried again from `retryAt`. Lost on a restart, which is what observing (and the
 * stored retry record) is for; it also covers the moment before this process's informer has its own writes.
 */
export type CallRecord = { attempt: string; phase: 'sent' } | { attempt: string; phase: 'failed'; retryAt: number };

/** What the BMC shows of the machine. */
export type Observation = Pick<SystemInfo, 'powerState' | 'bootOverride'>;

export type BmcStep =
  /** Write the marker of a new attempt, then call. `fresh`: the attempt's clock starts again (see below). */
  | { do: 'call'; fresh: boolean }
  /** Read the BMC, then decide again with what it shows. */
  | { do: 'observe' }
  | { do: 'complete'; message?: string }
  /** This process's call went out and the machine has not followed yet: look again shortly. */
  | { do: 'wait' }
  /** This process's call failed transiently: try again at the time it chose, not before. */
  | { do: 'backoff'; ms: number };

export interface BmcStepInput {
  type: BmcActionType;
  /** The action's state in the store. */
  state: ActionStatus;
  /** The attempt the store is at (attemptId). */
  attempt: string;
  /** This process's record of its call, if it made one. */
  known?: CallRecord;
  now: number;
  observed?: Observation;
}

/** Names one attempt of one run of the workflow (a restart of the workflow counts its attempts from 0 again). */
export function attemptId(status: WorkflowStatus, i: number): string {
  return `${status.restarts ?? 0}/${status.actions?.[i]?.attempts ?? 0}`;
}

/** Whether the machine is where the action puts it. */
export function isSatisfied(type: BmcActionType, o: Observation): boolean {
  switch (type) {
    case 'power-on-pxe':
      return o.powerState === 'on';
    case 'set-boot-disk':
      return o.bootOverride.device === 'disk' && !o.bootOverride.once;
    case 'power-off':
      return o.powerState === 'off';
  }
}

export const completionMessage: Record<BmcActionType, string | undefined> = {
  'power-on-pxe': 'powered on into PXE',
  'set-boot-disk': 'next boots from disk',
  'power-off': undefined,
};

/** The message of the marker written before the call. */
export const markerMessage: Record<BmcActionType, string> = {
  'power-on-pxe': 'powering on (boot once from PXE)',
  'set-boot-disk': 'setting the boot device to the disk',
  'power-off': 'powering off',
};

export function nextBmcStep(i: BmcStepInput): BmcStep {
  // Not started: nothing was called yet, so calling is safe.
  if (i.state.state !== 'running') return { do: 'call', fresh: false };
  // A transient failure in the store, recorded by this replica or by the leader before it: wait out its backoff.
  const retry = i.state.retry;
  const retryAt = retry ? Date.parse(retry.notBefore) : NaN;
  if (retryAt > i.now) return { do: 'backoff', ms: retryAt - i.now };
  const mine = i.known?.attempt === i.attempt ? i.known : undefined;
  if (mine?.phase === 'failed') return mine.retryAt > i.now ? { do: 'backoff', ms: mine.retryAt - i.now } : { do: 'call', fresh: false };
  // This attempt's call failed with an error from the BMC, whoever made it: calling again is the retry.
  if (retry?.attempt === i.attempt) return { do: 'call', fresh: false };
  if (!i.observed) return { do: 'observe' };
  // Running and the machine is there: done, whoever made the call. For power-on-pxe without a record of our
  // own this includes a crash between the marker and the call with the machine already on (its old OS, a warm
  // agent): the next step (register) waits for a fresh boot and, not seeing one, starts the workflow over —
  // slower, but never a second reset of a machine that may be booting from the first.
  if (isSatisfied(i.type, i.observed)) return { do: 'complete', message: completionMessage[i.type] };
  // Our own call went out; the machine has not followed yet (a BMC is slow, or the power rail is stuck: the
  // action's timeout says so).
  if (mine?.phase === 'sent') return { do: 'wait' };
  // Running, not there, and not our call: whatever the earlier attempt did left no trace (a machine that is
  // off runs nothing, so powering it on interrupts nothing). A new attempt, on a fresh clock: an agent that
  // registered during the earlier attempt belongs to a boot that is gone.
  return { do: 'call', fresh: true };
}

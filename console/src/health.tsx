// Health of objects as the console badges them: ready, progressing or failed (Argo CD's Healthy/Progressing/
// Degraded), derived from each kind's status.
import type { KubeObject } from './api';

export type Health = 'ready' | 'progressing' | 'failed' | 'unknown';

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  observedGeneration?: number;
}

export const condition = (o: KubeObject, type: string): Condition | undefined =>
  ((o.status?.conditions as Condition[] | undefined) ?? []).find((c) => c.type === type);

const conditionStatus = (o: KubeObject, type: string): string | undefined => condition(o, type)?.status;

/** Whether status speaks of the current spec (a condition older than metadata.generation does not). */
const isObserved = (o: KubeObject): boolean => {
  const g = o.metadata.generation;
  const seen = (o.status?.observedGeneration as number | undefined) ?? condition(o, 'Ready')?.observedGeneration;
  return g === undefined || seen === undefined || seen >= g;
};

export function healthOf(o: KubeObject): Health {
  const state = o.status?.state as string | undefined;
  switch (o.kind) {
    case 'Device':
      if (state === 'active') return 'ready';
      if (state === 'failed') return 'failed';
      if (state === 'inactive') return 'ready';
      return state ? 'progressing' : 'unknown';
    case 'Workflow':
      return state === 'succeeded' ? 'ready' : state === 'failed' ? 'failed' : 'progressing';
    case 'Hardware':
      return state === 'failed' ? 'failed' : state === 'provisioning' || state === 'deprovisioning' || state === 'discovering' ? 'progressing' : 'ready';
    case 'CloudConfig': {
      // Ready=True: rendered. Ready=False WaitingForInputs: an input is not there or not Ready yet, which
      // resolves by itself; every other reason (ReferenceCycle, RenderFailed, TooLarge, SecretConflict, see
      // src/controllers/cloudconfig) needs the user to change something. No Ready yet: not reconciled yet.
      const ready = condition(o, 'Ready');
      if (condition(o, 'Synced')?.status === 'False') return 'failed';
      if (!ready) return 'progressing';
      if (ready.status === 'True') return isObserved(o) ? 'ready' : 'progressing';
      return ready.reason === 'WaitingForInputs' ? 'progressing' : 'failed';
    }
    default: {
      const ready = conditionStatus(o, 'Ready');
      if (ready === 'True') return 'ready';
      if (ready === 'False') return conditionStatus(o, 'Synced') === 'False' ? 'failed' : 'progressing';
      return 'ready';
    }
  }
}

export const HEALTH_LABEL: Record<Health, string> = { ready: 'Ready', progressing: 'Progressing', failed: 'Failed', unknown: 'Unknown' };

/** Hardware states as the rack view groups them. */
export type SlotState = 'available' | 'provisioning' | 'in-use' | 'failed' | 'maintenance' | 'discovering' | 'empty';

export function slotStateOf(hw: KubeObject): SlotState {
  if ((hw.spec as { maintenance?: boolean } | undefined)?.maintenance) return 'maintenance';
  const s = hw.status?.state as string | undefined;
  if (s === 'deprovisioning') return 'provisioning';
  if (s === 'available' || s === 'provisioning' || s === 'in-use' || s === 'failed' || s === 'maintenance' || s === 'discovering') return s;
  return 'discovering';
}

export function Badge({ health }: { health: Health }) {
  return (
    <span className={`badge badge-${health}`} data-health={health}>
      {HEALTH_LABEL[health]}
    </span>
  );
}

export function StateTag({ state }: { state?: string }) {
  return (
    <span className={`state state-${state ?? 'unknown'}`} data-state={state ?? ''}>
      {state ?? '—'}
    </span>
  );
}

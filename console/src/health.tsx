// Health of objects as the console badges them: ready, progressing or failed (Argo CD's Healthy/Progressing/
// Degraded), derived from each kind's status.
import type { KubeObject } from './api';

export type Health = 'ready' | 'progressing' | 'failed' | 'unknown';

const conditionStatus = (o: KubeObject, type: string): string | undefined =>
  ((o.status?.conditions as Array<{ type: string; status: string }> | undefined) ?? []).find((c) => c.type === type)?.status;

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

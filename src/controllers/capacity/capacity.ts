// Capacity: how many machines of a plan exist and are free in each metro and facility, counted from the Hardware
// (never from the catalog's list of metros, which says where a plan is offered, not where machines are). Pure:
// the controller feeds it Hardware and writes the result into the Plan's status; the Metal API reads it there,
// so `kubectl get plans` and `/metal/v1/plans` always agree.
import type { HardwareSpec, HardwareStatus } from '../../kinds/hardware.js';
import type { CapacityCounts, CapacityLevel, PlanCapacity, PlanStatus } from '../../kinds/plan.js';

/** A plan is `limited` where fewer than this many machines are free (or fewer than LIMITED_SHARE of them). */
export const LIMITED_BELOW = 3;
export const LIMITED_SHARE = 0.2;

export interface HardwareLike {
  spec: Pick<HardwareSpec, 'metro' | 'facility' | 'plan' | 'maintenance'>;
  status?: Pick<HardwareStatus, 'state' | 'claim'>;
}

/** `unavailable` with nothing free, `limited` with little free, else `normal`. */
export function capacityLevel(available: number, total: number): CapacityLevel {
  if (available <= 0) return 'unavailable';
  if (available < Math.max(LIMITED_BELOW, Math.ceil(total * LIMITED_SHARE))) return 'limited';
  return 'normal';
}

/** Free for a new device: discovered, not claimed, not taken out of service (what the scheduler takes). */
export function isFree(hw: HardwareLike): boolean {
  return hw.status?.state === 'available' && !hw.status.claim && !hw.spec.maintenance;
}

function isInUse(hw: HardwareLike): boolean {
  const s = hw.status?.state;
  return !!hw.status?.claim || s === 'provisioning' || s === 'in-use' || s === 'deprovisioning';
}

function count(machines: HardwareLike[]): CapacityCounts {
  const total = machines.length;
  const available = machines.filter(isFree).length;
  const inUse = machines.filter(isInUse).length;
  const failed = machines.filter((h) => h.status?.state === 'failed').length;
  return { total, available, inUse, failed, level: capacityLevel(available, total) };
}

const byCode = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const i of items) {
    const k = key(i);
    const list = out.get(k);
    if (list) list.push(i);
    else out.set(k, [i]);
  }
  return new Map([...out].sort(([a], [b]) => byCode(a, b)));
}

/** The capacity part of a Plan's status from the Hardware of that plan (others are ignored), sorted by code. */
export function planCapacity(plan: string, hardware: Iterable<HardwareLike>): Required<Pick<PlanStatus, 'metros' | 'capacity'>> {
  const mine = [...hardware].filter((h) => h.spec.plan === plan);
  const capacity: PlanCapacity[] = [];
  for (const [metro, machines] of groupBy(mine, (h) => h.spec.metro)) {
    const facilities = [...groupBy(machines, (h) => h.spec.facility)].map(([facility, fm]) => ({ facility, ...count(fm) }));
    capacity.push({ metro, ...count(machines), facilities });
  }
  return { metros: capacity.map((c) => c.metro), capacity };
}

/** Counts for a metro, or for one facility when given; zeros where the plan has no machines. */
export function capacityAt(status: PlanStatus | undefined, where: { metro?: string; facility?: string }): CapacityCounts {
  const none: CapacityCounts = { total: 0, available: 0, inUse: 0, failed: 0, level: 'unavailable' };
  for (const m of status?.capacity ?? []) {
    if (where.facility !== undefined) {
      const f = m.facilities?.find((x) => x.facility === where.facility);
      if (f) return f;
    } else if (m.metro === where.metro) return m;
  }
  return none;
}

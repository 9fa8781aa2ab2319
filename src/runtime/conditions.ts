// Condition helpers, following Kubernetes conventions and crossplane-runtime's split: `Ready` says
// whether the thing itself is usable, `Synced` whether the last reconcile attempt succeeded. An unchanged
// condition is never rewritten (no new lastTransitionTime, no needless write to the store).
import type { Condition } from '../kinds/types.js';

export const ConditionType = {
  /** The resource is usable (e.g. a Device is active). */
  Ready: 'Ready',
  /** The last reconcile of the resource succeeded. */
  Synced: 'Synced',
} as const;

export const ConditionReason = {
  Available: 'Available',
  Unavailable: 'Unavailable',
  Creating: 'Creating',
  Deleting: 'Deleting',
  ReconcileSuccess: 'ReconcileSuccess',
  ReconcileError: 'ReconcileError',
  ReconcilePaused: 'ReconcilePaused',
} as const;

/** What a controller says about a condition; lastTransitionTime is computed by setCondition. */
export interface ConditionInput {
  type: string;
  status: Condition['status'];
  reason: string;
  message?: string;
  observedGeneration?: number;
}

/** RFC 3339 with second precision, as metav1.Time serialises (`2026-01-01T00:00:00Z`). */
export function formatTime(t: number | Date): string {
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function getCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === 'True';
}

export function isFalse(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === 'False';
}

/**
 * Sets one condition and returns the resulting list (a new array; the input, which may be a frozen
 * cached object's, is never mutated) and whether anything changed. lastTransitionTime moves only when
 * the status changes; if status, reason, message and observedGeneration are all the same the condition
 * is left exactly as it was and `changed` is false.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  input: ConditionInput,
  now: number | Date,
): { conditions: Condition[]; changed: boolean } {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === input.type);
  const old = i >= 0 ? list[i] : undefined;
  const message = input.message ?? '';
  if (
    old &&
    old.status === input.status &&
    old.reason === input.reason &&
    old.message === message &&
    old.observedGeneration === input.observedGeneration
  ) {
    return { conditions: list, changed: false };
  }
  const next: Condition = {
    type: input.type,
    status: input.status,
    reason: input.reason,
    message,
    ...(input.observedGeneration !== undefined ? { observedGeneration: input.observedGeneration } : {}),
    lastTransitionTime: old && old.status === input.status ? old.lastTransitionTime : formatTime(now),
  };
  if (old) list[i] = next;
  else list.push(next);
  return { conditions: list, changed: true };
}

/** Sets several conditions at once; `changed` if any of them changed. */
export function setConditions(
  conditions: readonly Condition[] | undefined,
  inputs: readonly ConditionInput[],
  now: number | Date,
): { conditions: Condition[]; changed: boolean } {
  let list = [...(conditions ?? [])];
  let changed = false;
  for (const input of inputs) {
    const r = setCondition(list, input, now);
    list = r.conditions;
    changed ||= r.changed;
  }
  return { conditions: list, changed };
}

/** Removes the condition of `type`; `changed` if there was one. */
export function removeCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): { conditions: Condition[]; changed: boolean } {
  const list = (conditions ?? []).filter((c) => c.type !== type);
  return { conditions: list, changed: list.length !== (conditions?.length ?? 0) };
}

// crossplane-runtime's common conditions.

export function available(observedGeneration?: number, message = ''): ConditionInput {
  return { type: ConditionType.Ready, status: 'True', reason: ConditionReason.Available, message, observedGeneration };
}

export function unavailable(message: string, observedGeneration?: number): ConditionInput {
  return { type: ConditionType.Ready, status: 'False', reason: ConditionReason.Unavailable, message, observedGeneration };
}

export function creating(observedGeneration?: number, message = ''): ConditionInput {
  return { type: ConditionType.Ready, status: 'False', reason: ConditionReason.Creating, message, observedGeneration };
}

export function deleting(observedGeneration?: number, message = ''): ConditionInput {
  return { type: ConditionType.Ready, status: 'False', reason: ConditionReason.Deleting, message, observedGeneration };
}

export function reconcileSuccess(observedGeneration?: number): ConditionInput {
  return { type: ConditionType.Synced, status: 'True', reason: ConditionReason.ReconcileSuccess, message: '', observedGeneration };
}

export function reconcileError(err: Error | string, observedGeneration?: number): ConditionInput {
  const message = typeof err === 'string' ? err : err.message;
  return { type: ConditionType.Synced, status: 'False', reason: ConditionReason.ReconcileError, message, observedGeneration };
}

export function reconcilePaused(observedGeneration?: number, message = 'reconciliation is paused'): ConditionInput {
  return { type: ConditionType.Synced, status: 'False', reason: ConditionReason.ReconcilePaused, message, observedGeneration };
}

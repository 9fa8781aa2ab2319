// crossplane-runtime's Synced condition for any reconciler: after a failed reconcile the object says so
// (Synced=False, with the error's reason and message), after the next successful one it says Synced=True
// again. Reconcilers write Synced=True themselves in the status writes they make anyway (see
// `reconcileSuccess`), so a healthy object costs no extra write; this wrapper writes only on a change from or
// to failure. The result is passed on unchanged: an error still goes to the work queue's per-key backoff.
//
// Conflicts and not-found are not reported: they are the normal price of optimistic concurrency (the retry
// reads the newer version) and of deletion, not something an operator should see as "not synced".
import { systemClock, type Clock } from '../lib/clock.js';
import { isApiError, isConflict, isNotFound } from '../lib/errors.js';
import type { KindDeclaration, StoredObject } from '../kinds/types.js';
import type { ObjectClient } from './client.js';
import { splitKey } from './cache.js';
import { ConditionType, getCondition, reconcileSuccess, setCondition, type ConditionInput } from './conditions.js';
import { TerminalError, type Reconciler, type Result } from './controller.js';
import { updateStatus } from './update-status.js';

export interface SyncedOptions {
  client: ObjectClient;
  /** The reconciler's primary kind (it must have a status subresource with `conditions`). */
  kind: KindDeclaration;
  /** Where the current object is read from to see whether it shows Synced=False. */
  cache: { get(namespace: string | undefined, name: string): StoredObject | undefined };
  fieldManager: string;
  clock?: Clock;
  /** The CamelCase reason of an error the caller knows (e.g. a driver's); default: see `errorReason`. */
  reasonOf?: (err: Error) => string | undefined;
}

/** The condition a failed reconcile reports. */
export function reconcileFailed(err: Error, observedGeneration?: number, reason = errorReason(err)): ConditionInput {
  return { type: ConditionType.Synced, status: 'False', reason, message: err.message, observedGeneration };
}

/** An ApiError's reason; else the error's class name when it has one of its own (`IpExhaustedError`); else ReconcileError. */
export function errorReason(err: Error): string {
  if (isApiError(err)) return err.reason;
  if (err.name && err.name !== 'Error' && /^[A-Z][A-Za-z]*$/.test(err.name)) return err.name;
  return 'ReconcileError';
}

export function reportSynced(inner: Reconciler, opts: SyncedOptions): Reconciler {
  const clock = opts.clock ?? systemClock;
  /** Keys last reported Synced=False by this process (the cache may not show that write yet). */
  const failing = new Set<string>();

  const write = async (key: string, input: (obj: StoredObject) => ConditionInput): Promise<void> => {
    const { namespace, name } = splitKey(key);
    await updateStatus(opts.client, opts.kind, namespace, name, opts.fieldManager, (obj) => {
      const status = (obj.status ?? {}) as { conditions?: Parameters<typeof setCondition>[0] };
      const r = setCondition(status.conditions, input(obj), clock.now());
      return r.changed ? { ...status, conditions: r.conditions } : undefined;
    });
  };

  return {
    async reconcile(key: string): Promise<Result> {
      let result: Result;
      try {
        result = await inner.reconcile(key);
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        result = { error, terminal: err instanceof TerminalError };
      }
      try {
        if ('error' in result) {
          if (!isConflict(result.error) && !isNotFound(result.error)) {
            const error = result.error;
            await write(key, (obj) => reconcileFailed(error, obj.metadata.generation, opts.reasonOf?.(error) ?? errorReason(error)));
            failing.add(key);
          }
        } else if (failing.has(key) || shownFailing(opts, key)) {
          await write(key, (obj) => reconcileSuccess(obj.metadata.generation));
          failing.delete(key);
        }
      } catch (err) {
        // Reporting is best effort: the reconcile's own result decides what happens next.
        if (!isConflict(err) && !isNotFound(err) && !('error' in result)) return { error: err instanceof Error ? err : new Error(String(err)) };
      }
      return result;
    },
  };
}

function shownFailing(opts: SyncedOptions, key: string): boolean {
  const { namespace, name } = splitKey(key);
  const conditions = (opts.cache.get(namespace, name)?.status as { conditions?: Parameters<typeof getCondition>[0] } | undefined)?.conditions;
  return getCondition(conditions, ConditionType.Synced)?.status === 'False';
}

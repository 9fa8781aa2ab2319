// What a DELETE does to an object: check preconditions, add the garbage collector's finalizer for the
// propagation policy, and either remove it now or mark it deleting (deletionTimestamp, generation, and how the
// kind shows it, e.g. a Namespace's phase Terminating) while finalizers hold it.
import type { KindDeclaration, StoredObject } from '../../kinds/types.js';
import type { DeleteOptions } from '../../runtime/client.js';
import type { Clock } from '../../lib/clock.js';
import { ApiError } from '../../lib/errors.js';
import { deepEqual } from '../patch/json-value.js';
import { finalizersDone, finishMeta, nowIso } from './meta.js';

export type PreparedDelete =
  /** No finalizer holds it: remove it now. */
  | { action: 'remove' }
  /** Already deleting, nothing new to record. */
  | { action: 'unchanged' }
  /** Store this version: marked deleting, finalizers hold it. */
  | { action: 'mark'; object: StoredObject };

export function prepareDelete(kind: KindDeclaration, cur: StoredObject, opts: DeleteOptions, clock: Clock): PreparedDelete {
  const pre = opts.preconditions;
  if (pre?.uid && pre.uid !== cur.metadata.uid) {
    throw ApiError.conflict(`Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata.uid}`);
  }
  if (pre?.resourceVersion && pre.resourceVersion !== cur.metadata.resourceVersion) {
    throw ApiError.conflict(`Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${cur.metadata.resourceVersion}`);
  }
  const finalizers = [...(cur.metadata.finalizers ?? [])];
  const policy = opts.propagationPolicy ?? 'Background';
  const want = policy === 'Foreground' ? 'foregroundDeletion' : policy === 'Orphan' ? 'orphan' : undefined;
  if (want && !finalizers.includes(want)) {
    // Switching policy while deletion is pending replaces the other GC finalizer, as kube does.
    const other = want === 'orphan' ? 'foregroundDeletion' : 'orphan';
    const i = finalizers.indexOf(other);
    if (i >= 0) finalizers.splice(i, 1);
    finalizers.push(want);
  }
  const next = structuredClone(cur);
  next.metadata.finalizers = finalizers;
  if (finalizersDone(kind, next)) return { action: 'remove' };
  if (cur.metadata.deletionTimestamp && deepEqual(finalizers, cur.metadata.finalizers ?? [])) return { action: 'unchanged' };
  if (!next.metadata.deletionTimestamp) {
    next.metadata.deletionTimestamp = nowIso(clock);
    next.metadata.deletionGracePeriodSeconds = 0;
  }
  kind.strategy?.prepareForDelete?.(next);
  // Kinds that track generation record the deletion as a change of intent, as kube does.
  if (next.metadata.generation !== undefined) next.metadata.generation += 1;
  return { action: 'mark', object: finishMeta(next) as StoredObject };
}

// The store's own errors. A backend raises these; the API surfaces translate them (src/apiserver/status.ts)
// into Kubernetes `Status` codes, so the store knows nothing of HTTP and callers test for a meaning
// (`isKeyExists`), never a number.
import type { WriteOp } from './types.js';

export type StoreErrorCode =
  /** create of a key that exists */
  | 'KeyExists'
  /** update/delete of a key that does not exist */
  | 'KeyNotFound'
  /** a write named a revision of the key that is no longer its current one */
  | 'RevisionMismatch'
  /** a read or watch at a revision older than the compacted one */
  | 'Compacted'
  /** a read at a revision the store has not reached */
  | 'FutureRevision'
  /** an argument no store could accept (empty key, negative revision, compacting past the head) */
  | 'InvalidArgument'
  /** the store is closed or closing */
  | 'Closed'
  /**
   * the backend did not answer in time or held a lock too long (a networked database restarting, failing over,
   * or stuck behind another transaction); retrying later may succeed. A write that fails so was not applied,
   * unless the message says its outcome is unknown.
   */
  | 'Unavailable'
  /** the store's file is in a state it cannot continue from (e.g. a second writer) */
  | 'Corrupt';

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    /** The key the error is about, when there is one. */
    readonly key?: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export function isStoreError(e: unknown, code?: StoreErrorCode): e is StoreError {
  return e instanceof StoreError && (code === undefined || e.code === code);
}

export const isKeyExists = (e: unknown): boolean => isStoreError(e, 'KeyExists');
export const isKeyNotFound = (e: unknown): boolean => isStoreError(e, 'KeyNotFound');
export const isRevisionMismatch = (e: unknown): boolean => isStoreError(e, 'RevisionMismatch');
export const isCompacted = (e: unknown): boolean => isStoreError(e, 'Compacted');

/**
 * The refusal of a malformed write, as every backend gives it: an empty key, a create or update without a
 * string value, a check without its revision. `noNul`: the backend cannot store NUL in keys and values
 * (PostgreSQL text; JSON encodes NUL as \u0000, so only a non-JSON value can carry one).
 */
export function invalidWriteOp(ops: readonly WriteOp[], opts: { noNul?: boolean } = {}): StoreError | undefined {
  for (const op of ops) {
    if (typeof op.key !== 'string' || op.key === '') return new StoreError('InvalidArgument', 'store key must be a non-empty string');
    if (opts.noNul && op.key.includes('\u0000')) return new StoreError('InvalidArgument', 'store key must not contain NUL characters', op.key);
    if (op.op === 'check' && !Number.isInteger(op.expectedRevision)) return new StoreError('InvalidArgument', `a check of key "${op.key}" needs an expectedRevision`, op.key);
    if (op.op === 'create' || op.op === 'update') {
      if (typeof op.value !== 'string') return new StoreError('InvalidArgument', `value of key "${op.key}" must be a string`, op.key);
      if (opts.noNul && op.value.includes('\u0000')) return new StoreError('InvalidArgument', `value of key "${op.key}" must not contain NUL characters`, op.key);
    }
  }
  return undefined;
}

// The store's own errors. A backend raises these; the API surfaces translate them (src/apiserver/status.ts)
// into Kubernetes `Status` codes, so the store knows nothing of HTTP and callers test for a meaning
// (`isKeyExists`), never a number.

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

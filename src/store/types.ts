// The Store contract. Kine's model: one append-only log of versions whose row id is the global revision.
// Every backend (SQLite now, PostgreSQL next) implements this interface and must pass
// `src/store/conformance/` unchanged. Methods are async so that a networked backend fits the same shape.

/** One version of one key. `modRevision` is the Kubernetes `resourceVersion`. */
export interface KeyValue {
  key: string;
  /** The stored object as JSON text (without metadata.resourceVersion: that is `modRevision`). */
  value: string;
  /** Revision at which this key was (last) created. */
  createRevision: number;
  /** Revision of this version. For a delete event: the revision of the deletion. */
  modRevision: number;
}

export type StoreEventType = 'create' | 'update' | 'delete';

export interface StoreEvent {
  type: StoreEventType;
  /** For `delete`: the last value of the key, with `modRevision` = the deletion's revision. */
  kv: KeyValue;
  /** The version this event replaced (absent for `create`). */
  prevKv?: KeyValue;
}

/** One write inside an atomic `commit`. Each op carries its own precondition. */
export type WriteOp =
  /** Fails with AlreadyExists (409) if the key exists. */
  | { op: 'create'; key: string; value: string }
  /** Fails with NotFound (404) if absent, Conflict (409) if `expectedRevision` is given and differs. */
  | { op: 'update'; key: string; value: string; expectedRevision?: number }
  /** Fails with NotFound (404) if absent, Conflict (409) if `expectedRevision` is given and differs. */
  | { op: 'delete'; key: string; expectedRevision?: number }
  /**
   * Writes nothing and takes no revision: the commit applies only if `key` exists at exactly
   * `expectedRevision` (etcd's compare on mod_revision). Fails with KeyNotFound if absent, RevisionMismatch if
   * it moved. A leader's writes carry one on its lease, so a replica that lost the lease cannot write.
   */
  | { op: 'check'; key: string; expectedRevision: number };

export interface ListOptions {
  /** Read as of this revision (0 or absent: the current one). Below the compacted revision: Expired (410). */
  revision?: number;
  /** Maximum items to return (0 or absent: no limit). */
  limit?: number;
  /** Return only keys strictly greater than this one (pagination). */
  startAfter?: string;
}

export interface ListResult {
  items: KeyValue[];
  /** The revision the list was read at (pass it back with `startAfter` for the next page). */
  revision: number;
  /** True when more keys under the prefix follow the last item. */
  more: boolean;
  /** How many keys under the prefix follow the last item (when `more`). */
  remaining?: number;
}

export interface WatchHandle {
  /** Stops delivery. Idempotent. */
  cancel(): void;
}

export interface WatchOptions {
  /** Deliver every event with revision > fromRevision, in order, then follow live. */
  fromRevision: number;
  /** Called with events in strict revision order, never skipping or repeating one. */
  onEvents: (events: StoreEvent[]) => void;
  /**
   * Called once if the watch cannot continue (e.g. it fell behind a compaction). No events follow.
   * A fromRevision below the compacted revision makes `watch()` itself reject with Expired (410).
   */
  onError?: (err: Error) => void;
}

export interface CompactionOptions {
  /** Keep at least this many most recent revisions of history (default 1000). */
  keepRevisions?: number;
  /** How often to compact, in ms (default 60 000). */
  intervalMs?: number;
}

export interface Store {
  /** The newest revision written (0 for an empty store). */
  currentRevision(): Promise<number>;
  /** The revision at or below which history is gone (0 if never compacted). */
  compactedRevision(): Promise<number>;

  /** The value of `key` as of `revision` (default: now), or undefined if absent/deleted. */
  get(key: string, revision?: number): Promise<KeyValue | undefined>;
  /** Keys that start with `prefix`, sorted by key, consistent at one revision. */
  list(prefix: string, opts?: ListOptions): Promise<ListResult>;
  /** How many live keys start with `prefix`. */
  count(prefix: string): Promise<number>;

  create(key: string, value: string): Promise<KeyValue>;
  update(key: string, value: string, expectedRevision?: number): Promise<KeyValue>;
  /** Returns the deleted value, with modRevision = the deletion's revision. */
  delete(key: string, expectedRevision?: number): Promise<KeyValue>;
  /**
   * Applies every op atomically, or none: if any precondition fails, nothing is written and the
   * error names the failing key. Returns one KeyValue per op, in order (for a delete: as `delete` does; for a
   * check: the version it found).
   */
  commit(ops: WriteOp[]): Promise<KeyValue[]>;

  /** Watch every key starting with `prefix`. Rejects with Expired (410) if fromRevision is compacted. */
  watch(prefix: string, opts: WatchOptions): Promise<WatchHandle>;

  /** Removes history at or below `revision` that no longer is any key's current value. */
  compact(revision: number): Promise<void>;
  /** Starts periodic compaction; stopped by close(). */
  startCompaction(opts?: CompactionOptions): void;

  close(): Promise<void>;
}

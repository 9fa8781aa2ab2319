// The current version of every object, in memory, followed by one store watch, so that point reads (GET, the
// read before an update, patch or delete, the namespace check of a create) and current lists do not go to the
// store. The store hands events to watchers before it acknowledges a write, so an acknowledged write is always
// visible here; and a revision the store returns from currentRevision() is never ahead of what its watchers
// were given (both backends promise it), so after asking for it the map holds exactly the state at that
// revision or later. A read at an older revision (Exact, a continue token) is answered here too while nothing
// in its collection has changed since; otherwise it goes to the store's history.
import type { KeyValue, Store, WatchHandle } from '../../store/types.js';
import { STORE_KEY_PREFIX } from '../../kinds/index.js';

/**
 * The keys of one collection (`/registry/<group>/<plural>/`, every namespace), sorted on demand: creates and
 * deletes are noted and folded in by the next list, so a burst of writes costs one merge, not one shift each.
 * Physically held keys are always the live ones plus `dead`.
 */
class CollectionKeys {
  /** The revision of the last event in this collection (or the revision the map was loaded at). */
  changedAt: number;
  private sorted: string[] = [];
  private pending: string[] = [];
  private readonly dead = new Set<string>();

  constructor(changedAt: number) {
    this.changedAt = changedAt;
  }

  /** A key that was not live became live. */
  added(key: string): void {
    if (this.dead.delete(key)) return;
    this.pending.push(key);
  }

  /** A live key was deleted. */
  removed(key: string): void {
    this.dead.add(key);
  }

  /** The live keys, sorted as the store sorts them (names are ASCII: code-unit order is byte order). */
  keys(): readonly string[] {
    if (this.pending.length === 0 && this.dead.size === 0) return this.sorted;
    const add = this.pending.sort();
    this.pending = [];
    const old = this.sorted;
    if (this.dead.size === 0 && (old.length === 0 || add[0]! > old[old.length - 1]!)) {
      for (const k of add) old.push(k);
      return old;
    }
    const out: string[] = [];
    let i = 0;
    let j = 0;
    while (i < old.length || j < add.length) {
      const k = j >= add.length || (i < old.length && old[i]! < add[j]!) ? old[i++]! : add[j++]!;
      if (!this.dead.has(k)) out.push(k);
    }
    this.dead.clear();
    this.sorted = out;
    return out;
  }
}

/** A consistent view of the current state at one revision; valid only in the turn it was handed out. */
export interface CurrentView {
  revision: number;
  get(key: string): KeyValue | undefined;
  /**
   * The revision of the last change under `prefix`'s collection: the state there at any revision from this one
   * to `revision` is the current one.
   */
  changedAt(prefix: string): number;
  /** The live keys starting with `prefix` (a collection's, or one namespace of it) greater than `startAfter`. */
  range(prefix: string, startAfter?: string): { keys: readonly string[]; start: number; end: number };
}

/** Whether lists under `prefix` can be read from a view: a collection's prefix, or one namespace's of it. */
export function servesPrefix(prefix: string): boolean {
  return prefix.endsWith('/') && collectionOf(prefix) !== undefined;
}

/** `/registry/<group>/<plural>/` of a key or list prefix, or undefined if it is not that deep. */
function collectionOf(key: string): string | undefined {
  const g = key.indexOf('/', STORE_KEY_PREFIX.length);
  if (g < 0) return undefined;
  const p = key.indexOf('/', g + 1);
  return p < 0 ? undefined : key.slice(0, p + 1);
}

/** The first index whose key is >= `key` (or > it with `strict`). */
function lowerBound(keys: readonly string[], key: string, strict = false): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key || (strict && keys[mid] === key)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class CurrentState {
  private current: Map<string, KeyValue> | undefined;
  private readonly collections = new Map<string, CollectionKeys>();
  /** The revision the map is known to be at: its last event's, or the last store revision it was synced to. */
  private revision = 0;
  /** The revision the map was loaded at: nothing older is known here. */
  private loadedAt = 0;
  private watch: WatchHandle | undefined;
  /** The length of every value held (UTF-16 code units: close to bytes for JSON, which is mostly ASCII). */
  private textLength = 0;

  constructor(private readonly store: Store) {}

  /** What the map holds, for the metrics: objects and the length of their JSON text. Undefined when not serving. */
  size(): { objects: number; textLength: number } | undefined {
    return this.current ? { objects: this.current.size, textLength: this.textLength } : undefined;
  }

  async start(): Promise<void> {
    if (this.watch) return;
    const page = await this.store.list(STORE_KEY_PREFIX);
    const current = new Map<string, KeyValue>();
    this.collections.clear();
    this.loadedAt = page.revision;
    this.textLength = 0;
    for (const kv of page.items) {
      current.set(kv.key, kv);
      this.textLength += kv.value.length;
      this.collectionFor(kv.key)?.added(kv.key);
    }
    this.revision = page.revision;
    this.watch = await this.store.watch(STORE_KEY_PREFIX, {
      fromRevision: page.revision,
      onEvents: (events) => {
        for (const ev of events) {
          const key = ev.kv.key;
          const c = this.collectionFor(key);
          if (c) c.changedAt = ev.kv.modRevision;
          const was = current.get(key);
          if (was) this.textLength -= was.value.length;
          if (ev.type === 'delete') {
            if (current.delete(key)) c?.removed(key);
          } else {
            if (!was) c?.added(key);
            current.set(key, ev.kv);
            this.textLength += ev.kv.value.length;
          }
        }
        this.revision = events[events.length - 1]!.kv.modRevision;
      },
      // Back to reading the store: never answer from a cache that stopped following.
      onError: () => (this.current = undefined),
    });
    // The store delivers a new watch's events from its next turn on; serve from the map only once it is live.
    await new Promise((resolve) => setImmediate(resolve));
    this.current = current;
  }

  private collectionFor(key: string): CollectionKeys | undefined {
    const c = collectionOf(key);
    if (c === undefined) return undefined;
    let keys = this.collections.get(c);
    // A collection first seen now had no change since the map was loaded (its loaded state is the current one).
    if (!keys) this.collections.set(c, (keys = new CollectionKeys(this.loadedAt)));
    return keys;
  }

  /** The current version of a key: from memory once started, else from the store. */
  async get(key: string): Promise<KeyValue | undefined> {
    return this.current ? this.current.get(key) : this.store.get(key);
  }

  /**
   * Runs `read` on the current state as of now (the store's current revision or later), in the same turn;
   * undefined when the map is not serving (not started, or its watch failed).
   */
  async read<T>(read: (view: CurrentView) => T): Promise<T | undefined> {
    if (!this.current) return undefined;
    const storeRevision = await this.store.currentRevision();
    const current = this.current;
    if (!current) return undefined;
    // Everything up to storeRevision was delivered to the map; later events may have arrived too.
    if (storeRevision > this.revision) this.revision = storeRevision;
    const view: CurrentView = {
      revision: this.revision,
      get: (key) => current.get(key),
      changedAt: (prefix) => {
        const c = collectionOf(prefix);
        return (c !== undefined ? this.collections.get(c)?.changedAt : undefined) ?? this.loadedAt;
      },
      range: (prefix, startAfter) => {
        const c = collectionOf(prefix);
        const keys = (c !== undefined ? this.collections.get(c)?.keys() : undefined) ?? [];
        // Prefixes end with '/': the keys under one are those below it with '/' raised to '0'.
        const end = lowerBound(keys, prefix.slice(0, -1) + '0');
        let start = lowerBound(keys, prefix);
        if (startAfter !== undefined && startAfter >= prefix) start = Math.max(start, lowerBound(keys, startAfter, true));
        return { keys, start, end: Math.max(start, end) };
      },
    };
    return read(view);
  }

  close(): void {
    this.watch?.cancel();
    this.watch = undefined;
    this.current = undefined;
  }
}

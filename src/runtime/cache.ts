// The informer's local store: objects by `namespace/name` (or `name` when cluster-scoped), plus named
// secondary indexes (by owner uid, by label, by field …) maintained on every write.
//
// Objects are deep-frozen when they enter the cache and are shared with every reader, so reading is free
// and a careless mutation throws instead of silently corrupting what other controllers see. To change an
// object, copy it first (`structuredClone(obj)`), then write the copy through the client.
import type { StoredObject } from '../kinds/types.js';

/** Maps an object to the index values it is filed under (none, one or several). */
export type IndexFunc = (obj: StoredObject) => readonly string[];

/** The cache key of an object: `namespace/name`, or `name` for cluster-scoped objects. */
export function objectKey(obj: { metadata: { namespace?: string; name?: string } }): string {
  const { namespace, name } = obj.metadata;
  return namespace ? `${namespace}/${name ?? ''}` : (name ?? '');
}

/** Splits a key made by objectKey back into namespace and name. */
export function splitKey(key: string): { namespace?: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** Freezes `value` and everything reachable from it; already-frozen subtrees are skipped. */
export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const v of Object.values(value as object)) deepFreeze(v);
  return value;
}

/**
 * The namespace index is always there: `byIndex(NamespaceIndex, ns)` lists one namespace. It is built on its first
 * use and kept from then on, so that a cache nobody lists by namespace (most of the metadata caches that follow
 * every kind) does not file each write under it: in a cache of 100 000 ConfigMaps, one namespace's set of keys
 * was the largest hash table each create touched.
 */
export const NamespaceIndex = 'namespace';
const byNamespace: IndexFunc = (o) => (o.metadata.namespace ? [o.metadata.namespace] : []);

export class Cache {
  private readonly items = new Map<string, StoredObject>();
  private readonly indexers = new Map<string, IndexFunc>();
  /** index name → index value → keys */
  private readonly indices = new Map<string, Map<string, Set<string>>>();

  get size(): number {
    return this.items.size;
  }

  /** Adds a named index; existing objects are indexed at once. Throws if the name is taken. */
  addIndex(name: string, fn: IndexFunc): void {
    if (this.indexers.has(name) || name === NamespaceIndex) throw new Error(`cache index "${name}" already exists`);
    this.index(name, fn);
  }

  private index(name: string, fn: IndexFunc): void {
    this.indexers.set(name, fn);
    const index = new Map<string, Set<string>>();
    this.indices.set(name, index);
    for (const [key, obj] of this.items) this.fileUnder(index, fn(obj), key);
  }

  hasIndex(name: string): boolean {
    return name === NamespaceIndex || this.indexers.has(name);
  }

  get(key: string): StoredObject | undefined {
    return this.items.get(key);
  }

  getByName(namespace: string | undefined, name: string): StoredObject | undefined {
    return this.items.get(namespace ? `${namespace}/${name}` : name);
  }

  has(key: string): boolean {
    return this.items.has(key);
  }

  keys(): string[] {
    return [...this.items.keys()];
  }

  /** Every object, or those of one namespace. */
  list(namespace?: string): StoredObject[] {
    if (namespace !== undefined) return this.byIndex(NamespaceIndex, namespace);
    return [...this.items.values()];
  }

  /** Objects filed under `value` in index `name`. Throws for an unknown index (a programming error). */
  byIndex(name: string, value: string): StoredObject[] {
    return this.indexKeys(name, value).map((k) => this.items.get(k)!);
  }

  indexKeys(name: string, value: string): string[] {
    if (name === NamespaceIndex && !this.indexers.has(name)) this.index(name, byNamespace);
    const index = this.indices.get(name);
    if (!index) throw new Error(`cache index "${name}" does not exist`);
    return [...(index.get(value) ?? [])];
  }

  /** Stores `obj` (freezing it) and returns the object it replaced, if any. */
  set(obj: StoredObject): StoredObject | undefined {
    const key = objectKey(obj);
    deepFreeze(obj);
    const old = this.items.get(key);
    if (old) this.unindex(old, key);
    this.items.set(key, obj);
    for (const [name, fn] of this.indexers) this.fileUnder(this.indices.get(name)!, fn(obj), key);
    return old;
  }

  /** Removes the object at `key` and returns it. */
  delete(key: string): StoredObject | undefined {
    const old = this.items.get(key);
    if (!old) return undefined;
    this.unindex(old, key);
    this.items.delete(key);
    return old;
  }

  clear(): void {
    this.items.clear();
    for (const index of this.indices.values()) index.clear();
  }

  private fileUnder(index: Map<string, Set<string>>, values: readonly string[], key: string): void {
    for (const v of values) {
      let keys = index.get(v);
      if (!keys) index.set(v, (keys = new Set()));
      keys.add(key);
    }
  }

  private unindex(obj: StoredObject, key: string): void {
    // Index functions are pure over frozen objects, so they give the same values they gave on insert.
    for (const [name, fn] of this.indexers) {
      const index = this.indices.get(name)!;
      for (const v of fn(obj)) {
        const keys = index.get(v);
        if (!keys) continue;
        keys.delete(key);
        if (keys.size === 0) index.delete(v);
      }
    }
  }
}

/** An index function filing objects under the uid of each of their owners. */
export const byOwnerUid: IndexFunc = (o) => (o.metadata.ownerReferences ?? []).map((r) => r.uid);

/** An index function filing objects under `key=value` for each of their labels. */
export const byLabel: IndexFunc = (o) => Object.entries(o.metadata.labels ?? {}).map(([k, v]) => `${k}=${v}`);

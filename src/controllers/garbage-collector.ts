// The garbage collector: ownerReferences semantics across every kind, after Kubernetes' GC.
//
// - Background: a dependent none of whose owners exists any more (not found, or found with another uid)
//   is deleted. One live owner is enough to keep it; references to owners that are gone are pruned.
// - Foreground: an owner being deleted with the `foregroundDeletion` finalizer has its dependents deleted
//   (in foreground themselves when they have dependents of their own); once no dependent with
//   blockOwnerDeletion=true remains, the finalizer is removed and the registry completes the deletion.
// - Orphan: an owner being deleted with the `orphan` finalizer has its references removed from all its
//   dependents, then the finalizer is removed.
//
// The registry adds those finalizers when a client deletes with that propagationPolicy; this controller
// does the rest. It works from shared metadata-only informers over every kind, indexed by owner uid.
// Deciding that an owner is gone is never left to a cache that might lag (an owner and its dependent are
// watched through different informers): absence is confirmed with a live read before anything is deleted.
import type { Clock } from '../lib/clock.js';
import { isApiError } from '../lib/errors.js';
import type { KindDeclaration, OwnerReference, StoredObject } from '../kinds/types.js';
import { byOwnerUid } from '../runtime/cache.js';
import type { ObjectClient, DeleteOptions } from '../runtime/client.js';
import { Controller, done, groupOf, requeueAfter, type ControllerMetrics, type Reconciler, type Result, type Watch } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import type { Informer, InformerFactory } from '../runtime/informer.js';
import { childLogger, silentLogger, type Logger } from '../runtime/logger.js';
import type { QueueMetrics } from '../runtime/workqueue.js';

export const ForegroundDeletionFinalizer = 'foregroundDeletion';
export const OrphanFinalizer = 'orphan';

/** The cache index (on every monitored informer) of objects by the uid of each owner. */
export const OwnerUidIndex = 'metadata.ownerReferences.uid';

export interface GarbageCollectorOptions {
  client: ObjectClient;
  kinds: KindDeclaration[];
  informers: InformerFactory;
  clock?: Clock;
  logger?: Logger;
  recorder?: EventRecorder;
  metrics?: ControllerMetrics;
  queueMetrics?: QueueMetrics;
  workers?: number;
  /** Kinds not garbage collected (default: core Events, as in Kubernetes). */
  ignoredKinds?: Array<{ group: string; kind: string }>;
  /** Safety-net recheck of an owner waiting for its dependents (default 30 s; their deletions usually trigger it first). */
  recheckMs?: number;
}

interface Item {
  kind: KindDeclaration;
  obj: StoredObject;
}

type OwnerState = 'solid' | 'dangling' | 'waiting';

const kindId = (k: { group: string; kind: string }): string => `${k.group}/${k.kind}`;

export function createGarbageCollector(opts: GarbageCollectorOptions): Controller {
  const gc = new GarbageCollector(opts);
  return new Controller({
    name: 'garbage-collector',
    reconciler: gc,
    watches: gc.watches(),
    workers: opts.workers ?? 2,
    clock: opts.clock,
    logger: opts.logger,
    metrics: opts.metrics,
    queueMetrics: opts.queueMetrics,
  });
}

export class GarbageCollector implements Reconciler {
  private readonly client: ObjectClient;
  private readonly log: Logger;
  private readonly monitored = new Map<string, { kind: KindDeclaration; informer: Informer }>();

  constructor(private readonly opts: GarbageCollectorOptions) {
    this.client = opts.client;
    this.log = childLogger(opts.logger ?? silentLogger, { controller: 'garbage-collector' });
    const ignored = new Set((opts.ignoredKinds ?? [{ group: '', kind: 'Event' }]).map(kindId));
    for (const kind of opts.kinds) {
      if (ignored.has(kindId(kind))) continue;
      if (!['list', 'watch', 'delete'].every((v) => !kind.verbs || kind.verbs.includes(v))) continue;
      // Owners, finalizers and deletion are metadata; whole objects are read live before any write.
      const informer = opts.informers.metadataInformerFor(kind);
      if (!informer.cache.hasIndex(OwnerUidIndex)) informer.addIndex(OwnerUidIndex, byOwnerUid);
      this.monitored.set(kindId(kind), { kind, informer });
    }
  }

  /** The queue key of an object: `group|Kind|namespace|name`. */
  static key(kind: KindDeclaration, obj: StoredObject): string {
    return `${kind.group}|${kind.kind}|${obj.metadata.namespace ?? ''}|${obj.metadata.name}`;
  }

  watches(): Watch[] {
    return [...this.monitored.values()].map(({ kind, informer }) => ({
      informer,
      map: (obj: StoredObject, event: 'add' | 'update' | 'delete') => {
        const keys: string[] = [];
        const waitsOnGC = isBeingDeleted(obj) && hasGCFinalizer(obj);
        if (event !== 'delete' && (obj.metadata.ownerReferences?.length || waitsOnGC)) keys.push(GarbageCollector.key(kind, obj));
        // Dependents of an object that is gone (or going with foreground/orphan) need a look.
        if (event === 'delete' || waitsOnGC) for (const d of this.dependentsOf(kind, obj)) keys.push(GarbageCollector.key(d.kind, d.obj));
        // A dependent that changed or went away may unblock an owner waiting for its dependents.
        if (event !== 'add') {
          for (const ref of obj.metadata.ownerReferences ?? []) {
            const owner = this.cachedOwner(obj, ref);
            if (owner && isBeingDeleted(owner.obj) && hasFinalizer(owner.obj, ForegroundDeletionFinalizer)) keys.push(GarbageCollector.key(owner.kind, owner.obj));
          }
        }
        return keys;
      },
    }));
  }

  async reconcile(key: string): Promise<Result> {
    const [group = '', kindName = '', namespace = '', name = ''] = key.split('|');
    const m = this.monitored.get(`${group}/${kindName}`);
    if (!m) return done;
    const obj = m.informer.get(namespace || undefined, name);
    if (!obj) return done;
    if (isBeingDeleted(obj)) {
      if (hasFinalizer(obj, OrphanFinalizer)) return this.orphanDependents(m.kind, obj);
      if (hasFinalizer(obj, ForegroundDeletionFinalizer)) return this.deleteDependents(m.kind, obj);
      return done;
    }
    if (obj.metadata.ownerReferences?.length) await this.collect(m.kind, obj);
    return done;
  }

  /** Deletes `obj` if none of its owners is alive, or prunes references to owners that are gone. */
  private async collect(kind: KindDeclaration, cached: StoredObject): Promise<void> {
    const states = new Map<string, OwnerState>();
    const classify = async (obj: StoredObject, live: boolean) => {
      const out: Record<OwnerState, OwnerReference[]> = { solid: [], dangling: [], waiting: [] };
      for (const ref of obj.metadata.ownerReferences ?? []) {
        let s = states.get(ref.uid);
        if (!s) states.set(ref.uid, (s = await this.ownerState(obj, ref, live)));
        out[s].push(ref);
      }
      return out;
    };
    const first = await classify(cached, false);
    if (first.dangling.length === 0 && first.waiting.length === 0) return;

    // About to act: decide on the latest state of the dependent, with every owner read live.
    states.clear();
    const latest = await this.client.get(kind, cached.metadata.namespace, cached.metadata.name);
    if (!latest || latest.metadata.uid !== cached.metadata.uid || isBeingDeleted(latest)) return;
    const v = await classify(latest, true);
    if (v.solid.length > 0) {
      if (v.dangling.length || v.waiting.length) {
        await this.removeOwnerRefs(kind, latest, new Set([...v.dangling, ...v.waiting].map((r) => r.uid)));
      }
      return;
    }
    let policy: NonNullable<DeleteOptions['propagationPolicy']>;
    if (v.waiting.length > 0) {
      // An owner waits for us: go in foreground if we have dependents of our own, so it waits for them too.
      policy = this.dependentsOf(kind, latest).length > 0 ? 'Foreground' : 'Background';
    } else if (hasFinalizer(latest, OrphanFinalizer)) policy = 'Orphan';
    else if (hasFinalizer(latest, ForegroundDeletionFinalizer)) policy = 'Foreground';
    else policy = 'Background';
    this.log.info(
      { kind: kind.kind, namespace: latest.metadata.namespace, name: latest.metadata.name, policy, owners: [...v.dangling, ...v.waiting].map((r) => `${r.kind}/${r.name}`) },
      'deleting dependent without live owners',
    );
    await this.deleteObject(kind, latest, policy);
  }

  /** Foreground deletion of `owner`: delete its dependents, release it once no blocking one remains. */
  private async deleteDependents(kind: KindDeclaration, owner: StoredObject): Promise<Result> {
    let firstError: unknown;
    for (const d of this.dependentsOf(kind, owner)) {
      if (isBeingDeleted(d.obj)) continue;
      try {
        await this.collect(d.kind, d.obj);
      } catch (err) {
        firstError ??= err;
      }
    }
    if (firstError) throw firstError;
    const blocking = this.dependentsOf(kind, owner).filter((d) =>
      (d.obj.metadata.ownerReferences ?? []).some((r) => r.uid === owner.metadata.uid && r.blockOwnerDeletion),
    );
    if (blocking.length > 0) return requeueAfter(this.opts.recheckMs ?? 30_000);
    await this.removeFinalizer(kind, owner, ForegroundDeletionFinalizer);
    return done;
  }

  /** Orphan deletion of `owner`: remove its references from every dependent, then release it. */
  private async orphanDependents(kind: KindDeclaration, owner: StoredObject): Promise<Result> {
    for (const d of this.dependentsOf(kind, owner)) {
      const latest = await this.client.get(d.kind, d.obj.metadata.namespace, d.obj.metadata.name);
      if (!latest || latest.metadata.uid !== d.obj.metadata.uid) continue;
      await this.removeOwnerRefs(d.kind, latest, new Set([owner.metadata.uid]));
    }
    await this.removeFinalizer(kind, owner, OrphanFinalizer);
    return done;
  }

  private async ownerState(dependent: StoredObject, ref: OwnerReference, live: boolean): Promise<OwnerState> {
    let ownerKind: KindDeclaration;
    try {
      ownerKind = this.client.kind(groupOf(ref.apiVersion), ref.kind);
    } catch {
      // A kind we cannot resolve cannot be proven absent: keep the dependent.
      this.log.warn({ dependent: dependent.metadata.name, owner: ref }, 'owner reference to an unknown kind; leaving the dependent alone');
      return 'solid';
    }
    if (ownerKind.scope === 'Namespaced' && !dependent.metadata.namespace) {
      // A cluster-scoped object cannot be owned by a namespaced one: the reference resolves to nothing.
      void this.opts.recorder?.record(dependent, 'Warning', 'OwnerRefInvalidNamespace', `ownerRef ${JSON.stringify(ref)} does not exist in namespace ""`);
      return 'dangling';
    }
    const namespace = ownerKind.scope === 'Namespaced' ? dependent.metadata.namespace : undefined;
    let owner = live ? undefined : this.monitored.get(kindId(ownerKind))?.informer.get(namespace, ref.name);
    if (!owner || owner.metadata.uid !== ref.uid) owner = await this.client.get(ownerKind, namespace, ref.name);
    if (!owner || owner.metadata.uid !== ref.uid) return 'dangling';
    if (isBeingDeleted(owner) && hasFinalizer(owner, ForegroundDeletionFinalizer)) return 'waiting';
    return 'solid';
  }

  /** The cached owner `ref` points at, if its kind is monitored and the uid matches. */
  private cachedOwner(dependent: StoredObject, ref: OwnerReference): Item | undefined {
    let kind: KindDeclaration;
    try {
      kind = this.client.kind(groupOf(ref.apiVersion), ref.kind);
    } catch {
      return undefined;
    }
    const m = this.monitored.get(kindId(kind));
    const obj = m?.informer.get(kind.scope === 'Namespaced' ? dependent.metadata.namespace : undefined, ref.name);
    return obj && obj.metadata.uid === ref.uid ? { kind, obj } : undefined;
  }

  /** Cached dependents of `owner` (a namespaced owner only has dependents in its own namespace). */
  private dependentsOf(kind: KindDeclaration, owner: StoredObject): Item[] {
    const out: Item[] = [];
    for (const m of this.monitored.values()) {
      for (const obj of m.informer.cache.byIndex(OwnerUidIndex, owner.metadata.uid)) {
        if (kind.scope === 'Namespaced' && obj.metadata.namespace !== owner.metadata.namespace) continue;
        out.push({ kind: m.kind, obj });
      }
    }
    return out;
  }

  private async removeOwnerRefs(kind: KindDeclaration, latest: StoredObject, uids: Set<string>): Promise<void> {
    const refs = latest.metadata.ownerReferences ?? [];
    const kept = refs.filter((r) => !uids.has(r.uid));
    if (kept.length === refs.length) return;
    const next = structuredClone(latest);
    next.metadata.ownerReferences = kept;
    await this.ignoreNotFound(this.client.update(kind, next));
  }

  private async removeFinalizer(kind: KindDeclaration, obj: StoredObject, finalizer: string): Promise<void> {
    const latest = await this.client.get(kind, obj.metadata.namespace, obj.metadata.name);
    if (!latest || latest.metadata.uid !== obj.metadata.uid || !hasFinalizer(latest, finalizer)) return;
    const next = structuredClone(latest);
    next.metadata.finalizers = (latest.metadata.finalizers ?? []).filter((f) => f !== finalizer);
    await this.ignoreNotFound(this.client.update(kind, next));
  }

  private async deleteObject(kind: KindDeclaration, obj: StoredObject, propagationPolicy: NonNullable<DeleteOptions['propagationPolicy']>): Promise<void> {
    try {
      await this.client.delete(kind, obj.metadata.namespace, obj.metadata.name, { propagationPolicy, preconditions: { uid: obj.metadata.uid } });
    } catch (err) {
      // Gone already, or replaced by a new object of the same name (its own events bring it here).
      if (isApiError(err) && (err.code === 404 || err.code === 409)) return;
      throw err;
    }
  }

  private async ignoreNotFound(p: Promise<unknown>): Promise<void> {
    try {
      await p;
    } catch (err) {
      if (isApiError(err) && err.code === 404) return;
      throw err;
    }
  }
}

function isBeingDeleted(obj: StoredObject): boolean {
  return Boolean(obj.metadata.deletionTimestamp);
}

function hasFinalizer(obj: StoredObject, f: string): boolean {
  return (obj.metadata.finalizers ?? []).includes(f);
}

function hasGCFinalizer(obj: StoredObject): boolean {
  return hasFinalizer(obj, ForegroundDeletionFinalizer) || hasFinalizer(obj, OrphanFinalizer);
}

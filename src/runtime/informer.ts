// An informer keeps a local, indexed copy of one kind and tells handlers what changed: it lists once
// (paginated), then watches from the list's resourceVersion. When the watch ends (an ERROR event, e.g.
// 410 Expired after compaction) it lists again and reconciles the cache against the new list, emitting
// synthetic deletes for objects that vanished and updates for those that changed meanwhile, so handlers
// never miss a state even if they miss events. Nothing polls the store.
import { systemClock, type Clock, type Timer } from '../lib/clock.js';
import type { KindDeclaration, KubeObject, StoredObject } from '../kinds/types.js';
import { isMetadataOnly, metadataOf, type ObjectClient, type ObjectWatch, type ObjectWatchEvent } from './client.js';
import { Cache, objectKey, type IndexFunc } from './cache.js';
import { childLogger, silentLogger, type Logger } from './logger.js';

export interface ResourceEventHandler {
  onAdd?(obj: StoredObject): void;
  /** Also called with `oldObj === newObj` on periodic resync. */
  onUpdate?(oldObj: StoredObject, newObj: StoredObject): void;
  /** `obj` is the last state known (the final state when the watch delivered it). */
  onDelete?(obj: StoredObject): void;
}

export interface InformerOptions {
  client: ObjectClient;
  kind: KindDeclaration;
  clock?: Clock;
  logger?: Logger;
  /** Restrict to one namespace (default: all). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size of lists (default 500). */
  pageSize?: number;
  /** Re-notify handlers of every cached object this often (0 or absent: never). */
  resyncIntervalMs?: number;
  /** First delay before retrying a failed list/watch (default 200 ms); doubles per failure. */
  retryBaseDelayMs?: number;
  /** Retry delay ceiling (default 30 s). */
  retryMaxDelayMs?: number;
  /**
   * Keep only what identifies an object and drives its lifecycle (see client.ts metadataOf): for controllers
   * that decide from metadata and read whole objects live, so that a cache over every kind does not hold every
   * object.
   */
  metadataOnly?: boolean;
}

export class Informer {
  readonly kind: KindDeclaration;
  readonly cache = new Cache();
  private readonly client: ObjectClient;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly opts: InformerOptions;
  private handlers: ResourceEventHandler[] = [];
  private started = false;
  private stopped = false;
  private synced = false;
  private syncWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private lastResourceVersion = '';
  /** Bumped whenever a list/watch session is abandoned, so late callbacks of old sessions are ignored. */
  private session = 0;
  private watch?: ObjectWatch;
  /** Consecutive list/watch failures since the last healthy watch event; drives the retry backoff. */
  private failures = 0;
  private retryTimer?: Timer;
  private resyncTimer?: Timer;
  private watchStartedAt = 0;

  constructor(opts: InformerOptions) {
    this.opts = opts;
    this.kind = opts.kind;
    this.client = opts.client;
    this.clock = opts.clock ?? systemClock;
    this.log = childLogger(opts.logger ?? silentLogger, { informer: `${opts.kind.plural}${opts.kind.group ? '.' + opts.kind.group : ''}` });
  }

  /** Adds handlers; once synced, they first get onAdd for every cached object. Returns a remover. */
  addHandler(h: ResourceEventHandler): () => void {
    this.handlers.push(h);
    if (this.synced) for (const obj of this.cache.list()) this.call(h, 'onAdd', obj);
    return () => {
      this.handlers = this.handlers.filter((x) => x !== h);
    };
  }

  addIndex(name: string, fn: IndexFunc): void {
    this.cache.addIndex(name, fn);
  }

  get(namespace: string | undefined, name: string): StoredObject | undefined {
    return this.cache.getByName(namespace, name);
  }

  list(namespace?: string): StoredObject[] {
    return this.cache.list(namespace);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once the first list has been applied; rejects if the informer is stopped before. */
  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    if (this.stopped) return Promise.reject(new Error(`informer for ${this.kind.plural} stopped before it synced`));
    return new Promise((resolve, reject) => this.syncWaiters.push({ resolve, reject }));
  }

  /** The resourceVersion the cache is current to. */
  lastSyncResourceVersion(): string {
    return this.lastResourceVersion;
  }

  isStarted(): boolean {
    return this.started && !this.stopped;
  }

  /** Starts listing and watching. Idempotent. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    void this.relist();
    this.armResync();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.session++;
    this.watch?.stop();
    this.watch = undefined;
    if (this.retryTimer) this.clock.clearTimeout(this.retryTimer);
    if (this.resyncTimer) this.clock.clearTimeout(this.resyncTimer);
    const err = new Error(`informer for ${this.kind.plural} stopped before it synced`);
    for (const w of this.syncWaiters.splice(0)) w.reject(err);
  }

  private async relist(): Promise<void> {
    const session = ++this.session;
    this.watch?.stop();
    this.watch = undefined;
    let items: StoredObject[];
    let resourceVersion: string;
    try {
      ({ items, resourceVersion } = await this.listAll());
    } catch (err) {
      if (session !== this.session || this.stopped) return;
      this.log.warn({ err }, 'list failed');
      this.retry(true);
      return;
    }
    if (session !== this.session || this.stopped) return;
    this.replace(items);
    this.lastResourceVersion = resourceVersion;
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w.resolve();
    }
    this.startWatch(session);
  }

  private async listAll(): Promise<{ items: StoredObject[]; resourceVersion: string }> {
    const { namespace, labelSelector, fieldSelector } = this.opts;
    const items: StoredObject[] = [];
    let resourceVersion = '';
    let cont: string | undefined;
    for (;;) {
      const page = await this.client.list(this.kind, {
        namespace,
        labelSelector,
        fieldSelector,
        limit: this.opts.pageSize ?? 500,
        continue: cont,
        // Frozen shared objects go into the cache as they are (see own()); a copy would only be frozen again.
        shared: true,
        ...(this.opts.metadataOnly ? { metadataOnly: true } : {}),
      });
      // Every page of a paginated list is read at the first page's revision.
      if (!resourceVersion) resourceVersion = page.resourceVersion;
      // Owned page by page: a metadata-only informer keeps each page's projections, not the whole list decoded.
      for (const item of page.items) items.push(this.own(item));
      if (!page.continue) return { items, resourceVersion };
      cont = page.continue;
      // A turn of the event loop per page, so that a long list does not hold up requests.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private startWatch(session: number): void {
    this.watchStartedAt = this.clock.now();
    const { namespace, labelSelector, fieldSelector } = this.opts;
    this.client
      .watch(
        this.kind,
        {
          namespace,
          labelSelector,
          fieldSelector,
          resourceVersion: this.lastResourceVersion,
          allowWatchBookmarks: true,
          // The cache keeps what it is given: the registry may hand the same objects to its other readers.
          shared: true,
          ...(this.opts.metadataOnly ? { metadataOnly: true } : {}),
        },
        (e) => this.onWatchEvent(session, e),
      )
      .then((w) => {
        if (session !== this.session || this.stopped) w.stop();
        else this.watch = w;
      })
      .catch((err: unknown) => {
        if (session !== this.session || this.stopped) return;
        this.log.warn({ err }, 'watch failed; relisting');
        this.retry(isExpired(err) ? false : true);
      });
  }

  private onWatchEvent(session: number, e: ObjectWatchEvent): void {
    if (session !== this.session || this.stopped) return;
    switch (e.type) {
      case 'BOOKMARK': {
        const rv = e.object.metadata.resourceVersion;
        if (rv) this.lastResourceVersion = rv;
        this.failures = 0;
        return;
      }
      case 'ERROR': {
        // An ERROR ends the watch. After 410 Expired the revision we hold is compacted away, so only a
        // new list can tell what changed; relisting is also correct for any other error.
        this.session++;
        this.watch?.stop();
        this.watch = undefined;
        // A watch that ran for a while was healthy even if the kind is quiet and no event reset the count.
        if (this.clock.now() - this.watchStartedAt >= HEALTHY_WATCH_MS) this.failures = 0;
        const expired = isExpiredStatus(e.object);
        this.log[expired ? 'info' : 'warn']({ status: e.object }, 'watch ended; relisting');
        this.retry(!expired);
        return;
      }
      case 'ADDED':
      case 'MODIFIED': {
        this.failures = 0;
        const obj = this.own(e.object as StoredObject);
        this.lastResourceVersion = obj.metadata.resourceVersion;
        const old = this.cache.set(obj);
        this.notifyUpsert(old, obj);
        return;
      }
      case 'DELETED': {
        this.failures = 0;
        const obj = this.own(e.object as StoredObject);
        this.lastResourceVersion = obj.metadata.resourceVersion;
        this.cache.delete(objectKey(obj));
        this.notify('onDelete', obj);
        return;
      }
    }
  }

  /** Applies a full list (owned): adds, updates (resourceVersion changed) and deletes (absent) against the cache. */
  private replace(items: StoredObject[]): void {
    const seen = new Set<string>();
    for (const obj of items) {
      const key = objectKey(obj);
      seen.add(key);
      const old = this.cache.get(key);
      if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) continue;
      this.cache.set(obj);
      this.notifyUpsert(old, obj);
    }
    for (const key of this.cache.keys()) {
      if (seen.has(key)) continue;
      const old = this.cache.delete(key)!;
      this.notify('onDelete', old);
    }
  }

  private notifyUpsert(old: StoredObject | undefined, obj: StoredObject): void {
    if (!old) this.notify('onAdd', obj);
    else if (old.metadata.uid !== obj.metadata.uid) {
      // Same name, new object: the old one is gone (seen when a relist spans a delete and a re-create).
      this.notify('onDelete', old);
      this.notify('onAdd', obj);
    } else this.notify('onUpdate', old, obj);
  }

  /**
   * Takes ownership of an object from the client. Objects are frozen in the cache; a client that
   * hands out frozen objects is trusted not to share them mutably, anything else is copied first so that
   * freezing never reaches an object the client or its caller still holds.
   */
  private own(obj: StoredObject): StoredObject {
    const mine = Object.isFrozen(obj) ? obj : structuredClone(obj);
    // The registry hands out shared projections; whole objects (from a client that ignores metadataOnly) are projected here.
    return this.opts.metadataOnly && !isMetadataOnly(mine) ? metadataOf(mine) : mine;
  }

  /**
   * Schedules a relist. The first retry after a healthy period after a watch end is immediate; failed
   * lists and repeated failures back off exponentially.
   */
  private retry(failed: boolean): void {
    if (this.stopped) return;
    const attempt = this.failures++;
    const base = this.opts.retryBaseDelayMs ?? 200;
    const max = this.opts.retryMaxDelayMs ?? 30_000;
    const delay = attempt === 0 && !failed ? 0 : Math.min(max, base * 2 ** (failed ? attempt : attempt - 1));
    if (this.retryTimer) this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (delay === 0) {
      void this.relist();
      return;
    }
    this.session++; // nothing of the abandoned session may land while we wait
    this.log.debug({ delayMs: delay, attempt }, 'relist scheduled');
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      void this.relist();
    }, delay);
  }

  private armResync(): void {
    const every = this.opts.resyncIntervalMs ?? 0;
    if (!(every > 0) || this.stopped) return;
    this.resyncTimer = this.clock.setTimeout(() => {
      if (this.synced) for (const obj of this.cache.list()) this.notify('onUpdate', obj, obj);
      this.armResync();
    }, every);
  }

  private notify(what: 'onAdd' | 'onDelete', obj: StoredObject): void;
  private notify(what: 'onUpdate', old: StoredObject, obj: StoredObject): void;
  private notify(what: keyof ResourceEventHandler, a: StoredObject, b?: StoredObject): void {
    for (const h of this.handlers) this.call(h, what, a, b);
  }

  private call(h: ResourceEventHandler, what: keyof ResourceEventHandler, a: StoredObject, b?: StoredObject): void {
    try {
      if (what === 'onUpdate') h.onUpdate?.(a, b!);
      else h[what]?.(a);
    } catch (err) {
      this.log.error({ err, handler: what, key: objectKey(a) }, 'event handler threw');
    }
  }
}

const HEALTHY_WATCH_MS = 10_000;

function isExpiredStatus(status: KubeObject): boolean {
  return status.code === 410 || status.reason === 'Expired' || status.reason === 'Gone';
}

function isExpired(err: unknown): boolean {
  const e = err as { code?: unknown; reason?: unknown } | undefined;
  return e?.code === 410 || e?.reason === 'Expired' || e?.reason === 'Gone';
}

/**
 * Shared informers: one per kind for everyone who asks, so controllers watching the same kind share
 * one list/watch and one cache.
 */
export class InformerFactory {
  /** `group/Kind` for whole objects, `meta:group/Kind` for metadata-only ones. */
  private readonly informers = new Map<string, Informer>();
  private started = false;
  private stopped = false;

  constructor(private readonly opts: Omit<InformerOptions, 'kind' | 'namespace' | 'labelSelector' | 'fieldSelector'>) {}

  /** The shared informer of `kind`; started at once if the factory already is. */
  informerFor(kind: KindDeclaration): Informer {
    return this.shared(`${kind.group}/${kind.kind}`, kind, false);
  }

  /**
   * A shared informer whose cache holds only `metadataOf` each object — or the whole-object informer of the kind
   * when this factory already has one (a superset, and no second watch). Callers read only `apiVersion`, `kind`
   * and that metadata from its objects.
   */
  metadataInformerFor(kind: KindDeclaration): Informer {
    const id = `${kind.group}/${kind.kind}`;
    return this.informers.get(id) ?? this.shared(`meta:${id}`, kind, true);
  }

  private shared(id: string, kind: KindDeclaration, metadataOnly: boolean): Informer {
    let inf = this.informers.get(id);
    if (!inf) {
      inf = new Informer({ ...this.opts, kind, ...(metadataOnly ? { metadataOnly } : {}) });
      this.informers.set(id, inf);
      if (this.started && !this.stopped) inf.start();
    }
    return inf;
  }

  all(): Informer[] {
    return [...this.informers.values()];
  }

  start(): void {
    if (this.stopped) return;
    this.started = true;
    for (const inf of this.informers.values()) inf.start();
  }

  stop(): void {
    this.stopped = true;
    for (const inf of this.informers.values()) inf.stop();
  }

  waitForSync(): Promise<void> {
    return Promise.all(this.all().map((i) => i.waitForSync())).then(() => undefined);
  }
}

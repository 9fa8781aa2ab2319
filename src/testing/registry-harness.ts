// The real API machinery for unit tests of the runtime and the controllers: the `Registry` the server uses,
// over a SQLite store in memory, with every kind metalplane serves (plus two schema-less test kinds). Tests see
// exactly the semantics kubectl sees — generation, status subresource, finalizers, namespace rules, watch — so
// there is no second implementation to drift from the first.
//
// What a test needs that a healthy server does not do is added around the registry, at the client boundary,
// without touching the semantics: call counters, injected errors, a replica cut off the network, watch streams
// that lag, lose events or expire (410). Close the harness after each test (pass the test context to
// `openRegistryHarness` and it is done for you), so that no store or watch outlives the test.
import { Type } from '@sinclair/typebox';
import { Registry } from '../apiserver/registry.js';
import { allKinds, KindRegistry } from '../kinds/index.js';
import { FreeForm } from '../kinds/common.js';
import type { KindDeclaration, KubeObject, StoredObject } from '../kinds/types.js';
import { ApiError } from '../lib/errors.js';
import { FakeClock } from '../lib/clock.js';
import type {
  DeleteOptions,
  ListQuery,
  ObjectClient,
  ObjectList,
  ObjectWatch,
  ObjectWatchEvent,
  ObjectWatchQuery,
  TxWrite,
  WriteOptions,
} from '../runtime/client.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/sqlite-store.js';

export { eventually, settle } from './wait.js';

function testKind(kind: string, plural: string, scope: KindDeclaration['scope']): KindDeclaration {
  return {
    group: 'test.metalplane.dev',
    version: 'v1',
    kind,
    plural,
    singular: kind.toLowerCase(),
    scope,
    description: `${kind}: a kind for tests, with a status subresource and a spec and status of any shape.`,
    schema: Type.Object({
      spec: Type.Optional(FreeForm('Anything.')),
      status: Type.Optional(FreeForm('Anything.')),
    }),
    statusSubresource: true,
  };
}

/**
 * Kinds that only tests serve: a namespaced and a cluster-scoped custom kind with a status subresource and no
 * rules of their own, for tests of generic behaviour (owners, namespaces, informers) that a real kind's
 * validation, defaults or finalizers would get in the way of (a real Device, for one, is created with the
 * device controller's finalizer).
 */
export const testKinds = {
  Widget: testKind('Widget', 'widgets', 'Namespaced'),
  ClusterWidget: testKind('ClusterWidget', 'clusterwidgets', 'Cluster'),
};

/** Every kind a harness serves: metalplane's own, then the test kinds. */
export const harnessKinds: KindDeclaration[] = [...allKinds, ...Object.values(testKinds)];

/** The client verbs the harness counts and can make fail. */
export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'updateStatus' | 'mergePatch' | 'delete' | 'transact';

interface TrackedWatch {
  kind: KindDeclaration;
  onEvent: (e: ObjectWatchEvent) => void;
  /** Events held back while the kind's watches lag (holdWatchEvents). */
  pending: ObjectWatchEvent[];
  inner?: ObjectWatch;
  ended: boolean;
}

const expired = (message: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Status',
  metadata: {},
  status: 'Failure',
  message,
  reason: 'Expired',
  code: 410,
});

/**
 * An ObjectClient that forwards every call to the real registry, counting calls and applying the faults a
 * test asked for. It keeps no objects of its own.
 */
export class HarnessClient implements ObjectClient {
  /** How often each verb was called, for assertions. */
  readonly calls: Record<Verb, number> = { get: 0, list: 0, watch: 0, create: 0, update: 0, updateStatus: 0, mergePatch: 0, delete: 0, transact: 0 };
  /** While true, events of open watches are lost, as on a broken stream (writes still happen). */
  dropWatchEvents = false;
  private readonly watches = new Set<TrackedWatch>();
  private readonly held = new Set<KindDeclaration>();
  private readonly faults: Array<{ verb: Verb | '*'; error: Error; times: number }> = [];
  private closed = false;

  constructor(
    readonly registry: Registry,
    private readonly store: SqliteStore,
  ) {}

  // ---- test hooks ----

  /** The store's current revision. */
  revision(): Promise<number> {
    return this.store.currentRevision();
  }

  /** Compacts the store's history up to now: lists and watches from older revisions get 410 Expired. */
  async compact(): Promise<void> {
    await this.store.compact(await this.store.currentRevision());
  }

  /** Ends every open watch with an ERROR 410 Expired, as a watch that fell behind compaction is ended. */
  expireWatches(): void {
    for (const w of [...this.watches]) {
      this.end(w);
      // Asynchronous, as the error would come off a stream.
      queueMicrotask(() => w.onEvent({ type: 'ERROR', object: expired('the watch fell behind compaction') }));
    }
  }

  /**
   * Holds back watch events of `kind` (queued, not lost) until the returned function is called: a watch that
   * lags behind the others, as separate informers may.
   */
  holdWatchEvents(kind: KindDeclaration): () => void {
    this.held.add(kind);
    return () => {
      this.held.delete(kind);
      for (const w of this.watches) {
        if (w.kind !== kind) continue;
        const events = w.pending.splice(0);
        for (const e of events) if (!w.ended) this.forward(w, e);
      }
    };
  }

  /** Watches opened through this client and not ended. */
  openWatches(): number {
    return this.watches.size;
  }

  /** The next `times` calls of `verb` (or of any verb with '*') fail with `error`. */
  failNext(verb: Verb | '*', error: Error, times = 1): void {
    this.faults.push({ verb, error, times });
  }

  /** A view of this client whose calls fail with 503 while `isDown()` is true: a replica cut off the network. */
  view(isDown: () => boolean): ObjectClient {
    const guard =
      <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
      async (...a: A): Promise<R> => {
        if (isDown()) throw new ApiError(503, 'ServiceUnavailable', 'connection refused (test partition)');
        return fn(...a);
      };
    return {
      kind: (g, k) => this.kind(g, k),
      get: guard((k, ns, n) => this.get(k, ns, n)),
      list: guard((k, q) => this.list(k, q)),
      watch: guard((k, q, cb) => this.watch(k, q, cb)),
      create: guard((k, o, op) => this.create(k, o, op)),
      update: guard((k, o, op) => this.update(k, o, op)),
      updateStatus: guard((k, o, op) => this.updateStatus(k, o, op)),
      mergePatch: guard((k, ns, n, p, op) => this.mergePatch(k, ns, n, p, op)),
      delete: guard((k, ns, n, op) => this.delete(k, ns, n, op)),
      transact: guard((w, op) => this.transact(w, op)),
    };
  }

  /** Every object of a kind, optionally in one namespace, read from the registry (not counted as a call). */
  async all(kind: KindDeclaration, namespace?: string): Promise<StoredObject[]> {
    return (await this.registry.list(kind, { namespace })).items;
  }

  /** Ends every watch; later events are dropped. */
  close(): void {
    this.closed = true;
    for (const w of [...this.watches]) this.end(w);
  }

  // ---- ObjectClient ----

  kind(group: string, kindOrPlural: string): KindDeclaration {
    return this.registry.kind(group, kindOrPlural);
  }

  async get(kind: KindDeclaration, namespace: string | undefined, name: string): Promise<StoredObject | undefined> {
    this.enter('get');
    return this.registry.get(kind, namespace, name);
  }

  async list(kind: KindDeclaration, query?: ListQuery): Promise<ObjectList> {
    this.enter('list');
    return this.registry.list(kind, query);
  }

  async watch(kind: KindDeclaration, query: ObjectWatchQuery, onEvent: (e: ObjectWatchEvent) => void): Promise<ObjectWatch> {
    this.enter('watch');
    const w: TrackedWatch = { kind, onEvent, pending: [], ended: false };
    // Track before asking: the registry delivers initial events (and a 410) before it returns the handle.
    this.watches.add(w);
    try {
      w.inner = await this.registry.watch(kind, query, (e) => this.forward(w, e));
    } catch (err) {
      this.watches.delete(w);
      throw err;
    }
    if (w.ended) w.inner.stop();
    return { stop: () => this.end(w) };
  }

  async create(kind: KindDeclaration, obj: KubeObject, opts?: WriteOptions): Promise<StoredObject> {
    this.enter('create');
    return this.registry.create(kind, obj, opts);
  }

  async update(kind: KindDeclaration, obj: KubeObject, opts?: WriteOptions): Promise<StoredObject> {
    this.enter('update');
    return this.registry.update(kind, obj, opts);
  }

  async updateStatus(kind: KindDeclaration, obj: KubeObject, opts?: WriteOptions): Promise<StoredObject> {
    this.enter('updateStatus');
    return this.registry.updateStatus(kind, obj, opts);
  }

  async mergePatch(
    kind: KindDeclaration,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    opts?: WriteOptions,
  ): Promise<StoredObject> {
    this.enter('mergePatch');
    return this.registry.mergePatch(kind, namespace, name, patch, opts);
  }

  async delete(kind: KindDeclaration, namespace: string | undefined, name: string, opts?: DeleteOptions): Promise<StoredObject> {
    this.enter('delete');
    return this.registry.delete(kind, namespace, name, opts);
  }

  async transact(writes: TxWrite[], opts?: WriteOptions): Promise<Array<StoredObject | undefined>> {
    this.enter('transact');
    return this.registry.transact(writes, opts);
  }

  // ---- internals ----

  private enter(verb: Verb): void {
    this.calls[verb]++;
    const i = this.faults.findIndex((f) => f.verb === verb || f.verb === '*');
    if (i < 0) return;
    const f = this.faults[i]!;
    if (--f.times <= 0) this.faults.splice(i, 1);
    throw f.error;
  }

  private forward(w: TrackedWatch, e: ObjectWatchEvent): void {
    if (w.ended || this.closed) return;
    if (this.dropWatchEvents && e.type !== 'ERROR') return;
    if (this.held.has(w.kind)) {
      w.pending.push(e);
      return;
    }
    // An ERROR ends the watch (the registry has already stopped it).
    if (e.type === 'ERROR') this.end(w);
    w.onEvent(e);
  }

  private end(w: TrackedWatch): void {
    w.ended = true;
    w.pending.length = 0;
    this.watches.delete(w);
    w.inner?.stop();
  }
}

export interface RegistryHarness {
  /** The clock of the registry (timestamps) and for the test's controllers. */
  clock: FakeClock;
  store: SqliteStore;
  registry: Registry;
  /** What the code under test should be given: the registry, counted and with fault hooks. */
  client: HarnessClient;
  /** The kinds served (`harnessKinds`, or those asked for). */
  kinds: KindDeclaration[];
  /** Ends watches, stops the registry's mirror and closes the store. Idempotent. */
  close(): Promise<void>;
}

export interface RegistryHarnessOptions {
  clock?: FakeClock;
  /** The kinds to serve (default `harnessKinds`). Must include core v1 Namespace for namespaced kinds. */
  kinds?: KindDeclaration[];
  /** If given (a node:test context), the harness is closed after the test, pass or fail. */
  test?: { after(fn: () => unknown): void };
}

/**
 * A registry over a fresh in-memory store, started as the server starts it (with its in-memory mirror of the
 * current objects).
 */
export async function openRegistryHarness(opts: RegistryHarnessOptions = {}): Promise<RegistryHarness> {
  const clock = opts.clock ?? new FakeClock();
  const kinds = opts.kinds ?? harnessKinds;
  const store = openSqliteStore(':memory:', { clock });
  const registry = new Registry({ store, kinds: new KindRegistry(kinds), clock });
  await registry.start();
  const client = new HarnessClient(registry, store);
  let closing: Promise<void> | undefined;
  const harness: RegistryHarness = {
    clock,
    store,
    registry,
    client,
    kinds,
    close: () =>
      (closing ??= (async () => {
        client.close();
        registry.close();
        await store.close();
      })()),
  };
  opts.test?.after(() => harness.close());
  return harness;
}

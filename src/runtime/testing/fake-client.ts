// An in-memory ObjectClient for unit tests of the runtime and the controllers. It keeps the semantics
// controllers depend on close to the real registry: a global revision per write, optimistic concurrency,
// consistent paginated lists at a revision, watch from a revision (ordered, asynchronous, 410 Expired below
// the compacted revision), generation bumps on spec changes, status subresource, finalizers and
// deletionTimestamp (delete with finalizers marks; removing the last finalizer deletes), propagation
// finalizers (foregroundDeletion / orphan), and Namespace lifecycle (spec.finalizers ["kubernetes"],
// Terminating, no new content in a terminating namespace). Test hooks can drop watch events, expire
// watches, compact, inject errors and take a replica off the network.
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { Type } from '@sinclair/typebox';
import { ApiError } from '../../lib/errors.js';
import { FakeClock, type Clock } from '../../lib/clock.js';
import { apiVersionOf, type KindDeclaration, type KubeObject, type StoredObject } from '../../kinds/types.js';
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
} from '../client.js';
import { formatTime } from '../conditions.js';

const anySchema = Type.Object({}, { additionalProperties: true });

function declare(group: string, version: string, kind: string, plural: string, scope: 'Namespaced' | 'Cluster', statusSubresource = false): KindDeclaration {
  return { group, version, kind, plural, singular: kind.toLowerCase(), scope, description: `test ${kind}`, schema: anySchema, statusSubresource };
}

/** Kinds for tests: the core ones the controllers care about plus a namespaced and a cluster-scoped custom kind. */
export const testKinds = {
  Namespace: declare('', 'v1', 'Namespace', 'namespaces', 'Cluster', true),
  ConfigMap: declare('', 'v1', 'ConfigMap', 'configmaps', 'Namespaced'),
  Event: declare('', 'v1', 'Event', 'events', 'Namespaced'),
  Lease: declare('coordination.k8s.io', 'v1', 'Lease', 'leases', 'Namespaced'),
  Hardware: declare('metalplane.dev', 'v1alpha1', 'Hardware', 'hardware', 'Cluster', true),
  Device: declare('metalplane.dev', 'v1alpha1', 'Device', 'devices', 'Namespaced', true),
};

export const allTestKinds: KindDeclaration[] = Object.values(testKinds);

type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'updateStatus' | 'mergePatch' | 'delete';

interface LogEntry {
  rev: number;
  kindId: string;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  key: string;
  obj: StoredObject;
  prev?: StoredObject;
}

interface Watcher {
  kindId: string;
  query: ObjectWatchQuery;
  onEvent: (e: ObjectWatchEvent) => void;
  pending: ObjectWatchEvent[];
  scheduled: boolean;
  stopped: boolean;
}

const kindId = (k: { group: string; kind: string }): string => `${k.group}/${k.kind}`;
const keyOf = (ns: string | undefined, name: string): string => (ns ? `${ns}/${name}` : name);

export class FakeObjectClient implements ObjectClient {
  readonly clock: Clock;
  private readonly kinds: KindDeclaration[];
  private rev = 0;
  private compacted = 0;
  private readonly log: LogEntry[] = [];
  private readonly objects = new Map<string, Map<string, StoredObject>>();
  private readonly watchers = new Set<Watcher>();
  private readonly held = new Set<string>();
  private readonly faults: Array<{ verb: Verb | '*'; error: Error; times: number }> = [];
  /** How often each verb was called, for assertions. */
  readonly calls: Record<Verb, number> = { get: 0, list: 0, watch: 0, create: 0, update: 0, updateStatus: 0, mergePatch: 0, delete: 0 };
  /** While true, writes are not delivered to open watches (the events are lost, as on a broken stream). */
  dropWatchEvents = false;

  constructor(kinds: KindDeclaration[] = allTestKinds, opts: { clock?: Clock } = {}) {
    this.kinds = kinds;
    this.clock = opts.clock ?? new FakeClock();
    for (const k of kinds) this.objects.set(kindId(k), new Map());
  }

  // ---- test hooks ----

  /** The current global revision. */
  revision(): number {
    return this.rev;
  }

  /** Forgets history: lists and watches from older revisions get 410 Expired. */
  compact(): void {
    this.compacted = this.rev;
  }

  /** Ends every open watch with an ERROR 410 Expired, as a store that fell behind compaction does. */
  expireWatches(): void {
    for (const w of [...this.watchers]) {
      this.deliver(w, { type: 'ERROR', object: expiredStatus('the watch fell behind compaction') });
      this.watchers.delete(w);
    }
  }

  /** Sends a BOOKMARK with the current revision to watches that allow them. */
  bookmark(): void {
    for (const w of this.watchers) {
      if (!w.query.allowWatchBookmarks) continue;
      this.deliver(w, { type: 'BOOKMARK', object: { apiVersion: 'v1', kind: 'Status', metadata: { resourceVersion: String(this.rev) } } });
    }
  }

  /**
   * Holds back watch events of `kind` (they are queued, not lost) until the returned function is called:
   * a watch that lags behind the others, as separate informers may.
   */
  holdWatchEvents(kind: KindDeclaration): () => void {
    const id = kindId(kind);
    this.held.add(id);
    return () => {
      this.held.delete(id);
      for (const w of this.watchers) if (w.kindId === id && w.pending.length) this.flushSoon(w);
    };
  }

  openWatches(): number {
    return this.watchers.size;
  }

  /** The next `times` calls of `verb` (or of any verb with '*') fail with `error`. */
  failNext(verb: Verb | '*', error: Error, times = 1): void {
    this.faults.push({ verb, error, times });
  }

  /** A view of this client whose calls fail with 503 while `isDown()` is true: a replica cut off the network. */
  view(isDown: () => boolean): ObjectClient {
    const guard = <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
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

  /** Every live object of a kind (copies), optionally in one namespace. */
  all(kind: KindDeclaration, namespace?: string): StoredObject[] {
    return [...this.store(kind).values()]
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .map((o) => structuredClone(o));
  }

  // ---- ObjectClient ----

  kind(group: string, kindOrPlural: string): KindDeclaration {
    const k = this.kinds.find((d) => d.group === group && (d.kind === kindOrPlural || d.plural === kindOrPlural));
    if (!k) throw ApiError.notFound('kind', kindOrPlural, group);
    return k;
  }

  async get(kind: KindDeclaration, namespace: string | undefined, name: string): Promise<StoredObject | undefined> {
    this.enter('get');
    const o = this.store(kind).get(keyOf(this.nsFor(kind, namespace), name));
    return o && structuredClone(o);
  }

  async list(kind: KindDeclaration, query: ListQuery = {}): Promise<ObjectList> {
    this.enter('list');
    let at = this.rev;
    let after = '';
    if (query.continue) {
      const tok = JSON.parse(Buffer.from(query.continue, 'base64url').toString()) as { rev: number; after: string };
      if (tok.rev < this.compacted) throw ApiError.gone('the provided continue parameter is too old; restart the list without it');
      at = tok.rev;
      after = tok.after;
    }
    const state = at === this.rev ? this.store(kind) : this.stateAt(kind, at);
    const matching = [...state.entries()]
      .filter(([key, o]) => key > after && this.matches(o, query))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const limit = query.limit && query.limit > 0 ? query.limit : matching.length;
    const page = matching.slice(0, limit);
    const more = matching.length > page.length;
    return {
      items: page.map(([, o]) => structuredClone(o)),
      resourceVersion: String(at),
      ...(more
        ? {
            continue: Buffer.from(JSON.stringify({ rev: at, after: page[page.length - 1]![0] })).toString('base64url'),
            remainingItemCount: matching.length - page.length,
          }
        : {}),
    };
  }

  async watch(kind: KindDeclaration, query: ObjectWatchQuery, onEvent: (e: ObjectWatchEvent) => void): Promise<ObjectWatch> {
    this.enter('watch');
    const w: Watcher = { kindId: kindId(kind), query, onEvent, pending: [], scheduled: false, stopped: false };
    const from = query.resourceVersion ? Number(query.resourceVersion) : this.rev;
    if (from < this.compacted) {
      this.deliver(w, { type: 'ERROR', object: expiredStatus(`too old resource version: ${from} (${this.compacted})`) });
      return { stop: () => void (w.stopped = true) };
    }
    for (const e of this.log) if (e.rev > from && e.kindId === w.kindId) this.offer(w, e);
    this.watchers.add(w);
    return {
      stop: () => {
        w.stopped = true;
        this.watchers.delete(w);
      },
    };
  }

  async create(kind: KindDeclaration, obj: KubeObject, _opts?: WriteOptions): Promise<StoredObject> {
    this.enter('create');
    const o = structuredClone(obj) as StoredObject;
    o.apiVersion = apiVersionOf(kind);
    o.kind = kind.kind;
    const meta = o.metadata;
    if (!meta.name && meta.generateName) meta.name = meta.generateName + randomUUID().slice(0, 5);
    if (!meta.name) throw ApiError.invalid(kind.kind, '', [{ field: 'metadata.name', reason: 'FieldValueRequired', message: 'Required value: name or generateName is required' }]);
    const ns = this.nsFor(kind, meta.namespace);
    if (kind.scope === 'Namespaced') {
      if (!ns) throw ApiError.badRequest(`${kind.plural} "${meta.name}": the namespace of the object must be set`);
      meta.namespace = ns;
      this.checkNamespaceOpen(ns);
    } else delete meta.namespace;
    const key = keyOf(ns, meta.name);
    if (this.store(kind).has(key)) throw ApiError.alreadyExists(kind.plural, meta.name, kind.group);
    meta.uid = randomUUID();
    meta.creationTimestamp = formatTime(this.clock.now());
    meta.generation = 1;
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    if (kind.statusSubresource) delete o.status;
    kind.default?.(o);
    if (isNamespace(kind)) {
      const spec = (o.spec ?? {}) as { finalizers?: string[] };
      o.spec = { ...spec, finalizers: spec.finalizers ?? ['kubernetes'] };
      o.status = { phase: 'Active' };
    }
    return this.write(kind, 'ADDED', key, o);
  }

  async update(kind: KindDeclaration, obj: KubeObject, _opts?: WriteOptions): Promise<StoredObject> {
    this.enter('update');
    return this.doUpdate(kind, obj, false);
  }

  async updateStatus(kind: KindDeclaration, obj: KubeObject, _opts?: WriteOptions): Promise<StoredObject> {
    this.enter('updateStatus');
    if (!kind.statusSubresource) throw ApiError.notFound(`${kind.plural}/status`, obj.metadata.name ?? '', kind.group);
    return this.doUpdate(kind, obj, true);
  }

  async mergePatch(
    kind: KindDeclaration,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    opts: WriteOptions = {},
  ): Promise<StoredObject> {
    this.enter('mergePatch');
    const cur = this.mustGet(kind, namespace, name);
    const merged = applyMergePatch(structuredClone(cur), patch) as KubeObject;
    return this.doUpdate(kind, merged, opts.subresource === 'status');
  }

  /** Not modelled: multi-object atomicity is the store's job, so tests that need it use the real Registry. */
  async transact(_writes: TxWrite[], _opts?: WriteOptions): Promise<Array<StoredObject | undefined>> {
    throw new Error('FakeObjectClient does not implement transact; test with the real Registry over an in-memory store');
  }

  async delete(kind: KindDeclaration, namespace: string | undefined, name: string, opts: DeleteOptions = {}): Promise<StoredObject> {
    this.enter('delete');
    const cur = this.mustGet(kind, namespace, name);
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== cur.metadata.uid) throw conflict(kind, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata.uid}`);
    if (pre?.resourceVersion && pre.resourceVersion !== cur.metadata.resourceVersion) throw conflict(kind, name, 'Precondition failed: resourceVersion mismatch');
    const next = structuredClone(cur);
    let fins = [...(next.metadata.finalizers ?? [])];
    const policy = opts.propagationPolicy;
    if (policy === 'Foreground') fins = [...fins.filter((f) => f !== 'orphan' && f !== 'foregroundDeletion'), 'foregroundDeletion'];
    else if (policy === 'Orphan') fins = [...fins.filter((f) => f !== 'orphan' && f !== 'foregroundDeletion'), 'orphan'];
    else if (policy === 'Background') fins = fins.filter((f) => f !== 'orphan' && f !== 'foregroundDeletion');
    const specFins = isNamespace(kind) ? (((next.spec ?? {}) as { finalizers?: string[] }).finalizers ?? []) : [];
    const key = keyOf(cur.metadata.namespace, cur.metadata.name);
    if (fins.length === 0 && specFins.length === 0) {
      return this.write(kind, 'DELETED', key, next);
    }
    if (fins.length) next.metadata.finalizers = fins;
    else delete next.metadata.finalizers;
    if (!next.metadata.deletionTimestamp) {
      next.metadata.deletionTimestamp = formatTime(this.clock.now());
      next.metadata.deletionGracePeriodSeconds = 0;
      next.metadata.generation = (next.metadata.generation ?? 1) + 1;
      if (isNamespace(kind)) next.status = { ...((next.status ?? {}) as object), phase: 'Terminating' };
    }
    if (isDeepStrictEqual(next, cur)) return structuredClone(cur);
    return this.write(kind, 'MODIFIED', key, next);
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

  private store(kind: KindDeclaration): Map<string, StoredObject> {
    const m = this.objects.get(kindId(kind));
    if (!m) throw ApiError.notFound('kind', kind.kind, kind.group);
    return m;
  }

  private nsFor(kind: KindDeclaration, namespace: string | undefined): string | undefined {
    return kind.scope === 'Namespaced' ? namespace || undefined : undefined;
  }

  private mustGet(kind: KindDeclaration, namespace: string | undefined, name: string): StoredObject {
    const o = this.store(kind).get(keyOf(this.nsFor(kind, namespace), name));
    if (!o) throw ApiError.notFound(kind.plural, name, kind.group);
    return o;
  }

  private checkNamespaceOpen(ns: string): void {
    const nsKind = this.kinds.find(isNamespace);
    if (!nsKind) return;
    const o = this.store(nsKind).get(ns);
    if (!o) throw ApiError.notFound('namespaces', ns);
    if (o.metadata.deletionTimestamp) throw ApiError.forbidden(`unable to create new content in namespace ${ns} because it is being terminated`);
  }

  private doUpdate(kind: KindDeclaration, obj: KubeObject, statusOnly: boolean): StoredObject {
    const name = obj.metadata.name ?? '';
    const cur = this.mustGet(kind, obj.metadata.namespace, name);
    const rv = obj.metadata.resourceVersion;
    if (rv && rv !== cur.metadata.resourceVersion) {
      throw conflict(kind, name, 'the object has been modified; please apply your changes to the latest version and try again');
    }
    if (obj.metadata.uid && obj.metadata.uid !== cur.metadata.uid) throw conflict(kind, name, `Precondition failed: UID in precondition: ${obj.metadata.uid}, UID in object meta: ${cur.metadata.uid}`);
    let next: StoredObject;
    if (statusOnly) {
      next = structuredClone(cur);
      if (obj.status === undefined) delete next.status;
      else next.status = structuredClone(obj.status);
    } else {
      next = structuredClone(obj) as StoredObject;
      const m = cur.metadata;
      Object.assign(next.metadata, {
        name: m.name,
        uid: m.uid,
        creationTimestamp: m.creationTimestamp,
        generation: m.generation,
        ...(m.namespace ? { namespace: m.namespace } : {}),
      });
      if (m.deletionTimestamp) {
        next.metadata.deletionTimestamp = m.deletionTimestamp;
        next.metadata.deletionGracePeriodSeconds = m.deletionGracePeriodSeconds;
        const added = (next.metadata.finalizers ?? []).filter((f) => !(m.finalizers ?? []).includes(f));
        if (added.length) throw ApiError.invalid(kind.kind, name, [{ field: 'metadata.finalizers', reason: 'FieldValueForbidden', message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}` }], kind.group);
      } else {
        delete next.metadata.deletionTimestamp;
        delete next.metadata.deletionGracePeriodSeconds;
      }
      if (next.metadata.finalizers?.length === 0) delete next.metadata.finalizers;
      if (next.metadata.ownerReferences?.length === 0) delete next.metadata.ownerReferences;
      if (kind.statusSubresource) {
        if (cur.status === undefined) delete next.status;
        else next.status = structuredClone(cur.status);
      }
      if (!isDeepStrictEqual(specOf(next), specOf(cur))) next.metadata.generation = (m.generation ?? 1) + 1;
    }
    next.apiVersion = apiVersionOf(kind);
    next.kind = kind.kind;
    next.metadata.resourceVersion = cur.metadata.resourceVersion;
    if (isDeepStrictEqual(next, cur)) return structuredClone(cur);
    const key = keyOf(cur.metadata.namespace, cur.metadata.name);
    const written = this.write(kind, 'MODIFIED', key, next);
    if (written.metadata.deletionTimestamp && !(written.metadata.finalizers?.length) && !(isNamespace(kind) && ((written.spec as { finalizers?: string[] } | undefined)?.finalizers?.length))) {
      return this.write(kind, 'DELETED', key, structuredClone(written));
    }
    return written;
  }

  private write(kind: KindDeclaration, type: LogEntry['type'], key: string, obj: StoredObject): StoredObject {
    const store = this.store(kind);
    const prev = store.get(key);
    obj.metadata.resourceVersion = String(++this.rev);
    Object.freeze(obj);
    if (type === 'DELETED') store.delete(key);
    else store.set(key, obj);
    const entry: LogEntry = { rev: this.rev, kindId: kindId(kind), type, key, obj, prev };
    this.log.push(entry);
    if (!this.dropWatchEvents) for (const w of this.watchers) if (w.kindId === entry.kindId) this.offer(w, entry);
    return structuredClone(obj);
  }

  /** Delivers a log entry to a watcher as the kube API would, honouring namespace and selectors. */
  private offer(w: Watcher, e: LogEntry): void {
    const now = this.matches(e.obj, w.query);
    const before = e.prev !== undefined && this.matches(e.prev, w.query);
    let type: ObjectWatchEvent['type'] | undefined;
    if (e.type === 'DELETED') type = now ? 'DELETED' : undefined;
    else if (now) type = before ? 'MODIFIED' : 'ADDED';
    else if (before) type = 'DELETED'; // moved out of the selector
    if (type) this.deliver(w, { type, object: structuredClone(e.obj) });
  }

  private deliver(w: Watcher, e: ObjectWatchEvent): void {
    w.pending.push(e);
    if (!this.held.has(w.kindId)) this.flushSoon(w);
  }

  private flushSoon(w: Watcher): void {
    if (w.scheduled) return;
    w.scheduled = true;
    // Asynchronous, in order, like events coming off a real watch stream. An ERROR ends the watch.
    queueMicrotask(() => {
      w.scheduled = false;
      while (w.pending.length && !w.stopped) {
        const ev = w.pending.shift()!;
        if (ev.type === 'ERROR') w.stopped = true;
        w.onEvent(ev);
      }
    });
  }

  private stateAt(kind: KindDeclaration, rev: number): Map<string, StoredObject> {
    const id = kindId(kind);
    const state = new Map<string, StoredObject>();
    for (const e of this.log) {
      if (e.rev > rev) break;
      if (e.kindId !== id) continue;
      if (e.type === 'DELETED') state.delete(e.key);
      else state.set(e.key, e.obj);
    }
    return state;
  }

  private matches(o: StoredObject, q: ListQuery): boolean {
    if (q.namespace && o.metadata.namespace !== q.namespace) return false;
    if (q.labelSelector && !matchLabels(o.metadata.labels ?? {}, q.labelSelector)) return false;
    if (q.fieldSelector && !matchFields(o, q.fieldSelector)) return false;
    return true;
  }
}

function isNamespace(k: KindDeclaration): boolean {
  return k.group === '' && k.kind === 'Namespace';
}

function specOf(o: KubeObject): unknown {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = o;
  return rest;
}

function conflict(kind: KindDeclaration, name: string, why: string): ApiError {
  const what = kind.group ? `${kind.plural}.${kind.group}` : kind.plural;
  return ApiError.conflict(`Operation cannot be fulfilled on ${what} "${name}": ${why}`, { name, group: kind.group, kind: kind.plural });
}

function expiredStatus(message: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Status', metadata: {}, status: 'Failure', message, reason: 'Expired', code: 410 };
}

/** RFC 7386 JSON merge patch. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

/** Equality-based label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a` joined by commas. */
function matchLabels(labels: Record<string, string>, selector: string): boolean {
  return selector
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .every((term) => {
      let m: RegExpMatchArray | null;
      if ((m = term.match(/^([^!=]+)!=(.*)$/))) return labels[m[1]!.trim()] !== m[2]!.trim();
      if ((m = term.match(/^([^!=]+)==?(.*)$/))) return labels[m[1]!.trim()] === m[2]!.trim();
      if (term.startsWith('!')) return !(term.slice(1).trim() in labels);
      return term in labels;
    });
}

function matchFields(o: StoredObject, selector: string): boolean {
  return selector.split(',').every((term) => {
    const m = term.match(/^([^!=]+)(!=|==|=)(.*)$/);
    if (!m) return false;
    let v: unknown = o;
    for (const part of m[1]!.trim().split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
    const eq = String(v ?? '') === m[3]!.trim();
    return m[2] === '!=' ? !eq : eq;
  });
}

/** Lets pending microtasks and I/O callbacks run (watch deliveries, awaited client calls). */
export async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

/**
 * Waits until `cond` holds, letting promises settle between checks and, if a FakeClock is given,
 * moving it by `stepMs` each round (so backoffs and requeues fire). Fails with `message` otherwise.
 */
export async function eventually(
  cond: () => boolean | Promise<boolean>,
  opts: { clock?: FakeClock; stepMs?: number; rounds?: number; message?: string } = {},
): Promise<void> {
  const rounds = opts.rounds ?? 400;
  for (let i = 0; i < rounds; i++) {
    if (await cond()) return;
    await settle(1);
    if (opts.clock) opts.clock.advance(opts.stepMs ?? 10);
  }
  if (await cond()) return;
  throw new Error(`condition not met: ${opts.message ?? cond.toString()}`);
}


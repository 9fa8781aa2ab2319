// The registry: Kubernetes object semantics over the revisioned store. Every write path — kubectl over
// HTTP and controllers in-process — goes through here, so validation, generation, managed fields,
// finalizers, deletion and namespace rules are the same for all callers.
import { randomUUID } from 'node:crypto';
import type { KeyValue, Store, StoreEvent, WatchHandle, WriteOp } from '../store/types.js';
import type { KindDeclaration, KubeObject, ManagedFieldsEntry, ObjectMeta, StoredObject } from '../kinds/types.js';
import { apiVersionOf } from '../kinds/types.js';
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
import { ApiError } from '../lib/errors.js';
import type { Clock } from '../lib/clock.js';
import { systemClock } from '../lib/clock.js';
import { KindRegistry, STORE_KEY_PREFIX, keyFor, prefixFor } from '../kinds/index.js';
import { compileValidator } from '../kinds/validation.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import { decodeContinue, encodeContinue } from './continue-token.js';
import { statusFromError, toApiError } from './status.js';
import {
  applyPatch,
  jsonPatch,
  mergePatch,
  schemaHintsFrom,
  strategicMergePatch,
  trackUpdate,
  type SchemaHints,
} from './patch/index.js';
import { deepEqual } from './patch/json-value.js';
import { deepFreeze } from '../runtime/cache.js';

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';
export type PatchType = 'json' | 'merge' | 'strategic' | 'apply';

export interface RequestOptions extends WriteOptions {
  fieldValidation?: FieldValidation;
  /** Warnings for the client (sent as `Warning` headers). */
  warnings?: string[];
  subresource?: 'status';
}

export interface PatchOptions extends RequestOptions {
  force?: boolean;
}

type Matcher = (obj: StoredObject) => boolean;

const NAMESPACE_FINALIZER = 'kubernetes';

const MAX_CONFLICT_RETRIES = 16;

function clone<T>(v: T): T {
  return structuredClone(v);
}

/**
 * Copies the object and its metadata one level deep. Enough before validation: until then only top-level
 * and metadata fields are assigned, and the validator deep-copies what it returns.
 */
function shallowCopy(input: KubeObject): KubeObject {
  const meta = input.metadata;
  return { ...input, metadata: meta && typeof meta === 'object' ? { ...meta } : meta };
}

function nowIso(clock: Clock): string {
  return new Date(clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Everything except metadata and status: a change here bumps metadata.generation. */
function specPart(obj: KubeObject): Record<string, unknown> {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = obj;
  return rest;
}

export interface RegistryDeps {
  store: Store;
  kinds: KindRegistry;
  clock?: Clock;
  /** How often watches that asked for bookmarks get one (ms). */
  bookmarkIntervalMs?: number;
}

interface BookmarkWatch {
  send: (rv: number) => void;
}

export class Registry implements ObjectClient {
  readonly store: Store;
  readonly kinds: KindRegistry;
  private readonly clock: Clock;
  private readonly hints = new Map<KindDeclaration, SchemaHints>();
  private readonly decoded = new WeakMap<KeyValue, StoredObject>();
  private readonly rawCache = new WeakMap<KeyValue, string>();
  private readonly bookmarkWatches = new Set<BookmarkWatch>();
  private bookmarkTimer: NodeJS.Timeout | undefined;
  private current: Map<string, KeyValue> | undefined;
  private currentWatch: WatchHandle | undefined;

  constructor(deps: RegistryDeps) {
    this.store = deps.store;
    this.kinds = deps.kinds;
    this.clock = deps.clock ?? systemClock;
    const every = deps.bookmarkIntervalMs ?? 30_000;
    this.bookmarkTimer = setInterval(() => void this.sendBookmarks(), every);
    this.bookmarkTimer.unref();
  }

  close(): void {
    if (this.bookmarkTimer) clearInterval(this.bookmarkTimer);
    this.bookmarkTimer = undefined;
    this.currentWatch?.cancel();
    this.currentWatch = undefined;
    this.current = undefined;
  }

  kind(group: string, kindOrPlural: string): KindDeclaration {
    const k = this.kinds.all().find((d) => d.group === group && (d.kind === kindOrPlural || d.plural === kindOrPlural));
    if (!k) throw ApiError.notFound('kind', `${kindOrPlural}${group ? '.' + group : ''}`);
    return k;
  }

  private hintsFor(kind: KindDeclaration): SchemaHints {
    let h = this.hints.get(kind);
    if (!h) {
      h = schemaHintsFrom(kind.schema as object);
      this.hints.set(kind, h);
    }
    return h;
  }

  /**
   * Decodes a stored version, once per version: watchers, informers and the HTTP surface share the result.
   * It is deep-frozen, which both enforces that and lets informers cache it without a copy of their own.
   */
  decode(kv: KeyValue): StoredObject {
    let o = this.decoded.get(kv);
    if (!o) {
      o = JSON.parse(kv.value) as StoredObject;
      o.metadata.resourceVersion = String(kv.modRevision);
      deepFreeze(o);
      this.decoded.set(kv, o);
    }
    return o;
  }

  /** A fresh object of one stored version, for a caller to own and change (one parse, no cache, no clone). */
  private own(kv: KeyValue): StoredObject {
    const o = JSON.parse(kv.value) as StoredObject;
    o.metadata.resourceVersion = String(kv.modRevision);
    return o;
  }

  /**
   * Stored JSON always starts `{"apiVersion":…,"kind":…,"metadata":{`, so `rawJson` can splice the
   * resourceVersion in without parsing (apiVersion and kind are strings, which cannot hold that sequence).
   */
  private encode(obj: KubeObject): string {
    const { apiVersion, kind, metadata, ...rest } = obj;
    const { resourceVersion: _rv, ...meta } = metadata;
    return JSON.stringify({ apiVersion, kind, metadata: meta, ...rest });
  }

  /** The object of one stored version as JSON text, with its resourceVersion, without a parse/stringify round trip. */
  rawJson(kv: KeyValue): string {
    let s = this.rawCache.get(kv);
    if (s === undefined) {
      const at = kv.value.indexOf('"metadata":{');
      if (at < 0) s = JSON.stringify(this.decode(kv));
      else {
        const open = at + '"metadata":{'.length;
        const sep = kv.value[open] === '}' ? '' : ',';
        s = `${kv.value.slice(0, open)}"resourceVersion":"${kv.modRevision}"${sep}${kv.value.slice(open)}`;
      }
      this.rawCache.set(kv, s);
    }
    return s;
  }

  private checkScope(kind: KindDeclaration, namespace: string | undefined): void {
    if (kind.scope === 'Namespaced' && !namespace) {
      throw ApiError.badRequest(`${kind.plural}.${kind.group || 'core'} is namespaced: a namespace is required`);
    }
  }

  private nsOf(kind: KindDeclaration, namespace: string | undefined): string | undefined {
    return kind.scope === 'Namespaced' ? namespace : undefined;
  }

  // ---------------------------------------------------------------- reads

  /** The current object, deep-frozen and shared (as informer caches hold them): copy before changing. */
  async get(kind: KindDeclaration, namespace: string | undefined, name: string): Promise<StoredObject | undefined> {
    const kv = await this.currentVersion(keyFor(kind, this.nsOf(kind, namespace), name));
    return kv ? this.decode(kv) : undefined;
  }

  /** The stored version of one object (for serving it without a parse/stringify round trip). */
  async getVersion(kind: KindDeclaration, namespace: string | undefined, name: string): Promise<KeyValue | undefined> {
    return this.currentVersion(keyFor(kind, this.nsOf(kind, namespace), name));
  }

  async mustGet(kind: KindDeclaration, namespace: string | undefined, name: string): Promise<{ obj: StoredObject; kv: KeyValue }> {
    const kv = await this.currentVersion(keyFor(kind, this.nsOf(kind, namespace), name));
    if (!kv) throw ApiError.notFound(kind.plural, name, kind.group);
    return { obj: this.own(kv), kv };
  }

  private matcher(kind: KindDeclaration, query: ListQuery | undefined): Matcher | undefined {
    const label = query?.labelSelector ? parseLabelSelector(query.labelSelector) : undefined;
    const field = query?.fieldSelector ? parseFieldSelector(query.fieldSelector, kind) : undefined;
    if (!label && !field) return undefined;
    return (o) => (!label || label.matches(o.metadata.labels ?? {})) && (!field || field.matches(o));
  }

  /**
   * Lists with kube semantics: resourceVersion ''/'0'/N (+ resourceVersionMatch), limit/continue,
   * label and field selectors. Pages are consistent at the first page's revision.
   */
  async list(kind: KindDeclaration, query: ListQuery & { resourceVersionMatch?: string } = {}): Promise<ObjectList> {
    const { kvs, ...meta } = await this.listVersions(kind, query);
    return { ...meta, items: kvs.map((kv) => this.own(kv)) };
  }

  /** `list` without materializing objects: the HTTP surface serializes the stored versions directly. */
  async listVersions(kind: KindDeclaration, query: ListQuery & { resourceVersionMatch?: string } = {}): Promise<Omit<ObjectList, 'items'> & { kvs: KeyValue[] }> {
    const matches = this.matcher(kind, query);
    const prefix = prefixFor(kind, this.nsOf(kind, query.namespace));
    const limit = query.limit && query.limit > 0 ? query.limit : 0;
    let revision = 0;
    let startAfter: string | undefined;
    if (query.continue) {
      const t = decodeContinue(query.continue);
      revision = t.revision;
      startAfter = t.startAfter;
      if (!startAfter.startsWith(prefix)) throw ApiError.badRequest('invalid continue token: it belongs to another list');
      const compacted = await this.store.compactedRevision();
      if (revision <= compacted) {
        throw new ApiError(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
      }
    } else if (query.resourceVersion && query.resourceVersion !== '0') {
      const rv = parseResourceVersion(query.resourceVersion);
      if (query.resourceVersionMatch === 'Exact') revision = rv;
      else {
        const cur = await this.store.currentRevision();
        if (rv > cur) throw new ApiError(504, 'Timeout', `Too large resource version: ${rv}, current: ${cur}`, { retryAfterSeconds: 1 });
      }
    }
    const items: KeyValue[] = [];
    let more = false;
    let remaining: number | undefined;
    let lastKey: string | undefined;
    // With a selector, keep reading pages until `limit` matches are found (kube does the same).
    const pageSize = limit ? (matches ? Math.max(limit, 500) : limit) : 0;
    for (;;) {
      const page = await this.store.list(prefix, { revision, limit: pageSize, startAfter });
      revision = page.revision;
      let stoppedEarly = false;
      for (const kv of page.items) {
        lastKey = kv.key;
        if (matches && !matches(this.decode(kv))) continue;
        items.push(kv);
        if (limit && items.length >= limit) {
          stoppedEarly = kv !== page.items[page.items.length - 1];
          break;
        }
      }
      if (limit && items.length >= limit) {
        more = stoppedEarly || page.more;
        if (!matches && !stoppedEarly) remaining = page.remaining;
        break;
      }
      if (!page.more) break;
      startAfter = lastKey;
    }
    const out: Omit<ObjectList, 'items'> & { kvs: KeyValue[] } = { kvs: items, resourceVersion: String(revision) };
    if (more && items.length) {
      out.continue = encodeContinue(revision, items[items.length - 1].key);
      if (remaining !== undefined) out.remainingItemCount = remaining;
    }
    return out;
  }

  // ---------------------------------------------------------------- watch

  async watch(kind: KindDeclaration, query: ObjectWatchQuery & { sendInitialEvents?: boolean }, onEvent: (e: ObjectWatchEvent) => void): Promise<ObjectWatch> {
    const matches = this.matcher(kind, query);
    const prefix = prefixFor(kind, this.nsOf(kind, query.namespace));
    let from: number;
    let stopped = false;
    const initial: StoredObject[] = [];
    const rvParam = query.resourceVersion ?? '';
    if (rvParam === '' || rvParam === '0' || query.sendInitialEvents) {
      // "Get state and start at most recent": synthetic ADDED events for what exists, then follow.
      const page = await this.store.list(prefix);
      from = page.revision;
      for (const kv of page.items) {
        const o = this.decode(kv);
        if (!matches || matches(o)) initial.push(o);
      }
    } else {
      from = parseResourceVersion(rvParam);
    }
    const emit = (e: ObjectWatchEvent): void => {
      if (!stopped) onEvent(e);
    };
    let lastRv = from;
    const onEvents = (events: StoreEvent[]): void => {
      for (const ev of events) {
        lastRv = ev.kv.modRevision;
        const obj = this.decode(ev.kv);
        const prev = ev.prevKv ? this.decode(ev.prevKv) : undefined;
        if (ev.type === 'delete') {
          // The tombstone carries the last value; kube reports it with the deletion's revision.
          if (!matches || matches(obj)) emit({ type: 'DELETED', object: obj });
          continue;
        }
        const now = !matches || matches(obj);
        const before = prev !== undefined && (!matches || matches(prev));
        if (ev.type === 'create') {
          if (now) emit({ type: 'ADDED', object: obj });
        } else if (now && before) emit({ type: 'MODIFIED', object: obj });
        else if (now && !before) emit({ type: 'ADDED', object: obj });
        else if (!now && before) emit({ type: 'DELETED', object: obj });
      }
    };
    let handle: { cancel(): void };
    try {
      handle = await this.store.watch(prefix, {
        fromRevision: from,
        onEvents,
        onError: (err) => {
          emit({ type: 'ERROR', object: statusFromError(toApiError(err)) as unknown as KubeObject });
          stop();
        },
      });
    } catch (err) {
      const e = toApiError(err);
      if (e.code === 410) {
        const gone = new ApiError(410, 'Expired', `too old resource version: ${from} (${await this.store.compactedRevision()})`);
        onEvent({ type: 'ERROR', object: statusFromError(gone) as unknown as KubeObject });
        return { stop: () => undefined };
      }
      throw e;
    }
    for (const o of initial) emit({ type: 'ADDED', object: o });
    const bookmark: BookmarkWatch = {
      send: (rv) => {
        if (rv > lastRv) lastRv = rv;
        emit({ type: 'BOOKMARK', object: { apiVersion: apiVersionOf(kind), kind: kind.kind, metadata: { resourceVersion: String(lastRv) } } });
      },
    };
    if (query.sendInitialEvents) {
      emit({
        type: 'BOOKMARK',
        object: { apiVersion: apiVersionOf(kind), kind: kind.kind, metadata: { resourceVersion: String(from), annotations: { 'k8s.io/initial-events-end': 'true' } } },
      });
    }
    if (query.allowWatchBookmarks) this.bookmarkWatches.add(bookmark);
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      this.bookmarkWatches.delete(bookmark);
      handle?.cancel();
    };
    return { stop };
  }

  private async sendBookmarks(): Promise<void> {
    if (this.bookmarkWatches.size === 0) return;
    const rv = await this.store.currentRevision();
    for (const w of this.bookmarkWatches) w.send(rv);
  }

  // ---------------------------------------------------------------- writes

  private validate(kind: KindDeclaration, obj: KubeObject, opts: RequestOptions, old?: KubeObject): KubeObject {
    const v = compileValidator(kind);
    const r = v(obj, { fieldValidation: opts.fieldValidation ?? 'Ignore', old });
    if (r.unknownFields.length && (opts.fieldValidation ?? 'Ignore') === 'Strict') {
      throw ApiError.badRequest(
        `${kind.kind} in version "${kind.version}" cannot be handled as a ${kind.kind}: strict decoding error: ${r.unknownFields.map((f) => `unknown field "${f}"`).join(', ')}`,
      );
    }
    for (const w of r.warnings) opts.warnings?.push(w);
    if (r.causes.length) throw ApiError.invalid(kind.kind, obj.metadata?.name ?? '', r.causes, kind.group);
    return r.pruned;
  }

  /**
   * Keeps the current version of every object in memory, followed by one store watch, so point reads (GET,
   * the read before an update, patch or delete, the namespace check of a create) do not go to the store.
   * The store hands events to watchers before it acknowledges a write, so an acknowledged write is always
   * visible here. Reads at an older revision (continue tokens, Exact) and lists still go to the store.
   */
  async start(): Promise<void> {
    if (this.currentWatch) return;
    const page = await this.store.list(STORE_KEY_PREFIX);
    const current = new Map<string, KeyValue>();
    for (const kv of page.items) current.set(kv.key, kv);
    this.currentWatch = await this.store.watch(STORE_KEY_PREFIX, {
      fromRevision: page.revision,
      onEvents: (events) => {
        for (const ev of events) {
          if (ev.type === 'delete') current.delete(ev.kv.key);
          else current.set(ev.kv.key, ev.kv);
        }
      },
      // Back to reading the store: never answer from a cache that stopped following.
      onError: () => (this.current = undefined),
    });
    // The store delivers a new watch's events from its next turn on; serve from the map only once it is live.
    await new Promise((resolve) => setImmediate(resolve));
    this.current = current;
  }

  /** The current version of a key: from memory once start() ran, else from the store. */
  private async currentVersion(key: string): Promise<KeyValue | undefined> {
    return this.current ? this.current.get(key) : this.store.get(key);
  }

  /** true = terminating, false = active, undefined = absent. */
  private async namespaceState(name: string): Promise<boolean | undefined> {
    const nsKind = this.kinds.byKind('', 'v1', 'Namespace');
    if (!nsKind) return false;
    const kv = await this.currentVersion(keyFor(nsKind, undefined, name));
    return kv ? this.decode(kv).metadata.deletionTimestamp !== undefined : undefined;
  }

  private async checkNamespaceForCreate(kind: KindDeclaration, namespace: string): Promise<void> {
    const terminating = await this.namespaceState(namespace);
    if (terminating === undefined) throw ApiError.notFound('namespaces', namespace);
    if (terminating) {
      throw new ApiError(403, 'Forbidden', `${kind.plural} is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`, {
        name: namespace,
        kind: kind.plural,
        group: kind.group,
        causes: [{ reason: 'NamespaceTerminating', message: `namespace ${namespace} is being terminated`, field: 'metadata.namespace' }],
      });
    }
  }

  private managerFor(opts: WriteOptions): string {
    return opts.fieldManager || 'metalplane';
  }

  async create(kind: KindDeclaration, input: KubeObject, opts: RequestOptions = {}): Promise<StoredObject> {
    return this.createObject(kind, input, opts);
  }

  /** `applied`: the managedFields of a server-side apply that creates the object (instead of an Update entry). */
  private async createObject(kind: KindDeclaration, input: KubeObject, opts: RequestOptions, applied?: ManagedFieldsEntry[]): Promise<StoredObject> {
    const { key, stored } = await this.prepareCreate(kind, input, opts, applied);
    if (opts.dryRun) return { ...(stored as StoredObject), metadata: { ...(stored.metadata as StoredObject['metadata']), resourceVersion: '' } };
    try {
      const kv = await this.store.create(key, this.encode(stored));
      return withRevision(stored, kv.modRevision);
    } catch (e) {
      const err = toApiError(e);
      if (err.code === 409) throw ApiError.alreadyExists(kind.plural, stored.metadata.name!, kind.group);
      throw err;
    }
  }

  /** Everything a create does short of writing: the store key and the object to store. */
  private async prepareCreate(kind: KindDeclaration, input: KubeObject, opts: RequestOptions, applied?: ManagedFieldsEntry[]): Promise<{ key: string; stored: KubeObject }> {
    const obj = shallowCopy(input);
    const ns = this.nsOf(kind, obj.metadata?.namespace);
    this.checkScope(kind, ns);
    this.checkTypeMeta(kind, obj);
    obj.metadata = obj.metadata ?? {};
    if (kind.scope === 'Cluster') delete obj.metadata.namespace;
    if (!obj.metadata.name && obj.metadata.generateName) {
      obj.metadata.name = obj.metadata.generateName + randomSuffix();
    }
    if (!obj.metadata.name) {
      throw ApiError.invalid(kind.kind, '', [{ reason: 'FieldValueRequired', message: 'name or generateName is required', field: 'metadata.name' }], kind.group);
    }
    if (ns) await this.checkNamespaceForCreate(kind, ns);
    const validated = this.validate(kind, obj, opts);
    const meta: ObjectMeta = validated.metadata;
    delete meta.resourceVersion;
    meta.uid = randomUUID();
    meta.creationTimestamp = nowIso(this.clock);
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    if (kind.statusSubresource) {
      meta.generation = 1;
      if (kind.group !== '') delete validated.status;
    } else delete meta.generation;
    kind.default?.(validated);
    if (kind.group === '' && kind.kind === 'Namespace') prepareNamespace(validated);
    let stored: KubeObject;
    if (applied) {
      validated.metadata.managedFields = applied;
      stored = validated;
    } else {
      stored = trackUpdate({
        old: undefined,
        updated: validated,
        manager: this.managerFor(opts),
        hints: this.hintsFor(kind),
        apiVersion: apiVersionOf(kind),
        now: nowIso(this.clock),
      });
    }
    stored = this.finishMeta(stored);
    return { key: keyFor(kind, ns, meta.name!), stored };
  }

  private checkTypeMeta(kind: KindDeclaration, obj: KubeObject): void {
    const want = apiVersionOf(kind);
    if (obj.apiVersion !== undefined && obj.apiVersion !== want) {
      throw ApiError.badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${want})`);
    }
    if (obj.kind !== undefined && obj.kind !== kind.kind) {
      throw ApiError.badRequest(`the kind in the data (${obj.kind}) does not match the expected kind (${kind.kind})`);
    }
    obj.apiVersion = want;
    obj.kind = kind.kind;
  }

  private finishMeta(obj: KubeObject): KubeObject {
    const m = obj.metadata;
    if (m.managedFields && m.managedFields.length === 0) delete m.managedFields;
    if (m.finalizers && m.finalizers.length === 0) delete m.finalizers;
    if (m.ownerReferences && m.ownerReferences.length === 0) delete m.ownerReferences;
    return obj;
  }

  async update(kind: KindDeclaration, input: KubeObject, opts: RequestOptions = {}): Promise<StoredObject> {
    const obj = shallowCopy(input);
    this.checkTypeMeta(kind, obj);
    if (!obj.metadata?.name) {
      throw ApiError.invalid(kind.kind, '', [{ reason: 'FieldValueRequired', message: 'name is required', field: 'metadata.name' }], kind.group);
    }
    const ns = this.nsOf(kind, obj.metadata.namespace);
    this.checkScope(kind, ns);
    const { obj: cur, kv } = await this.mustGet(kind, ns, obj.metadata.name);
    const expected = obj.metadata.resourceVersion ? parseResourceVersion(obj.metadata.resourceVersion) : undefined;
    if (expected !== undefined && expected !== kv.modRevision) throw this.staleConflict(kind, obj.metadata.name);
    return this.writeUpdate(kind, cur, obj, opts, expected ?? kv.modRevision);
  }

  async updateStatus(kind: KindDeclaration, obj: KubeObject, opts: RequestOptions = {}): Promise<StoredObject> {
    return this.update(kind, obj, { ...opts, subresource: 'status' });
  }

  private staleConflict(kind: KindDeclaration, name: string): ApiError {
    return new StaleVersionError(
      `Operation cannot be fulfilled on ${kind.plural}${kind.group ? '.' + kind.group : ''} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      { name, group: kind.group, kind: kind.plural },
    );
  }

  /** What an update would write: server-owned fields, subresource rules, generation, deletion. */
  private prepareUpdate(
    kind: KindDeclaration,
    cur: StoredObject,
    incoming: KubeObject,
    opts: RequestOptions,
    managed?: 'apply-done',
  ): { write: 'none' | 'update' | 'delete'; key: string; out: KubeObject } {
    let next = incoming;
    if (next.metadata.uid && next.metadata.uid !== cur.metadata.uid) {
      throw ApiError.conflict(`Precondition failed: UID in precondition: ${next.metadata.uid}, UID in object meta: ${cur.metadata.uid}`);
    }
    if (opts.subresource === 'status') {
      if (!kind.statusSubresource) throw ApiError.notFound(`${kind.plural}/status`, cur.metadata.name, kind.group);
      const status = next.status;
      const mf = next.metadata.managedFields;
      next = shallowCopy(cur);
      if (status === undefined) delete next.status;
      else next.status = status;
      if (mf) next.metadata.managedFields = mf;
    } else if (kind.statusSubresource && kind.group !== '') {
      if (cur.status === undefined) delete next.status;
      else next.status = cur.status;
    } else if (kind.statusSubresource && kind.group === '' && next.status === undefined && cur.status !== undefined) {
      next.status = cur.status;
    }
    // Nothing below changes `cur`: the validator returns a deep copy of `next`, which is what gets written.
    const validated = this.validate(kind, next, opts, cur);
    const m = validated.metadata;
    // Server-owned metadata cannot be changed by clients.
    m.uid = cur.metadata.uid;
    m.creationTimestamp = cur.metadata.creationTimestamp;
    m.name = cur.metadata.name;
    if (cur.metadata.namespace) m.namespace = cur.metadata.namespace;
    else delete m.namespace;
    if (cur.metadata.deletionTimestamp) {
      m.deletionTimestamp = cur.metadata.deletionTimestamp;
      m.deletionGracePeriodSeconds = cur.metadata.deletionGracePeriodSeconds;
      const had = new Set(cur.metadata.finalizers ?? []);
      const added = (m.finalizers ?? []).filter((f) => !had.has(f));
      if (added.length) {
        throw ApiError.invalid(kind.kind, m.name!, [{ reason: 'FieldValueForbidden', message: `no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}`, field: 'metadata.finalizers' }], kind.group);
      }
    } else {
      delete m.deletionTimestamp;
      delete m.deletionGracePeriodSeconds;
    }
    if (kind.statusSubresource) {
      const gen = cur.metadata.generation ?? 1;
      m.generation = deepEqual(specPart(cur), specPart(validated)) ? gen : gen + 1;
    } else delete m.generation;
    let out: KubeObject = validated;
    if (managed !== 'apply-done') {
      out = trackUpdate({
        old: cur,
        updated: validated,
        manager: this.managerFor(opts),
        hints: this.hintsFor(kind),
        apiVersion: apiVersionOf(kind),
        now: nowIso(this.clock),
        subresource: opts.subresource,
      });
    }
    out = this.finishMeta(out);
    const key = keyFor(kind, cur.metadata.namespace, cur.metadata.name);
    // An object being deleted whose last finalizer went away is deleted now.
    if (out.metadata.deletionTimestamp && this.finalizersDone(kind, out)) return { write: 'delete', key, out };
    // A no-op write keeps the resourceVersion, as kube does.
    if (deepEqual(stripVolatile(out), stripVolatile(cur))) return { write: 'none', key, out: cur };
    return { write: 'update', key, out };
  }

  /** The common tail of update/patch/apply: server-owned fields, subresource rules, generation, deletion. */
  private async writeUpdate(
    kind: KindDeclaration,
    cur: StoredObject,
    incoming: KubeObject,
    opts: RequestOptions,
    expectedRevision: number,
    managed?: 'apply-done',
  ): Promise<StoredObject> {
    const p = this.prepareUpdate(kind, cur, incoming, opts, managed);
    if (p.write === 'none' || opts.dryRun) return p.out as StoredObject;
    try {
      if (p.write === 'delete') {
        const del = await this.store.delete(p.key, expectedRevision);
        return { ...(p.out as StoredObject), metadata: { ...(p.out.metadata as StoredObject['metadata']), resourceVersion: String(del.modRevision) } };
      }
      const kv = await this.store.update(p.key, this.encode(p.out), expectedRevision);
      return withRevision(p.out, kv.modRevision);
    } catch (e) {
      throw this.mapWriteError(e, kind, cur.metadata.name);
    }
  }

  /**
   * Writes several objects atomically: every create, update and delete happens, or none does (a failed
   * precondition — an object that exists, or changed since it was read — fails the whole transaction with
   * 409, which callers retry after reading again). Each write gets the same validation and metadata handling
   * as alone. This is how the scheduler binds a Device to a Hardware and claims its IPs in one step.
   */
  async transact(writes: TxWrite[], opts: WriteOptions = {}): Promise<Array<StoredObject | undefined>> {
    const ops: WriteOp[] = [];
    const results: KubeObject[] = [];
    const seen = new Set<string>();
    for (const w of writes) {
      if (w.op === 'create') {
        const { key, stored } = await this.prepareCreate(w.kind, w.object, opts);
        ops.push({ op: 'create', key, value: this.encode(stored) });
        results.push(stored);
      } else if (w.op === 'update') {
        const o = w.object;
        if (!o.metadata?.name || !o.metadata.resourceVersion) {
          throw ApiError.badRequest(`transaction: an update of ${w.kind.kind} needs metadata.name and metadata.resourceVersion`);
        }
        const ns = this.nsOf(w.kind, o.metadata.namespace);
        const { obj: cur, kv } = await this.mustGet(w.kind, ns, o.metadata.name);
        const expected = parseResourceVersion(o.metadata.resourceVersion);
        if (expected !== kv.modRevision) throw this.staleConflict(w.kind, o.metadata.name);
        const p = this.prepareUpdate(w.kind, cur, shallowCopy(o), { ...opts, subresource: w.subresource });
        if (p.write === 'delete') ops.push({ op: 'delete', key: p.key, expectedRevision: expected });
        // An unchanged object still takes part: its version must not have moved when the others are written.
        else ops.push({ op: 'update', key: p.key, value: this.encode(p.out), expectedRevision: expected });
        results.push(p.out);
      } else {
        const ns = this.nsOf(w.kind, w.namespace);
        const { obj: cur, kv } = await this.mustGet(w.kind, ns, w.name);
        if (w.resourceVersion && parseResourceVersion(w.resourceVersion) !== kv.modRevision) throw this.staleConflict(w.kind, w.name);
        if (!this.finalizersDone(w.kind, cur)) {
          throw ApiError.badRequest(`transaction: ${w.kind.kind} ${w.name} has finalizers and cannot be deleted in a transaction`);
        }
        ops.push({ op: 'delete', key: kv.key, expectedRevision: kv.modRevision });
        results.push(cur);
      }
      const key = ops[ops.length - 1]!.key;
      if (seen.has(key)) throw ApiError.badRequest(`transaction: ${key} is written twice`);
      seen.add(key);
    }
    if (opts.dryRun) return results as StoredObject[];
    let kvs: KeyValue[];
    try {
      kvs = await this.store.commit(ops);
    } catch (e) {
      const err = toApiError(e);
      if (err.code === 409 || err.code === 404) throw new StaleVersionError(`transaction not applied: ${err.message}`, {});
      throw err;
    }
    return kvs.map((kv, i) => (ops[i]!.op === 'delete' ? undefined : withRevision(results[i]!, kv.modRevision)));
  }

  private mapWriteError(e: unknown, kind: KindDeclaration, name: string): ApiError {
    const err = toApiError(e);
    if (err.code === 409) return this.staleConflict(kind, name);
    if (err.code === 404) return ApiError.notFound(kind.plural, name, kind.group);
    return err;
  }

  private finalizersDone(kind: KindDeclaration, obj: KubeObject): boolean {
    if (obj.metadata.finalizers?.length) return false;
    if (kind.group === '' && kind.kind === 'Namespace') {
      const spec = obj.spec as { finalizers?: string[] } | undefined;
      if (spec?.finalizers?.length) return false;
    }
    return true;
  }

  async patch(kind: KindDeclaration, namespace: string | undefined, name: string, type: PatchType, body: unknown, opts: PatchOptions = {}): Promise<StoredObject> {
    const ns = this.nsOf(kind, namespace);
    this.checkScope(kind, ns);
    for (let attempt = 0; ; attempt++) {
      const kv = await this.currentVersion(keyFor(kind, ns, name));
      if (!kv) {
        if (type === 'apply') return this.applyCreate(kind, ns, name, body as KubeObject, opts);
        throw ApiError.notFound(kind.plural, name, kind.group);
      }
      const cur = this.own(kv);
      let next: KubeObject;
      let precondition: string | undefined;
      if (type === 'apply') {
        const applied = this.checkAppliedObject(kind, body, ns, name);
        precondition = applied.metadata.resourceVersion;
        next = applyPatch({
          live: cur,
          applied,
          manager: this.requireApplyManager(opts),
          force: opts.force ?? false,
          hints: this.hintsFor(kind),
          apiVersion: apiVersionOf(kind),
          now: nowIso(this.clock),
          subresource: opts.subresource,
        }).object;
      } else {
        // The patch functions copy what they patch; `cur` stays as read.
        const base = cur as unknown as Record<string, unknown>;
        const patched =
          type === 'json'
            ? jsonPatch(base, body)
            : type === 'merge'
              ? mergePatch(base, body)
              : strategicMergePatch(base, body, this.hintsFor(kind));
        if (!patched || typeof patched !== 'object' || Array.isArray(patched)) throw ApiError.badRequest('the patch must produce a JSON object');
        next = patched as KubeObject;
        const rawMeta: unknown = next.metadata ?? {};
        if (typeof rawMeta !== 'object' || rawMeta === null || Array.isArray(rawMeta)) throw ApiError.badRequest('the patch must leave metadata an object');
        const meta = rawMeta as ObjectMeta;
        next.metadata = meta;
        precondition = meta.resourceVersion !== cur.metadata.resourceVersion ? meta.resourceVersion : undefined;
        if (meta.name !== undefined && meta.name !== name) throw ApiError.badRequest(`the name of the object (${meta.name}) does not match the name on the URL (${name})`);
        meta.name = name;
        if (ns) meta.namespace = ns;
      }
      if (precondition && parseResourceVersion(precondition) !== kv.modRevision) throw this.staleConflict(kind, name);
      next.metadata.resourceVersion = String(kv.modRevision);
      try {
        this.checkTypeMeta(kind, next);
        return await this.writeUpdate(kind, cur, next, opts, kv.modRevision, type === 'apply' ? 'apply-done' : undefined);
      } catch (e) {
        const err = toApiError(e);
        // A patch without a resourceVersion precondition is retried against the newest version.
        if (err instanceof StaleVersionError && !precondition && attempt < MAX_CONFLICT_RETRIES) continue;
        throw err;
      }
    }
  }

  private requireApplyManager(opts: PatchOptions): string {
    if (!opts.fieldManager) throw ApiError.badRequest('PATCH, application/apply-patch+yaml: fieldManager is required for apply requests');
    return opts.fieldManager;
  }

  private checkAppliedObject(kind: KindDeclaration, body: unknown, ns: string | undefined, name: string): KubeObject {
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw ApiError.badRequest('an apply patch must be a single object');
    const o = body as KubeObject;
    if (!o.apiVersion || !o.kind) throw ApiError.badRequest('an apply patch must set apiVersion and kind');
    if (o.apiVersion !== apiVersionOf(kind) || o.kind !== kind.kind) {
      throw ApiError.badRequest(`the apply patch's ${o.apiVersion}/${o.kind} does not match the URL's ${apiVersionOf(kind)}/${kind.kind}`);
    }
    if (o.metadata !== undefined && (typeof o.metadata !== 'object' || o.metadata === null || Array.isArray(o.metadata))) {
      throw ApiError.badRequest('an apply patch: metadata must be an object');
    }
    const meta = (o.metadata ?? {}) as ObjectMeta;
    if (meta.name !== undefined && meta.name !== name) throw ApiError.badRequest(`the name of the object (${meta.name}) does not match the name on the URL (${name})`);
    if (ns && meta.namespace !== undefined && meta.namespace !== ns) {
      throw ApiError.badRequest(`the namespace of the object (${meta.namespace}) does not match the namespace on the URL (${ns})`);
    }
    if (meta.managedFields !== undefined) throw ApiError.badRequest('metadata.managedFields must be nil in an apply patch');
    return { ...o, metadata: { ...meta, name, ...(ns ? { namespace: ns } : {}) } };
  }

  private async applyCreate(kind: KindDeclaration, ns: string | undefined, name: string, body: KubeObject, opts: PatchOptions): Promise<StoredObject> {
    const applied = this.checkAppliedObject(kind, body, ns, name);
    if (opts.subresource === 'status') throw ApiError.notFound(kind.plural, name, kind.group);
    const manager = this.requireApplyManager(opts);
    const merged = applyPatch({
      live: undefined,
      applied,
      manager,
      force: opts.force ?? false,
      hints: this.hintsFor(kind),
      apiVersion: apiVersionOf(kind),
      now: nowIso(this.clock),
    }).object;
    const { managedFields, ...meta } = merged.metadata;
    return this.createObject(kind, { ...merged, metadata: meta }, { ...opts, fieldManager: manager }, managedFields ?? []);
  }

  async delete(kind: KindDeclaration, namespace: string | undefined, name: string, opts: DeleteOptions = {}): Promise<StoredObject> {
    return (await this.deleteWithResult(kind, namespace, name, opts)).object;
  }

  /** Deletes, telling whether the object is gone (200) or waits on finalizers (202). */
  async deleteWithResult(kind: KindDeclaration, namespace: string | undefined, name: string, opts: DeleteOptions = {}): Promise<{ object: StoredObject; gone: boolean }> {
    const ns = this.nsOf(kind, namespace);
    this.checkScope(kind, ns);
    const key = keyFor(kind, ns, name);
    for (let attempt = 0; ; attempt++) {
      const kv = await this.currentVersion(key);
      if (!kv) throw ApiError.notFound(kind.plural, name, kind.group);
      const cur = this.own(kv);
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
      const next = clone(cur);
      next.metadata.finalizers = finalizers;
      const waits = !this.finalizersDone(kind, next);
      try {
        if (waits) {
          if (cur.metadata.deletionTimestamp && deepEqual(finalizers, cur.metadata.finalizers ?? [])) return { object: cur, gone: false };
          if (!next.metadata.deletionTimestamp) {
            next.metadata.deletionTimestamp = nowIso(this.clock);
            next.metadata.deletionGracePeriodSeconds = 0;
          }
          if (kind.group === '' && kind.kind === 'Namespace') {
            next.status = { ...((next.status as object) ?? {}), phase: 'Terminating' };
          }
          if (kind.statusSubresource && kind.group !== '') next.metadata.generation = (next.metadata.generation ?? 1) + 1;
          if (opts.dryRun) return { object: next, gone: false };
          const out = await this.store.update(key, this.encode(this.finishMeta(next)), kv.modRevision);
          return { object: this.own(out), gone: false };
        }
        if (opts.dryRun) return { object: cur, gone: true };
        const del = await this.store.delete(key, kv.modRevision);
        return { object: { ...cur, metadata: { ...cur.metadata, resourceVersion: String(del.modRevision) } }, gone: true };
      } catch (e) {
        const err = toApiError(e);
        if ((err.code === 409 || err.code === 404) && attempt < MAX_CONFLICT_RETRIES) continue;
        throw err;
      }
    }
  }

  async mergePatch(kind: KindDeclaration, namespace: string | undefined, name: string, patch: unknown, opts: WriteOptions & { subresource?: 'status' } = {}): Promise<StoredObject> {
    return this.patch(kind, namespace, name, 'merge', patch, opts);
  }

  async deleteCollection(kind: KindDeclaration, query: ListQuery, opts: DeleteOptions = {}): Promise<StoredObject[]> {
    const list = await this.list(kind, { ...query, limit: undefined, continue: undefined });
    const out: StoredObject[] = [];
    for (const o of list.items) {
      try {
        out.push(await this.delete(kind, o.metadata.namespace, o.metadata.name, opts));
      } catch (e) {
        if (toApiError(e).code !== 404) throw e;
      }
    }
    return out;
  }
}

/** The caller's own object, now stored at `revision` (no re-parse of what was just written). */
function withRevision(obj: KubeObject, revision: number): StoredObject {
  obj.metadata.resourceVersion = String(revision);
  return obj as StoredObject;
}

/** 409: the write named a version that is no longer current (the only conflict a patch may retry). */
class StaleVersionError extends ApiError {
  constructor(message: string, details: ConstructorParameters<typeof ApiError>[3]) {
    super(409, 'Conflict', message, details);
  }
}

function prepareNamespace(obj: KubeObject): void {
  const spec = (obj.spec ?? {}) as { finalizers?: string[] };
  if (!spec.finalizers) spec.finalizers = [NAMESPACE_FINALIZER];
  obj.spec = spec;
  obj.status = { phase: 'Active' };
  obj.metadata.labels = { ...(obj.metadata.labels ?? {}), 'kubernetes.io/metadata.name': obj.metadata.name! };
}

// managedFields stay in the comparison: a new manager applying values that are already there changes only
// managedFields and must be stored (the patch engine keeps old entries when nothing but times would move).
function stripVolatile(o: KubeObject): KubeObject {
  const m = { ...o.metadata };
  delete m.resourceVersion;
  return { ...o, metadata: m };
}

export function parseResourceVersion(rv: string): number {
  if (!/^[0-9]+$/.test(rv)) throw ApiError.badRequest(`invalid resourceVersion "${rv}": must be a non-negative integer`);
  const n = Number(rv);
  if (!Number.isSafeInteger(n)) throw ApiError.badRequest(`invalid resourceVersion "${rv}"`);
  return n;
}

function randomSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let s = '';
  for (let i = 0; i < 5; i++) s += alphabet[Math.floor(Math.random() * alphabet.length)];
  return s;
}

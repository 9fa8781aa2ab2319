// The registry: Kubernetes object semantics over the revisioned store. Every write path — kubectl over
// HTTP and controllers in-process — goes through here, so validation, generation, managed fields,
// finalizers, deletion and namespace rules are the same for all callers. The rules live beside it in
// registry/ (codec, current-state mirror, list, watch, write preparation, patch, delete, namespace
// admission); what a particular kind adds comes from its declaration, never from a test of its name here.
import type { KeyValue, Store, WriteOp } from '../store/types.js';
import type { KindDeclaration, KubeObject, ManagedFieldsEntry, StoredObject } from '../kinds/types.js';
import { apiVersionOf } from '../kinds/types.js';
import type { DeleteOptions, ListQuery, ObjectClient, ObjectList, ObjectWatch, ObjectWatchEvent, TxWrite, WriteFence, WriteOptions } from '../runtime/client.js';
import { FencedError, fenceName } from '../runtime/fencing.js';
import { ApiError, isNotFound } from '../lib/errors.js';
import type { Clock } from '../lib/clock.js';
import { systemClock } from '../lib/clock.js';
import { KindRegistry, keyFor } from '../kinds/index.js';
import { isKeyExists, isKeyNotFound, isRevisionMismatch, isStoreError } from '../store/errors.js';
import { toApiError } from './status.js';
import { schemaHintsFrom, type SchemaHints } from './patch/index.js';
import { ObjectCodec } from './registry/codec.js';
import type { VersionWriter } from './list-body.js';
import { CurrentState } from './registry/current-state.js';
import { listVersions, type ListedVersions, type ListVersionsQuery } from './registry/list.js';
import { Watches, type WatchQuery } from './registry/watch.js';
import { prepareCreate, prepareUpdate, type PrepareDeps } from './registry/prepare.js';
import { appliedForCreate, patchedObject, type PatchTarget } from './registry/patch.js';
import { prepareDelete } from './registry/delete.js';
import { NamespaceAdmission } from './registry/namespace-admission.js';
import { checkScope, checkTypeMeta, finalizersDone, jsonWithRevision, namespaceOf, parseResourceVersion, shallowCopy, StaleVersionError, staleConflict, withRevision } from './registry/meta.js';
import type { PatchOptions, PatchType, RequestOptions } from './registry/options.js';

export type { FieldValidation, PatchOptions, PatchType, RequestOptions } from './registry/options.js';
export { parseResourceVersion } from './registry/meta.js';

const MAX_CONFLICT_RETRIES = 16;

export interface RegistryDeps {
  store: Store;
  kinds: KindRegistry;
  clock?: Clock;
  /** How often watches that asked for bookmarks get one (ms). */
  bookmarkIntervalMs?: number;
}

export class Registry implements ObjectClient {
  readonly store: Store;
  readonly kinds: KindRegistry;
  private readonly clock: Clock;
  private readonly hints = new Map<KindDeclaration, SchemaHints>();
  private readonly codec = new ObjectCodec();
  private readonly current: CurrentState;
  private readonly watches: Watches;
  private readonly prep: PrepareDeps;

  constructor(deps: RegistryDeps) {
    this.store = deps.store;
    this.kinds = deps.kinds;
    this.clock = deps.clock ?? systemClock;
    this.current = new CurrentState(this.store);
    this.watches = new Watches(this.store, this.codec, deps.bookmarkIntervalMs ?? 30_000, this.current);
    const admission = new NamespaceAdmission(this.kinds, this.current, this.codec);
    this.prep = { clock: this.clock, hints: (k) => this.hintsFor(k), admitToNamespace: (k, ns, obj) => admission.admit(k, ns, obj) };
  }

  /** The in-memory current state's size (objects, length of their stored JSON), once it serves. */
  currentStateSize(): { objects: number; textLength: number } | undefined {
    return this.current.size();
  }

  /** Follows the store so point reads come from memory (see registry/current-state.ts). */
  async start(): Promise<void> {
    await this.current.start();
  }

  close(): void {
    this.watches.close();
    this.current.close();
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

  /** A stored version decoded, deep-frozen and shared by watchers, informers and the HTTP surface (codec.ts says what is kept). */
  decode(kv: KeyValue): StoredObject {
    return this.codec.decode(kv);
  }

  /**
   * The object of one stored version as JSON text, with its resourceVersion, without a parse/stringify round
   * trip; `remember` for a point read (a GET), whose last few texts are kept for the next read of the same version.
   */
  rawJson(kv: KeyValue, remember = false): string {
    return this.codec.rawJson(kv, remember);
  }

  /** rawJson written as bytes, for the bodies of long lists (list-body.ts). */
  get versionWriter(): VersionWriter {
    return this.codec;
  }

  // ---------------------------------------------------------------- reads

  /** The current object, deep-frozen and shared (as informer caches hold them): copy before changing. */
  async get(kind: KindDeclaration, namespace: string | undefined, name: string): Promise<StoredObject | undefined> {
    const kv = await this.getVersion(kind, namespace, name);
    return kv ? this.codec.decode(kv) : undefined;
  }

  /** The stored version of one object (for serving it without a parse/stringify round trip). */
  async getVersion(kind: KindDeclaration, namespace: string | undefined, name: string): Promise<KeyValue | undefined> {
    return this.current.get(keyFor(kind, namespaceOf(kind, namespace), name));
  }

  /** The current version and a fresh object of it, the caller's to change. */
  private async mustGet(kind: KindDeclaration, namespace: string | undefined, name: string): Promise<{ obj: StoredObject; kv: KeyValue }> {
    const kv = await this.mustGetVersion(kind, namespace, name);
    return { obj: this.codec.own(kv), kv };
  }

  private async mustGetVersion(kind: KindDeclaration, namespace: string | undefined, name: string): Promise<KeyValue> {
    const kv = await this.getVersion(kind, namespace, name);
    if (!kv) throw ApiError.notFound(kind.plural, name, kind.group);
    return kv;
  }

  /** Lists with kube semantics (see registry/list.ts); items are the caller's to change, unless `shared` or `metadataOnly`. */
  async list(kind: KindDeclaration, query: ListVersionsQuery = {}): Promise<ObjectList> {
    const { kvs, ...meta } = await this.listVersions(kind, query);
    if (query.metadataOnly) return { ...meta, items: kvs.map((kv) => this.codec.metadata(kv)) };
    return { ...meta, items: kvs.map((kv) => (query.shared ? this.codec.decode(kv, true) : this.codec.own(kv))) };
  }

  /** `list` without materializing objects: the HTTP surface serializes the stored versions directly. */
  async listVersions(kind: KindDeclaration, query: ListVersionsQuery = {}): Promise<ListedVersions> {
    return listVersions(this.store, this.codec, kind, query, this.current);
  }

  async watch(kind: KindDeclaration, query: WatchQuery, onEvent: (e: ObjectWatchEvent) => void): Promise<ObjectWatch> {
    return this.watches.watch(kind, query, onEvent);
  }

  // ---------------------------------------------------------------- writes

  async create(kind: KindDeclaration, input: KubeObject, opts: RequestOptions = {}): Promise<StoredObject> {
    return (await this.createObject(kind, input, opts)).object;
  }

  /**
   * `create`, also answering with the created object as JSON text, exactly as JSON.stringify would write it,
   * spliced from the stored text (the HTTP surface then serializes nothing a second time); no text when the
   * object's key order does not allow the splice (or for a dry run).
   */
  async createWithJson(kind: KindDeclaration, input: KubeObject, opts: RequestOptions = {}): Promise<{ object: StoredObject; json?: string }> {
    return this.createObject(kind, input, opts);
  }

  /** `applied`: the managedFields of a server-side apply that creates the object (instead of an Update entry). */
  private async createObject(kind: KindDeclaration, input: KubeObject, opts: RequestOptions, applied?: ManagedFieldsEntry[]): Promise<{ object: StoredObject; json?: string }> {
    const { key, stored } = await prepareCreate(this.prep, kind, input, opts, applied);
    if (opts.dryRun) return { object: { ...(stored as StoredObject), metadata: { ...(stored.metadata as StoredObject['metadata']), resourceVersion: '' } } };
    try {
      const value = this.codec.encode(stored);
      const kv = await this.codec.writing(key, value, stored, () => this.writeOne({ op: 'create', key, value }, opts.fence));
      const json = jsonWithRevision(stored, value, kv.modRevision);
      return { object: withRevision(stored, kv.modRevision), json };
    } catch (e) {
      if (isKeyExists(e)) throw ApiError.alreadyExists(kind.plural, stored.metadata.name!, kind.group);
      throw toApiError(e);
    }
  }

  /** A write of the main resource or (opts.subresource) of a subresource; optimistic when a resourceVersion is set. */
  async update(kind: KindDeclaration, input: KubeObject, opts: RequestOptions = {}): Promise<StoredObject> {
    const obj = shallowCopy(input);
    checkTypeMeta(kind, obj, apiVersionOf(kind));
    if (!obj.metadata?.name) {
      throw ApiError.invalid(kind.kind, '', [{ reason: 'FieldValueRequired', message: 'name is required', field: 'metadata.name' }], kind.group);
    }
    const ns = namespaceOf(kind, obj.metadata.namespace);
    checkScope(kind, ns);
    const kv = await this.mustGetVersion(kind, ns, obj.metadata.name);
    const expected = obj.metadata.resourceVersion ? parseResourceVersion(obj.metadata.resourceVersion) : undefined;
    if (expected !== undefined && expected !== kv.modRevision) throw staleConflict(kind, obj.metadata.name);
    // Preparing an update only reads the current object (prepareUpdate changes nothing of it), so a shared,
    // frozen decode will do where one is at hand: the informers that follow a kind hold its current versions, so a
    // controller's status write costs no parse of the stored text. Only a no-op update answers with the current
    // object itself, and the caller gets a fresh one then (writeUpdate's `shared`).
    const shared = this.codec.decoded(kv);
    return this.writeUpdate(kind, shared ?? this.codec.own(kv), obj, opts, expected ?? kv.modRevision, undefined, shared && kv);
  }

  async updateStatus(kind: KindDeclaration, obj: KubeObject, opts: RequestOptions = {}): Promise<StoredObject> {
    return this.update(kind, obj, { ...opts, subresource: 'status' });
  }

  /**
   * The common tail of update/patch/apply. `shared`: `cur` is the codec's shared decode of this version, which
   * the caller must not get back (a no-op answers with a fresh object of it instead).
   */
  private async writeUpdate(
    kind: KindDeclaration,
    cur: StoredObject,
    incoming: KubeObject,
    opts: RequestOptions,
    expectedRevision: number,
    managed?: 'apply-done',
    shared?: KeyValue,
  ): Promise<StoredObject> {
    const p = prepareUpdate(this.prep, kind, cur, incoming, opts, managed);
    if (p.write === 'none' || opts.dryRun) return shared && p.out === cur ? this.codec.own(shared) : (p.out as StoredObject);
    try {
      if (p.write === 'delete') {
        const del = await this.writeOne({ op: 'delete', key: p.key, expectedRevision }, opts.fence);
        return { ...(p.out as StoredObject), metadata: { ...(p.out.metadata as StoredObject['metadata']), resourceVersion: String(del.modRevision) } };
      }
      const value = this.codec.encode(p.out);
      const kv = await this.codec.writing(p.key, value, p.out, () => this.writeOne({ op: 'update', key: p.key, value, expectedRevision }, opts.fence));
      return withRevision(p.out, kv.modRevision);
    } catch (e) {
      throw this.mapWriteError(e, kind, cur.metadata.name);
    }
  }

  /**
   * Several creates, updates and deletes, all or none — the way a multi-key etcd transaction does (a failed
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
        const { key, stored } = await prepareCreate(this.prep, w.kind, w.object, opts);
        ops.push({ op: 'create', key, value: this.codec.encode(stored) });
        results.push(stored);
      } else if (w.op === 'update') {
        const o = w.object;
        if (!o.metadata?.name || !o.metadata.resourceVersion) {
          throw ApiError.badRequest(`transaction: an update of ${w.kind.kind} needs metadata.name and metadata.resourceVersion`);
        }
        const { obj: cur, kv } = await this.mustGet(w.kind, namespaceOf(w.kind, o.metadata.namespace), o.metadata.name);
        const expected = parseResourceVersion(o.metadata.resourceVersion);
        if (expected !== kv.modRevision) throw staleConflict(w.kind, o.metadata.name);
        const p = prepareUpdate(this.prep, w.kind, cur, shallowCopy(o), { ...opts, subresource: w.subresource });
        if (p.write === 'delete') ops.push({ op: 'delete', key: p.key, expectedRevision: expected });
        // An unchanged object still takes part: its version must not have moved when the others are written.
        else ops.push({ op: 'update', key: p.key, value: this.codec.encode(p.out), expectedRevision: expected });
        results.push(p.out);
      } else {
        const { obj: cur, kv } = await this.mustGet(w.kind, namespaceOf(w.kind, w.namespace), w.name);
        if (w.resourceVersion && parseResourceVersion(w.resourceVersion) !== kv.modRevision) throw staleConflict(w.kind, w.name);
        if (!finalizersDone(w.kind, cur)) {
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
      kvs = opts.fence ? await this.commitFenced(ops, opts.fence) : await this.store.commit(ops);
    } catch (e) {
      if (isKeyExists(e) || isKeyNotFound(e) || isRevisionMismatch(e)) throw new StaleVersionError(`transaction not applied: ${(e as Error).message}`, {});
      throw toApiError(e);
    }
    return kvs.map((kv, i) => (ops[i]!.op === 'delete' ? undefined : withRevision(results[i]!, kv.modRevision)));
  }

  /** One store write; with a fence, in one transaction with the fence's check. */
  private async writeOne(op: Exclude<WriteOp, { op: 'check' }>, fence: WriteFence | undefined): Promise<KeyValue> {
    if (fence) return (await this.commitFenced([op], fence))[0]!;
    switch (op.op) {
      case 'create':
        return this.store.create(op.key, op.value);
      case 'update':
        return this.store.update(op.key, op.value, op.expectedRevision);
      case 'delete':
        return this.store.delete(op.key, op.expectedRevision);
    }
  }

  /**
   * The ops, applied only while the fence's object is at its resourceVersion (one store transaction). A failed
   * check is a FencedError, not a conflict on the object: reading the object again would not help.
   */
  private async commitFenced(ops: WriteOp[], fence: WriteFence): Promise<KeyValue[]> {
    const check: WriteOp = { op: 'check', key: keyFor(fence.kind, namespaceOf(fence.kind, fence.namespace), fence.name), expectedRevision: parseResourceVersion(fence.resourceVersion) };
    try {
      return (await this.store.commit([check, ...ops])).slice(1);
    } catch (e) {
      if (isStoreError(e) && e.key === check.key && (isRevisionMismatch(e) || isKeyNotFound(e))) {
        throw new FencedError(fence, `write refused: ${fenceName(fence)} is no longer at resourceVersion ${fence.resourceVersion} (${isKeyNotFound(e) ? 'it is gone' : 'someone else wrote it'}); the writer lost its lease`);
      }
      throw e;
    }
  }

  private mapWriteError(e: unknown, kind: KindDeclaration, name: string): ApiError {
    if (isRevisionMismatch(e) || isKeyExists(e)) return staleConflict(kind, name);
    if (isKeyNotFound(e)) return ApiError.notFound(kind.plural, name, kind.group);
    return toApiError(e);
  }

  async patch(kind: KindDeclaration, namespace: string | undefined, name: string, type: PatchType, body: unknown, opts: PatchOptions = {}): Promise<StoredObject> {
    const ns = namespaceOf(kind, namespace);
    checkScope(kind, ns);
    const target: PatchTarget = { kind, namespace: ns, name, hints: this.hintsFor(kind), clock: this.clock };
    for (let attempt = 0; ; attempt++) {
      const kv = await this.current.get(keyFor(kind, ns, name));
      if (!kv) {
        if (type !== 'apply') throw ApiError.notFound(kind.plural, name, kind.group);
        const { object, manager } = appliedForCreate(target, body, opts);
        const { managedFields, ...meta } = object.metadata;
        return (await this.createObject(kind, { ...object, metadata: meta }, { ...opts, fieldManager: manager }, managedFields ?? [])).object;
      }
      const cur = this.codec.own(kv);
      const { next, precondition } = patchedObject(target, cur, type, body, opts);
      if (precondition && parseResourceVersion(precondition) !== kv.modRevision) throw staleConflict(kind, name);
      next.metadata.resourceVersion = String(kv.modRevision);
      try {
        checkTypeMeta(kind, next, apiVersionOf(kind));
        return await this.writeUpdate(kind, cur, next, opts, kv.modRevision, type === 'apply' ? 'apply-done' : undefined);
      } catch (e) {
        // A patch without a resourceVersion precondition is retried against the newest version.
        if (e instanceof StaleVersionError && !precondition && attempt < MAX_CONFLICT_RETRIES) continue;
        throw toApiError(e);
      }
    }
  }

  async mergePatch(kind: KindDeclaration, namespace: string | undefined, name: string, patch: unknown, opts: WriteOptions = {}): Promise<StoredObject> {
    return this.patch(kind, namespace, name, 'merge', patch, opts);
  }

  async delete(kind: KindDeclaration, namespace: string | undefined, name: string, opts: DeleteOptions = {}): Promise<StoredObject> {
    return (await this.deleteWithResult(kind, namespace, name, opts)).object;
  }

  /** Deletes, telling whether the object is gone (200) or waits on finalizers (202). */
  async deleteWithResult(kind: KindDeclaration, namespace: string | undefined, name: string, opts: DeleteOptions = {}): Promise<{ object: StoredObject; gone: boolean }> {
    const ns = namespaceOf(kind, namespace);
    checkScope(kind, ns);
    const key = keyFor(kind, ns, name);
    for (let attempt = 0; ; attempt++) {
      const kv = await this.current.get(key);
      if (!kv) throw ApiError.notFound(kind.plural, name, kind.group);
      const cur = this.codec.own(kv);
      const p = prepareDelete(kind, cur, opts, this.clock);
      try {
        if (p.action === 'unchanged') return { object: cur, gone: false };
        if (p.action === 'mark') {
          if (opts.dryRun) return { object: p.object, gone: false };
          const out = await this.writeOne({ op: 'update', key, value: this.codec.encode(p.object), expectedRevision: kv.modRevision }, opts.fence);
          return { object: this.codec.own(out), gone: false };
        }
        if (opts.dryRun) return { object: cur, gone: true };
        const del = await this.writeOne({ op: 'delete', key, expectedRevision: kv.modRevision }, opts.fence);
        return { object: { ...cur, metadata: { ...cur.metadata, resourceVersion: String(del.modRevision) } }, gone: true };
      } catch (e) {
        // Changed or gone meanwhile: decide again on what is there now.
        if ((isRevisionMismatch(e) || isKeyNotFound(e)) && attempt < MAX_CONFLICT_RETRIES) continue;
        throw toApiError(e);
      }
    }
  }

  async deleteCollection(kind: KindDeclaration, query: ListQuery, opts: DeleteOptions = {}): Promise<StoredObject[]> {
    const list = await this.list(kind, { ...query, limit: undefined, continue: undefined });
    const out: StoredObject[] = [];
    for (const o of list.items) {
      try {
        out.push(await this.delete(kind, o.metadata.namespace, o.metadata.name, opts));
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
    return out;
  }
}

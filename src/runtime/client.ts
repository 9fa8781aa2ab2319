// The in-process client that controllers use. It is implemented by the API server's registry (so
// controllers go through the same validation, generation, finalizer and GC semantics as kubectl does)
// and passed in: the runtime never imports the API server.
import type { KindDeclaration, KubeObject, StoredObject } from '../kinds/types.js';
import { deepFreeze } from './cache.js';
import { cloneJson } from '../lib/json-clone.js';

export interface ListQuery {
  /** Namespace to list in; absent = all namespaces (or a cluster-scoped kind). */
  namespace?: string;
  /** Kubernetes label selector syntax, e.g. `app=web,tier!=db`. */
  labelSelector?: string;
  /** Kubernetes field selector syntax, e.g. `metadata.name=x`. */
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  /** resourceVersion semantics as in the kube API ('' or absent = most recent). */
  resourceVersion?: string;
  /**
   * The items (and a watch's objects) may be the client's deep-frozen shared objects rather than copies the
   * caller owns: for caches that keep them as they are (an informer), which then neither parse nor copy them,
   * and whose objects the client may hand to other readers of the same versions.
   */
  shared?: boolean;
  /**
   * Only `metadataOf` each item is wanted (frozen): a client may then decode an object just long enough to
   * project it. A client that ignores this returns whole objects.
   */
  metadataOnly?: boolean;
}

/**
 * The part of an object a metadata-only cache keeps: apiVersion, kind and the metadata that identify it and
 * drive its lifecycle (names, uid, resourceVersion, generation, timestamps, labels, owners, finalizers) —
 * not its spec, status, data, annotations or managedFields. The kept members are the object's own, frozen,
 * so the projection holds those small parts alive and lets the rest of the object go.
 *
 * `ofWrite`: `obj` is a writer's own object, which it goes on holding (and may change), as the version stored at
 * that resourceVersion: the kept members are copied rather than frozen in place.
 */
export function metadataOf(obj: StoredObject | KubeObject, ofWrite?: { resourceVersion: string }): StoredObject {
  // A written object has everything a stored one has (prepare set it) but its resourceVersion, given here.
  const m = (obj as StoredObject).metadata;
  const copy = ofWrite !== undefined;
  const meta: StoredObject['metadata'] = { name: m.name, uid: m.uid, resourceVersion: ofWrite ? ofWrite.resourceVersion : m.resourceVersion, creationTimestamp: m.creationTimestamp };
  if (m.namespace !== undefined) meta.namespace = m.namespace;
  if (m.generation !== undefined) meta.generation = m.generation;
  if (m.deletionTimestamp !== undefined) meta.deletionTimestamp = m.deletionTimestamp;
  if (m.deletionGracePeriodSeconds !== undefined) meta.deletionGracePeriodSeconds = m.deletionGracePeriodSeconds;
  if (m.labels !== undefined) meta.labels = deepFreeze(copy ? cloneJson(m.labels) : m.labels);
  if (m.ownerReferences !== undefined) meta.ownerReferences = deepFreeze(copy ? cloneJson(m.ownerReferences) : m.ownerReferences);
  if (m.finalizers !== undefined) meta.finalizers = deepFreeze(copy ? cloneJson(m.finalizers) : m.finalizers);
  return Object.freeze({ apiVersion: obj.apiVersion, kind: obj.kind, metadata: Object.freeze(meta) }) as StoredObject;
}

/** Whether a frozen object holds no more than `metadataOf` would keep (so projecting it again would copy it). */
export function isMetadataOnly(obj: StoredObject): boolean {
  const m = obj.metadata;
  return Object.isFrozen(obj) && Object.keys(obj).length === 3 && m.managedFields === undefined && m.annotations === undefined && m.generateName === undefined;
}

export interface ObjectList {
  items: StoredObject[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface ObjectWatchEvent {
  type: WatchEventType;
  /** For BOOKMARK: an object carrying only metadata.resourceVersion. For ERROR: a Status. */
  object: StoredObject | KubeObject;
}

export interface ObjectWatchQuery extends ListQuery {
  /** Watch from this resourceVersion (exclusive). Required for informers. */
  resourceVersion: string;
  allowWatchBookmarks?: boolean;
}

export interface ObjectWatch {
  stop(): void;
}

/**
 * Another object the write depends on: it applies only while that object is still at `resourceVersion`, checked
 * in the write's own store transaction. The controllers' writes carry their leader's Lease this way (see
 * runtime/fencing.ts), so a replica that lost the lease — even one paused past it that does not know yet — writes
 * nothing. A refused write fails with a FencedError (409).
 */
export interface WriteFence {
  kind: KindDeclaration;
  namespace?: string;
  name: string;
  resourceVersion: string;
}

export interface DeleteOptions {
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
  fence?: WriteFence;
}

export interface WriteOptions {
  fieldManager?: string;
  dryRun?: boolean;
  /**
   * Write a subresource instead of the main resource: `status`, or one the kind declares (Namespace's
   * `finalize`). Each changes only what it owns.
   */
  subresource?: string;
  fence?: WriteFence;
}

/** One write of an atomic `transact`. An update names the resourceVersion it read (required). */
export type TxWrite =
  | { op: 'create'; kind: KindDeclaration; object: KubeObject }
  | { op: 'update'; kind: KindDeclaration; object: KubeObject; subresource?: string }
  | { op: 'delete'; kind: KindDeclaration; namespace?: string; name: string; resourceVersion?: string };

export interface ObjectClient {
  /** Looks a kind up by group + kind, or group + plural. */
  kind(group: string, kindOrPlural: string): KindDeclaration;
  /** The current object, possibly deep-frozen and shared: copy what you change. */
  get(kind: KindDeclaration, namespace: string | undefined, name: string): Promise<StoredObject | undefined>;
  list(kind: KindDeclaration, query?: ListQuery): Promise<ObjectList>;
  /** Events are delivered in order; an ERROR event (e.g. 410 Expired) ends the watch. */
  watch(kind: KindDeclaration, query: ObjectWatchQuery, onEvent: (e: ObjectWatchEvent) => void): Promise<ObjectWatch>;
  create(kind: KindDeclaration, obj: KubeObject, opts?: WriteOptions): Promise<StoredObject>;
  /** Optimistic: obj.metadata.resourceVersion must match, else Conflict. */
  update(kind: KindDeclaration, obj: KubeObject, opts?: WriteOptions): Promise<StoredObject>;
  /** Writes only `.status` (and requires the status subresource). */
  updateStatus(kind: KindDeclaration, obj: KubeObject, opts?: WriteOptions): Promise<StoredObject>;
  /** JSON merge patch (RFC 7386). */
  mergePatch(kind: KindDeclaration, namespace: string | undefined, name: string, patch: unknown, opts?: WriteOptions): Promise<StoredObject>;
  /**
   * Starts deletion. Returns the object as it stands afterwards: with deletionTimestamp when finalizers
   * hold it, or the last state when it is gone.
   */
  delete(kind: KindDeclaration, namespace: string | undefined, name: string, opts?: DeleteOptions): Promise<StoredObject>;
  /**
   * Several creates/updates/deletes, all or none (409 Conflict if any precondition fails: read again and
   * retry). Returns the written objects in order (undefined for deletes).
   */
  transact(writes: TxWrite[], opts?: WriteOptions): Promise<Array<StoredObject | undefined>>;
}

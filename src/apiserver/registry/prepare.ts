// What a create or an update stores, short of writing it: server-owned metadata, the status-subresource rule,
// subresources, generation, finalizers on a deleting object, managed fields, and the kind's own strategy hooks.
// The rules that hold for every kind are here; what a kind adds comes from its declaration (kinds/types.ts).
import { randomUUID } from 'node:crypto';
import type { KindDeclaration, KubeObject, ManagedFieldsEntry, ObjectMeta, StoredObject } from '../../kinds/types.js';
import { apiVersionOf } from '../../kinds/types.js';
import { keyFor } from '../../kinds/index.js';
import { compileValidator } from '../../kinds/validation.js';
import type { Clock } from '../../lib/clock.js';
import { ApiError } from '../../lib/errors.js';
import { trackUpdate, type SchemaHints } from '../patch/index.js';
import { deepEqual } from '../patch/json-value.js';
import type { FieldValidation, RequestOptions } from './options.js';
import { checkScope, checkTypeMeta, finalizersDone, finishMeta, namespaceOf, nowIso, randomSuffix, shallowCopy, specPart, stripVolatile } from './meta.js';

export interface PrepareDeps {
  clock: Clock;
  hints(kind: KindDeclaration): SchemaHints;
  /** Refuses a create in a namespace that is missing or being deleted (unless the kind allows it). */
  admitToNamespace(kind: KindDeclaration, namespace: string, obj: KubeObject): Promise<void>;
}

export function managerFor(opts: { fieldManager?: string }): string {
  return opts.fieldManager || 'metalplane';
}

/** Schema validation, pruning, defaults of the schema and the kind's own checks; throws 400/422. */
export function validateObject(kind: KindDeclaration, obj: KubeObject, opts: RequestOptions, old?: KubeObject): KubeObject {
  const mode: FieldValidation = opts.fieldValidation ?? 'Ignore';
  const r = compileValidator(kind)(obj, { fieldValidation: mode, old });
  if (r.unknownFields.length && mode === 'Strict') {
    throw ApiError.badRequest(
      `${kind.kind} in version "${kind.version}" cannot be handled as a ${kind.kind}: strict decoding error: ${r.unknownFields.map((f) => `unknown field "${f}"`).join(', ')}`,
    );
  }
  for (const w of r.warnings) opts.warnings?.push(w);
  if (r.causes.length) throw ApiError.invalid(kind.kind, obj.metadata?.name ?? '', r.causes, kind.group);
  return r.pruned;
}

/** `applied`: the managedFields of a server-side apply that creates the object (instead of an Update entry). */
export async function prepareCreate(
  deps: PrepareDeps,
  kind: KindDeclaration,
  input: KubeObject,
  opts: RequestOptions,
  applied?: ManagedFieldsEntry[],
): Promise<{ key: string; stored: KubeObject }> {
  const obj = shallowCopy(input);
  const ns = namespaceOf(kind, obj.metadata?.namespace);
  checkScope(kind, ns);
  checkTypeMeta(kind, obj, apiVersionOf(kind));
  obj.metadata = obj.metadata ?? {};
  if (kind.scope === 'Cluster') delete obj.metadata.namespace;
  if (!obj.metadata.name && obj.metadata.generateName) obj.metadata.name = obj.metadata.generateName + randomSuffix();
  if (!obj.metadata.name) {
    throw ApiError.invalid(kind.kind, '', [{ reason: 'FieldValueRequired', message: 'name or generateName is required', field: 'metadata.name' }], kind.group);
  }
  if (ns) await deps.admitToNamespace(kind, ns, obj);
  const validated = validateObject(kind, obj, opts);
  const meta: ObjectMeta = validated.metadata;
  delete meta.resourceVersion;
  meta.uid = randomUUID();
  meta.creationTimestamp = nowIso(deps.clock);
  delete meta.deletionTimestamp;
  delete meta.deletionGracePeriodSeconds;
  // Status is the controllers' to write, through the subresource; a create starts without one.
  if (kind.statusSubresource) delete validated.status;
  if (tracksGeneration(kind)) meta.generation = 1;
  else delete meta.generation;
  kind.default?.(validated);
  kind.strategy?.prepareForCreate?.(validated);
  let stored: KubeObject;
  if (applied) {
    validated.metadata.managedFields = applied;
    stored = validated;
  } else {
    // validated is the validator's deep copy, this create's own.
    stored = trackUpdate({ old: undefined, updated: validated, manager: managerFor(opts), hints: deps.hints(kind), apiVersion: apiVersionOf(kind), now: nowIso(deps.clock), owned: true });
  }
  stored = finishMeta(stored);
  return { key: keyFor(kind, ns, meta.name!), stored };
}

export interface PreparedUpdate {
  /** none: nothing changed (the resourceVersion stays); delete: the last finalizer of a deleting object went. */
  write: 'none' | 'update' | 'delete';
  key: string;
  out: KubeObject;
}

/**
 * What a write to the main resource or to a subresource stores, from what the client sent. Nothing here
 * changes `cur`: the validator returns a deep copy of what it checked, which is what gets written.
 */
export function prepareUpdate(
  deps: PrepareDeps,
  kind: KindDeclaration,
  cur: StoredObject,
  incoming: KubeObject,
  opts: RequestOptions,
  managed?: 'apply-done',
): PreparedUpdate {
  if (incoming.metadata.uid && incoming.metadata.uid !== cur.metadata.uid) {
    throw ApiError.conflict(`Precondition failed: UID in precondition: ${incoming.metadata.uid}, UID in object meta: ${cur.metadata.uid}`);
  }
  const sub = opts.subresource;
  const next = scopeToSubresource(kind, cur, incoming, sub);
  kind.strategy?.prepareForUpdate?.(next, cur, sub);
  const validated = validateObject(kind, next, opts, cur);
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
  if (tracksGeneration(kind)) {
    const gen = cur.metadata.generation ?? 1;
    m.generation = deepEqual(intentOf(kind, cur), intentOf(kind, validated)) ? gen : gen + 1;
  } else delete m.generation;
  let out: KubeObject = validated;
  if (managed !== 'apply-done') {
    // validated is the validator's own copy, used for nothing after this: tracking may keep it as the result.
    out = trackUpdate({ old: cur, updated: validated, manager: managerFor(opts), hints: deps.hints(kind), apiVersion: apiVersionOf(kind), now: nowIso(deps.clock), subresource: sub, owned: true });
  }
  out = finishMeta(out);
  const key = keyFor(kind, cur.metadata.namespace, cur.metadata.name);
  // An object being deleted whose last finalizer went away is deleted now.
  if (out.metadata.deletionTimestamp && finalizersDone(kind, out)) return { write: 'delete', key, out };
  // A no-op write keeps the resourceVersion, as kube does.
  if (deepEqual(stripVolatile(out), stripVolatile(cur))) return { write: 'none', key, out: cur };
  return { write: 'update', key, out };
}

/**
 * Kinds with a status subresource and every kind that is not a Kubernetes built-in (as custom resources are)
 * carry metadata.generation; built-ins without status (ConfigMap, Secret, Event, Lease) do not, as in kube.
 */
export function tracksGeneration(kind: KindDeclaration): boolean {
  return kind.statusSubresource === true || !kind.builtin;
}

/** What a change of bumps generation: the spec side, or — without a status subresource — all but metadata. */
function intentOf(kind: KindDeclaration, obj: KubeObject): Record<string, unknown> {
  if (kind.statusSubresource) return specPart(obj);
  const { metadata: _m, apiVersion: _a, kind: _k, ...rest } = obj;
  return rest;
}

/**
 * What each write may change. The status subresource takes only `status` (and managedFields) from the request;
 * a subresource the kind declares takes what its rule says; the main resource of a kind with a status
 * subresource leaves status as it was — for every kind, core or not.
 */
function scopeToSubresource(kind: KindDeclaration, cur: StoredObject, incoming: KubeObject, sub: string | undefined): KubeObject {
  const mf = incoming.metadata.managedFields;
  if (sub === 'status') {
    if (!kind.statusSubresource) throw ApiError.notFound(`${kind.plural}/status`, cur.metadata.name, kind.group);
    const next = shallowCopy(cur);
    if (incoming.status === undefined) delete next.status;
    else next.status = incoming.status;
    if (mf) next.metadata.managedFields = mf;
    return next;
  }
  if (sub !== undefined) {
    const rule = kind.subresources?.[sub];
    if (!rule) throw ApiError.notFound(`${kind.plural}/${sub}`, cur.metadata.name, kind.group);
    const next = shallowCopy(rule.merge(incoming, cur));
    if (mf) next.metadata.managedFields = mf;
    return next;
  }
  const next = incoming;
  if (kind.statusSubresource) {
    if (cur.status === undefined) delete next.status;
    else next.status = cur.status;
  }
  return next;
}

// Server-side apply and field ownership, as kube-apiserver's fieldmanager does them on top of
// structured-merge-diff:
// - `applyPatch` merges an applied configuration into the live object (objects merge, atomic lists
//   replace, map-lists merge by key, set-lists union), removes what the manager applied last time and no
//   longer applies unless someone else owns it, and refuses to change fields other managers own (409
//   Conflict) unless forced, in which case it takes them over.
// - `trackUpdate` records ownership for every other write (create, update, patch): the writer owns what it
//   changed or added, and nobody else does any more.
// Both keep kube's quirks that kubectl depends on: the first apply to an object without managedFields
// meets a "before-first-apply" owner; `kubectl apply --server-side` (manager "kubectl") takes over fields
// still as the client-side last-applied-configuration annotation has them without a conflict, and keeps
// that annotation in step; a write that changes nothing keeps the old timestamps.
import { ApiError, type ErrorCause } from '../../lib/errors.js';
import type { KubeObject, ManagedFieldsEntry } from '../../kinds/types.js';
import { canonicalJson, cloneJson, describeType, isJsonObject, type JsonObject, type JsonValue } from './json-value.js';
import {
  compareObjects,
  createdFieldsV1,
  FieldSet,
  fieldSetFromFieldsV1,
  fieldSetFromObject,
  formatPath,
  isTrackedPath,
  listItemElement,
  serializePathElement,
  withNamedAncestors,
  type FieldPath,
  type PathElement,
  type Subresource,
} from './managed-fields.js';
import type { SchemaHints } from './schema-hints.js';
import { cmp, decodeManagedFields, decodeOrEmpty, finish, finishOwned, managerId, printManager, toSeconds, tracked, viewWithoutManagedFields, withoutManagedFields, type Manager, type Managers } from './managers.js';

export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';
/** The Update manager kube credits with an object's fields when it is first applied to without managedFields. */
export const BEFORE_FIRST_APPLY_MANAGER = 'before-first-apply';
/** The only manager whose apply takes over from client-side apply silently, as in kube. */
const KUBECTL_SERVER_SIDE_MANAGER = 'kubectl';

export interface ApplyInput {
  /** The stored object, or undefined when applying creates it. */
  live: KubeObject | undefined;
  /** The applied configuration (the request body). */
  applied: KubeObject;
  manager: string;
  force: boolean;
  hints: SchemaHints;
  /** The apiVersion the request addresses (recorded in managedFields). */
  apiVersion: string;
  /** RFC 3339 time recorded in managedFields. */
  now: string;
  subresource?: string;
}

export interface TrackUpdateInput {
  /** The stored object, or undefined on create. */
  old: KubeObject | undefined;
  /** The object about to be stored; its metadata.managedFields is what the client sent. */
  updated: KubeObject;
  manager: string;
  hints: SchemaHints;
  apiVersion: string;
  now: string;
  subresource?: string;
  /** `updated` is the caller's own copy (nothing else holds it): it may become the result, uncopied. */
  owned?: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// Structured merge of an applied configuration into the live object

function mergeValue(l: JsonValue | undefined, r: JsonValue, node: SchemaHints, path: FieldPath): JsonValue {
  if (isJsonObject(r)) {
    if (node.mapType === 'atomic') return cloneJson(r);
    const out: JsonObject = isJsonObject(l) ? { ...l } : {};
    for (const [k, v] of Object.entries(r)) {
      if (v === undefined) continue;
      // An applied null owns the field and leaves it unset.
      if (v === null) delete out[k];
      else out[k] = mergeValue(out[k], v, node.field(k), [...path, { field: k }]);
    }
    return out;
  }
  if (Array.isArray(r) && node.listType !== 'atomic') {
    return mergeList(Array.isArray(l) ? l : [], r, node, path);
  }
  return cloneJson(r);
}

/** structured-merge-diff's list merge: applied order wins, live-only elements keep their place. */
function mergeList(lhs: JsonValue[], rhs: JsonValue[], node: SchemaHints, path: FieldPath): JsonValue[] {
  const items = node.items();
  const rKeys: string[] = [];
  const rByKey = new Map<string, JsonValue>();
  const rElement = new Map<string, PathElement>();
  rhs.forEach((item, i) => {
    const pe = listItemElement(item, node, path, i);
    const k = serializePathElement(pe);
    if (rByKey.has(k)) {
      const field = formatPath(path);
      const message = `duplicate entries for key ${formatPath([pe])}`;
      throw new ApiError(422, 'Invalid', `${field}: ${message}`, { causes: [{ reason: 'FieldValueDuplicate', message, field }] });
    }
    rByKey.set(k, item);
    rElement.set(k, pe);
    rKeys.push(k);
  });
  const lKeys: string[] = [];
  const lByKey = new Map<string, JsonValue | undefined>();
  lhs.forEach((item, i) => {
    const k = serializePathElement(listItemElement(item, node, path, i));
    // Live duplicates are tolerated; the applied element then replaces all of them.
    lByKey.set(k, lByKey.has(k) ? undefined : item);
    lKeys.push(k);
  });
  const mergeItem = (k: string): JsonValue => {
    const r = rByKey.get(k)!;
    const l = lByKey.get(k);
    return isJsonObject(r) ? mergeValue(l, r, items, [...path, rElement.get(k)!]) : cloneJson(r);
  };

  const shared = rKeys.filter((k) => lByKey.has(k));
  let nextShared: string | undefined = shared.shift();
  const mergedR = new Set<string>();
  const out: JsonValue[] = [];
  let li = 0;
  let ri = 0;
  while (li < lKeys.length || ri < rKeys.length) {
    if (li < lKeys.length && ri < rKeys.length) {
      const k = lKeys[li]!;
      if (k === rKeys[ri]) {
        mergedR.add(k);
        out.push(mergeItem(k));
        li++;
        ri++;
        nextShared = shared.shift();
        continue;
      }
      if (rByKey.has(k) && nextShared !== undefined && nextShared !== k) {
        li++; // shared, but not the next one in applied order: it is emitted when the applied list reaches it
        continue;
      }
    }
    if (li < lKeys.length) {
      const k = lKeys[li]!;
      if (!rByKey.has(k)) {
        out.push(cloneJson(lhs[li]!));
        li++;
        continue;
      } else if (mergedR.has(k)) {
        li++;
      }
    }
    if (ri < rKeys.length) {
      const k = rKeys[ri]!;
      mergedR.add(k);
      out.push(mergeItem(k));
      ri++;
      if (nextShared === k) nextShared = shared.shift();
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Pruning what the applier stopped applying

function isEmptyContainer(v: JsonValue | undefined): boolean {
  return Array.isArray(v) ? v.length === 0 : isJsonObject(v) && Object.keys(v).length === 0;
}

/**
 * Removes from `merged` what `lastSet` owned and no manager (the applier's new set included) owns now. A
 * declared object counts as owned while anything below it is; a container emptied by the removal goes too.
 */
function prune(merged: JsonObject, lastSet: FieldSet, owned: FieldSet, hints: SchemaHints, subresource: Subresource): JsonObject {
  if (lastSet.isEmpty()) return merged;
  const last = withNamedAncestors(lastSet, hints);
  const keep = withNamedAncestors(owned, hints);
  const removable = (p: FieldPath): boolean => last.has(p) && !keep.has(p) && isTrackedPath(p, subresource);
  const emptiedAndUnowned = (before: JsonValue, after: JsonValue, p: FieldPath): boolean =>
    !isEmptyContainer(before) && isEmptyContainer(after) && !keep.has(p) && isTrackedPath(p, subresource);

  const walk = (v: JsonValue, node: SchemaHints, path: FieldPath): JsonValue => {
    if (isJsonObject(v) && node.mapType !== 'atomic') {
      const out: JsonObject = {};
      for (const [k, child] of Object.entries(v)) {
        const p = [...path, { field: k }];
        if (removable(p)) continue;
        if (!last.hasPrefix(p)) {
          out[k] = child;
          continue;
        }
        const after = walk(child, node.field(k), p);
        if (!emptiedAndUnowned(child, after, p)) out[k] = after;
      }
      return out;
    }
    if (Array.isArray(v) && node.listType !== 'atomic') {
      const items = node.items();
      const out: JsonValue[] = [];
      v.forEach((item, i) => {
        const p = [...path, listItemElement(item, node, path, i)];
        if (removable(p)) return;
        out.push(last.hasPrefix(p) ? walk(item, items, p) : item);
      });
      return out;
    }
    return v;
  };
  return walk(merged, hints, []) as JsonObject;
}

// ---------------------------------------------------------------------------------------------------------
// Conflicts

interface Conflict {
  manager: Manager;
  path: FieldPath;
}

function conflictError(conflicts: Conflict[]): ApiError {
  const byManager = new Map<string, { printed: string; paths: FieldPath[] }>();
  for (const c of conflicts) {
    const printed = printManager(c.manager);
    const group = byManager.get(printed) ?? { printed, paths: [] };
    group.paths.push(c.path);
    byManager.set(printed, group);
  }
  const groups = [...byManager.values()].sort((a, b) => cmp(a.printed, b.printed));
  const causes: ErrorCause[] = [];
  for (const g of groups) {
    for (const p of g.paths) causes.push({ reason: 'FieldManagerConflict', message: `conflict with ${g.printed}`, field: formatPath(p) });
  }
  let message: string;
  if (conflicts.length === 1) {
    message = `Apply failed with 1 conflict: conflict with ${groups[0]!.printed}: ${formatPath(groups[0]!.paths[0]!)}`;
  } else {
    const lines: string[] = [];
    for (const g of groups) {
      lines.push(`conflicts with ${g.printed}:`);
      for (const p of g.paths) lines.push(`- ${formatPath(p)}`);
    }
    message = `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`;
  }
  return ApiError.conflict(message, { causes });
}

/**
 * Fields kubectl's client-side apply set and that still hold the values it set: `kubectl apply
 * --server-side` may take these over without a conflict (kube's lastAppliedManager).
 */
function fieldsStillAsLastApplied(live: JsonObject, hints: SchemaHints, apiVersion: string, subresource: Subresource): FieldSet | undefined {
  const meta = live.metadata;
  const annotations = isJsonObject(meta) ? meta.annotations : undefined;
  const raw = isJsonObject(annotations) ? annotations[LAST_APPLIED_ANNOTATION] : undefined;
  if (typeof raw !== 'string' || raw === '') return undefined;
  try {
    const lastApplied: unknown = JSON.parse(raw);
    if (!isJsonObject(lastApplied) || lastApplied.apiVersion !== apiVersion) return undefined;
    const set = fieldSetFromObject(lastApplied, hints, subresource);
    const c = compareObjects(lastApplied, live, hints);
    return set.difference(c.modified).difference(c.added).difference(c.removed);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Apply

function validateApplied(applied: unknown, live: KubeObject | undefined, apiVersion: string): asserts applied is KubeObject {
  if (!isJsonObject(applied)) throw ApiError.badRequest(`an applied configuration must be a JSON object, got ${describeType(applied)}`);
  if (applied.apiVersion !== apiVersion) {
    throw ApiError.badRequest(
      `invalid object type: the applied configuration has apiVersion ${JSON.stringify(applied.apiVersion ?? '')}, but this resource is served as ${JSON.stringify(apiVersion)}`,
    );
  }
  if (typeof applied.kind !== 'string' || applied.kind === '' || (live && applied.kind !== live.kind)) {
    throw ApiError.badRequest(
      `invalid object type: the applied configuration has kind ${JSON.stringify(applied.kind ?? '')}${live ? `, but the object is a ${live.kind}` : ''}`,
    );
  }
  if (applied.metadata !== undefined && !isJsonObject(applied.metadata)) {
    throw ApiError.badRequest(`metadata must be an object, got ${describeType(applied.metadata)}`);
  }
  if (isJsonObject(applied.metadata) && applied.metadata.managedFields !== undefined && applied.metadata.managedFields !== null) {
    throw ApiError.badRequest('metadata.managedFields must be nil in an applied configuration');
  }
}

/** Metadata only the server sets; an applied value (kubectl may send `creationTimestamp: null`) is ignored. */
const SERVER_METADATA = ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink'];

/** The part of the applied configuration the operation may change: all but status, or only status. */
function scopeApplied(applied: KubeObject, subresource: Subresource): JsonObject {
  const copy = withoutManagedFields(applied);
  if (isJsonObject(copy.metadata)) for (const f of SERVER_METADATA) delete copy.metadata[f];
  if (subresource === 'status') {
    const meta = isJsonObject(copy.metadata) ? copy.metadata : {};
    const identity: JsonObject = {};
    if (meta.name !== undefined) identity.name = meta.name;
    if (meta.namespace !== undefined) identity.namespace = meta.namespace;
    const scoped: JsonObject = { apiVersion: copy.apiVersion!, kind: copy.kind!, metadata: identity };
    if (copy.status !== undefined) scoped.status = copy.status;
    return scoped;
  }
  delete copy.status;
  return copy;
}

/** Server-side apply of `applied` (by `manager`) to `live`; see the file header. */
export function applyPatch(input: ApplyInput): { object: KubeObject } {
  const { live, applied, manager, force, hints, apiVersion, subresource } = input;
  const now = toSeconds(input.now);
  validateApplied(applied, live, apiVersion);
  const liveBody: JsonObject = live ? withoutManagedFields(live) : {};
  let managers: Managers;
  try {
    managers = live ? decodeManagedFields(live.metadata.managedFields) : new Map();
  } catch (e) {
    throw ApiError.internal(`the stored object's managedFields cannot be decoded: ${(e as Error).message}`);
  }
  if (live && managers.size === 0) {
    // kube credits everything already there to a placeholder manager, so the first apply can conflict.
    const c = tracked(compareObjects({}, liveBody, hints, true), subresource);
    const set = c.added.union(c.modified);
    const bfa: Manager = { manager: BEFORE_FIRST_APPLY_MANAGER, operation: 'Update', apiVersion, time: now, set };
    if (subresource) bfa.subresource = subresource;
    managers.set(managerId(bfa), bfa);
  }

  const config = scopeApplied(applied, subresource);
  const merged = mergeValue(liveBody, config, hints, []) as JsonObject;
  const appliedSet = fieldSetFromObject(config, hints, subresource);
  const self: Manager = { manager, operation: 'Apply', apiVersion, time: now, set: appliedSet };
  if (subresource) self.subresource = subresource;
  const selfId = managerId(self);
  const lastSet = managers.get(selfId)?.set ?? new FieldSet();
  managers.set(selfId, self);

  let owned = new FieldSet();
  for (const m of managers.values()) owned = owned.union(m.set);
  const result = prune(merged, lastSet, owned, hints, subresource);

  const c = tracked(compareObjects(liveBody, result, hints, true), subresource);
  const changed = c.modified.union(c.added);
  const conflicts: Conflict[] = [];
  for (const [id, m] of managers) {
    if (id === selfId) continue;
    for (const path of m.set.intersection(changed).paths()) conflicts.push({ manager: m, path });
  }
  if (conflicts.length > 0 && !force) {
    let remaining = conflicts;
    if (manager === KUBECTL_SERVER_SIDE_MANAGER) {
      const allowed = fieldsStillAsLastApplied(liveBody, hints, apiVersion, subresource);
      if (allowed) remaining = conflicts.filter((x) => !allowed.has(x.path));
    }
    if (remaining.length > 0) throw conflictError(remaining);
  }
  for (const [id, m] of managers) {
    if (id === selfId) continue;
    m.set = m.set.difference(changed).difference(c.removed);
  }

  if (manager === KUBECTL_SERVER_SIDE_MANAGER) syncLastApplied(result, applied);
  return { object: finish(result, managers, live, live ? liveBody : undefined) };
}

/** Keeps kubectl's client-side annotation in step with a server-side apply by kubectl (kube's lastAppliedUpdater). */
function syncLastApplied(result: JsonObject, applied: KubeObject): void {
  const meta = result.metadata;
  if (!isJsonObject(meta) || !isJsonObject(meta.annotations) || !(LAST_APPLIED_ANNOTATION in meta.annotations)) return;
  const copy = withoutManagedFields(applied);
  if (isJsonObject(copy.metadata) && isJsonObject(copy.metadata.annotations)) {
    delete copy.metadata.annotations[LAST_APPLIED_ANNOTATION];
  }
  meta.annotations = { ...meta.annotations, [LAST_APPLIED_ANNOTATION]: canonicalJson(copy) + '\n' };
}

// ---------------------------------------------------------------------------------------------------------
// Update

/** kube resets managedFields when a client sends `[]` or `[{}]`. */
function isResetRequest(entries: unknown): boolean {
  if (!Array.isArray(entries)) return false;
  if (entries.length === 0) return true;
  const [only] = entries;
  return entries.length === 1 && isJsonObject(only) && Object.values(only).every((v) => v === null || v === '' || v === undefined);
}

/** The caller's own object as the new body: its managedFields (what the client sent, already read) dropped in place. */
function dropManagedFields(obj: KubeObject): JsonObject {
  const body = obj as unknown as JsonObject;
  if (isJsonObject(body.metadata)) delete body.metadata.managedFields;
  return body;
}

/** Ownership after a create, update or non-apply patch; see the file header. */
export function trackUpdate(input: TrackUpdateInput): KubeObject {
  const { old, updated, manager, hints, apiVersion, subresource } = input;
  const now = toSeconds(input.now);
  const sent = updated.metadata?.managedFields as unknown;
  // A create that sends no managedFields: its one manager owns every tracked field, built in one walk.
  if (!old && !subresource && sent === undefined) {
    const body = input.owned ? (updated as unknown as JsonObject) : withoutManagedFields(updated);
    const fieldsV1 = createdFieldsV1(body, hints);
    if (fieldsV1 !== undefined) {
      const result = body as unknown as KubeObject;
      if (fieldsV1) result.metadata.managedFields = [{ manager, operation: 'Update', apiVersion, time: now, fieldsType: 'FieldsV1', fieldsV1 }];
      return result;
    }
  }
  // The old object is only read (compared), so a view without its managedFields does; the new one becomes the
  // result, so it is a copy unless the caller handed over its own.
  const oldBody: JsonObject = old ? viewWithoutManagedFields(old) : {};
  const newBody = input.owned ? dropManagedFields(updated) : withoutManagedFields(updated);

  let managers: Managers;
  if (subresource) {
    // A subresource write cannot touch managedFields.
    managers = decodeOrEmpty(old?.metadata.managedFields);
  } else if (isResetRequest(sent)) {
    managers = new Map();
  } else {
    // As kube: managedFields the client sent (and that decode) win; otherwise the stored ones stay.
    const fromClient = decodeOrEmpty(sent);
    managers = fromClient.size > 0 ? fromClient : decodeOrEmpty(old?.metadata.managedFields);
  }

  const c = tracked(compareObjects(oldBody, newBody, hints, true), subresource);
  const changed = c.modified.union(c.added);
  for (const m of managers.values()) m.set = m.set.difference(changed).difference(c.removed);
  if (!changed.isEmpty()) {
    const self: Manager = { manager, operation: 'Update', apiVersion, time: now, set: changed };
    if (subresource) self.subresource = subresource;
    const id = managerId(self);
    const prev = managers.get(id);
    if (prev) self.set = prev.set.union(changed);
    managers.set(id, self);
  }
  // newBody is this call's own (a copy, or the caller's owned object): it can become the result without another copy.
  return finishOwned(newBody, managers, old, old ? oldBody : undefined);
}

/** The fields a manager owns in an object, by operation (for callers and tests). */
export function managedFieldSets(obj: KubeObject): Array<{ entry: ManagedFieldsEntry; set: FieldSet }> {
  return (obj.metadata.managedFields ?? []).map((entry) => ({ entry, set: fieldSetFromFieldsV1(entry.fieldsV1) }));
}

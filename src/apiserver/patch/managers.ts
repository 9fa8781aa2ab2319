// The managers of an object's managedFields, decoded into field sets and encoded back (kube's fieldmanager
// entries: manager, operation, apiVersion, time, subresource), shared by server-side apply and update tracking.
import type { KubeObject, ManagedFieldsEntry } from '../../kinds/types.js';
import { ApiError } from '../../lib/errors.js';
import { canonicalJson, cloneJson, deepEqual, describeType, isJsonObject, type JsonObject } from './json-value.js';
import { compareObjects, FieldSet, fieldSetFromFieldsV1, fieldSetToFieldsV1, isTrackedPath, type Comparison, type FieldPath, type Subresource } from './managed-fields.js';
// ---------------------------------------------------------------------------------------------------------
// Managers

export interface Manager {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time?: string;
  subresource?: string;
  set: FieldSet;
}

export type Managers = Map<string, Manager>;

/** kube's manager identity: Apply entries are one per manager whatever the version; Update ones per version. */
export function managerId(m: Pick<Manager, 'manager' | 'operation' | 'apiVersion' | 'subresource'>): string {
  return JSON.stringify([m.manager, m.operation, m.operation === 'Update' ? m.apiVersion : '', m.subresource ?? '']);
}

/** As kube prints a manager in conflicts: `"kubectl"`, `"kubectl-edit" using v1`, `… with subresource "status"`. */
export function printManager(m: Manager): string {
  let s = JSON.stringify(m.manager);
  if (m.subresource) s += ` with subresource ${JSON.stringify(m.subresource)}`;
  if (m.operation === 'Update') s += ` using ${m.apiVersion}`;
  return s;
}

/** Decodes metadata.managedFields; throws a plain Error saying what is malformed. */
export function decodeManagedFields(entries: unknown): Managers {
  const managers: Managers = new Map();
  if (entries === undefined || entries === null) return managers;
  if (!Array.isArray(entries)) throw new Error(`metadata.managedFields must be a list, got ${describeType(entries)}`);
  entries.forEach((e: unknown, i) => {
    const where = `metadata.managedFields[${i}]`;
    if (!isJsonObject(e)) throw new Error(`${where} must be an object`);
    if (typeof e.manager !== 'string') throw new Error(`${where}.manager must be a string`);
    if (e.operation !== 'Apply' && e.operation !== 'Update') {
      throw new Error(`${where}.operation must be Apply or Update, got ${JSON.stringify(e.operation ?? null)}`);
    }
    if (e.fieldsType !== undefined && e.fieldsType !== 'FieldsV1') {
      throw new Error(`${where}.fieldsType must be FieldsV1, got ${JSON.stringify(e.fieldsType)}`);
    }
    let set: FieldSet;
    try {
      set = fieldSetFromFieldsV1(e.fieldsV1);
    } catch (err) {
      throw new Error(`${where}.fieldsV1: ${(err as Error).message}`);
    }
    const m: Manager = {
      manager: e.manager,
      operation: e.operation,
      apiVersion: typeof e.apiVersion === 'string' ? e.apiVersion : '',
      set,
    };
    if (typeof e.time === 'string') m.time = e.time;
    if (typeof e.subresource === 'string' && e.subresource !== '') m.subresource = e.subresource;
    const id = managerId(m);
    const prev = managers.get(id);
    managers.set(id, prev ? { ...prev, set: prev.set.union(m.set) } : m);
  });
  return managers;
}

export function decodeOrEmpty(entries: unknown): Managers {
  try {
    return decodeManagedFields(entries);
  } catch {
    return new Map();
  }
}

/** managedFields times are RFC 3339 with whole seconds, as kube's metav1.Time writes them. */
export function toSeconds(time: string): string {
  // Every write of one second passes the same `now`: remember the last answer rather than parse and format again.
  if (time === lastSeconds.time) return lastSeconds.result;
  const t = Date.parse(time);
  const result = Number.isNaN(t) ? time : new Date(Math.floor(t / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  lastSeconds = { time, result };
  return result;
}

let lastSeconds = { time: '', result: '' };

export function seconds(time: string | undefined): number {
  if (!time) return 0;
  const t = Date.parse(time);
  return Number.isNaN(t) ? 0 : Math.floor(t / 1000);
}

/** The entries kube would store: non-empty sets only, Apply before Update, then oldest first. */
export function encodeManagedFields(managers: Managers): ManagedFieldsEntry[] {
  const list = [...managers.values()].filter((m) => !m.set.isEmpty());
  list.sort(
    (p, q) =>
      cmp(p.operation, q.operation) ||
      seconds(p.time) - seconds(q.time) ||
      cmp(p.manager, q.manager) ||
      cmp(p.apiVersion, q.apiVersion) ||
      cmp(p.subresource ?? '', q.subresource ?? ''),
  );
  // Keys in the order kube serializes them.
  return list.map((m) => ({
    manager: m.manager,
    operation: m.operation,
    apiVersion: m.apiVersion,
    ...(m.time !== undefined ? { time: m.time } : {}),
    fieldsType: 'FieldsV1' as const,
    fieldsV1: fieldSetToFieldsV1(m.set),
    ...(m.subresource ? { subresource: m.subresource } : {}),
  }));
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sameIgnoringTime(a: unknown, b: unknown): boolean {
  const strip = (x: unknown): unknown[] =>
    (Array.isArray(x) ? x : [])
      .map((e) => (isJsonObject(e) ? { ...e, time: undefined } : e))
      .map((e) => canonicalJson(e))
      .sort();
  return deepEqual(strip(a), strip(b));
}

/** `obj` without metadata.managedFields, for reading only: everything else is `obj`'s own, not copied. */
export function viewWithoutManagedFields(obj: KubeObject): JsonObject {
  const body = obj as unknown as JsonObject;
  if (!isJsonObject(body.metadata) || body.metadata.managedFields === undefined) return body;
  const { managedFields: _dropped, ...metadata } = body.metadata;
  return { ...body, metadata };
}

export function withoutManagedFields(obj: KubeObject): JsonObject {
  const copy = cloneJson(obj) as unknown as JsonObject;
  if (isJsonObject(copy.metadata)) delete copy.metadata.managedFields;
  return copy;
}

/** Sets (or, when empty, removes) metadata.managedFields, keeping the old entries if only times moved. */
export function finish(obj: JsonObject, managers: Managers, old: KubeObject | undefined, oldBody: JsonObject | undefined): KubeObject {
  return finishOwned(cloneJson(obj), managers, old, oldBody);
}

/** `finish` on a body the caller hands over (a copy nothing else holds): it becomes the result, uncopied. */
export function finishOwned(body: JsonObject, managers: Managers, old: KubeObject | undefined, oldBody: JsonObject | undefined): KubeObject {
  let entries: ManagedFieldsEntry[] | undefined = encodeManagedFields(managers);
  const oldEntries = old?.metadata.managedFields;
  if (oldBody && oldEntries && deepEqual(body, oldBody) && sameIgnoringTime(entries, oldEntries)) {
    entries = cloneJson(oldEntries);
  }
  const result = body as unknown as KubeObject;
  if (!isJsonObject(result.metadata)) result.metadata = {};
  if (entries.length > 0) result.metadata.managedFields = entries;
  else delete result.metadata.managedFields;
  return result;
}

export function tracked(c: Comparison, subresource: Subresource): Comparison {
  const keep = (p: FieldPath): boolean => isTrackedPath(p, subresource);
  return { added: c.added.filter(keep), modified: c.modified.filter(keep), removed: c.removed.filter(keep) };
}


// Field sets: which fields of an object a manager owns, as server-side apply tracks them in
// `metadata.managedFields`. Paths are made of path elements exactly as structured-merge-diff has them —
// a member of an object (`f:name`), an element of a map-list by its keys (`k:{"name":"a"}`), an element of
// a set-list by its value (`v:"x"`), or a position (`i:0`) — and a set serializes to the FieldsV1 JSON
// kube-apiserver writes: a tree of those elements where `{}` is a leaf and `"."` marks a node that is
// itself a member while it also has members below it.
import { ApiError } from '../../lib/errors.js';
import { canonicalJson, deepEqual, describeType, isJsonObject, type JsonObject, type JsonValue } from './json-value.js';
import type { SchemaHints } from './schema-hints.js';

export type PathElement =
  | { readonly field: string }
  /** Key fields of a map-list element, sorted by name. */
  | { readonly key: ReadonlyArray<readonly [string, JsonValue]> }
  | { readonly value: JsonValue }
  | { readonly index: number };

export type FieldPath = readonly PathElement[];

// ---------------------------------------------------------------------------------------------------------
// Path elements

/** The FieldsV1 key of a path element: `f:name`, `k:{"name":"a"}`, `v:"x"`, `i:0`. */
export function serializePathElement(pe: PathElement): string {
  if ('field' in pe) return `f:${pe.field}`;
  if ('key' in pe) return `k:{${pe.key.map(([n, v]) => `${JSON.stringify(n)}:${canonicalJson(v)}`).join(',')}}`;
  if ('value' in pe) return `v:${canonicalJson(pe.value)}`;
  return `i:${pe.index}`;
}

export function parsePathElement(s: string): PathElement {
  if (s.length < 2 || s[1] !== ':') throw new Error(`${JSON.stringify(s)} is not a path element (f:…, k:…, v:… or i:…)`);
  const rest = s.slice(2);
  switch (s[0]) {
    case 'f':
      return { field: rest };
    case 'k': {
      let parsed: unknown;
      try {
        parsed = JSON.parse(rest);
      } catch {
        throw new Error(`${JSON.stringify(s)}: the key is not valid JSON`);
      }
      if (!isJsonObject(parsed)) throw new Error(`${JSON.stringify(s)}: the key must be a JSON object`);
      return keyElement(parsed, Object.keys(parsed));
    }
    case 'v':
      try {
        return { value: JSON.parse(rest) as JsonValue };
      } catch {
        throw new Error(`${JSON.stringify(s)}: the value is not valid JSON`);
      }
    case 'i': {
      if (!/^(0|[1-9][0-9]*)$/.test(rest)) throw new Error(`${JSON.stringify(s)}: the index is not a number`);
      return { index: Number(rest) };
    }
    default:
      throw new Error(`${JSON.stringify(s)}: unknown path element type ${JSON.stringify(s[0])}`);
  }
}

function keyElement(item: JsonObject, keys: readonly string[]): PathElement {
  return { key: [...keys].sort().map((k) => [k, item[k]!] as const) };
}

function valueToString(v: JsonValue): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || typeof v !== 'object') return String(v);
  return canonicalJson(v);
}

/** As kubectl shows paths in apply conflicts: `.spec.containers[name="nginx"].image`, `.finalizers[="x"]`. */
export function formatPath(path: FieldPath): string {
  return path
    .map((pe) => {
      if ('field' in pe) return `.${pe.field}`;
      if ('key' in pe) return `[${pe.key.map(([n, v]) => `${n}=${valueToString(v)}`).join(',')}]`;
      if ('value' in pe) return `[=${valueToString(pe.value)}]`;
      return `[${pe.index}]`;
    })
    .join('');
}

const KIND_RANK = (pe: PathElement): number => ('field' in pe ? 0 : 'key' in pe ? 1 : 'value' in pe ? 2 : 3);

function compareJsonForOrder(a: JsonValue, b: JsonValue): number {
  const rank = (v: JsonValue): number =>
    v === null ? 0 : typeof v === 'number' ? 1 : typeof v === 'string' ? 2 : typeof v === 'boolean' ? 3 : Array.isArray(v) ? 4 : 5;
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (typeof a === 'number' || typeof a === 'boolean') return Number(a) - Number(b);
  if (typeof a === 'string') return a < (b as string) ? -1 : a > (b as string) ? 1 : 0;
  const sa = canonicalJson(a);
  const sb = canonicalJson(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/** The order structured-merge-diff sorts elements in: fields, then keys, then values, then indices. */
export function comparePathElements(a: PathElement, b: PathElement): number {
  const d = KIND_RANK(a) - KIND_RANK(b);
  if (d !== 0) return d;
  if ('field' in a && 'field' in b) return a.field < b.field ? -1 : a.field > b.field ? 1 : 0;
  if ('key' in a && 'key' in b) {
    for (let i = 0; ; i++) {
      if (i >= a.key.length || i >= b.key.length) return a.key.length - b.key.length;
      const [an, av] = a.key[i]!;
      const [bn, bv] = b.key[i]!;
      if (an !== bn) return an < bn ? -1 : 1;
      const c = compareJsonForOrder(av, bv);
      if (c !== 0) return c;
    }
  }
  if ('value' in a && 'value' in b) return compareJsonForOrder(a.value, b.value);
  if ('index' in a && 'index' in b) return a.index - b.index;
  return 0;
}

export function comparePaths(a: FieldPath, b: FieldPath): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = comparePathElements(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

// ---------------------------------------------------------------------------------------------------------
// Field sets

function pathKey(path: FieldPath): string {
  return JSON.stringify(path.map(serializePathElement));
}

/**
 * pathKey(path) without its brackets, extended by one element: builders that walk an object keep this along
 * instead of re-serializing every path from its root (JSON of a string array is its elements' JSON joined by ',').
 */
function extendKey(inner: string, pe: PathElement): string {
  const e = 'field' in pe ? fieldKey(pe.field) : JSON.stringify(serializePathElement(pe));
  return inner === '' ? e : `${inner},${e}`;
}

// Member names repeat from object to object (metadata, labels, spec, …): their key text is kept, bounded.
const fieldKeys = new Map<string, string>();

function fieldKey(name: string): string {
  let e = fieldKeys.get(name);
  if (e === undefined) {
    e = JSON.stringify(`f:${name}`);
    if (fieldKeys.size >= 4096) fieldKeys.clear();
    fieldKeys.set(name, e);
  }
  return e;
}

/** An immutable set of field paths. */
export class FieldSet {
  // Keyed by the path's serialized elements, so a path's descendants are exactly the keys extending it.
  private byKey: ReadonlyMap<string, FieldPath>;

  constructor(paths: Iterable<FieldPath> = []) {
    const m = new Map<string, FieldPath>();
    for (const p of paths) m.set(pathKey(p), p);
    this.byKey = m;
  }

  private static of(m: Map<string, FieldPath>): FieldSet {
    const s = new FieldSet();
    s.byKey = m;
    return s;
  }

  /** A set from paths keyed by builders of this module (each key is `[` + extendKey's text + `]`). */
  static fromKeyed(entries: readonly (readonly [string, FieldPath])[]): FieldSet {
    // A loop over the array: several times cheaper than the Map constructor's iteration protocol.
    const m = new Map<string, FieldPath>();
    for (let i = 0; i < entries.length; i++) m.set(entries[i]![0], entries[i]![1]);
    return FieldSet.of(m);
  }

  get size(): number {
    return this.byKey.size;
  }
  isEmpty(): boolean {
    return this.byKey.size === 0;
  }
  has(path: FieldPath): boolean {
    return this.byKey.has(pathKey(path));
  }
  /** True if the set holds `path` or anything below it. */
  hasPrefix(path: FieldPath): boolean {
    if (path.length === 0) return !this.isEmpty();
    const k = pathKey(path);
    const below = k.slice(0, -1) + ',';
    for (const key of this.byKey.keys()) if (key === k || key.startsWith(below)) return true;
    return false;
  }
  union(other: FieldSet): FieldSet {
    if (other.isEmpty()) return this;
    const m = new Map(this.byKey);
    for (const [k, p] of other.byKey) m.set(k, p);
    return FieldSet.of(m);
  }
  intersection(other: FieldSet): FieldSet {
    const m = new Map<string, FieldPath>();
    for (const [k, p] of this.byKey) if (other.byKey.has(k)) m.set(k, p);
    return FieldSet.of(m);
  }
  difference(other: FieldSet): FieldSet {
    if (other.isEmpty()) return this;
    const m = new Map<string, FieldPath>();
    for (const [k, p] of this.byKey) if (!other.byKey.has(k)) m.set(k, p);
    return FieldSet.of(m);
  }
  /** Removes every path that is in `other` or lies below a path in `other`. */
  recursiveDifference(other: FieldSet): FieldSet {
    const prefixes = [...other.byKey.keys()].map((k) => [k, k.slice(0, -1) + ','] as const);
    const m = new Map<string, FieldPath>();
    for (const [k, p] of this.byKey) {
      if (!prefixes.some(([exact, below]) => k === exact || k.startsWith(below))) m.set(k, p);
    }
    return FieldSet.of(m);
  }
  filter(keep: (path: FieldPath) => boolean): FieldSet {
    const m = new Map<string, FieldPath>();
    for (const [k, p] of this.byKey) if (keep(p)) m.set(k, p);
    return FieldSet.of(m);
  }
  equals(other: FieldSet): boolean {
    if (this.size !== other.size) return false;
    for (const k of this.byKey.keys()) if (!other.byKey.has(k)) return false;
    return true;
  }
  /** Paths in structured-merge-diff order (parents before children). */
  paths(): FieldPath[] {
    return [...this.byKey.values()].sort(comparePaths);
  }
  /** Paths in no particular order (for callers that order what they build themselves). */
  unorderedPaths(): Iterable<FieldPath> {
    return this.byKey.values();
  }
  toString(): string {
    return this.paths().map(formatPath).join('\n');
  }
}

// ---------------------------------------------------------------------------------------------------------
// FieldsV1

interface TreeNode {
  member: boolean;
  /** Absent on leaves: most nodes are leaves, and a Map each would be most of the tree's cost. */
  children?: Map<string, { pe: PathElement; node: TreeNode }>;
}

/** FieldsV1 JSON for a set, members ordered as kube-apiserver writes them. */
export function fieldSetToFieldsV1(set: FieldSet): Record<string, unknown> {
  const root: TreeNode = { member: false };
  // The tree does not depend on the order paths come in; emit() orders each node's members.
  for (const path of set.unorderedPaths()) {
    let node = root;
    for (const pe of path) {
      const k = serializePathElement(pe);
      const children = (node.children ??= new Map());
      let next = children.get(k);
      if (!next) {
        next = { pe, node: { member: false } };
        children.set(k, next);
      }
      node = next.node;
    }
    if (path.length > 0) node.member = true;
  }
  const emit = (node: TreeNode): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    const children = node.children;
    if (!children) return out;
    if (node.member) out['.'] = {};
    if (children.size === 1) {
      for (const [k, { node: c }] of children) out[k] = emit(c);
      return out;
    }
    const entries = [...children.entries()];
    entries.sort((a, b) => comparePathElements(a[1].pe, b[1].pe));
    for (const [k, { node: c }] of entries) out[k] = emit(c);
    return out;
  };
  return emit(root);
}

/** Parses FieldsV1 JSON; throws a plain Error saying what is malformed. */
export function fieldSetFromFieldsV1(fieldsV1: unknown): FieldSet {
  if (fieldsV1 === undefined || fieldsV1 === null) return new FieldSet();
  const paths: [string, FieldPath][] = [];
  const walk = (v: unknown, path: PathElement[], key: string): void => {
    if (!isJsonObject(v)) throw new Error(`${formatPath(path) || 'fieldsV1'} must be an object, got ${describeType(v)}`);
    const keys = Object.keys(v);
    if (keys.length === 0) {
      if (path.length > 0) paths.push([`[${key}]`, path]);
      return;
    }
    for (const k of keys) {
      if (k === '.') {
        if (path.length === 0) throw new Error('"." is not allowed at the top of fieldsV1');
        if (!isJsonObject(v[k]) || Object.keys(v[k] as object).length > 0) {
          throw new Error(`${formatPath(path)}: "." must map to {}`);
        }
        paths.push([`[${key}]`, path]);
        continue;
      }
      const pe = parsePathElement(k);
      walk(v[k], [...path, pe], extendKey(key, pe));
    }
  };
  walk(fieldsV1, [], '');
  return FieldSet.fromKeyed(paths);
}

// ---------------------------------------------------------------------------------------------------------
// Field sets of objects

/** Hints for the node at `path` below `root`. */
export function hintsAt(root: SchemaHints, path: FieldPath): SchemaHints {
  let node = root;
  for (const pe of path) node = 'field' in pe ? node.field(pe.field) : node.items();
  return node;
}

function invalidStructure(path: FieldPath, message: string): ApiError {
  const field = formatPath(path);
  return new ApiError(422, 'Invalid', `${field}: ${message}`, {
    causes: [{ reason: 'FieldValueInvalid', message, field }],
  });
}

/** The path element naming element `index` of a set- or map-list. */
export function listItemElement(item: JsonValue, hints: SchemaHints, listPath: FieldPath, index: number): PathElement {
  if (hints.listType === 'map') {
    if (!isJsonObject(item)) {
      throw invalidStructure(listPath, `element ${index}: a list keyed by ${hints.listMapKeys.join(', ')} must hold objects, got ${describeType(item)}`);
    }
    for (const k of hints.listMapKeys) {
      if (item[k] === undefined) {
        throw invalidStructure(listPath, `element ${index}: associative list with keys has an element that omits key field ${JSON.stringify(k)} (and doesn't have default value)`);
      }
    }
    return keyElement(item, hints.listMapKeys);
  }
  return { value: item };
}

/** The set's elements indexed by path element; elements whose key repeats are grouped. */
function indexList(
  list: readonly JsonValue[],
  hints: SchemaHints,
  path: FieldPath,
): { order: string[]; byKey: Map<string, { pe: PathElement; items: JsonValue[] }> } {
  const order: string[] = [];
  const byKey = new Map<string, { pe: PathElement; items: JsonValue[] }>();
  list.forEach((item, i) => {
    const pe = listItemElement(item, hints, path, i);
    const k = serializePathElement(pe);
    const entry = byKey.get(k);
    if (entry) entry.items.push(item);
    else {
      byKey.set(k, { pe, items: [item] });
      order.push(k);
    }
  });
  return { order, byKey };
}

/**
 * Every field set in `value`, as structured-merge-diff's ToFieldSet: scalars, atomic lists and maps, null
 * and empty-object members, elements of set- and map-lists, and members of free-form maps are members;
 * declared objects are only implied by their members. Nothing is filtered here (see `trackedFieldSet`).
 */
export function fieldSetFromValue(value: JsonValue, hints: SchemaHints, base: FieldPath = []): FieldSet {
  const paths: FieldPath[] = [];
  const walk = (v: JsonValue, node: SchemaHints, path: FieldPath): void => {
    if (Array.isArray(v)) {
      if (node.listType === 'atomic') {
        paths.push(path);
        return;
      }
      const items = node.items();
      const { order, byKey } = indexList(v, node, path);
      for (const k of order) {
        const { pe, items: group } = byKey.get(k)!;
        const itemPath = [...path, pe];
        // A repeated key is owned as a whole; its elements cannot be told apart.
        if (group.length === 1) walk(group[0]!, items, itemPath);
        paths.push(itemPath);
      }
      return;
    }
    if (isJsonObject(v)) {
      if (node.mapType === 'atomic') {
        paths.push(path);
        return;
      }
      for (const [name, child] of Object.entries(v)) {
        if (child === undefined) continue;
        const childPath = [...path, { field: name }];
        walk(child, node.field(name), childPath);
        if (child === null || (isJsonObject(child) && Object.keys(child).length === 0)) paths.push(childPath);
        else if (!node.isNamedField(name)) paths.push(childPath);
      }
      return;
    }
    paths.push(path);
  };
  walk(value, hintsAt(hints, base), base);
  return new FieldSet(paths.filter((p) => p.length > 0));
}

/** Which part of an object an operation touches: the main resource or its `status` subresource. */
export type Subresource = 'status' | (string & {}) | undefined;

/** Metadata the server owns; never tracked, whatever the operation. */
const UNTRACKED_METADATA = new Set([
  'name',
  'namespace',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'selfLink',
  'managedFields',
]);

/**
 * Members whose whole subtree is never tracked, by any operation, and which hold scalars (apiVersion, kind,
 * server-owned metadata): a comparison that is only used through `isTrackedPath` need not walk them.
 */
function isUntrackedMember(parent: FieldPath, name: string): boolean {
  if (parent.length === 0) return name === 'apiVersion' || name === 'kind';
  if (parent.length !== 1) return false;
  const first = parent[0]!;
  return 'field' in first && first.field === 'metadata' && UNTRACKED_METADATA.has(name);
}

/**
 * Whether a path is tracked for an operation on the main resource (everything but `status`) or on the
 * `status` subresource (only `status`). apiVersion, kind, `metadata` itself and server-owned metadata
 * (name, namespace, uid, resourceVersion, generation, timestamps, managedFields) are never tracked.
 */
export function isTrackedPath(path: FieldPath, subresource?: Subresource): boolean {
  const first = path[0];
  if (!first || !('field' in first)) return false;
  if (subresource === 'status') return first.field === 'status';
  if (first.field === 'status' || first.field === 'apiVersion' || first.field === 'kind') return false;
  if (first.field === 'metadata') {
    const second = path[1];
    if (!second) return false;
    if ('field' in second && UNTRACKED_METADATA.has(second.field)) return false;
  }
  return true;
}

/**
 * The FieldsV1 of a create's one manager, built in one walk of the new object: what `fieldSetToFieldsV1` gives
 * for the tracked paths `compareObjects({}, obj)` adds, without the paths, keys and sets in between (a create
 * is most writes, and those were most of its garbage). `undefined` where the shortcut does not hold and the
 * caller must take the general path: a non-empty list that is not atomic (its elements need keys or values),
 * an atomic or empty root, metadata that is not an object. `null`: nothing is tracked. Members set to
 * undefined are absent, as in the JSON that gets stored (and in the copy the general path makes).
 */
export function createdFieldsV1(obj: JsonObject, hints: SchemaHints): Record<string, unknown> | null | undefined {
  const meta = obj.metadata;
  if (hints.mapType === 'atomic' || !isJsonObject(meta)) return undefined;
  const out: Record<string, unknown> = {};
  let tracked = false;
  // Members in the order emit() sorts them: by field name, as comparePathElements orders fields.
  for (const k of sortedNames(Object.keys(obj))) {
    if (obj[k] === undefined) continue;
    if (k === 'metadata') {
      // metadata itself is never tracked (no "."): only those of its members isTrackedPath accepts.
      const metaHints = hints.field(k);
      const m: Record<string, unknown> = {};
      let any = false;
      for (const mk of sortedNames(Object.keys(meta))) {
        if (meta[mk] === undefined || !isTrackedPath([METADATA, { field: mk }])) continue;
        const f = addedMember(meta[mk]!, metaHints.field(mk));
        if (f === undefined) return undefined;
        m[`f:${mk}`] = f;
        any = true;
      }
      if (any) {
        out['f:metadata'] = m;
        tracked = true;
      }
      continue;
    }
    if (!isTrackedPath([{ field: k }])) continue;
    const f = addedMember(obj[k]!, hints.field(k));
    if (f === undefined) return undefined;
    out[`f:${k}`] = f;
    tracked = true;
  }
  return tracked ? out : null;
}

const METADATA: PathElement = { field: 'metadata' };

/**
 * `names` sorted in place as comparePathElements orders fields. An object has a handful of members, and
 * Array.prototype.sort allocates its work area on every call (it was most of a create's FieldsV1 garbage).
 */
function sortedNames(names: string[]): string[] {
  if (names.length > 16) return names.sort();
  for (let i = 1; i < names.length; i++) {
    const n = names[i]!;
    let j = i - 1;
    for (; j >= 0 && names[j]! > n; j--) names[j + 1] = names[j]!;
    names[j + 1] = n;
  }
  return names;
}

/** The FieldsV1 of a member added whole (see createdFieldsV1); `undefined` for a non-empty non-atomic list. */
function addedMember(v: JsonValue, node: SchemaHints): Record<string, unknown> | undefined {
  if (Array.isArray(v)) return node.listType === 'atomic' || v.length === 0 ? {} : undefined;
  if (!isJsonObject(v)) return {};
  const keys = Object.keys(v);
  if (node.mapType === 'atomic' || keys.length === 0) return {};
  const out: Record<string, unknown> = { '.': {} };
  let members = 0;
  for (const k of sortedNames(keys)) {
    if (v[k] === undefined) continue;
    const f = addedMember(v[k]!, node.field(k));
    if (f === undefined) return undefined;
    out[`f:${k}`] = f;
    members++;
  }
  // A map of only undefined members is stored as {}: a leaf.
  return members > 0 ? out : {};
}

/** The fields of an object a manager would own: `fieldSetFromValue` restricted to tracked paths. */
export function fieldSetFromObject(obj: JsonObject, hints: SchemaHints, subresource?: Subresource): FieldSet {
  return fieldSetFromValue(obj, hints).filter((p) => isTrackedPath(p, subresource));
}

/**
 * Adds every declared object that holds a member of the set (structured-merge-diff's
 * EnsureNamedFieldsAreMembers): `.spec.replicas` implies `.spec`, `.metadata.labels.app` implies
 * `.metadata.labels` but not the label.
 */
export function withNamedAncestors(set: FieldSet, hints: SchemaHints): FieldSet {
  const extra: FieldPath[] = [];
  for (const path of set.paths()) {
    let node = hints;
    for (let i = 0; i < path.length - 1; i++) {
      const pe = path[i]!;
      if ('field' in pe) {
        if (node.isNamedField(pe.field)) extra.push(path.slice(0, i + 1));
        node = node.field(pe.field);
      } else {
        node = node.items();
      }
    }
  }
  return set.union(new FieldSet(extra));
}

// ---------------------------------------------------------------------------------------------------------
// Comparison

export interface Comparison {
  /** Present only in the new object (with the new object's nodes, not only its leaves). */
  added: FieldSet;
  /** Present in both with different values (leaves: scalars, atomic lists and maps). */
  modified: FieldSet;
  /** Present only in the old object. */
  removed: FieldSet;
}

/**
 * What changed between two values, path by path, as structured-merge-diff's Compare. `onlyTracked`: the caller
 * keeps only paths `isTrackedPath` accepts (managers.ts `tracked`), so members that are never tracked are not
 * walked; what is left after that filter is the same either way.
 */
export function compareObjects(lhs: JsonValue | undefined, rhs: JsonValue | undefined, hints: SchemaHints, onlyTracked = false): Comparison {
  // Each path travels with its key (see extendKey), so no path is serialized from its root again.
  type Keyed = [key: string, path: FieldPath];
  const added: Keyed[] = [];
  const modified: Keyed[] = [];
  const removed: Keyed[] = [];
  const leaf = (l: JsonValue | undefined, r: JsonValue | undefined, path: FieldPath, key: string): void => {
    if (l === undefined) added.push([`[${key}]`, path]);
    else if (r === undefined) removed.push([`[${key}]`, path]);
    else if (!deepEqual(l, r)) modified.push([`[${key}]`, path]);
  };
  const isEmpty = (v: JsonValue | undefined): boolean =>
    v === undefined || (Array.isArray(v) ? v.length === 0 : isJsonObject(v) && Object.keys(v).length === 0);
  const walk = (l: JsonValue | undefined, r: JsonValue | undefined, node: SchemaHints, path: FieldPath, key: string): void => {
    if (l === undefined && r === undefined) return;
    const lObj = l === undefined || isJsonObject(l);
    const rObj = r === undefined || isJsonObject(r);
    const lArr = l === undefined || Array.isArray(l);
    const rArr = r === undefined || Array.isArray(r);
    if (lObj && rObj && (l !== undefined || r !== undefined) && (isJsonObject(l) || isJsonObject(r))) {
      // Two empty maps compare as a leaf, which keeps the difference between absent and {}.
      if (node.mapType === 'atomic' || (isEmpty(l) && isEmpty(r))) return leaf(l, r, path, key);
      const lo = (l ?? {}) as JsonObject;
      const ro = (r ?? {}) as JsonObject;
      const skip = onlyTracked && path.length <= 1;
      for (const k of Object.keys(lo)) {
        if (skip && isUntrackedMember(path, k)) continue;
        const pe = { field: k };
        walk(lo[k], ro[k], node.field(k), [...path, pe], extendKey(key, pe));
      }
      for (const k of Object.keys(ro)) {
        if (k in lo) continue;
        if (skip && isUntrackedMember(path, k)) continue;
        const pe = { field: k };
        walk(undefined, ro[k], node.field(k), [...path, pe], extendKey(key, pe));
      }
      if (path.length > 0) {
        if (l === undefined) added.push([`[${key}]`, path]);
        else if (r === undefined) removed.push([`[${key}]`, path]);
      }
      return;
    }
    if (lArr && rArr && (Array.isArray(l) || Array.isArray(r))) {
      if (node.listType === 'atomic' || (isEmpty(l) && isEmpty(r))) return leaf(l, r, path, key);
      const li = indexList((l ?? []) as JsonValue[], node, path);
      const ri = indexList((r ?? []) as JsonValue[], node, path);
      const items = node.items();
      const all = [...li.order, ...ri.order.filter((k) => !li.byKey.has(k))];
      for (const k of all) {
        const le = li.byKey.get(k);
        const re = ri.byKey.get(k);
        const pe = (le ?? re)!.pe;
        const itemPath = [...path, pe];
        const itemKey = key === '' ? JSON.stringify(k) : `${key},${JSON.stringify(k)}`;
        const lg = le?.items ?? [];
        const rg = re?.items ?? [];
        if (lg.length <= 1 && rg.length <= 1) walk(lg[0], rg[0], items, itemPath, itemKey);
        else if (lg.length >= 2 && rg.length >= 2) {
          if (!deepEqual(lg, rg)) modified.push([`[${itemKey}]`, itemPath]);
        } else if (lg.length >= 2) {
          if (rg.length > 0) walk(undefined, rg[0], items, itemPath, itemKey);
          removed.push([`[${itemKey}]`, itemPath]);
        } else {
          if (lg.length > 0) walk(lg[0], undefined, items, itemPath, itemKey);
          added.push([`[${itemKey}]`, itemPath]);
        }
      }
      if (path.length > 0) {
        if (l === undefined) added.push([`[${key}]`, path]);
        else if (r === undefined) removed.push([`[${key}]`, path]);
      }
      return;
    }
    leaf(l, r, path, key);
  };
  walk(lhs, rhs, hints, [], '');
  return { added: FieldSet.fromKeyed(added), modified: FieldSet.fromKeyed(modified), removed: FieldSet.fromKeyed(removed) };
}

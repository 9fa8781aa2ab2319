// Strategic merge patch (`application/strategic-merge-patch+json`), the patch kubectl sends for built-in
// kinds (`kubectl patch`, `kubectl apply` client-side, `kubectl label/annotate/edit`). Like a JSON merge
// patch — objects merge, `null` deletes — except that a list whose schema says
// `x-kubernetes-patch-strategy: merge` merges element by element (by `x-kubernetes-patch-merge-key` for
// objects, by value for primitives) instead of being replaced, and that these directives are honoured
// and never stored:
//   `$patch: replace|delete|merge` in an object; `{"$patch": "delete", <key>: v}` / `{"$patch": "replace"}`
//   as elements of a merge list; `$retainKeys: [...]`; `$setElementOrder/<list>: [...]`;
//   `$deleteFromPrimitiveList/<list>: [...]`.
// Semantics follow k8s.io/apimachinery/pkg/util/strategicpatch as the API server applies a patch.
import { ApiError } from '../../lib/errors.js';
import { cloneJson, deepEqual, describeType, isJsonObject, type JsonObject, type JsonValue } from './json-value.js';
import type { SchemaHints } from './schema-hints.js';

const PATCH = '$patch';
const RETAIN_KEYS = '$retainKeys';
const SET_ELEMENT_ORDER = '$setElementOrder/';
const DELETE_FROM_PRIMITIVE_LIST = '$deleteFromPrimitiveList/';

/** Applies a strategic merge patch to an object (neither argument is modified). */
export function applyStrategicMergePatch(original: unknown, patch: unknown, hints: SchemaHints): JsonObject {
  if (!isJsonObject(patch)) {
    throw ApiError.badRequest(`a strategic merge patch must be a JSON object, got ${describeType(patch)}`);
  }
  return mergeMap(isJsonObject(original) ? original : undefined, patch, hints, '');
}

function bad(path: string, message: string): ApiError {
  return ApiError.badRequest(`strategic merge patch${path ? ` at ${path}` : ''}: ${message}`);
}

function isMergeList(node: SchemaHints): boolean {
  return node.patchStrategies.includes('merge');
}

function checkDirectiveKeys(patch: JsonObject, path: string): void {
  for (const key of Object.keys(patch)) {
    if (!key.startsWith('$')) continue;
    if (key === PATCH || key === RETAIN_KEYS) continue;
    if ((key.startsWith(SET_ELEMENT_ORDER) || key.startsWith(DELETE_FROM_PRIMITIVE_LIST)) && !key.endsWith('/')) continue;
    throw bad(
      path,
      `unknown directive ${JSON.stringify(key)}; known directives are $patch, $retainKeys, $setElementOrder/<list> and $deleteFromPrimitiveList/<list>`,
    );
  }
}

/** A patch value applied to nothing: directives are resolved and stripped, nulls dropped. */
function fresh(value: JsonValue, node: SchemaHints, path: string): JsonValue {
  if (isJsonObject(value)) return mergeMap(undefined, value, node, path);
  if (Array.isArray(value)) return mergeList(undefined, value, node, path);
  return value;
}

function mergeMap(original: JsonObject | undefined, patchIn: JsonObject, node: SchemaHints, path: string): JsonObject {
  checkDirectiveKeys(patchIn, path);
  const patch: JsonObject = { ...patchIn };
  if (PATCH in patch) {
    const directive = patch[PATCH];
    delete patch[PATCH];
    if (directive === 'replace') return mergeMap(undefined, patch, node, path);
    // As kube: the object is emptied, not removed (use null on the parent's key to remove it).
    if (directive === 'delete') return {};
    if (directive !== 'merge') {
      throw bad(path, `unknown $patch directive ${JSON.stringify(directive)} in an object; use replace, delete or merge`);
    }
  }
  const out: JsonObject = original ? cloneJson(original) : {};

  if (RETAIN_KEYS in patch) {
    const retain = patch[RETAIN_KEYS];
    delete patch[RETAIN_KEYS];
    if (!Array.isArray(retain) || !retain.every((k) => typeof k === 'string')) {
      throw bad(path, '$retainKeys must be a list of field names');
    }
    for (const [k, v] of Object.entries(patch)) {
      if (v === null || k.startsWith(SET_ELEMENT_ORDER) || k.startsWith(DELETE_FROM_PRIMITIVE_LIST)) continue;
      if (!retain.includes(k)) throw bad(path, `${JSON.stringify(k)} is patched but missing from $retainKeys`);
    }
    for (const k of Object.keys(out)) if (!retain.includes(k)) delete out[k];
  }

  const handled = new Set<string>();
  // $setElementOrder lists first: they merge their list and then impose the order.
  for (const [key, order] of Object.entries(patch)) {
    if (!key.startsWith(SET_ELEMENT_ORDER)) continue;
    const field = key.slice(SET_ELEMENT_ORDER.length);
    const fieldPath = `${path}.${field}`;
    if (!Array.isArray(order)) throw bad(fieldPath, `${key} must be a list`);
    const child = node.field(field);
    if (!isMergeList(child)) continue; // order of a replaced list is the patch's own
    const originalList = out[field];
    const patchList = patch[field];
    if (originalList !== undefined && !Array.isArray(originalList)) continue;
    if (patchList !== undefined && patchList !== null && !Array.isArray(patchList)) {
      throw bad(fieldPath, `expected a list, got ${describeType(patchList)}`);
    }
    handled.add(field);
    if (patchList === null) {
      delete out[field];
      continue;
    }
    if (originalList === undefined && patchList === undefined) continue;
    if (patchList) checkOrderAgreesWithPatch(patchList, order, child.patchMergeKey, fieldPath);
    const merged = patchList
      ? mergeList(originalList, patchList, child, fieldPath)
      : (originalList as JsonValue[]);
    const [inOrder, serverOnly] = partition(merged, order, child.patchMergeKey);
    out[field] = normalizeOrder(inOrder, serverOnly, order, originalList ?? [], child.patchMergeKey);
  }

  const deletions: Array<[string, JsonValue]> = [];
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith(SET_ELEMENT_ORDER) || handled.has(key)) continue;
    if (key.startsWith(DELETE_FROM_PRIMITIVE_LIST)) {
      deletions.push([key.slice(DELETE_FROM_PRIMITIVE_LIST.length), value]);
      continue;
    }
    const childPath = `${path}.${key}`;
    const child = node.field(key);
    if (value === null) {
      delete out[key];
      continue;
    }
    const current = out[key];
    if (current === undefined || current === null) {
      out[key] = fresh(value, child, childPath);
    } else if (isJsonObject(current) && isJsonObject(value)) {
      out[key] = child.patchStrategies.includes('replace')
        ? mergeMap(undefined, value, child, childPath)
        : mergeMap(current, value, child, childPath);
    } else if (Array.isArray(current) && Array.isArray(value)) {
      out[key] = mergeList(current, value, child, childPath);
    } else {
      out[key] = fresh(value, child, childPath);
    }
  }

  for (const [field, toDelete] of deletions) {
    const fieldPath = `${path}.${field}`;
    if (!Array.isArray(toDelete)) throw bad(fieldPath, `${DELETE_FROM_PRIMITIVE_LIST}${field} must be a list`);
    const current = out[field];
    if (current === undefined || current === null) continue;
    if (!Array.isArray(current)) throw bad(fieldPath, `${DELETE_FROM_PRIMITIVE_LIST}${field} targets a ${describeType(current)}, not a list`);
    out[field] = current.filter((v) => !toDelete.some((d) => deepEqual(d, v)));
  }
  return out;
}

function directiveOf(item: JsonValue): JsonValue | undefined {
  return isJsonObject(item) && PATCH in item ? item[PATCH] : undefined;
}

function mergeList(original: JsonValue[] | undefined, patch: JsonValue[], node: SchemaHints, path: string): JsonValue[] {
  const items = node.items();
  if (!isMergeList(node)) {
    // Replace: the patch's list is the new list. A lone `{"$patch":"replace"}` marker says just that.
    return patch
      .filter((v) => !(isJsonObject(v) && Object.keys(v).length === 1 && directiveOf(v) === 'replace'))
      .map((v, i) => fresh(v, items, `${path}[${i}]`));
  }
  const mergeKey = node.patchMergeKey;
  const base = original ?? [];
  if (base.length === 0 && patch.length === 0) return [...base];

  // Special elements: `$patch: replace` (the rest of the patch is the list) and `$patch: delete` (by key).
  let current = cloneJson(base);
  const plain: JsonValue[] = [];
  let replace = false;
  patch.forEach((item, i) => {
    const directive = directiveOf(item);
    if (directive === undefined) {
      plain.push(item);
      return;
    }
    const obj = item as JsonObject;
    if (directive === 'replace') replace = true;
    else if (directive === 'delete') {
      if (!mergeKey) {
        throw bad(path, `element ${i}: $patch: delete needs a merge key, and this list is merged by value (use $deleteFromPrimitiveList)`);
      }
      if (obj[mergeKey] === undefined) throw bad(path, `element ${i}: $patch: delete without the merge key ${JSON.stringify(mergeKey)}`);
      current = current.filter((c) => !(isJsonObject(c) && deepEqual(c[mergeKey], obj[mergeKey])));
    } else if (directive !== 'merge') {
      throw bad(path, `element ${i}: unknown $patch directive ${JSON.stringify(directive)} in a list; use replace or delete`);
    }
  });
  if (replace) return plain.map((v, i) => fresh(v, items, `${path}[${i}]`));

  let merged: JsonValue[];
  if (plain.some(isJsonObject) || current.some(isJsonObject)) {
    if (!mergeKey) throw bad(path, 'cannot merge a list of objects without x-kubernetes-patch-merge-key');
    merged = [...current]; // `current` stays the live order the result is normalized against
    plain.forEach((item, i) => {
      if (!isJsonObject(item)) throw bad(path, `element ${i}: expected an object, got ${describeType(item)}`);
      const keyValue = item[mergeKey];
      if (keyValue === undefined) {
        throw bad(path, `element ${i} does not contain the merge key ${JSON.stringify(mergeKey)}`);
      }
      const at = merged.findIndex((m) => isJsonObject(m) && deepEqual(m[mergeKey], keyValue));
      if (at >= 0) merged[at] = mergeMap(merged[at] as JsonObject, item, items, `${path}[${mergeKey}=${JSON.stringify(keyValue)}]`);
      else merged.push(mergeMap(undefined, item, items, `${path}[${mergeKey}=${JSON.stringify(keyValue)}]`));
    });
  } else {
    merged = [];
    for (const v of [...current, ...plain]) if (!merged.some((m) => deepEqual(m, v))) merged.push(v);
  }
  const [inPatch, serverOnly] = partition(merged, plain, mergeKey);
  return normalizeOrder(inPatch, serverOnly, plain, current, mergeKey);
}

function identity(item: JsonValue, mergeKey: string | undefined): JsonValue | undefined {
  if (mergeKey && isJsonObject(item)) return item[mergeKey];
  return item;
}

function indexIn(list: readonly JsonValue[], item: JsonValue, mergeKey: string | undefined): number {
  const id = identity(item, mergeKey);
  return list.findIndex((x) => deepEqual(identity(x, mergeKey), id));
}

/** Splits `items` into those named in `by` and the rest (server-only), keeping their order. */
function partition(items: readonly JsonValue[], by: readonly JsonValue[], mergeKey: string | undefined): [JsonValue[], JsonValue[]] {
  const named: JsonValue[] = [];
  const rest: JsonValue[] = [];
  for (const item of items) (indexIn(by, item, mergeKey) >= 0 ? named : rest).push(item);
  return [named, rest];
}

/**
 * kube's order for a merged list: patch items in patch (or $setElementOrder) order, server-only items in
 * their live order, interleaved so each server-only item stays before the patch item it preceded live.
 */
function normalizeOrder(
  patchItems: JsonValue[],
  serverOnly: JsonValue[],
  patchOrder: readonly JsonValue[],
  serverOrder: readonly JsonValue[],
  mergeKey: string | undefined,
): JsonValue[] {
  const sortBy = (list: JsonValue[], order: readonly JsonValue[]): JsonValue[] =>
    list
      .map((item, i) => ({ item, i, at: indexIn(order, item, mergeKey) }))
      .sort((a, b) => (a.at >= 0 && b.at >= 0 ? a.at - b.at : a.i - b.i))
      .map((x) => x.item);
  const right = sortBy(patchItems, patchOrder);
  const left = sortBy(serverOnly, serverOrder);
  const out: JsonValue[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    if (i >= left.length) out.push(right[j++]!);
    else if (j >= right.length) out.push(left[i++]!);
    else {
      const li = indexIn(serverOrder, left[i]!, mergeKey);
      const ri = indexIn(serverOrder, right[j]!, mergeKey);
      if (li >= 0 && ri >= 0 && li < ri) out.push(left[i++]!);
      else out.push(right[j++]!);
    }
  }
  return out;
}

/** Every (non-deleting) patch element must appear in $setElementOrder, in the same relative order. */
function checkOrderAgreesWithPatch(patchList: readonly JsonValue[], order: readonly JsonValue[], mergeKey: string | undefined, path: string): void {
  const items = patchList.filter((v) => directiveOf(v) === undefined);
  let o = 0;
  for (const item of items) {
    const id = identity(item, mergeKey);
    while (o < order.length && !deepEqual(identity(order[o]!, mergeKey), id)) o++;
    if (o >= order.length) {
      throw bad(path, `the order of the patch list does not match its $setElementOrder list (${JSON.stringify(id)} is missing or out of order)`);
    }
    o++;
  }
}

// RFC 6902 JSON Patch (`application/json-patch+json`), as `kubectl patch --type=json` sends it.
// A malformed patch document is the client's syntax error (400 BadRequest); a well-formed operation that
// cannot be applied — a missing path, a failing `test` — is answered 422 Invalid, as kube-apiserver does
// (it wraps jsonpatch errors in a 422). The document is patched on a copy: all operations apply or none.
import { ApiError } from '../../lib/errors.js';
import { measureValue } from '../../lib/bounded-json.js';
import { cloneJson, deepEqual, describeType, isJsonObject, type JsonObject, type JsonValue } from './json-value.js';

export type JsonPatchOperation =
  | { op: 'add'; path: string; value: JsonValue }
  | { op: 'remove'; path: string }
  | { op: 'replace'; path: string; value: JsonValue }
  | { op: 'move'; from: string; path: string }
  | { op: 'copy'; from: string; path: string }
  | { op: 'test'; path: string; value: JsonValue };

/** kube-apiserver refuses JSON patches with more operations than this (413). */
export const MAX_JSON_PATCH_OPERATIONS = 10000;

/**
 * The most a patch's `copy` operations may copy, together (estimated JSON characters). Each copy can double the
 * document (`copy /spec` to `/spec/again`), so thirty of them would otherwise ask for gigabytes before the result
 * is ever validated. Twice the body limit: copies can never build more than a body could carry.
 */
export const MAX_JSON_PATCH_COPIED_BYTES = 6 * 1024 * 1024;
/** Deepest value a `copy` may copy (the copy recurses). Stored objects are far shallower than this. */
const MAX_COPIED_DEPTH = 1000;

const OPS = ['add', 'remove', 'replace', 'move', 'copy', 'test'] as const;

/** Splits an RFC 6901 JSON pointer into unescaped reference tokens (`~1` → `/`, `~0` → `~`). */
export function parseJsonPointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) {
    throw new Error(`JSON pointer ${JSON.stringify(pointer)} must be empty or start with "/"`);
  }
  return pointer
    .slice(1)
    .split('/')
    .map((token) => {
      if (/~[^01]|~$/.test(token)) {
        throw new Error(`JSON pointer ${JSON.stringify(pointer)} has an invalid escape; only ~0 (for ~) and ~1 (for /) exist`);
      }
      return token.replace(/~1/g, '/').replace(/~0/g, '~');
    });
}

export function formatJsonPointer(tokens: readonly string[]): string {
  return tokens.map((t) => '/' + t.replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

/**
 * Validates a parsed request body as a JSON patch document. Throws 400 naming the offending operation.
 */
export function parseJsonPatch(patch: unknown): JsonPatchOperation[] {
  if (!Array.isArray(patch)) {
    throw ApiError.badRequest(`a JSON patch must be an array of operations, got ${describeType(patch)}`);
  }
  if (patch.length > MAX_JSON_PATCH_OPERATIONS) {
    throw ApiError.tooLarge(
      `the JSON patch has ${patch.length} operations, more than the ${MAX_JSON_PATCH_OPERATIONS} allowed`,
    );
  }
  return patch.map((raw, i) => {
    const where = `JSON patch operation ${i}`;
    if (!isJsonObject(raw)) throw ApiError.badRequest(`${where}: must be an object, got ${describeType(raw)}`);
    const op = raw.op;
    if (typeof op !== 'string' || !(OPS as readonly string[]).includes(op)) {
      throw ApiError.badRequest(
        `${where}: "op" must be one of ${OPS.join(', ')}, got ${op === undefined ? 'nothing' : JSON.stringify(op)}`,
      );
    }
    const path = raw.path;
    if (typeof path !== 'string') throw ApiError.badRequest(`${where} (${op}): "path" must be a string`);
    checkPointer(path, `${where} (${op}): "path"`);
    switch (op) {
      case 'add':
      case 'replace':
      case 'test':
        if (!Object.prototype.hasOwnProperty.call(raw, 'value')) {
          throw ApiError.badRequest(`${where} (${op} ${path}): "value" is required`);
        }
        return { op, path, value: raw.value as JsonValue };
      case 'remove':
        return { op, path };
      default: {
        const from = raw.from;
        if (typeof from !== 'string') throw ApiError.badRequest(`${where} (${op} ${path}): "from" must be a string`);
        checkPointer(from, `${where} (${op} ${path}): "from"`);
        return { op: op as 'move' | 'copy', from, path };
      }
    }
  });
}

function checkPointer(pointer: string, what: string): void {
  try {
    parseJsonPointer(pointer);
  } catch (e) {
    throw ApiError.badRequest(`${what}: ${(e as Error).message}`);
  }
}

/** Applies a JSON patch document to `doc` (not modified) and returns the patched copy. */
export function applyJsonPatch(doc: unknown, patch: unknown): JsonValue {
  const ops = parseJsonPatch(patch);
  let root: JsonValue = cloneJson(doc as JsonValue);
  let copyBudget = MAX_JSON_PATCH_COPIED_BYTES;
  ops.forEach((op, i) => {
    if (op.op === 'copy') copyBudget = chargeCopy(root, op.from, copyBudget, i);
    try {
      root = applyOperation(root, op);
    } catch (e) {
      if (e instanceof OperationError) {
        const at = op.op === 'move' || op.op === 'copy' ? `${op.op} ${op.from} to ${op.path}` : `${op.op} ${op.path}`;
        const message = `JSON patch operation ${i} (${at}) failed: ${e.message}`;
        throw new ApiError(422, 'Invalid', message, {
          causes: [{ reason: 'FieldValueInvalid', message, field: op.path }],
        });
      }
      throw e;
    }
  });
  return root;
}

class OperationError extends Error {}

/** What is left of the copy budget after copying `from` (a missing `from` is the operation's own error). */
function chargeCopy(root: JsonValue, from: string, budget: number, i: number): number {
  let value: JsonValue;
  try {
    value = get(root, from);
  } catch {
    return budget;
  }
  const shape = measureValue(value, { maxDepth: MAX_COPIED_DEPTH, maxBytes: budget });
  if (shape.exceeded) {
    throw ApiError.tooLarge(
      shape.exceeded === 'depth'
        ? `JSON patch operation ${i} (copy ${from}) copies a value nested more than ${MAX_COPIED_DEPTH} levels deep`
        : `JSON patch operation ${i} (copy ${from}): the patch's copies add up to more than ${MAX_JSON_PATCH_COPIED_BYTES} bytes; copy less, or send the values`,
    );
  }
  return budget - shape.bytes;
}

type Container = JsonObject | JsonValue[];

/** Resolves the parent of the last token; throws OperationError naming the missing prefix. */
function resolveParent(root: JsonValue, tokens: string[]): Container {
  let cur: JsonValue = root;
  for (let i = 0; i < tokens.length - 1; i++) {
    const next = child(cur, tokens[i]!);
    if (next === undefined) {
      throw new OperationError(`${formatJsonPointer(tokens.slice(0, i + 1))} does not exist`);
    }
    cur = next;
  }
  if (cur === null || typeof cur !== 'object') {
    throw new OperationError(`${formatJsonPointer(tokens.slice(0, -1)) || 'the document'} is a ${describeType(cur)}, not an object or array`);
  }
  return cur;
}

function child(v: JsonValue, token: string): JsonValue | undefined {
  if (Array.isArray(v)) {
    const i = arrayIndex(token, v.length, false);
    return i === undefined ? undefined : v[i];
  }
  if (isJsonObject(v)) return Object.prototype.hasOwnProperty.call(v, token) ? v[token] : undefined;
  return undefined;
}

/** RFC 6902 array index: digits without leading zeros; `-` (one past the end) only where adding. */
function arrayIndex(token: string, length: number, forAdd: boolean): number | undefined {
  if (token === '-') return forAdd ? length : undefined;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) return undefined;
  const i = Number(token);
  if (i > length || (!forAdd && i === length)) return undefined;
  return i;
}

function get(root: JsonValue, pointer: string): JsonValue {
  const tokens = parseJsonPointer(pointer);
  let cur: JsonValue = root;
  for (let i = 0; i < tokens.length; i++) {
    const next = child(cur, tokens[i]!);
    if (next === undefined) throw new OperationError(`${formatJsonPointer(tokens.slice(0, i + 1))} does not exist`);
    cur = next;
  }
  return cur;
}

function add(root: JsonValue, pointer: string, value: JsonValue): JsonValue {
  const tokens = parseJsonPointer(pointer);
  if (tokens.length === 0) return value;
  const parent = resolveParent(root, tokens);
  const last = tokens[tokens.length - 1]!;
  if (Array.isArray(parent)) {
    const i = arrayIndex(last, parent.length, true);
    if (i === undefined) {
      throw new OperationError(`index ${JSON.stringify(last)} is not valid for an array of length ${parent.length}`);
    }
    parent.splice(i, 0, value);
  } else {
    parent[last] = value;
  }
  return root;
}

function remove(root: JsonValue, pointer: string): JsonValue {
  const tokens = parseJsonPointer(pointer);
  if (tokens.length === 0) throw new OperationError('the whole document cannot be removed');
  const parent = resolveParent(root, tokens);
  const last = tokens[tokens.length - 1]!;
  if (Array.isArray(parent)) {
    const i = arrayIndex(last, parent.length, false);
    if (i === undefined) throw new OperationError(`${pointer} does not exist (array length ${parent.length})`);
    parent.splice(i, 1);
  } else {
    if (!Object.prototype.hasOwnProperty.call(parent, last)) throw new OperationError(`${pointer} does not exist`);
    delete parent[last];
  }
  return root;
}

function applyOperation(root: JsonValue, op: JsonPatchOperation): JsonValue {
  switch (op.op) {
    case 'add':
      return add(root, op.path, cloneJson(op.value));
    case 'remove':
      return remove(root, op.path);
    case 'replace':
      get(root, op.path); // must exist
      if (op.path === '') return cloneJson(op.value);
      return add(remove(root, op.path), op.path, cloneJson(op.value));
    case 'move': {
      if (op.path === op.from) {
        get(root, op.from);
        return root;
      }
      if (op.path.startsWith(op.from + '/')) {
        throw new OperationError(`cannot move ${op.from} into its own child ${op.path}`);
      }
      const value = get(root, op.from);
      return add(remove(root, op.from), op.path, value);
    }
    case 'copy':
      return add(root, op.path, cloneJson(get(root, op.from)));
    case 'test': {
      const actual = get(root, op.path);
      if (!deepEqual(actual, op.value)) {
        throw new OperationError(`the value at ${op.path || 'the document root'} is not equal to the tested value`);
      }
      return root;
    }
  }
}

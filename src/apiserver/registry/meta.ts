// Small rules every path of the registry shares: scope, resourceVersion parsing, timestamps, the parts of an
// object that count as its spec, and the stale-version conflict that a patch may retry.
import type { KindDeclaration, KubeObject, StoredObject } from '../../kinds/types.js';
import type { Clock } from '../../lib/clock.js';
import { ApiError } from '../../lib/errors.js';

/** The namespace a key of this kind uses: none for cluster-scoped kinds, whatever the caller sent. */
export function namespaceOf(kind: KindDeclaration, namespace: string | undefined): string | undefined {
  return kind.scope === 'Namespaced' ? namespace : undefined;
}

export function checkScope(kind: KindDeclaration, namespace: string | undefined): void {
  if (kind.scope === 'Namespaced' && !namespace) {
    throw ApiError.badRequest(`${kind.plural}.${kind.group || 'core'} is namespaced: a namespace is required`);
  }
}

export function parseResourceVersion(rv: string): number {
  if (!/^[0-9]+$/.test(rv)) throw ApiError.badRequest(`invalid resourceVersion "${rv}": must be a non-negative integer`);
  const n = Number(rv);
  if (!Number.isSafeInteger(n)) throw ApiError.badRequest(`invalid resourceVersion "${rv}"`);
  return n;
}

/** RFC 3339 with whole seconds, as kube writes timestamps. */
export function nowIso(clock: Clock): string {
  // Every write of one second stamps the same text (a create asks twice): format it once per second.
  const second = Math.floor(clock.now() / 1000);
  if (second !== lastIso.second) lastIso = { second, text: new Date(second * 1000).toISOString().replace(/\.000Z$/, 'Z') };
  return lastIso.text;
}

let lastIso = { second: NaN, text: '' };

/** Everything except metadata and status: a change here bumps metadata.generation. */
export function specPart(obj: KubeObject): Record<string, unknown> {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = obj;
  return rest;
}

/**
 * Copies the object and its metadata one level deep. Enough before validation: until then only top-level
 * and metadata fields are assigned, and the validator deep-copies what it returns.
 */
export function shallowCopy(input: KubeObject): KubeObject {
  const meta = input.metadata;
  return { ...input, metadata: meta && typeof meta === 'object' ? { ...meta } : meta };
}

/** Empty server-kept lists are not stored, as kube omits them. */
export function finishMeta(obj: KubeObject): KubeObject {
  const m = obj.metadata;
  if (m.managedFields && m.managedFields.length === 0) delete m.managedFields;
  if (m.finalizers && m.finalizers.length === 0) delete m.finalizers;
  if (m.ownerReferences && m.ownerReferences.length === 0) delete m.ownerReferences;
  return obj;
}

// managedFields stay in the comparison: a new manager applying values that are already there changes only
// managedFields and must be stored (the patch engine keeps old entries when nothing but times would move).
export function stripVolatile(o: KubeObject): KubeObject {
  const m = { ...o.metadata };
  delete m.resourceVersion;
  return { ...o, metadata: m };
}

/** The caller's own object, now stored at `revision` (no re-parse of what was just written). */
export function withRevision(obj: KubeObject, revision: number): StoredObject {
  obj.metadata.resourceVersion = String(revision);
  return obj as StoredObject;
}

/**
 * JSON.stringify(withRevision(obj, revision)), built from `stored` (the text ObjectCodec.encode wrote for `obj`)
 * instead of serializing the object a second time. encode writes apiVersion, kind and metadata first and no
 * resourceVersion; withRevision adds resourceVersion as the last key of metadata. So when `obj`'s own keys start
 * apiVersion, kind, metadata and its metadata has no resourceVersion yet, the two texts differ only by
 * `"resourceVersion":"N"` at the end of metadata. Otherwise undefined: the caller stringifies the object.
 */
export function jsonWithRevision(obj: KubeObject, stored: string, revision: number): string | undefined {
  const keys = Object.keys(obj);
  if (keys[0] !== 'apiVersion' || keys[1] !== 'kind' || keys[2] !== 'metadata') return undefined;
  const meta = obj.metadata as unknown;
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta) || 'resourceVersion' in meta) return undefined;
  // apiVersion and kind come first and are strings, in which `"metadata":{` cannot occur (its quotes would be escaped).
  const at = stored.indexOf('"metadata":{');
  if (at < 0) return undefined;
  const open = at + '"metadata":'.length;
  const close = matchingBrace(stored, open);
  if (close < 0) return undefined;
  const sep = close === open + 1 ? '' : ',';
  return `${stored.slice(0, close)}${sep}"resourceVersion":"${revision}"${stored.slice(close)}`;
}

/** The index of the `}` closing the JSON object that opens at `open` (strings skipped, escapes honoured); -1 if none. */
function matchingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // To the string's closing quote: the next quote not escaped by an odd run of backslashes (indexOf
      // searches natively; metadata is mostly strings).
      for (let j = i; ; ) {
        j = text.indexOf('"', j + 1);
        if (j < 0) return -1;
        let b = j - 1;
        while (text.charCodeAt(b) === 0x5c /* \ */) b--;
        if ((j - 1 - b) % 2 === 0) {
          i = j;
          break;
        }
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) depth++;
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      if (--depth === 0) return c === 0x7d ? i : -1;
    }
  }
  return -1;
}

export function checkTypeMeta(kind: KindDeclaration, obj: KubeObject, apiVersion: string): void {
  if (obj.apiVersion !== undefined && obj.apiVersion !== apiVersion) {
    throw ApiError.badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersion})`);
  }
  if (obj.kind !== undefined && obj.kind !== kind.kind) {
    throw ApiError.badRequest(`the kind in the data (${obj.kind}) does not match the expected kind (${kind.kind})`);
  }
  obj.apiVersion = apiVersion;
  obj.kind = kind.kind;
}

/** Finalizers that still hold a deletion: metadata.finalizers and any the kind keeps elsewhere. */
export function finalizersDone(kind: KindDeclaration, obj: KubeObject): boolean {
  if (obj.metadata.finalizers?.length) return false;
  return !(kind.strategy?.pendingFinalizers?.(obj).length ?? 0);
}

/** 409: the write named a version that is no longer current (the only conflict a patch may retry). */
export class StaleVersionError extends ApiError {
  constructor(message: string, details: ConstructorParameters<typeof ApiError>[3]) {
    super(409, 'Conflict', message, details);
  }
}

export function staleConflict(kind: KindDeclaration, name: string): ApiError {
  return new StaleVersionError(
    `Operation cannot be fulfilled on ${kind.plural}${kind.group ? '.' + kind.group : ''} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, group: kind.group, kind: kind.plural },
  );
}

export function randomSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let s = '';
  for (let i = 0; i < 5; i++) s += alphabet[Math.floor(Math.random() * alphabet.length)];
  return s;
}

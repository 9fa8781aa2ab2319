// The object a PATCH asks for, computed from the current one: JSON patch, merge patch, strategic merge patch,
// or server-side apply (with its conflict rules and managed fields). Writing it is the registry's job.
import type { KindDeclaration, KubeObject, ObjectMeta, StoredObject } from '../../kinds/types.js';
import { apiVersionOf } from '../../kinds/types.js';
import type { Clock } from '../../lib/clock.js';
import { ApiError } from '../../lib/errors.js';
import { applyPatch, jsonPatch, mergePatch, strategicMergePatch, type SchemaHints } from '../patch/index.js';
import { nowIso } from './meta.js';
import type { PatchOptions, PatchType } from './options.js';

export interface PatchTarget {
  kind: KindDeclaration;
  namespace: string | undefined;
  name: string;
  hints: SchemaHints;
  clock: Clock;
}

/** The patched object and the resourceVersion precondition the patch carried, if any. */
export function patchedObject(t: PatchTarget, cur: StoredObject, type: PatchType, body: unknown, opts: PatchOptions): { next: KubeObject; precondition?: string } {
  if (type === 'apply') {
    const applied = checkAppliedObject(t.kind, body, t.namespace, t.name);
    const next = applyPatch({
      live: cur,
      applied,
      manager: requireApplyManager(opts),
      force: opts.force ?? false,
      hints: t.hints,
      apiVersion: apiVersionOf(t.kind),
      now: nowIso(t.clock),
      subresource: opts.subresource,
    }).object;
    return { next, precondition: applied.metadata.resourceVersion };
  }
  // The patch functions copy what they patch; `cur` stays as read.
  const base = cur as unknown as Record<string, unknown>;
  const patched = type === 'json' ? jsonPatch(base, body) : type === 'merge' ? mergePatch(base, body) : strategicMergePatch(base, body, t.hints);
  if (!patched || typeof patched !== 'object' || Array.isArray(patched)) throw ApiError.badRequest('the patch must produce a JSON object');
  const next = patched as KubeObject;
  const rawMeta: unknown = next.metadata ?? {};
  if (typeof rawMeta !== 'object' || rawMeta === null || Array.isArray(rawMeta)) throw ApiError.badRequest('the patch must leave metadata an object');
  const meta = rawMeta as ObjectMeta;
  next.metadata = meta;
  const precondition = meta.resourceVersion !== cur.metadata.resourceVersion ? meta.resourceVersion : undefined;
  if (meta.name !== undefined && meta.name !== t.name) throw ApiError.badRequest(`the name of the object (${meta.name}) does not match the name on the URL (${t.name})`);
  meta.name = t.name;
  if (t.namespace) meta.namespace = t.namespace;
  return { next, precondition };
}

/** A server-side apply of an object that does not exist yet: the object to create and its managedFields. */
export function appliedForCreate(t: PatchTarget, body: unknown, opts: PatchOptions): { object: KubeObject; manager: string } {
  const applied = checkAppliedObject(t.kind, body, t.namespace, t.name);
  if (opts.subresource !== undefined) throw ApiError.notFound(t.kind.plural, t.name, t.kind.group);
  const manager = requireApplyManager(opts);
  const object = applyPatch({ live: undefined, applied, manager, force: opts.force ?? false, hints: t.hints, apiVersion: apiVersionOf(t.kind), now: nowIso(t.clock) }).object;
  return { object, manager };
}

function requireApplyManager(opts: PatchOptions): string {
  if (!opts.fieldManager) throw ApiError.badRequest('PATCH, application/apply-patch+yaml: fieldManager is required for apply requests');
  return opts.fieldManager;
}

function checkAppliedObject(kind: KindDeclaration, body: unknown, ns: string | undefined, name: string): KubeObject {
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

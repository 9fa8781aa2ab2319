// Reading a kube API request: its body (JSON, YAML or protobuf, bounded before any parser sees it), its media
// types, and the query parameters every verb shares, each refused with a 400/406/415 that says what would be right.
import type { FastifyRequest } from 'fastify';
import type { KubeObject } from '../kinds/types.js';
import { ApiError } from '../lib/errors.js';
import { parseBoundedJson } from '../lib/bounded-json.js';
import { DEFAULT_YAML_LIMITS, parseBoundedYaml } from '../lib/bounded-yaml.js';
import type { DeleteOptions } from '../runtime/client.js';
import { decodeProtobufObject, PROTOBUF_MEDIA_TYPE } from './protobuf.js';
import type { FieldValidation, PatchType } from './registry.js';

/** The largest request body (Fastify's bodyLimit). */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

export const PATCH_TYPES: Record<string, PatchType> = {
  'application/json-patch+json': 'json',
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'strategic',
  'application/apply-patch+yaml': 'apply',
  'application/apply-patch+cbor': 'apply',
};

export function mediaType(req: FastifyRequest): string {
  return (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

export function decodeBody(req: FastifyRequest, allowYaml: boolean): unknown {
  const raw = req.body as Buffer | undefined;
  if (!raw || raw.length === 0) throw ApiError.badRequest('the request body is empty: send a JSON or YAML object');
  const type = mediaType(req);
  // kubectl's typed clients (create namespace/configmap/secret) send built-in kinds as protobuf.
  if (type === PROTOBUF_MEDIA_TYPE) return decodeProtobufObject(raw);
  if (type.includes('protobuf') || type.includes('cbor')) {
    throw ApiError.unsupportedMediaType(`the media type "${type}" is not supported; use application/json or application/yaml`);
  }
  const text = raw.toString('utf8');
  const yamlish = type === 'application/yaml' || type === 'application/apply-patch+yaml' || type === 'text/yaml';
  if (yamlish && allowYaml) {
    // Bounded while it is parsed, before the (recursive) composer sees it: nesting, documents, nodes, and the
    // size aliases expand to.
    const values = parseBoundedYaml(text, { ...DEFAULT_YAML_LIMITS, what: 'the request body', maxBytes: MAX_BODY_BYTES, maxExpanded: 2 * MAX_BODY_BYTES });
    if (values.length !== 1) throw ApiError.badRequest(`the request body must hold exactly one YAML document, found ${values.length}`);
    return values[0];
  }
  return parseBoundedJson(text, { what: 'the request body', maxDepth: MAX_BODY_DEPTH });
}

/**
 * Validation, patching and managed fields walk objects recursively, so a body nested thousands of levels deep
 * would exhaust the stack (a 500). No real object comes close to this limit; deeper JSON is refused from its
 * text, before it is parsed (stored objects are bounded more tightly still, by the kind's validator).
 */
export const MAX_BODY_DEPTH = 500;

export function asObject(v: unknown, what: string): KubeObject {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw ApiError.badRequest(`${what} must be a JSON object`);
  const o = v as KubeObject;
  if (o.metadata !== undefined && (typeof o.metadata !== 'object' || o.metadata === null || Array.isArray(o.metadata))) {
    throw ApiError.badRequest(`${what}: metadata must be an object`);
  }
  o.metadata = o.metadata ?? {};
  return o;
}

export type Query = Record<string, string | string[] | undefined>;

export function q1(query: Query, name: string): string | undefined {
  const v = query[name];
  return Array.isArray(v) ? v[v.length - 1] : v;
}

// Go's strconv.ParseBool, which kube-apiserver uses: the Python client sends `watch=True`.
export const TRUE_VALUES = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);
export const FALSE_VALUES = new Set(['0', 'f', 'F', 'false', 'FALSE', 'False']);

export function boolParam(query: Query, name: string): boolean {
  const v = q1(query, name);
  if (v === undefined || v === '' || FALSE_VALUES.has(v)) return false;
  if (TRUE_VALUES.has(v)) return true;
  throw ApiError.badRequest(`invalid value for ${name}: "${v}" (use true or false)`);
}

export function intParam(query: Query, name: string): number | undefined {
  const v = q1(query, name);
  if (v === undefined || v === '') return undefined;
  if (!/^-?[0-9]+$/.test(v)) throw ApiError.badRequest(`invalid value for ${name}: "${v}" is not an integer`);
  const n = Number(v);
  if (n < 0) throw ApiError.badRequest(`invalid value for ${name}: must not be negative`);
  if (!Number.isSafeInteger(n)) throw ApiError.badRequest(`invalid value for ${name}: "${v}" is too large`);
  return n;
}

export function dryRunParam(query: Query): boolean {
  const raw = query.dryRun;
  const vals = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  for (const v of vals) if (v !== 'All') throw ApiError.badRequest(`Invalid dry run value: "${v}": the only supported value is "All"`);
  return vals.length > 0;
}

export function fieldValidationParam(query: Query): FieldValidation {
  const v = q1(query, 'fieldValidation');
  if (v === undefined || v === '') return 'Warn';
  if (v === 'Strict' || v === 'Warn' || v === 'Ignore') return v;
  throw ApiError.badRequest(`Invalid fieldValidation value "${v}": must be one of Ignore, Warn or Strict`);
}

export function fieldManagerParam(query: Query, req: FastifyRequest): string {
  const v = q1(query, 'fieldManager');
  if (v !== undefined) {
    if (v.length > 128) throw ApiError.badRequest('fieldManager must be at most 128 characters');
    if (!/^[\x20-\x7e]*$/.test(v)) throw ApiError.badRequest('fieldManager must consist of printable characters');
    if (v) return v;
  }
  // Like kube-apiserver: default to the user agent's product name (e.g. "kubectl").
  const ua = String(req.headers['user-agent'] ?? '');
  return ua.split('/')[0].slice(0, 128) || 'unknown';
}

export interface Negotiated {
  table: boolean;
  yaml: boolean;
}

export function negotiate(req: FastifyRequest): Negotiated {
  const accept = String(req.headers.accept ?? '');
  if (!accept || accept === '*/*') return { table: false, yaml: false };
  const parts = accept.split(',').map((p) => p.replace(/\s+/g, ''));
  for (const p of parts) {
    const [type, ...params] = p.split(';');
    const ps = new Set(params);
    if (type === 'application/json' && ps.has('as=Table') && ps.has('g=meta.k8s.io') && (ps.has('v=v1') || ps.has('v=v1beta1'))) return { table: true, yaml: false };
    if (type === 'application/json' && params.some((x) => x.startsWith('as='))) continue;
    if (type === 'application/json' || type === 'application/*' || type === '*/*') return { table: false, yaml: false };
    if (type === 'application/yaml') return { table: false, yaml: true };
  }
  throw ApiError.notAcceptable(`only the following media types are accepted: application/json, application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io (asked for: ${accept})`);
}

export function includeObjectParam(query: Query): 'None' | 'Object' | 'Metadata' {
  const v = q1(query, 'includeObject');
  if (v === undefined || v === '') return 'Metadata';
  if (v === 'None' || v === 'Object' || v === 'Metadata') return v;
  throw ApiError.badRequest(`invalid includeObject "${v}": must be None, Metadata or Object`);
}

export function resourceVersionMatchParam(query: Query): string | undefined {
  const v = q1(query, 'resourceVersionMatch');
  if (v === undefined || v === '') return undefined;
  if (v !== 'Exact' && v !== 'NotOlderThan') throw ApiError.badRequest(`invalid resourceVersionMatch "${v}": must be Exact or NotOlderThan`);
  if (!q1(query, 'resourceVersion')) throw ApiError.badRequest('resourceVersionMatch is forbidden unless resourceVersion is provided');
  return v;
}

export function deleteOptions(req: FastifyRequest, query: Query): DeleteOptions {
  let body: Record<string, unknown> = {};
  const raw = req.body as Buffer | undefined;
  if (raw && raw.length > 0) {
    const v = decodeBody(req, true);
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw ApiError.badRequest('DeleteOptions must be a JSON object');
    body = v as Record<string, unknown>;
  }
  const opts: DeleteOptions = {};
  let policy = (q1(query, 'propagationPolicy') ?? body.propagationPolicy) as string | undefined;
  const orphan = q1(query, 'orphanDependents') ?? body.orphanDependents;
  if (policy === undefined && (orphan === true || (typeof orphan === 'string' && TRUE_VALUES.has(orphan)))) policy = 'Orphan';
  if (policy !== undefined) {
    if (policy !== 'Background' && policy !== 'Foreground' && policy !== 'Orphan') {
      throw ApiError.invalid('DeleteOptions', '', [{ reason: 'FieldValueNotSupported', field: 'propagationPolicy', message: `Unsupported value: "${policy}": supported values: "Foreground", "Background", "Orphan"` }]);
    }
    opts.propagationPolicy = policy;
  }
  const pre = body.preconditions as { uid?: unknown; resourceVersion?: unknown } | undefined | null;
  if (pre !== undefined && pre !== null) {
    const bad = typeof pre !== 'object' || Array.isArray(pre) || [pre.uid, pre.resourceVersion].some((v) => v !== undefined && v !== null && typeof v !== 'string');
    if (bad) throw ApiError.badRequest('DeleteOptions.preconditions must be an object with string uid and resourceVersion');
    opts.preconditions = { uid: (pre.uid ?? undefined) as string | undefined, resourceVersion: (pre.resourceVersion ?? undefined) as string | undefined };
  }
  // A dry run the server did not understand must not turn into a real deletion.
  const dry = body.dryRun;
  if (dry !== undefined && dry !== null && (!Array.isArray(dry) || dry.some((d) => typeof d !== 'string'))) {
    throw ApiError.badRequest(`DeleteOptions.dryRun must be a list of strings, e.g. ["All"], got ${JSON.stringify(dry)}`);
  }
  opts.dryRun = dryRunParam(query) || dryRunParam({ dryRun: (dry ?? undefined) as string[] | undefined });
  const grace = q1(query, 'gracePeriodSeconds') ?? body.gracePeriodSeconds;
  if (grace !== undefined && !/^-?[0-9]+$/.test(String(grace))) throw ApiError.badRequest(`invalid gracePeriodSeconds "${String(grace)}"`);
  return opts;
}


// OpenAPI v3 (one document per group-version, plus the `/openapi/v3` index) and v2 (one swagger document),
// derived from the kind registry. What kubectl 1.32 reads in them:
//  - `kubectl explain`: components.schemas carrying `x-kubernetes-group-version-kind: [{group, version, kind}]`,
//    named like kube's (`io.k8s.api.core.v1.ConfigMap`, CRD-style reverse-domain `dev.metalplane.v1alpha1.Plan`),
//    with metadata as a $ref to `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`.
//  - QueryParamVerifierV3 (does the server do fieldValidation / dryRun?): a PATCH operation whose
//    `x-kubernetes-group-version-kind` is a single OBJECT and whose own parameters list the query parameter.
//  - apply's patch type: a PATCH request body offering `application/strategic-merge-patch+json` means SMP
//    (built-in kinds); without it kubectl uses a JSON merge patch, as it does for CRDs.
import { createHash } from 'node:crypto';
import { ListMetaSchema, ObjectMetaSchema } from '../kinds/common.js';
import type { KindRegistry } from '../kinds/index.js';
import type { KindDeclaration } from '../kinds/types.js';
import { gvkExtension, names, openApiNameOf, ref3 } from './openapi-names.js';
import { operationV2, operationV3, paramV2, paramV3, pathItemsFor } from './openapi-paths.js';

export { openApiNameOf } from './openapi-names.js';

type Json = Record<string, unknown>;

const apiVersionDescription =
  'APIVersion defines the versioned schema of this representation of an object. Servers should convert ' +
  'recognized schemas to the latest internal value, and may reject unrecognized values.';
const kindDescription =
  'Kind is a string value representing the REST resource this object represents. Servers may infer this from ' +
  'the endpoint the client submits requests to. Cannot be updated. In CamelCase.';

// ---------------------------------------------------------------------------------------------------------
// Schemas. Written once in v3 form with `#/components/schemas/` refs; v2 rewrites refs and drops what
// swagger 2.0 lacks.

function clone<T>(v: T): T {
  // JSON round trip: drops TypeBox's symbol keys.
  return JSON.parse(JSON.stringify(v)) as T;
}

/** A described reference, the way kube's v3 documents write one (a bare $ref cannot carry siblings). */
const refWith = (name: string, description: string): Json => ({ allOf: [ref3(name)], default: {}, description });


function kindSchema(kind: KindDeclaration): Json {
  const own = clone(kind.schema) as Json & { properties?: Json; required?: string[] };
  const schema: Json = {
    description: kind.description,
    type: 'object',
    properties: {
      apiVersion: { type: 'string', description: apiVersionDescription },
      kind: { type: 'string', description: kindDescription },
      metadata: refWith(names.objectMeta, "Standard object's metadata."),
      ...(own.properties ?? {}),
    },
    'x-kubernetes-group-version-kind': [gvkExtension(kind)],
  };
  if (own.required?.length) schema.required = own.required;
  return schema;
}

function listSchema(kind: KindDeclaration): Json {
  return {
    description: `${kind.kind}List is a list of ${kind.kind}.`,
    type: 'object',
    required: ['items'],
    properties: {
      apiVersion: { type: 'string', description: apiVersionDescription },
      kind: { type: 'string', description: kindDescription },
      items: { type: 'array', description: `List of ${kind.plural}.`, items: ref3(openApiNameOf(kind)) },
      metadata: refWith(names.listMeta, 'Standard list metadata.'),
    },
    'x-kubernetes-group-version-kind': [gvkExtension(kind, `${kind.kind}List`)],
  };
}

function metaSchemas(): Record<string, Json> {
  return {
    [names.objectMeta]: clone(ObjectMetaSchema) as Json,
    [names.listMeta]: clone(ListMetaSchema) as Json,
    [names.status]: {
      description: 'Status is a return value for calls that don\'t return other objects.',
      type: 'object',
      properties: {
        apiVersion: { type: 'string', description: apiVersionDescription },
        kind: { type: 'string', description: kindDescription },
        code: { type: 'integer', format: 'int32', description: 'Suggested HTTP return code for this status, 0 if not set.' },
        details: refWith(names.statusDetails, 'Extended data associated with the reason.'),
        message: { type: 'string', description: 'A human-readable description of the status of this operation.' },
        metadata: refWith(names.listMeta, 'Standard list metadata.'),
        reason: { type: 'string', description: 'A machine-readable description of why this operation is in the "Failure" status.' },
        status: { type: 'string', description: 'Status of the operation. One of: "Success" or "Failure".' },
      },
    },
    [names.statusDetails]: {
      description: 'StatusDetails is a set of additional properties that MAY be set by the server to provide additional information about a response.',
      type: 'object',
      properties: {
        causes: { type: 'array', items: ref3(names.statusCause), description: 'The Causes array includes more details associated with the StatusReason failure.' },
        group: { type: 'string', description: 'The group attribute of the resource associated with the status StatusReason.' },
        kind: { type: 'string', description: 'The kind attribute of the resource associated with the status StatusReason.' },
        name: { type: 'string', description: 'The name attribute of the resource associated with the status StatusReason.' },
        retryAfterSeconds: { type: 'integer', format: 'int32', description: 'If specified, the time in seconds before the operation should be retried.' },
        uid: { type: 'string', description: 'UID of the resource.' },
      },
    },
    [names.statusCause]: {
      description: 'StatusCause provides more information about an api.Status failure, including cases when multiple errors are encountered.',
      type: 'object',
      properties: {
        field: { type: 'string', description: 'The field of the resource that has caused this error, e.g. `spec.plan`.' },
        message: { type: 'string', description: 'A human-readable description of the cause of the error.' },
        reason: { type: 'string', description: 'A machine-readable description of the cause of the error.' },
      },
    },
    [names.deleteOptions]: {
      description: 'DeleteOptions may be provided when deleting an API object.',
      type: 'object',
      properties: {
        apiVersion: { type: 'string', description: apiVersionDescription },
        kind: { type: 'string', description: kindDescription },
        dryRun: { type: 'array', items: { type: 'string' }, description: 'When present, indicates that modifications should not be persisted.' },
        gracePeriodSeconds: { type: 'integer', format: 'int64', description: 'The duration in seconds before the object should be deleted.' },
        orphanDependents: { type: 'boolean', description: 'Deprecated: use propagationPolicy.' },
        preconditions: refWith(names.preconditions, 'Must be fulfilled before a deletion is carried out.'),
        propagationPolicy: { type: 'string', description: "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'." },
      },
    },
    [names.preconditions]: {
      description: 'Preconditions must be fulfilled before an operation (update, delete, etc.) is carried out.',
      type: 'object',
      properties: {
        resourceVersion: { type: 'string', description: 'Specifies the target ResourceVersion' },
        uid: { type: 'string', description: 'Specifies the target UID.' },
      },
    },
    [names.patch]: {
      description: 'Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.',
      type: 'object',
    },
    [names.watchEvent]: {
      description: 'Event represents a single event to a watched resource.',
      type: 'object',
      required: ['type', 'object'],
      properties: {
        object: { type: 'object', description: 'The object (or a Status for ERROR events).', 'x-kubernetes-preserve-unknown-fields': true },
        type: { type: 'string', description: 'ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.' },
      },
    },
  };
}

function componentSchemas(kinds: readonly KindDeclaration[]): Record<string, Json> {
  const out: Record<string, Json> = metaSchemas();
  for (const k of kinds) {
    out[openApiNameOf(k)] = kindSchema(k);
    out[`${openApiNameOf(k)}List`] = listSchema(k);
  }
  return out;
}

const bearer = { type: 'apiKey', description: 'Bearer Token authentication', name: 'authorization', in: 'header' };

function v3Document(kinds: readonly KindDeclaration[]): Json {
  const paths: Json = {};
  for (const k of kinds) {
    for (const item of pathItemsFor(k)) {
      const entry: Json = {};
      for (const op of item.operations) entry[op.method] = operationV3(op);
      entry.parameters = item.params.map(paramV3);
      paths[item.path] = entry;
    }
  }
  return {
    openapi: '3.0.0',
    info: { title: 'metalplane', version: 'v1' },
    paths,
    components: { schemas: componentSchemas(kinds), securitySchemes: { BearerToken: bearer } },
  };
}

/** v3 schema → swagger 2.0 definition: refs point to #/definitions, `allOf`-wrapped refs become plain refs. */
function toV2(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(toV2);
  if (typeof v !== 'object' || v === null) return v;
  const o = v as Json;
  if (Array.isArray(o.allOf) && o.allOf.length === 1 && typeof (o.allOf[0] as Json).$ref === 'string') {
    const out: Json = { $ref: String((o.allOf[0] as Json).$ref).replace('#/components/schemas/', '#/definitions/') };
    if (o.description) out.description = o.description;
    return out;
  }
  const out: Json = {};
  for (const [k, val] of Object.entries(o)) {
    if (k === 'nullable') continue;
    out[k] = k === '$ref' && typeof val === 'string' ? val.replace('#/components/schemas/', '#/definitions/') : toV2(val);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Public API, memoized per registry: documents are pure functions of it.

interface Rendered {
  docs: Map<string, { doc: Json; hash: string }>;
  v2?: Json;
}
const rendered = new WeakMap<KindRegistry, Rendered>();

function renderedFor(registry: KindRegistry): Rendered {
  let r = rendered.get(registry);
  if (!r) {
    r = { docs: new Map() };
    for (const gv of registry.groupVersions()) {
      const doc = deepFreeze(v3Document(registry.kindsIn(gv.group, gv.version)));
      r.docs.set(gv.path, { doc, hash: openApiHash(doc) });
    }
    rendered.set(registry, r);
  }
  return r;
}

/** Documents are shared by every request: freezing them turns an accidental mutation into an error. */
function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/** kube's document hash: SHA-512 of the serialized document, upper-case hex. */
export function openApiHash(doc: unknown): string {
  return createHash('sha512').update(JSON.stringify(doc)).digest('hex').toUpperCase();
}

/** `GET /openapi/v3`: `{"paths":{"api/v1":{"serverRelativeURL":"/openapi/v3/api/v1?hash=…"}, …}}`. */
export function openApiV3Index(registry: KindRegistry): { paths: Record<string, { serverRelativeURL: string }> } {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const [path, { hash }] of renderedFor(registry).docs) {
    paths[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${hash}` };
  }
  return { paths };
}

/**
 * `GET /openapi/v3/<path>`: the document of one group-version; `path` as in the index (`api/v1`,
 * `apis/metalplane.dev/v1alpha1`, a leading `/` or `/openapi/v3/` is accepted). Undefined if not served.
 * The document is frozen and shared: serialize it, don't mutate it.
 */
export function openApiV3For(registry: KindRegistry, groupVersionPath: string): Json | undefined {
  const path = groupVersionPath.replace(/^\/?(openapi\/v3\/)?/, '').replace(/\?.*$/, '').replace(/\/$/, '');
  return renderedFor(registry).docs.get(path)?.doc;
}

/** The hash of one group-version document (for the `?hash=` URL and ETag), or undefined. */
export function openApiV3Hash(registry: KindRegistry, groupVersionPath: string): string | undefined {
  const path = groupVersionPath.replace(/^\/?(openapi\/v3\/)?/, '').replace(/\?.*$/, '').replace(/\/$/, '');
  return renderedFor(registry).docs.get(path)?.hash;
}

/** `GET /openapi/v2` (JSON): one swagger 2.0 document for every kind. */
export function openApiV2(registry: KindRegistry): Json {
  const r = renderedFor(registry);
  if (r.v2) return r.v2;
  const paths: Json = {};
  for (const k of registry.all()) {
    for (const item of pathItemsFor(k)) {
      const entry: Json = {};
      for (const op of item.operations) entry[op.method] = operationV2(op);
      entry.parameters = item.params.map(paramV2);
      paths[item.path] = entry;
    }
  }
  r.v2 = deepFreeze({
    swagger: '2.0',
    info: { title: 'metalplane', version: 'v1' },
    paths,
    definitions: toV2(componentSchemas(registry.all())),
    securityDefinitions: { BearerToken: bearer },
    security: [{ BearerToken: [] }],
  });
  return r.v2;
}


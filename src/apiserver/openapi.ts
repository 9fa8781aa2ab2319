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

type Json = Record<string, unknown>;

const metaV1 = 'io.k8s.apimachinery.pkg.apis.meta.v1';
const names = {
  objectMeta: `${metaV1}.ObjectMeta`,
  listMeta: `${metaV1}.ListMeta`,
  status: `${metaV1}.Status`,
  statusDetails: `${metaV1}.StatusDetails`,
  statusCause: `${metaV1}.StatusCause`,
  deleteOptions: `${metaV1}.DeleteOptions`,
  preconditions: `${metaV1}.Preconditions`,
  patch: `${metaV1}.Patch`,
  watchEvent: `${metaV1}.WatchEvent`,
};

const apiVersionDescription =
  'APIVersion defines the versioned schema of this representation of an object. Servers should convert ' +
  'recognized schemas to the latest internal value, and may reject unrecognized values.';
const kindDescription =
  'Kind is a string value representing the REST resource this object represents. Servers may infer this from ' +
  'the endpoint the client submits requests to. Cannot be updated. In CamelCase.';

/** The schema name of a kind: `io.k8s.api.core.v1.ConfigMap` for built-ins, `dev.metalplane.v1alpha1.Plan` else. */
export function openApiNameOf(kind: Pick<KindDeclaration, 'group' | 'version' | 'kind' | 'builtin'>): string {
  if (kind.builtin) {
    const group = kind.group === '' ? 'core' : kind.group.split('.')[0]!;
    return `io.k8s.api.${group}.${kind.version}.${kind.kind}`;
  }
  return `${kind.group.split('.').reverse().join('.')}.${kind.version}.${kind.kind}`;
}

// ---------------------------------------------------------------------------------------------------------
// Schemas. Written once in v3 form with `#/components/schemas/` refs; v2 rewrites refs and drops what
// swagger 2.0 lacks.

function clone<T>(v: T): T {
  // JSON round trip: drops TypeBox's symbol keys.
  return JSON.parse(JSON.stringify(v)) as T;
}

const ref3 = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
/** A described reference, the way kube's v3 documents write one (a bare $ref cannot carry siblings). */
const refWith = (name: string, description: string): Json => ({ allOf: [ref3(name)], default: {}, description });

function gvkExtension(kind: KindDeclaration, kindName = kind.kind): Json {
  return { group: kind.group, version: kind.version, kind: kindName };
}

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

// ---------------------------------------------------------------------------------------------------------
// Parameters and operations

interface Param {
  name: string;
  in: 'query' | 'path';
  type: 'string' | 'integer' | 'boolean';
  description: string;
  required?: boolean;
}

const q = (name: string, type: Param['type'], description: string): Param => ({ name, in: 'query', type, description });

const params = {
  name: { name: 'name', in: 'path', type: 'string', required: true, description: 'name of the resource' } as Param,
  namespace: { name: 'namespace', in: 'path', type: 'string', required: true, description: 'object name and auth scope, such as for teams and projects' } as Param,
  pretty: q('pretty', 'string', "If 'true', then the output is pretty printed."),
  dryRun: q(
    'dryRun',
    'string',
    'When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun ' +
      'directive will result in an error response and no further processing of the request. Valid values are: ' +
      '- All: all dry run stages will be processed',
  ),
  fieldManager: q(
    'fieldManager',
    'string',
    'fieldManager is a name associated with the actor or entity that is making these changes. The value must be ' +
      'less than or 128 characters long, and only contain printable characters.',
  ),
  fieldValidation: q(
    'fieldValidation',
    'string',
    'fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing ' +
      'unknown or duplicate fields. Valid values are: - Ignore: silently drops any unknown fields. - Warn: sends a ' +
      'warning via the standard warning response header for each unknown field. - Strict: fails the request with a ' +
      'BadRequest error if any unknown fields would be dropped. The default is Strict.',
  ),
  force: q(
    'force',
    'boolean',
    'Force is going to "force" Apply requests. It means user will re-acquire conflicting fields owned by other ' +
      'people. Force flag must be unset for non-apply patch requests.',
  ),
  allowWatchBookmarks: q('allowWatchBookmarks', 'boolean', 'allowWatchBookmarks requests watch events with type "BOOKMARK".'),
  continue: q('continue', 'string', 'The continue option should be set when retrieving more results from the server.'),
  fieldSelector: q('fieldSelector', 'string', 'A selector to restrict the list of returned objects by their fields. Defaults to everything.'),
  labelSelector: q('labelSelector', 'string', 'A selector to restrict the list of returned objects by their labels. Defaults to everything.'),
  limit: q('limit', 'integer', 'limit is a maximum number of responses to return for a list call.'),
  resourceVersion: q('resourceVersion', 'string', 'resourceVersion sets a constraint on what resource versions a request may be served from.'),
  resourceVersionMatch: q('resourceVersionMatch', 'string', 'resourceVersionMatch determines how resourceVersion is applied to list calls.'),
  sendInitialEvents: q('sendInitialEvents', 'boolean', 'With watch=true, start the watch stream with synthetic ADDED events for the current objects.'),
  timeoutSeconds: q('timeoutSeconds', 'integer', 'Timeout for the list/watch call.'),
  watch: q('watch', 'boolean', 'Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.'),
  gracePeriodSeconds: q('gracePeriodSeconds', 'integer', 'The duration in seconds before the object should be deleted.'),
  orphanDependents: q('orphanDependents', 'boolean', 'Deprecated: please use the PropagationPolicy.'),
  propagationPolicy: q('propagationPolicy', 'string', "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'."),
};

const listParams = [
  params.allowWatchBookmarks,
  params.continue,
  params.fieldSelector,
  params.labelSelector,
  params.limit,
  params.resourceVersion,
  params.resourceVersionMatch,
  params.sendInitialEvents,
  params.timeoutSeconds,
  params.watch,
];
const writeParams = [params.dryRun, params.fieldManager, params.fieldValidation];
const patchParams = [params.dryRun, params.fieldManager, params.fieldValidation, params.force];
const deleteParams = [params.dryRun, params.gracePeriodSeconds, params.orphanDependents, params.propagationPolicy];

type Action = 'get' | 'list' | 'post' | 'put' | 'patch' | 'delete' | 'deletecollection';
type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** One operation, independent of the OpenAPI version it is rendered into. */
interface Operation {
  method: Method;
  action: Action;
  operationId: string;
  description: string;
  params: Param[];
  /** Request body schema name (`patch` bodies list patch content types instead of json/yaml). */
  body?: string;
  patchTypes?: string[];
  responses: Record<string, string | undefined>;
  kind: KindDeclaration;
}

interface PathItem {
  path: string;
  params: Param[];
  operations: Operation[];
}

function pascal(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** `core_v1`, `coordination_v1`, `metalplaneDev_v1alpha1`: kube's operation tags. */
function tagOf(kind: KindDeclaration): string {
  const g = kind.group === '' ? 'core' : kind.group.replace(/\.k8s\.io$/, '');
  const camel = g.split('.').map((p, i) => (i === 0 ? p : pascal(p))).join('');
  return `${camel}_${kind.version}`;
}

/** `CoreV1`, `CoordinationV1`, `MetalplaneDevV1alpha1`: the operationId infix. */
function opInfix(kind: KindDeclaration): string {
  const g = kind.group === '' ? 'core' : kind.group.replace(/\.k8s\.io$/, '');
  return `${g.split('.').map(pascal).join('')}${pascal(kind.version)}`;
}

function allows(kind: KindDeclaration, verb: string): boolean {
  return !kind.verbs || kind.verbs.includes(verb);
}

function pathItemsFor(kind: KindDeclaration): PathItem[] {
  const name = openApiNameOf(kind);
  const prefix = kind.group ? `/apis/${kind.group}/${kind.version}` : `/api/${kind.version}`;
  const namespaced = kind.scope === 'Namespaced';
  const collection = namespaced ? `${prefix}/namespaces/{namespace}/${kind.plural}` : `${prefix}/${kind.plural}`;
  const scopeParams = namespaced ? [params.namespace] : [];
  const infix = opInfix(kind);
  const ns = namespaced ? 'Namespaced' : '';
  const K = kind.kind;
  const items: PathItem[] = [];
  const patchTypes = [
    'application/json-patch+json',
    'application/merge-patch+json',
    ...(kind.builtin ? ['application/strategic-merge-patch+json'] : []),
    'application/apply-patch+yaml',
  ];

  const collectionOps: Operation[] = [];
  if (allows(kind, 'list')) {
    collectionOps.push({
      method: 'get', action: 'list', operationId: `list${infix}${ns}${K}`, kind,
      description: `list or watch objects of kind ${K}`, params: listParams, responses: { '200': `${name}List`, '401': undefined },
    });
  }
  if (allows(kind, 'create')) {
    collectionOps.push({
      method: 'post', action: 'post', operationId: `create${infix}${ns}${K}`, kind, description: `create a ${K}`,
      params: writeParams, body: name, responses: { '200': name, '201': name, '202': name, '401': undefined },
    });
  }
  if (allows(kind, 'deletecollection')) {
    collectionOps.push({
      method: 'delete', action: 'deletecollection', operationId: `deletecollection${infix}${ns}${K}`, kind,
      description: `delete collection of ${K}`, params: [...deleteParams, ...listParams.filter((p) => p.name !== 'watch' && p.name !== 'allowWatchBookmarks')],
      body: names.deleteOptions, responses: { '200': names.status, '401': undefined },
    });
  }
  if (collectionOps.length) items.push({ path: collection, params: [...scopeParams, params.pretty], operations: collectionOps });

  const objectOps: Operation[] = [];
  if (allows(kind, 'get')) {
    objectOps.push({
      method: 'get', action: 'get', operationId: `read${infix}${ns}${K}`, kind, description: `read the specified ${K}`,
      params: [], responses: { '200': name, '401': undefined },
    });
  }
  if (allows(kind, 'update')) {
    objectOps.push({
      method: 'put', action: 'put', operationId: `replace${infix}${ns}${K}`, kind, description: `replace the specified ${K}`,
      params: writeParams, body: name, responses: { '200': name, '201': name, '401': undefined },
    });
  }
  if (allows(kind, 'patch')) {
    objectOps.push({
      method: 'patch', action: 'patch', operationId: `patch${infix}${ns}${K}`, kind, description: `partially update the specified ${K}`,
      params: patchParams, body: names.patch, patchTypes, responses: { '200': name, '201': name, '401': undefined },
    });
  }
  if (allows(kind, 'delete')) {
    objectOps.push({
      method: 'delete', action: 'delete', operationId: `delete${infix}${ns}${K}`, kind, description: `delete a ${K}`,
      params: deleteParams, body: names.deleteOptions, responses: { '200': names.status, '202': names.status, '401': undefined },
    });
  }
  if (objectOps.length) items.push({ path: `${collection}/{name}`, params: [params.name, ...scopeParams, params.pretty], operations: objectOps });

  if (kind.statusSubresource) {
    const statusOps: Operation[] = [];
    if (allows(kind, 'get')) {
      statusOps.push({
        method: 'get', action: 'get', operationId: `read${infix}${ns}${K}Status`, kind, description: `read status of the specified ${K}`,
        params: [], responses: { '200': name, '401': undefined },
      });
    }
    if (allows(kind, 'update')) {
      statusOps.push({
        method: 'put', action: 'put', operationId: `replace${infix}${ns}${K}Status`, kind, description: `replace status of the specified ${K}`,
        params: writeParams, body: name, responses: { '200': name, '201': name, '401': undefined },
      });
    }
    if (allows(kind, 'patch')) {
      statusOps.push({
        method: 'patch', action: 'patch', operationId: `patch${infix}${ns}${K}Status`, kind, description: `partially update status of the specified ${K}`,
        params: patchParams, body: names.patch, patchTypes, responses: { '200': name, '201': name, '401': undefined },
      });
    }
    if (statusOps.length) items.push({ path: `${collection}/{name}/status`, params: [params.name, ...scopeParams, params.pretty], operations: statusOps });
  }

  if (namespaced && allows(kind, 'list')) {
    items.push({
      path: `${prefix}/${kind.plural}`,
      params: [params.pretty],
      operations: [{
        method: 'get', action: 'list', operationId: `list${infix}${K}ForAllNamespaces`, kind,
        description: `list or watch objects of kind ${K}`, params: listParams, responses: { '200': `${name}List`, '401': undefined },
      }],
    });
  }
  return items;
}

// ---------------------------------------------------------------------------------------------------------
// Rendering

const responseTypes = ['application/json', 'application/yaml'];
const requestTypes = ['application/json', 'application/yaml'];
const responseText: Record<string, string> = { '200': 'OK', '201': 'Created', '202': 'Accepted', '401': 'Unauthorized' };

function paramV3(p: Param): Json {
  const out: Json = { name: p.name, in: p.in, description: p.description, schema: { type: p.type, uniqueItems: true } };
  if (p.required) out.required = true;
  return out;
}

function operationV3(op: Operation): Json {
  const out: Json = {
    tags: [tagOf(op.kind)],
    description: op.description,
    operationId: op.operationId,
  };
  if (op.params.length) out.parameters = op.params.map(paramV3);
  if (op.body) {
    const types = op.patchTypes ?? requestTypes;
    out.requestBody = {
      content: Object.fromEntries(types.map((t) => [t, { schema: ref3(op.body!) }])),
      required: op.method !== 'delete',
    };
  }
  out.responses = Object.fromEntries(
    Object.entries(op.responses).map(([code, schema]) => [
      code,
      schema
        ? { description: responseText[code], content: Object.fromEntries(responseTypes.map((t) => [t, { schema: ref3(schema) }])) }
        : { description: responseText[code] },
    ]),
  );
  out['x-kubernetes-action'] = op.action;
  // An object here (not a list as on schemas): kubectl's QueryParamVerifierV3 and apply read it that way.
  out['x-kubernetes-group-version-kind'] = gvkExtension(op.kind);
  return out;
}

function paramV2(p: Param): Json {
  const out: Json = { uniqueItems: true, type: p.type, description: p.description, name: p.name, in: p.in };
  if (p.required) out.required = true;
  return out;
}

function operationV2(op: Operation): Json {
  const out: Json = {
    description: op.description,
    consumes: op.patchTypes ?? ['*/*'],
    produces: responseTypes,
    schemes: ['https'],
    tags: [tagOf(op.kind)],
    operationId: op.operationId,
  };
  const ps = op.params.map(paramV2);
  if (op.body) ps.unshift({ name: 'body', in: 'body', required: op.method !== 'delete', schema: { $ref: `#/definitions/${op.body}` } });
  if (ps.length) out.parameters = ps;
  out.responses = Object.fromEntries(
    Object.entries(op.responses).map(([code, schema]) => [
      code,
      schema ? { description: responseText[code], schema: { $ref: `#/definitions/${schema}` } } : { description: responseText[code] },
    ]),
  );
  out['x-kubernetes-action'] = op.action;
  out['x-kubernetes-group-version-kind'] = gvkExtension(op.kind);
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


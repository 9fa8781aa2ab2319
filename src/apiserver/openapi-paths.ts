// The operations of the OpenAPI documents (one set per kind, from its declaration: verbs, scope, subresources),
// independent of the OpenAPI version they are rendered into, and their rendering into v2 and v3.
import type { KindDeclaration } from '../kinds/types.js';
import { CORE_GROUP_NAME, gvkExtension, names, openApiNameOf, ref3 } from './openapi-names.js';

type Json = Record<string, unknown>;
// ---------------------------------------------------------------------------------------------------------
// Parameters and operations

export interface Param {
  name: string;
  in: 'query' | 'path';
  type: 'string' | 'integer' | 'boolean';
  description: string;
  required?: boolean;
}

export const q = (name: string, type: Param['type'], description: string): Param => ({ name, in: 'query', type, description });

export const params = {
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

export const listParams = [
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
export const writeParams = [params.dryRun, params.fieldManager, params.fieldValidation];
export const patchParams = [params.dryRun, params.fieldManager, params.fieldValidation, params.force];
export const deleteParams = [params.dryRun, params.gracePeriodSeconds, params.orphanDependents, params.propagationPolicy];

export type Action = 'get' | 'list' | 'post' | 'put' | 'patch' | 'delete' | 'deletecollection';
export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** One operation, independent of the OpenAPI version it is rendered into. */
export interface Operation {
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

export interface PathItem {
  path: string;
  params: Param[];
  operations: Operation[];
}

export function pascal(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** `core_v1`, `coordination_v1`, `metalplaneDev_v1alpha1`: kube's operation tags. */
export function tagOf(kind: KindDeclaration): string {
  const g = kind.group ? kind.group.replace(/\.k8s\.io$/, '') : CORE_GROUP_NAME;
  const camel = g.split('.').map((p, i) => (i === 0 ? p : pascal(p))).join('');
  return `${camel}_${kind.version}`;
}

/** `CoreV1`, `CoordinationV1`, `MetalplaneDevV1alpha1`: the operationId infix. */
export function opInfix(kind: KindDeclaration): string {
  const g = kind.group ? kind.group.replace(/\.k8s\.io$/, '') : CORE_GROUP_NAME;
  return `${g.split('.').map(pascal).join('')}${pascal(kind.version)}`;
}

export function allows(kind: KindDeclaration, verb: string): boolean {
  return !kind.verbs || kind.verbs.includes(verb);
}

export function pathItemsFor(kind: KindDeclaration): PathItem[] {
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

export const responseTypes = ['application/json', 'application/yaml'];
export const requestTypes = ['application/json', 'application/yaml'];
export const responseText: Record<string, string> = { '200': 'OK', '201': 'Created', '202': 'Accepted', '401': 'Unauthorized' };

export function paramV3(p: Param): Json {
  const out: Json = { name: p.name, in: p.in, description: p.description, schema: { type: p.type, uniqueItems: true } };
  if (p.required) out.required = true;
  return out;
}

export function operationV3(op: Operation): Json {
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

export function paramV2(p: Param): Json {
  const out: Json = { uniqueItems: true, type: p.type, description: p.description, name: p.name, in: p.in };
  if (p.required) out.required = true;
  return out;
}

export function operationV2(op: Operation): Json {
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


// Authorization on the kube API for tenants: callers authenticated with a Metal API key (a project key or a user
// key) reach only their projects. The admin token (and every token of the TokenAuthenticator) is not a tenant and
// is not limited here. The rules, in the spirit of a Kubernetes ClusterRole bound per namespace:
//
// - namespaced kinds: read (get, list, watch) in the caller's namespaces; write only the kinds a tenant owns
//   (TENANT_WRITABLE), never across namespaces (a list or watch over all namespaces is refused, as RBAC refuses
//   it without a cluster-wide binding);
// - the caller's own namespaces: get;
// - cluster-scoped kinds in the `catalog` category (metros, facilities, plans, operating systems): read;
// - everything else (hardware, IP pools and addresses, users, keys, usage records, other projects): 403.
//
// A namespace the caller does not reach is refused whether it exists or not, so its existence is not revealed.
// The visibility rule is the Metal API's (src/metal-api/context.ts canSeeProject): a project key sees its
// project, a user key the projects of the user's organizations, an admin user everything.
import type { KindDeclaration, StoredObject } from '../kinds/types.js';
import { ApiError } from '../lib/errors.js';
import { DEFAULT_ORGANIZATION, ORGANIZATION_LABEL } from '../kinds/organization.js';
import type { User } from './auth.js';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';

/** What a tenant caller may reach, resolved from its API key at authentication. */
export interface TenantScope {
  /** A project key: this one namespace. */
  project?: string;
  /** A user key: the projects of these organizations. */
  organizations?: string[];
  /** A read-only key: no writes at all. */
  readOnly: boolean;
}

export interface AccessRequest {
  verb: Verb;
  kind: Pick<KindDeclaration, 'group' | 'plural' | 'scope' | 'isNamespace' | 'categories'>;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** Namespaces that are the system's, never a tenant's project (`default` is a project, as in the Metal API). */
export const SYSTEM_NAMESPACES: ReadonlySet<string> = new Set(['kube-system', 'kube-public', 'kube-node-lease', 'metalplane-system']);

/**
 * The namespaced kinds a tenant creates and changes itself, as `group/plural`. Reading is allowed for every
 * namespaced kind in the tenant's namespaces; writing the others (a Workflow drives the BMC of the machine it
 * names, Events and Leases are the controllers') is the system's.
 */
export const TENANT_WRITABLE: ReadonlySet<string> = new Set([
  'metalplane.dev/devices',
  'metalplane.dev/sshkeys',
  'metalplane.dev/ipreservations',
  'metalplane.dev/cloudconfigs',
  '/configmaps',
  '/secrets',
]);

const READ_VERBS: ReadonlySet<Verb> = new Set(['get', 'list', 'watch']);

export type Decision = { allowed: true } | { allowed: false; reason: string };

/** Whether a tenant reaches a namespace (the namespace object, when it exists). Pure. */
export function reachesNamespace(scope: TenantScope, name: string, ns: StoredObject | undefined): boolean {
  if (SYSTEM_NAMESPACES.has(name)) return false;
  if (scope.project !== undefined) return name === scope.project;
  if (!ns) return false;
  const org = ns.metadata.labels?.[ORGANIZATION_LABEL] ?? DEFAULT_ORGANIZATION;
  return (scope.organizations ?? []).includes(org);
}

/** The namespace a request's access turns on: the one it is in, or the namespace it names. */
export function namespaceOfRequest(req: AccessRequest): string | undefined {
  if (req.kind.scope === 'Namespaced') return req.namespace;
  return req.kind.isNamespace ? req.name : undefined;
}

/**
 * The decision for one request of a tenant; `ns` is the namespace object of namespaceOfRequest(req) when it
 * exists. Pure.
 */
export function decide(scope: TenantScope, req: AccessRequest, ns: StoredObject | undefined): Decision {
  const namespace = (name: string): StoredObject | undefined => (ns?.metadata.name === name ? ns : undefined);
  const resource = req.kind.group ? `${req.kind.plural}.${req.kind.group}` : req.kind.plural;
  const deny = (why: string): Decision => ({ allowed: false, reason: why });
  const read = READ_VERBS.has(req.verb);
  if (!read && scope.readOnly) return deny('the API key is read-only');
  if (req.kind.scope === 'Namespaced') {
    if (req.namespace === undefined) return deny(`a project key or user key reaches ${resource} only inside its projects: add a namespace`);
    if (!reachesNamespace(scope, req.namespace, namespace(req.namespace))) return deny(`the namespace "${req.namespace}" is not one of the caller's projects`);
    if (read) return { allowed: true };
    if (TENANT_WRITABLE.has(`${req.kind.group}/${req.kind.plural}`)) return { allowed: true };
    return deny(`${resource} are written by metalplane itself, not by tenants`);
  }
  if (req.kind.isNamespace) {
    if (req.verb === 'get' && req.name !== undefined && req.subresource === undefined && reachesNamespace(scope, req.name, namespace(req.name))) return { allowed: true };
    return deny(req.verb === 'get' ? `the namespace "${req.name ?? ''}" is not one of the caller's projects` : 'projects are listed with GET /metal/v1/projects, and created or deleted through the Metal API');
  }
  if (read && req.kind.categories?.includes('catalog')) return { allowed: true };
  return deny(read ? `${resource} are the operator's, not a tenant's` : `${resource} are read-only for tenants`);
}

/**
 * Throws 403 (a Kubernetes-style message) unless the user may do what it asks; non-tenants pass. `lookup` reads
 * a namespace object (the registry's current state).
 */
export async function authorize(user: User, req: AccessRequest, lookup: (name: string) => Promise<StoredObject | undefined>): Promise<void> {
  if (!user.tenant) return;
  const nsName = namespaceOfRequest(req);
  const d = decide(user.tenant, req, nsName !== undefined ? await lookup(nsName) : undefined);
  if (d.allowed) return;
  const resource = req.kind.group ? `${req.kind.plural}.${req.kind.group}` : req.kind.plural;
  const target = req.name !== undefined ? ` "${req.name}"` : '';
  const where = req.namespace !== undefined ? ` in the namespace "${req.namespace}"` : '';
  throw ApiError.forbidden(
    `${resource}${target} is forbidden: User "${user.name}" cannot ${req.verb} resource "${req.kind.plural}${req.subresource ? '/' + req.subresource : ''}" in API group "${req.kind.group}"${where}: ${d.reason}`,
  );
}

/** 403 unless the user is not a tenant (operator surfaces: the simulator's API, metrics). */
export function requireOperator(user: User, what: string): void {
  if (user.tenant) throw ApiError.forbidden(`${what} is for the operator (the admin token); a project or user API key cannot use it`);
}

/** The kube verb of a request on a resource path. */
export function verbOf(method: string, hasName: boolean, isWatch: boolean): Verb {
  switch (method) {
    case 'GET':
      return hasName ? 'get' : isWatch ? 'watch' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    default:
      return hasName ? 'delete' : 'deletecollection';
  }
}

// What every Metal API handler shares: the registry and informer caches it translates over, the caller
// (authenticated by `X-Auth-Token`) and the rules of what a caller reaches — an admin everything, a user the
// projects of their organizations, a project key only its project, a read-only key nothing to write.
import type { FastifyRequest } from 'fastify';
import type { Registry } from '../apiserver/registry.js';
import type { TokenAuthenticator } from '../apiserver/auth.js';
import type { KindDeclaration, StoredObject } from '../kinds/types.js';
import type { InformerFactory, Informer } from '../runtime/informer.js';
import { ApiError } from '../lib/errors.js';
import type { Clock } from '../lib/clock.js';
import { apiKeyKind, apiKeyName, tokenHash, type APIKeySpec } from '../kinds/api-key.js';
import { DEFAULT_ORGANIZATION, ORGANIZATION_LABEL, organizationKind } from '../kinds/organization.js';
import { DEFAULT_USER, userKind, type UserSpec } from '../kinds/user.js';
import { namespaceKind } from '../kinds/core.js';

export interface MetalDeps {
  registry: Registry;
  informers: InformerFactory;
  /** The kube API's tokens: the admin token is the default user's key here too. */
  tokens: TokenAuthenticator;
  clock: Clock;
}

export interface Principal {
  /** The User object the caller acts as. */
  user: StoredObject;
  /** Set for project keys: the one namespace it reaches. */
  project?: string;
  readOnly: boolean;
  admin: boolean;
  /** The APIKey used (absent for the admin token). */
  key?: StoredObject;
}

declare module 'fastify' {
  interface FastifyRequest {
    metal?: Principal;
  }
}

/** Namespaces that are the system's, never projects. */
const SYSTEM_NAMESPACES = new Set(['kube-system', 'kube-public', 'kube-node-lease', 'metalplane-system']);

export const DISPLAY_NAME_ANNOTATION = 'metalplane.dev/display-name';

export class MetalContext {
  readonly registry: Registry;
  readonly clock: Clock;
  private readonly tokens: TokenAuthenticator;
  private readonly informers: InformerFactory;
  private readonly byUid = new Map<KindDeclaration, Informer>();

  constructor(deps: MetalDeps) {
    this.registry = deps.registry;
    this.clock = deps.clock;
    this.tokens = deps.tokens;
    this.informers = deps.informers;
  }

  /** An informer with a uid index (every Metal API id is a metadata.uid). */
  informer(kind: KindDeclaration): Informer {
    let inf = this.byUid.get(kind);
    if (!inf) {
      inf = this.informers.informerFor(kind);
      if (!inf.cache.hasIndex('uid')) inf.cache.addIndex('uid', (o) => [o.metadata.uid]);
      this.byUid.set(kind, inf);
    }
    return inf;
  }

  /** Starts the informers the handlers use and waits until they are synced. */
  async start(kinds: KindDeclaration[]): Promise<void> {
    for (const k of kinds) this.informer(k);
    this.informers.start();
    await this.informers.waitForSync();
  }

  byId(kind: KindDeclaration, id: string): StoredObject | undefined {
    return this.informer(kind).cache.byIndex('uid', id)[0];
  }

  list(kind: KindDeclaration, namespace?: string): StoredObject[] {
    return this.informer(kind).cache.list(namespace);
  }

  // ------------------------------------------------------------ identity

  async authenticate(req: FastifyRequest): Promise<Principal> {
    const raw = req.headers['x-auth-token'];
    const token = Array.isArray(raw) ? raw[0] : raw;
    if (!token) throw ApiError.unauthorized('missing X-Auth-Token header: send an API key as X-Auth-Token');
    const adminUser = await this.tokens.authenticate(token);
    if (adminUser) {
      const user = await this.defaultUser();
      return { user, readOnly: false, admin: true };
    }
    const hash = tokenHash(token);
    const key = await this.registry.get(apiKeyKind, undefined, apiKeyName(hash));
    const spec = key?.spec as APIKeySpec | undefined;
    if (!key || !spec || spec.tokenHash !== hash) throw ApiError.unauthorized('invalid X-Auth-Token: no such API key');
    if (spec.project) {
      if (!(await this.registry.get(namespaceKind, undefined, spec.project))) throw ApiError.unauthorized('invalid X-Auth-Token: the key\'s project is gone');
      return { user: await this.defaultUser(), project: spec.project, readOnly: spec.readOnly === true, admin: false, key };
    }
    const user = await this.registry.get(userKind, undefined, spec.user!);
    if (!user) throw ApiError.unauthorized('invalid X-Auth-Token: the key\'s user is gone');
    return { user, readOnly: spec.readOnly === true, admin: (user.spec as UserSpec).admin === true, key };
  }

  async defaultUser(): Promise<StoredObject> {
    const u = await this.registry.get(userKind, undefined, DEFAULT_USER);
    if (!u) throw new ApiError(503, 'ServiceUnavailable', 'the default user does not exist yet; retry', { retryAfterSeconds: 1 });
    return u;
  }

  /** Makes the default organization and user exist (every start; users may have edited them). */
  async ensureIdentity(): Promise<void> {
    const create = async (kind: KindDeclaration, obj: Parameters<Registry['create']>[1]): Promise<void> => {
      if (await this.registry.get(kind, undefined, obj.metadata.name!)) return;
      try {
        await this.registry.create(kind, obj, { fieldManager: 'metalplane' });
      } catch (e) {
        if ((e as ApiError).reason !== 'AlreadyExists') throw e;
      }
    };
    await create(organizationKind, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Organization', metadata: { name: DEFAULT_ORGANIZATION }, spec: { displayName: 'Default Organization' } });
    await create(userKind, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'User', metadata: { name: DEFAULT_USER }, spec: { email: 'admin@metalplane.local', firstName: 'Admin', lastName: 'User', organizations: [DEFAULT_ORGANIZATION], admin: true } });
  }

  // ------------------------------------------------------------ authorization

  /** 403 for a read-only key on any write. */
  requireWrite(p: Principal): void {
    if (p.readOnly) throw ApiError.forbidden('this API key is read-only: use a read-write key to change anything');
  }

  /** 403 for project keys on user-level endpoints (another user's or organization's things). */
  requireUserKey(p: Principal, what: string): void {
    if (p.project) throw ApiError.forbidden(`a project API key cannot ${what}: use a user API key`);
  }

  /** Is a namespace a project at all (not a system namespace, not being deleted)? */
  isProject(ns: StoredObject): boolean {
    // A project being deleted is gone for the Metal API at once (its namespace lingers while emptied).
    return !SYSTEM_NAMESPACES.has(ns.metadata.name) && ns.metadata.deletionTimestamp === undefined;
  }

  organizationOf(ns: StoredObject): string {
    return ns.metadata.labels?.[ORGANIZATION_LABEL] ?? DEFAULT_ORGANIZATION;
  }

  canSeeProject(p: Principal, ns: StoredObject): boolean {
    if (!this.isProject(ns)) return false;
    if (p.project) return ns.metadata.name === p.project;
    if (p.admin) return true;
    return (p.user.spec as UserSpec).organizations.includes(this.organizationOf(ns));
  }

  canSeeOrganization(p: Principal, org: StoredObject): boolean {
    if (p.project) return false;
    if (p.admin) return true;
    return (p.user.spec as UserSpec).organizations.includes(org.metadata.name);
  }

  /** The projects a caller sees. */
  projects(p: Principal): StoredObject[] {
    return this.list(namespaceKind).filter((ns) => this.canSeeProject(p, ns));
  }

  /** A project by id, or 404 (also for one the caller may not see: its existence is not revealed). */
  project(p: Principal, id: string): StoredObject {
    const ns = this.byId(namespaceKind, id);
    if (!ns || !this.canSeeProject(p, ns)) throw ApiError.notFound('project', id);
    return ns;
  }

  /** A namespaced object by id, only if the caller sees its project; else 404. */
  objectById(p: Principal, kind: KindDeclaration, id: string, what: string): { obj: StoredObject; project: StoredObject } {
    const obj = this.byId(kind, id);
    const ns = obj?.metadata.namespace ? this.registryNamespace(obj.metadata.namespace) : undefined;
    if (!obj || !ns || !this.canSeeProject(p, ns)) throw ApiError.notFound(what, id);
    return { obj, project: ns };
  }

  registryNamespace(name: string): StoredObject | undefined {
    return this.informer(namespaceKind).cache.getByName(undefined, name);
  }

  organization(p: Principal, id: string): StoredObject {
    const org = this.byId(organizationKind, id);
    if (!org || !this.canSeeOrganization(p, org)) throw ApiError.notFound('organization', id);
    return org;
  }

  organizationByName(name: string): StoredObject | undefined {
    return this.informer(organizationKind).cache.getByName(undefined, name);
  }
}

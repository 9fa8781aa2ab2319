// The caller and their keys: `/user`, user API keys (`/user/api-keys`) and project API keys
// (`/projects/{id}/api-keys`). Keys are APIKey objects holding only the token's hash; the token is returned
// once, by the create, and never again (a deliberate difference from the original, which listed tokens).
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { StoredObject } from '../kinds/types.js';
import { apiKeyKind, apiKeyName, tokenHash, type APIKeySpec } from '../kinds/api-key.js';
import { DEFAULT_ORGANIZATION } from '../kinds/organization.js';
import { userKind, type UserSpec } from '../kinds/user.js';
import { ApiError } from '../lib/errors.js';
import type { MetalContext, Principal } from './context.js';
import { href, inner, isIncluded, jsonBody, matchesSearch, paginate, q1, shapeOf, type Query, type Shape } from './http.js';
import { projectJson } from './projects.js';

export function userJson(ctx: MetalContext, user: StoredObject): Record<string, unknown> {
  const spec = user.spec as UserSpec;
  const org = ctx.organizationByName(spec.organizations[0] ?? DEFAULT_ORGANIZATION);
  const fullName = [spec.firstName, spec.lastName].filter(Boolean).join(' ');
  return {
    id: user.metadata.uid,
    href: href(`/users/${user.metadata.uid}`).href,
    short_id: user.metadata.uid.slice(0, 8),
    email: spec.email ?? '',
    first_name: spec.firstName ?? '',
    last_name: spec.lastName ?? '',
    full_name: fullName || user.metadata.name,
    created_at: user.metadata.creationTimestamp,
    updated_at: user.metadata.creationTimestamp,
    ...(org ? { default_organization_id: org.metadata.uid } : {}),
    customdata: {},
    emails: [],
  };
}

function keyJson(ctx: MetalContext, key: StoredObject, shape: Shape, token?: string): Record<string, unknown> {
  const spec = key.spec as APIKeySpec;
  const out: Record<string, unknown> = {
    id: key.metadata.uid,
    description: spec.description ?? '',
    read_only: spec.readOnly === true,
    created_at: key.metadata.creationTimestamp,
    updated_at: key.metadata.creationTimestamp,
    // Only the create answers the token: the server keeps its hash alone.
    ...(token ? { token } : {}),
  };
  if (spec.project) {
    const ns = ctx.registryNamespace(spec.project);
    if (ns) out.project = isIncluded(shape, 'project') ? projectJson(ctx, ns, inner(shape, 'project'), { nested: true }) : { id: ns.metadata.uid, href: href(`/projects/${ns.metadata.uid}`).href };
  }
  if (spec.user) {
    const u = ctx.informer(userKind).cache.getByName(undefined, spec.user);
    if (u) out.user = userJson(ctx, u);
  }
  return out;
}

/** `mpk_…`: 256 random bits, as the admin token. */
function newApiToken(): string {
  return 'mpk_' + randomBytes(32).toString('base64url');
}

async function createKey(ctx: MetalContext, p: Principal, owner: { user: string } | { project: string }, input: { description?: string; read_only?: boolean }): Promise<{ key: StoredObject; token: string }> {
  const token = newApiToken();
  const hash = tokenHash(token);
  const spec: APIKeySpec = { tokenHash: hash, ...owner, ...(input.description ? { description: input.description } : {}), ...(input.read_only ? { readOnly: true } : {}) };
  const key = await ctx.registry.create(apiKeyKind, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'APIKey', metadata: { name: apiKeyName(hash) }, spec }, { fieldManager: `metal-api/${p.user.metadata.name}` });
  return { key, token };
}

export function registerIdentityRoutes(app: FastifyInstance, ctx: MetalContext): void {
  app.get('/user', async (req) => {
    const p = req.metal!;
    ctx.requireUserKey(p, 'read the user');
    return userJson(ctx, p.user);
  });

  const userKeys = (p: Principal): StoredObject[] =>
    ctx.list(apiKeyKind).filter((k) => (k.spec as APIKeySpec).user === p.user.metadata.name);

  app.get('/user/api-keys', async (req) => {
    const p = req.metal!;
    ctx.requireUserKey(p, 'list user API keys');
    const query = req.query as Query;
    const search = q1(query, 'search');
    const keys = userKeys(p).filter((k) => matchesSearch(search, (k.spec as APIKeySpec).description));
    const page = paginate(keys, query, '/user/api-keys', 100);
    const shape = shapeOf(query);
    return { api_keys: page.items.map((k) => keyJson(ctx, k, shape)), meta: page.meta };
  });

  app.post('/user/api-keys', async (req, reply) => {
    const p = req.metal!;
    ctx.requireUserKey(p, 'create user API keys');
    ctx.requireWrite(p);
    const input = jsonBody<{ description?: string; read_only?: boolean }>(req, 'AuthTokenInput');
    const { key, token } = await createKey(ctx, p, { user: p.user.metadata.name }, input);
    return reply.code(201).send(keyJson(ctx, key, shapeOf(req.query as Query), token));
  });

  const deleteUserKey = async (p: Principal, id: string): Promise<void> => {
    ctx.requireUserKey(p, 'delete user API keys');
    ctx.requireWrite(p);
    const key = ctx.byId(apiKeyKind, id);
    const spec = key?.spec as APIKeySpec | undefined;
    // Someone else's key, or a project key of a project the caller does not see, is not found for them.
    const mine = spec && (spec.user === p.user.metadata.name || (spec.project && canSeeNamespace(ctx, p, spec.project)) || (p.admin && spec.user));
    if (!key || !mine) throw ApiError.notFound('api key', id);
    await ctx.registry.delete(apiKeyKind, undefined, key.metadata.name);
  };
  app.delete('/user/api-keys/:id', async (req, reply) => {
    await deleteUserKey(req.metal!, (req.params as { id: string }).id);
    return reply.code(204).send();
  });
  app.delete('/api-keys/:id', async (req, reply) => {
    await deleteUserKey(req.metal!, (req.params as { id: string }).id);
    return reply.code(204).send();
  });

  app.get('/projects/:id/api-keys', async (req) => {
    const p = req.metal!;
    const ns = ctx.project(p, (req.params as { id: string }).id);
    const query = req.query as Query;
    const keys = ctx.list(apiKeyKind).filter((k) => (k.spec as APIKeySpec).project === ns.metadata.name);
    const page = paginate(keys, query, `/projects/${ns.metadata.uid}/api-keys`, 100);
    const shape = shapeOf(query);
    return { api_keys: page.items.map((k) => keyJson(ctx, k, shape)), meta: page.meta };
  });

  app.post('/projects/:id/api-keys', async (req, reply) => {
    const p = req.metal!;
    const ns = ctx.project(p, (req.params as { id: string }).id);
    ctx.requireWrite(p);
    ctx.requireUserKey(p, 'create API keys');
    const input = jsonBody<{ description?: string; read_only?: boolean }>(req, 'AuthTokenInput');
    const { key, token } = await createKey(ctx, p, { project: ns.metadata.name }, input);
    return reply.code(201).send(keyJson(ctx, key, shapeOf(req.query as Query), token));
  });
}

function canSeeNamespace(ctx: MetalContext, p: Principal, name: string): boolean {
  const ns = ctx.registryNamespace(name);
  return ns !== undefined && ctx.canSeeProject(p, ns);
}


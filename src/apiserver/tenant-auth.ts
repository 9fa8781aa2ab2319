// Bearer authentication for every API surface that takes `Authorization: Bearer`: the operator's tokens
// (TokenAuthenticator: the admin token, console sessions of the admin) and, as tenants, Metal API keys (APIKey
// objects: a project key or a user key), which then reach only their projects (authz.ts). A tenant uses the
// same key with kubectl as with the Metal API.
import { bearerToken, type TokenAuthenticator, type User } from './auth.js';
import type { Registry } from './registry.js';
import { ApiError } from '../lib/errors.js';
import { apiKeyKind, apiKeyName, tokenHash, type APIKeySpec } from '../kinds/api-key.js';
import { namespaceKind } from '../kinds/core.js';
import { userKind, type UserSpec } from '../kinds/user.js';

export const TENANT_GROUP = 'metalplane:tenants';

/** The user of a token: an operator token, else a Metal API key as a tenant, else undefined. */
export async function authenticateToken(tokens: TokenAuthenticator, registry: Registry, token: string): Promise<User | undefined> {
  const operator = await tokens.authenticate(token);
  if (operator) return operator;
  const hash = tokenHash(token);
  const key = await registry.get(apiKeyKind, undefined, apiKeyName(hash));
  const spec = key?.spec as APIKeySpec | undefined;
  if (!key || !spec || spec.tokenHash !== hash) return undefined;
  const readOnly = spec.readOnly === true;
  if (spec.project) {
    if (!(await registry.get(namespaceKind, undefined, spec.project))) return undefined;
    return { name: `project-key:${spec.project}`, groups: [TENANT_GROUP], tenant: { project: spec.project, readOnly } };
  }
  const user = spec.user ? await registry.get(userKind, undefined, spec.user) : undefined;
  if (!user) return undefined;
  const uspec = user.spec as UserSpec;
  // An admin user's read-write key is the operator's, as in the Metal API; read-only, it stays a tenant.
  if (uspec.admin === true && !readOnly) return { name: user.metadata.name, groups: ['system:masters'] };
  return { name: user.metadata.name, groups: [TENANT_GROUP], tenant: { organizations: [...uspec.organizations], readOnly } };
}

/** Parses `Authorization: Bearer …` and authenticates it; throws 401 otherwise (the messages of auth.ts). */
export function bearerAuthenticator(tokens: TokenAuthenticator, registry: Registry): (header: string | undefined) => Promise<User> {
  return async (header) => {
    if (!header) throw ApiError.unauthorized('Unauthorized: a bearer token is required (Authorization: Bearer <token>)');
    const token = bearerToken(header);
    if (!token) throw ApiError.unauthorized('Unauthorized: only bearer tokens are accepted');
    const user = await authenticateToken(tokens, registry, token);
    if (!user) throw ApiError.unauthorized('Unauthorized: the token is not valid');
    return user;
  };
}

/**
 * The operator of a bearer header whose token this process has already verified, without waiting (most API
 * requests: kubectl, controllers and the console use a few tokens again and again); undefined otherwise, for
 * bearerAuthenticator to decide.
 */
export function knownBearer(tokens: TokenAuthenticator, header: string | undefined): User | undefined {
  const token = header === undefined ? undefined : bearerToken(header);
  return token === undefined ? undefined : tokens.known(token);
}

// Console sign-in. `metalplane up` prints a link carrying a one-time login token (in the URL fragment, so it
// never reaches a log or a Referer); the console exchanges it, or a token the user pastes (the admin token or a
// Metal API key), for a session: an HttpOnly, SameSite=Strict cookie. The cookie's value is a credential minted
// for the session — an operator token (TokenAuthenticator) for the operator, a Metal API key with the same
// scope for a tenant — so every surface authenticates and authorizes it exactly as it would the original: the
// hook below turns the cookie into the surface's own header (Authorization, or X-Auth-Token on the Metal API)
// and nothing else changes. Only hashes are stored: the session record under /metalplane/console-sessions/ is
// keyed by the SHA-256 of the cookie, and the minted credential is stored hashed as every token is.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Store } from '../store/types.js';
import type { Registry } from '../apiserver/registry.js';
import { hashToken, newToken, type TokenAuthenticator, type User } from '../apiserver/auth.js';
import { reachesNamespace, SYSTEM_NAMESPACES } from '../apiserver/authz.js';
import { apiKeyKind, apiKeyName, tokenHash, type APIKeySpec } from '../kinds/api-key.js';
import { namespaceKind } from '../kinds/core.js';
import { ApiError, isNotFound } from '../lib/errors.js';
import type { Clock } from '../lib/clock.js';

export const SESSION_COOKIE = 'metalplane_session';
const SESSION_PREFIX = '/metalplane/console-sessions/';
/** How long a session lasts; the console asks to sign in again after it. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
/** How long the printed link works (it works once). */
export const LOGIN_TTL_MS = 24 * 60 * 60 * 1000;

interface SessionRecord {
  user: string;
  /** What the cookie is: an operator token, or a Metal API key (the APIKey object's name). */
  credential: 'token' | 'apikey';
  apiKey?: string;
  createdAt: string;
  expiresAt: string;
}

export interface ConsoleSessionDeps {
  store: Store;
  registry: Registry;
  tokens: TokenAuthenticator;
  /** Authenticates a request by its headers (after the cookie hook ran). */
  authenticate: (req: FastifyRequest) => Promise<User>;
  clock: Clock;
}

/** Paths whose requests may be authenticated by the session cookie. */
function cookieAuthenticates(path: string): 'bearer' | 'metal' | undefined {
  if (path.startsWith('/metal/')) return 'metal';
  const first = path.split('/')[1] ?? '';
  if (['api', 'apis', 'openapi', 'metrics', 'sim'].includes(first)) return 'bearer';
  if (path === '/ui/session' || path === '/ui/stream') return 'bearer';
  return undefined;
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

export class ConsoleSessions {
  /** One-time login tokens of printed links: hash → expiry (ms). In memory: a link is per process start. */
  private readonly logins = new Map<string, number>();
  /** Session records by cookie hash (null: known not to exist); this process is the store's only writer. */
  private readonly cache = new Map<string, SessionRecord | null>();

  constructor(private readonly deps: ConsoleSessionDeps) {}

  /** A new one-time login token for the printed link. */
  issueLoginToken(): string {
    const token = 'mpl_' + randomBytes(24).toString('base64url');
    this.logins.set(hashToken(token), this.deps.clock.now() + LOGIN_TTL_MS);
    return token;
  }

  private async record(cookie: string): Promise<SessionRecord | undefined> {
    const h = hashToken(cookie);
    let rec = this.cache.get(h);
    if (rec === undefined) {
      const kv = await this.deps.store.get(SESSION_PREFIX + h);
      rec = kv ? (JSON.parse(kv.value) as SessionRecord) : null;
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(h, rec);
    }
    if (!rec) return undefined;
    if (Date.parse(rec.expiresAt) <= this.deps.clock.now()) {
      await this.end(cookie);
      return undefined;
    }
    return rec;
  }

  /**
   * The onRequest hook: a valid session cookie becomes the surface's own credential header. Callback style, so
   * the requests without a cookie (kubectl, controllers, agents: nearly all of them) pass without a promise.
   */
  readonly hook = (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    if (req.headers.cookie === undefined || req.headers.authorization !== undefined || req.headers['x-auth-token'] !== undefined) return done();
    this.applyCookie(req).then(() => done(), done);
  };

  private async applyCookie(req: FastifyRequest): Promise<void> {
    const path = req.url.split('?')[0] ?? '';
    const surface = cookieAuthenticates(path);
    if (!surface) return;
    const cookie = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (!cookie || !/^[A-Za-z0-9_-]{10,200}$/.test(cookie)) return;
    // SameSite=Strict keeps other sites' requests from carrying the cookie; a cross-origin request that does
    // (an older browser) is not authenticated by it.
    const origin = req.headers.origin;
    if (origin !== undefined && !sameOrigin(origin, req.headers.host)) return;
    if (!(await this.record(cookie))) return;
    if (surface === 'metal') req.headers['x-auth-token'] = cookie;
    else req.headers.authorization = `Bearer ${cookie}`;
  }

  /** Exchanges a login token or a presented token for a session; returns the cookie value. */
  async begin(body: { login?: string; token?: string }): Promise<{ cookie: string; user: string }> {
    let user: string;
    let credential: SessionRecord['credential'];
    let apiKey: string | undefined;
    let cookie: string;
    if (body.login !== undefined) {
      const h = hashToken(body.login);
      const expires = this.logins.get(h);
      // One time only: the link in the terminal stops working once used.
      this.logins.delete(h);
      if (expires === undefined || expires <= this.deps.clock.now()) {
        throw ApiError.unauthorized('this sign-in link was already used or has expired: paste the admin token (the admin-token file in the data dir) or a Metal API key instead');
      }
      user = 'admin';
      credential = 'token';
      cookie = await this.deps.tokens.issue('admin', ['system:masters'], 'console session');
    } else if (body.token !== undefined) {
      const operator = await this.deps.tokens.authenticate(body.token);
      if (operator) {
        user = operator.name;
        credential = 'token';
        cookie = await this.deps.tokens.issue(operator.name, operator.groups, 'console session');
      } else {
        const hash = tokenHash(body.token);
        const key = await this.deps.registry.get(apiKeyKind, undefined, apiKeyName(hash));
        const spec = key?.spec as APIKeySpec | undefined;
        if (!key || !spec || spec.tokenHash !== hash) throw ApiError.unauthorized('the token is not valid: use the admin token or a Metal API key (project or user key)');
        // The session is a key of its own with the same owner and scope, so signing out revokes only it.
        cookie = newToken();
        const minted = apiKeyName(tokenHash(cookie));
        const mintedSpec: APIKeySpec = { tokenHash: tokenHash(cookie), description: `console session (signed in with ${key.metadata.name})`, readOnly: spec.readOnly === true };
        if (spec.project) mintedSpec.project = spec.project;
        if (spec.user) mintedSpec.user = spec.user;
        await this.deps.registry.create(apiKeyKind, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'APIKey', metadata: { name: minted, labels: { 'metalplane.dev/console-session': 'true' } }, spec: mintedSpec }, { fieldManager: 'metalplane-console' });
        user = spec.user ?? `project-key:${spec.project}`;
        credential = 'apikey';
        apiKey = minted;
      }
    } else {
      throw ApiError.badRequest('send {"login": "<token from the printed link>"} or {"token": "<admin token or Metal API key>"}');
    }
    const now = this.deps.clock.now();
    const rec: SessionRecord = { user, credential, apiKey, createdAt: new Date(now).toISOString(), expiresAt: new Date(now + SESSION_TTL_MS).toISOString() };
    await this.deps.store.create(SESSION_PREFIX + hashToken(cookie), JSON.stringify(rec));
    this.cache.delete(hashToken(cookie));
    return { cookie, user };
  }

  /** Ends a session: its record and its minted credential are gone. */
  async end(cookie: string): Promise<void> {
    const h = hashToken(cookie);
    const kv = await this.deps.store.get(SESSION_PREFIX + h);
    this.cache.set(h, null);
    if (!kv) return;
    const rec = JSON.parse(kv.value) as SessionRecord;
    await this.deps.store.delete(SESSION_PREFIX + h).catch(() => undefined);
    if (rec.credential === 'token') await this.deps.tokens.revoke(cookie);
    else if (rec.apiKey) {
      await this.deps.registry.delete(apiKeyKind, undefined, rec.apiKey).catch((e: unknown) => {
        if (!isNotFound(e)) throw e;
      });
    }
  }

  /** Who the caller is and which projects it sees (what the console shows in its header and project picker). */
  async whoami(user: User): Promise<{ user: string; operator: boolean; readOnly: boolean; projects: string[] }> {
    const { items } = await this.deps.registry.list(namespaceKind);
    const live = items.filter((ns) => ns.metadata.deletionTimestamp === undefined);
    const projects = user.tenant
      ? live.filter((ns) => reachesNamespace(user.tenant!, ns.metadata.name, ns)).map((ns) => ns.metadata.name)
      : live.filter((ns) => !SYSTEM_NAMESPACES.has(ns.metadata.name)).map((ns) => ns.metadata.name);
    return { user: user.name, operator: !user.tenant, readOnly: user.tenant?.readOnly === true, projects: projects.sort() };
  }
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

function cookieHeader(req: FastifyRequest, value: string, maxAgeSeconds: number): string {
  const secure = (req.raw.socket as { encrypted?: boolean }).encrypted === true ? '; Secure' : '';
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
}

/** POST /ui/session (sign in), GET (who am I), DELETE (sign out). Errors are kube `Status` objects. */
export function registerSessionRoutes(app: FastifyInstance, sessions: ConsoleSessions, authenticate: (req: FastifyRequest) => Promise<User>): void {
  app.post('/ui/session', { bodyLimit: 8192 }, async (req, reply) => {
    let body: { login?: unknown; token?: unknown };
    try {
      body = JSON.parse(Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '{}') as typeof body;
    } catch {
      throw ApiError.badRequest('the body must be JSON: {"login": "…"} or {"token": "…"}');
    }
    if (body === null || typeof body !== 'object') throw ApiError.badRequest('the body must be a JSON object: {"login": "…"} or {"token": "…"}');
    const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
    const { cookie, user } = await sessions.begin({ login: str(body.login), token: str(body.token) });
    reply.header('Set-Cookie', cookieHeader(req, cookie, SESSION_TTL_MS / 1000));
    reply.header('Cache-Control', 'no-store');
    return reply.code(201).type('application/json').send(JSON.stringify({ user }));
  });
  app.get('/ui/session', async (req, reply) => {
    reply.header('Cache-Control', 'no-store');
    // Without any credential the answer is "signed out", not a 401: the console asks this on every load.
    if (req.headers.authorization === undefined) return reply.type('application/json').send(JSON.stringify({ signedIn: false }));
    const user = await authenticate(req);
    return reply.type('application/json').send(JSON.stringify({ signedIn: true, ...(await sessions.whoami(user)) }));
  });
  app.delete('/ui/session', async (req: FastifyRequest, reply: FastifyReply) => {
    const cookie = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (cookie) await sessions.end(cookie);
    reply.header('Set-Cookie', cookieHeader(req, '', 0));
    return reply.code(204).send();
  });
}

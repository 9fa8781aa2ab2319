// Bearer-token authentication. Tokens are random 256-bit secrets; only their SHA-256 is stored, so a copy of
// the database does not hand out access. The admin token is created on first start and written, mode 0600,
// into the data dir.
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import type { Store } from '../store/types.js';
import { ApiError } from '../lib/errors.js';
import type { TenantScope } from './authz.js';

export interface User {
  name: string;
  groups: string[];
  /** Set for callers with a Metal API key: what they reach (authz.ts); absent for operator tokens. */
  tenant?: TenantScope;
}

interface TokenRecord {
  user: string;
  groups: string[];
  description?: string;
  createdAt: string;
}

const TOKEN_PREFIX = '/metalplane/tokens/';

export function hashToken(token: string): string {
  // The one-shot hash: every API request hashes its token, and a Hash object costs several times more.
  return hash('sha256', token, 'hex');
}

/** The token of an `Authorization: Bearer <token>` header, or undefined for any other header. */
export function bearerToken(header: string): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
}

export function newToken(): string {
  return 'mpt_' + randomBytes(32).toString('base64url');
}

export class TokenAuthenticator {
  /** hash → user; tokens are immutable once issued, so the cache only needs invalidation on revoke. */
  private readonly cache = new Map<string, User | null>();

  constructor(private readonly store: Store) {}

  async issue(user: string, groups: string[], description?: string): Promise<string> {
    const token = newToken();
    const rec: TokenRecord = { user, groups, description, createdAt: new Date().toISOString() };
    await this.store.create(TOKEN_PREFIX + hashToken(token), JSON.stringify(rec));
    return token;
  }

  async revoke(token: string): Promise<void> {
    const h = hashToken(token);
    this.cache.delete(h);
    await this.store.delete(TOKEN_PREFIX + h).catch(() => undefined);
  }

  /**
   * The user of a token this process has already verified, without waiting: undefined when it has not (or
   * knows the token is no operator's), for `authenticate` to decide.
   */
  known(token: string): User | undefined {
    return this.cache.get(hashToken(token)) ?? undefined;
  }

  async authenticate(token: string): Promise<User | undefined> {
    const h = hashToken(token);
    const cached = this.cache.get(h);
    if (cached !== undefined) return cached ?? undefined;
    const kv = await this.store.get(TOKEN_PREFIX + h);
    // Constant-time compare of the key we looked up against the hash we computed (defence in depth).
    const user = kv && timingSafeEqual(Buffer.from(kv.key.slice(TOKEN_PREFIX.length)), Buffer.from(h)) ? toUser(JSON.parse(kv.value) as TokenRecord) : undefined;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(h, user ?? null);
    return user;
  }

  /** Parses `Authorization: Bearer …` and authenticates it; throws 401 otherwise. */
  async fromHeader(header: string | undefined): Promise<User> {
    if (!header) throw ApiError.unauthorized('Unauthorized: a bearer token is required (Authorization: Bearer <token>)');
    const token = bearerToken(header);
    if (!token) throw ApiError.unauthorized('Unauthorized: only bearer tokens are accepted');
    const user = await this.authenticate(token);
    if (!user) throw ApiError.unauthorized('Unauthorized: the token is not valid');
    return user;
  }

  /**
   * Makes sure `path` holds a valid admin token: reuses the file's token if the store knows it,
   * otherwise issues a new one and writes it (mode 0600).
   */
  async ensureAdminToken(path: string): Promise<string> {
    if (existsSync(path)) {
      const token = readFileSync(path, 'utf8').trim();
      if (token && (await this.authenticate(token))) {
        chmodSync(path, 0o600);
        return token;
      }
    }
    const token = await this.issue('admin', ['system:masters'], 'admin token created by metalplane up');
    writeFileSync(path, token + '\n', { mode: 0o600 });
    chmodSync(path, 0o600);
    return token;
  }
}

function toUser(r: TokenRecord): User {
  return { name: r.user, groups: r.groups };
}

// The store package: the Store contract and `openStore`, which picks a backend from a URL.

import { StoreError } from './errors.js';
import type { Store } from './types.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';
import { openPostgresStore } from './postgres/postgres-store.js';

export type * from './types.js';
export { SqliteStore, openSqliteStore, SQLITE_SCHEMA } from './sqlite/sqlite-store.js';
export type { SqliteStoreOptions, SqliteStoreStats } from './sqlite/sqlite-store.js';
export { PostgresStore, openPostgresStore, postgresSchema } from './postgres/postgres-store.js';
export type { PostgresStoreOptions, PostgresStoreStats } from './postgres/postgres-store.js';

/** Whether several metalplane processes may share the store at `url` (PostgreSQL; SQLite has one writer). */
export function isSharedStoreUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/**
 * Opens the store named by `url`:
 * - `sqlite:PATH` (also `sqlite://PATH`, `sqlite:///abs/path`) or a bare file path: the embedded SQLite store;
 *   `:memory:` for a throwaway one.
 * - `postgres://user:pass@host:port/db` / `postgresql://…`: the PostgreSQL backend, shared by several replicas;
 *   `?schema=NAME` picks the schema holding its tables (default "metalplane"), other parameters go to `pg`.
 * Async because a networked backend has to connect before it is usable.
 */
export async function openStore(url: string): Promise<Store> {
  if (isSharedStoreUrl(url)) return openPostgresStore(url);
  let path = url;
  if (/^sqlite:/i.test(url)) {
    path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new StoreError('InvalidArgument', `unsupported store URL "${url}": use sqlite:PATH, a file path, or postgres://…`);
  }
  if (path === '') throw new StoreError('InvalidArgument', `store URL "${url}" names no file: use sqlite:PATH`);
  return openSqliteStore(path);
}

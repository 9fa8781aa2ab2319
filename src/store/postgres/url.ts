// The store URL of the PostgreSQL backend: a libpq-style postgres:// URL, which may list several hosts
// (`postgres://u@db1:5432,db2:5432/metalplane?target_session_attrs=read-write`, libpq's multi-host form, which
// `pg` itself does not read), plus our own parameters, split off here so `pg` sees only what it knows:
//
//   schema=NAME                                 the schema holding the tables (default "metalplane")
//   statement_timeout=MS                        server-side limit per statement (default 30 000)
//   lock_timeout=MS                             longest wait for a lock, the revision counter's included (default 10 000)
//   idle_in_transaction_session_timeout=MS      a session idle inside a transaction is ended (default 10 000)
//   target_session_attrs=any|read-write|primary which of the hosts to use (default any; read-write/primary skip
//                                               a read-only server, i.e. a standby, as libpq does)
//
// Pure: parsing only, no connection.

import { StoreError } from '../errors.js';

export interface PostgresHost {
  host: string;
  port: number;
}

export interface PostgresTimeouts {
  statementTimeoutMs: number;
  lockTimeoutMs: number;
  idleInTransactionTimeoutMs: number;
}

export const DEFAULT_TIMEOUTS: PostgresTimeouts = {
  statementTimeoutMs: 30_000,
  // Below the statement timeout: a write stuck behind another transaction's revision lock fails as "locked"
  // (retryable), not as a generic timeout, and well before a client's request timeout.
  lockTimeoutMs: 10_000,
  // Our transactions are never idle for longer than a round trip; a longer idle one belongs to a replica that
  // froze or lost its network while holding the revision lock, which would otherwise stop every replica's writes.
  idleInTransactionTimeoutMs: 10_000,
};

export interface ParsedPostgresUrl {
  /** The URL for `pg`, one per host of the list, in order (one for an ordinary URL); the store tries them in turn. */
  connectionStrings: string[];
  /** Every host of the URL, in order (none when the URL names none: `pg`'s defaults apply). */
  hosts: PostgresHost[];
  schema: string | undefined;
  timeouts: Partial<PostgresTimeouts>;
  /** Only a server that accepts writes will do. */
  requireWritable: boolean;
}

const TIMEOUT_PARAMS: [string, keyof PostgresTimeouts][] = [
  ['statement_timeout', 'statementTimeoutMs'],
  ['lock_timeout', 'lockTimeoutMs'],
  ['idle_in_transaction_session_timeout', 'idleInTransactionTimeoutMs'],
];

/** Splits the hosts and our own parameters off a postgres:// URL; the rest goes to `pg` as it is. */
export function parsePostgresUrl(url: string): ParsedPostgresUrl {
  const m = /^(postgres(?:ql)?:\/\/)([^@/?#]*@)?([^/?#]*)(.*)$/is.exec(url);
  if (!m) throw new StoreError('InvalidArgument', `store URL "${redact(url)}" is not a postgres:// URL`);
  const [, scheme, userinfo = '', hostList, rest] = m;
  const hosts = hostList === '' ? [] : hostList.split(',').map((h) => parseHost(h, url));
  // URL() cannot parse a host list, nor can `pg`: one URL per host.
  const hostStrings = hostList.split(',');
  const u = new URL(`${scheme}${userinfo}${hostStrings[0]}${rest}`);
  const schema = u.searchParams.get('schema') ?? undefined;
  u.searchParams.delete('schema');
  if (schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw new StoreError('InvalidArgument', `schema "${schema}" in the store URL must be letters, digits and _ (at most 63, not starting with a digit)`);
  }
  const timeouts: Partial<PostgresTimeouts> = {};
  for (const [param, field] of TIMEOUT_PARAMS) {
    const v = u.searchParams.get(param);
    if (v === null) continue;
    u.searchParams.delete(param);
    if (!/^\d{1,9}$/.test(v) || Number(v) === 0) {
      throw new StoreError('InvalidArgument', `${param}=${v} in the store URL must be a positive whole number of milliseconds, e.g. ${param}=${DEFAULT_TIMEOUTS[field]}`);
    }
    timeouts[field] = Number(v);
  }
  const attrs = u.searchParams.get('target_session_attrs') ?? 'any';
  u.searchParams.delete('target_session_attrs');
  if (!['any', 'read-write', 'primary'].includes(attrs)) {
    throw new StoreError('InvalidArgument', `target_session_attrs=${attrs} in the store URL is not supported: use any, read-write or primary (the store writes, so a standby is no use)`);
  }
  const ours = ['schema', 'target_session_attrs', ...TIMEOUT_PARAMS.map(([param]) => param)];
  const connectionStrings = hostStrings.map((h) => {
    const one = new URL(`${scheme}${userinfo}${h}${rest}`);
    for (const param of ours) one.searchParams.delete(param);
    return one.toString();
  });
  return { connectionStrings, hosts, schema, timeouts, requireWritable: attrs !== 'any' };
}

function parseHost(h: string, url: string): PostgresHost {
  const m = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(h);
  if (!m) throw new StoreError('InvalidArgument', `"${h}" in store URL "${redact(url)}" is not a host or host:port (a list is host1:port1,host2:port2)`);
  return { host: decodeURIComponent(m[1].replace(/^\[(.*)\]$/, '$1')), port: m[2] ? Number(m[2]) : 5432 };
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:@/]*):[^@/]*@/i, '$1:***@');
}

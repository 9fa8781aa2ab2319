// A throwaway PostgreSQL server for tests: one per test process (initdb + pg_ctl, under a second), listening on
// a loopback port and a private unix socket directory, with fsync off (tests measure behaviour, not disks).
// Each test gets its own schema (`?schema=` in the URL), which is much cheaper than a database per test.
//
// initdb refuses to run as root, so as root (CI) the server runs as the `postgres` user that Debian's
// postgresql-15 package creates. Without PostgreSQL installed, `startTestPostgres` returns undefined with a
// reason (tests skip), except under CI=true, where a missing PostgreSQL is an error.

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export const POSTGRES_BIN_DIRS = ['/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/17/bin'];

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  port: number;
  /** The data directory (for tests that restart or kill the server). */
  dataDir: string;
  /** A URL whose store lives in a fresh, empty schema of its own. */
  freshUrl(): Promise<string>;
  /** `pg_ctl restart -m fast` or `-m immediate` (a crash): connections drop, data stays. */
  restart(mode?: 'fast' | 'immediate'): void;
  /** `pg_ctl stop -m fast` (default) or `-m immediate` (as a kill -9 of the server would). */
  stop(mode?: 'fast' | 'immediate'): void;
  start(): void;
  /**
   * A streaming standby of this server (pg_basebackup -R: standby.signal and primary_conninfo), started on a
   * port of its own; `promote()` makes it a primary (`pg_ctl promote`).
   */
  startStandby(): Promise<TestPostgres & { promote(): void }>;
  /** Stops the server and removes its files (for servers from startPostgresServer; the shared one goes at exit). */
  destroy(): void;
}

export interface PostgresServerOptions {
  /**
   * synchronous_commit on (default off: tests measure behaviour). A test that crashes the server (`-m immediate`)
   * and then counts acknowledged writes needs it: with it off, the last commits' WAL may still be in the dead
   * server's memory. fsync stays off either way: the machine does not crash, only the server.
   */
  synchronousCommit?: boolean;
  /** fsync on too (the bench: the same durability as a real deployment). */
  fsync?: boolean;
}

let shared: Promise<TestPostgres | string> | undefined;

/** The process's test server (started on first call), or why there is none (only outside CI). */
export function startTestPostgres(): Promise<TestPostgres | string> {
  shared ??= (async (): Promise<TestPostgres | string> => {
    const bin = POSTGRES_BIN_DIRS.find((d) => existsSync(join(d, 'initdb')));
    if (!bin) {
      const why = `PostgreSQL is not installed (looked for initdb in ${POSTGRES_BIN_DIRS.join(', ')}; apt-get install postgresql-15)`;
      if (process.env.CI === 'true') throw new Error(why);
      return why;
    }
    return launch(bin);
  })();
  return shared;
}

/** Why no test server can be started (PostgreSQL is not installed), or undefined; under CI=true, a throw. */
export function whyNoPostgres(): string | undefined {
  if (POSTGRES_BIN_DIRS.some((d) => existsSync(join(d, 'initdb')))) return undefined;
  const why = `PostgreSQL is not installed (looked for initdb in ${POSTGRES_BIN_DIRS.join(', ')}; apt-get install postgresql-15)`;
  if (process.env.CI === 'true') throw new Error(why);
  return why;
}

/** A server of its own (for tests that restart, stall or fail over the server, and the bench), or why none. */
export async function startPostgresServer(opts: PostgresServerOptions = {}): Promise<TestPostgres | string> {
  const why = whyNoPostgres();
  if (why !== undefined) return why;
  return launch(POSTGRES_BIN_DIRS.find((d) => existsSync(join(d, 'initdb')))!, opts);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function launch(bin: string, opts: PostgresServerOptions = {}, primary?: { port: number }): Promise<TestPostgres & { promote(): void }> {
  const root = mkdtempSync(join(tmpdir(), 'metalplane-pg-'));
  const dataDir = join(root, 'data');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(root, uid, gid);
  }
  chmodSync(root, 0o755);
  const run = (cmd: string, args: string[]): void => {
    const argv = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] as const : [join(bin, cmd), args] as const;
    const r = spawnSync(argv[0], [...argv[1]], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  };
  if (primary) {
    // A copy of the primary that follows it: -R writes standby.signal and primary_conninfo.
    run('pg_basebackup', ['-D', dataDir, '-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-R', '-X', 'stream', '--no-sync']);
  } else {
    run('initdb', ['-D', dataDir, '-E', 'UTF8', '--locale=C', '-A', 'trust', '-U', 'postgres', '--no-sync']);
  }
  const port = await freePort();
  const serverOpts = [
    `-p ${port}`,
    `-k ${root}`,
    '-c listen_addresses=127.0.0.1',
    `-c fsync=${opts.fsync ? 'on' : 'off'}`,
    `-c synchronous_commit=${opts.synchronousCommit || opts.fsync ? 'on' : 'off'}`,
    `-c full_page_writes=${opts.fsync ? 'on' : 'off'}`,
    '-c max_connections=200',
    '-c shared_buffers=32MB',
  ].join(' ');
  const start = (): void => run('pg_ctl', ['-D', dataDir, '-o', serverOpts, '-l', join(root, 'server.log'), '-w', '-t', '30', 'start']);
  const stop = (mode: 'fast' | 'immediate' = 'fast'): void => run('pg_ctl', ['-D', dataDir, '-m', mode, '-w', 'stop']);
  start();
  let stopped = false;
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    if (!stopped) {
      try {
        stop('immediate');
      } catch {
        // already down, or the process is exiting anyway; the temp dir goes below
      }
    }
    rmSync(root, { recursive: true, force: true });
  };
  process.on('exit', remove);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let schemas = 0;
  const self: TestPostgres & { promote(): void } = {
    url,
    port,
    dataDir,
    // The store creates its schema itself; a unique name per call is all a test needs.
    freshUrl: async () => `${url}?schema=t${process.pid}_${port}_${++schemas}`,
    restart: (mode = 'fast') => {
      stop(mode);
      start();
    },
    stop: (mode = 'fast') => {
      stop(mode);
      stopped = true;
    },
    start: () => {
      start();
      stopped = false;
    },
    startStandby: () => launch(bin, opts, { port }),
    promote: () => run('pg_ctl', ['-D', dataDir, '-w', '-t', '30', 'promote']),
    destroy: () => {
      process.off('exit', remove);
      remove();
    },
  };
  return self;
}

/** Runs one statement on the test server (for tests that inspect or sabotage the tables). */
export async function testQuery(url: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url.replace(/\?.*$/, '') });
  await c.connect();
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

// The PostgreSQL backend of the Store: kine's append-only log on `pg`, for several metalplane replicas sharing
// one database (made highly available the usual way: streaming replication, Patroni, a managed service).
//
// Revisions in commit order, with no gaps. kine takes ids from a sequence, and a transaction that drew 41 may
// commit after the one that drew 42: a watcher that already read 42 skips 41 forever (kine papers over it with
// "fill" rows). Here every write transaction first locks one counter row (`meta.revision`, SELECT … FOR UPDATE)
// and holds it until COMMIT, so write transactions commit one after another and revision N is visible only
// after every revision below N is. The lock costs one round trip per transaction, so writes are group-committed
// per replica: the writes queued during one flush share one transaction, one lock and one WAL flush.
//
// Preconditions are checked in memory against the latest rows of the batch's keys, read *after* the lock is
// held (a fresh statement, so a fresh READ COMMITTED snapshot that includes the previous holder's commit; in
// the locking statement itself PostgreSQL would re-check only the locked row). The unique (name, prev_revision)
// index stays as the backstop kine has.
//
// Watch. A write on replica A must reach watchers on B in commit order, never skipping or repeating a revision.
// Each replica keeps one feed: the position up to which it has delivered (`delivered`). LISTEN/NOTIFY only wakes
// it (a notification carries the batch's last revision, and notifications sent while our listening connection
// was down are lost); the authority is a read of the log by revision: rows in (delivered, head], where every
// revision up to head is committed. A replica's own batch is delivered straight from memory when it directly
// follows `delivered`, as the SQLite backend does, and its writers are acknowledged only once it was delivered,
// so the in-memory caches that follow the feed (src/apiserver/registry/current-state.ts) hold every write this
// replica acknowledged.
//
// "Current" reads (currentRevision, list without a revision) first read the head and wait until the feed has
// delivered it: a list on B after a write acknowledged on A includes that write, and a revision returned by
// this store is never ahead of what its watchers will deliver next (bookmarks stay truthful).

import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { StoreError, invalidWriteOp, isStoreError } from '../errors.js';
import { systemClock, type Clock, type Timer } from '../../lib/clock.js';
import type { CompactionOptions, KeyValue, ListOptions, ListResult, Store, StoreEvent, WatchHandle, WatchOptions, WriteOp } from '../types.js';
import { WatchHub, Watcher } from '../watch-hub.js';
import { DEFAULT_TIMEOUTS, parsePostgresUrl } from './url.js';

export { parsePostgresUrl } from './url.js';
export type { ParsedPostgresUrl } from './url.js';

/**
 * The schema, in `schema` (quoted identifier). `name` collates "C": bytes of UTF-8 = code point order, as SQLite
 * sorts. `writes` holds one row per write transaction, written in it: the proof, after a COMMIT whose answer was
 * lost, that it landed (kept for a while after compaction passes it; see compactInChunks).
 */
export function postgresSchema(schema: string): string {
  const s = quoteIdent(schema);
  return `
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.kv (
  id              BIGINT   PRIMARY KEY,
  name            TEXT     COLLATE "C" NOT NULL,
  created         SMALLINT NOT NULL DEFAULT 0,
  deleted         SMALLINT NOT NULL DEFAULT 0,
  create_revision BIGINT   NOT NULL,
  prev_revision   BIGINT   NOT NULL,
  value           TEXT     NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS kv_name_prev_revision ON ${s}.kv (name, prev_revision);
CREATE INDEX IF NOT EXISTS kv_name_id ON ${s}.kv (name, id);
CREATE TABLE IF NOT EXISTS ${s}.meta (
  name  TEXT   PRIMARY KEY,
  value BIGINT NOT NULL
);
INSERT INTO ${s}.meta (name, value) VALUES ('revision', 0), ('compact_revision', 0) ON CONFLICT (name) DO NOTHING;
CREATE TABLE IF NOT EXISTS ${s}.writes (
  write_id TEXT        PRIMARY KEY,
  revision BIGINT      NOT NULL,
  at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
`;
}

export interface PostgresStoreOptions {
  /** The schema holding the tables (default: `schema` from the URL's query, else "metalplane"). */
  schema?: string;
  /** Connections for reads and writes (default 10). The listener has one more of its own. */
  poolSize?: number;
  /** How often the feed reads the head even without a notification (default 1000 ms). */
  pollIntervalMs?: number;
  /** At most this many write calls share one transaction (default 1000). */
  maxBatch?: number;
  /** Server-side statement_timeout, lock_timeout and idle_in_transaction_session_timeout in ms (url.ts DEFAULT_TIMEOUTS). */
  statementTimeoutMs?: number;
  lockTimeoutMs?: number;
  idleInTransactionTimeoutMs?: number;
  /**
   * How long a write keeps being retried while the database does not answer (restart, failover) before it
   * fails as Unavailable (default 20 000 ms). Reads retry for a quarter of it.
   */
  retryForMs?: number;
  /** Drives compaction, polling and reconnect backoff (default: the system clock). */
  clock?: Clock;
  /** Where failures of background work go: compaction, a feed read that will be retried (default: process.emitWarning). */
  onBackgroundError?: (err: Error) => void;
}

export interface PostgresStoreStats {
  /** Write transactions committed (one per group-commit batch). */
  commits: number;
  acknowledgedWrites: number;
  rejectedWrites: number;
  /** Batches the feed delivered from memory (our own commits), and reads of the log it made (others' commits). */
  localDeliveries: number;
  logReads: number;
  /** Times a write transaction was retried after a connection failure. */
  retries: number;
  watchers: number;
}

/** Rows of revisions covered by one compaction transaction. */
const COMPACTION_CHUNK = 1000;
/** The log is read (and delivered) in pages of this many events. */
const FEED_PAGE = 5000;

interface PendingWrite {
  ops: WriteOp[];
  resolve: (kvs: KeyValue[]) => void;
  reject: (err: Error) => void;
}

/** The newest version of a key as the batch sees it (after earlier ops of the batch). */
interface Latest {
  id: number;
  deleted: boolean;
  createRevision: number;
  value: string;
}

type Row = { id: number; name: string; created: number; deleted: number; create_revision: number; value: string };
type LogRow = Row & { prev_revision: number; prev_value: string | null };

// BIGINT comes back from pg as a string (it may exceed 2^53); revisions stay far below that, so parse to number.
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

export async function openPostgresStore(url: string, opts: PostgresStoreOptions = {}): Promise<PostgresStore> {
  const parsed = parsePostgresUrl(url);
  const store = new PostgresStore(parsed.connectionStrings, {
    ...parsed.timeouts,
    ...opts,
    schema: opts.schema ?? parsed.schema ?? 'metalplane',
    requireWritable: parsed.requireWritable,
  });
  try {
    await store.init();
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  return store;
}

export class PostgresStore implements Store {
  private readonly pool: pg.Pool;
  private readonly clock: Clock;
  private readonly onBackgroundError: (err: Error) => void;
  private readonly schema: string;
  private readonly t: { kv: string; meta: string; writes: string };
  private readonly channel: string;
  private readonly pollIntervalMs: number;
  private readonly maxBatch: number;
  private readonly hub = new WatchHub();
  private readonly counters = { commits: 0, acknowledgedWrites: 0, rejectedWrites: 0, localDeliveries: 0, logReads: 0, retries: 0 };

  // ---- the feed
  /** Every revision up to this one was handed to the watchers, in order. */
  private delivered = 0;
  /** The highest revision known to be committed (from notifications, head reads and our own commits). */
  private target = 0;
  /** Our own committed batches not yet delivered, by first revision. */
  private readonly local = new Map<number, { last: number; events: StoreEvent[] }>();
  /** Callers waiting for `delivered` to reach a revision. */
  private waiters: { rev: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private pumping = false;
  private pumpAgain = false;
  private pumpFailures = 0;
  private pumpRetry: Timer | undefined;
  private pollTimer: Timer | undefined;
  private listener: pg.Client | undefined;
  private listenerRetry: Timer | undefined;
  private compactRevision = 0;

  // ---- writes
  private queue: PendingWrite[] = [];
  private writesAccepted = 0;
  private writesSettled = 0;
  private settleWaiters: { n: number; resolve: () => void }[] = [];
  private flushing: Promise<void> | undefined;
  private compaction: Promise<void> = Promise.resolve();
  private compactionTimer: Timer | undefined;
  /** No new calls are accepted. */
  private closing = false;
  /** Background work (feed, listener, polls) has ended; set after the accepted writes were flushed. */
  private stopped = false;

  /** `connectionStrings`: one per host, tried in turn (url.ts); `requireWritable`: skip read-only servers. */
  constructor(connectionStrings: string | string[], opts: PostgresStoreOptions & { schema: string; requireWritable?: boolean }) {
    const urls = typeof connectionStrings === 'string' ? [connectionStrings] : connectionStrings;
    this.schema = opts.schema;
    this.t = { kv: `${quoteIdent(this.schema)}.kv`, meta: `${quoteIdent(this.schema)}.meta`, writes: `${quoteIdent(this.schema)}.writes` };
    this.channel = `metalplane_${this.schema}`.slice(0, 63);
    this.clock = opts.clock ?? systemClock;
    this.onBackgroundError = opts.onBackgroundError ?? ((err) => process.emitWarning(`store: ${err.message}`));
    this.pollIntervalMs = opts.pollIntervalMs ?? 1000;
    this.maxBatch = opts.maxBatch ?? 1000;
    this.retryForMs = opts.retryForMs ?? 20_000;
    this.timeouts = {
      statementTimeoutMs: opts.statementTimeoutMs ?? DEFAULT_TIMEOUTS.statementTimeoutMs,
      lockTimeoutMs: opts.lockTimeoutMs ?? DEFAULT_TIMEOUTS.lockTimeoutMs,
      idleInTransactionTimeoutMs: opts.idleInTransactionTimeoutMs ?? DEFAULT_TIMEOUTS.idleInTransactionTimeoutMs,
    };
    const clientConfig: pg.ClientConfig = {
      connectionString: urls[0],
      types,
      statement_timeout: this.timeouts.statementTimeoutMs,
      lock_timeout: this.timeouts.lockTimeoutMs,
      idle_in_transaction_session_timeout: this.timeouts.idleInTransactionTimeoutMs,
      // Client side: a network that stalls (no RST, no answer) fails a statement instead of hanging it; later than
      // the server's own statement timeout, which says more when the server is there.
      query_timeout: this.timeouts.statementTimeoutMs + 5_000,
      application_name: 'metalplane',
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    };
    this.Client = hostClient(urls, opts.requireWritable ?? false);
    this.clientConfig = clientConfig;
    this.poolSize = opts.poolSize ?? 10;
    this.pool = new pg.Pool({ ...clientConfig, Client: this.Client, max: this.poolSize, min: Math.min(3, this.poolSize), idleTimeoutMillis: 30_000 });
    // An idle pooled connection that the server closed (restart, failover) is dropped by pg; say so, never crash.
    this.pool.on('error', (err) => this.onBackgroundError(new Error(`idle connection failed: ${err.message}`)));
  }

  private readonly poolSize: number;
  private readonly clientConfig: pg.ClientConfig;
  private readonly Client: typeof pg.Client;
  private readonly retryForMs: number;
  /** The limits in force (from the URL or the options, else the defaults). */
  readonly timeouts: { statementTimeoutMs: number; lockTimeoutMs: number; idleInTransactionTimeoutMs: number };

  /** Creates the schema (once, under an advisory lock, so replicas starting together do not race) and starts the feed. */
  async init(): Promise<void> {
    const c = await this.connect();
    try {
      await c.query('BEGIN');
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`metalplane schema ${this.schema}`]);
      await c.query(postgresSchema(this.schema));
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
    // A few connections opened now: a read next to a write in flight should not wait for a connection handshake.
    const warm = await Promise.all(Array.from({ length: Math.min(3, this.poolSize) - 1 }, () => this.connect()));
    for (const w of warm) w.release();
    const meta = await this.readMeta();
    this.delivered = this.target = meta.head;
    this.compactRevision = meta.compact;
    await this.connectListener();
    this.schedulePoll();
  }

  get stats(): PostgresStoreStats {
    return { ...this.counters, watchers: this.hub.size };
  }

  /**
   * Whether the database answers, and takes writes where the URL asks for that (for /readyz): undefined when it
   * does, else why not. Bounded by `timeoutMs`, so a stalled network makes the probe fail, not hang.
   */
  async unavailableReason(timeoutMs = 2000): Promise<string | undefined> {
    if (this.closing) return 'the store is closed';
    let timer: Timer | undefined;
    const timedOut = new Promise<string>((resolve) => {
      timer = this.clock.setTimeout(() => resolve(`the database did not answer within ${timeoutMs} ms`), timeoutMs);
    });
    const probe = this.pool.query('SELECT 1').then(
      () => undefined,
      (err: Error) => `the database does not answer: ${err.message}`,
    );
    try {
      return await Promise.race([probe, timedOut]);
    } finally {
      if (timer) this.clock.clearTimeout(timer);
    }
  }

  /**
   * A connection of the pool for a transaction. A checked-out pg client emits 'error' when its connection dies
   * (the pool listens only while it is idle), and an unheard 'error' would crash the process: the failure reaches
   * us through the statement in flight anyway.
   */
  private async connect(): Promise<pg.PoolClient> {
    const c = await this.pool.connect();
    if (!this.heard.has(c)) {
      this.heard.add(c);
      c.on('error', () => undefined);
    }
    return c;
  }

  private readonly heard = new WeakSet<pg.PoolClient>();

  /** A read: idempotent, so retried with backoff while the database does not answer (for a while); errors translated. */
  private async read<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    const deadline = this.clock.now() + this.retryForMs / 4;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.pool.query<R>(sql, params);
      } catch (err) {
        if (isConnectionError(err) && !this.stopped && this.clock.now() < deadline) {
          await sleep(this.clock, backoffMs(attempt));
          continue;
        }
        throw translateError(err, this.timeouts);
      }
    }
  }

  // ------------------------------------------------------------------ reads

  async currentRevision(): Promise<number> {
    this.assertOpen();
    return (await this.sync()).head;
  }

  async compactedRevision(): Promise<number> {
    this.assertOpen();
    return (await this.readMeta()).compact;
  }

  async get(key: string, revision?: number): Promise<KeyValue | undefined> {
    this.assertOpen();
    let rows: Row[];
    if (revision === undefined || revision === 0) {
      // The newest committed version: never older than anything acknowledged anywhere.
      rows = (await this.read<Row>(`SELECT id, name, created, deleted, create_revision, value FROM ${this.t.kv} WHERE name = $1 ORDER BY id DESC LIMIT 1`, [key])).rows;
    } else {
      const rev = await this.readRevision(revision);
      rows = (await this.read<Row>(`SELECT id, name, created, deleted, create_revision, value FROM ${this.t.kv} WHERE name = $1 AND id <= $2 ORDER BY id DESC LIMIT 1`, [key, rev])).rows;
    }
    const row = rows[0];
    return row && row.deleted === 0 ? toKeyValue(row) : undefined;
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    this.assertOpen();
    const rev = await this.readRevision(opts.revision);
    const limit = opts.limit && opts.limit > 0 ? Math.floor(opts.limit) : 0;
    const range = keyRange(prefix, opts.startAfter, 2);
    if (range === undefined) return { items: [], revision: rev, more: false };
    const params: unknown[] = [rev, ...range.params];
    const rows = (
      await this.read<Row>(
        `SELECT k.id, k.name, k.created, k.deleted, k.create_revision, k.value FROM ${this.t.kv} AS k
         WHERE ${range.sql} AND ${this.latestLiveAt('$1')} ORDER BY k.name ${limit ? `LIMIT ${limit + 1}` : ''}`,
        params,
      )
    ).rows;
    const more = limit > 0 && rows.length > limit;
    if (more) rows.length = limit;
    const items = rows.map(toKeyValue);
    if (!more) return { items, revision: rev, more };
    return { items, revision: rev, more, remaining: await this.countAt(prefix, rev, items[items.length - 1].key) };
  }

  async count(prefix: string): Promise<number> {
    this.assertOpen();
    return this.countAt(prefix, (await this.sync()).head);
  }

  private async countAt(prefix: string, rev: number, startAfter?: string): Promise<number> {
    const range = keyRange(prefix, startAfter, 2);
    if (range === undefined) return 0;
    const r = await this.read<{ n: number }>(`SELECT COUNT(*)::int8 AS n FROM ${this.t.kv} AS k WHERE ${range.sql} AND ${this.latestLiveAt('$1')}`, [rev, ...range.params]);
    return r.rows[0].n;
  }

  /** "This row is the newest version of its key at rev, and not a tombstone" (one seek on (name, id) per row). */
  private latestLiveAt(rev: string): string {
    return `k.id <= ${rev} AND k.deleted = 0 AND NOT EXISTS (SELECT 1 FROM ${this.t.kv} AS n WHERE n.name = k.name AND n.id > k.id AND n.id <= ${rev})`;
  }

  /** The revision a read happens at: the current one (synced), or an explicit one that is retained and reached. */
  private async readRevision(revision: number | undefined): Promise<number> {
    if (revision === undefined || revision === 0) return (await this.sync()).head;
    if (!Number.isSafeInteger(revision) || revision < 0) throw new StoreError('InvalidArgument', `revision must be a non-negative integer, got ${revision}`);
    const meta = revision > this.delivered ? await this.sync() : await this.readMeta();
    if (revision < meta.compact) throw new StoreError('Compacted', `too old resource version: ${revision} (${meta.compact})`);
    if (revision > meta.head) throw new StoreError('FutureRevision', `Too large resource version: ${revision}, current: ${meta.head}`);
    return revision;
  }

  private async readMeta(): Promise<{ head: number; compact: number }> {
    const r = await this.read<{ name: string; value: number }>(`SELECT name, value FROM ${this.t.meta} WHERE name IN ('revision', 'compact_revision')`);
    let head = 0;
    let compact = 0;
    for (const row of r.rows) {
      if (row.name === 'revision') head = row.value;
      else compact = row.value;
    }
    if (compact > this.compactRevision) this.compactRevision = compact;
    return { head, compact };
  }

  /**
   * Reads the head and waits until the feed delivered it. Writes this replica accepted before the call are
   * waited for first: a process that issued a write and then asks for the current revision sees it (the SQLite
   * backend gives that for free, committing within the turn).
   */
  private async sync(): Promise<{ head: number; compact: number }> {
    if (this.writesSettled < this.writesAccepted) await this.untilWritesSettled(this.writesAccepted);
    const meta = await this.readMeta();
    await this.untilDelivered(meta.head);
    return meta;
  }

  // ------------------------------------------------------------------ writes

  async create(key: string, value: string): Promise<KeyValue> {
    return (await this.enqueue([{ op: 'create', key, value }]))[0];
  }

  async update(key: string, value: string, expectedRevision?: number): Promise<KeyValue> {
    return (await this.enqueue([{ op: 'update', key, value, expectedRevision }]))[0];
  }

  async delete(key: string, expectedRevision?: number): Promise<KeyValue> {
    return (await this.enqueue([{ op: 'delete', key, expectedRevision }]))[0];
  }

  async commit(ops: WriteOp[]): Promise<KeyValue[]> {
    if (ops.length === 0) {
      this.assertOpen();
      return [];
    }
    return this.enqueue(ops);
  }

  private enqueue(ops: WriteOp[]): Promise<KeyValue[]> {
    if (this.closing) return Promise.reject(closedError());
    // PostgreSQL text cannot hold NUL.
    const invalid = invalidWriteOp(ops, { noNul: true });
    if (invalid) return Promise.reject(invalid);
    this.writesAccepted++;
    return new Promise<KeyValue[]>((resolve, reject) => {
      this.queue.push({ ops, resolve, reject });
      this.kickFlush();
    });
  }

  private untilWritesSettled(n: number): Promise<void> {
    return new Promise((resolve) => this.settleWaiters.push({ n, resolve }));
  }

  /** Batches settle in the order they were queued, so a count says which writes are done. */
  private noteSettled(count: number): void {
    this.writesSettled += count;
    if (this.settleWaiters.length === 0) return;
    this.settleWaiters = this.settleWaiters.filter((w) => {
      if (w.n > this.writesSettled) return true;
      w.resolve();
      return false;
    });
  }

  /**
   * One flush at a time. While one transaction is in flight, new writes queue up and go together in the next:
   * the batch grows with the load, and the revision lock is taken once per batch.
   */
  private kickFlush(): void {
    if (this.flushing) return;
    this.flushing = new Promise<void>((r) => setImmediate(r)).then(async () => {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        await this.flush(batch);
        this.noteSettled(batch.length);
      }
      this.flushing = undefined;
    });
  }

  /** Commits one batch (retrying connection failures where the outcome is known), delivers it, settles the callers. */
  private async flush(batch: PendingWrite[]): Promise<void> {
    let result: BatchResult;
    const deadline = this.clock.now() + this.retryForMs;
    for (let attempt = 0; ; attempt++) {
      try {
        result = await this.writeBatch(batch);
        break;
      } catch (err) {
        // Only a transaction that surely did not commit is retried: one that failed before COMMIT was sent, or
        // whose COMMIT was found not to have landed. A lock or statement timeout is not retried here: the
        // caller hears it at once (a stuck transaction elsewhere must not make every write wait forever).
        if (err instanceof BeforeCommitError && isConnectionError(err.cause) && this.clock.now() < deadline && !this.stopped) {
          this.counters.retries++;
          await sleep(this.clock, backoffMs(attempt));
          continue;
        }
        let e = translateError(err, this.timeouts);
        if (err instanceof BeforeCommitError && isStoreError(e, 'Unavailable')) e = new StoreError('Unavailable', `${e.message}; the write was not applied`);
        this.counters.rejectedWrites += batch.length;
        for (const w of batch) w.reject(e);
        return;
      }
    }
    if (result.events.length > 0) {
      this.counters.commits++;
      this.offerLocal(result.first, result.last, result.events);
      try {
        await this.untilDelivered(result.last);
      } catch (err) {
        // The feed stopped (the store closed): the write is committed, but no watcher will see it from here.
        for (let i = 0; i < batch.length; i++) if (!(result.outcomes[i] instanceof Error)) result.outcomes[i] = err as Error;
      }
    }
    for (let i = 0; i < batch.length; i++) {
      const outcome = result.outcomes[i];
      if (outcome instanceof Error) {
        this.counters.rejectedWrites++;
        batch[i].reject(outcome);
      } else {
        this.counters.acknowledgedWrites++;
        batch[i].resolve(outcome);
      }
    }
  }

  /**
   * The write transaction: lock the counter, read the latest rows of every key the batch touches, decide each
   * caller's fate in memory (a failed precondition drops only that caller's ops), append the rows, move the
   * counter, notify, commit. Two round trips however large the batch: BEGIN + lock + read in one simple query,
   * append + COMMIT in another. Each round trip waits on a busy event loop and on the database process, and the
   * flushes of a replica run one after another, so round trips per batch are what bounds a replica's write rate
   * under load (four of them made api.create on PostgreSQL ~10× slower than the store alone). A simple query
   * carries no parameters, so values go in as literals (pg's escapeLiteral); within it every statement still
   * takes its own READ COMMITTED snapshot, so the read after the lock sees the previous holder's commit.
   */
  private async writeBatch(batch: PendingWrite[]): Promise<BatchResult> {
    let c: pg.PoolClient;
    try {
      c = await this.connect();
    } catch (err) {
      throw new BeforeCommitError(err);
    }
    let committing = false;
    let broken = false;
    try {
      try {
        const keys = [...new Set(batch.flatMap((w) => w.ops.map((o) => o.key)))];
        const locked = (await c.query(
          `BEGIN; SELECT value FROM ${this.t.meta} WHERE name = 'revision' FOR UPDATE;
           SELECT DISTINCT ON (name) id, name, created, deleted, create_revision, value FROM ${this.t.kv} WHERE name IN (${keys.map(literal).join(',')}) ORDER BY name, id DESC`,
        )) as unknown as pg.QueryResult[];
        const base = (locked[1].rows[0] as { value: number }).value;
        const latest = new Map<string, Latest>();
        for (const r of locked[2].rows as Row[]) latest.set(r.name, { id: r.id, deleted: r.deleted === 1, createRevision: r.create_revision, value: r.value });

        const plan = planBatch(batch.map((w) => w.ops), latest, base);
        if (plan.rows.length === 0) {
          await c.query('ROLLBACK');
          return { outcomes: plan.outcomes, events: [], first: 0, last: base };
        }
        const values = plan.rows.map((r) => `(${r.id},${literal(r.name)},${r.created},${r.deleted},${r.createRevision},${r.prevRevision},${literal(r.value)})`);
        const last = base + plan.rows.length;
        const writeId = randomUUID();
        const result: BatchResult = { outcomes: plan.outcomes, events: plan.events, first: base + 1, last };
        // From here on the COMMIT may have been sent: a lost answer is resolved by looking for the write id.
        committing = true;
        try {
          await c.query(
            `INSERT INTO ${this.t.kv} (id, name, created, deleted, create_revision, prev_revision, value) VALUES ${values.join(',')};
             UPDATE ${this.t.meta} SET value = ${last} WHERE name = 'revision';
             INSERT INTO ${this.t.writes} (write_id, revision) VALUES ('${writeId}', ${last});
             SELECT pg_notify(${literal(this.channel)}, '${last}');
             COMMIT`,
          );
        } catch (err) {
          if (!isConnectionError(err)) {
            // A statement failed (a statement timeout, the unique backstop): the rest of the query, COMMIT
            // included, was skipped and the transaction is aborted: surely not committed.
            await c.query('ROLLBACK').catch(() => (broken = true));
            throw new BeforeCommitError(err);
          }
          broken = true;
          // The query with the COMMIT was sent and no answer came: the batch may or may not be in the log.
          return await this.resolveUnknownCommit(err, result, writeId);
        }
        return result;
      } catch (err) {
        if (committing) throw err;
        broken = isConnectionError(err);
        if (!broken) await c.query('ROLLBACK').catch(() => undefined);
        throw new BeforeCommitError(err);
      }
    } finally {
      c.release(broken ? true : undefined);
    }
  }

  /**
   * A COMMIT whose answer was lost (the server restarted, failed over, or the network broke). Whether it landed
   * is in the database: the transaction wrote its write id into `writes`. Ask until the database answers
   * (bounded), then either acknowledge the batch or retry it as never written: a write is neither applied twice
   * nor reported failed when it was kept. If the database stays away, the callers hear Unavailable saying that
   * the outcome is unknown (the one honest answer then, as with any networked database).
   */
  private async resolveUnknownCommit(err: unknown, result: BatchResult, writeId: string): Promise<BatchResult> {
    const deadline = this.clock.now() + this.retryForMs;
    for (let attempt = 0; !this.stopped && this.clock.now() < deadline; attempt++) {
      await sleep(this.clock, backoffMs(attempt));
      let landed: boolean;
      try {
        // Taking the revision lock first waits out our old transaction if the server still has it (the COMMIT
        // may not have reached it yet; it ends at COMMIT or when the server notices the dead connection, at the
        // latest after idle_in_transaction_session_timeout): once we hold the lock, the answer is final.
        const c = await this.connect();
        try {
          const r = (await c.query(
            `BEGIN; SELECT value FROM ${this.t.meta} WHERE name = 'revision' FOR UPDATE; SELECT 1 AS one FROM ${this.t.writes} WHERE write_id = '${writeId}'; ROLLBACK`,
          )) as unknown as pg.QueryResult<{ one: number }>[];
          landed = r[2].rows.length > 0;
          c.release();
        } catch (e) {
          c.release(true); // possibly inside a failed transaction: not for reuse
          throw e;
        }
      } catch {
        // Unreachable, or the old transaction still holds the lock: ask again (until the deadline).
        continue;
      }
      if (landed) return result;
      // Not there while we hold the lock: our transaction did not commit and never will.
      this.counters.retries++;
      throw new BeforeCommitError(err);
    }
    throw new StoreError(
      'Unavailable',
      `the outcome of the write is unknown: the database stopped answering after COMMIT was sent (${(err as Error).message}) and did not answer within ${this.retryForMs} ms; read the object to see whether the write happened`,
    );
  }

  // ------------------------------------------------------------------ the feed

  /** Our own committed batch: delivered from memory if it is next, else the log read fills the gap first. */
  private offerLocal(first: number, last: number, events: StoreEvent[]): void {
    if (last > this.target) this.target = last;
    if (first <= this.delivered) return;
    this.local.set(first, { last, events });
    this.kickPump();
  }

  private untilDelivered(rev: number): Promise<void> {
    if (rev <= this.delivered) return Promise.resolve();
    if (this.stopped) return Promise.reject(closedError());
    if (rev > this.target) {
      this.target = rev;
      this.kickPump();
    }
    return new Promise((resolve, reject) => this.waiters.push({ rev, resolve, reject }));
  }

  private kickPump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      do {
        this.pumpAgain = false;
        await this.pumpOnce();
      } while (this.pumpAgain && !this.stopped);
      this.pumpFailures = 0;
    } catch (err) {
      if (!this.stopped) {
        // Database unreachable: retry with backoff; watchers and waiting writers just wait.
        this.pumpFailures++;
        this.onBackgroundError(new Error(`reading the log failed (retrying): ${(err as Error).message}`));
        if (!this.pumpRetry) {
          this.pumpRetry = this.clock.setTimeout(() => {
            this.pumpRetry = undefined;
            this.kickPump();
          }, Math.min(5000, 100 * 2 ** Math.min(this.pumpFailures, 6)));
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Delivers everything up to `target`: our own batches from memory, others' from the log, in revision order. */
  private async pumpOnce(): Promise<void> {
    while (!this.stopped) {
      for (const first of this.local.keys()) if (first <= this.delivered) this.local.delete(first);
      const own = this.local.get(this.delivered + 1);
      if (own) {
        this.local.delete(this.delivered + 1);
        this.counters.localDeliveries++;
        this.deliver(own.events, own.last);
        continue;
      }
      if (this.target <= this.delivered) return;
      // Read up to the target, or up to just before our next own batch (which needs no read).
      let to = this.target;
      for (const first of this.local.keys()) if (first - 1 < to) to = first - 1;
      await this.readLog(to);
    }
  }

  /** Reads (delivered, to] from the log in pages and delivers it. Every revision up to `to` is committed. */
  private async readLog(to: number): Promise<void> {
    while (this.delivered < to && !this.stopped) {
      const from = this.delivered;
      this.counters.logReads++;
      const rows = (
        await this.read<LogRow>(
          `SELECT k.id, k.name, k.created, k.deleted, k.create_revision, k.prev_revision, k.value, p.value AS prev_value
           FROM ${this.t.kv} AS k LEFT JOIN ${this.t.kv} AS p ON p.id = k.prev_revision AND k.created = 0
           WHERE k.id > $1 AND k.id <= $2 ORDER BY k.id LIMIT ${FEED_PAGE}`,
          [from, to],
        )
      ).rows;
      if (this.delivered !== from) return; // delivered meanwhile (cannot happen: one pump at a time)
      const upTo = rows.length === FEED_PAGE ? rows[rows.length - 1].id : to;
      // Compaction removes rows only at or below the compacted revision: a feed that fell that far behind has
      // lost events and cannot go on; its watchers hear Compacted (as they would on a watch from there).
      const { compact } = await this.readMeta();
      if (compact > from) {
        this.hub.closeAll(new StoreError('Compacted', `the watch fell behind compaction: events up to ${compact} are gone (delivered up to ${from})`));
        this.delivered = Math.max(upTo, compact);
        this.resolveWaiters();
        continue;
      }
      this.deliver(rows.map(toLogEvent), upTo);
    }
  }

  private deliver(events: StoreEvent[], upTo: number): void {
    this.delivered = upTo;
    if (upTo > this.target) this.target = upTo;
    if (events.length > 0) this.hub.broadcast(events);
    this.resolveWaiters();
  }

  private resolveWaiters(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.rev <= this.delivered) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  /** The dedicated LISTEN connection; reconnects with backoff and then polls once (notifications may have been lost). */
  private async connectListener(attempt = 0): Promise<void> {
    if (this.stopped) return;
    const client = new this.Client(this.clientConfig);
    client.on('error', () => undefined); // followed by 'end', handled below
    client.on('notification', (msg) => {
      const rev = Number(msg.payload);
      if (Number.isSafeInteger(rev) && rev > this.target) {
        this.target = rev;
        this.kickPump();
      }
    });
    client.on('end', () => {
      if (this.listener === client) this.listener = undefined;
      if (!this.stopped) this.retryListener(1);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdent(this.channel)}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      this.retryListener(attempt + 1);
      if (attempt === 0) this.onBackgroundError(new Error(`LISTEN failed (retrying): ${(err as Error).message}`));
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.listener = client;
    if (attempt > 0) void this.pollNow();
  }

  private retryListener(attempt: number): void {
    if (this.listenerRetry || this.stopped) return;
    this.listenerRetry = this.clock.setTimeout(() => {
      this.listenerRetry = undefined;
      void this.connectListener(attempt);
    }, Math.min(5000, 100 * 2 ** Math.min(attempt, 6)));
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    this.pollTimer = this.clock.setTimeout(() => {
      this.pollTimer = undefined;
      void this.pollNow().finally(() => this.schedulePoll());
    }, this.pollIntervalMs);
  }

  /** The authority: the head as the log says, whatever notifications arrived. */
  private async pollNow(): Promise<void> {
    try {
      const { head } = await this.readMeta();
      if (head > this.target) {
        this.target = head;
        this.kickPump();
      }
    } catch {
      // the next poll tries again; a feed read failing reports itself
    }
  }

  // ------------------------------------------------------------------ watch

  async watch(prefix: string, opts: WatchOptions): Promise<WatchHandle> {
    this.assertOpen();
    const from = opts.fromRevision ?? 0;
    if (!Number.isSafeInteger(from) || from < 0) throw new StoreError('InvalidArgument', `fromRevision must be a non-negative integer, got ${from}`);
    if (from > 0 && from < this.compactRevision) throw new StoreError('Compacted', `too old resource version: ${from} (${this.compactRevision})`);
    // Registered first, buffering: everything the feed delivers from now on is above `replayTo`, and the replay
    // covers (from, replayTo] from the log, so replay and live delivery meet exactly.
    const replayTo = this.delivered;
    const watcher = new Watcher(prefix, opts, from === 0 ? replayTo : from, this.hub);
    this.hub.add(watcher);
    if (from > 0 && from < replayTo) {
      try {
        const range = keyRange(prefix, undefined, 3);
        if (range !== undefined) {
          const replay: StoreEvent[] = [];
          for (let after = from; ; ) {
            const rows = (
              await this.read<LogRow>(
                `SELECT k.id, k.name, k.created, k.deleted, k.create_revision, k.prev_revision, k.value, p.value AS prev_value
                 FROM ${this.t.kv} AS k LEFT JOIN ${this.t.kv} AS p ON p.id = k.prev_revision AND k.created = 0
                 WHERE k.id > $1 AND k.id <= $2 AND ${range.sql} ORDER BY k.id LIMIT ${FEED_PAGE}`,
                [after, replayTo, ...range.params],
              )
            ).rows;
            for (const r of rows) replay.push(toLogEvent(r));
            if (rows.length < FEED_PAGE) break;
            after = rows[rows.length - 1].id;
          }
          // A compaction past `from` during the replay may have removed rows we needed.
          const { compact } = await this.readMeta();
          if (compact > from) throw new StoreError('Compacted', `too old resource version: ${from} (${compact})`);
          watcher.prepend(replay);
        }
      } catch (err) {
        watcher.cancel();
        throw translateError(err);
      }
    }
    setImmediate(() => watcher.startLive());
    return { cancel: () => watcher.cancel() };
  }

  // ------------------------------------------------------------------ compaction

  async compact(revision: number): Promise<void> {
    this.assertOpen();
    if (!Number.isSafeInteger(revision) || revision < 0) throw new StoreError('InvalidArgument', `revision must be a non-negative integer, got ${revision}`);
    const { head } = await this.readMeta();
    if (revision > head) throw new StoreError('InvalidArgument', `cannot compact to revision ${revision}: the current revision is ${head}`);
    const run = this.compaction.then(() => this.compactInChunks(revision));
    this.compaction = run.catch(() => undefined);
    return run;
  }

  /**
   * Compacts (lo, hi] chunk by chunk as the SQLite backend does (see compactChunk there). Replicas may compact
   * at the same time: the compacted-revision row is locked per chunk, so they take turns, and a chunk another
   * replica already did is skipped. Writers are not blocked: compaction never removes a key's newest row.
   */
  private async compactInChunks(target: number): Promise<void> {
    for (;;) {
      if (this.stopped) throw closedError();
      const c = await this.connect();
      let hi: number;
      try {
        await c.query('BEGIN');
        const lo = (await c.query<{ value: number }>(`SELECT value FROM ${this.t.meta} WHERE name = 'compact_revision' FOR UPDATE`)).rows[0].value;
        if (lo >= target) {
          await c.query('ROLLBACK');
          if (lo > this.compactRevision) this.compactRevision = lo;
          return;
        }
        hi = Math.min(target, lo + COMPACTION_CHUNK);
        await c.query(`DELETE FROM ${this.t.kv} WHERE id IN (SELECT prev_revision FROM ${this.t.kv} WHERE id > $1 AND id <= $2 AND prev_revision > 0)`, [lo, hi]);
        await c.query(`DELETE FROM ${this.t.kv} WHERE id > $1 AND id <= $2 AND deleted = 1`, [lo, hi]);
        await c.query(`UPDATE ${this.t.meta} SET value = $1 WHERE name = 'compact_revision'`, [hi]);
        // Write ids are needed only while a writer may still be asking whether its COMMIT landed (seconds).
        await c.query(`DELETE FROM ${this.t.writes} WHERE revision <= $1 AND at < now() - interval '1 hour'`, [hi]);
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw translateError(err);
      } finally {
        c.release();
      }
      if (hi > this.compactRevision) this.compactRevision = hi;
    }
  }

  startCompaction(opts: CompactionOptions = {}): void {
    this.assertOpen();
    const keep = opts.keepRevisions ?? 1000;
    const interval = opts.intervalMs ?? 60_000;
    if (this.compactionTimer) this.clock.clearTimeout(this.compactionTimer);
    const tick = (): void => {
      this.compactionTimer = undefined;
      if (this.closing) return;
      const target = this.delivered - keep;
      const done = target > this.compactRevision ? this.compact(target) : Promise.resolve();
      done
        .catch((err: Error) => {
          if (!this.closing) this.onBackgroundError(new Error(`compaction failed: ${err.message}`));
        })
        .finally(() => {
          if (!this.closing) this.compactionTimer = this.clock.setTimeout(tick, interval);
        });
    };
    this.compactionTimer = this.clock.setTimeout(tick, interval);
  }

  // ------------------------------------------------------------------ lifecycle

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    // Writes already accepted are committed (and acknowledged), not dropped.
    if (this.flushing) await this.flushing.catch(() => undefined);
    this.stopped = true;
    for (const t of [this.compactionTimer, this.pollTimer, this.pumpRetry, this.listenerRetry]) if (t) this.clock.clearTimeout(t);
    await this.compaction;
    const err = closedError();
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.hub.closeAll(err);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }

  private assertOpen(): void {
    if (this.closing) throw closedError();
  }
}

// ------------------------------------------------------------------ the pure part of a write

interface BatchResult {
  outcomes: (KeyValue[] | Error)[];
  events: StoreEvent[];
  first: number;
  last: number;
}

interface NewRow {
  id: number;
  name: string;
  created: number;
  deleted: number;
  createRevision: number;
  prevRevision: number;
  value: string;
}

export interface BatchPlan {
  /** Per caller: its results, or the precondition that failed (nothing of that caller is written). */
  outcomes: (KeyValue[] | StoreError)[];
  rows: NewRow[];
  events: StoreEvent[];
}

/**
 * Decides a batch: each caller's ops in order against the latest versions (including earlier callers' ops of
 * the batch), revisions from base + 1 on, consecutive over the ops that are written. Pure.
 */
export function planBatch(writes: readonly WriteOp[][], latest: Map<string, Latest>, base: number): BatchPlan {
  const outcomes: (KeyValue[] | StoreError)[] = [];
  const rows: NewRow[] = [];
  const events: StoreEvent[] = [];
  let rev = base;
  for (const ops of writes) {
    const overlay = new Map<string, Latest | undefined>();
    const see = (key: string): Latest | undefined => (overlay.has(key) ? overlay.get(key) : latest.get(key));
    const mine: NewRow[] = [];
    const myEvents: StoreEvent[] = [];
    const kvs: KeyValue[] = [];
    let failed: StoreError | undefined;
    let r = rev;
    for (const op of ops) {
      const cur = see(op.key);
      const live = cur && !cur.deleted ? cur : undefined;
      // A check takes no revision: revisions stay consecutive over what is written.
      const id = op.op === 'check' ? r : ++r;
      if (op.op === 'create') {
        if (live) {
          failed = new StoreError('KeyExists', `key "${op.key}" already exists`, op.key);
          break;
        }
        mine.push({ id, name: op.key, created: 1, deleted: 0, createRevision: id, prevRevision: cur ? cur.id : 0, value: op.value });
        const kv = Object.freeze({ key: op.key, value: op.value, createRevision: id, modRevision: id });
        myEvents.push(Object.freeze({ type: 'create' as const, kv }));
        kvs.push(kv);
        overlay.set(op.key, { id, deleted: false, createRevision: id, value: op.value });
        continue;
      }
      if (!live) {
        failed = new StoreError('KeyNotFound', `key "${op.key}" not found`, op.key);
        break;
      }
      if (op.expectedRevision !== undefined && op.expectedRevision !== live.id) {
        failed = new StoreError('RevisionMismatch', `key "${op.key}" was modified: expected revision ${op.expectedRevision}, current revision ${live.id}`, op.key);
        break;
      }
      const prevKv = Object.freeze({ key: op.key, value: live.value, createRevision: live.createRevision, modRevision: live.id });
      if (op.op === 'check') {
        kvs.push(prevKv);
        continue;
      }
      if (op.op === 'update') {
        mine.push({ id, name: op.key, created: 0, deleted: 0, createRevision: live.createRevision, prevRevision: live.id, value: op.value });
        const kv = Object.freeze({ key: op.key, value: op.value, createRevision: live.createRevision, modRevision: id });
        myEvents.push(Object.freeze({ type: 'update' as const, kv, prevKv }));
        kvs.push(kv);
        overlay.set(op.key, { id, deleted: false, createRevision: live.createRevision, value: op.value });
      } else {
        // The tombstone keeps the last value, so a delete event (and a replay of it) can say what was deleted.
        mine.push({ id, name: op.key, created: 0, deleted: 1, createRevision: live.createRevision, prevRevision: live.id, value: live.value });
        const kv = Object.freeze({ key: op.key, value: live.value, createRevision: live.createRevision, modRevision: id });
        myEvents.push(Object.freeze({ type: 'delete' as const, kv, prevKv }));
        kvs.push(kv);
        overlay.set(op.key, { id, deleted: true, createRevision: live.createRevision, value: live.value });
      }
    }
    if (failed) {
      outcomes.push(failed);
      continue;
    }
    rev = r;
    for (const [k, v] of overlay) latest.set(k, v!);
    rows.push(...mine);
    events.push(...myEvents);
    outcomes.push(kvs);
  }
  return { outcomes, rows, events };
}

// ------------------------------------------------------------------ helpers

/** A failure before COMMIT was sent: the transaction surely did not commit. */
class BeforeCommitError extends Error {
  constructor(override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/**
 * The pg.Client class for a store whose URL lists several hosts (libpq's multi-host form, which `pg` does not
 * read) or requires a writable server: a new connection goes to the host that worked last; one that fails to
 * connect, or (when writes are required) finds a read-only server, i.e. a standby, moves the next connection on
 * to the next host. The callers' retries with backoff do the rest, so after a failover the store finds the
 * promoted standby by itself.
 */
function hostClient(urls: string[], requireWritable: boolean): typeof pg.Client {
  if (urls.length <= 1 && !requireWritable) return pg.Client;
  let current = 0;
  const moveOn = (from: number): void => {
    if (current === from) current = (from + 1) % urls.length;
  };
  return class HostClient extends pg.Client {
    private readonly hostIndex: number;
    constructor(config: pg.ClientConfig) {
      const i = current;
      super({ ...config, connectionString: urls[i] });
      this.hostIndex = i;
    }

    override connect(): Promise<pg.Client>;
    override connect(callback: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): void;
    override connect(callback?: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): Promise<pg.Client> | void {
      const done = this.connectToUsable();
      if (!callback) return done;
      done.then(
        (c) => (callback as (err: null, c: pg.Client) => void)(null, c),
        (err: Error) => (callback as (err: Error) => void)(err),
      );
    }

    private async connectToUsable(): Promise<pg.Client> {
      try {
        await super.connect();
      } catch (err) {
        moveOn(this.hostIndex);
        throw err;
      }
      if (requireWritable) {
        const r = await this.query<{ transaction_read_only: string }>('SHOW transaction_read_only');
        if (r.rows[0]?.transaction_read_only === 'on') {
          moveOn(this.hostIndex);
          await this.end().catch(() => undefined);
          throw Object.assign(new Error(`${this.host}:${this.port} is read-only (a standby); the store needs the primary (target_session_attrs=read-write), trying the next host`), { code: '25006' });
        }
      }
      return this;
    }
  };
}

/** A string as an SQL literal, for the simple queries of a write (no parameters there); keys and values hold no NUL. */
function literal(s: string): string {
  return pg.escapeLiteral(s);
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

interface KeyRange {
  sql: string;
  params: string[];
}

/**
 * The index range of keys starting with `prefix` (and greater than `startAfter`), with parameters numbered from
 * `firstParam`. The column collates "C", so "starts with P" is [P, P with its last code point incremented).
 */
function keyRange(prefix: string, startAfter: string | undefined, firstParam: number): KeyRange | undefined {
  const params: string[] = [];
  const conds: string[] = [];
  let lo: string;
  if (startAfter !== undefined && startAfter >= prefix) {
    lo = startAfter;
    conds.push(`k.name > $${firstParam}`);
  } else {
    lo = prefix;
    conds.push(`k.name >= $${firstParam}`);
  }
  params.push(lo);
  const end = prefixEnd(prefix);
  if (end !== undefined) {
    if (lo >= end) return undefined;
    conds.push(`k.name < $${firstParam + 1}`);
    params.push(end);
  }
  return { sql: conds.join(' AND '), params };
}

/** The smallest string greater than every string that starts with `prefix` (undefined: no bound). */
function prefixEnd(prefix: string): string | undefined {
  const cps = Array.from(prefix);
  while (cps.length > 0) {
    const last = cps.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return cps.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
}

function toKeyValue(row: Row): KeyValue {
  return { key: row.name, value: row.value, createRevision: row.create_revision, modRevision: row.id };
}

function toLogEvent(row: LogRow): StoreEvent {
  const kv = Object.freeze({ key: row.name, value: row.value, createRevision: row.create_revision, modRevision: row.id });
  if (row.created === 1) return Object.freeze({ type: 'create', kv });
  const type = row.deleted === 1 ? 'delete' : 'update';
  if (row.prev_value === null) return Object.freeze({ type, kv });
  return Object.freeze({ type, kv, prevKv: Object.freeze({ key: row.name, value: row.prev_value, createRevision: row.create_revision, modRevision: row.prev_revision }) });
}

function closedError(): StoreError {
  return new StoreError('Closed', 'the store is closed');
}

/** Errors that mean "the connection is gone" (or useless for writes), not "the statement was wrong". */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    // 08xxx connection exceptions, 57P01-03 admin/crash shutdown, cannot connect now; 25P03 the server ended an
    // idle transaction (and the session); 25006 a read-only server (a standby, or a demoted primary)
    if (/^08|^57P0[1-3]$|^25P03$|^25006$/.test(code)) return true;
    if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'].includes(code)) return true;
  }
  return /Connection terminated|connection timeout|timeout expired|Query read timeout|Client has encountered a connection error|not queryable/i.test(err.message);
}

/** lock_timeout passed (55P03 lock_not_available). */
function isLockTimeout(err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === '55P03';
}

/** The store's reading of a `pg` error: a StoreError where it has a meaning callers act on. */
function translateError(err: unknown, timeouts?: PostgresStore['timeouts']): Error {
  if (err instanceof StoreError) return err;
  if (err instanceof BeforeCommitError) return translateError(err.cause, timeouts);
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | undefined)?.code;
  // The backstop: a write that lost a race the revision lock should have prevented.
  if (code === '23505') return new StoreError('RevisionMismatch', `a key was modified concurrently by another writer (${message})`);
  if (isLockTimeout(err)) {
    return new StoreError('Unavailable', `the store is locked by another transaction (a stuck or partitioned replica?): no lock within lock_timeout${timeouts ? ` (${timeouts.lockTimeoutMs} ms)` : ''}, retry (${message})`);
  }
  if (code === '57014') {
    return new StoreError('Unavailable', `a statement ran longer than statement_timeout${timeouts ? ` (${timeouts.statementTimeoutMs} ms)` : ''} and was cancelled, retry (${message})`);
  }
  if (isConnectionError(err)) return new StoreError('Unavailable', `the database does not answer (${message}), retry`);
  return err instanceof Error ? err : new Error(message);
}

/** Backoff between attempts: 50 ms doubling, at most 2 s. */
function backoffMs(attempt: number): number {
  return Math.min(2000, 50 * 2 ** Math.min(attempt, 6));
}

function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((r) => clock.setTimeout(r, ms));
}

// The SQLite backend of the Store (the default): kine's single append-only log on better-sqlite3.
//
// - Every row is one version of one key; its INTEGER PRIMARY KEY is the global revision.
// - Group commit: writes issued in the same event-loop turn are committed in ONE transaction (one fsync), each
//   caller inside its own SAVEPOINT so that a failed precondition rolls back and rejects only that caller.
// - One process, one writer: right after COMMIT the batch's events are broadcast to in-memory watchers
//   (no polling, no gap filling), and only then are the writers' promises resolved.
// better-sqlite3 is synchronous, so a flush, a read or a compaction chunk can never interleave with another.

import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from '../errors.js';
import { systemClock, type Clock, type Timer } from '../../lib/clock.js';
import { WatchHub, Watcher } from '../watch-hub.js';
import type {
  CompactionOptions,
  KeyValue,
  ListOptions,
  ListResult,
  Store,
  StoreEvent,
  WatchHandle,
  WatchOptions,
  WriteOp,
} from '../types.js';

/**
 * The whole schema. `kv` is the log (kine's columns); `meta` holds the compacted revision.
 * - UNIQUE (name, prev_revision): two writers that both read version N of a key cannot both write N+1.
 * - (name, id): "latest row of a key at or below revision R" is one index seek; lists walk it in key order.
 * - AUTOINCREMENT: sqlite_sequence remembers the highest revision ever used, so deleting the newest rows
 *   (compaction of a trailing tombstone) never lets a revision be reused after a restart.
 */
export const SQLITE_SCHEMA = `
CREATE TABLE IF NOT EXISTS kv (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  name            TEXT    NOT NULL,
  created         INTEGER NOT NULL DEFAULT 0,
  deleted         INTEGER NOT NULL DEFAULT 0,
  create_revision INTEGER NOT NULL,
  prev_revision   INTEGER NOT NULL,
  value           TEXT    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS kv_name_prev_revision ON kv (name, prev_revision);
CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id);
CREATE TABLE IF NOT EXISTS meta (
  name  TEXT    PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('compact_revision', 0);
`;

export interface SqliteStoreOptions {
  /** 'full' (default): synchronous=FULL, an acknowledged write survives power loss. 'normal': survives a process crash. */
  durability?: 'full' | 'normal';
  /** Drives periodic compaction (default: the system clock, unref'd timers). */
  clock?: Clock;
  /** Where failures of periodic compaction go (default: process.emitWarning). */
  onCompactionError?: (err: Error) => void;
}

/** Counters for metrics and for tests that check batching. */
export interface SqliteStoreStats {
  /** Write transactions committed (one per group-commit batch). */
  commits: number;
  /** Write calls (create/update/delete/commit) acknowledged. */
  acknowledgedWrites: number;
  /** Write calls rejected (precondition failures and errors). */
  rejectedWrites: number;
  /** Live watchers. */
  watchers: number;
}

/** Rows of revisions covered by one compaction transaction; between chunks the event loop runs. */
const COMPACTION_CHUNK = 1000;
/** Replayed history is read (and delivered) in pages of this many events. */
const REPLAY_PAGE = 5000;

// Raw row layouts (better-sqlite3 raw mode returns arrays, noticeably faster than objects for big lists).
type KvRow = [id: number, name: string, created: number, deleted: number, createRevision: number, value: string];
type LatestRow = [id: number, deleted: number, createRevision: number, value: string];
type ReplayRow = [id: number, name: string, created: number, deleted: number, createRevision: number, prevRevision: number, value: string, prevValue: string | null];

const KV_COLUMNS = 'k.id, k.name, k.created, k.deleted, k.create_revision, k.value';

interface PendingWrite {
  ops: WriteOp[];
  resolve: (kvs: KeyValue[]) => void;
  reject: (err: Error) => void;
}

export function openSqliteStore(path: string, opts: SqliteStoreOptions = {}): SqliteStore {
  return new SqliteStore(path, opts);
}

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly clock: Clock;
  private readonly onCompactionError: (err: Error) => void;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly hub = new WatchHub();
  private readonly counters = { commits: 0, acknowledgedWrites: 0, rejectedWrites: 0 };

  /** Highest revision committed (the in-memory mirror of sqlite_sequence; this process is the only writer). */
  private revision: number;
  private compactRevision: number;
  private queue: PendingWrite[] = [];
  private flushScheduled = false;
  private compaction: Promise<void> = Promise.resolve();
  private compactionTimer: Timer | undefined;
  private closing = false;
  private closed = false;

  constructor(path: string, opts: SqliteStoreOptions = {}) {
    if (path !== ':memory:' && path !== '') {
      mkdirSync(dirname(path), { recursive: true });
      restrictFileModes(path);
    }
    this.clock = opts.clock ?? systemClock;
    this.onCompactionError = opts.onCompactionError ?? ((err) => process.emitWarning(`store compaction failed: ${err.message}`));
    this.db = new Database(path);
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${opts.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
      this.db.pragma('busy_timeout = 5000');
      this.db.pragma('cache_size = -32768');
      this.db.exec(SQLITE_SCHEMA);
      const seq = this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'kv'").pluck().get() as number | undefined;
      const max = this.db.prepare('SELECT MAX(id) FROM kv').pluck().get() as number | null;
      this.revision = Math.max(seq ?? 0, max ?? 0);
      this.compactRevision = this.db.prepare("SELECT value FROM meta WHERE name = 'compact_revision'").pluck().get() as number;
    } catch (err) {
      this.db.close();
      throw err;
    }
  }

  /** A copy of the counters. */
  get stats(): SqliteStoreStats {
    return { ...this.counters, watchers: this.hub.size };
  }

  // ------------------------------------------------------------------ reads

  async currentRevision(): Promise<number> {
    this.assertOpen();
    return this.revision;
  }

  async compactedRevision(): Promise<number> {
    this.assertOpen();
    return this.compactRevision;
  }

  async get(key: string, revision?: number): Promise<KeyValue | undefined> {
    this.assertOpen();
    const rev = this.readRevision(revision);
    const row = this.stmt(`SELECT ${KV_COLUMNS} FROM kv AS k WHERE k.name = ? AND k.id <= ? ORDER BY k.id DESC LIMIT 1`).get(key, rev) as
      | KvRow
      | undefined;
    return row && row[3] === 0 ? toKeyValue(row) : undefined;
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    this.assertOpen();
    const rev = this.readRevision(opts.revision);
    const limit = opts.limit && opts.limit > 0 ? Math.floor(opts.limit) : 0;
    const range = keyRange(prefix, opts.startAfter);
    if (range === undefined) return { items: [], revision: rev, more: false };
    const rows = this.stmt(`SELECT ${KV_COLUMNS} FROM kv AS k WHERE ${range.sql} AND ${LATEST_LIVE_AT} ORDER BY k.name LIMIT :limit`).all({
      ...range.params,
      rev,
      limit: limit ? limit + 1 : -1,
    }) as KvRow[];
    const more = limit > 0 && rows.length > limit;
    if (more) rows.length = limit;
    const items = rows.map(toKeyValue);
    if (!more) return { items, revision: rev, more };
    return { items, revision: rev, more, remaining: this.countAt(prefix, rev, items[items.length - 1].key) };
  }

  async count(prefix: string): Promise<number> {
    this.assertOpen();
    return this.countAt(prefix, this.revision);
  }

  private countAt(prefix: string, rev: number, startAfter?: string): number {
    const range = keyRange(prefix, startAfter);
    if (range === undefined) return 0;
    const row = this.stmt(`SELECT COUNT(*) FROM kv AS k WHERE ${range.sql} AND ${LATEST_LIVE_AT}`).get({ ...range.params, rev }) as [number];
    return row[0];
  }

  /** The revision a read happens at: the current one, or an explicit one that is still retained. */
  private readRevision(revision: number | undefined): number {
    if (revision === undefined || revision === 0) return this.revision;
    if (!Number.isSafeInteger(revision) || revision < 0) throw new StoreError('InvalidArgument', `revision must be a non-negative integer, got ${revision}`);
    if (revision < this.compactRevision) throw new StoreError('Compacted', `too old resource version: ${revision} (${this.compactRevision})`);
    if (revision > this.revision) {
      throw new StoreError('FutureRevision', `Too large resource version: ${revision}, current: ${this.revision}`);
    }
    return revision;
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
    for (const op of ops) {
      if (typeof op.key !== 'string' || op.key === '') return Promise.reject(new StoreError('InvalidArgument', 'store key must be a non-empty string'));
      if ((op.op === 'create' || op.op === 'update') && typeof op.value !== 'string') return Promise.reject(new StoreError('InvalidArgument', `value of key "${op.key}" must be a string`, op.key));
      if (op.op === 'check' && !Number.isInteger(op.expectedRevision)) return Promise.reject(new StoreError('InvalidArgument', `a check of key "${op.key}" needs an expectedRevision`, op.key));
    }
    return new Promise<KeyValue[]>((resolve, reject) => {
      this.queue.push({ ops, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // setImmediate rather than a microtask: it also gathers writes arriving from other I/O callbacks of
        // this loop iteration (e.g. several HTTP requests), so more of them share one fsync.
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits every queued write in one transaction, broadcasts the events, then settles the callers. */
  private flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0 || this.closed) return;

    const outcomes: (KeyValue[] | Error)[] = [];
    const events: StoreEvent[] = [];
    let rev = this.revision;
    try {
      this.stmt('BEGIN IMMEDIATE').run();
      // Revisions are assigned from memory, which is only right while this process is the file's one writer.
      const seq = this.stmt("SELECT seq FROM sqlite_sequence WHERE name = 'kv'").get() as [number] | undefined;
      if (seq && seq[0] > rev) {
        throw new StoreError('Corrupt', `the store file was written by another process (revision ${seq[0]}, expected ${rev}): metalplane must be its only writer`);
      }
      for (const write of batch) {
        const mark = rev;
        const eventMark = events.length;
        this.stmt('SAVEPOINT write').run();
        try {
          const kvs: KeyValue[] = [];
          // A check takes no revision: revisions stay consecutive over what is written.
          for (const op of write.ops) kvs.push(this.apply(op, op.op === 'check' ? rev : ++rev, events));
          this.stmt('RELEASE write').run();
          outcomes.push(kvs);
        } catch (err) {
          rev = mark;
          events.length = eventMark;
          // A precondition failure (or a statement error) leaves the transaction open: undo only this caller.
          // If SQLite itself aborted the transaction, everything before is lost too: fail the whole batch.
          if (!this.db.inTransaction) throw err;
          this.stmt('ROLLBACK TO write').run();
          this.stmt('RELEASE write').run();
          outcomes.push(translateWriteError(err, write.ops));
        }
      }
      this.stmt('COMMIT').run();
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      const e = translateWriteError(err, []);
      this.counters.rejectedWrites += batch.length;
      for (const write of batch) write.reject(e);
      return;
    }
    this.revision = rev;
    this.counters.commits++;
    if (events.length > 0) this.hub.broadcast(events);
    for (let i = 0; i < batch.length; i++) {
      const outcome = outcomes[i];
      if (outcome instanceof Error) {
        this.counters.rejectedWrites++;
        batch[i].reject(outcome);
      } else {
        this.counters.acknowledgedWrites++;
        batch[i].resolve(outcome);
      }
    }
  }

  /** Checks one op's precondition against the latest version (including earlier ops of this transaction) and appends its row. */
  private apply(op: WriteOp, rev: number, events: StoreEvent[]): KeyValue {
    const latest = this.stmt('SELECT id, deleted, create_revision, value FROM kv WHERE name = ? ORDER BY id DESC LIMIT 1').get(op.key) as
      | LatestRow
      | undefined;
    const live = latest !== undefined && latest[1] === 0 ? latest : undefined;
    const insert = this.stmt('INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value) VALUES (?, ?, ?, ?, ?, ?, ?)');

    if (op.op === 'create') {
      if (live) throw new StoreError('KeyExists', `key "${op.key}" already exists`, op.key);
      // A re-create points at the tombstone, so (name, prev_revision) stays unique.
      insert.run(rev, op.key, 1, 0, rev, latest ? latest[0] : 0, op.value);
      const kv = freezeKv({ key: op.key, value: op.value, createRevision: rev, modRevision: rev });
      events.push(Object.freeze({ type: 'create', kv }));
      return kv;
    }

    if (!live) throw new StoreError('KeyNotFound', `key "${op.key}" not found`, op.key);
    const [prevRevision, , createRevision, prevValue] = live;
    if (op.expectedRevision !== undefined && op.expectedRevision !== prevRevision) {
      throw new StoreError('RevisionMismatch', `key "${op.key}" was modified: expected revision ${op.expectedRevision}, current revision ${prevRevision}`, op.key);
    }
    const prevKv = freezeKv({ key: op.key, value: prevValue, createRevision, modRevision: prevRevision });
    if (op.op === 'check') return prevKv;
    if (op.op === 'update') {
      insert.run(rev, op.key, 0, 0, createRevision, prevRevision, op.value);
      const kv = freezeKv({ key: op.key, value: op.value, createRevision, modRevision: rev });
      events.push(Object.freeze({ type: 'update', kv, prevKv }));
      return kv;
    }
    // The tombstone keeps the last value, so a delete event (and a replay of it) can say what was deleted.
    insert.run(rev, op.key, 0, 1, createRevision, prevRevision, prevValue);
    const kv = freezeKv({ key: op.key, value: prevValue, createRevision, modRevision: rev });
    events.push(Object.freeze({ type: 'delete', kv, prevKv }));
    return kv;
  }

  // ------------------------------------------------------------------ watch

  async watch(prefix: string, opts: WatchOptions): Promise<WatchHandle> {
    this.assertOpen();
    const from = opts.fromRevision ?? 0;
    if (!Number.isSafeInteger(from) || from < 0) throw new StoreError('InvalidArgument', `fromRevision must be a non-negative integer, got ${from}`);
    if (from > 0 && from < this.compactRevision) throw new StoreError('Compacted', `too old resource version: ${from} (${this.compactRevision})`);

    // Replay and registration happen in this one synchronous block: no commit can slip in between, so the
    // replay ends exactly where live delivery begins. A future fromRevision simply waits for its events.
    const watcher = new Watcher(prefix, opts, from === 0 ? this.revision : from, this.hub);
    if (from > 0 && from < this.revision) {
      const range = keyRange(prefix);
      if (range !== undefined) {
        const page = this.stmt(
          `SELECT k.id, k.name, k.created, k.deleted, k.create_revision, k.prev_revision, k.value, p.value
           FROM kv AS k LEFT JOIN kv AS p ON p.id = k.prev_revision AND k.created = 0
           WHERE k.id > :after AND k.id <= :to AND ${range.sql} ORDER BY k.id LIMIT ${REPLAY_PAGE}`,
        );
        for (let after = from; ; ) {
          const rows = page.all({ ...range.params, after, to: this.revision }) as ReplayRow[];
          if (rows.length > 0) watcher.push(rows.map(toReplayEvent));
          if (rows.length < REPLAY_PAGE) break;
          after = rows[rows.length - 1][0];
        }
      }
    }
    this.hub.add(watcher);
    // The replay (and anything committed meanwhile) is delivered on the next turn, after the caller has its handle.
    setImmediate(() => watcher.startLive());
    return { cancel: () => watcher.cancel() };
  }

  // ------------------------------------------------------------------ compaction

  async compact(revision: number): Promise<void> {
    this.assertOpen();
    if (!Number.isSafeInteger(revision) || revision < 0) throw new StoreError('InvalidArgument', `revision must be a non-negative integer, got ${revision}`);
    if (revision > this.revision) {
      throw new StoreError('InvalidArgument', `cannot compact to revision ${revision}: the current revision is ${this.revision}`);
    }
    const run = this.compaction.then(() => this.compactInChunks(revision));
    this.compaction = run.catch(() => undefined);
    return run;
  }

  private async compactInChunks(target: number): Promise<void> {
    while (this.compactRevision < target) {
      if (this.closing) throw closedError();
      this.compactChunk(this.compactRevision, Math.min(target, this.compactRevision + COMPACTION_CHUNK));
      if (this.compactRevision < target) await new Promise((r) => setImmediate(r));
    }
  }

  /**
   * Compacts (lo, hi] as kine does: a row in that range supersedes the row its prev_revision names, and a
   * tombstone in it supersedes itself. Rows superseded only by rows above `hi` stay, so reads at any revision
   * >= hi (and replays from hi) still see every value they need; no key's current value is ever removed.
   */
  private compactChunk(lo: number, hi: number): void {
    this.db.transaction(() => {
      this.stmt('DELETE FROM kv WHERE id IN (SELECT prev_revision FROM kv WHERE id > ? AND id <= ? AND prev_revision > 0)').run(lo, hi);
      this.stmt('DELETE FROM kv WHERE id > ? AND id <= ? AND deleted = 1').run(lo, hi);
      this.stmt("UPDATE meta SET value = ? WHERE name = 'compact_revision'").run(hi);
    }).immediate();
    this.compactRevision = hi;
  }

  startCompaction(opts: CompactionOptions = {}): void {
    this.assertOpen();
    const keep = opts.keepRevisions ?? 1000;
    const interval = opts.intervalMs ?? 60_000;
    if (this.compactionTimer) this.clock.clearTimeout(this.compactionTimer);
    const tick = (): void => {
      this.compactionTimer = undefined;
      if (this.closing) return;
      const target = this.revision - keep;
      const done = target > this.compactRevision ? this.compact(target) : Promise.resolve();
      done
        .catch((err: Error) => {
          if (!this.closing) this.onCompactionError(err);
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
    if (this.compactionTimer) this.clock.clearTimeout(this.compactionTimer);
    this.compactionTimer = undefined;
    // Writes already accepted are committed (and acknowledged), not dropped.
    this.flush();
    await this.compaction;
    this.closed = true;
    this.hub.closeAll(closedError());
    this.db.close();
  }

  private assertOpen(): void {
    if (this.closing) throw closedError();
  }

  /** Prepared statements, prepared once per distinct SQL text. */
  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      if (s.reader) s.raw(true);
      this.statements.set(sql, s);
    }
    return s;
  }
}

/**
 * "This row is the newest version of its key at :rev, and not a tombstone." The NOT EXISTS probe is one seek
 * on (name, id); lists walk that same index in key order, so LIMIT stops early and no sort is needed.
 */
const LATEST_LIVE_AT =
  'k.id <= :rev AND NOT EXISTS (SELECT 1 FROM kv AS n WHERE n.name = k.name AND n.id > k.id AND n.id <= :rev) AND k.deleted = 0';

interface KeyRange {
  sql: string;
  params: Record<string, string>;
}

/**
 * The index range of keys starting with `prefix` (and greater than `startAfter`). SQLite compares TEXT as
 * UTF-8 bytes, i.e. by code point, so "starts with P" is [P, P with its last code point incremented).
 * Undefined when the range is empty.
 */
function keyRange(prefix: string, startAfter?: string): KeyRange | undefined {
  const params: Record<string, string> = {};
  const conds: string[] = [];
  if (startAfter !== undefined && startAfter >= prefix) {
    conds.push('k.name > :lo');
    params.lo = startAfter;
  } else {
    // Also for the empty prefix: the bound steers SQLite to the (name, id) index, which is already in key order.
    conds.push('k.name >= :lo');
    params.lo = prefix;
  }
  const end = prefixEnd(prefix);
  if (end !== undefined) {
    if (params.lo !== undefined && params.lo >= end) return undefined;
    conds.push('k.name < :hi');
    params.hi = end;
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

function toKeyValue(row: KvRow): KeyValue {
  return { key: row[1], value: row[5], createRevision: row[4], modRevision: row[0] };
}

function toReplayEvent(row: ReplayRow): StoreEvent {
  const [id, key, created, deleted, createRevision, prevRevision, value, prevValue] = row;
  const kv = freezeKv({ key, value, createRevision, modRevision: id });
  if (created === 1) return Object.freeze({ type: 'create', kv });
  const type = deleted === 1 ? 'delete' : 'update';
  // The previous version of a row above the compacted revision is always retained (see compactChunk).
  if (prevValue === null) return Object.freeze({ type, kv });
  return Object.freeze({ type, kv, prevKv: freezeKv({ key, value: prevValue, createRevision, modRevision: prevRevision }) });
}

function freezeKv(kv: KeyValue): KeyValue {
  return Object.freeze(kv);
}

/**
 * The database holds secrets (token records, encrypted Secrets, workflow parameters): only its owner may read
 * it. The file is created 0600 before SQLite opens it, since SQLite gives the -wal and -shm files the mode of
 * the database file; files of an older start (0644) are narrowed.
 */
function restrictFileModes(path: string): void {
  if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    if (existsSync(file)) chmodSync(file, 0o600);
  }
}

function closedError(): StoreError {
  return new StoreError('Closed', 'the store is closed');
}

function translateWriteError(err: unknown, ops: WriteOp[]): Error {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: unknown }).code;
  // Only reachable if a second writer shares the file: the unique (name, prev_revision) index made us lose the race.
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' && ops.length > 0) {
    return new StoreError('RevisionMismatch', `one of the keys ${ops.map((o) => `"${o.key}"`).join(', ')} was modified concurrently by another writer`, ops[0]!.key);
  }
  return err instanceof Error ? err : new Error(String(err));
}

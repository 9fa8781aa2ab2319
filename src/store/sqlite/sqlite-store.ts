// The SQLite backend of the Store (the default): kine's single append-only log on better-sqlite3.
//
// - Every row is one version of one key; its INTEGER PRIMARY KEY is the global revision.
// - Group commit: writes issued in the same event-loop turn are committed in ONE transaction (one fsync), each
//   caller inside its own SAVEPOINT so that a failed precondition rolls back and rejects only that caller.
// - The writing connection of a file store lives on a worker thread (sqlite-writer-worker.ts): the COMMIT and
//   its fsync block that thread, not the event loop. One batch is in flight at a time; writes arriving
//   meanwhile gather into the next batch, so the slower the disk, the bigger the groups. `:memory:` (which a
//   second thread cannot open) writes inline, in the same code (sqlite-writer.ts).
// - One process, one writer: once the COMMIT is done, the batch's events are broadcast to in-memory watchers
//   (no polling, no gap filling) on the main thread, in commit order, and only then are the writers' promises
//   resolved, so an acknowledged write is durable and already seen by every watcher.
// - Reads run on the main thread's own connection. WAL gives each statement a snapshot; a batch the worker has
//   committed but not yet reported is invisible to them because every read is bounded by `this.revision`
//   (which moves only when the report arrives), so reads and watches never see a write before its watchers do.

import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { StoreError, invalidWriteOp } from '../errors.js';
import { systemClock, type Clock, type Timer } from '../../lib/clock.js';
import { WatchHub, Watcher } from '../watch-hub.js';
import {
  SqliteWriter,
  configureWriter,
  flattenBatch,
  fromWireError,
  preparedStatement,
  toWireError,
  type BatchResult,
  type WriterReply,
  type WriterRequest,
  type WriterWorkerData,
} from './sqlite-writer.js';
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
  /**
   * Where the writing connection runs: 'thread' (the default for a file) on a worker thread, so that commits
   * overlap request handling; 'inline' on the caller's thread. `:memory:` is always inline.
   */
  writer?: 'thread' | 'inline';
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
  private readonly writer: WriterChannel;
  private queue: PendingWrite[] = [];
  private flushScheduled = false;
  /** A batch is with the writer; the next flush waits for its outcome. */
  private inFlight = false;
  /** close() waiting for the last batch. */
  private drained: (() => void)[] = [];
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
      // The schema is written here, before any writer thread exists; in thread mode this connection only reads.
      configureWriter(this.db, { durability: opts.durability });
      this.db.exec(SQLITE_SCHEMA);
      const seq = this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'kv'").pluck().get() as number | undefined;
      const max = this.db.prepare('SELECT MAX(id) FROM kv').pluck().get() as number | null;
      this.revision = Math.max(seq ?? 0, max ?? 0);
      this.compactRevision = this.db.prepare("SELECT value FROM meta WHERE name = 'compact_revision'").pluck().get() as number;
      const inMemory = path === ':memory:' || path === '';
      this.writer =
        inMemory || opts.writer === 'inline'
          ? new InlineWriter(new SqliteWriter(this.db, this.revision))
          : new ThreadWriter({ path, durability: opts.durability ?? 'full', revision: this.revision });
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
    const invalid = invalidWriteOp(ops);
    if (invalid) return Promise.reject(invalid);
    return new Promise<KeyValue[]>((resolve, reject) => {
      this.queue.push({ ops, resolve, reject });
      if (!this.inFlight) this.scheduleFlush();
    });
  }

  /** Hands every queued write to the writer as one batch (unless one is already in flight). */
  private flush(): void {
    this.flushScheduled = false;
    if (this.inFlight || this.queue.length === 0 || this.closed) return;
    const batch = this.queue;
    this.queue = [];
    const result = this.writer.commit(batch.map((w) => w.ops));
    if (!(result instanceof Promise)) return this.settle(batch, result);
    this.inFlight = true;
    result
      .catch((err: unknown): BatchResult => ({ ok: false, error: toWireError(err, []) }))
      .then((r) => {
        this.inFlight = false;
        this.settle(batch, r);
        if (this.queue.length > 0) {
          if (this.closing) this.flush();
          else this.scheduleFlush();
        }
        if (!this.inFlight) for (const done of this.drained.splice(0)) done();
      });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate rather than a microtask: it also gathers writes arriving from other I/O callbacks of
    // this loop iteration (e.g. several HTTP requests), so more of them share one fsync.
    setImmediate(() => this.flush());
  }

  /** Builds the batch's KeyValues and events from its ops and what the writer reports, broadcasts, then settles the callers. */
  private settle(batch: PendingWrite[], r: BatchResult): void {
    if (!r.ok) {
      const e = fromWireError(r.error);
      this.counters.rejectedWrites += batch.length;
      for (const write of batch) write.reject(e);
      return;
    }
    this.revision = r.revision;
    this.counters.commits++;
    const events: StoreEvent[] = [];
    const settled: (KeyValue[] | Error)[] = [];
    for (let i = 0; i < batch.length; i++) {
      const outcome = r.outcomes[i];
      if (!Array.isArray(outcome)) {
        settled.push(fromWireError(outcome));
        continue;
      }
      const kvs: KeyValue[] = [];
      const ops = batch[i].ops;
      for (let j = 0; j < ops.length; j++) {
        const op = ops[j];
        const [rev, createRevision, prevRevision, prevValue] = outcome[j];
        if (op.op === 'create') {
          const kv = freezeKv({ key: op.key, value: op.value, createRevision, modRevision: rev });
          events.push(Object.freeze({ type: 'create', kv }));
          kvs.push(kv);
          continue;
        }
        const prevKv = freezeKv({ key: op.key, value: prevValue!, createRevision, modRevision: prevRevision });
        // A check wrote nothing: its KeyValue is the key as it stands, and there is no event.
        if (op.op === 'check') {
          kvs.push(prevKv);
          continue;
        }
        // A delete's KeyValue is the last value, at the deletion's revision (the tombstone keeps it too).
        const kv = freezeKv({ key: op.key, value: op.op === 'update' ? op.value : prevValue!, createRevision, modRevision: rev });
        events.push(Object.freeze({ type: op.op, kv, prevKv }));
        kvs.push(kv);
      }
      settled.push(kvs);
    }
    if (events.length > 0) this.hub.broadcast(events);
    for (let i = 0; i < batch.length; i++) {
      const outcome = settled[i];
      if (outcome instanceof Error) {
        this.counters.rejectedWrites++;
        batch[i].reject(outcome);
      } else {
        this.counters.acknowledgedWrites++;
        batch[i].resolve(outcome);
      }
    }
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

  /** Compacts in chunks of COMPACTION_CHUNK revisions (see SqliteWriter.compact); between chunks the event loop runs. */
  private async compactInChunks(target: number): Promise<void> {
    while (this.compactRevision < target) {
      if (this.closing) throw closedError();
      const lo = this.compactRevision;
      const hi = Math.min(target, lo + COMPACTION_CHUNK);
      // Reads and watches below `hi` are refused from here on: on a writer thread the chunk's deletes may be
      // committed before its reply arrives, and a read must never see half-compacted history.
      this.compactRevision = hi;
      const done = this.writer.compact(lo, hi);
      if (done instanceof Promise) await done;
      else if (this.compactRevision < target) await new Promise((r) => setImmediate(r));
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
    while (this.inFlight) await new Promise<void>((r) => this.drained.push(r));
    await this.compaction;
    this.closed = true;
    this.hub.closeAll(closedError());
    try {
      await this.writer.close();
    } finally {
      this.db.close();
    }
  }

  private assertOpen(): void {
    if (this.closing) throw closedError();
  }

  private stmt(sql: string): Database.Statement {
    return preparedStatement(this.db, this.statements, sql);
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

/** Where batches and compaction chunks go: a SqliteWriter on this thread, or one on a worker thread. */
interface WriterChannel {
  /** Synchronous inline; a promise of the worker's report otherwise. */
  commit(batch: WriteOp[][]): BatchResult | Promise<BatchResult>;
  compact(lo: number, hi: number): void | Promise<void>;
  close(): Promise<void>;
}

class InlineWriter implements WriterChannel {
  constructor(private readonly writer: SqliteWriter) {}

  commit(batch: WriteOp[][]): BatchResult {
    return this.writer.commit(batch);
  }

  compact(lo: number, hi: number): void {
    this.writer.compact(lo, hi);
  }

  async close(): Promise<void> {}
}

/**
 * The writer on a worker thread. The thread is unref'd while idle, so an open store does not keep a process
 * alive, and ref'd while a request is outstanding, so a process awaiting a write does not exit under it.
 */
class ThreadWriter implements WriterChannel {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (r: WriterReply) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private readonly exited: Promise<void>;
  private failure: Error | undefined;
  private closing = false;

  constructor(data: WriterWorkerData) {
    this.worker = new Worker(new URL('./sqlite-writer-worker.js', import.meta.url), { workerData: data });
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.unref();
    this.worker.on('message', (r: WriterReply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      // Closing stays ref'd until the thread has exited, so that close() resolves in a process with nothing else to do.
      if (this.pending.size === 0 && !this.closing) this.worker.unref();
      p.resolve(r);
    });
    this.worker.on('error', (err) => this.fail(new Error(`the store's writer thread failed: ${err.message}`)));
    this.worker.on('exit', (code) => this.fail(new Error(`the store's writer thread exited (code ${code})`)));
  }

  async commit(batch: WriteOp[][]): Promise<BatchResult> {
    const r = await this.request({ type: 'commit', batch: flattenBatch(batch) });
    if ('result' in r) return r.result;
    throw 'error' in r ? fromWireError(r.error) : new Error('the store writer answered a commit without a result');
  }

  async compact(lo: number, hi: number): Promise<void> {
    const r = await this.request({ type: 'compact', lo, hi });
    if ('error' in r) throw fromWireError(r.error);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.failure) return;
    this.worker.ref();
    await this.request({ type: 'close' }, true);
    await this.exited;
  }

  private request(m: DistributiveOmit<WriterRequest, 'id'>, evenIfClosing = false): Promise<WriterReply> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing && !evenIfClosing) return Promise.reject(closedError());
    const id = this.nextId++;
    return new Promise<WriterReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage({ ...m, id } as WriterRequest);
    });
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

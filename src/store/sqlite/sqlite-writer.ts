// The write half of the SQLite store: one group-commit transaction per batch and one compaction chunk at a
// time, on the one connection that writes the file. It runs either on a worker thread (a file store: the
// COMMIT's fsync then overlaps request handling on the main thread) or inline (`:memory:`, which a second
// thread could not open). Its results are plain data, since they may cross a thread: the main thread builds
// the KeyValues and events from the ops it still holds plus the numbers (and previous values) returned here.

import type Database from 'better-sqlite3';
import { StoreError, type StoreErrorCode } from '../errors.js';
import type { WriteOp } from '../types.js';

/** What one op wrote: its revision, the key's create revision, the revision it replaced, the replaced value. */
export type OpResult = [modRevision: number, createRevision: number, prevRevision: number, prevValue: string | null];

/** An error as data (a StoreError keeps its code and key; anything else its message and SQLite code). */
export interface WireError {
  storeCode?: StoreErrorCode;
  message: string;
  key?: string;
  sqliteCode?: string;
}

/** Per write of the batch: what its ops wrote, or why it alone was rolled back. */
export type WriteOutcome = OpResult[] | WireError;

export type BatchResult =
  | { ok: true; revision: number; outcomes: WriteOutcome[] }
  /** The transaction as a whole failed: no write of the batch was committed. */
  | { ok: false; error: WireError };

type LatestRow = [id: number, deleted: number, createRevision: number, value: string];

export interface WriterDbOptions {
  durability?: 'full' | 'normal';
}

/** The pragmas of the writing connection: WAL, and FULL sync unless told otherwise (see SqliteStoreOptions). */
export function configureWriter(db: Database.Database, opts: WriterDbOptions): void {
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${opts.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
  db.pragma('busy_timeout = 5000');
  db.pragma('cache_size = -32768');
}

export class SqliteWriter {
  private readonly statements = new Map<string, Database.Statement>();

  /** `revision`: the highest revision committed, as the store read it when it opened the file. */
  constructor(
    private readonly db: Database.Database,
    private revision: number,
  ) {}

  /** Commits every write of the batch in one transaction, each in its own SAVEPOINT. */
  commit(batch: WriteOp[][]): BatchResult {
    const outcomes: WriteOutcome[] = [];
    let rev = this.revision;
    try {
      this.stmt('BEGIN IMMEDIATE').run();
      // Revisions are assigned from memory, which is only right while this process is the file's one writer.
      const seq = this.stmt("SELECT seq FROM sqlite_sequence WHERE name = 'kv'").get() as [number] | undefined;
      if (seq && seq[0] > rev) {
        throw new StoreError('Corrupt', `the store file was written by another process (revision ${seq[0]}, expected ${rev}): metalplane must be its only writer`);
      }
      for (const ops of batch) {
        const mark = rev;
        // A write of one op needs no savepoint: its precondition fails before it writes anything, and a failed
        // INSERT is undone by SQLite's own statement rollback. (Most writes are one op: creates and updates.)
        const savepoint = ops.length > 1;
        if (savepoint) this.stmt('SAVEPOINT write').run();
        try {
          const results: OpResult[] = [];
          // A check takes no revision: revisions stay consecutive over what is written.
          for (const op of ops) results.push(this.apply(op, op.op === 'check' ? rev : ++rev));
          if (savepoint) this.stmt('RELEASE write').run();
          outcomes.push(results);
        } catch (err) {
          rev = mark;
          // A precondition failure (or a statement error) leaves the transaction open: undo only this caller.
          // If SQLite itself aborted the transaction, everything before is lost too: fail the whole batch.
          if (!this.db.inTransaction) throw err;
          if (savepoint) {
            this.stmt('ROLLBACK TO write').run();
            this.stmt('RELEASE write').run();
          }
          outcomes.push(toWireError(err, ops));
        }
      }
      this.stmt('COMMIT').run();
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      return { ok: false, error: toWireError(err, []) };
    }
    this.revision = rev;
    return { ok: true, revision: rev, outcomes };
  }

  /** Checks one op's precondition against the latest version (including earlier ops of this transaction) and appends its row. */
  private apply(op: WriteOp, rev: number): OpResult {
    const latest = this.stmt('SELECT id, deleted, create_revision, value FROM kv WHERE name = ? ORDER BY id DESC LIMIT 1').get(op.key) as
      | LatestRow
      | undefined;
    const live = latest !== undefined && latest[1] === 0 ? latest : undefined;
    const insert = this.stmt('INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value) VALUES (?, ?, ?, ?, ?, ?, ?)');

    if (op.op === 'create') {
      if (live) throw new StoreError('KeyExists', `key "${op.key}" already exists`, op.key);
      // A re-create points at the tombstone, so (name, prev_revision) stays unique.
      const prev = latest ? latest[0] : 0;
      insert.run(rev, op.key, 1, 0, rev, prev, op.value);
      return [rev, rev, prev, null];
    }

    if (!live) throw new StoreError('KeyNotFound', `key "${op.key}" not found`, op.key);
    const [prevRevision, , createRevision, prevValue] = live;
    if (op.expectedRevision !== undefined && op.expectedRevision !== prevRevision) {
      throw new StoreError('RevisionMismatch', `key "${op.key}" was modified: expected revision ${op.expectedRevision}, current revision ${prevRevision}`, op.key);
    }
    // A check only asserts the precondition above: nothing is written.
    if (op.op === 'check') return [prevRevision, createRevision, prevRevision, prevValue];
    // The tombstone of a delete keeps the last value, so a delete event (and a replay of it) can say what was deleted.
    insert.run(rev, op.key, 0, op.op === 'delete' ? 1 : 0, createRevision, prevRevision, op.op === 'delete' ? prevValue : op.value);
    return [rev, createRevision, prevRevision, prevValue];
  }

  /**
   * Compacts (lo, hi] as kine does: a row in that range supersedes the row its prev_revision names, and a
   * tombstone in it supersedes itself. Rows superseded only by rows above `hi` stay, so reads at any revision
   * >= hi (and replays from hi) still see every value they need; no key's current value is ever removed.
   */
  compact(lo: number, hi: number): void {
    this.db.transaction(() => {
      this.stmt('DELETE FROM kv WHERE id IN (SELECT prev_revision FROM kv WHERE id > ? AND id <= ? AND prev_revision > 0)').run(lo, hi);
      this.stmt('DELETE FROM kv WHERE id > ? AND id <= ? AND deleted = 1').run(lo, hi);
      this.stmt("UPDATE meta SET value = ? WHERE name = 'compact_revision'").run(hi);
    }).immediate();
  }

  private stmt(sql: string): Database.Statement {
    return preparedStatement(this.db, this.statements, sql);
  }
}

/**
 * A connection's prepared statement for `sql`, prepared once per distinct SQL text; readers return rows as
 * arrays (raw), as every query of the store reads them.
 */
export function preparedStatement(db: Database.Database, cache: Map<string, Database.Statement>, sql: string): Database.Statement {
  let s = cache.get(sql);
  if (!s) {
    s = db.prepare(sql);
    if (s.reader) s.raw(true);
    cache.set(sql, s);
  }
  return s;
}

export function toWireError(err: unknown, ops: WriteOp[]): WireError {
  if (err instanceof StoreError) return { storeCode: err.code, message: err.message, ...(err.key !== undefined ? { key: err.key } : {}) };
  const code = (err as { code?: unknown }).code;
  // Only reachable if a second writer shares the file: the unique (name, prev_revision) index made us lose the race.
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' && ops.length > 0) {
    return { storeCode: 'RevisionMismatch', message: `one of the keys ${ops.map((o) => `"${o.key}"`).join(', ')} was modified concurrently by another writer`, key: ops[0]!.key };
  }
  return { message: err instanceof Error ? err.message : String(err), ...(typeof code === 'string' ? { sqliteCode: code } : {}) };
}

export function fromWireError(e: WireError): Error {
  if (e.storeCode) return new StoreError(e.storeCode, e.message, e.key);
  const err = new Error(e.message);
  return e.sqliteCode ? Object.assign(err, { code: e.sqliteCode }) : err;
}

// ------------------------------------------------------------------ the worker's protocol

/** What the worker is started with. `revision` comes from the store, so both agree on where the log ends. */
export interface WriterWorkerData {
  path: string;
  durability: 'full' | 'normal';
  revision: number;
}

/**
 * A batch as parallel lists, as it crosses to the worker: the structured clone of a few arrays of strings and
 * numbers costs both threads less than that of one object per op (~0.4 µs per op).
 */
export interface FlatBatch {
  /** How many ops each write of the batch has. */
  sizes: number[];
  ops: WriteOp['op'][];
  keys: string[];
  /** null for ops without a value (delete, check). */
  values: (string | null)[];
  /** null for ops without an expected revision. */
  expected: (number | null)[];
}

export function flattenBatch(batch: readonly WriteOp[][]): FlatBatch {
  const f: FlatBatch = { sizes: [], ops: [], keys: [], values: [], expected: [] };
  for (const write of batch) {
    f.sizes.push(write.length);
    for (const op of write) {
      f.ops.push(op.op);
      f.keys.push(op.key);
      f.values.push(op.op === 'create' || op.op === 'update' ? op.value : null);
      f.expected.push(op.op === 'create' || op.expectedRevision === undefined ? null : op.expectedRevision);
    }
  }
  return f;
}

export function unflattenBatch(f: FlatBatch): WriteOp[][] {
  const batch: WriteOp[][] = [];
  let i = 0;
  for (const size of f.sizes) {
    const write: WriteOp[] = [];
    for (const end = i + size; i < end; i++) {
      const op = f.ops[i]!;
      const key = f.keys[i]!;
      const value = f.values[i];
      const expected = f.expected[i];
      if (op === 'create') write.push({ op, key, value: value! });
      else if (op === 'check') write.push({ op, key, expectedRevision: expected! });
      else {
        const o: WriteOp = op === 'update' ? { op, key, value: value! } : { op, key };
        if (expected !== null && expected !== undefined) o.expectedRevision = expected;
        write.push(o);
      }
    }
    batch.push(write);
  }
  return batch;
}

/** Messages to the worker; each is answered by one WriterReply with the same id, in order. */
export type WriterRequest =
  | { id: number; type: 'commit'; batch: FlatBatch }
  | { id: number; type: 'compact'; lo: number; hi: number }
  | { id: number; type: 'close' };

export type WriterReply = { id: number; result: BatchResult } | { id: number; done: true } | { id: number; error: WireError };

// SqliteStore: the shared conformance suite (file-backed and in-memory), plus what only SQLite can show:
// kill -9 durability, group commit batching, the revision counter surviving restarts, row-level compaction.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { FakeClock } from '../../lib/clock.js';
import { runStoreConformance } from '../conformance/store-conformance.js';
import type { StoreEvent, WriteOp } from '../types.js';
import { crashValue } from './crash-writer.js';
import { SQLITE_SCHEMA, SqliteStore, openSqliteStore } from './sqlite-store.js';
import { SqliteWriter, flattenBatch, unflattenBatch } from './sqlite-writer.js';
import { openStore } from '../index.js';
import { isStoreError } from '../errors.js';

const dir = mkdtempSync(join(tmpdir(), 'metalplane-store-'));
let files = 0;
const freshPath = (): string => join(dir, `store-${++files}.db`);
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

runStoreConformance('sqlite file', async () => openSqliteStore(freshPath()));
runStoreConformance('sqlite :memory:', async () => openSqliteStore(':memory:'));

describe('SqliteStore', () => {
  let s: SqliteStore;
  before(() => {
    s = openSqliteStore(freshPath());
  });
  after(() => s.close());

  it('commits writes of one event-loop turn in one transaction, with consecutive revisions', async () => {
    const calls: StoreEvent[][] = [];
    await s.watch('/gc/', { fromRevision: 0, onEvents: (evs) => calls.push(evs) });
    const commitsBefore = s.stats.commits;
    const base = await s.currentRevision();
    const kvs = await Promise.all(Array.from({ length: 100 }, (_, i) => s.create(`/gc/k${i}`, `v${i}`)));
    assert.deepEqual(
      kvs.map((kv) => kv.modRevision),
      Array.from({ length: 100 }, (_, i) => base + 1 + i),
    );
    assert.equal(s.stats.commits - commitsBefore, 1, 'one transaction (one fsync) for the whole turn');
    assert.equal(calls.length, 1, 'one onEvents call for the batch');
    assert.equal(calls[0].length, 100);
  });

  it('a failed precondition inside a batch rolls back only its own writer, leaving no revision hole', async () => {
    const commitsBefore = s.stats.commits;
    const base = await s.currentRevision();
    const [a, dup, tx, b] = await Promise.allSettled([
      s.create('/sp/a', '1'),
      s.create('/sp/a', '2'),
      s.commit([
        { op: 'create', key: '/sp/t', value: 't' },
        { op: 'delete', key: '/sp/missing' },
      ]),
      s.create('/sp/b', '3'),
    ]);
    assert.equal(s.stats.commits - commitsBefore, 1);
    assert.equal(a.status === 'fulfilled' && a.value.modRevision, base + 1);
    assert.equal(b.status === 'fulfilled' && b.value.modRevision, base + 2);
    assert.equal(dup.status === 'rejected' && dup.reason.code, 'KeyExists');
    assert.equal(tx.status === 'rejected' && tx.reason.code, 'KeyNotFound');
    assert.equal(await s.get('/sp/t'), undefined);
  });

  it('fans one batch out to 1000 watchers as one call each, grouped by prefix', async () => {
    const got = new Map<number, number>();
    const handles = [];
    for (let i = 0; i < 1000; i++) {
      const prefix = i % 2 === 0 ? `/fan/ns${i % 100}/` : '/fan/';
      handles.push(await s.watch(prefix, { fromRevision: 0, onEvents: (evs) => got.set(i, (got.get(i) ?? 0) + evs.length) }));
    }
    assert.equal(s.stats.watchers >= 1000, true);
    await Promise.all(Array.from({ length: 100 }, (_, j) => s.create(`/fan/ns${j}/obj`, 'v')));
    await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 1000; i++) assert.equal(got.get(i), i % 2 === 0 ? 1 : 100, `watcher ${i}`);
    for (const h of handles) h.cancel();
    assert.equal(s.stats.watchers < 1000, true);
  });

  it('a watcher whose callback throws gets onError and no more events; others continue', async () => {
    const errors: Error[] = [];
    let calls = 0;
    await s.watch('/throw/', {
      fromRevision: 0,
      onEvents: () => {
        calls++;
        throw new Error('consumer bug');
      },
      onError: (e) => errors.push(e),
    });
    await s.create('/throw/a', 'a');
    await s.create('/throw/b', 'b');
    assert.equal(calls, 1);
    assert.deepEqual(errors.map((e) => e.message), ['consumer bug']);
  });

  it('a batch crosses to the writer thread as flat lists and comes back as the same ops', () => {
    const batches: Array<{ name: string; batch: WriteOp[][] }> = [
      { name: 'empty', batch: [] },
      { name: 'one create', batch: [[{ op: 'create', key: '/a', value: '{"x":1}' }]] },
      {
        name: 'every op, with and without expected revisions',
        batch: [
          [{ op: 'update', key: '/u', value: 'v' }],
          [
            { op: 'check', key: '/lease', expectedRevision: 0 },
            { op: 'update', key: '/u', value: '', expectedRevision: 7 },
            { op: 'delete', key: '/d' },
            { op: 'delete', key: '/d2', expectedRevision: 9 },
          ],
          [],
          [{ op: 'create', key: '/ü', value: 'null' }],
        ],
      },
    ];
    for (const { name, batch } of batches) {
      const crossed = unflattenBatch(structuredClone(flattenBatch(batch)));
      assert.deepEqual(crossed, batch, name);
      assert.deepEqual(crossed.flat().map((o) => Object.keys(o)), batch.flat().map((o) => Object.keys(o)), `${name}: no extra members`);
    }
  });

  it('a one-op write whose INSERT fails is undone alone (no savepoint: SQLite rolls the statement back)', () => {
    const db = new Database(':memory:');
    db.exec(SQLITE_SCHEMA);
    // A history no writer of ours makes: the next create of /x would repeat (name, prev_revision) = (/x, 2).
    const insert = db.prepare('INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value) VALUES (?, ?, ?, ?, ?, ?, ?)');
    insert.run(1, '/x', 1, 0, 1, 2, 'odd');
    insert.run(2, '/x', 0, 1, 1, 0, 'tombstone');
    const w = new SqliteWriter(db, 2);
    const r = w.commit([[{ op: 'create', key: '/a', value: 'a' }], [{ op: 'create', key: '/x', value: 'x' }], [{ op: 'create', key: '/b', value: 'b' }]]);
    assert.ok(r.ok);
    assert.deepEqual(r.outcomes[0], [[3, 3, 0, null]]);
    assert.equal((r.outcomes[1] as { storeCode?: string }).storeCode, 'RevisionMismatch');
    assert.deepEqual(r.outcomes[2], [[4, 4, 0, null]], 'the next write takes the revision the failed one would have had');
    assert.equal(r.revision, 4);
    const rows = db.prepare('SELECT id, name, value FROM kv ORDER BY id').all() as { id: number; name: string; value: string }[];
    assert.deepEqual(rows.map((x) => `${x.id} ${x.name} ${x.value}`), ['1 /x odd', '2 /x tombstone', '3 /a a', '4 /b b']);
    db.close();
  });

  it('the unique (name, prev_revision) index makes the second writer of the same version fail', () => {
    const db = new Database(':memory:');
    db.exec(SQLITE_SCHEMA);
    const insert = db.prepare('INSERT INTO kv (name, created, deleted, create_revision, prev_revision, value) VALUES (?, ?, 0, ?, ?, ?)');
    insert.run('/k', 1, 1, 0, 'v1');
    insert.run('/k', 0, 1, 1, 'v2 by writer A');
    assert.throws(() => insert.run('/k', 0, 1, 1, 'v2 by writer B'), /UNIQUE constraint failed/);
    db.close();
  });
});

describe('SqliteStore on disk', () => {
  it('keeps the revision counter and compacted revision across a restart, even after compacting away the newest rows', async () => {
    const path = freshPath();
    let s = openSqliteStore(path);
    await s.create('/r/a', 'a');
    await s.create('/r/b', 'b');
    const del = await s.delete('/r/b'); // the newest row is a tombstone…
    await s.compact(del.modRevision); // …which compaction removes, with the rows before it
    await s.close();

    s = openSqliteStore(path);
    assert.equal(await s.currentRevision(), del.modRevision);
    assert.equal(await s.compactedRevision(), del.modRevision);
    const next = await s.create('/r/b', 'b again');
    assert.equal(next.modRevision, del.modRevision + 1, 'no revision is reused');
    assert.deepEqual((await s.list('/r/')).items.map((kv) => kv.value), ['a', 'b again']);
    await s.close();
  });

  it('compaction removes superseded rows and tombstones, and nothing else', async () => {
    const path = freshPath();
    const s = openSqliteStore(path);
    for (let i = 0; i < 10; i++) await s.create(`/cr/k${i}`, 'v1');
    for (let i = 0; i < 10; i++) await s.update(`/cr/k${i}`, 'v2');
    for (let i = 0; i < 5; i++) await s.delete(`/cr/k${i}`);
    const mid = await s.currentRevision();
    for (let i = 5; i < 10; i++) await s.update(`/cr/k${i}`, 'v3');
    await s.compact(mid);
    await s.close();
    const db = new Database(path, { readonly: true });
    const rows = db.prepare('SELECT name, value FROM kv ORDER BY id').all() as { name: string; value: string }[];
    db.close();
    // k0..k4: gone entirely; k5..k9: v2 (still needed to read at `mid`) and v3.
    assert.deepEqual(
      rows.map((r) => `${r.name}=${r.value}`),
      [...[5, 6, 7, 8, 9].map((i) => `/cr/k${i}=v2`), ...[5, 6, 7, 8, 9].map((i) => `/cr/k${i}=v3`)],
    );
  });

  it('periodic compaction keeps keepRevisions of history and stops on close', async () => {
    const clock = new FakeClock();
    const s = openSqliteStore(freshPath(), { clock });
    for (let i = 0; i < 30; i++) await s.create(`/pc/k${i}`, 'v');
    s.startCompaction({ keepRevisions: 10, intervalMs: 1000 });
    clock.advance(999);
    await new Promise((r) => setImmediate(r));
    assert.equal(await s.compactedRevision(), 0);
    clock.advance(1);
    for (let i = 0; i < 10 && (await s.compactedRevision()) === 0; i++) await new Promise((r) => setImmediate(r));
    assert.equal(await s.compactedRevision(), 20);
    await s.close();
    assert.equal(clock.pending(), 0, 'close stops the timer');
  });

  it('close() commits writes already issued and then refuses new ones', async () => {
    const path = freshPath();
    const s = openSqliteStore(path);
    const w = s.create('/cl/a', 'a');
    await s.close();
    assert.equal((await w).key, '/cl/a');
    await assert.rejects(s.create('/cl/b', 'b'), /closed/);
    const again = openSqliteStore(path);
    assert.equal((await again.get('/cl/a'))?.value, 'a');
    await again.close();
  });

  it('refuses to write when another process wrote the file behind its back', async () => {
    const path = freshPath();
    const a = openSqliteStore(path);
    const b = openSqliteStore(path); // stands in for a second process
    await a.create('/two/a', 'a');
    await assert.rejects(b.create('/two/b', 'b'), (err) => isStoreError(err, 'Corrupt') && /only writer/.test(err.message));
    assert.equal(await a.get('/two/b'), undefined);
    await Promise.all([a.close(), b.close()]);
  });

  it('with the writer on its thread, a batch is invisible to reads and new watchers until it is reported, then seen once', async () => {
    const s = openSqliteStore(freshPath());
    try {
      await s.create('/tw/seed', 'v');
      const before = await s.currentRevision();
      let settled = false;
      const writes = Promise.all(Array.from({ length: 200 }, (_, i) => s.create(`/tw/k${i}`, `v${i}`))).finally(() => (settled = true));
      const watchers: { from: number; events: StoreEvent[] }[] = [];
      // Poll while the batch is with the writer thread (it may already be committed there): every read is at the
      // reported revision, and a watcher attached meanwhile replays nothing of the batch before it is live.
      for (let turn = 0; turn < 10_000 && !settled; turn++) {
        const from = await s.currentRevision();
        if (!settled) {
          assert.equal(from, before, 'the revision moves only when the batch is reported');
          assert.equal(await s.get('/tw/k0'), undefined, 'no read sees the batch before its writers do');
          assert.equal((await s.list('/tw/')).items.length, 1);
        }
        if (watchers.length < 5) {
          const w = { from, events: [] as StoreEvent[] };
          await s.watch('/tw/', { fromRevision: from, onEvents: (evs) => w.events.push(...evs) });
          watchers.push(w);
        }
        await new Promise((r) => setImmediate(r));
      }
      const kvs = await writes;
      await new Promise((r) => setImmediate(r));
      assert.ok(watchers.length > 0);
      for (const w of watchers) {
        assert.deepEqual(
          w.events.map((e) => e.kv.modRevision),
          kvs.map((kv) => kv.modRevision).filter((rev) => rev > w.from),
          `watcher from ${w.from}`,
        );
      }
      assert.equal((await s.get('/tw/k199'))?.value, 'v199');
    } finally {
      await s.close();
    }
  });

  it('openStore picks the backend from the URL', async () => {
    const table: { url: string; sqlite?: true; refused?: true }[] = [
      { url: `sqlite:${freshPath()}`, sqlite: true },
      { url: `sqlite://${freshPath()}`, sqlite: true },
      { url: freshPath(), sqlite: true },
      { url: 'sqlite::memory:', sqlite: true },
      { url: 'postgres://db.example/metalplane?schema=not-an-identifier', refused: true },
      { url: 'mysql://db.example/metalplane', refused: true },
    ];
    for (const row of table) {
      if (row.sqlite) {
        const st = await openStore(row.url);
        assert.ok(st instanceof SqliteStore, row.url);
        await st.create('/x', 'y');
        await st.close();
      } else {
        await assert.rejects(openStore(row.url), (err) => isStoreError(err, 'InvalidArgument'), row.url);
      }
    }
  });

  it('every acknowledged write survives kill -9 of the writer process', async () => {
    const path = freshPath();
    const script = fileURLToPath(new URL('./crash-writer.js', import.meta.url));
    const child = spawn(process.execPath, [script, path, '32'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`crash-writer acknowledged too little in time; stderr: ${err}`)), 15_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.split('\n').length > 400) {
          clearTimeout(timer);
          child.kill('SIGKILL'); // mid-stream: writes are in flight and queued
          resolve();
        }
      });
    });
    assert.equal(await exited, 'SIGKILL');
    const acknowledged = out.split('\n').slice(0, -1); // the last piece may be a partial line
    assert.ok(acknowledged.length >= 400);

    const s = openSqliteStore(path);
    try {
      for (const key of acknowledged) {
        const kv = await s.get(key);
        assert.ok(kv, `acknowledged ${key} is missing after kill -9`);
        assert.equal(kv.value, crashValue(Number(key.slice('/crash/k'.length))));
      }
      assert.ok((await s.count('/crash/')) >= acknowledged.length);
    } finally {
      await s.close();
    }
  });
});

describe('SqliteStore file modes', () => {
  it('creates the database and its -wal and -shm files 0600, and narrows those of an older start', async () => {
    const path = freshPath();
    const mode = (f: string): number => statSync(f).mode & 0o777;
    const old = process.umask(0o022);
    try {
      const s = openSqliteStore(path);
      await s.create('/m/a', 'v');
      for (const f of [path, `${path}-wal`, `${path}-shm`]) assert.equal(mode(f), 0o600, f);
      await s.close();
      for (const f of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(f)) chmodSync(f, 0o644);
      const again = openSqliteStore(path);
      await again.create('/m/b', 'v');
      for (const f of [path, `${path}-wal`, `${path}-shm`]) assert.equal(mode(f), 0o600, `${f} after reopening`);
      await again.close();
    } finally {
      process.umask(old);
    }
  });
});

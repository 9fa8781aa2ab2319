// PostgresStore: the shared conformance suite on a throwaway PostgreSQL (a schema per test), plus what only a
// shared database shows: two stores (two replicas) on one schema see each other's writes through watch and
// reads, revisions stay in commit order without gaps under concurrent writers on both, and the pure batch planner.
// Without PostgreSQL installed the suite is skipped locally (CI=true makes that an error).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runStoreConformance } from '../conformance/store-conformance.js';
import type { KeyValue, StoreEvent } from '../types.js';
import { openPostgresStore, planBatch, type PostgresStore } from './postgres-store.js';
import { startTestPostgres, type TestPostgres } from './testing.js';
import { openStore } from '../index.js';

const server = await startTestPostgres();
const pgServer: TestPostgres | undefined = typeof server === 'string' ? undefined : server;
if (typeof server === 'string') console.log(`# skipping the PostgreSQL store tests: ${server}`);

if (pgServer) {
  runStoreConformance('postgres', async () => openPostgresStore(await pgServer.freshUrl()));
}

describe('PostgresStore on one database shared by two replicas', { skip: pgServer ? false : 'PostgreSQL is not installed' }, () => {
  let a: PostgresStore;
  let b: PostgresStore;
  let url: string;
  before(async () => {
    url = await pgServer!.freshUrl();
    // A long poll interval: delivery across replicas here is by notification; the poll is tested on its own below.
    [a, b] = await Promise.all([openPostgresStore(url, { pollIntervalMs: 60_000 }), openPostgresStore(url, { pollIntervalMs: 60_000 })]);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('openStore opens the PostgreSQL backend for postgres:// and postgresql:// URLs', async () => {
    for (const u of [url, url.replace(/^postgres:/, 'postgresql:')]) {
      const s = await openStore(u);
      try {
        assert.equal(s.constructor.name, 'PostgresStore', u);
        assert.equal(await s.currentRevision(), await a.currentRevision());
      } finally {
        await s.close();
      }
    }
  });

  it('concurrent writers on both replicas: one gap-free, commit-ordered log that both watchers see whole and in order', async () => {
    const base = await a.currentRevision();
    const seenA: StoreEvent[] = [];
    const seenB: StoreEvent[] = [];
    await a.watch('/rep/', { fromRevision: base, onEvents: (evs) => seenA.push(...evs) });
    await b.watch('/rep/', { fromRevision: base, onEvents: (evs) => seenB.push(...evs) });
    // Bursts on both replicas at once, in several rounds so that batches of A and B interleave.
    const written: KeyValue[] = [];
    for (let round = 0; round < 5; round++) {
      const burst = [a, b].flatMap((s, i) => Array.from({ length: 40 }, (_, j) => s.create(`/rep/${round}/${i}/${j}`, `v${round}.${i}.${j}`)));
      written.push(...(await Promise.all(burst)));
    }
    const revs = written.map((kv) => kv.modRevision).sort((x, y) => x - y);
    assert.deepEqual(revs, Array.from({ length: 400 }, (_, i) => base + 1 + i), 'revisions are consecutive: no gap, no repeat');
    const last = revs[revs.length - 1];
    for (const [name, seen] of [['A', seenA], ['B', seenB]] as const) {
      await until(() => (seen.at(-1)?.kv.modRevision ?? 0) >= last, `watcher on ${name} reaches ${last}`);
      assert.deepEqual(seen.map((e) => e.kv.modRevision), revs, `watcher on ${name}: every revision once, in order`);
    }
    assert.deepEqual(seenA.map((e) => e.kv.key), seenB.map((e) => e.kv.key));
    assert.ok(a.stats.commits + b.stats.commits < 400, `group commit: ${a.stats.commits + b.stats.commits} transactions for 400 writes`);
  });

  it('a write acknowledged on A is in a list on B and in B current revision', async () => {
    const kv = await a.create('/rep-read/x', 'from A');
    assert.ok((await b.currentRevision()) >= kv.modRevision);
    assert.deepEqual((await b.list('/rep-read/')).items, [kv]);
    assert.deepEqual(await b.get('/rep-read/x'), kv);
    // A read at A's revision on B waits for B's feed instead of answering "too large".
    assert.deepEqual(await b.get('/rep-read/x', kv.modRevision), kv);
  });

  it('preconditions hold across replicas: 100 racing updates from both with one expectedRevision, one wins', async () => {
    const kv = await a.create('/rep-race/k', 'v0');
    const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).update('/rep-race/k', `v${i}`, kv.modRevision)));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code?: string }).code, 'RevisionMismatch');
  });

  it('with notifications lost, the poll by revision still delivers (the poll is the authority)', async () => {
    const quiet = await openPostgresStore(url, { pollIntervalMs: 50 });
    try {
      const seen: StoreEvent[] = [];
      const from = await quiet.currentRevision();
      await quiet.watch('/rep-poll/', { fromRevision: from, onEvents: (evs) => seen.push(...evs) });
      // Stand-in for a lost notification: the row and the counter written directly, no NOTIFY.
      const schema = new URL(url).searchParams.get('schema')!;
      const { testQuery } = await import('./testing.js');
      await testQuery(
        url,
        `WITH r AS (UPDATE "${schema}".meta SET value = value + 1 WHERE name = 'revision' RETURNING value)
         INSERT INTO "${schema}".kv (id, name, created, deleted, create_revision, prev_revision, value) SELECT value, '/rep-poll/k', 1, 0, value, 0, 'silent' FROM r`,
      );
      await until(() => seen.length > 0, 'the polled event arrives');
      assert.deepEqual(seen.map((e) => [e.type, e.kv.key, e.kv.value]), [['create', '/rep-poll/k', 'silent']]);
    } finally {
      await quiet.close();
    }
  });
});

describe('planBatch', () => {
  const latest = () => new Map([['/a', { id: 5, deleted: false, createRevision: 3, value: 'a5' }], ['/gone', { id: 7, deleted: true, createRevision: 6, value: 'g' }]]);
  const table: { name: string; writes: Parameters<typeof planBatch>[0]; outcomes: (string | number[])[]; rows: [number, string, number][] }[] = [
    {
      name: 'revisions are consecutive over the written ops only',
      writes: [[{ op: 'create', key: '/b', value: 'b' }], [{ op: 'create', key: '/a', value: 'dup' }], [{ op: 'update', key: '/a', value: 'a2', expectedRevision: 5 }]],
      outcomes: [[11], 'KeyExists', [12]],
      rows: [[11, '/b', 0], [12, '/a', 5]],
    },
    {
      name: 'a re-create points at the tombstone; a later caller sees an earlier caller of the batch',
      writes: [[{ op: 'create', key: '/gone', value: 'again' }], [{ op: 'delete', key: '/gone' }], [{ op: 'update', key: '/a', value: 'x', expectedRevision: 4 }]],
      outcomes: [[11], [12], 'RevisionMismatch'],
      rows: [[11, '/gone', 7], [12, '/gone', 11]],
    },
    {
      name: 'a caller whose later op fails writes none of its ops',
      writes: [[{ op: 'update', key: '/a', value: 'y' }, { op: 'delete', key: '/missing' }], [{ op: 'delete', key: '/a' }]],
      outcomes: ['KeyNotFound', [11]],
      rows: [[11, '/a', 5]],
    },
  ];
  for (const tc of table) {
    it(tc.name, () => {
      const plan = planBatch(tc.writes, latest(), 10);
      assert.deepEqual(plan.outcomes.map((o) => (o instanceof Error ? (o as { code: string }).code : o.map((kv) => kv.modRevision))), tc.outcomes);
      assert.deepEqual(plan.rows.map((r) => [r.id, r.name, r.prevRevision]), tc.rows);
      assert.deepEqual(plan.events.map((e) => e.kv.modRevision), tc.rows.map((r) => r[0]));
    });
  }
});

/** Waits (bounded) for a condition that watch delivery makes true. */
async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

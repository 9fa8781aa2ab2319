// PostgresStore under faults of the database: a restart (fast and a crash) under write load, a COMMIT whose
// answer is lost and one that never arrives (through a proxy that cuts the connection at that point of the
// protocol), a transaction elsewhere holding the revision lock, and a standby promoted after the primary is
// killed. What must hold each time: writes resume by themselves, every acknowledged write is there, a write
// reported as not applied is not there, and a watcher sees exactly the committed revisions, once each, in order.
// Each test has a PostgreSQL server of its own (synchronous_commit on: a crash loses nothing acknowledged).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { isStoreError } from '../errors.js';
import type { KeyValue, StoreEvent } from '../types.js';
import { openPostgresStore, type PostgresStore } from './postgres-store.js';
import { startPostgresServer, testQuery, whyNoPostgres, type TestPostgres } from './testing.js';
import { startFaultProxy, type CommitFault } from './fault-proxy.js';

const skip = whyNoPostgres() ?? false;

interface LoadResult {
  acknowledged: KeyValue[];
  /** Writes that failed, by key, with the error. */
  failed: Map<string, Error>;
}

/** `writers` loops creating fresh keys under `prefix` until `stop()` (each bounded to `max` creates). */
function writeLoad(store: PostgresStore, prefix: string, writers: number, max = 2000): { stop: () => Promise<LoadResult>; count: () => number } {
  const acknowledged: KeyValue[] = [];
  const failed = new Map<string, Error>();
  let running = true;
  const loops = Array.from({ length: writers }, async (_, w) => {
    for (let j = 0; running && j < max; j++) {
      const key = `${prefix}w${w}/${String(j).padStart(5, '0')}`;
      try {
        acknowledged.push(await store.create(key, `v${w}.${j}`));
      } catch (err) {
        failed.set(key, err as Error);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  });
  return {
    count: () => acknowledged.length,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return { acknowledged, failed };
    },
  };
}

/** Every event from `from` on under `prefix`. */
async function collect(store: PostgresStore, prefix: string, from: number): Promise<StoreEvent[]> {
  const seen: StoreEvent[] = [];
  await store.watch(prefix, {
    fromRevision: from,
    onEvents: (evs) => seen.push(...evs),
    // Only closing the store at the end of the test may end the watch.
    onError: (err) => {
      if (!isStoreError(err, 'Closed')) seen.push({ type: 'delete', kv: { key: `watch ended: ${err.message}`, value: '', createRevision: 0, modRevision: -1 } });
    },
  });
  return seen;
}

/**
 * The checks after a fault: the log above `base` is gap-free; every acknowledged write is in it with its
 * revision; a write that failed as "not applied" is absent; the watcher saw exactly the log, in order.
 */
async function assertConsistent(url: string, store: PostgresStore, base: number, load: LoadResult, seen: StoreEvent[], prefix: string): Promise<void> {
  const schema = new URL(url).searchParams.get('schema')!;
  const log = (await testQuery(url, `SELECT id, name FROM "${schema}".kv WHERE id > $1 ORDER BY id`, [base])).rows as { id: number | string; name: string }[];
  const ids = log.map((r) => Number(r.id));
  assert.deepEqual(ids, Array.from({ length: ids.length }, (_, i) => base + 1 + i), 'the log has no gap and no repeat');
  const byName = new Map(log.map((r) => [r.name, Number(r.id)]));
  assert.equal(byName.size, log.length, 'no key was written twice');
  for (const kv of load.acknowledged) assert.equal(byName.get(kv.key), kv.modRevision, `acknowledged ${kv.key} is in the log at its revision`);
  for (const [key, err] of load.failed) {
    assert.ok(isStoreError(err, 'Unavailable'), `${key} failed with a retryable Unavailable, not ${String(err)}`);
    if (/not applied/.test(err.message)) assert.equal(byName.get(key), undefined, `${key} reported as not applied is not in the log`);
  }
  const head = ids.at(-1) ?? base;
  await until(() => (seen.at(-1)?.kv.modRevision ?? base) >= head, `the watcher reaches ${head}`);
  assert.deepEqual(
    seen.filter((e) => e.kv.key.startsWith(prefix)).map((e) => e.kv.modRevision),
    log.filter((r) => r.name.startsWith(prefix)).map((r) => Number(r.id)),
    'the watcher saw every committed revision once, in order',
  );
  assert.equal((await store.list(prefix)).items.length, log.filter((r) => r.name.startsWith(prefix)).length);
}

describe('PostgresStore when PostgreSQL restarts', { skip }, () => {
  let server: TestPostgres;
  before(async () => {
    server = (await startPostgresServer({ synchronousCommit: true })) as TestPostgres;
  });
  after(() => server?.destroy());

  for (const mode of ['fast', 'immediate'] as const) {
    it(`restart -m ${mode} under write load: writes resume by themselves, nothing acknowledged is lost, the watcher sees every revision once`, async () => {
      const url = await server.freshUrl();
      const store = await openPostgresStore(url, { pollIntervalMs: 200, onBackgroundError: () => undefined });
      const other = await openPostgresStore(url, { pollIntervalMs: 200, onBackgroundError: () => undefined });
      try {
        const base = await store.currentRevision();
        const seenHere = await collect(store, '/load/', base);
        const seenThere = await collect(other, '/load/', base);
        const load = writeLoad(store, '/load/', 8);
        await until(() => load.count() >= 100, 'some writes before the restart');
        // A write must be in flight when the server goes: fast as writes are, the load could otherwise sit
        // between two round trips at that moment and never feel it. A held revision lock keeps the next batch
        // waiting on the server until the restart ends every session.
        const holder = new pg.Client({ connectionString: server.url });
        holder.on('error', () => undefined);
        await holder.connect();
        const schema = new URL(url).searchParams.get('schema')!;
        await holder.query(`BEGIN; SELECT value FROM "${schema}".meta WHERE name = 'revision' FOR UPDATE`);
        // (A batch that committed just before the lock was taken may still be acknowledged meanwhile.)
        await new Promise((r) => setTimeout(r, 100));
        const blockedAt = load.count();
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(load.count(), blockedAt, 'the load waits on the held lock');
        server.restart(mode);
        await holder.end().catch(() => undefined);
        const atRestart = load.count();
        await until(() => load.count() >= atRestart + 200, 'writes resume after the restart', 30_000);
        const result = await load.stop();
        assert.ok(result.acknowledged.length > atRestart, 'writes were acknowledged after the restart');
        await assertConsistent(url, store, base, result, seenHere, '/load/');
        await assertConsistent(url, other, base, result, seenThere, '/load/');
        assert.ok(store.stats.retries > 0 || result.failed.size > 0, 'the restart was felt (retries or failures), or the test tested nothing');
      } finally {
        await Promise.all([store.close(), other.close()]);
      }
    });
  }

  const commitFaults: { fault: CommitFault; why: string }[] = [
    { fault: 'answer-lost', why: 'it committed: acknowledged once, not applied again, not reported failed' },
    { fault: 'never-sent', why: 'it did not commit: retried, and committed once' },
  ];
  for (const { fault, why } of commitFaults) {
    it(`a COMMIT whose connection breaks (${fault}): ${why}`, async () => {
      const proxy = await startFaultProxy(server.port);
      const url = proxy.via(await server.freshUrl());
      const store = await openPostgresStore(url, { pollIntervalMs: 200, onBackgroundError: () => undefined });
      try {
        const base = await store.currentRevision();
        const seen = await collect(store, '/commit/', base);
        const broken = proxy.breakNextCommit(fault);
        // Several callers in one batch: every one of them is settled by the one resolution.
        const writes = Array.from({ length: 5 }, (_, i) => store.create(`/commit/${fault}/${i}`, `v${i}`));
        await broken;
        const kvs = await Promise.all(writes);
        const after1 = await store.create(`/commit/${fault}/after`, 'next');
        assert.ok(store.stats.retries >= (fault === 'never-sent' ? 1 : 0));
        await assertConsistent(url, store, base, { acknowledged: [...kvs, after1], failed: new Map() }, seen, '/commit/');
        assert.deepEqual(seen.map((e) => e.kv.key), [...kvs, after1].map((kv) => kv.key));
      } finally {
        await store.close();
        await proxy.close();
      }
    });
  }

  it('a transaction elsewhere holding the revision lock: writes fail after lock_timeout as Unavailable, and resume once it ends', async () => {
    const url = await server.freshUrl();
    const store = await openPostgresStore(`${url}&lock_timeout=300`, { onBackgroundError: () => undefined });
    assert.equal(store.timeouts.lockTimeoutMs, 300, 'lock_timeout from the URL');
    const schema = new URL(url).searchParams.get('schema')!;
    const holder = new pg.Client({ connectionString: server.url });
    await holder.connect();
    try {
      const before = await store.create('/stall/before', 'x');
      await holder.query(`BEGIN; SELECT value FROM "${schema}".meta WHERE name = 'revision' FOR UPDATE`);
      const stuck = await Promise.allSettled(Array.from({ length: 3 }, (_, i) => store.create(`/stall/during-${i}`, 'x')));
      for (const r of stuck) {
        assert.equal(r.status, 'rejected');
        const err = (r as PromiseRejectedResult).reason as Error;
        assert.ok(isStoreError(err, 'Unavailable'), String(err));
        assert.match(err.message, /lock_timeout \(300 ms\)/);
      }
      // Reads do not take the lock: they go on.
      assert.deepEqual(await store.get('/stall/before'), before);
      await holder.query('ROLLBACK');
      const resumed = await store.create('/stall/after', 'x');
      assert.equal(resumed.modRevision, before.modRevision + 1, 'the failed writes took no revision');
      assert.equal(await store.get('/stall/during-0'), undefined, 'a write that failed on the lock is not there');
    } finally {
      await holder.end();
      await store.close();
    }
  });
});

describe('PostgresStore when the primary is killed and a standby promoted', { skip }, () => {
  let primary: TestPostgres;
  let standby: TestPostgres & { promote(): void };
  before(async () => {
    primary = (await startPostgresServer({ synchronousCommit: true })) as TestPostgres;
    standby = await primary.startStandby();
    // Synchronous replication: a COMMIT is acknowledged once the standby has it, so a failover loses nothing
    // acknowledged (with asynchronous replication the last commits may be lost, and no store can help that).
    await testQuery(primary.url, `ALTER SYSTEM SET synchronous_standby_names = '*'`);
    await testQuery(primary.url, 'SELECT pg_reload_conf()');
    await untilAsync(async () => (await testQuery(primary.url, `SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync'`)).rows.length > 0, 'the standby is synchronous');
  });
  after(() => {
    standby?.destroy();
    primary?.destroy();
  });

  it('with both hosts in the URL (target_session_attrs=read-write), writes move to the promoted standby: nothing acknowledged lost, every revision once', async () => {
    const one = await primary.freshUrl();
    const schema = new URL(one).searchParams.get('schema')!;
    const url = `postgres://postgres@127.0.0.1:${primary.port},127.0.0.1:${standby.port}/postgres?schema=${schema}&target_session_attrs=read-write`;
    const store = await openPostgresStore(url, { pollIntervalMs: 200, onBackgroundError: () => undefined });
    try {
      const base = await store.currentRevision();
      const seen = await collect(store, '/fo/', base);
      const load = writeLoad(store, '/fo/', 8);
      await until(() => load.count() >= 100, 'some writes before the failover');
      primary.stop('immediate');
      standby.promote();
      const atFailover = load.count();
      await until(() => load.count() >= atFailover + 200, 'writes resume on the promoted standby', 40_000);
      const result = await load.stop();
      const standbyUrl = `${standby.url}?schema=${schema}`;
      await assertConsistent(standbyUrl, store, base, result, seen, '/fo/');
    } finally {
      await store.close();
    }
  });
});

/** Waits (bounded) for a condition that the store's work makes true. */
async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function untilAsync(cond: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

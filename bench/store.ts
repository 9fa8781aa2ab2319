// Store benchmarks: durable write throughput through SqliteStore (group commit) against raw better-sqlite3
// with the same per-acknowledgement guarantee, the time to list 10,000 objects, and the cost of watch fan-out.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { SQLITE_SCHEMA, openSqliteStore, type SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { openPostgresStore, postgresSchema } from '../src/store/postgres/postgres-store.js';
import { startPostgresServer, type TestPostgres } from '../src/store/postgres/testing.js';
import type { Store } from '../src/store/types.js';
import type { BenchOptions, BenchResult } from './types.js';

/** A ~1 KB JSON object, different per i (the store and backup benchmarks write it). */
export function objectValue(i: number): string {
  return JSON.stringify({
    apiVersion: 'metalplane.dev/v1alpha1',
    kind: 'Device',
    metadata: { name: `device-${i}`, namespace: 'bench', uid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` },
    spec: { hostname: `host-${i}`, metro: 'da', plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04', userdata: 'x'.repeat(760) },
  });
}

/** Runs `total` calls of `op`, at most `inFlight` at a time. */
async function runConcurrently(total: number, inFlight: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) await op(next++);
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

/**
 * Durable creates per second through a store (which this closes): 64 callers in flight, each awaiting its
 * acknowledgement, so each backend's group commit gathers them.
 */
async function storeWritesPerSecond(store: Store, n: number): Promise<number> {
  try {
    const start = performance.now();
    await runConcurrently(n, 64, (i) => store.create(`/registry/devices/bench/device-${i}`, objectValue(i)));
    return n / ((performance.now() - start) / 1000);
  } finally {
    await store.close();
  }
}

/**
 * The baseline: the same rows into the same schema with raw better-sqlite3, WAL + synchronous=FULL, one
 * transaction per insert: what it costs to acknowledge each write durably without batching.
 */
function rawWritesPerSecond(dir: string, n: number): number {
  const db = new Database(join(dir, 'raw-write.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(SQLITE_SCHEMA);
    const insert = db.prepare('INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value) VALUES (?, ?, 1, 0, ?, 0, ?)');
    const start = performance.now();
    for (let i = 0; i < n; i++) insert.run(i + 1, `/registry/devices/bench/device-${i}`, i + 1, objectValue(i));
    return n / ((performance.now() - start) / 1000);
  } finally {
    db.close();
  }
}

async function fill(store: SqliteStore, prefix: string, n: number): Promise<void> {
  await runConcurrently(n, 256, (i) => store.create(`${prefix}device-${String(i).padStart(5, '0')}`, objectValue(i)));
}

/** Median ms to list 10,000 ~1 KB objects under one prefix, with other keys and some history around them. */
async function list10kMs(dir: string): Promise<number> {
  const store = openSqliteStore(join(dir, 'store-list.db'), { durability: 'normal' });
  try {
    await fill(store, '/registry/devices/bench/', 10_000);
    await fill(store, '/registry/hardware/', 5_000);
    // 10% of the objects have a second version, so the newest-version-per-key logic is exercised.
    await runConcurrently(1000, 256, (i) => store.update(`/registry/devices/bench/device-${String(i * 10).padStart(5, '0')}`, objectValue(i)));
    const times: number[] = [];
    for (let r = 0; r < 7; r++) {
      const start = performance.now();
      const res = await store.list('/registry/devices/bench/');
      times.push(performance.now() - start);
      if (res.items.length !== 10_000) throw new Error(`list returned ${res.items.length} items, expected 10000`);
    }
    return median(times);
  } finally {
    await store.close();
  }
}

/**
 * Extra µs per committed event that 1000 watchers cost (100 namespace prefixes x 5 watchers, plus 500 on the
 * parent prefix, so each event reaches 505 of them). Writes go one at a time (one event per batch: the worst
 * case, one onEvents call per matching watcher per event) to an in-memory store, so fsync does not blur it.
 */
async function fanOutMicrosPerEvent(n: number): Promise<{ withWatchers: number; without: number; deliveries: number }> {
  const run = async (watchers: number): Promise<{ us: number; deliveries: number }> => {
    const store = openSqliteStore(':memory:');
    let deliveries = 0;
    for (let i = 0; i < watchers; i++) {
      const prefix = i % 2 === 0 ? `/registry/devices/ns${i % 100}/` : '/registry/devices/';
      await store.watch(prefix, { fromRevision: 0, onEvents: () => void deliveries++ });
    }
    const start = performance.now();
    await runConcurrently(n, 1, (i) => store.create(`/registry/devices/ns${i % 100}/device-${i}`, objectValue(i)));
    const us = ((performance.now() - start) * 1000) / n;
    await store.close();
    return { us, deliveries };
  };
  await run(0); // warm-up
  const without = await run(0);
  const withWatchers = await run(1000);
  return { withWatchers: withWatchers.us, without: without.us, deliveries: withWatchers.deliveries };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * A throwaway PostgreSQL at a real deployment's durability (fsync, synchronous_commit and full_page_writes on),
 * shared by the store and api benches of one run; undefined (with a message) when PostgreSQL is not installed:
 * the bench installs nothing.
 */
let durablePg: Promise<TestPostgres | undefined> | undefined;
export function benchPostgres(): Promise<TestPostgres | undefined> {
  durablePg ??= startPostgresServer({ fsync: true }).then((r) => {
    if (typeof r !== 'string') return r;
    process.stderr.write(`  skipping the PostgreSQL rows: ${r}\n`);
    return undefined;
  });
  return durablePg;
}

/**
 * The baseline: the same rows into the same table with raw `pg`, one autocommit INSERT per row (synchronous_commit
 * on: each is durable when acknowledged), `inFlight` at once on as many connections. PostgreSQL itself then
 * flushes the WAL of concurrent commits together, which is the best a client without batching gets.
 */
export async function rawPgInsertsPerSecond(url: string, n: number, inFlight: number, value: (i: number) => string): Promise<number> {
  const schema = new URL(url).searchParams.get('schema')!;
  const pool = new pg.Pool({ connectionString: url.replace(/\?.*$/, ''), max: inFlight });
  try {
    await pool.query(postgresSchema(schema));
    const clients = await Promise.all(Array.from({ length: inFlight }, () => pool.connect()));
    for (const c of clients) c.release();
    const sql = `INSERT INTO "${schema}".kv (id, name, created, deleted, create_revision, prev_revision, value) VALUES ($1, $2, 1, 0, $1, 0, $3)`;
    const start = performance.now();
    await runConcurrently(n, inFlight, (i) => pool.query(sql, [i + 1, `/registry/devices/bench/device-${i}`, value(i)]));
    return n / ((performance.now() - start) / 1000);
  } finally {
    await pool.end();
  }
}

async function benchStorePostgres(n: number): Promise<BenchResult[]> {
  const server = await benchPostgres();
  if (!server) return [];
  const raw = await rawPgInsertsPerSecond(await server.freshUrl(), n, 64, objectValue);
  const store = await storeWritesPerSecond(await openPostgresStore(await server.freshUrl()), n);
  return [
    {
      name: 'store.write.pg',
      value: round(store, 0),
      unit: 'creates/s',
      baseline: 'raw pg inserts, one autocommit INSERT per row on 64 connections, synchronous_commit + fsync on',
      baselineValue: round(raw, 0),
      ratio: round(store / raw, 2),
      note: `${n} durable ~1 KB creates through PostgresStore, 64 in flight (one revision lock and one WAL flush per batch); local PostgreSQL 15, fsync on`,
    },
  ];
}

export async function benchStore(opts: BenchOptions): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'metalplane-bench-store-'));
  try {
    const n = opts.quick ? 5_000 : 20_000;
    const raw = rawWritesPerSecond(dir, n);
    const store = await storeWritesPerSecond(openSqliteStore(join(dir, 'store-write.db')), n);
    const listMs = await list10kMs(dir);
    const fan = await fanOutMicrosPerEvent(opts.quick ? 5_000 : 20_000);
    const onPg = await benchStorePostgres(n);
    return [
      {
        name: 'store.write',
        value: round(store, 0),
        unit: 'creates/s',
        baseline: 'raw better-sqlite3 inserts, WAL + synchronous=FULL, one transaction per insert',
        baselineValue: round(raw, 0),
        ratio: round(store / raw, 2),
        target: '≥ 0.6×',
        note: `${n} durable ~1 KB creates, 64 in flight (group commit)`,
      },
      ...onPg,
      {
        name: 'store.list.10k',
        value: round(listMs),
        unit: 'ms',
        target: '< 100 ms',
        note: '10,000 ~1 KB objects under one prefix (+5,000 elsewhere, 10% with two versions), median of 7',
      },
      {
        name: 'store.watch.fanout.1000',
        value: round(fan.withWatchers - fan.without, 2),
        unit: 'µs/event',
        note: `extra cost per committed event with 1000 watchers, 505 of them matching, one event per batch (${fan.deliveries} onEvents calls); ${round(fan.without, 2)} µs/event without watchers, in-memory`,
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

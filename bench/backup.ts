// Backup and restore of 10,000 objects (~1 KB each) through the real command line: `metalplane backup` of a
// SQLite store, then `metalplane restore` of that file into a fresh SQLite data dir and into PostgreSQL (when
// installed), each timed end to end (process start, gunzip, checks, the one transaction). Target: restore < 10 s.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { startTestPostgres } from '../src/store/postgres/testing.js';
import { objectValue } from './store.js';
import type { BenchOptions, BenchResult } from './types.js';

const BIN = join(fileURLToPath(new URL('../..', import.meta.url)), 'bin', 'metalplane.js');

/** Runs `metalplane ARGS` to completion; returns its wall time in seconds. */
function timed(args: string[]): number {
  const start = performance.now();
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`metalplane ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return (performance.now() - start) / 1000;
}

// --quick changes nothing: 10,000 objects is the number and takes seconds.
export async function benchBackup(_opts: BenchOptions): Promise<BenchResult[]> {
  const n = 10_000;
  const dir = mkdtempSync(join(tmpdir(), 'metalplane-bench-backup-'));
  try {
    const source = join(dir, 'source');
    mkdirSync(source, { mode: 0o700 });
    const store = openSqliteStore(join(source, 'state.db'));
    for (let i = 0; i < n; i += 1000) {
      await store.commit(Array.from({ length: 1000 }, (_, j) => ({ op: 'create' as const, key: `/registry/metalplane.dev/devices/bench/device-${i + j}`, value: objectValue(i + j) })));
    }
    await store.close();
    const file = join(dir, 'bench.bak');
    const backupSeconds = timed(['backup', file, '--data-dir', source]);
    const results: BenchResult[] = [
      { name: `backup.${n / 1000}k`, value: round(backupSeconds), unit: 's', target: '—', note: `metalplane backup of ${n} ~1 KB objects from SQLite, process start included` },
      { name: `restore.${n / 1000}k.sqlite`, value: round(timed(['restore', file, '--data-dir', join(dir, 'to-sqlite')])), unit: 's', target: '< 10 s', note: `metalplane restore of ${n} objects into a fresh SQLite data dir (synchronous=FULL), process start included` },
    ];
    const pg = await startTestPostgres();
    if (typeof pg !== 'string') {
      const url = await pg.freshUrl();
      results.push({ name: `restore.${n / 1000}k.postgres`, value: round(timed(['restore', file, '--data-dir', join(dir, 'to-pg'), '--store', url])), unit: 's', target: '< 10 s', note: `the same file into PostgreSQL (the throwaway test server: fsync off)` });
    }
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const round = (s: number): number => Math.round(s * 100) / 100;

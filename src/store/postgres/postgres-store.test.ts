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

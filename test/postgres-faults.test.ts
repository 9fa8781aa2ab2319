// A real `metalplane up --store postgres://…` while its PostgreSQL goes away and comes back: /readyz says not
// ready (503, with the reason) while the database does not answer and ready again after, writes work again by
// themselves; and a transaction elsewhere holding the revision lock makes a kube API write fail with a 503
// Status after lock_timeout (not hang), and writes resume once it ends. PostgreSQL of its own, skipped when
// PostgreSQL is not installed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { api, runMetalplane, startTestServer, waitFor, type TestServer } from './helpers/server.js';
import { startPostgresServer, whyNoPostgres, type TestPostgres } from '../src/store/postgres/testing.js';
import { formatKeyFile, newEncryptionKey } from '../src/store/encryption.js';

const CONFIGMAPS = '/api/v1/namespaces/default/configmaps';
const configMap = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { a: 'b' } });

describe('metalplane up on PostgreSQL when PostgreSQL fails', { skip: whyNoPostgres() ?? false }, () => {
  let db: TestPostgres;
  let server: TestServer;
  let dir: string;
  let schema: string;

  before(async () => {
    db = (await startPostgresServer({ synchronousCommit: true })) as TestPostgres;
    dir = mkdtempSync(join(tmpdir(), 'metalplane-pgfaults-'));
    const keyFile = join(dir, 'encryption.key');
    writeFileSync(keyFile, formatKeyFile([newEncryptionKey()]), { mode: 0o600 });
    const url = await db.freshUrl();
    schema = new URL(url).searchParams.get('schema')!;
    server = await startTestServer({ args: ['--store', `${url}&lock_timeout=500`, '--encryption-key-file', keyFile] });
    await waitFor('the server is ready', async () => (await fetch(`${server.plainUrl}/readyz`)).status === 200, 20_000);
  });
  after(async () => {
    await server?.stop();
    server?.cleanup();
    db?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('/readyz is 503 with the reason while PostgreSQL is stopped, 200 again once it is back, and writes work again', async () => {
    assert.equal((await api(server, 'POST', CONFIGMAPS, configMap('before-stop'))).status, 201);
    db.stop();
    try {
      const res = await fetch(`${server.plainUrl}/readyz`);
      assert.equal(res.status, 503);
      assert.match(await res.text(), /^not ready: the database does not answer/);
      // Liveness is not readiness: the process is fine, a restart would not help.
      assert.equal((await fetch(`${server.plainUrl}/livez`)).status, 200);
    } finally {
      db.start();
    }
    await waitFor('/readyz is 200 again', async () => (await fetch(`${server.plainUrl}/readyz`)).status === 200, 20_000);
    const created = await api(server, 'POST', CONFIGMAPS, configMap('after-start'));
    assert.equal(created.status, 201, created.text);
    const list = await api(server, 'GET', CONFIGMAPS);
    assert.deepEqual(
      (list.body.items as { metadata: { name: string } }[]).map((i) => i.metadata.name).filter((n) => n === 'before-stop' || n === 'after-start').sort(),
      ['after-start', 'before-stop'],
    );
  });

  test('a transaction elsewhere holding the revision lock: a create answers 503 with a Status after lock_timeout, and succeeds once it ends', async () => {
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query(`BEGIN; SELECT value FROM "${schema}".meta WHERE name = 'revision' FOR UPDATE`);
      const stuck = await api(server, 'POST', CONFIGMAPS, configMap('during-lock'));
      assert.equal(stuck.status, 503, stuck.text);
      assert.equal(stuck.body.kind, 'Status');
      assert.equal(stuck.body.reason, 'ServiceUnavailable');
      assert.match(stuck.body.message, /locked by another transaction.*lock_timeout \(500 ms\)/);
      assert.equal(stuck.body.details?.retryAfterSeconds, 1);
      // Reads take no lock.
      assert.equal((await api(server, 'GET', `${CONFIGMAPS}/before-stop`)).status, 200);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
    const created = await api(server, 'POST', CONFIGMAPS, configMap('during-lock'));
    assert.equal(created.status, 201, `the same create after the lock is released: ${created.text}`);
  });

  test('a replica started while PostgreSQL is down waits for it and becomes ready once it is up; a database that does not exist fails at once', async () => {
    const url = await db.freshUrl();
    db.stop();
    let up = false;
    let started: TestServer | undefined;
    try {
      const starting = startTestServer({ args: ['--store', url, '--encryption-key-file', join(dir, 'encryption.key')] });
      // Still waiting, not exited, while the database is away.
      await new Promise((r) => setTimeout(r, 2_000));
      db.start();
      up = true;
      started = await starting;
      assert.match(started.stderr(), /waiting for PostgreSQL at /);
      assert.equal((await fetch(`${started.plainUrl}/readyz`)).status, 200);
      assert.equal((await api(started, 'POST', CONFIGMAPS, configMap('after-waiting'))).status, 201);
    } finally {
      if (!up) db.start();
      await started?.stop();
      started?.cleanup();
    }
    // (The throwaway server trusts local connections, so a wrong password cannot be shown here; a missing
    // database is the same kind of refusal: waiting does not mend it.)
    const wrong = new URL(url);
    wrong.pathname = '/no_such_database';
    const t0 = Date.now();
    const r = await runMetalplane(['up', '--no-sim', '--data-dir', join(dir, 'wrong-password'), '--listen', '127.0.0.1:0', '--store', wrong.toString(), '--encryption-key-file', join(dir, 'encryption.key')], 30_000);
    assert.notEqual(r.status, 0, 'a missing database is an error');
    assert.ok(Date.now() - t0 < 20_000, 'and is not waited on for --store-wait');
    assert.match(r.stderr, /no_such_database/);
    assert.doesNotMatch(r.stderr, /waiting for PostgreSQL/);
  });
});

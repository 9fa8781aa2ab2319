// The encrypting Store wrapper: the conformance suite through it (every value encrypted), what lands in the
// SQLite file, old plain values, key binding, rotation, and the key file.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { runStoreConformance } from './conformance/store-conformance.js';
import { ENCRYPTION_PREFIX, SECRET_KEY_PREFIXES, encryptPlainValues, encryptingStore, formatKeyFile, isSecretKey, loadOrCreateKeyFile, newEncryptionKey, parseKeyFile, type EncryptionKey } from './encryption.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';
import type { StoreEvent } from './types.js';
import { isStoreError } from './errors.js';

const dir = mkdtempSync(join(tmpdir(), 'metalplane-enc-'));
let files = 0;
const freshPath = (): string => join(dir, `store-${++files}.db`);
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const key1 = newEncryptionKey('key1');
// Every key matches: the whole suite runs on encrypted values.
runStoreConformance('sqlite file, every value encrypted', async () => encryptingStore(openSqliteStore(freshPath()), { keys: [key1], matches: () => true }));

/** Every value column of the SQLite file, as stored. */
function rawValues(path: string): string[] {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT value FROM kv').pluck().all() as Array<string | Buffer | null>).map((v) => (v === null ? '' : String(v)));
  } finally {
    db.close();
  }
}

describe('encryptingStore', () => {
  it('keeps secret values out of the file in clear, and reads them back after reopening', async () => {
    const path = freshPath();
    const secret = 'hunter2-bmc-password-' + Math.random().toString(36).slice(2);
    const open = () => encryptingStore(openSqliteStore(path), { keys: [key1], matches: isSecretKey });
    const s = open();
    await s.create('/registry/core/secrets/default/bmc', JSON.stringify({ data: { password: secret } }));
    await s.create('/registry/core/configmaps/default/cm', JSON.stringify({ data: { note: 'not-secret-value' } }));
    await s.close();

    const values = rawValues(path);
    assert.ok(values.every((v) => !v.includes(secret)), 'the secret appears in clear in the database file');
    assert.ok(values.some((v) => v.startsWith(`${ENCRYPTION_PREFIX}key1:`)), 'the secret is stored with the aesgcm prefix');
    assert.ok(values.some((v) => v.includes('not-secret-value')), 'other kinds are stored as they are');

    const again = open();
    try {
      assert.equal(JSON.parse((await again.get('/registry/core/secrets/default/bmc'))!.value).data.password, secret);
    } finally {
      await again.close();
    }
  });

  it('decrypts every read path: list, delete, commit results, watch events and prevKv', async () => {
    const s = encryptingStore(openSqliteStore(':memory:'), { keys: [key1], matches: isSecretKey });
    try {
      const events: StoreEvent[] = [];
      await s.watch('/registry/', { fromRevision: 0, onEvents: (evs) => events.push(...evs) });
      const k = '/registry/core/secrets/ns/a';
      const [created] = await s.commit([{ op: 'create', key: k, value: 'v1' }]);
      assert.equal(created!.value, 'v1');
      assert.equal((await s.update(k, 'v2')).value, 'v2');
      assert.deepEqual((await s.list('/registry/core/secrets/')).items.map((kv) => kv.value), ['v2']);
      assert.equal((await s.delete(k)).value, 'v2');
      for (let i = 0; i < 100 && events.length < 3; i++) await new Promise((r) => setImmediate(r));
      assert.deepEqual(events.map((e) => [e.type, e.kv.value, e.prevKv?.value]), [['create', 'v1', undefined], ['update', 'v2', 'v1'], ['delete', 'v2', 'v2']]);
    } finally {
      await s.close();
    }
  });

  it('reads values written before encryption was enabled, and encrypts them on their next write', async () => {
    const path = freshPath();
    const plain = openSqliteStore(path);
    await plain.create('/metalplane/provisioning-signing-key', '{"key":"old-plain"}');
    await plain.close();
    const s = encryptingStore(openSqliteStore(path), { keys: [key1], matches: isSecretKey });
    assert.equal((await s.get('/metalplane/provisioning-signing-key'))!.value, '{"key":"old-plain"}');
    await s.update('/metalplane/provisioning-signing-key', '{"key":"new"}');
    await s.close();
    assert.ok(rawValues(path).some((v) => v.startsWith(ENCRYPTION_PREFIX)));
    assert.ok(rawValues(path).every((v) => !v.includes('"new"')));
  });

  it('encrypts values an earlier version stored in clear, once', async () => {
    const path = freshPath();
    const plain = openSqliteStore(path);
    await plain.create('/metalplane/provisioning-signing-key', '{"key":"clear-signing-key"}');
    await plain.create('/registry/core/secrets/ns/s', '{"data":"clear-secret"}');
    await plain.create('/registry/core/configmaps/ns/c', '{"data":"clear-config"}');
    const s = encryptingStore(plain, { keys: [key1], matches: isSecretKey });
    assert.equal(await encryptPlainValues(plain, s, SECRET_KEY_PREFIXES), 2);
    assert.equal(await encryptPlainValues(plain, s, SECRET_KEY_PREFIXES), 0, 'nothing left in clear');
    assert.equal((await s.get('/registry/core/secrets/ns/s'))!.value, '{"data":"clear-secret"}');
    assert.ok((await plain.get('/metalplane/provisioning-signing-key'))!.value.startsWith(ENCRYPTION_PREFIX));
    assert.equal((await plain.get('/registry/core/configmaps/ns/c'))!.value, '{"data":"clear-config"}');
    await s.close();
  });

  it('decrypts with every configured key (rotation) and names a missing one', async () => {
    const path = freshPath();
    const old = encryptingStore(openSqliteStore(path), { keys: [key1], matches: () => true });
    await old.create('/x', 'written-with-key1');
    await old.close();
    const key2 = newEncryptionKey('key2');
    const rotated = encryptingStore(openSqliteStore(path), { keys: [key2, key1], matches: () => true });
    assert.equal((await rotated.get('/x'))!.value, 'written-with-key1');
    await rotated.create('/y', 'written-with-key2');
    await rotated.close();
    const only2 = encryptingStore(openSqliteStore(path), { keys: [key2], matches: () => true });
    try {
      assert.equal((await only2.get('/y'))!.value, 'written-with-key2');
      await assert.rejects(only2.get('/x'), (e: unknown) => isStoreError(e, 'Corrupt') && /encrypted with key "key1", which is not in the encryption key file/.test(e.message));
    } finally {
      await only2.close();
    }
  });

  it('binds a ciphertext to its key: copied under another key it does not decrypt', async () => {
    const path = freshPath();
    const s = encryptingStore(openSqliteStore(path), { keys: [key1], matches: () => true });
    await s.create('/a', 'secret-a');
    await s.close();
    const raw = openSqliteStore(path);
    await raw.create('/b', (await raw.get('/a'))!.value);
    await raw.close();
    const again = encryptingStore(openSqliteStore(path), { keys: [key1], matches: () => true });
    try {
      await assert.rejects(again.get('/b'), (e: unknown) => isStoreError(e, 'Corrupt') && /does not decrypt/.test(e.message));
    } finally {
      await again.close();
    }
  });

  it('creates the key file 0600 and reads it back', () => {
    const path = join(dir, 'encryption.key');
    const created = loadOrCreateKeyFile(path);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const loaded = loadOrCreateKeyFile(path);
    assert.deepEqual(loaded.map((k: EncryptionKey) => [k.name, k.secret.toString('hex')]), created.map((k) => [k.name, k.secret.toString('hex')]));
    writeFileSync(path, formatKeyFile(created), { mode: 0o644 });
    loadOrCreateKeyFile(path);
    assert.equal(statSync(path).mode & 0o777, 0o600, 'a readable key file is narrowed to 0600');
  });

  const bad: Array<{ name: string; text: string; err: RegExp }> = [
    { name: 'empty', text: '\n', err: /holds no key/ },
    { name: 'no name', text: ':' + Buffer.alloc(32).toString('base64'), err: /expected "<name>:<base64 of 32 bytes>"/ },
    { name: 'short key', text: 'k:' + Buffer.alloc(16).toString('base64'), err: /expected/ },
    { name: 'duplicate', text: `k:${Buffer.alloc(32).toString('base64')}\nk:${Buffer.alloc(32, 1).toString('base64')}`, err: /appears twice/ },
  ];
  for (const c of bad) {
    it(`refuses a key file: ${c.name}`, () => assert.throws(() => parseKeyFile(c.text, 'encryption.key'), c.err));
  }
});

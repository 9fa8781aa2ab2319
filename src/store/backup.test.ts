// The backup core: a snapshot is one revision however the store moves meanwhile; the lines round-trip into the
// same keys and values; every kind of damaged file is refused before anything is written; restore goes into an
// empty store only, all or nothing, on SQLite and (when installed) PostgreSQL, 10 000 keys included.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openSqliteStore } from './sqlite/sqlite-store.js';
import { openPostgresStore } from './postgres/postgres-store.js';
import { startTestPostgres } from './postgres/testing.js';
import { encryptValue, encryptingStore, isSecretKey, newEncryptionKey } from './encryption.js';
import { BackupDecoder, BackupEncoder, fileAad, isBackupError, openBackupSecrets, restoreKeys, snapshotPages, type Backup } from './backup.js';
import type { KeyValue, Store } from './types.js';

const pg = await startTestPostgres();
const pgSkip = typeof pg === 'string' ? pg : false;

async function snapshot(store: Store, pageSize = 1000): Promise<{ revision: number; kvs: KeyValue[] }> {
  const kvs: KeyValue[] = [];
  let revision = 0;
  for await (const page of snapshotPages(store, pageSize)) {
    revision = page.revision;
    kvs.push(...page.items);
  }
  return { revision, kvs };
}

function encode(b: Backup): string[] {
  const e = new BackupEncoder();
  const lines = [e.header({ revision: b.header.revision, time: b.header.time, backend: b.header.backend, metalplane: b.header.metalplane })];
  for (const kv of b.kvs) lines.push(e.kv(kv));
  for (const f of b.files) lines.push(e.file(f));
  if (b.encryptionKeys !== undefined) lines.push(e.encryptionKeys(b.encryptionKeys));
  lines.push(e.end());
  return lines;
}

function decode(lines: string[]): Backup {
  const d = new BackupDecoder('test.bak');
  for (const l of lines) d.line(l);
  return d.finish();
}

async function backupOf(store: Store): Promise<Backup> {
  const { revision, kvs } = await snapshot(store);
  return { header: { format: 'metalplane-backup', version: 1, revision, time: new Date(0).toISOString(), backend: 'sqlite', metalplane: 'test' }, kvs, files: [] };
}

const contents = (kvs: KeyValue[]): Array<[string, string]> => kvs.map((kv) => [kv.key, kv.value]);

describe('backup core', () => {
  it('reads every page at the first page\'s revision: writes during the snapshot are not in it', async () => {
    const s = openSqliteStore(':memory:');
    for (let i = 0; i < 10; i++) await s.create(`/k/${String(i).padStart(2, '0')}`, `v${i}`);
    const pages: number[] = [];
    const kvs: KeyValue[] = [];
    for await (const page of snapshotPages(s, 3)) {
      pages.push(page.revision);
      kvs.push(...page.items);
      // Moves the store on between pages: an update, a delete and a create the snapshot must not see.
      if (pages.length === 1) {
        await s.update('/k/05', 'changed');
        await s.delete('/k/09');
        await s.create('/k/99', 'new');
      }
    }
    assert.equal(new Set(pages).size, 1, 'one revision for every page');
    assert.equal(pages.length, 4);
    assert.deepEqual(contents(kvs), Array.from({ length: 10 }, (_, i) => [`/k/${String(i).padStart(2, '0')}`, `v${i}`]));
    await s.close();
  });

  it('round-trips keys, files and keys file through the lines, and restores them in modRevision order', async () => {
    const src = openSqliteStore(':memory:');
    await src.create('/b', 'b1');
    await src.create('/a', 'a1');
    await src.update('/b', 'b2');
    await src.create('/gone', 'x');
    await src.delete('/gone');
    const b = await backupOf(src);
    b.files.push({ name: 'ca.crt', mode: 0o644, data: 'CERT', encrypted: false });
    b.encryptionKeys = 'key1:AAAA\n';
    const back = decode(encode(b));
    assert.deepEqual(back, b);
    const dst = openSqliteStore(':memory:');
    const r = await restoreKeys(dst, back);
    assert.equal(r.keys, 2);
    const restored = await snapshot(dst);
    assert.deepEqual(contents(restored.kvs), [['/a', 'a1'], ['/b', 'b2']]);
    // /a was written before /b's last update at the source: so it is at the target.
    const [a, bb] = restored.kvs;
    assert.ok(a!.modRevision < bb!.modRevision, `order kept: ${a!.modRevision} < ${bb!.modRevision}`);
    await Promise.all([src.close(), dst.close()]);
  });

  const good = encode({
    header: { format: 'metalplane-backup', version: 1, revision: 5, time: 't', backend: 'sqlite', metalplane: 'test' },
    kvs: [
      { key: '/a', value: '1', createRevision: 1, modRevision: 1 },
      { key: '/b', value: '2', createRevision: 2, modRevision: 5 },
    ],
    files: [{ name: 'ca.crt', mode: 0o644, data: 'CERT', encrypted: false }],
  });
  const damaged: Array<{ name: string; lines: string[]; kind: string; message: RegExp }> = [
    { name: 'not JSON at all', lines: ['PK\u0003\u0004garbage'], kind: 'Corrupt', message: /not a metalplane backup/ },
    { name: 'another format', lines: ['{"header":{"format":"etcd"}}', ...good.slice(1)], kind: 'Corrupt', message: /not a metalplane backup/ },
    { name: 'a newer format version', lines: [good[0]!.replace('"version":1', '"version":2'), ...good.slice(1)], kind: 'Version', message: /format version 2; this metalplane reads version 1/ },
    { name: 'truncated: no end record', lines: good.slice(0, 3), kind: 'Corrupt', message: /truncated/ },
    { name: 'empty', lines: [], kind: 'Corrupt', message: /empty/ },
    { name: 'a value altered', lines: [good[0]!, good[1]!.replace('"value":"1"', '"value":"9"'), ...good.slice(2)], kind: 'Corrupt', message: /checksum does not match/ },
    { name: 'a line dropped', lines: [good[0]!, ...good.slice(2)], kind: 'Corrupt', message: /counts 2 keys/ },
    { name: 'a key twice', lines: [good[0]!, good[1]!, good[1]!, ...good.slice(2)], kind: 'Corrupt', message: /"\/a" twice/ },
    { name: 'a broken line', lines: [good[0]!, good[1]!.slice(0, 10), ...good.slice(2)], kind: 'Corrupt', message: /line 2 holds not JSON/ },
    { name: 'a file escaping the data dir', lines: [good[0]!, good[1]!, good[2]!, good[3]!.replace('ca.crt', '../x')], kind: 'Corrupt', message: /plain name/ },
    { name: 'data after the end', lines: [...good, '{"kv":{}}'], kind: 'Corrupt', message: /after the end/ },
  ];
  for (const c of damaged) {
    it(`refuses a backup with ${c.name}`, () => {
      assert.throws(
        () => decode(c.lines),
        (e: unknown) => isBackupError(e) && e.kind === c.kind && c.message.test(e.message),
      );
    });
  }

  it('refuses a non-empty target and leaves it as it was', async () => {
    const dst = openSqliteStore(':memory:');
    await dst.create('/already', 'here');
    const before = await dst.currentRevision();
    await assert.rejects(restoreKeys(dst, decode(good)), (e: unknown) => isBackupError(e, 'NotEmpty') && /holds 1 keys \(e\.g\. \/already\)/.test(e.message));
    assert.equal(await dst.currentRevision(), before);
    assert.equal(await dst.count(''), 1);
    await dst.close();
  });

  it('needs the right encryption key for encrypted values and files, and opens them with it', async () => {
    const key = newEncryptionKey('k1');
    const raw = openSqliteStore(':memory:');
    await encryptingStore(raw, { keys: [key], matches: isSecretKey }).create('/registry/core/secrets/ns/s', '{"data":"secret"}');
    const b = await backupOf(raw);
    b.files.push({ name: 'ca.key', mode: 0o600, data: encryptValue('KEY', fileAad('ca.key'), key), encrypted: true });
    assert.throws(() => openBackupSecrets(b, undefined), (e: unknown) => isBackupError(e, 'MissingKey') && /"k1"/.test(e.message));
    assert.throws(() => openBackupSecrets(b, [newEncryptionKey('k1')]), (e: unknown) => isBackupError(e, 'WrongKey'));
    assert.deepEqual([...openBackupSecrets(b, [key])], [['ca.key', 'KEY']]);
    await raw.close();
  });

  const targets: Array<{ name: string; skip: string | false; open: () => Promise<Store> }> = [
    { name: 'SQLite', skip: false, open: async () => openSqliteStore(':memory:') },
    { name: 'PostgreSQL', skip: pgSkip, open: async () => openPostgresStore(await (pg as Exclude<typeof pg, string>).freshUrl()) },
  ];
  for (const t of targets) {
    it(`restores 10 000 keys into ${t.name} exactly, from a SQLite snapshot`, { skip: t.skip }, async () => {
      const src = openSqliteStore(':memory:');
      const N = 10_000;
      const value = (i: number): string => JSON.stringify({ metadata: { name: `d${i}`, uid: `uid-${i}` }, spec: { pad: 'x'.repeat(200) } });
      for (let i = 0; i < N; i += 1000) await src.commit(Array.from({ length: 1000 }, (_, j) => ({ op: 'create' as const, key: `/registry/devices/ns/d${String(i + j).padStart(5, '0')}`, value: value(i + j) })));
      const b = decode(encode(await backupOf(src)));
      const dst = await t.open();
      try {
        const r = await restoreKeys(dst, b);
        assert.equal(r.keys, N);
        const restored = await snapshot(dst, 777);
        assert.deepEqual(contents(restored.kvs), contents(b.kvs));
        // A second restore finds it non-empty.
        await assert.rejects(restoreKeys(dst, b), (e: unknown) => isBackupError(e, 'NotEmpty'));
      } finally {
        await Promise.all([src.close(), dst.close()]);
      }
    });
  }
});

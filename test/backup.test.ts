// `metalplane backup` and `metalplane restore` as an operator meets them: a backup of a running server, restored
// into a fresh data dir (SQLite) and into PostgreSQL (the migration path), each started with `metalplane up`
// and read with the real kubectl and the old admin token; and every bad case refused with a clear message and
// exit status, nothing written.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubectlOk, runMetalplane, startTestServer, type TestServer } from './helpers/server.js';
import { startTestPostgres } from '../src/store/postgres/testing.js';
import { openStore } from '../src/store/index.js';

const pg = await startTestPostgres();

interface Seen {
  namespaces: Record<string, string>;
  secret: string;
}

/** What kubectl sees of the objects the test made: namespaces by uid, and the secret's decoded value. */
function seen(s: Pick<TestServer, 'kubeconfig'>): Seen {
  const ns = JSON.parse(kubectlOk(s, ['get', 'namespaces', '-o', 'json'])) as { items: Array<{ metadata: { name: string; uid: string } }> };
  const secret = Buffer.from(kubectlOk(s, ['-n', 'backup-a', 'get', 'secret', 'bmc', '-o', 'jsonpath={.data.password}']), 'base64').toString();
  return { namespaces: Object.fromEntries(ns.items.map((i) => [i.metadata.name, i.metadata.uid])), secret };
}

async function adminTokenWorks(s: TestServer, token: string): Promise<number> {
  // The loopback plain-HTTP port answers the kube API too; the token is the old server's.
  const r = await fetch(`${s.plainUrl}/api/v1/namespaces/backup-a`, { headers: { authorization: `Bearer ${token}` } });
  return r.status;
}

describe('metalplane backup / restore', () => {
  const root = mkdtempSync(join(tmpdir(), 'metalplane-backup-'));
  let source: TestServer;
  let before_: Seen;
  let token: string;
  const bak = join(root, 'full.bak');

  before(async () => {
    source = await startTestServer({ dataDir: join(root, 'source') });
    token = source.token;
    for (const ns of ['backup-a', 'backup-b']) kubectlOk(source, ['create', 'namespace', ns]);
    kubectlOk(source, ['-n', 'backup-a', 'create', 'secret', 'generic', 'bmc', '--from-literal=password=hunter2']);
    before_ = seen(source);
  });
  after(async () => {
    await source?.kill();
    rmSync(root, { recursive: true, force: true });
  });

  it('refuses, by default, a backup that could not be restored without the key file, and writes nothing', async () => {
    const file = join(root, 'nokeys.bak');
    const r = await runMetalplane(['backup', file, '--data-dir', source.dataDir]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /could not be restored on its own: pass --include-keys .* or --without-keys/);
    assert.equal(existsSync(file), false);
  });

  it('backs up a running server with --include-keys into one 0600 file, with a json summary', async () => {
    const r = await runMetalplane(['backup', bak, '--data-dir', source.dataDir, '--include-keys', '-o', 'json']);
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { keys: number; revision: number; encryptionKeyIncluded: boolean; files: string[]; backend: string };
    assert.ok(summary.keys > 10, `keys: ${summary.keys}`);
    assert.equal(summary.encryptionKeyIncluded, true);
    assert.equal(summary.backend, 'sqlite');
    assert.deepEqual([...summary.files].sort(), ['admin-token', 'ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    assert.equal(statSync(bak).mode & 0o777, 0o600);
    // Secrets stay encrypted in the file: the password never appears in clear.
    assert.doesNotMatch(gunzipSync(readFileSync(bak)).toString(), /hunter2|aHVudGVyMg/);
    const again = await runMetalplane(['backup', bak, '--data-dir', source.dataDir, '--include-keys']);
    assert.equal(again.status, 2, 'an existing file is never overwritten');
  });

  it('restores into a fresh data dir: the restored server serves the same objects and the old admin token works', async () => {
    const dataDir = join(root, 'restored');
    const r = await runMetalplane(['restore', bak, '--data-dir', dataDir]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /restored \d+ keys .* into sqlite/);
    const s = await startTestServer({ dataDir });
    try {
      assert.deepEqual(seen(s), before_);
      assert.equal(await adminTokenWorks(s, token), 200);
      assert.equal(await adminTokenWorks(s, 'mpl_not-a-token'), 401, 'the check can fail');
      assert.equal(readFileSync(join(dataDir, 'ca.crt'), 'utf8'), source.ca, 'the same CA: old kubeconfigs keep trusting it');
    } finally {
      await s.kill();
    }
    const twice = await runMetalplane(['restore', bak, '--data-dir', dataDir]);
    assert.equal(twice.status, 1);
    assert.match(twice.stderr, /target store is not empty: it holds \d+ keys.*nothing was written/);
  });

  it('restores into PostgreSQL (the migration path) and serves the same objects there', { skip: typeof pg === 'string' ? pg : false }, async () => {
    if (typeof pg === 'string') return;
    const url = await pg.freshUrl();
    const dataDir = join(root, 'on-pg');
    const r = await runMetalplane(['restore', bak, '--data-dir', dataDir, '--store', url, '-o', 'json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { to: string }).to, 'postgres');
    const s = await startTestServer({ dataDir, args: ['--store', url] });
    try {
      assert.deepEqual(seen(s), before_);
      assert.equal(await adminTokenWorks(s, token), 200);
    } finally {
      await s.kill();
    }
    // And back: a backup of the PostgreSQL store restores into SQLite.
    const fromPg = join(root, 'from-pg.bak');
    assert.equal((await runMetalplane(['backup', fromPg, '--data-dir', dataDir, '--store', url, '--include-keys'])).status, 0);
    const back = join(root, 'back');
    assert.equal((await runMetalplane(['restore', fromPg, '--data-dir', back])).status, 0);
    const s2 = await startTestServer({ dataDir: back });
    try {
      assert.deepEqual(seen(s2), before_);
    } finally {
      await s2.kill();
    }
  });

  it('restores a --without-keys backup only with the source\'s key file', async () => {
    const file = join(root, 'without.bak');
    assert.equal((await runMetalplane(['backup', file, '--data-dir', source.dataDir, '--without-keys'])).status, 0);
    const missing = await runMetalplane(['restore', file, '--data-dir', join(root, 'w1')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /no encryption key .*--encryption-key-file/);
    assert.equal(existsSync(join(root, 'w1', 'state.db')), false, 'nothing written');
    const keyCopy = join(root, 'source.key');
    writeFileSync(keyCopy, readFileSync(join(source.dataDir, 'encryption.key')), { mode: 0o600 });
    const ok = await runMetalplane(['restore', file, '--data-dir', join(root, 'w2'), '--encryption-key-file', keyCopy]);
    assert.equal(ok.status, 0, ok.stderr);
    const s = await startTestServer({ dataDir: join(root, 'w2'), args: ['--encryption-key-file', keyCopy] });
    try {
      assert.deepEqual(seen(s), before_);
    } finally {
      await s.kill();
    }
  });

  const full = (): Buffer => gunzipSync(readFileSync(bak));
  const bad: Array<{ name: string; bytes: () => Buffer; status: number; err: RegExp }> = [
    { name: 'a truncated file', bytes: () => readFileSync(bak).subarray(0, Math.floor(readFileSync(bak).length / 2)), status: 1, err: /not a complete gzip'd metalplane backup.*truncated/ },
    { name: 'a file cut at a line', bytes: () => gzipSync(full().subarray(0, full().indexOf('\n', 2000) + 1)), status: 1, err: /truncated: it ends after \d+ keys/ },
    { name: 'a flipped byte', bytes: () => gzipSync(Buffer.from(full().toString().replace('backup-b', 'backup-c'))), status: 1, err: /checksum does not match/ },
    { name: 'a wrong format version', bytes: () => gzipSync(Buffer.from(full().toString().replace('"version":1', '"version":7'))), status: 1, err: /format version 7; this metalplane reads version 1/ },
    { name: 'not a backup at all', bytes: () => Buffer.from('hello\n'), status: 1, err: /not a complete gzip'd metalplane backup/ },
  ];
  for (const c of bad) {
    it(`refuses ${c.name} with exit ${c.status} and writes nothing`, async () => {
      const file = join(root, 'bad.bak');
      writeFileSync(file, c.bytes());
      const dataDir = join(root, `bad-${c.name.replace(/\W+/g, '-')}`);
      const r = await runMetalplane(['restore', file, '--data-dir', dataDir]);
      assert.equal(r.status, c.status, r.stderr);
      assert.match(r.stderr, c.err);
      // Nothing in the target: no database, or an empty one.
      if (existsSync(join(dataDir, 'state.db'))) {
        const st = await openStore(join(dataDir, 'state.db'));
        assert.equal(await st.count(''), 0);
        await st.close();
      }
      assert.equal(existsSync(join(dataDir, 'ca.key')), false);
    });
  }

  it('answers --help and usage mistakes with exit 0 and 2', async () => {
    const help = await runMetalplane(['restore', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Usage: metalplane restore \[options\] <file>[\s\S]*--store <url>/);
    const missing = await runMetalplane(['backup']);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /missing required argument 'file'/);
    const both = await runMetalplane(['backup', join(root, 'x.bak'), '--include-keys', '--without-keys', '--data-dir', source.dataDir]);
    assert.equal(both.status, 2);
    assert.match(both.stderr, /exclude each other/);
  });
});

// `metalplane backup FILE` and `metalplane restore FILE`: the I/O edge around src/store/backup.ts. A backup is
// one gzip'd JSON-lines file (mode 0600): the store at one revision, values as stored (secrets stay encrypted),
// the data dir's CA, serving certificate and admin token (the secret ones encrypted with the store's key), and
// the encryption key itself only with --include-keys. Restore goes into an empty store (SQLite or PostgreSQL,
// whichever the backup came from) in one transaction, then writes the files.
import { Command, Option } from 'commander';
import { UsageError } from './usage.js';
import { createReadStream, createWriteStream, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join, resolve, dirname, basename } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { isSharedStoreUrl, openStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { encryptValue, formatKeyFile, parseKeyFile, type EncryptionKey } from '../store/encryption.js';
import { BackupDecoder, BackupEncoder, BackupError, fileAad, isEncryptedValue, openBackupSecrets, restoreKeys, snapshotPages, type Backup, type BackupFile } from '../store/backup.js';
import { CA_CERT_FILE, CA_KEY_FILE, SERVING_CERT_FILE, SERVING_KEY_FILE } from '../server/tls/certs.js';
import { prepareDataDir } from '../server/data-dir.js';
import { METALPLANE_VERSION } from '../version.js';

/** The data-dir files a backup carries; the kubeconfig is not one (`metalplane up` writes it on every start). */
const DATA_DIR_FILES: ReadonlyArray<{ name: string; secret: boolean }> = [
  { name: CA_CERT_FILE, secret: false },
  { name: CA_KEY_FILE, secret: true },
  { name: SERVING_CERT_FILE, secret: false },
  { name: SERVING_KEY_FILE, secret: true },
  { name: 'admin-token', secret: true },
];

interface CommonOptions {
  dataDir: string;
  store?: string;
  encryptionKeyFile?: string;
  output?: string;
}

interface BackupOptions extends CommonOptions {
  includeKeys?: boolean;
  withoutKeys?: boolean;
}

function addCommonOptions(c: Command, verb: string): Command {
  // addCommand() does not pass the program's settings down: a usage mistake must still reach main() (exit 2).
  return c
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .option('--data-dir <dir>', `the data dir to ${verb} (CA, serving certificate, admin token; state.db unless --store)`, './.metalplane')
    .option('--store <url>', 'sqlite:PATH (default: sqlite:<data-dir>/state.db) or postgres://user:pass@host:port/db[?schema=NAME] (env METALPLANE_STORE)')
    .option('--encryption-key-file <file>', 'the at-rest encryption keys (default: <data-dir>/encryption.key)')
    .addOption(new Option('-o, --output <format>', 'print a summary as json').choices(['json']));
}

export function backupCommands(): Command[] {
  const backup = addCommonOptions(
    new Command('backup')
      .description('write a consistent snapshot of the store (at one revision) and the data dir\'s CA and keys to FILE (gzip\'d JSON lines, mode 0600)')
      .argument('<file>', 'the backup file to write (refused if it exists)'),
    'back up',
  )
    .option('--include-keys', 'put the encryption key into the backup, so it restores on its own (guard the file like the data dir)')
    .option('--without-keys', 'leave the encryption key out: you keep the key file elsewhere, and restore needs it (--encryption-key-file)')
    .action(async (file: string, o: BackupOptions) => {
      await runBackup(file, o);
    });
  const restore = addCommonOptions(
    new Command('restore')
      .description('restore a backup into an empty store (SQLite or PostgreSQL) and data dir, in one transaction; revisions are re-assigned in their original order')
      .argument('<file>', 'the backup file to read'),
    'restore into',
  ).action(async (file: string, o: CommonOptions) => {
    await runRestore(file, o);
  });
  return [backup, restore];
}

function storeUrlOf(o: CommonOptions, dataDir: string): string {
  return o.store ?? (process.env.METALPLANE_STORE || `sqlite:${join(dataDir, 'state.db')}`);
}

/** The file a sqlite: URL names (as openStore reads it), to refuse backing up one that does not exist. */
function sqlitePath(url: string): string | undefined {
  if (isSharedStoreUrl(url)) return undefined;
  let path = url.replace(/^sqlite:/i, '');
  if (path.startsWith('//')) path = path.slice(2);
  return path === ':memory:' ? undefined : path;
}

function readKeys(path: string): EncryptionKey[] | undefined {
  return existsSync(path) ? parseKeyFile(readFileSync(path, 'utf8'), path) : undefined;
}

/** Writes progress to stderr once a run has taken over a second, at most twice a second. */
function progress(what: string): (done: number, total: number) => void {
  const started = Date.now();
  let last = 0;
  return (done, total) => {
    const now = Date.now();
    if (now - started < 1000 || now - last < 500) return;
    last = now;
    process.stderr.write(`${what}: ${done}/${total} keys\n`);
  };
}

async function runBackup(file: string, o: BackupOptions): Promise<void> {
  if (o.includeKeys && o.withoutKeys) throw new UsageError('--include-keys and --without-keys exclude each other: give one');
  const target = resolve(file);
  if (existsSync(target)) throw new UsageError(`${file} exists: give a new file name (a backup never overwrites one)`);
  const dataDir = resolve(o.dataDir);
  const url = storeUrlOf(o, dataDir);
  const dbPath = sqlitePath(url);
  if (dbPath !== undefined && !existsSync(dbPath)) throw new UsageError(`there is no store at ${dbPath}: give the --data-dir metalplane up used, or --store`);
  const keyFile = o.encryptionKeyFile ? resolve(o.encryptionKeyFile) : join(dataDir, 'encryption.key');
  const keys = readKeys(keyFile);

  const files: Array<{ name: string; secret: boolean; mode: number; data: string }> = [];
  for (const f of DATA_DIR_FILES) {
    const p = join(dataDir, f.name);
    if (existsSync(p)) files.push({ ...f, mode: statSync(p).mode & 0o777, data: readFileSync(p, 'utf8') });
  }

  const started = Date.now();
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
  const store = await openStore(url);
  let summary: Record<string, unknown>;
  try {
    // Read the whole snapshot first: whether it holds encrypted values decides whether it may be written at all.
    const encoder = new BackupEncoder();
    const lines: string[] = [];
    let revision = 0;
    let encrypted = 0;
    let count = 0;
    const report = progress('backup');
    for await (const page of snapshotPages(store)) {
      if (lines.length === 0) {
        revision = page.revision;
        lines.push(encoder.header({ revision, time: new Date().toISOString(), backend: isSharedStoreUrl(url) ? 'postgres' : 'sqlite', metalplane: METALPLANE_VERSION }));
      }
      for (const kv of page.items) {
        if (isEncryptedValue(kv.value)) encrypted++;
        count++;
        lines.push(encoder.kv(kv));
      }
      report(page.done, page.done + page.remaining);
    }
    const secretFiles = files.filter((f) => f.secret);
    if ((encrypted > 0 || secretFiles.length > 0) && keys === undefined) {
      throw new BackupError('MissingKey', `the store holds ${encrypted} encrypted values and the data dir ${secretFiles.length} secret files, but there is no encryption key at ${keyFile}: give --encryption-key-file`);
    }
    if ((encrypted > 0 || secretFiles.length > 0) && !o.includeKeys && !o.withoutKeys) {
      throw new BackupError(
        'MissingKey',
        `the backup would hold ${encrypted} encrypted values and ${secretFiles.length} encrypted files that only ${keyFile} can decrypt, so it could not be restored on its own: ` +
          'pass --include-keys to put the key in the backup (then guard the file like the data dir), or --without-keys if you keep the key file safe elsewhere (restore then needs --encryption-key-file); nothing was written',
      );
    }
    for (const f of files) {
      const rec: BackupFile = f.secret ? { name: f.name, mode: 0o600, data: encryptValue(f.data, fileAad(f.name), keys![0]!), encrypted: true } : { name: f.name, mode: f.mode, data: f.data, encrypted: false };
      lines.push(encoder.file(rec));
    }
    if (o.includeKeys && keys) lines.push(encoder.encryptionKeys(formatKeyFile(keys)));
    lines.push(encoder.end());

    const out = createWriteStream(tmp, { mode: 0o600, flags: 'wx' });
    await pipeline(Readable.from(lines.map((l) => l + '\n')), createGzip(), out);
    chmodSync(tmp, 0o600);
    renameSync(tmp, target);
    summary = {
      file: target,
      revision,
      keys: count,
      encryptedValues: encrypted,
      files: files.map((f) => f.name),
      encryptionKeyIncluded: Boolean(o.includeKeys && keys),
      backend: isSharedStoreUrl(url) ? 'postgres' : 'sqlite',
      bytes: statSync(target).size,
      seconds: (Date.now() - started) / 1000,
    };
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  } finally {
    await store.close();
  }
  if (o.output === 'json') process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  else {
    process.stdout.write(
      `backed up ${String(summary.keys)} keys at revision ${String(summary.revision)} (${String(summary.backend)}) and ${files.length} files to ${target} (${String(summary.bytes)} bytes, ${String(summary.seconds)} s)` +
        `${summary.encryptionKeyIncluded ? '; it holds the encryption key: keep it as safe as the data dir' : ''}\n`,
    );
  }
}

/** Reads and checks the whole backup file; nothing is trusted (or written) before this returns. */
export async function readBackupFile(file: string): Promise<Backup> {
  const decoder = new BackupDecoder(file);
  const gunzip = createGunzip();
  const input = createReadStream(file);
  const lines = createInterface({ input: input.pipe(gunzip), crlfDelay: Infinity });
  // A gzip error (truncated, not gzip at all) ends the line reader early; keep it to report it.
  let streamError: Error | undefined;
  const onError = (e: Error): void => {
    streamError ??= e;
    lines.close();
  };
  input.on('error', onError);
  gunzip.on('error', onError);
  try {
    for await (const line of lines) decoder.line(line);
  } catch (e) {
    if (streamError === undefined) throw e;
  } finally {
    input.destroy();
  }
  if (streamError) {
    const code = (streamError as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') throw new UsageError(`cannot read ${file}: ${streamError.message}`);
    throw new BackupError('Corrupt', `${file} is not a complete gzip'd metalplane backup (${streamError.message}): it is truncated or damaged; nothing was restored`);
  }
  return decoder.finish();
}

async function runRestore(file: string, o: CommonOptions): Promise<void> {
  const started = Date.now();
  const source = resolve(file);
  if (!existsSync(source)) throw new UsageError(`${file} does not exist: give a file written by metalplane backup`);
  const backup = await readBackupFile(source);
  const dataDir = resolve(o.dataDir);
  const keyFile = o.encryptionKeyFile ? resolve(o.encryptionKeyFile) : join(dataDir, 'encryption.key');
  const includedKeys = backup.encryptionKeys === undefined ? undefined : parseKeyFile(backup.encryptionKeys, `${file} (its encryption keys)`);
  const keys = includedKeys ?? readKeys(keyFile);
  // Every secret must decrypt with the keys the restored server will have, before anything is written.
  const plainFiles = openBackupSecrets(backup, keys);

  // Files the data dir already holds must be the backup's, or the restored server would mix two identities.
  prepareDataDir(dataDir);
  const toWrite: Array<{ path: string; data: string; mode: number }> = backup.files.map((f) => ({ path: join(dataDir, f.name), data: plainFiles.get(f.name)!, mode: f.encrypted ? 0o600 : f.mode & 0o644 }));
  if (includedKeys) toWrite.push({ path: keyFile, data: backup.encryptionKeys!, mode: 0o600 });
  for (const w of toWrite) {
    if (existsSync(w.path) && readFileSync(w.path, 'utf8') !== w.data) {
      throw new BackupError('NotEmpty', `${w.path} exists and differs from the backup's: restore into a fresh --data-dir (or move the file away); nothing was written`);
    }
  }

  const url = storeUrlOf(o, dataDir);
  let store: Store | undefined;
  let result;
  try {
    store = await openStore(url);
    if (backup.kvs.length > 2000) process.stderr.write(`restore: writing ${backup.kvs.length} keys in one transaction\n`);
    result = await restoreKeys(store, backup);
  } finally {
    await store?.close();
  }
  for (const w of toWrite) {
    if (existsSync(w.path)) continue;
    const tmp = `${w.path}.${process.pid}.tmp`;
    writeFileSync(tmp, w.data, { mode: w.mode, flag: 'wx' });
    chmodSync(tmp, w.mode);
    renameSync(tmp, w.path);
  }
  const summary = {
    file: source,
    backupRevision: backup.header.revision,
    backupTime: backup.header.time,
    from: backup.header.backend,
    to: isSharedStoreUrl(url) ? 'postgres' : 'sqlite',
    keys: result.keys,
    revision: result.revision,
    files: backup.files.map((f) => f.name),
    encryptionKeyRestored: includedKeys !== undefined,
    seconds: (Date.now() - started) / 1000,
  };
  if (o.output === 'json') process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  else {
    process.stdout.write(
      `restored ${summary.keys} keys (backup of ${summary.backupTime}, ${summary.from} revision ${summary.backupRevision}) into ${summary.to}, now at revision ${summary.revision}, and ${summary.files.length} files into ${dataDir} (${summary.seconds} s)\n` +
        `start it with: metalplane up --data-dir ${dataDir}${o.store ? ' --store …' : ''}${o.encryptionKeyFile && !includedKeys ? ` --encryption-key-file ${keyFile}` : ''}\n`,
    );
  }
}

// Backup and restore of a Store: a consistent snapshot at one revision, as JSON lines (the CLI gzips them into
// one file: src/cli/backup.ts). The core here knows nothing of files or the data dir; it reads pages of a Store,
// turns records into lines and lines back into a validated Backup, and restores one into an empty Store.
//
// The file, line by line:
//   {"header": {format, version, revision, time, backend, metalplane}}
//   {"kv": {key, value, createRevision, modRevision}}            one per live key, in key order
//   {"file": {name, mode, data, encrypted}}                       data-dir files (CA, keys, admin token)
//   {"encryptionKeys": "<key file text>"}                         only with --include-keys
//   {"end": {kvs, files, sha256}}                                 counts and the SHA-256 of every line above
// Values are copied as stored: secrets stay encrypted with the data dir's key (src/store/encryption.ts), and so
// a backup without the key cannot be restored without it. The trailer makes truncation and tampering an error
// before anything is written.
//
// What restore guarantees: the same keys with the same values (so the same uids, specs and statuses), written in
// ONE commit into an empty store, in the order of their original modRevision. Revisions are re-assigned: the
// target numbers them from its own next revision, so resourceVersions may differ from the source's, but their
// relative order is the source's. History (older versions, deleted keys) is not carried: watchers and lists
// with an old resourceVersion get 410 Gone and re-list, as after any compaction.
import { createHash, type Hash } from 'node:crypto';
import { decryptValue, ENCRYPTION_PREFIX, type EncryptionKey } from './encryption.js';
import { isKeyExists } from './errors.js';
import type { KeyValue, Store, WriteOp } from './types.js';

export const BACKUP_FORMAT = 'metalplane-backup';
export const BACKUP_VERSION = 1;

export interface BackupHeader {
  format: typeof BACKUP_FORMAT;
  version: number;
  /** The revision the snapshot was read at. */
  revision: number;
  /** When the snapshot was taken (ISO 8601). */
  time: string;
  backend: 'sqlite' | 'postgres';
  /** The metalplane version that wrote it. */
  metalplane: string;
}

/** A file of the data dir. Secret files (keys, the admin token) are encrypted with the store's encryption key. */
export interface BackupFile {
  name: string;
  mode: number;
  /** The file's text, or for `encrypted`, an encrypted value (ENCRYPTION_PREFIX…) with AAD `file:<name>`. */
  data: string;
  encrypted: boolean;
}

export interface Backup {
  header: BackupHeader;
  kvs: KeyValue[];
  files: BackupFile[];
  /** The encryption key file's text, when the backup was written with --include-keys. */
  encryptionKeys?: string;
}

export type BackupErrorKind = 'Corrupt' | 'Version' | 'NotEmpty' | 'MissingKey' | 'WrongKey';

/** A backup that cannot be written or restored; the message says why and what to do. */
export class BackupError extends Error {
  override readonly name = 'BackupError';
  constructor(
    readonly kind: BackupErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export const isBackupError = (e: unknown, kind?: BackupErrorKind): e is BackupError => e instanceof BackupError && (kind === undefined || e.kind === kind);

/** The AAD of an encrypted data-dir file, distinct from every store key (those start with "/"). */
export const fileAad = (name: string): string => `file:${name}`;

export const isEncryptedValue = (value: string): boolean => value.startsWith(ENCRYPTION_PREFIX);

export interface SnapshotPage {
  revision: number;
  items: KeyValue[];
  /** Keys read so far, this page included. */
  done: number;
  /** Keys still to read after this page. */
  remaining: number;
}

/**
 * Every live key of `store`, page by page, all read at the revision of the first page: a consistent snapshot
 * however long it takes (unless compaction passes that revision meanwhile: then a page fails with Compacted).
 */
export async function* snapshotPages(store: Store, pageSize = 1000): AsyncGenerator<SnapshotPage> {
  let revision = 0;
  let startAfter: string | undefined;
  let done = 0;
  for (;;) {
    const page = await store.list('', { revision, limit: pageSize, startAfter });
    revision = page.revision;
    done += page.items.length;
    yield { revision, items: page.items, done, remaining: page.more ? (page.remaining ?? 0) : 0 };
    if (!page.more || page.items.length === 0) return;
    startAfter = page.items[page.items.length - 1]!.key;
  }
}

/** Turns records into the file's lines (each without its newline), keeping the running hash for the trailer. */
export class BackupEncoder {
  private readonly hash: Hash = createHash('sha256');
  private kvs = 0;
  private files = 0;
  private stage: 'header' | 'body' | 'ended' = 'header';

  header(h: Omit<BackupHeader, 'format' | 'version'>): string {
    if (this.stage !== 'header') throw new Error('BackupEncoder: header must come first, once');
    this.stage = 'body';
    return this.line({ header: { format: BACKUP_FORMAT, version: BACKUP_VERSION, ...h } });
  }

  kv(kv: KeyValue): string {
    this.body();
    this.kvs++;
    return this.line({ kv: { key: kv.key, value: kv.value, createRevision: kv.createRevision, modRevision: kv.modRevision } });
  }

  file(f: BackupFile): string {
    this.body();
    this.files++;
    return this.line({ file: f });
  }

  encryptionKeys(text: string): string {
    this.body();
    return this.line({ encryptionKeys: text });
  }

  end(): string {
    this.body();
    this.stage = 'ended';
    return JSON.stringify({ end: { kvs: this.kvs, files: this.files, sha256: this.hash.digest('hex') } });
  }

  private body(): void {
    if (this.stage !== 'body') throw new Error(`BackupEncoder: no record ${this.stage === 'header' ? 'before the header' : 'after the end'}`);
  }

  private line(record: unknown): string {
    const text = JSON.stringify(record);
    this.hash.update(text + '\n');
    return text;
  }
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isRevision = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/**
 * Reads the file's lines back into a Backup, checking everything: the format and version first, every record's
 * shape, no key twice, and the trailer's counts and hash. Nothing is trusted until `finish()` returned.
 */
export class BackupDecoder {
  private readonly hash: Hash = createHash('sha256');
  private header?: BackupHeader;
  private readonly kvs: KeyValue[] = [];
  private readonly keys = new Set<string>();
  private readonly files: BackupFile[] = [];
  private encryptionKeys?: string;
  private ended = false;
  private lineNo = 0;

  constructor(private readonly source = 'the backup') {}

  line(text: string): void {
    this.lineNo++;
    if (this.ended) {
      if (text.trim() === '') return;
      throw this.corrupt('data after the end record');
    }
    let record: unknown;
    try {
      record = JSON.parse(text);
    } catch {
      throw this.lineNo === 1
        ? new BackupError('Corrupt', `${this.source} is not a metalplane backup (its first line is not JSON)`)
        : this.corrupt('not JSON (the file is damaged)');
    }
    if (!isObject(record)) throw this.corrupt('not a record');
    if (this.header === undefined) {
      this.readHeader(record);
    } else if ('kv' in record) {
      this.readKv(record.kv);
    } else if ('file' in record) {
      this.readFile(record.file);
    } else if ('encryptionKeys' in record) {
      if (typeof record.encryptionKeys !== 'string' || this.encryptionKeys !== undefined) throw this.corrupt('a bad or second encryptionKeys record');
      this.encryptionKeys = record.encryptionKeys;
    } else if ('end' in record) {
      this.readEnd(record.end);
      return;
    } else {
      throw this.corrupt(`an unknown record (keys: ${Object.keys(record).join(', ')})`);
    }
    this.hash.update(text + '\n');
  }

  finish(): Backup {
    if (this.header === undefined) throw new BackupError('Corrupt', `${this.source} is empty: not a metalplane backup`);
    if (!this.ended) {
      throw new BackupError('Corrupt', `${this.source} is truncated: it ends after ${this.kvs.length} keys without its end record (nothing was restored; use a complete backup)`);
    }
    return { header: this.header, kvs: this.kvs, files: this.files, ...(this.encryptionKeys !== undefined ? { encryptionKeys: this.encryptionKeys } : {}) };
  }

  private readHeader(record: Json): void {
    const h = record.header;
    if (!isObject(h) || h.format !== BACKUP_FORMAT) throw new BackupError('Corrupt', `${this.source} is not a metalplane backup (no "${BACKUP_FORMAT}" header on its first line)`);
    if (h.version !== BACKUP_VERSION) {
      throw new BackupError('Version', `${this.source} has backup format version ${JSON.stringify(h.version)}; this metalplane reads version ${BACKUP_VERSION} (restore it with the metalplane that wrote it${typeof h.metalplane === 'string' ? `, ${h.metalplane}` : ''})`);
    }
    if (!isRevision(h.revision) && h.revision !== 0) throw this.corrupt('a header without a revision');
    if (typeof h.time !== 'string' || (h.backend !== 'sqlite' && h.backend !== 'postgres') || typeof h.metalplane !== 'string') throw this.corrupt('an incomplete header');
    this.header = { format: BACKUP_FORMAT, version: BACKUP_VERSION, revision: h.revision as number, time: h.time, backend: h.backend, metalplane: h.metalplane };
  }

  private readKv(v: unknown): void {
    if (!isObject(v) || typeof v.key !== 'string' || v.key === '' || typeof v.value !== 'string' || !isRevision(v.createRevision) || !isRevision(v.modRevision)) {
      throw this.corrupt('a key record without key, value and revisions');
    }
    if (this.keys.has(v.key)) throw this.corrupt(`key "${v.key}" twice`);
    if (this.header && v.modRevision > this.header.revision) throw this.corrupt(`key "${v.key}" at revision ${v.modRevision}, after the snapshot's ${this.header.revision}`);
    this.keys.add(v.key);
    this.kvs.push({ key: v.key, value: v.value, createRevision: v.createRevision, modRevision: v.modRevision });
  }

  private readFile(v: unknown): void {
    if (!isObject(v) || typeof v.name !== 'string' || !/^[A-Za-z0-9._-]+$/.test(v.name) || v.name.startsWith('.') || typeof v.data !== 'string' || typeof v.encrypted !== 'boolean' || typeof v.mode !== 'number') {
      throw this.corrupt('a bad file record (a file name must be a plain name inside the data dir)');
    }
    if (this.files.some((f) => f.name === v.name)) throw this.corrupt(`file "${v.name}" twice`);
    this.files.push({ name: v.name, mode: v.mode & 0o777, data: v.data, encrypted: v.encrypted });
  }

  private readEnd(v: unknown): void {
    if (!isObject(v) || typeof v.sha256 !== 'string') throw this.corrupt('a bad end record');
    if (v.kvs !== this.kvs.length || v.files !== this.files.length) {
      throw this.corrupt(`the end record counts ${String(v.kvs)} keys and ${String(v.files)} files, the file holds ${this.kvs.length} and ${this.files.length}`);
    }
    if (v.sha256 !== this.hash.digest('hex')) throw new BackupError('Corrupt', `${this.source} is damaged: its checksum does not match its contents (nothing was restored)`);
    this.ended = true;
  }

  private corrupt(what: string): BackupError {
    return new BackupError('Corrupt', `${this.source} is damaged: line ${this.lineNo} holds ${what} (nothing was restored)`);
  }
}

/** Names of the encryption keys the backup's encrypted values and files need. */
export function keysNeeded(b: Pick<Backup, 'kvs' | 'files'>): Set<string> {
  const names = new Set<string>();
  const add = (value: string): void => {
    if (!isEncryptedValue(value)) return;
    const rest = value.slice(ENCRYPTION_PREFIX.length);
    names.add(rest.slice(0, rest.indexOf(':')));
  };
  for (const kv of b.kvs) add(kv.value);
  for (const f of b.files) if (f.encrypted) add(f.data);
  return names;
}

/**
 * Checks that `keys` decrypt every encrypted value and file of the backup (so a restored server can read its
 * secrets), and returns the files' plain text. Throws MissingKey / WrongKey before anything is written.
 */
export function openBackupSecrets(b: Backup, keys: readonly EncryptionKey[] | undefined): Map<string, string> {
  const needed = keysNeeded(b);
  if (needed.size > 0 && (keys === undefined || keys.length === 0)) {
    throw new BackupError(
      'MissingKey',
      `the backup holds values encrypted with key ${[...needed].map((n) => `"${n}"`).join(', ')} and no encryption key (it was written without --include-keys): pass the source's key file with --encryption-key-file`,
    );
  }
  const wrong = (e: unknown): BackupError => new BackupError('WrongKey', `${e instanceof Error ? e.message : String(e)}: pass the encryption key file of the server the backup was taken from`);
  try {
    for (const kv of b.kvs) if (isEncryptedValue(kv.value)) decryptValue(kv.value, kv.key, keys!);
  } catch (e) {
    throw wrong(e);
  }
  const files = new Map<string, string>();
  for (const f of b.files) {
    try {
      files.set(f.name, f.encrypted ? decryptValue(f.data, fileAad(f.name), keys ?? []) : f.data);
    } catch (e) {
      throw wrong(e);
    }
  }
  return files;
}

export interface RestoreResult {
  keys: number;
  /** The target's revision after the restore. */
  revision: number;
}

/**
 * Writes every key of `b` into `store` in one commit, oldest modRevision first, after checking that the store
 * holds no key: all or nothing. A key that appeared meanwhile (another writer) fails the commit as a whole.
 */
export async function restoreKeys(store: Store, b: Pick<Backup, 'kvs'>): Promise<RestoreResult> {
  await assertEmpty(store);
  const ops: WriteOp[] = [...b.kvs].sort((x, y) => x.modRevision - y.modRevision).map((kv) => ({ op: 'create', key: kv.key, value: kv.value }));
  try {
    await store.commit(ops);
  } catch (e) {
    if (isKeyExists(e)) throw notEmpty(`another writer created keys meanwhile (${e instanceof Error ? e.message : String(e)})`);
    throw e;
  }
  return { keys: ops.length, revision: await store.currentRevision() };
}

async function assertEmpty(store: Store): Promise<void> {
  const first = await store.list('', { limit: 1 });
  if (first.items.length === 0) return;
  const count = first.items.length + (first.remaining ?? 0);
  throw notEmpty(`it holds ${count} keys (e.g. ${first.items[0]!.key})`);
}

const notEmpty = (why: string): BackupError =>
  new BackupError('NotEmpty', `the target store is not empty: ${why}. Restore goes into an empty store only: give a fresh --data-dir, or an empty --store (a new database or ?schema=NAME); nothing was written`);

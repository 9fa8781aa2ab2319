// Encryption at rest for secret-bearing values, after Kubernetes' EncryptionConfiguration (aesgcm provider):
// a Store wrapper that encrypts the values of matching keys on every write and decrypts them on every read
// path (get, list, delete results, commit results, watch events and their prevKv). Values are stored as
//
//   k8s:enc:aesgcm:v1:<key name>:<base64(nonce ‖ ciphertext ‖ tag)>
//
// with the store key as additional authenticated data, so a ciphertext copied to another key does not decrypt.
// Values without the prefix (written before encryption was enabled) read as they are and are encrypted on their
// next write. Several keys may be configured: the first encrypts, all decrypt, so a key can be rotated by
// putting a new one first and rewriting the values.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { StoreError, isKeyNotFound, isRevisionMismatch } from './errors.js';
import type { KeyValue, ListOptions, ListResult, Store, StoreEvent, WatchHandle, WatchOptions, WriteOp } from './types.js';

export const ENCRYPTION_PREFIX = 'k8s:enc:aesgcm:v1:';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

export interface EncryptionKey {
  /** Names the key inside each value, so the right one decrypts it after a rotation. */
  name: string;
  /** 32 bytes (AES-256). */
  secret: Buffer;
}

export interface EncryptionConfig {
  /** The first key encrypts; every key decrypts. */
  keys: EncryptionKey[];
  /** Whether the value of this store key is encrypted. */
  matches: (key: string) => boolean;
}

/**
 * What metalplane keeps secret: Secret objects (BMC passwords, user credentials) and the provisioning token
 * signing key (src/provisioning/tokens.ts), and the CA key replicas share (src/server/shared-identity.ts).
 */
export const SECRET_KEY_PREFIXES: readonly string[] = ['/registry/core/secrets/', '/metalplane/provisioning-signing-key', '/metalplane/identity/'];

export function isSecretKey(key: string): boolean {
  return SECRET_KEY_PREFIXES.some((p) => key.startsWith(p));
}

const KEY_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function encryptValue(value: string, storeKey: string, key: EncryptionKey): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.secret, nonce);
  cipher.setAAD(Buffer.from(storeKey, 'utf8'));
  const body = Buffer.concat([nonce, cipher.update(value, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return `${ENCRYPTION_PREFIX}${key.name}:${body.toString('base64')}`;
}

/** The plain value: decrypted when it carries the prefix, as stored otherwise. */
export function decryptValue(value: string, storeKey: string, keys: readonly EncryptionKey[]): string {
  if (!value.startsWith(ENCRYPTION_PREFIX)) return value;
  const rest = value.slice(ENCRYPTION_PREFIX.length);
  const colon = rest.indexOf(':');
  const name = colon > 0 ? rest.slice(0, colon) : '';
  const key = keys.find((k) => k.name === name);
  if (!key) {
    throw new StoreError('Corrupt', `${storeKey} is encrypted with key "${name}", which is not in the encryption key file (known: ${keys.map((k) => k.name).join(', ') || 'none'})`);
  }
  const body = Buffer.from(rest.slice(colon + 1), 'base64');
  if (body.length < NONCE_BYTES + TAG_BYTES) throw new StoreError('Corrupt', `${storeKey}: the encrypted value is truncated`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.secret, body.subarray(0, NONCE_BYTES));
    decipher.setAAD(Buffer.from(storeKey, 'utf8'));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    return Buffer.concat([decipher.update(body.subarray(NONCE_BYTES, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    throw new StoreError('Corrupt', `${storeKey}: the value does not decrypt with key "${name}" (wrong key, or the value was altered)`);
  }
}

/** A Store that encrypts the values of `config.matches` keys; everything else passes through untouched. */
export function encryptingStore(inner: Store, config: EncryptionConfig): Store {
  if (config.keys.length === 0) throw new Error('encryptingStore: at least one key is needed');
  const writeKey = config.keys[0]!;
  const seal = (key: string, value: string): string => (config.matches(key) ? encryptValue(value, key, writeKey) : value);
  const open = (kv: KeyValue): KeyValue => (config.matches(kv.key) ? { ...kv, value: decryptValue(kv.value, kv.key, config.keys) } : kv);
  const openEvent = (e: StoreEvent): StoreEvent => {
    if (!config.matches(e.kv.key)) return e;
    return e.prevKv ? { type: e.type, kv: open(e.kv), prevKv: open(e.prevKv) } : { type: e.type, kv: open(e.kv) };
  };
  const sealOp = (op: WriteOp): WriteOp => (op.op === 'create' || op.op === 'update' ? { ...op, value: seal(op.key, op.value) } : op);
  return {
    currentRevision: () => inner.currentRevision(),
    compactedRevision: () => inner.compactedRevision(),
    get: async (key: string, revision?: number) => {
      const kv = await inner.get(key, revision);
      return kv && open(kv);
    },
    list: async (prefix: string, opts?: ListOptions): Promise<ListResult> => {
      const r = await inner.list(prefix, opts);
      // Most lists hold no secret: keep the store's own array then.
      return r.items.some((kv) => config.matches(kv.key)) ? { ...r, items: r.items.map(open) } : r;
    },
    count: (prefix: string) => inner.count(prefix),
    create: async (key: string, value: string) => open(await inner.create(key, seal(key, value))),
    update: async (key: string, value: string, expectedRevision?: number) => open(await inner.update(key, seal(key, value), expectedRevision)),
    delete: async (key: string, expectedRevision?: number) => open(await inner.delete(key, expectedRevision)),
    commit: async (ops: WriteOp[]) => (await inner.commit(ops.map(sealOp))).map(open),
    watch: (prefix: string, opts: WatchOptions): Promise<WatchHandle> =>
      inner.watch(prefix, {
        ...opts,
        onEvents: (events) => opts.onEvents(events.some((e) => config.matches(e.kv.key)) ? events.map(openEvent) : events),
      }),
    compact: (revision: number) => inner.compact(revision),
    startCompaction: (opts) => inner.startCompaction(opts),
    close: () => inner.close(),
  };
}

export function newEncryptionKey(name = 'key1'): EncryptionKey {
  return { name, secret: randomBytes(KEY_BYTES) };
}

/** The key file's text: one `<name>:<base64 of 32 bytes>` per line, the encrypting key first. */
export function formatKeyFile(keys: readonly EncryptionKey[]): string {
  return keys.map((k) => `${k.name}:${k.secret.toString('base64')}`).join('\n') + '\n';
}

export function parseKeyFile(text: string, path: string): EncryptionKey[] {
  const keys: EncryptionKey[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    const secret = Buffer.from(line.slice(colon + 1), 'base64');
    if (colon <= 0 || !KEY_NAME.test(name) || secret.length !== KEY_BYTES) {
      throw new Error(`${path}:${i + 1}: expected "<name>:<base64 of ${KEY_BYTES} bytes>" (name of letters, digits, - and _)`);
    }
    if (keys.some((k) => k.name === name)) throw new Error(`${path}:${i + 1}: key "${name}" appears twice`);
    keys.push({ name, secret });
  }
  if (keys.length === 0) throw new Error(`${path} holds no key: expected lines "<name>:<base64 of ${KEY_BYTES} bytes>"`);
  return keys;
}

/**
 * The keys in `path`, creating the file (mode 0600) with one new key on first start. A file others can read is
 * narrowed to 0600: it is ours, and with it the secrets in the database are readable.
 */
export function loadOrCreateKeyFile(path: string): EncryptionKey[] {
  if (!existsSync(path)) {
    const keys = [newEncryptionKey()];
    writeFileSync(path, formatKeyFile(keys), { mode: 0o600, flag: 'wx' });
    chmodSync(path, 0o600);
    return keys;
  }
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  return parseKeyFile(readFileSync(path, 'utf8'), path);
}

/**
 * Rewrites the matching values that are still stored in clear (written before encryption was enabled), so they
 * are encrypted from now on; returns how many. Older revisions keep their clear text until compaction removes
 * them. A value changed meanwhile is left to its writer (which encrypts it).
 */
export async function encryptPlainValues(raw: Store, encrypted: Store, prefixes: readonly string[]): Promise<number> {
  let rewritten = 0;
  for (const prefix of prefixes) {
    for (const kv of (await raw.list(prefix)).items) {
      if (kv.value.startsWith(ENCRYPTION_PREFIX)) continue;
      try {
        await encrypted.update(kv.key, kv.value, kv.modRevision);
        rewritten++;
      } catch (e) {
        if (!isRevisionMismatch(e) && !isKeyNotFound(e)) throw e;
      }
    }
  }
  return rewritten;
}

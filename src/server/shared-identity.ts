// The identity replicas share when they share a store (PostgreSQL): the CA that signs every replica's serving
// certificate, kept in the store (encrypted at rest: src/store/encryption.ts), so a kubeconfig or a machine
// that trusts one replica trusts them all. Tokens and the machine-token signing key already live in the store.
// Each replica issues its own serving certificate from the shared CA, for its own names (host, --tls-san).
import { readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { isKeyExists } from '../store/errors.js';
import type { Store } from '../store/types.js';
import { CA_CERT_FILE, CA_KEY_FILE, SERVING_CERT_FILE, SERVING_KEY_FILE } from './tls/certs.js';

export const SHARED_CA_KEY = '/metalplane/identity/ca';

interface SharedCa {
  cert: string;
  key: string;
}

/**
 * Makes the CA in `dataDir` the store's: publishes ours if the store holds none (the first replica), else
 * writes the store's over ours. Returns true when the files changed, so the caller issues its serving
 * certificate again (certs.ts re-issues one that the CA in the files did not sign).
 */
export async function adoptSharedCa(store: Store, dataDir: string): Promise<boolean> {
  const caPath = join(dataDir, CA_CERT_FILE);
  const keyPath = join(dataDir, CA_KEY_FILE);
  const ours: SharedCa = { cert: await readFile(caPath, 'utf8'), key: await readFile(keyPath, 'utf8') };
  let shared = await store.get(SHARED_CA_KEY);
  if (!shared) {
    try {
      await store.create(SHARED_CA_KEY, JSON.stringify(ours));
      return false;
    } catch (e) {
      // Another replica published its CA first: use that one.
      if (!isKeyExists(e)) throw e;
      shared = await store.get(SHARED_CA_KEY);
      if (!shared) throw e;
    }
  }
  const theirs = JSON.parse(shared.value) as SharedCa;
  if (theirs.cert === ours.cert && theirs.key === ours.key) return false;
  await writeFile(keyPath, theirs.key, { mode: 0o600 });
  await chmod(keyPath, 0o600);
  await writeFile(caPath, theirs.cert, { mode: 0o644 });
  await rm(join(dataDir, SERVING_CERT_FILE), { force: true });
  await rm(join(dataDir, SERVING_KEY_FILE), { force: true });
  return true;
}

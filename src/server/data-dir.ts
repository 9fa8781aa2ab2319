// The data dir holds the CA key, the admin token, the encryption key and the database: it must be ours alone.
// A new one is created 0700. An existing directory that others can write, or that someone else owns, is refused
// (whoever can write it can swap state.db or the certificates); one that holds other people's files, or that is
// group-writable, is used as it is with a loud warning, never silently chmod-ed.
import { chmodSync, mkdirSync, readdirSync, statSync, type Stats } from 'node:fs';

/** A --data-dir metalplane will not use. The message says why and what to do instead. */
export class DataDirError extends Error {}

/** Files any metalplane data dir holds after a first start. */
const METALPLANE_FILES = ['state.db', 'admin-token', 'ca.crt', 'encryption.key', 'kubeconfig'];

export type DataDirVerdict =
  | { use: true; create: boolean; narrow: boolean; warning?: string }
  | { use: false; message: string };

export interface DataDirFacts {
  /** undefined: the path does not exist */
  stat?: Pick<Stats, 'mode' | 'uid' | 'isDirectory'>;
  entries: string[];
  /** our uid (process.getuid()) */
  uid: number;
}

/** What to do with a data dir, decided from its facts alone. */
export function judgeDataDir(path: string, facts: DataDirFacts): DataDirVerdict {
  const { stat } = facts;
  if (!stat) return { use: true, create: true, narrow: false };
  if (!stat.isDirectory()) return { use: false, message: `--data-dir ${path} exists and is not a directory: give a directory of your own, e.g. --data-dir ~/.metalplane` };
  const mode = (stat.mode & 0o7777).toString(8).padStart(4, '0');
  const elsewhere = `point --data-dir at a directory only you can write (metalplane creates it, mode 0700, if it does not exist), e.g. --data-dir ~/.metalplane`;
  if (stat.uid !== facts.uid) {
    return { use: false, message: `--data-dir ${path} is owned by uid ${stat.uid}, not by this user (uid ${facts.uid}); metalplane keeps its keys and database there, so it must be yours: ${elsewhere}` };
  }
  if ((stat.mode & 0o002) !== 0) {
    return { use: false, message: `--data-dir ${path} is writable by every user (mode ${mode}), so anyone could replace its database or certificates: ${elsewhere}, or make it private first (chmod 700 ${path})` };
  }
  const ours = facts.entries.length === 0 || facts.entries.some((e) => METALPLANE_FILES.includes(e));
  if (!ours) {
    return { use: true, create: false, narrow: false, warning: `--data-dir ${path} holds other files and no metalplane state; metalplane writes its keys and database there but leaves the directory's mode (${mode}) alone. Prefer a directory of its own, e.g. --data-dir ~/.metalplane` };
  }
  if ((stat.mode & 0o020) !== 0) {
    return { use: true, create: false, narrow: false, warning: `--data-dir ${path} is group-writable (mode ${mode}): members of its group could replace its database or certificates. metalplane leaves the mode alone; run chmod 700 ${path} unless the group is meant to share it` };
  }
  return { use: true, create: false, narrow: (stat.mode & 0o077) !== 0 };
}

/**
 * Makes `path` ready to hold metalplane's state, or throws DataDirError. Returns a warning to log, if any.
 */
export function prepareDataDir(path: string): { warning?: string } {
  let stat: Stats | undefined;
  try {
    stat = statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new DataDirError(`--data-dir ${path} cannot be read: ${(e as Error).message}`);
  }
  const entries = stat?.isDirectory() ? readdirSync(path) : [];
  const verdict = judgeDataDir(path, { stat, entries, uid: process.getuid?.() ?? 0 });
  if (!verdict.use) throw new DataDirError(verdict.message);
  if (verdict.create) {
    mkdirSync(path, { recursive: true, mode: 0o700 });
    chmodSync(path, 0o700); // the umask may have left bits out; say exactly what we mean
  } else if (verdict.narrow) {
    chmodSync(path, 0o700);
  }
  return verdict.warning ? { warning: verdict.warning } : {};
}

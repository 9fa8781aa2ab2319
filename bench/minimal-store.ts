// The least durable store a create could stand on, for the floor rows of the API benchmarks: one SQLite table
// with one unique index (no history, revisions, events or watches), written by a worker thread in one
// transaction per batch (WAL, synchronous=FULL), batches gathered per loop turn with one in flight, as
// metalplane's own store does. It answers whether that store is what keeps the floor where it is.
//
// The same file is the worker: started with `workerData.path`, it commits the batches it is sent.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

interface Batch {
  id: number;
  keys: string[];
  values: string[];
}

/** Per key of a batch: its row id, or null when the key already existed. */
type Reply = { id: number; ids: (number | null)[] };

if (!isMainThread && parentPort && (workerData as { minimalStore?: string } | undefined)?.minimalStore) {
  const db = new Database((workerData as { minimalStore: string }).minimalStore);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE IF NOT EXISTS kv (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, value TEXT NOT NULL)');
  const insert = db.prepare('INSERT OR IGNORE INTO kv (name, value) VALUES (?, ?)');
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const port = parentPort;
  port.on('message', (b: Batch) => {
    begin.run();
    const ids = b.keys.map((k, i) => {
      const r = insert.run(k, b.values[i]!);
      return r.changes === 1 ? Number(r.lastInsertRowid) : null;
    });
    commit.run();
    port.postMessage({ id: b.id, ids } satisfies Reply);
  });
}

export class MinimalStore {
  private readonly worker: Worker;
  private queue: { key: string; value: string; done: (id: number | null) => void }[] = [];
  private inFlight: { key: string; value: string; done: (id: number | null) => void }[] | undefined;
  private scheduled = false;
  private nextId = 1;

  constructor(path: string) {
    this.worker = new Worker(new URL(import.meta.url), { workerData: { minimalStore: path } });
    this.worker.unref();
    this.worker.on('error', (err) => {
      process.stderr.write(`the minimal store's writer failed: ${err.stack ?? err.message}\n`);
      process.exit(1);
    });
    this.worker.on('message', (r: Reply) => {
      const batch = this.inFlight!;
      this.inFlight = undefined;
      batch.forEach((w, i) => w.done(r.ids[i]!));
      if (this.queue.length > 0) this.schedule();
    });
  }

  /** The new row's id, or null when the key exists. */
  create(key: string, value: string): Promise<number | null> {
    return new Promise((done) => {
      this.queue.push({ key, value, done });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.inFlight || this.queue.length === 0) return;
      const batch = (this.inFlight = this.queue);
      this.queue = [];
      this.worker.postMessage({ id: this.nextId++, keys: batch.map((w) => w.key), values: batch.map((w) => w.value) } satisfies Batch);
    });
  }
}

// The worker thread that owns the SQLite store's writing connection (see sqlite-writer.ts). Started by
// SqliteStore for a file store, never imported: it answers each request in order, one at a time, so a batch's
// COMMIT (and its fsync) blocks only this thread while the main thread goes on serving requests.

import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { SqliteWriter, configureWriter, toWireError, unflattenBatch, type WriterReply, type WriterRequest, type WriterWorkerData } from './sqlite-writer.js';

const data = workerData as WriterWorkerData;
const port = parentPort!;
const db = new Database(data.path);
configureWriter(db, { durability: data.durability });
const writer = new SqliteWriter(db, data.revision);

port.on('message', (m: WriterRequest) => {
  let reply: WriterReply;
  switch (m.type) {
    case 'commit':
      reply = { id: m.id, result: writer.commit(unflattenBatch(m.batch)) };
      break;
    case 'compact':
      try {
        writer.compact(m.lo, m.hi);
        reply = { id: m.id, done: true };
      } catch (err) {
        reply = { id: m.id, error: toWireError(err, []) };
      }
      break;
    case 'close':
      db.close();
      port.postMessage({ id: m.id, done: true } satisfies WriterReply);
      port.close();
      return;
  }
  port.postMessage(reply);
});

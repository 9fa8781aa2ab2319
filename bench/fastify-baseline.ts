// The baseline server for the API benchmarks: bare Fastify with a POST echo and a GET of a fixed ~1 KB JSON
// object, on plain HTTP or HTTPS. Run as a child process so it gets a core of its own, like metalplane does.
//
// With `--store <file>` it also serves the floor of a durable create (`POST /floor`): bare Fastify's JSON
// body, a key, a uid and a timestamp, one encode, and metalplane's own SQLite store (its group commit on its writer
// thread, synchronous=FULL), answered with the stored text. No auth, validation, managed fields, current state,
// caches or watches: what any durable create costs on this stack before the API does anything of its own.
// `POST /floor-minimal` is the same on the least durable store there could be (bench/minimal-store.ts).
import Fastify, { type FastifyReply } from 'fastify';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { openSqliteStore } from '../src/store/index.js';
import { StoreError } from '../src/store/errors.js';
import { MinimalStore } from './minimal-store.js';

const args = process.argv.slice(2);
const storeAt = args.indexOf('--store');
const storeFile = storeAt >= 0 ? args.splice(storeAt, 2)[1] : undefined;
const [certFile, keyFile] = args;
const tls = certFile && keyFile ? { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') } : undefined;
// Typed as the plain-HTTP instance: routes and listen() are the same for both protocols.
const app = (tls ? Fastify({ logger: false, serverFactory: (h) => https.createServer(tls, h) }) : Fastify({ logger: false })) as ReturnType<typeof Fastify>;
const doc = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'default' }, data: { payload: 'x'.repeat(900) } };
app.post('/echo', async (req: { body: unknown }) => req.body);
app.get('/get', async () => doc);

type FloorRequest = { body?: { metadata?: Record<string, unknown> } };

/** The stored text of a create of the request's object (undefined: no name), stamped as a server would. */
function stamped(req: FloorRequest): { key: string; value: string } | undefined {
  const obj = req.body;
  const name = obj?.metadata?.name;
  if (!obj || typeof name !== 'string') return undefined;
  obj.metadata = { ...obj.metadata, namespace: 'default', uid: randomUUID(), creationTimestamp: new Date().toISOString() };
  return { key: `/registry/configmaps/default/${name}`, value: JSON.stringify(obj) };
}

function created(reply: FastifyReply, value: string, revision: number): string {
  reply.code(201).header('content-type', 'application/json');
  return value.replace('"metadata":{', `"metadata":{"resourceVersion":"${revision}",`);
}

if (storeFile) {
  const store = openSqliteStore(storeFile);
  app.post('/floor', async (req: FloorRequest, reply: FastifyReply) => {
    const w = stamped(req);
    if (!w) return reply.code(422).send({ message: 'metadata.name is required' });
    try {
      const kv = await store.create(w.key, w.value);
      return created(reply, kv.value, kv.modRevision);
    } catch (err) {
      if (err instanceof StoreError && err.code === 'KeyExists') return reply.code(409).send({ message: err.message });
      throw err;
    }
  });
  const minimal = new MinimalStore(`${storeFile}-minimal`);
  app.post('/floor-minimal', async (req: FloorRequest, reply: FastifyReply) => {
    const w = stamped(req);
    if (!w) return reply.code(422).send({ message: 'metadata.name is required' });
    const id = await minimal.create(w.key, w.value);
    if (id === null) return reply.code(409).send({ message: `${w.key} exists` });
    return created(reply, w.value, id);
  });
}

await app.listen({ host: '127.0.0.1', port: 0 });
const a = app.server.address();
process.stdout.write(`listening ${typeof a === 'object' && a ? a.port : 0}\n`);

// The baseline server for the API benchmarks: bare Fastify with a POST echo and a GET of a fixed ~1 KB JSON
// object, on plain HTTP or HTTPS. Run as a child process so it gets a core of its own, like metalplane does.
import Fastify from 'fastify';
import https from 'node:https';
import { readFileSync } from 'node:fs';

const [certFile, keyFile] = process.argv.slice(2);
const tls = certFile && keyFile ? { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') } : undefined;
// Typed as the plain-HTTP instance: routes and listen() are the same for both protocols.
const app = (tls ? Fastify({ logger: false, serverFactory: (h) => https.createServer(tls, h) }) : Fastify({ logger: false })) as ReturnType<typeof Fastify>;
const doc = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'default' }, data: { payload: 'x'.repeat(900) } };
app.post('/echo', async (req: { body: unknown }) => req.body);
app.get('/get', async () => doc);
await app.listen({ host: '127.0.0.1', port: 0 });
const a = app.server.address();
process.stdout.write(`listening ${typeof a === 'object' && a ? a.port : 0}\n`);

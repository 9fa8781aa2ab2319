import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import Fastify from 'fastify';
import { ensureCertificates, type CertificateBundle } from './certs.js';
import { createPolyglotServer, fastifyServerFactory, type PolyglotServerHandle, type RequestHandler } from './listener.js';

let dir: string;
let certs: CertificateBundle;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'metalplane-listener-'));
  certs = await ensureCertificates({ dataDir: dir, sans: [] });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function start(handler: RequestHandler, closeGraceMs = 200): Promise<{ p: PolyglotServerHandle; port: number }> {
  const p = createPolyglotServer(handler, certs, { closeGraceMs });
  await new Promise<void>((resolve) => p.server.listen(0, '127.0.0.1', resolve));
  return { p, port: (p.server.address() as net.AddressInfo).port };
}

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  reusedSocket: boolean;
}

function get(url: string, opts: https.RequestOptions = {}): Promise<Got> {
  const mod = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { ca: certs.ca, ...opts }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, reusedSocket: req.reusedSocket }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

const whoAmI: RequestHandler = (req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ encrypted: (req.socket as { encrypted?: boolean }).encrypted === true, remote: req.socket.remoteAddress }));
};

test('one port answers HTTPS verified against the generated CA, and plain HTTP', async () => {
  const { p, port } = await start(whoAmI);
  try {
    for (const host of ['127.0.0.1', 'localhost']) {
      const tls = await get(`https://${host}:${port}/x`);
      assert.deepEqual(JSON.parse(tls.body), { encrypted: true, remote: '127.0.0.1' }, host);
    }
    const plain = await get(`http://127.0.0.1:${port}/x`);
    assert.deepEqual(JSON.parse(plain.body), { encrypted: false, remote: '127.0.0.1' });

    // Without the CA the handshake fails (verification is on), and the server keeps serving.
    await assert.rejects(get(`https://127.0.0.1:${port}/x`, { ca: undefined }), /self[- ]signed|unable to (get|verify)/i);
    assert.equal((await get(`http://127.0.0.1:${port}/x`)).status, 200);
  } finally {
    await p.close();
  }
});

test('a plain request whose first byte arrives alone is parsed whole; garbage gets 400', async () => {
  const { p, port } = await start(whoAmI);
  try {
    const raw = async (parts: string[]): Promise<string> => {
      const socket = net.connect(port, '127.0.0.1');
      await new Promise((r) => socket.once('connect', r));
      let out = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (out += d));
      const closed = new Promise((r) => socket.once('close', r));
      for (const part of parts) {
        socket.write(part);
        await new Promise((r) => setTimeout(r, 30));
      }
      await closed;
      return out;
    };
    const ok = await raw(['G', 'ET /x HTTP/1.1\r\nHost: a\r\n', 'Connection: close\r\n\r\n']);
    assert.match(ok, /^HTTP\/1\.1 200 OK/);
    assert.match(ok, /"encrypted":false/);
    const bad = await raw(['\x01\x02 nonsense\r\n\r\n']);
    assert.match(bad, /^HTTP\/1\.1 400/);
  } finally {
    await p.close();
  }
});

test('large request bodies and pipelined requests arrive intact over both protocols', async () => {
  const { p, port } = await start((req, res) => {
    const hash = createHash('sha256');
    req.on('data', (d: Buffer) => hash.update(d));
    req.on('end', () => res.end(`${req.url} ${hash.digest('hex')}`));
  });
  try {
    const body = randomBytes(3 * 1024 * 1024);
    const want = createHash('sha256').update(body).digest('hex');
    for (const scheme of ['http', 'https'] as const) {
      const mod = scheme === 'https' ? https : http;
      const got = await new Promise<string>((resolve, reject) => {
        const req = mod.request(`${scheme}://127.0.0.1:${port}/upload`, { method: 'PUT', ca: certs.ca }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve(text));
        });
        req.on('error', reject);
        req.end(body);
      });
      assert.equal(got, `/upload ${want}`, scheme);
    }

    // Two requests in the first packet: both are answered, in order.
    const socket = net.connect(port, '127.0.0.1');
    let out = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (out += d));
    socket.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await new Promise((r) => socket.once('close', r));
    const empty = createHash('sha256').digest('hex');
    assert.match(out, new RegExp(`/a ${empty}[\\s\\S]*/b ${empty}`));
  } finally {
    await p.close();
  }
});

test('upgrades reach the listening server over both protocols', async () => {
  const { p, port } = await start(whoAmI);
  p.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    const tls = (req.socket as { encrypted?: boolean }).encrypted === true;
    socket.end(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\nX-Tls: ${tls}\r\n\r\n`);
  });
  try {
    for (const scheme of ['http', 'https'] as const) {
      const mod = scheme === 'https' ? https : http;
      const tlsHeader = await new Promise<string | string[] | undefined>((resolve, reject) => {
        const req = mod.request(`${scheme}://127.0.0.1:${port}/`, { ca: certs.ca, headers: { connection: 'Upgrade', upgrade: 'test' } });
        req.on('upgrade', (res: http.IncomingMessage, socket: net.Socket) => {
          socket.destroy();
          resolve(res.headers['x-tls']);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(tlsHeader, String(scheme === 'https'), scheme);
    }
  } finally {
    await p.close();
  }
});

test('chunked responses stream over both protocols', async () => {
  // The handler sends one chunk, then waits until the client has seen it: the rest cannot be buffered up.
  let seenFirst: () => void = () => {};
  const { p, port } = await start((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('event 1\n');
    new Promise<void>((r) => (seenFirst = r)).then(async () => {
      for (let i = 2; i <= 4; i++) {
        res.write(`event ${i}\n`);
        await new Promise((r) => setTimeout(r, 10));
      }
      res.end();
    });
  });
  try {
    for (const scheme of ['https', 'http']) {
      const mod = scheme === 'https' ? https : http;
      const body = await new Promise<string>((resolve, reject) => {
        mod
          .get(`${scheme}://127.0.0.1:${port}/watch`, { ca: certs.ca }, (res) => {
            assert.equal(res.headers['transfer-encoding'], 'chunked');
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => {
              if (text === '') seenFirst();
              text += d;
            });
            res.on('end', () => resolve(text));
          })
          .on('error', reject);
      });
      assert.equal(body, 'event 1\nevent 2\nevent 3\nevent 4\n', scheme);
    }
  } finally {
    await p.close();
  }
});

test('keep-alive reuses one connection per protocol; timeouts suit long streams', async () => {
  const { p, port } = await start(whoAmI);
  let connections = 0;
  p.server.on('connection', () => connections++);
  try {
    for (const scheme of ['http', 'https'] as const) {
      const agent = scheme === 'https' ? new https.Agent({ keepAlive: true, maxSockets: 1, ca: certs.ca }) : new http.Agent({ keepAlive: true, maxSockets: 1 });
      connections = 0;
      const results: Got[] = [];
      for (let i = 0; i < 3; i++) results.push(await get(`${scheme}://127.0.0.1:${port}/`, { agent }));
      agent.destroy();
      assert.equal(connections, 1, `${scheme}: one TCP connection for three requests`);
      assert.deepEqual(results.map((r) => r.reusedSocket), [false, true, true], scheme);
      assert.equal(results[0]!.headers.connection, 'keep-alive', scheme);
    }
    for (const s of [p.httpServer, p.httpsServer]) {
      assert.equal(s.requestTimeout, 0);
      assert.equal(s.timeout, 0);
      assert.ok(s.headersTimeout > 0);
    }
  } finally {
    await p.close();
  }
});

test('close() is prompt with open streams and idle keep-alive connections', async () => {
  const { p, port } = await start((req, res) => {
    if (req.url === '/idle') return res.end('ok');
    res.writeHead(200);
    res.write('started\n'); // and never ends, like a watch
  }, 150);
  // Resolves once the stream has started, with a promise of how it ended (wrapped: a promise resolved with a
  // promise would wait for it).
  const openStream = (scheme: 'http' | 'https'): Promise<{ ended: Promise<string> }> =>
    new Promise((resolveStarted, reject) => {
      const mod = scheme === 'https' ? https : http;
      mod
        .get(`${scheme}://127.0.0.1:${port}/watch`, { ca: certs.ca }, (res) => {
          const ended = new Promise<string>((resolve) => {
            res.on('error', () => resolve('aborted'));
            res.on('aborted', () => resolve('aborted'));
            res.on('end', () => resolve('ended'));
          });
          res.once('data', () => resolveStarted({ ended }));
        })
        .on('error', reject);
    });
  const streams = [await openStream('http'), await openStream('https')];
  const agent = new https.Agent({ keepAlive: true, ca: certs.ca });
  await get(`https://127.0.0.1:${port}/idle`, { agent });

  const started = Date.now();
  await p.close();
  const elapsed = Date.now() - started;
  agent.destroy();
  assert.ok(elapsed < 1500, `close took ${elapsed} ms`);
  assert.deepEqual(await Promise.all(streams.map((s) => s.ended)), ['aborted', 'aborted']);
  assert.equal(p.server.listening, false);
});

test('Fastify serves both protocols on one port through fastifyServerFactory and closes promptly', async () => {
  const app = Fastify({ serverFactory: fastifyServerFactory(certs, { closeGraceMs: 150 }) });
  app.get('/who', async (req) => ({
    encrypted: (req.raw.socket as { encrypted?: boolean }).encrypted === true,
    remote: req.raw.socket.remoteAddress,
  }));
  app.get('/watch', async (_req, reply) => {
    const stream = new Readable({ read() {} });
    stream.push('started\n');
    return reply.type('text/plain').send(stream);
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as net.AddressInfo).port;
  try {
    assert.deepEqual(JSON.parse((await get(`https://localhost:${port}/who`)).body), { encrypted: true, remote: '127.0.0.1' });
    assert.deepEqual(JSON.parse((await get(`http://127.0.0.1:${port}/who`)).body), { encrypted: false, remote: '127.0.0.1' });
    assert.equal((await get(`http://127.0.0.1:${port}/nope`)).status, 404);

    const { closed } = await new Promise<{ closed: Promise<void> }>((resolve, reject) => {
      https
        .get(`https://127.0.0.1:${port}/watch`, { ca: certs.ca }, (res) => {
          const done = new Promise<void>((r) => res.on('close', () => r()));
          res.once('data', () => resolve({ closed: done }));
        })
        .on('error', reject);
    });
    const started = Date.now();
    await app.close();
    await closed;
    assert.ok(Date.now() - started < 1500, `app.close() took ${Date.now() - started} ms`);
  } finally {
    await app.close();
  }
});

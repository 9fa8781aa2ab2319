// lingerAfterResponse: a connection answered and closed before its request body arrived reads the rest of the
// body instead of resetting the client, and is still closed when the body never comes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { LINGER_MS, lingerAfterResponse } from './linger.js';

const BODY = 4 * 1024 * 1024;

/** A server that answers every request 413 and closes, without reading the body; lingering or not. */
async function refusing(linger: boolean): Promise<{ server: Server; port: number; serverSideClosed: Promise<void> }> {
  const server = createServer((req, res) => {
    if (linger) lingerAfterResponse(req);
    res.writeHead(413, { 'content-type': 'text/plain', 'content-length': 9, connection: 'close' });
    res.end('too large');
  });
  // The server's end of the (single) connection each test makes.
  const serverSideClosed = new Promise<void>((r) => server.once('connection', (s: Socket) => s.once('close', () => r())));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, serverSideClosed };
}

interface Client {
  socket: Socket;
  received: () => string;
  /** The first error the socket reported, if any. */
  error: () => NodeJS.ErrnoException | undefined;
  closed: Promise<void>;
  ended: Promise<void>;
}

/** A raw client that keeps its writing side open after the server's FIN, as an uploading client does. */
function client(port: number, head: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => {
      let text = '';
      let err: NodeJS.ErrnoException | undefined;
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      socket.on('error', (e) => (err ??= e));
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      const ended = new Promise<void>((r) => socket.once('end', () => r()));
      socket.write(head);
      resolve({ socket, received: () => text, error: () => err, closed, ended });
    });
    socket.once('error', reject);
  });
}

const head = (length: number): string => `POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;

async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Sends the whole body after the answer has arrived, then reports how the connection ended. */
async function uploadAfterAnswer(linger: boolean): Promise<{ answer: string; error?: string }> {
  const { server, port } = await refusing(linger);
  try {
    const c = await client(port, head(BODY) + 'x'.repeat(1024));
    await until('the answer', () => c.received().includes('too large'));
    // Give a destroying server its moment: without lingering the socket is gone by now.
    await new Promise((r) => setTimeout(r, 100));
    const chunk = Buffer.alloc(64 * 1024, 'x');
    for (let sent = 1024; sent < BODY && !c.socket.destroyed; sent += chunk.length) {
      if (!c.socket.write(chunk.subarray(0, Math.min(chunk.length, BODY - sent)))) await Promise.race([once(c.socket, 'drain').catch(() => undefined), c.closed]);
    }
    c.socket.end();
    await c.closed;
    return { answer: c.received(), error: c.error()?.code };
  } finally {
    server.close();
  }
}

test('a refused upload is read to its end after the answer: the client sees its 413 and a clean close, no reset', async () => {
  const { answer, error } = await uploadAfterAnswer(true);
  assert.match(answer, /^HTTP\/1\.1 413 /);
  assert.match(answer, /\r\n\r\ntoo large$/, 'the whole answer, and nothing after it');
  assert.equal(error, undefined, 'no EPIPE or ECONNRESET while the client sent the rest of its body');
});

test('without lingering the same upload is reset (what the test above would see if lingering were not done)', async () => {
  const { error } = await uploadAfterAnswer(false);
  assert.match(String(error), /EPIPE|ECONNRESET/);
});

test('a body that never arrives does not hold the connection: it is closed after LINGER_MS', async () => {
  const { server, port, serverSideClosed } = await refusing(true);
  try {
    const c = await client(port, head(BODY) + 'x'.repeat(1024));
    const started = Date.now();
    await until('the answer', () => c.received().includes('too large'));
    await c.ended;
    await serverSideClosed;
    const held = Date.now() - started;
    c.socket.destroy();
    // The client never hangs up; the server does once the body has had its chance.
    assert.ok(held >= LINGER_MS - 100, `closed after ${held} ms, before the body had LINGER_MS to arrive`);
    assert.ok(held < LINGER_MS + 5000, `closed after ${held} ms: lingering is not bounded`);
  } finally {
    server.close();
  }
});

test('a request whose body has all arrived closes at once, as without lingering', async () => {
  const { server, port, serverSideClosed } = await refusing(true);
  try {
    const c = await client(port, head(4) + 'abcd');
    const started = Date.now();
    await serverSideClosed;
    await c.ended;
    c.socket.destroy();
    assert.match(c.received(), /^HTTP\/1\.1 413 /);
    assert.ok(Date.now() - started < LINGER_MS, 'a complete request is not held for LINGER_MS');
  } finally {
    server.close();
  }
});

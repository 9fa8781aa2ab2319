// Per-peer caps and the request deadline of the real server (startServer), with loopback not exempt so that a
// test on 127.0.0.1 is "one peer": connections beyond the cap are closed, body bytes in flight beyond the cap get
// a 429, a body that does not arrive in time gets a 408 and its connection closed, and a watch (a long response)
// outlives that deadline.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../src/server/server.js';

const MiB = 1024 * 1024;
const LIMITS = { exemptLoopback: false, maxConnectionsPerPeer: 12, maxBodyBytesPerPeer: 4 * MiB, requestTimeoutMs: 1500, headersTimeoutMs: 1000 };

interface Raw {
  socket: net.Socket;
  /** everything received so far */
  received: () => string;
  closed: Promise<void>;
  isClosed: () => boolean;
}

function raw(port: number, text?: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    let closed = false;
    const closedP = new Promise<void>((r) => socket.once('close', () => ((closed = true), r())));
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
    socket.on('error', () => {});
    socket.once('connect', () => {
      if (text) socket.write(text);
      resolve({ socket, received: () => data, closed: closedP, isClosed: () => closed });
    });
    socket.once('error', reject);
  });
}

async function until(what: string, fn: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('per-peer limits', () => {
  let s: RunningServer;
  let dir: string;
  const logs: string[] = [];
  const head = (method: string, path: string, len: number, token?: string): string =>
    `${method} ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${len}\r\n${token ? `Authorization: Bearer ${token}\r\n` : ''}\r\n`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'metalplane-limits-'));
    s = await startServer({
      dataDir: join(dir, 'data'),
      host: '127.0.0.1',
      port: 0,
      logLevel: 'warn',
      logDestination: new Writable({ write: (chunk: Buffer, _enc, cb) => (logs.push(chunk.toString()), cb()) }),
      limits: LIMITS,
    });
  });
  after(async () => {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('body bytes in flight beyond the cap get a 429 with Retry-After; a slow body gets a 408; a watch outlives that deadline', async () => {
    const path = '/api/v1/namespaces/default/configmaps';
    const watch = await raw(s.port, `GET ${path}?watch=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.adminToken}\r\n\r\n`);
    await until('the watch to start', () => watch.received().startsWith('HTTP/1.1 200'));

    // 3 MiB declared, 1 MiB sent, then silence: admitted (3 of 4 MiB), then cut by the request deadline.
    const slow = await raw(s.port, head('POST', path, 3 * MiB, s.adminToken) + 'a'.repeat(MiB));
    await new Promise((r) => setTimeout(r, 200));
    const second = await raw(s.port, head('POST', path, 3 * MiB, s.adminToken));
    await until('the 429', () => second.received().includes('\r\n\r\n'));
    assert.match(second.received(), /^HTTP\/1\.1 429 /);
    assert.match(second.received(), /\r\nretry-after: 1\r\n/i);
    assert.match(second.received(), /"reason":"TooManyRequests"/);
    await second.closed;
    // A small body still fits beside the held one.
    const cm = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'small' }, data: { a: 'b' } });
    const small = await raw(s.port, head('POST', path, Buffer.byteLength(cm), s.adminToken) + cm);
    await until('the small create', () => small.received().includes('\r\n\r\n'));
    assert.match(small.received(), /^HTTP\/1\.1 201 /);
    small.socket.destroy();

    await slow.closed;
    assert.match(slow.received(), /^HTTP\/1\.1 408 /, 'the slow body is answered 408');
    // The watch was opened before the slow request and is still served after its deadline.
    assert.equal(watch.isClosed(), false, 'the watch is still open');
    const cm2 = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'after-deadline' } });
    const create = await raw(s.port, head('POST', path, Buffer.byteLength(cm2), s.adminToken) + cm2);
    await until('the ADDED event', () => watch.received().includes('"name":"after-deadline"'));
    create.socket.destroy();
    watch.socket.destroy();
    assert.ok(logs.some((l) => /refused a request or connection from one peer/.test(l) && /request bodies in flight/.test(l)), logs.join(''));
  });

  it('connections beyond the cap are closed as they arrive, and accepted again once others close', async () => {
    const server = s.app.server as unknown as { connectionsOf(a: string): number };
    await until('earlier connections to close', () => server.connectionsOf('127.0.0.1') === 0);
    const held: Raw[] = [];
    for (let i = 0; i < LIMITS.maxConnectionsPerPeer; i++) {
      const c = await raw(s.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      held.push(c);
    }
    await until('all answered', () => held.every((c) => c.received().includes('\r\n\r\nok')));
    assert.equal(server.connectionsOf('127.0.0.1'), LIMITS.maxConnectionsPerPeer);
    const excess = await raw(s.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await excess.closed;
    assert.equal(excess.received(), '', 'the excess connection is closed without an answer');
    assert.ok(held.every((c) => !c.isClosed()), 'the admitted ones stay open');
    assert.ok(logs.some((l) => /already holds 12 connections \(at most 12\)/.test(l)), logs.join(''));

    held.pop()!.socket.destroy();
    await until('the closed one to be counted out', () => server.connectionsOf('127.0.0.1') < LIMITS.maxConnectionsPerPeer);
    const next = await raw(s.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await until('the next one answered', () => next.received().includes('\r\n\r\nok'));
    for (const c of [...held, next]) c.socket.destroy();
  });
});

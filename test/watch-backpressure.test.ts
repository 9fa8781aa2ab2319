// A watcher that stops reading must not hold up the others nor grow the server's memory without bound: once its
// socket pushes back and its waiting events pass the bound, it gets one ERROR event (410 Expired) and its stream
// ends, so its client relists, as kube-apiserver does with an unresponsive watcher. A normal watcher on the same
// collection sees every event, in order. Real HTTP to an in-process server (the bound is a server option).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../src/server/server.js';
import { WATCH_BACKLOG_BYTES } from '../src/apiserver/kube-api.js';

const EVENTS = 500;
// 500 events of ~32 KB (16 MB) are well past what the kernel's socket buffers (a few MB on loopback, with a
// receiver that does not read) and the backlog bound hold together.
const PAYLOAD = 'x'.repeat(32 * 1024);

interface WatchLine {
  type: string;
  object: { code?: number; reason?: string; metadata?: { name?: string; resourceVersion?: string } };
}

describe('watch backpressure', () => {
  let s: RunningServer;
  let dataDir: string;
  let auth: string;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'metalplane-wbp-'));
    s = await startServer({ dataDir, host: '127.0.0.1', port: 0, logLevel: 'silent' });
    auth = `Bearer ${s.adminToken}`;
  });
  after(async () => {
    await s.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('ends a watcher that does not read with 410 Expired, while a reading watcher gets every event in order', { timeout: 120_000 }, async () => {
    assert.ok(EVENTS * PAYLOAD.length > 2 * WATCH_BACKLOG_BYTES, 'the test writes more than the bound plus the socket buffers');
    const rv = String(await s.store.currentRevision());
    const path = `/api/v1/namespaces/default/configmaps?watch=true&labelSelector=bp%3Dtrue&resourceVersion=${rv}`;
    const agent = new http.Agent({ keepAlive: false });
    const open = (): Promise<http.IncomingMessage> =>
      new Promise((resolve, reject) => {
        const req = http.get(`${s.plainUrl}${path}`, { agent, headers: { authorization: auth } }, resolve);
        req.on('error', reject);
      });

    // The slow watcher: its response is paused as soon as the headers are in, so the HTTP parser stops reading
    // the socket and the kernel's receive window closes.
    const slow = await open();
    slow.pause();
    assert.equal(slow.statusCode, 200);

    const fast = await open();
    assert.equal(fast.statusCode, 200);
    const seen: WatchLine[] = [];
    let buf = '';
    fast.setEncoding('utf8');
    const allSeen = new Promise<void>((resolve, reject) => {
      fast.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          seen.push(JSON.parse(buf.slice(0, nl)) as WatchLine);
          buf = buf.slice(nl + 1);
        }
        if (seen.length >= EVENTS) resolve();
      });
      fast.on('end', () => reject(new Error(`the fast watch ended after ${seen.length} events`)));
    });

    for (let i = 0; i < EVENTS; i++) {
      const res = await fetch(`${s.plainUrl}/api/v1/namespaces/default/configmaps`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ metadata: { name: `bp-${i}`, labels: { bp: 'true' } }, data: { payload: PAYLOAD } }),
      });
      assert.equal(res.status, 201);
      await res.arrayBuffer();
    }
    await Promise.race([allSeen, new Promise((_, reject) => setTimeout(() => reject(new Error(`the fast watch saw ${seen.length}/${EVENTS} events`)), 60_000).unref())]);
    assert.equal(seen.length, EVENTS);
    assert.deepEqual(
      seen.map((l) => `${l.type} ${l.object.metadata?.name}`),
      Array.from({ length: EVENTS }, (_, i) => `ADDED bp-${i}`),
    );
    const rvs = seen.map((l) => Number(l.object.metadata?.resourceVersion));
    assert.ok(rvs.every((r, i) => i === 0 || r > rvs[i - 1]), 'resourceVersions increase');
    fast.destroy();

    // Now the slow watcher reads: some events in order, then the 410, then the end of its stream.
    let text = '';
    slow.setEncoding('utf8');
    slow.on('data', (chunk: string) => (text += chunk));
    slow.resume();
    await Promise.race([
      new Promise<void>((resolve, reject) => {
        slow.on('end', resolve);
        slow.on('error', reject);
      }),
      new Promise((_, reject) => setTimeout(() => reject(new Error('the slow watch did not end')), 30_000).unref()),
    ]);
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as WatchLine);
    const last = lines[lines.length - 1];
    assert.equal(last.type, 'ERROR');
    assert.equal(last.object.code, 410);
    assert.equal(last.object.reason, 'Expired');
    const before = lines.slice(0, -1);
    assert.ok(before.length < EVENTS, `the slow watcher got ${before.length} events before the 410, not all ${EVENTS}`);
    assert.deepEqual(
      before.map((l) => `${l.type} ${l.object.metadata?.name}`),
      Array.from({ length: before.length }, (_, i) => `ADDED bp-${i}`),
    );

    // Neither watch is counted as open any more.
    // (The fast watch's close reaches the server a moment after destroy(): a bounded number of looks.)
    let counts: number[] = [];
    for (let i = 0; i < 100; i++) {
      const metrics = await (await fetch(`${s.plainUrl}/metrics`, { headers: { authorization: auth } })).text();
      counts = [...metrics.matchAll(/^metalplane_apiserver_watches\{resource="configmaps"\} (\d+)/gm)].map((m) => Number(m[1]));
      if (counts.every((n) => n === 0)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(counts.every((n) => n === 0), `open watches: ${counts.join(',')}`);
    agent.destroy();
  });
});

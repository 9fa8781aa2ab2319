// A watch from a compacted resourceVersion through the real HTTP surface: kube-apiserver answers 200 with one
// ERROR event carrying a 410 Expired Status, and clients (client-go, kubectl) relist on it. The server runs
// in-process here so the test can compact its store; everything else is real HTTP.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../src/server/server.js';

describe('watch after compaction', () => {
  let s: RunningServer;
  let dataDir: string;
  let headers: Record<string, string>;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'metalplane-w410-'));
    s = await startServer({ dataDir, host: '127.0.0.1', port: 0, logLevel: 'silent' });
    headers = { authorization: `Bearer ${s.adminToken}` };
  });
  after(async () => {
    await s.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function watchLines(path: string): Promise<{ status: number; lines: Array<{ type: string; object: { code?: number; reason?: string; message?: string } }> }> {
    const res = await fetch(`${s.plainUrl}${path}`, { headers, signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    return { status: res.status, lines: text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
  }

  it('answers with one 410 Expired ERROR event and ends the stream', async () => {
    const created = await fetch(`${s.plainUrl}/api/v1/namespaces/default/configmaps`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ metadata: { name: 'old' }, data: { x: '0' } }),
    });
    assert.equal(created.status, 201);
    const rv = ((await created.json()) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    for (let i = 1; i <= 3; i++) {
      const p = await fetch(`${s.plainUrl}/api/v1/namespaces/default/configmaps/old`, {
        method: 'PATCH',
        headers: { ...headers, 'content-type': 'application/merge-patch+json' },
        body: JSON.stringify({ data: { x: String(i) } }),
      });
      assert.equal(p.status, 200);
    }
    await s.store.compact(await s.store.currentRevision());

    const w = await watchLines(`/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${rv}`);
    assert.equal(w.status, 200);
    assert.equal(w.lines.length, 1);
    assert.equal(w.lines[0].type, 'ERROR');
    assert.equal(w.lines[0].object.code, 410);
    assert.equal(w.lines[0].object.reason, 'Expired');
    assert.match(w.lines[0].object.message ?? '', /too old resource version/);

    // The same through the Table format kubectl get -w asks for.
    const t = await fetch(`${s.plainUrl}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${rv}`, {
      headers: { ...headers, accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' },
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(t.status, 200);
    assert.match(await t.text(), /"type":"ERROR".*"code":410/);

    // No watch is left counted as open.
    const metrics = await (await fetch(`${s.plainUrl}/metrics`, { headers })).text();
    const open = [...metrics.matchAll(/^metalplane_apiserver_watches\{resource="configmaps"\} (\d+)/gm)].map((m) => Number(m[1]));
    assert.ok(open.every((n) => n === 0), `open watches: ${open.join(',')}`);

    // A watch from the current revision still works and sees new writes.
    const cur = String(await s.store.currentRevision());
    const ctrl = new AbortController();
    const live = await fetch(`${s.plainUrl}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${cur}`, { headers, signal: ctrl.signal });
    const reader = live.body!.getReader();
    await fetch(`${s.plainUrl}/api/v1/namespaces/default/configmaps`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ metadata: { name: 'new' } }),
    });
    const { value } = await reader.read();
    assert.match(new TextDecoder().decode(value), /"type":"ADDED".*"name":"new"/);
    ctrl.abort();
  });
});

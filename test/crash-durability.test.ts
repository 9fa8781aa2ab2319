// An acknowledged write survives `kill -9`: the server is SIGKILLed in the middle of hundreds of concurrent
// creates, restarted on the same data dir, and every create that got its 201 must be there with its data. The
// admin token and the CA are reused across the restart, so kubeconfigs and trust stores keep working.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, startTestServer, type TestServer } from './helpers/server.js';

const TOTAL = 600;
const IN_FLIGHT = 50;
/** SIGKILL once this many creates were acknowledged: well inside the run, with many requests in flight. */
const KILL_AFTER = 250;
const NS = 'crash';

let first: TestServer | undefined;
let second: TestServer | undefined;

after(async () => {
  await first?.kill();
  await second?.stop();
  (second ?? first)?.cleanup();
});

interface Outcome {
  acknowledged: Map<string, { value: string; resourceVersion: string }>;
  failed: number;
}

function post(agent: http.Agent, server: TestServer, path: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      server.plainUrl + path,
      { method: 'POST', agent, headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function createUntilKilled(server: TestServer): Promise<Outcome> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  const acknowledged = new Map<string, { value: string; resourceVersion: string }>();
  let failed = 0;
  let next = 0;
  let killing: Promise<void> | undefined;
  const worker = async (): Promise<void> => {
    while (next < TOTAL) {
      const i = next++;
      const name = `cm-${String(i).padStart(4, '0')}`;
      // Data big enough that a write is more than one page, unique per object so a mix-up would show.
      const value = `${name}:${'v'.repeat(2000)}:${i * 7919}`;
      const body = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { batch: 'crash' } }, data: { value } });
      try {
        const res = await post(agent, server, `/api/v1/namespaces/${NS}/configmaps`, body);
        if (res.status === 201) {
          const rv = (JSON.parse(res.text) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
          acknowledged.set(name, { value, resourceVersion: rv });
          if (acknowledged.size === KILL_AFTER) killing = server.kill();
        } else {
          failed++;
        }
      } catch {
        failed++; // the connection died with the server: not acknowledged, so no promise was made
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  await killing;
  agent.destroy();
  return { acknowledged, failed };
}

test('every acknowledged create survives SIGKILL; token and CA are reused', async (t) => {
  first = await startTestServer();
  const dataDir = first.dataDir;
  const tokenBefore = first.token;
  const caBefore = readFileSync(join(dataDir, 'ca.crt'));
  const caKeyBefore = readFileSync(join(dataDir, 'ca.key'));
  const ns = await api(first, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  assert.equal(ns.status, 201, ns.text);

  const { acknowledged, failed } = await createUntilKilled(first);
  t.diagnostic(`${acknowledged.size} acknowledged, ${failed} failed when the server was killed`);
  assert.notEqual(first.proc.exitCode, 0);
  assert.equal(first.proc.signalCode, 'SIGKILL', 'the server was killed, not shut down');
  assert.ok(acknowledged.size >= KILL_AFTER, `acknowledged ${acknowledged.size}`);
  assert.ok(failed > 0, 'the kill landed while creates were still being sent');

  second = await startTestServer({ dataDir });
  assert.equal(second.token, tokenBefore, 'the admin token file is reused');
  assert.deepEqual(readFileSync(join(dataDir, 'ca.crt')), caBefore, 'the CA is reused');
  assert.deepEqual(readFileSync(join(dataDir, 'ca.key')), caKeyBefore, 'the CA key is reused');
  assert.equal(second.ca, caBefore.toString('utf8'));

  // The old token still authenticates against the restarted server (it is in the store, not only in the file).
  const list = await api(second, 'GET', `/api/v1/namespaces/${NS}/configmaps?labelSelector=batch%3Dcrash`);
  assert.equal(list.status, 200, list.text);
  const stored = new Map<string, { data: { value: string }; metadata: { resourceVersion: string } }>();
  for (const item of list.body.items) stored.set(item.metadata.name, item);

  t.diagnostic(`${stored.size} stored after the restart (${stored.size - acknowledged.size} written but never acknowledged)`);
  const missing = [...acknowledged.keys()].filter((n) => !stored.has(n));
  assert.deepEqual(missing, [], `${missing.length} of ${acknowledged.size} acknowledged creates are gone after kill -9`);
  for (const [name, want] of acknowledged) {
    const got = stored.get(name)!;
    assert.equal(got.data.value, want.value, `${name} has its data`);
    assert.equal(got.metadata.resourceVersion, want.resourceVersion, `${name} kept the resourceVersion it was acknowledged with`);
  }
  // Whatever was written but not acknowledged must at least be whole.
  for (const [name, got] of stored) {
    assert.match(got.data.value, new RegExp(`^${name}:v{2000}:\\d+$`), `${name} is intact`);
  }

  // And the restarted server takes writes.
  const again = await api(second, 'POST', `/api/v1/namespaces/${NS}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'after-restart' }, data: { ok: 'yes' } });
  assert.equal(again.status, 201, again.text);
  assert.ok(Number(again.body.metadata.resourceVersion) > Math.max(...[...acknowledged.values()].map((v) => Number(v.resourceVersion))), 'revisions keep growing after the restart');
});

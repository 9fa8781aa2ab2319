// Issue 14, findings 4, 5, 7 and 11, through the real `metalplane up`: unauthenticated bodies cost no memory and
// their connections are closed, /metrics refuses with a 401 Bearer challenge, secrets are not in the database
// file in clear and its files are 0600, an unsafe --data-dir is refused, and SIGTERM answers an agent's long
// poll instead of logging store errors.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { api, kubectlOk, runMetalplane, startTestServer, waitFor, type TestServer } from './helpers/server.js';

const MiB = 1024 * 1024;

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS in /proc/<pid>/status');
  return Number(m[1]) / 1024;
}

interface Held {
  /** the status line the server answered, if any */
  status?: string;
  closed: boolean;
}

/**
 * `count` raw connections that each declare a 3 MiB body, send `sendBytes` of it without a token, and hold.
 * Resolves when every connection has been closed by the server, or after `holdMs`.
 */
async function holdPartialBodies(port: number, path: string, count: number, sendBytes: number, holdMs: number): Promise<Held[]> {
  const chunk = Buffer.alloc(64 * 1024, 'a');
  const held: Held[] = [];
  const sockets: net.Socket[] = [];
  const allClosed = Promise.all(
    Array.from({ length: count }, () => {
      const h: Held = { closed: false };
      held.push(h);
      const s = net.connect(port, '127.0.0.1');
      sockets.push(s);
      s.on('error', () => {});
      s.once('data', (d: Buffer) => (h.status = d.toString('latin1').split('\r\n')[0]));
      s.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${3 * MiB}\r\n\r\n`);
      let sent = 0;
      const pump = (): void => {
        while (sent < sendBytes && !s.destroyed) {
          sent += chunk.length;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
      };
      pump();
      return new Promise<void>((r) => s.once('close', () => ((h.closed = true), r())));
    }),
  );
  const timer = new Promise<void>((r) => setTimeout(r, holdMs).unref());
  await Promise.race([allClosed, timer]);
  for (const s of sockets) s.destroy();
  return held;
}

describe('hardening: bodies, metrics, secrets at rest', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s.stop();
    s.cleanup();
  });

  const attacks = [
    { name: 'kube API create', path: '/api/v1/namespaces/default/configmaps', status: /^HTTP\/1\.1 401 / },
    // From a non-loopback peer this path is served over plain HTTP too; the token in the path is checked first.
    { name: 'phone-home with a made-up token', path: '/metadata/nocloud/not-a-token/phone-home', status: /^HTTP\/1\.1 403 / },
  ];
  for (const a of attacks) {
    it(`200 connections holding 2.9 MB of a 3 MB body without a token (${a.name}): refused, closed, memory bounded`, async () => {
      const pid = s.proc.pid!;
      const before = rssMiB(pid);
      const held = await holdPartialBodies(s.port, a.path, 200, 2.9 * MiB, 15_000);
      const afterAttack = rssMiB(pid);
      assert.equal(held.filter((h) => h.closed).length, 200, 'the server closed every connection');
      // The refusal is sent before the connection is closed; a client still sending may see the reset first
      // (TCP drops what it had not read), so only the answers that arrived are checked, and that some did.
      const answers = held.flatMap((h) => (h.status ? [h.status] : []));
      assert.ok(answers.length > 0, 'some connections read the refusal');
      for (const status of answers) assert.match(status, a.status);
      // Buffering the bodies took 560 MB; refusing them before reading costs next to nothing.
      assert.ok(afterAttack - before < 100, `RSS grew from ${before.toFixed(0)} to ${afterAttack.toFixed(0)} MiB`);
      // Legitimate clients are still served.
      const cm = await api(s, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { generateName: 'after-attack-' }, data: { a: 'b' } });
      assert.equal(cm.status, 201, cm.text);
      assert.match(kubectlOk(s, ['get', 'namespaces', '-o', 'name']), /namespace\/default/);
    });
  }

  it('/metrics without or with a wrong token is a 401 with a Bearer challenge; with the token it is served', async () => {
    const rows: Array<{ name: string; headers: Record<string, string>; status: number }> = [
      { name: 'no token', headers: {}, status: 401 },
      { name: 'wrong token', headers: { authorization: 'Bearer mpt_wrong' }, status: 401 },
      { name: 'not a bearer token', headers: { authorization: 'Basic YTpi' }, status: 401 },
      { name: 'admin token', headers: { authorization: `Bearer ${s.token}` }, status: 200 },
    ];
    for (const r of rows) {
      const res = await fetch(`${s.plainUrl}/metrics`, { headers: r.headers });
      const text = await res.text();
      assert.equal(res.status, r.status, `${r.name}: ${text}`);
      if (r.status === 401) {
        assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer /, r.name);
        assert.equal((JSON.parse(text) as { code: number }).code, 401, r.name);
      } else {
        assert.match(text, /# TYPE /, r.name);
      }
    }
    // Kube API requests are timed when they end (the onResponse hook): this very test's kubectl calls are in it.
    const res = await fetch(`${s.plainUrl}/metrics`, { headers: { authorization: `Bearer ${s.token}` } });
    assert.match(await res.text(), /^metalplane_apiserver_request_duration_seconds_count\{verb="list",resource="namespaces",code="200"\} [1-9]/m);
  });

  it('/livez is served over plain HTTP like /healthz', async () => {
    for (const path of ['/livez', '/healthz']) {
      const res = await fetch(s.plainUrl + path);
      assert.equal(res.status, 200, path);
      assert.equal(await res.text(), 'ok', path);
    }
  });

  it('keeps the data dir files 0600 and secrets out of state.db in clear; they read back after a restart', async () => {
    const secret = `bmc-password-${Math.random().toString(36).slice(2)}`;
    const created = await api(s, 'POST', '/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'at-rest' }, stringData: { password: secret } });
    assert.ok(created.status === 201, created.text);
    for (const f of ['state.db', 'state.db-wal', 'state.db-shm', 'encryption.key', 'admin-token', 'kubeconfig', 'ca.key', 'tls.key']) {
      const p = join(s.dataDir, f);
      assert.ok(existsSync(p), `${f} exists`);
      assert.equal((statSync(p).mode & 0o777).toString(8), '600', f);
    }
    assert.equal((statSync(s.dataDir).mode & 0o777).toString(8), '700', 'the data dir');

    const rows = (): Array<{ key: string; value: string }> => {
      const db = new Database(join(s.dataDir, 'state.db'), { readonly: true, fileMustExist: true });
      try {
        return db.prepare('SELECT name AS key, value FROM kv').all() as Array<{ key: string; value: string }>;
      } finally {
        db.close();
      }
    };
    const base64 = Buffer.from(secret).toString('base64');
    const all = rows();
    assert.ok(all.some((r) => r.key.startsWith('/registry/core/secrets/default/at-rest')), 'the secret is stored');
    for (const r of all) {
      assert.ok(!r.value.includes(secret) && !r.value.includes(base64), `${r.key} holds the secret in clear`);
    }
    const signing = all.filter((r) => r.key === '/metalplane/provisioning-signing-key');
    assert.ok(signing.length > 0 && signing.every((r) => r.value.startsWith('k8s:enc:aesgcm:v1:')), 'the token signing key is encrypted');

    // Restart on the same data dir: the secret (and the signing key) decrypt again.
    assert.equal(await s.stop(), 0);
    const again = await startTestServer({ dataDir: s.dataDir });
    try {
      const got = await api(again, 'GET', '/api/v1/namespaces/default/secrets/at-rest');
      assert.equal(got.status, 200, got.text);
      assert.equal(Buffer.from((got.body as { data: { password: string } }).data.password, 'base64').toString(), secret);
    } finally {
      assert.equal(await again.stop(), 0);
    }
    s = await startTestServer({ dataDir: s.dataDir });
  });
});

describe('hardening: --data-dir', () => {
  const root = mkdtempSync(join(tmpdir(), 'metalplane-datadir-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  const cases: Array<{ name: string; prepare: (dir: string) => boolean; err: RegExp }> = [
    {
      name: 'world-writable',
      prepare: (dir) => (mkdirSync(dir), chmodSync(dir, 0o777), true),
      err: /is writable by every user \(mode 0777\)[\s\S]*point --data-dir at a directory only you can write[\s\S]*chmod 700/,
    },
    {
      name: 'owned by another user',
      prepare: (dir) => {
        if (process.getuid?.() !== 0) return false; // only root can give a directory away
        mkdirSync(dir, { mode: 0o700 });
        chownSync(dir, 65534, 65534);
        return true;
      },
      err: /is owned by uid 65534, not by this user[\s\S]*point --data-dir at a directory only you can write/,
    },
  ];
  for (const c of cases) {
    it(`refuses a data dir that is ${c.name}, exit 2, and leaves it alone`, async (t) => {
      const dir = join(root, c.name.replace(/\W+/g, '-'));
      if (!c.prepare(dir)) return t.skip('needs root to chown');
      const modeBefore = statSync(dir).mode;
      const r = await runMetalplane(['up', '--data-dir', dir, '--listen', '127.0.0.1:0', '--no-sim', '--log-level', 'error']);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, c.err);
      assert.equal(statSync(dir).mode, modeBefore, 'not chmod-ed');
      assert.equal(existsSync(join(dir, 'state.db')), false, 'nothing written');
    });
  }
});

describe('hardening: SIGTERM', () => {
  it('answers an agent long poll in flight (204, Retry-After) and logs no error', async () => {
    const s = await startTestServer({ args: ['--sim', '--sim-machines', '1', '--sim-speed', 'max'] });
    try {
      // Once discovered, the machine waits in the warm pool with nothing to do: a poll now only waits.
      await waitFor('the simulated machine available', async () => {
        const list = await api(s, 'GET', '/apis/metalplane.dev/v1alpha1/hardware');
        const items = (list.body as { items?: Array<{ status?: { state?: string } }> } | undefined)?.items ?? [];
        return items.length === 1 && items[0]!.status?.state === 'available';
      }, 30_000);
      // The running agent's token, read off the machine's console (its kernel command line): a free machine's
      // iPXE script carries none.
      const token = await waitFor('the warm agent\'s token', async () => {
        const machines = ((await api(s, 'GET', '/sim/v1/machines')).body as { machines: Array<{ phase: string; agent?: { token?: string } }> }).machines;
        return machines.find((m) => m.phase === 'agent' && m.agent?.token)?.agent?.token;
      });
      let answered = false;
      const poll = new Promise<{ status: number; retryAfter?: string }>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: s.port, path: '/agent/v1/next?wait=20', method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => ((answered = true), resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] as string | undefined })));
        });
        req.on('error', reject);
        req.end('{}');
      });
      // The poll is parked once the server has had time to run it (it answers within `wait`, 20 s, otherwise).
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(answered, false, `the poll is still waiting (answered: ${JSON.stringify(answered && (await poll))})`);
      const exit = s.stop();
      const got = await poll;
      assert.equal(got.status, 204);
      assert.equal(got.retryAfter, '1');
      assert.equal(await exit, 0, s.stderr());
      const errors = s.stderr().split('\n').filter((l) => /"level":(50|60)/.test(l) || /store is closed|agent api failed/.test(l));
      assert.deepEqual(errors, [], s.stderr());
    } finally {
      await s.kill();
      s.cleanup();
    }
  });
});

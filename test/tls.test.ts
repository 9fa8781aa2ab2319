// Transport security through the real server: kubectl over HTTPS with the written kubeconfig, curl and Node
// verifying against ca.crt (and failing without it), certificates and key modes across restarts, --tls-san,
// a bad --tls-cert-file, and the plain-HTTP peer rule seen from a real non-loopback address (a network
// namespace on a veth pair).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import YAML from 'yaml';
import { httpsRequest, isCI, kubectl, requireTool, runMetalplane, startTestServer, type TestServer } from './helpers/server.js';

const SAN = 'example.internal';
// Listening on every address lets the network-namespace peer reach the same server the other tests use.
const SERVER_ARGS = { listen: '0.0.0.0:0', args: ['--tls-san', SAN] };

let server: TestServer;
let dataDir: string;

before(async () => {
  server = await startTestServer(SERVER_ARGS);
  dataDir = server.dataDir;
});

after(async () => {
  await server?.stop();
  server?.cleanup();
});

function files(): { ca: Buffer; caKey: Buffer; cert: Buffer; key: Buffer } {
  return {
    ca: readFileSync(join(dataDir, 'ca.crt')),
    caKey: readFileSync(join(dataDir, 'ca.key')),
    cert: readFileSync(join(dataDir, 'tls.crt')),
    key: readFileSync(join(dataDir, 'tls.key')),
  };
}

function curl(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('curl', ['--silent', '--show-error', '--max-time', '10', ...args], { encoding: 'utf8', timeout: 15_000 });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('the kubeconfig points kubectl at https:// with the CA, and kubectl works', (t) => {
  const config = YAML.parse(readFileSync(server.kubeconfig, 'utf8')) as {
    clusters: { cluster: { server: string; 'certificate-authority-data'?: string; 'insecure-skip-tls-verify'?: boolean } }[];
  };
  const cluster = config.clusters[0]!.cluster;
  assert.match(cluster.server, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(cluster['insecure-skip-tls-verify'], undefined);
  assert.equal(Buffer.from(cluster['certificate-authority-data'] ?? '', 'base64').toString('utf8'), server.ca, 'the kubeconfig carries ca.crt');
  assert.equal((statSync(server.kubeconfig).mode & 0o777).toString(8), '600', 'the kubeconfig holds a token: mode 0600');

  if (!requireTool(t, ['kubectl', 'version', '--client'], 'needs kubectl on PATH (https://kubernetes.io/docs/tasks/tools/)')) return;
  const r = kubectl(server, ['get', 'namespaces', '-o', 'name']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /namespace\/default/);
  const v = kubectl(server, ['get', '--raw', '/version', '-v=6']);
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stderr, /GET https:\/\/127\.0\.0\.1:\d+\/version 200/, 'kubectl spoke HTTPS');
});

test('curl verifies with --cacert ca.crt and fails without it', (t) => {
  if (!requireTool(t, ['curl', '--version'], 'needs curl: apt-get install curl')) return;
  const auth = ['-H', `Authorization: Bearer ${server.token}`];
  const ok = curl(['--cacert', join(dataDir, 'ca.crt'), ...auth, '-w', '\n%{http_code}', `${server.url}/apis`]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /"kind":\s*"APIGroupList"[\s\S]*\n200$/);

  // localhost is a SAN too.
  const byName = curl(['--cacert', join(dataDir, 'ca.crt'), ...auth, '-o', '/dev/null', '-w', '%{http_code}', `https://localhost:${server.port}/api`]);
  assert.equal(byName.stdout, '200', byName.stderr);

  // Without the CA: curl error 60 (peer certificate cannot be authenticated), nothing is sent.
  const bare = curl([...auth, `${server.url}/apis`]);
  assert.equal(bare.status, 60, `curl exit ${bare.status}: ${bare.stderr}`);
  assert.match(bare.stderr, /certificate/i);
});

test('Node https verifies with the CA and fails without it', async () => {
  const ok = await httpsRequest(server, 'GET', '/api');
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.body.kind, 'APIVersions');
  await assert.rejects(httpsRequest(server, 'GET', '/api', { ca: null }), /self[- ]signed|unable to (get|verify)/i);
  // A token is still required over TLS.
  const anon = await httpsRequest(server, 'GET', '/api', { token: null });
  assert.equal(anon.status, 401);
});

test(`--tls-san ${SAN} is in the served certificate`, async () => {
  const peer = await new Promise<tls.PeerCertificate>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: server.port, ca: server.ca, servername: SAN }, () => {
      const c = socket.getPeerCertificate();
      socket.end();
      resolve(c);
    });
    socket.on('error', reject);
  });
  const sans = (peer.subjectaltname ?? '').split(', ');
  for (const want of [`DNS:${SAN}`, 'DNS:localhost', 'IP Address:127.0.0.1']) assert.ok(sans.includes(want), `${want} in ${peer.subjectaltname}`);
  // The hostname check passes for the SAN (servername drives it).
  const r = await httpsRequest(server, 'GET', '/version', { servername: SAN });
  assert.equal(r.status, 200);
  // The file on disk is what is served.
  assert.equal(new X509Certificate(readFileSync(join(dataDir, 'tls.crt'))).fingerprint256, peer.fingerprint256);
});

test('key files are 0600 and the certificates survive a restart byte for byte', async () => {
  for (const f of ['ca.key', 'tls.key', 'admin-token']) {
    assert.equal((statSync(join(dataDir, f)).mode & 0o777).toString(8), '600', `${f} mode`);
  }
  assert.equal((statSync(dataDir).mode & 0o777).toString(8), '700', 'data dir mode');
  const before = files();
  assert.equal(await server.stop(), 0, 'SIGTERM shuts down cleanly');
  server = await startTestServer({ ...SERVER_ARGS, dataDir });
  const after = files();
  assert.deepEqual(after.ca, before.ca, 'ca.crt unchanged');
  assert.deepEqual(after.caKey, before.caKey, 'ca.key unchanged');
  assert.deepEqual(after.cert, before.cert, 'tls.crt unchanged');
  assert.deepEqual(after.key, before.key, 'tls.key unchanged');
  for (const f of ['ca.key', 'tls.key']) assert.equal((statSync(join(dataDir, f)).mode & 0o777).toString(8), '600', `${f} mode after restart`);
  // The old kubeconfig's CA still verifies the restarted server.
  const r = await httpsRequest(server, 'GET', '/api', { ca: before.ca.toString('utf8') });
  assert.equal(r.status, 200);
});

test('a garbage --tls-cert-file makes `metalplane up` fail naming the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'metalplane-badcert-'));
  try {
    const cert = join(dir, 'garbage-cert.pem');
    const key = join(dir, 'garbage-key.pem');
    writeFileSync(cert, 'this is not a certificate\n');
    writeFileSync(key, randomBytes(64));
    const r = await runMetalplane(['up', '--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', '--no-sim', '--log-level', 'warn', '--tls-cert-file', cert, '--tls-key-file', key]);
    assert.notEqual(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    assert.equal(r.signal, null, 'it exits on its own, promptly');
    assert.ok(r.stderr.includes(cert), `the message names ${cert}:\n${r.stderr}`);
    assert.match(r.stderr, /certificate/i);
    assert.doesNotMatch(r.stdout, /ready/, 'it never claims to be ready');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------------------
// The peer rule from a non-loopback address.

interface Netns {
  name: string;
  hostIf: string;
  hostIp: string;
  nsIp: string;
}

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr || r.error}`);
}

function createNetns(): Netns {
  const id = randomBytes(3).toString('hex');
  const name = `mp-tls-${id}`;
  const hostIf = `mpt${id}h`; // ≤ 15 characters
  const nsIf = `mpt${id}n`;
  const b = randomBytes(2);
  const base = `10.${200 + (b[0]! % 50)}.${b[1]!}`;
  const n: Netns = { name, hostIf, hostIp: `${base}.1`, nsIp: `${base}.2` };
  ip(['netns', 'add', name]);
  try {
    ip(['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
    ip(['link', 'set', nsIf, 'netns', name]);
    ip(['addr', 'add', `${n.hostIp}/30`, 'dev', hostIf]);
    ip(['link', 'set', hostIf, 'up']);
    ip(['netns', 'exec', name, 'ip', 'addr', 'add', `${n.nsIp}/30`, 'dev', nsIf]);
    ip(['netns', 'exec', name, 'ip', 'link', 'set', nsIf, 'up']);
    ip(['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
  } catch (e) {
    destroyNetns(n);
    throw e;
  }
  return n;
}

function destroyNetns(n: Netns): void {
  // Deleting the namespace deletes its veth end, and with it the pair.
  spawnSync('ip', ['link', 'del', n.hostIf]);
  spawnSync('ip', ['netns', 'del', n.name]);
}

function canUseNetns(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (CAP_NET_ADMIN) to create a network namespace';
  const probe = `mp-probe-${randomBytes(3).toString('hex')}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.error) return `needs iproute2 (apt-get install iproute2): ${r.error.message}`;
  spawnSync('ip', ['netns', 'del', probe]);
  if (r.status !== 0) return `cannot create a network namespace here: ${r.stderr.trim()}`;
  return undefined;
}

test('from a non-loopback peer: plain /api → 403 (use https), plain /healthz → 200, HTTPS /api → 200', async (t) => {
  if (!requireTool(t, ['curl', '--version'], 'needs curl: apt-get install curl')) return;
  const why = canUseNetns();
  if (why) {
    if (isCI()) throw new Error(`CI: ${why}`);
    t.skip(why);
    return;
  }
  const n = createNetns();
  t.after(() => destroyNetns(n));
  const port = server.port;
  const inNs = (args: string[]): { status: number; stdout: string; stderr: string } => {
    const r = spawnSync('ip', ['netns', 'exec', n.name, 'curl', '--silent', '--show-error', '--max-time', '10', ...args], { encoding: 'utf8', timeout: 15_000 });
    if (r.error) throw r.error;
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  const auth = ['-H', `Authorization: Bearer ${server.token}`];

  // Inside the namespace there is only lo and the veth end, so the server sees the peer as ${n.nsIp}.
  const plainApi = inNs([...auth, '-w', '\n%{http_code}', `http://${n.hostIp}:${port}/api`]);
  assert.equal(plainApi.status, 0, plainApi.stderr);
  const [body, code] = [plainApi.stdout.slice(0, plainApi.stdout.lastIndexOf('\n')), plainApi.stdout.slice(plainApi.stdout.lastIndexOf('\n') + 1)];
  assert.equal(code, '403', plainApi.stdout);
  const status = JSON.parse(body) as { kind: string; code: number; reason: string; message: string };
  assert.equal(status.kind, 'Status');
  assert.equal(status.code, 403);
  assert.equal(status.reason, 'Forbidden');
  assert.match(status.message, /https/);
  assert.ok(!body.includes(server.token), 'the refusal does not echo the token');
  assert.ok(!body.includes('Bearer'), 'the refusal does not echo the Authorization header');

  // A path that only looks like an allowed one is refused too.
  const sneaky = inNs([...auth, '--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', `http://${n.hostIp}:${port}/healthz/../api`]);
  assert.equal(sneaky.stdout, '403', sneaky.stderr);

  const health = inNs(['-w', '\n%{http_code}', `http://${n.hostIp}:${port}/healthz`]);
  assert.equal(health.stdout, 'ok\n200', health.stderr);

  // HTTPS from the same peer with the CA and token. The host address is not in the certificate, so connect to
  // it under the --tls-san name.
  const https = inNs(['--cacert', join(dataDir, 'ca.crt'), '--resolve', `${SAN}:${port}:${n.hostIp}`, ...auth, '-w', '\n%{http_code}', `https://${SAN}:${port}/api`]);
  assert.equal(https.status, 0, https.stderr);
  assert.match(https.stdout, /"kind":\s*"APIVersions"[\s\S]*\n200$/);

  // The refusal is about the peer, not the path: the same plain request from loopback is served.
  const loop = curl([...auth, '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/api`]);
  assert.equal(loop.stdout, '200', loop.stderr);
});

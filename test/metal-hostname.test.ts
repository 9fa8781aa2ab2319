// Tools that cannot change their base URL (the `metal` CLI, Cluster API's provider, the cloud controller manager
// hard-code https://api.equinix.com/metal/v1) reach metalplane by name resolution: `metalplane up --listen
// ADDR:443 --tls-san api.equinix.com`, a hosts entry pointing api.equinix.com at ADDR, and the CA trusted by the
// client. This test builds exactly that inside a network namespace it creates: a veth pair in a private /30, the
// server listening on the host end at port 443, `/etc/netns/<ns>/hosts` (which `ip netns exec` bind-mounts over
// /etc/hosts) naming the host end api.equinix.com, and real clients run in the namespace — curl with --cacert,
// and Node's default `https` module trusting the CA through NODE_EXTRA_CA_CERTS, as an SDK user would. No traffic
// leaves the namespaces the test creates.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isCI, requireTool, startTestServer, type TestServer } from './helpers/server.js';
import { checkContract, type MetalResult } from './helpers/metal.js';

const NAME = 'api.equinix.com';
const BASE_URL = `https://${NAME}/metal/v1`;

interface Netns {
  name: string;
  hostIf: string;
  hostIp: string;
  nsIp: string;
  etcDir: string;
}

function ip(args: string[]): string {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 15_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr || r.error}`);
  return r.stdout;
}

/** A /30 in 10.250.0.0/16 that no interface of this host has yet (bounded tries). */
function freeSubnet(): { hostIp: string; nsIp: string } {
  const inUse = ip(['-o', '-4', 'addr', 'show']);
  for (let i = 0; i < 20; i++) {
    const [third, fourth] = randomBytes(2);
    const base = `10.250.${third!}`;
    const block = (fourth! % 64) * 4;
    const hostIp = `${base}.${block + 1}`;
    const nsIp = `${base}.${block + 2}`;
    if (!inUse.includes(` ${hostIp}/`) && !inUse.includes(` ${nsIp}/`)) return { hostIp, nsIp };
  }
  throw new Error('no free /30 in 10.250.0.0/16 after 20 tries');
}

function createNetns(): Netns {
  const id = randomBytes(3).toString('hex');
  const name = `mp-host-${id}`;
  const { hostIp, nsIp } = freeSubnet();
  const n: Netns = { name, hostIf: `mph${id}h`, hostIp, nsIp, etcDir: join('/etc/netns', name) };
  const nsIf = `mph${id}n`; // interface names ≤ 15 characters
  ip(['netns', 'add', name]);
  try {
    ip(['link', 'add', n.hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
    ip(['link', 'set', nsIf, 'netns', name]);
    ip(['addr', 'add', `${hostIp}/30`, 'dev', n.hostIf]);
    ip(['link', 'set', n.hostIf, 'up']);
    ip(['netns', 'exec', name, 'ip', 'addr', 'add', `${nsIp}/30`, 'dev', nsIf]);
    ip(['netns', 'exec', name, 'ip', 'link', 'set', nsIf, 'up']);
    ip(['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
    // Only this namespace sees the name: the host's own /etc/hosts is untouched.
    mkdirSync(n.etcDir, { recursive: true });
    writeFileSync(join(n.etcDir, 'hosts'), `127.0.0.1 localhost\n${hostIp} ${NAME}\n`);
  } catch (e) {
    destroyNetns(n);
    throw e;
  }
  return n;
}

function destroyNetns(n: Netns): void {
  // Deleting either end of a veth pair deletes both; deleting the namespace deletes its end too.
  spawnSync('ip', ['link', 'del', n.hostIf]);
  spawnSync('ip', ['netns', 'del', n.name]);
  rmSync(n.etcDir, { recursive: true, force: true });
}

/** Why the test cannot run here, or undefined. Under CI a reason fails the file instead. */
function netnsSkipReason(): string | undefined {
  const why = ((): string | undefined => {
    if (process.getuid?.() !== 0) return 'needs root (CAP_NET_ADMIN, and port 443) to create a network namespace';
    const curl = spawnSync('curl', ['--version'], { encoding: 'utf8' });
    if (curl.error || curl.status !== 0) return 'needs curl: apt-get install curl';
    const probe = `mp-probe-${randomBytes(3).toString('hex')}`;
    const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
    if (r.error) return `needs iproute2 (apt-get install iproute2): ${r.error.message}`;
    spawnSync('ip', ['netns', 'del', probe]);
    if (r.status !== 0) return `cannot create a network namespace here: ${r.stderr.trim()}`;
    return undefined;
  })();
  if (why && isCI()) throw new Error(`required capability missing under CI: ${why}`);
  return why;
}

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

function inNs(n: Netns, cmd: string[], env: Record<string, string> = {}): Run {
  const r = spawnSync('ip', ['netns', 'exec', n.name, ...cmd], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

// Python's default TLS context (what urllib3, and so the equinix-metal SDK, uses without `ssl_ca_cert`) reads
// OpenSSL's default paths, which SSL_CERT_FILE overrides.
const PYTHON = '/usr/bin/python3';
const PYTHON_CLIENT = `
import json, os, sys, urllib.request
req = urllib.request.Request(sys.argv[1], headers={'X-Auth-Token': sys.argv[2]})
with urllib.request.urlopen(req, timeout=10) as res:
    print(json.dumps({'status': res.status, 'contentType': res.headers.get('content-type', ''), 'text': res.read().decode()}))
`;

// What an SDK user's program does: the default `https` module, the hard-coded URL, no `ca` option (the CA comes
// from NODE_EXTRA_CA_CERTS). Prints one JSON line: the answer, or the error's code.
const NODE_CLIENT = `
import https from 'node:https';
const [method, url, token, body] = process.argv.slice(2);
const req = https.request(url, { method, headers: { 'x-auth-token': token, ...(body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
  let text = '';
  const remote = res.socket.remoteAddress; // the socket is detached from the response by 'end'
  res.setEncoding('utf8');
  res.on('data', (d) => (text += d));
  res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, contentType: res.headers['content-type'] ?? '', text, remote })));
});
req.setTimeout(10000, () => req.destroy(new Error('timeout')));
req.on('error', (e) => console.log(JSON.stringify({ error: e.code ?? e.message })));
req.end(body || undefined);
`;

describe(`Metal API under its original name (${NAME} on port 443, resolved in a network namespace)`, { skip: netnsSkipReason() }, () => {
  let n: Netns;
  let s: TestServer;
  let work: string;
  let caFile: string;
  let client: string;

  before(async () => {
    n = createNetns();
    s = await startTestServer({ listen: `${n.hostIp}:443`, args: ['--tls-san', NAME] });
    work = mkdtempSync(join(tmpdir(), 'metalplane-hostname-'));
    caFile = join(s.dataDir, 'ca.crt');
    client = join(work, 'client.mjs');
    writeFileSync(client, NODE_CLIENT);
  });

  after(async () => {
    await s?.stop();
    s?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
    if (n) destroyNetns(n);
  });

  /** curl inside the namespace; the answer checked against the spec like every Metal API call in the tests. */
  function curl(method: string, path: string, token: string, body?: unknown, extra: string[] = ['--cacert', caFile]): MetalResult & { remote: string } {
    const args = ['curl', '--silent', '--show-error', '--max-time', '10', ...extra, '-X', method, '-H', `X-Auth-Token: ${token}`];
    if (body !== undefined) args.push('-H', 'Content-Type: application/json', '--data', JSON.stringify(body));
    args.push('-w', '\n%{http_code} %{remote_ip} %{content_type}', `${BASE_URL}${path}`);
    const r = inNs(n, args);
    assert.equal(r.status, 0, `curl exited ${r.status}: ${r.stderr}`);
    const cut = r.stdout.lastIndexOf('\n');
    const text = r.stdout.slice(0, cut);
    const [code, remote, contentType] = r.stdout.slice(cut + 1).split(' ');
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    const out = { status: Number(code), body: parsed, text, headers: new Headers(contentType ? { 'content-type': contentType } : {}), remote: remote ?? '' };
    checkContract(method, path, out);
    return out;
  }

  function node(method: string, path: string, token: string, opts: { body?: unknown; trustCa?: boolean } = {}): { status?: number; body?: any; error?: string; remote?: string } {
    const env: Record<string, string> = opts.trustCa === false ? {} : { NODE_EXTRA_CA_CERTS: caFile };
    const r = inNs(n, [process.execPath, client, method, `${BASE_URL}${path}`, token, opts.body === undefined ? '' : JSON.stringify(opts.body)], env);
    assert.equal(r.status, 0, `node exited ${r.status}: ${r.stderr}`);
    const line = JSON.parse(r.stdout.trim()) as { status?: number; contentType?: string; text?: string; error?: string; remote?: string };
    if (line.error) return { error: line.error };
    const body = line.text ? (JSON.parse(line.text) as unknown) : undefined;
    checkContract(method, path, { status: line.status!, body, text: line.text ?? '', headers: new Headers({ 'content-type': line.contentType ?? '' }) });
    return { status: line.status, body, remote: line.remote };
  }

  test('the server listens on the veth address at port 443; only the namespace resolves the name to it', () => {
    assert.equal(s.url, `https://${n.hostIp}:443`);
    const inside = inNs(n, ['getent', 'hosts', NAME]);
    assert.equal(inside.stdout.trim().split(/\s+/)[0], n.hostIp, `inside the namespace ${NAME} is metalplane: ${inside.stdout}`);
    // The host's own resolver is untouched.
    const outside = spawnSync('getent', ['hosts', NAME], { encoding: 'utf8' });
    assert.ok(!outside.stdout.includes(n.hostIp), `the host does not resolve ${NAME} to the test address: ${outside.stdout}`);
    // The served certificate names it (curl and Node below check the name against it as they connect).
    const peer = inNs(n, [process.execPath, '-e', `const s=require('node:tls').connect({host:${JSON.stringify(NAME)},port:443,servername:${JSON.stringify(NAME)},rejectUnauthorized:false},()=>{console.log(s.getPeerCertificate().subjectaltname);s.end()})`]);
    assert.ok(peer.stdout.split(', ').map((x) => x.trim()).includes(`DNS:${NAME}`), `SANs: ${peer.stdout}${peer.stderr}`);
  });

  test(`curl --cacert ca.crt ${BASE_URL}/user answers the default user, from metalplane`, () => {
    const r = curl('GET', '/user', s.token);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.remote, n.hostIp, 'curl resolved the name through the namespace hosts file to metalplane');
    assert.equal(r.body.email, 'admin@metalplane.local');
    // A wrong token is refused in the API's own error form.
    const bad = curl('GET', '/user', 'not-a-key');
    assert.equal(bad.status, 401);
  });

  test('without the CA the connection is refused before anything is sent (curl exit 60)', () => {
    const r = inNs(n, ['curl', '--silent', '--show-error', '--max-time', '10', '-H', `X-Auth-Token: ${s.token}`, `${BASE_URL}/user`]);
    assert.equal(r.status, 60, `curl exit ${r.status}: ${r.stderr}`);
    assert.match(r.stderr, /certificate/i);
  });

  test('plain HTTP to the same name and port is refused: the API needs TLS from a non-loopback peer', () => {
    const r = inNs(n, ['curl', '--silent', '--show-error', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', '-H', `X-Auth-Token: ${s.token}`, `http://${NAME}:443/metal/v1/user`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '403');
  });

  test('a Node program with the default https module and NODE_EXTRA_CA_CERTS works with a project key', () => {
    const project = curl('POST', '/projects', s.token, { name: 'hard-coded url' });
    assert.equal(project.status, 201, project.text);
    const key = curl('POST', `/projects/${project.body.id}/api-keys`, s.token, { description: 'ccm', read_only: false });
    assert.equal(key.status, 201, key.text);
    const token = key.body.token as string;
    assert.ok(token, 'the create answers the token once');

    const got = node('GET', `/projects/${project.body.id}`, token);
    assert.equal(got.error, undefined, `node: ${got.error}`);
    assert.equal(got.status, 200);
    assert.equal(got.remote, n.hostIp);
    assert.equal(got.body.id, project.body.id);
    assert.equal(got.body.name, 'hard-coded url');
    // The project key sees its project only.
    const list = node('GET', '/projects', token);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.projects.map((p: { id: string }) => p.id), [project.body.id]);
    // A write through the same path (the key is read-write).
    const put = node('PUT', `/projects/${project.body.id}`, token, { body: { name: 'renamed over api.equinix.com' } });
    assert.equal(put.status, 200);
    assert.equal(put.body.name, 'renamed over api.equinix.com');
  });

  test('the same Node program without NODE_EXTRA_CA_CERTS fails certificate verification', () => {
    const r = node('GET', '/user', s.token, { trustCa: false });
    assert.match(r.error ?? '', /SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|CERT/, `expected a certificate error, got ${JSON.stringify(r)}`);
  });

  test('Python urllib with SSL_CERT_FILE=ca.crt reaches it under the same name', (t) => {
    if (!requireTool(t, [PYTHON, '--version'], `needs ${PYTHON}: apt-get install python3`)) return;
    const r = inNs(n, [PYTHON, '-c', PYTHON_CLIENT, `${BASE_URL}/user`, s.token], { SSL_CERT_FILE: caFile });
    assert.equal(r.status, 0, `python exited ${r.status}: ${r.stderr}`);
    const line = JSON.parse(r.stdout.trim()) as { status: number; contentType: string; text: string };
    const body = JSON.parse(line.text) as { email: string };
    checkContract('GET', '/user', { status: line.status, body, text: line.text, headers: new Headers({ 'content-type': line.contentType }) });
    assert.equal(line.status, 200);
    assert.equal(body.email, 'admin@metalplane.local');
    // Without it, the system roots do not know our CA.
    const bare = inNs(n, [PYTHON, '-c', PYTHON_CLIENT, `${BASE_URL}/user`, s.token]);
    assert.notEqual(bare.status, 0);
    assert.match(bare.stderr, /CERTIFICATE_VERIFY_FAILED/);
  });
});

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ensureCertificates } from './certs.js';
import { createPolyglotServer, type PolyglotServerHandle } from './listener.js';
import { isLoopbackAddress, isPlainHttpPath, plainHttpDecision } from './peer-policy.js';

const run = promisify(execFile);

test('isLoopbackAddress', () => {
  const rows: Array<[string | undefined, boolean]> = [
    ['127.0.0.1', true],
    ['127.255.3.4', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:127.9.9.9', true],
    ['0:0:0:0:0:0:0:1', true],
    ['128.0.0.1', false],
    ['10.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['::2', false],
    ['fe80::1%lo', false],
    ['localhost', false],
    ['', false],
    [undefined, false],
  ];
  for (const [address, want] of rows) assert.equal(isLoopbackAddress(address), want, String(address));
});

test('plainHttpDecision', () => {
  const remote = '10.0.0.5';
  const rows: Array<{ name: string; path: string; remoteAddress?: string; encrypted?: boolean; insecureHttp?: boolean; allow: boolean }> = [
    // loopback and TLS: everything
    { name: 'loopback v4, api', path: '/api/v1/namespaces', remoteAddress: '127.0.0.1', allow: true },
    { name: 'loopback v6, metal', path: '/metal/v1/projects', remoteAddress: '::1', allow: true },
    { name: 'loopback v4-mapped, ui', path: '/ui/', remoteAddress: '::ffff:127.0.0.1', allow: true },
    { name: 'TLS from anywhere, api', path: '/api', encrypted: true, allow: true },
    { name: '--insecure-http, api', path: '/api', insecureHttp: true, allow: true },
    // machine paths over plain HTTP from other peers
    { name: 'iPXE script', path: '/boot/ipxe/aa:bb:cc:dd:ee:ff', allow: true },
    { name: 'kernel with query', path: '/boot/vmlinuz?arch=x86_64', allow: true },
    { name: 'boot itself', path: '/boot', allow: true },
    { name: 'metadata', path: '/metadata', allow: true },
    { name: 'metadata subpath', path: '/metadata/v1/instance-id', allow: true },
    { name: 'userdata', path: '/userdata', allow: true },
    { name: 'EC2 latest meta-data', path: '/latest/meta-data/instance-id', allow: true },
    { name: 'EC2 IMDSv2 token', path: '/latest/api/token', allow: true },
    { name: 'EC2 min version', path: '/2009-04-04/user-data', allow: true },
    { name: 'EC2 extended version', path: '/2021-03-23/meta-data/tags/instance', allow: true },
    { name: 'NoCloud seed', path: '/nocloud/meta-data', allow: true },
    { name: 'NoCloud at root', path: '/vendor-data', allow: true },
    { name: 'NoCloud network-config', path: '/network-config', allow: true },
    { name: 'OpenStack', path: '/openstack/latest/meta_data.json', allow: true },
    { name: 'phone-home', path: '/phone-home/abc', allow: true },
    { name: 'healthz', path: '/healthz', allow: true },
    { name: 'livez', path: '/livez', allow: true },
    { name: 'readyz with query', path: '/readyz?verbose', allow: true },
    { name: 'absolute-form', path: 'http://10.0.0.1:7080/boot/x', allow: true },
    { name: 'dot segment staying inside', path: '/boot/a/../b', allow: true },
    // everything else needs TLS
    { name: 'api', path: '/api', allow: false },
    { name: 'apis', path: '/apis/metalplane.dev/v1alpha1', allow: false },
    { name: 'metal api', path: '/metal/v1/projects', allow: false },
    { name: 'console', path: '/ui/', allow: false },
    { name: 'agent', path: '/agent/v1/register', allow: false },
    { name: 'metrics', path: '/metrics', allow: false },
    { name: 'version', path: '/version', allow: false },
    { name: 'openapi', path: '/openapi/v2', allow: false },
    { name: 'root', path: '/', allow: false },
    { name: 'empty', path: '', allow: false },
    { name: 'asterisk-form', path: '*', allow: false },
    // prefix tricks
    { name: 'segment prefix', path: '/bootx/y', allow: false },
    { name: 'segment prefix 2', path: '/metadata-admin', allow: false },
    { name: 'case', path: '/BOOT/x', allow: false },
    { name: 'query lookalike', path: '/api?/boot/', allow: false },
    { name: 'fragment lookalike', path: '/api#/boot/', allow: false },
    { name: 'dot-dot out of boot', path: '/boot/../api/v1/secrets', allow: false },
    { name: 'encoded dot-dot', path: '/boot/%2e%2e/api', allow: false },
    { name: 'encoded slash and dot-dot', path: '/boot/..%2Fapi', allow: false },
    { name: 'double-encoded dot-dot', path: '/boot/%252e%252e/api', allow: false },
    { name: 'backslash dot-dot', path: '/boot/..\\api', allow: false },
    { name: 'dot-dot into boot, router sees api', path: '/api/..%2F..%2Fboot/x', allow: false },
    { name: 'plain dot-dot into boot', path: '/api/../boot/x', allow: false },
    { name: 'encoded first segment', path: '/%62oot/x', allow: false },
    { name: 'double slash', path: '//boot/x', allow: false },
    { name: 'malformed encoding', path: '/boot/%zz', allow: false },
    { name: 'NUL', path: '/boot/\0', allow: false },
  ];
  for (const row of rows) {
    const decision = plainHttpDecision({
      encrypted: row.encrypted ?? false,
      remoteAddress: row.remoteAddress ?? remote,
      path: row.path,
      insecureHttp: row.insecureHttp ?? false,
    });
    assert.equal(decision.allow, row.allow, `${row.name}: ${JSON.stringify(row.path)}`);
    if (!decision.allow) {
      assert.equal(decision.status, 403, row.name);
      assert.match(decision.message, /https:\/\//, row.name);
    }
  }
  assert.equal(isPlainHttpPath('/boot/x'), true);
});

// --- end to end: a peer that is not loopback, in its own network namespace ---------------------------------------

const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const ns = `mp-tls-${id}`;
const vethHost = `mpv${id}h`;
const vethNs = `mpv${id}n`;
const octet = 1 + (randomBytes(1)[0]! % 250);
const hostIp = `10.231.${octet}.1`;
const nsIp = `10.231.${octet}.2`;
let created = false;
let server: PolyglotServerHandle | undefined;
let dataDir: string | undefined;

after(async () => {
  await server?.close();
  if (created) {
    // Deleting the namespace removes the ns end of the veth pair, and with it the host end.
    await run('ip', ['netns', 'delete', ns]).catch(() => {});
    await run('ip', ['link', 'delete', vethHost]).catch(() => {});
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function whyNoNetns(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root to create a network namespace';
  try {
    await run('ip', ['-V']);
  } catch {
    return 'needs iproute2 (`ip`) to create a network namespace';
  }
  return undefined;
}

const CLIENT = `
const http = require('node:http'), https = require('node:https');
const { HOST, PORT, CA } = process.env;
const get = (scheme, path) => new Promise((resolve) => {
  (scheme === 'https' ? https : http).get({ host: HOST, port: PORT, path, ca: CA, agent: false }, (res) => {
    let body = ''; res.setEncoding('utf8');
    res.on('data', (d) => (body += d));
    res.on('end', () => resolve({ status: res.statusCode, body }));
  }).on('error', (err) => resolve({ error: err.message }));
});
(async () => {
  const out = {
    bootPlain: await get('http', '/boot/x'),
    apiPlain: await get('http', '/api'),
    apiTls: await get('https', '/api'),
  };
  process.stdout.write(JSON.stringify(out));
})();
`;

test('a peer in another network namespace gets boot paths over HTTP, the API only over HTTPS', async (t) => {
  const reason = await whyNoNetns();
  if (reason) {
    if (process.env.CI === 'true') assert.fail(`network namespace test cannot run in CI: ${reason}`);
    t.skip(reason);
    return;
  }
  const ip = async (...args: string[]): Promise<void> => {
    await run('ip', args);
  };
  try {
    await ip('netns', 'add', ns);
  } catch (err) {
    const msg = `cannot create a network namespace: ${(err as Error).message.trim()}`;
    if (process.env.CI === 'true') assert.fail(msg);
    t.skip(msg);
    return;
  }
  created = true;
  await ip('link', 'add', vethHost, 'type', 'veth', 'peer', 'name', vethNs);
  await ip('link', 'set', vethNs, 'netns', ns);
  await ip('addr', 'add', `${hostIp}/30`, 'dev', vethHost);
  await ip('link', 'set', vethHost, 'up');
  await ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${nsIp}/30`, 'dev', vethNs);
  await ip('netns', 'exec', ns, 'ip', 'link', 'set', vethNs, 'up');

  dataDir = await mkdtemp(path.join(os.tmpdir(), 'metalplane-netns-'));
  const certs = await ensureCertificates({ dataDir, sans: [hostIp] });
  server = createPolyglotServer((req, res) => {
    const decision = plainHttpDecision({
      encrypted: (req.socket as { encrypted?: boolean }).encrypted === true,
      remoteAddress: req.socket.remoteAddress,
      path: req.url ?? '/',
      insecureHttp: false,
    });
    if (!decision.allow) {
      res.writeHead(decision.status, { 'content-type': 'text/plain' });
      res.end(decision.message);
      return;
    }
    res.end(`ok from ${req.socket.remoteAddress}`);
  }, certs);
  await new Promise<void>((resolve) => server!.server.listen(0, hostIp, resolve));
  const port = (server.server.address() as net.AddressInfo).port;

  // Not execFileSync: the server answering is in this process.
  const { stdout } = await run('ip', ['netns', 'exec', ns, process.execPath, '-e', CLIENT], {
    env: { ...process.env, HOST: hostIp, PORT: String(port), CA: certs.ca },
    timeout: 20_000,
  });
  const out = JSON.parse(stdout) as Record<string, { status?: number; body?: string; error?: string }>;
  assert.deepEqual(out.bootPlain, { status: 200, body: `ok from ${nsIp}` });
  assert.equal(out.apiPlain?.status, 403);
  assert.match(out.apiPlain?.body ?? '', /https:\/\//);
  assert.deepEqual(out.apiTls, { status: 200, body: `ok from ${nsIp}` });
});

// The official Python client (Debian's python3-kubernetes) against the real server, with the kubeconfig
// `metalplane up` writes and TLS verification on: CoreV1Api lists, CustomObjectsApi over a metalplane kind, and
// a watch stream that sees a ConfigMap the test creates while the script is watching.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { api, requireTool, startTestServer, waitFor, writeTemp, type TestServer } from './helpers/server.js';

// The python3 on PATH may be a pyenv build without the module; Debian's package installs for /usr/bin/python3.
const PYTHON = '/usr/bin/python3';
const INSTALL_HINT = 'needs Debian\'s python3-kubernetes for /usr/bin/python3: apt-get install python3-kubernetes';

const SCRIPT = String.raw`
import json, sys
from kubernetes import client, config, watch

kubeconfig, no_ca_kubeconfig, target = sys.argv[1], sys.argv[2], sys.argv[3]

# Without the CA the same client must refuse the server's certificate.
bare = client.ApiClient(configuration=client.Configuration())
config.load_kube_config(config_file=no_ca_kubeconfig, client_configuration=bare.configuration)
bare.configuration.retries = 0
try:
    client.CoreV1Api(bare).list_namespace(_request_timeout=10)
    print("NOCA", json.dumps({"refused": False}), flush=True)
except Exception as e:
    print("NOCA", json.dumps({"refused": True, "error": type(e).__name__ + ": " + str(e)[:300]}), flush=True)

config.load_kube_config(config_file=kubeconfig)
cfg = client.Configuration.get_default_copy()
# Verification must be on: the kubeconfig's CA is what makes HTTPS work.
print("VERIFY", json.dumps({"verify_ssl": cfg.verify_ssl, "host": cfg.host, "ca": bool(cfg.ssl_ca_cert)}), flush=True)

v1 = client.CoreV1Api()
print("NAMESPACES", json.dumps(sorted(n.metadata.name for n in v1.list_namespace().items)), flush=True)
cms = v1.list_namespaced_config_map("default")
print("CONFIGMAPS", json.dumps({"names": sorted(c.metadata.name for c in cms.items), "rv": cms.metadata.resource_version}), flush=True)

custom = client.CustomObjectsApi()
plans = custom.list_cluster_custom_object("metalplane.dev", "v1alpha1", "plans")
print("PLANS", json.dumps(sorted(p["metadata"]["name"] for p in plans["items"])), flush=True)
one = custom.get_cluster_custom_object("metalplane.dev", "v1alpha1", "plans", "c3.small.x86")
print("PLAN", json.dumps({"kind": one["kind"], "cpus": one["spec"]["specs"]["cpus"]}), flush=True)

try:
    v1.read_namespaced_config_map("no-such-configmap", "default")
except client.exceptions.ApiException as e:
    print("NOTFOUND", json.dumps({"status": e.status, "reason": json.loads(e.body)["reason"]}), flush=True)

print("WATCHING", flush=True)
w = watch.Watch()
found = False
for ev in w.stream(v1.list_namespaced_config_map, "default", timeout_seconds=20):
    obj = ev["object"]
    if ev["type"] == "ADDED" and obj.metadata.name == target:
        print("EVENT", json.dumps({"type": ev["type"], "name": obj.metadata.name, "data": obj.data, "rv": obj.metadata.resource_version}), flush=True)
        found = True
        w.stop()
print("DONE", json.dumps({"found": found}), flush=True)
`;

let server: TestServer;

before(async () => {
  server = await startTestServer();
});

after(async () => {
  await server?.stop();
  server?.cleanup();
});

test('python kubernetes client: lists, custom objects and a watch over verified HTTPS', async (t) => {
  if (!requireTool(t, [PYTHON, '-c', 'import kubernetes'], INSTALL_HINT)) return;

  const seeded = await api(server, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'py-seeded' }, data: { s: '1' } });
  assert.equal(seeded.status, 201, seeded.text);

  const script = writeTemp(server.dataDir, 'client.py', SCRIPT);
  const noCa = writeTemp(server.dataDir, 'kubeconfig-no-ca', readFileSync(server.kubeconfig, 'utf8').replace(/^\s*certificate-authority-data:.*$/m, ''));
  assert.doesNotMatch(readFileSync(noCa, 'utf8'), /certificate-authority/);
  const target = 'py-watched';
  const proc = spawn(PYTHON, [script, server.kubeconfig, noCa, target], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Nothing from the environment may make verification pass or fail: only the kubeconfig's CA counts.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: server.dataDir, LANG: 'C.UTF-8' },
  });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('close', (code) => r(code)));
  const killer = setTimeout(() => proc.kill('SIGKILL'), 40_000);
  try {
    await waitFor(`the script to start watching (stdout: ${out} stderr: ${err})`, () => out.includes('WATCHING') || proc.exitCode !== null, 30_000, 25);
    assert.ok(out.includes('WATCHING'), `script exited early:\n${out}\n${err}`);
    const created = await api(server, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: target }, data: { hello: 'python' } });
    assert.equal(created.status, 201, created.text);
    const code = await exited;
    assert.equal(code, 0, `script failed:\n${out}\n${err}`);

    const line = (tag: string): any => {
      const l = out.split('\n').find((s) => s.startsWith(tag + ' '));
      assert.ok(l, `no ${tag} line in:\n${out}\n${err}`);
      return JSON.parse(l.slice(tag.length + 1));
    };
    const verify = line('VERIFY');
    assert.equal(verify.verify_ssl, true);
    assert.equal(verify.ca, true);
    assert.match(verify.host, /^https:\/\//);

    const noCaResult = line('NOCA');
    assert.equal(noCaResult.refused, true, 'without the CA the client must fail verification');
    assert.match(noCaResult.error, /CERTIFICATE_VERIFY_FAILED|certificate verify failed|SSLError/i);

    const namespaces: string[] = line('NAMESPACES');
    for (const ns of ['default', 'kube-system', 'metalplane-system']) assert.ok(namespaces.includes(ns), `${ns} in ${namespaces}`);

    const cms = line('CONFIGMAPS');
    assert.ok(cms.names.includes('py-seeded'), JSON.stringify(cms));
    assert.match(cms.rv, /^[0-9]+$/);

    const plans: string[] = line('PLANS');
    assert.ok(plans.includes('c3.small.x86'), `c3.small.x86 in ${plans}`);
    const plan = line('PLAN');
    assert.equal(plan.kind, 'Plan');
    assert.ok(Array.isArray(plan.cpus) && plan.cpus.length > 0);

    assert.deepEqual(line('NOTFOUND'), { status: 404, reason: 'NotFound' });

    const ev = line('EVENT');
    assert.equal(ev.type, 'ADDED');
    assert.equal(ev.name, target);
    assert.deepEqual(ev.data, { hello: 'python' });
    assert.equal(ev.rv, created.body.metadata.resourceVersion);
    assert.deepEqual(line('DONE'), { found: true });
  } finally {
    clearTimeout(killer);
    if (proc.exitCode === null) proc.kill('SIGKILL');
  }
});

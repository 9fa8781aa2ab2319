// Debian's cloud-init as the judge of the metadata service, on a device the simulated datacenter provisioned
// (user data from a CloudConfig): cloud-init's NoCloud seed reader (util.read_seeded) fetches meta-data,
// user-data and vendor-data from the device's seed URL; its network_state and netplan code parse network-config;
// its EC2 helper (sources/helpers/ec2) walks the EC2 tree and reads user-data under the token path. Then the
// machine's user state lands as an Event (kubectl, the Metal API), and the Metal API shows the render as userdata.
// Under CI a missing cloud-init or kubectl fails the file; locally it is skipped with what to install.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { api, kubectl, kubectlOk, REPO, startTestServer, toolSkipReason, waitFor, type TestServer } from './helpers/server.js';
import { kubectlSkipReason } from './helpers/kubectl.js';
import { metal } from './helpers/metal.js';

const Python = '/usr/bin/python3';
const hint = "install Debian's cloud-init: apt-get install -y cloud-init";
const skip =
  kubectlSkipReason() ??
  toolSkipReason(['cloud-init', '--version'], hint) ??
  toolSkipReason([Python, '-c', 'import cloudinit.util, cloudinit.net.network_state, cloudinit.net.netplan, cloudinit.sources.helpers.ec2'], hint);

/** Runs cloud-init's own code on `argv[1]` and prints JSON. Logging off: cloud-init logs to stderr otherwise. */
function cloudInit(script: string, arg: string): any {
  const prelude = 'import sys, json, logging\nlogging.disable(logging.CRITICAL)\n';
  const r = spawnSync(Python, ['-c', prelude + script, arg], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `cloud-init's code failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const ReadSeeded = `
from cloudinit import util
md, ud, vd = util.read_seeded(sys.argv[1], timeout=10, retries=2)
print(json.dumps({"md": md, "ud": ud.decode() if ud is not None else None, "vd": util.load_yaml(vd.decode()) if vd else None, "vdText": vd.decode() if vd else None}))
`;

const NetworkConfig = `
from cloudinit import url_helper, util
from cloudinit.net import network_state, netplan
cfg = util.load_yaml(url_helper.read_file_or_url(sys.argv[1] + "network-config", timeout=10, retries=2).contents.decode())
ns = network_state.parse_net_config_data(cfg)
ifaces = [{"name": i["name"], "type": i["type"], "mac": i.get("mac_address"), "bond": i.get("bond-master"),
           "subnets": [{"address": s.get("address"), "prefix": s.get("prefix"), "routes": [{"network": r.get("network"), "prefix": r.get("prefix"), "gateway": r.get("gateway")} for r in s.get("routes", [])]} for s in i.get("subnets", [])]}
          for i in ns.iter_interfaces()]
print(json.dumps({"version": cfg.get("version"), "interfaces": ifaces, "netplan": netplan.Renderer()._render_content(ns)}))
`;

const Ec2 = `
from cloudinit.sources.helpers import ec2
md = ec2.get_instance_metadata(api_version="latest", metadata_address=sys.argv[1], timeout=10, retries=2)
ud = ec2.get_instance_userdata(api_version="latest", metadata_address=sys.argv[1], timeout=10, retries=2)
print(json.dumps({"md": md, "ud": ud.decode() if isinstance(ud, bytes) else ud}))
`;

const Config = `#cloud-config
write_files:
- path: /etc/metalplane-judge
  content: "judged by cloud-init\\n"
runcmd:
- [sh, -c, "echo judged"]
`;

interface Ip {
  address: string;
  cidr: number;
  gateway: string;
  family: number;
  public: boolean;
}

describe("Debian's cloud-init reads metalplane's metadata service", { skip }, () => {
  let s: TestServer;
  let seed: string;
  let base: string;
  let uid: string;
  let ips: Ip[];
  let nics: Array<{ name?: string; mac: string }>;
  let rendered: string;
  let key: string;

  before(async () => {
    s = await startTestServer({ args: ['--sim', '--sim-machines', '2', '--sim-speed', 'max'] });
    kubectlOk(s, ['apply', '-f', join(REPO, 'examples', 'ssh-key.yaml')]);
    const cc = { apiVersion: 'metalplane.dev/v1alpha1', kind: 'CloudConfig', metadata: { name: 'judge', namespace: 'default' }, spec: { parts: [{ contentType: 'text/cloud-config', content: Config }] } };
    const dev = { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Device', metadata: { name: 'judged-1', namespace: 'default' }, spec: { metro: 'da', plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04', cloudConfigRef: { name: 'judge' } } };
    kubectlOk(s, ['apply', '-f', '-'], [cc, dev].map((o) => JSON.stringify(o)).join('\n'));
    const w = kubectl(s, ['wait', 'device/judged-1', '--for=condition=Ready', '--timeout=90s']);
    assert.equal(w.status, 0, w.stderr);
    const d = (await api(s, 'GET', '/apis/metalplane.dev/v1alpha1/namespaces/default/devices/judged-1')).body;
    uid = d.metadata.uid;
    ips = d.status.ipAddresses;
    nics = (await api(s, 'GET', `/apis/metalplane.dev/v1alpha1/hardware/${d.status.hardware}`)).body.spec.nics;
    rendered = (await api(s, 'GET', '/apis/metalplane.dev/v1alpha1/namespaces/default/cloudconfigs/judge')).body.status.userData;
    key = (await api(s, 'GET', '/apis/metalplane.dev/v1alpha1/namespaces/default/sshkeys')).body.items[0].spec.key;
    // The seed URL the agent wrote onto the machine's disk; the token in it is the machine's credential.
    seed = ((await api(s, 'GET', `/sim/v1/machines/${d.status.hardware}`)).body as { datasource: string }).datasource;
    const token = /\/metadata\/nocloud\/([^/]+)\/$/.exec(seed)![1]!;
    base = `${s.plainUrl}/metadata/${token}`;
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
  });

  test('NoCloud: read_seeded fetches meta-data, user-data and vendor-data from the seed URL', () => {
    const got = cloudInit(ReadSeeded, seed);
    assert.equal(got.md['instance-id'], uid);
    assert.equal(got.md['local-hostname'], 'judged-1');
    assert.deepEqual(got.md['public-keys'], [key.trim()]);
    assert.equal(got.ud, rendered, 'the user data is the CloudConfig\'s render, byte for byte');
    assert.equal(got.vd.phone_home.url, `${base}/phone-home`);
    assert.deepEqual(got.vd.phone_home.post, ['instance_id', 'hostname', 'fqdn']);
    // The vendor data is a cloud-config cloud-init's schema accepts.
    const dir = mkdtempSync(join(tmpdir(), 'metalplane-vendor-data-'));
    const file = join(dir, 'vendor-data.yaml');
    writeFileSync(file, got.vdText);
    const r = spawnSync('cloud-init', ['schema', '--config-file', file], { encoding: 'utf8', timeout: 60_000 });
    rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 0, `cloud-init schema refused the vendor data: ${r.stdout}${r.stderr}\n${got.vdText}`);
  });

  test('NoCloud: network-config version 2 parses into the NICs by MAC and the bond with the device\'s addresses and routes', () => {
    const got = cloudInit(NetworkConfig, seed);
    assert.equal(got.version, 2);
    const byName = new Map<string, any>(got.interfaces.map((i: any) => [i.name, i]));
    nics.forEach((n, i) => {
      const iface = byName.get(n.name ?? `eth${i}`);
      assert.ok(iface, `NIC ${n.mac} is in the config: ${JSON.stringify(got.interfaces)}`);
      assert.equal(iface.type, 'physical');
      assert.equal(iface.mac, n.mac);
    });
    const bond = byName.get('bond0');
    assert.equal(bond?.type, 'bond');
    assert.deepEqual(
      bond.subnets.map((x: any) => `${x.address}/${x.prefix}`).sort(),
      ips.map((i) => `${i.address}/${i.cidr}`).sort(),
    );
    const routes = bond.subnets.flatMap((x: any) => x.routes).map((r: any) => `${r.network}/${r.prefix} via ${r.gateway}`);
    const pub4 = ips.find((i) => i.family === 4 && i.public)!;
    const pub6 = ips.find((i) => i.family === 6 && i.public)!;
    assert.ok(routes.includes(`0.0.0.0/0 via ${pub4.gateway}`), JSON.stringify(routes));
    // cloud-init's network state keeps an IPv6 default route with prefix 64 (its v1 form); what it renders for
    // netplan is the route we sent.
    assert.ok(routes.some((r: string) => r.startsWith('::/') && r.endsWith(` via ${pub6.gateway}`)), JSON.stringify(routes));
    assert.match(got.netplan, new RegExp(`to: ::/0\\n\\s+via: '?${pub6.gateway}'?\\n`));
    assert.match(got.netplan, /bonds:\n\s+bond0:/);
    assert.match(got.netplan, new RegExp(`- ${pub4.address.replace(/\./g, '\\.')}/${pub4.cidr}`));
  });

  test('EC2: cloud-init\'s ec2 helper walks the tree and reads the user data under the token path', () => {
    const got = cloudInit(Ec2, base);
    const priv4 = ips.find((i) => i.family === 4 && !i.public)!;
    const pub4 = ips.find((i) => i.family === 4 && i.public)!;
    assert.equal(got.md['instance-id'], uid);
    assert.equal(got.md.hostname, 'judged-1');
    assert.equal(got.md['local-ipv4'], priv4.address);
    assert.equal(got.md['public-ipv4'], pub4.address);
    assert.equal(got.md['instance-type'], 'c3.small.x86');
    assert.equal(got.md.placement.region, 'da');
    const keys = Object.values(got.md['public-keys'] as Record<string, string | string[]>).flat();
    assert.deepEqual(keys, [key.trim()]);
    assert.equal(got.md.network.interfaces.macs[nics[0]!.mac]['public-ipv4s'], pub4.address);
    assert.equal(got.ud, rendered);
  });

  test('Equinix: /metadata and /userdata under the token path; user state lands as an Event seen by kubectl and the Metal API', async () => {
    const md = (await fetch(`${base}/metadata`).then((r) => r.json())) as any;
    assert.equal(md.id, uid);
    assert.equal(md.network_type, 'layer3');
    assert.deepEqual(md.network.interfaces.map((i: { mac: string }) => i.mac), nics.map((n) => n.mac));
    assert.equal(await fetch(`${base}/userdata`).then((r) => r.text()), rendered);
    const posted = await fetch(md.user_state_url, { method: 'POST', body: JSON.stringify({ state: 'succeeded', code: 1000, message: 'judged and ready' }) });
    assert.equal(posted.status, 202, await posted.text());
    const events = await waitFor('the user-state Event', async () => {
      const out = kubectlOk(s, ['get', 'events', '--field-selector', 'involvedObject.name=judged-1']);
      return /UserStateSucceeded/.test(out) ? out : undefined;
    });
    assert.match(events, /the machine reports user state succeeded \(code 1000\): judged and ready/);
    const mev = await metal(s, 'GET', `/devices/${uid}/events`);
    assert.equal(mev.status, 200, mev.text);
    const ev = mev.body.events.find((e: { type: string }) => e.type === 'instance.user-state-succeeded');
    assert.ok(ev, JSON.stringify(mev.body.events.map((e: { type: string }) => e.type)));
    assert.match(ev.body, /judged and ready/);
    // Bad input is a 4xx that says what is wrong.
    const bad = await fetch(md.user_state_url, { method: 'POST', body: '{"state":"done"}' });
    assert.equal(bad.status, 422);
    assert.match(((await bad.json()) as { errors: string[] }).errors[0]!, /"done" is not a state; it is one of running, succeeded, failed/);
  });

  test('a post without a valid instance token is refused before its body is read', async () => {
    for (const path of ['/metadata/forged.token/events', '/metadata/forged.token/phone-home', '/metadata/nocloud/forged.token/phone-home']) {
      // A body announced and never sent: only a refusal that does not wait for it can answer.
      const res = await new Promise<{ status: number; connection?: string; text: string }>((resolve, reject) => {
        const req = request(`${s.plainUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '1000000' } }, (r) => {
          let text = '';
          r.on('data', (c: Buffer) => (text += c.toString()));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, connection: r.headers.connection, text }));
        });
        req.on('error', reject);
        req.write('{"state":');
      });
      assert.equal(res.status, 403, `${path}: ${res.text}`);
      assert.equal(res.connection, 'close', path);
      assert.match(res.text, /this metadata token is not valid/);
    }
  });

  test('the Metal API shows the CloudConfig\'s render as the device\'s userdata', async () => {
    const dev = await metal(s, 'GET', `/devices/${uid}`);
    assert.equal(dev.status, 200, dev.text);
    assert.equal(dev.body.userdata, rendered);
    const listed = await metal(s, 'GET', `/projects/${dev.body.project.id ?? dev.body.project_lite.href.split('/').pop()}/devices`);
    assert.equal(listed.status, 200, listed.text);
    assert.equal(listed.body.devices.find((d: { id: string }) => d.id === uid)?.userdata, rendered);
  });
});

// The metadata service in process (Fastify inject with a chosen peer address, a real store and registry): every
// format for one machine, and that no caller — another machine's token, a forged one, none, another address —
// reads another machine's metadata or user data. Two tenants' devices on two machines.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { parse as parseYaml } from 'yaml';
import { Registry } from '../apiserver/registry.js';
import { allKinds, KindRegistry } from '../kinds/index.js';
import type { KubeObject, StoredObject } from '../kinds/types.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/types.js';
import { kindsFrom } from '../controllers/provisioning-context.js';
import { BootRecords } from './boots.js';
import { metadataBaseUrl, registerMetadataService, seedUrl } from './metadata.js';
import { Informer } from '../runtime/informer.js';
import { TokenSigner } from './tokens.js';
import { UserStateLimiter, parseUserState } from './metadata-user-state.js';

const PLAIN = 'http://mp.example:8080';

function sshKey(comment: string): string {
  const type = Buffer.from('ssh-ed25519');
  const blob = Buffer.concat([Buffer.alloc(4), type, Buffer.alloc(4), randomBytes(32)]);
  blob.writeUInt32BE(type.length, 0);
  blob.writeUInt32BE(32, 4 + type.length);
  return `ssh-ed25519 ${blob.toString('base64')} ${comment}`;
}

interface Machine {
  hw: StoredObject;
  dev: StoredObject;
  key: string;
  token: string;
  macs: string[];
  /** Strings only this machine's answers may hold. */
  markers: string[];
}

interface Rig {
  app: FastifyInstance;
  registry: Registry;
  store: Store;
  a: Machine;
  b: Machine;
  get(url: string, peer?: string): Promise<{ status: number; text: string; type: string }>;
  /** Resolves once the Device informer (if the rig has one) holds `dev` at its resourceVersion, or `gone` no more. */
  devicesSee(dev: StoredObject, gone?: boolean): Promise<void>;
  post(url: string, body: string, peer?: string): Promise<{ status: number; text: string; headers: Record<string, unknown> }>;
}

const ip = (address: string, network: string, cidr: number, gateway: string, family: 4 | 6, isPublic: boolean) => ({ address, network, cidr, gateway, family, public: isPublic });

async function rig(opts: { ipInformer?: boolean; deviceInformer?: boolean } = {}): Promise<Rig> {
  const store = openSqliteStore(':memory:');
  const registry = new Registry({ store, kinds: new KindRegistry(allKinds) });
  await registry.start();
  const kinds = kindsFrom(registry);
  // As the server has it: the IPAddress informer (else the service lists the project's assignments).
  const ipAddresses = opts.ipInformer ? new Informer({ client: registry, kind: kinds.ipAddress }) : undefined;
  // …and the Device informer (else a request by address lists every device).
  const devices = opts.deviceInformer ? new Informer({ client: registry, kind: kinds.device }) : undefined;
  const signer = TokenSigner.forTest();
  const boots = new BootRecords(store);
  // As the server: tokens travel in paths, longer than Fastify's default parameter length.
  const app = Fastify({ routerOptions: { maxParamLength: 2048 } });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  registerMetadataService(app, { client: registry, deviceKind: kinds.device, workflowKind: kinds.workflow, sshKeyKind: registry.kind('metalplane.dev', 'SSHKey'), ipAddresses, devices, signer, boots, plainUrl: () => PLAIN, now: () => 1_800_000_000_000 });
  for (const inf of [ipAddresses, devices]) {
    if (!inf) continue;
    inf.start();
    await inf.waitForSync();
    app.addHook('onClose', async () => inf.stop());
  }
  const ns = registry.kind('', 'Namespace');
  for (const name of ['metalplane-system', 'tenant-a', 'tenant-b']) await registry.create(ns, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  await registry.create(registry.kind('metalplane.dev', 'OperatingSystem'), {
    apiVersion: 'metalplane.dev/v1alpha1',
    kind: 'OperatingSystem',
    metadata: { name: 'ubuntu-24-04' },
    spec: { slug: 'ubuntu_24_04', name: 'Ubuntu 24.04 LTS', distro: 'ubuntu', version: '24.04', provisionableOn: ['*'], image: { url: 'https://images.example/ubuntu.img', format: 'qcow2' }, workflow: 'ubuntu-install' },
  });

  const machine = async (n: string, tenant: string, octet: number, extra: { network?: unknown; userData: string }): Promise<Machine> => {
    const macs = [`02:00:00:00:0${octet}:01`, `02:00:00:00:0${octet}:02`];
    const hwObj: KubeObject = {
      apiVersion: 'metalplane.dev/v1alpha1',
      kind: 'Hardware',
      metadata: { name: `da11-r01-s0${octet}` },
      spec: { metro: 'da', facility: 'da11', plan: 'c3.small.x86', bmc: { driver: 'redfish', address: 'http://127.0.0.1:1', credentialsSecret: { name: 'bmc' } }, nics: [{ name: 'eth0', mac: macs[0], pxe: true }, { name: 'eth1', mac: macs[1] }], disks: [{ device: '/dev/sda', sizeGB: 480 }] },
    };
    let hw = await registry.create(kinds.hardware, hwObj);
    const key = sshKey(`${n}@laptop`);
    await registry.create(registry.kind('metalplane.dev', 'SSHKey'), { apiVersion: 'metalplane.dev/v1alpha1', kind: 'SSHKey', metadata: { name: `${n}-key`, namespace: tenant }, spec: { label: `${n}@laptop`, key } });
    let dev = await registry.create(kinds.device, {
      apiVersion: 'metalplane.dev/v1alpha1',
      kind: 'Device',
      metadata: { name: `dev-${n}`, namespace: tenant },
      spec: { hostname: `host-${n}`, metro: 'da', plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04', tags: [`tag-${n}`], customData: { owner: n }, userData: extra.userData, ...(extra.network ? { network: extra.network } : {}) },
    });
    dev = await registry.updateStatus(kinds.device, {
      ...dev,
      status: {
        state: 'active',
        hardware: hw.metadata.name,
        metro: 'da',
        facility: 'da11',
        ipAddresses: [
          ip(`147.75.8${octet}.3`, `147.75.8${octet}.2`, 31, `147.75.8${octet}.2`, 4, true),
          ip(`10.2.${octet}.3`, `10.2.${octet}.2`, 31, `10.2.${octet}.2`, 4, false),
          ip(`2604:1380:${octet}::3`, `2604:1380:${octet}::2`, 127, `2604:1380:${octet}::2`, 6, true),
        ],
      },
    });
    hw = await registry.updateStatus(kinds.hardware, { ...hw, status: { state: 'in-use', claim: { namespace: tenant, name: dev.metadata.name, uid: dev.metadata.uid } } });
    const token = seedUrl(PLAIN, signer, dev).split('/')[5]!;
    return { hw, dev, key, token, macs, markers: [dev.metadata.uid, `host-${n}`, key.split(' ')[1]!, `marker-${n}`, macs[0]!, token, `147.75.8${octet}.3`] };
  };
  const a = await machine('a', 'tenant-a', 5, { userData: '#cloud-config\nruncmd:\n- echo marker-a\n' });
  const b = await machine('b', 'tenant-b', 6, { userData: '#!/bin/sh\necho marker-b\n', network: { ports: [{ name: 'eth1', bonded: false }] } });
  // Each machine netbooted from its own address on the provisioning network.
  for (const [m, peer] of [[a, '10.0.0.5'], [b, '10.0.0.6']] as const) {
    await boots.begin(m.hw.metadata.name, { hardwareUid: m.hw.metadata.uid, powerOn: `${m.hw.metadata.uid}/0/1/0`, workflow: { namespace: m.dev.metadata.namespace!, name: 'wf' }, peer, now: 1_800_000_000 });
  }

  const get: Rig['get'] = async (url, peer = '10.9.9.9') => {
    const res = await app.inject({ method: 'GET', url, remoteAddress: peer });
    return { status: res.statusCode, text: res.body, type: String(res.headers['content-type'] ?? '') };
  };
  const post: Rig['post'] = async (url, body, peer = '10.9.9.9') => {
    const res = await app.inject({ method: 'POST', url, remoteAddress: peer, headers: { 'content-type': 'application/json' }, payload: body });
    return { status: res.statusCode, text: res.body, headers: res.headers };
  };
  // The informer follows the store's watch: a write shows in its index a moment after it is acknowledged.
  const devicesSee = async (dev: StoredObject, gone = false): Promise<void> => {
    for (let i = 0; devices && i < 2000; i++) {
      const held = devices.get(dev.metadata.namespace, dev.metadata.name);
      if (gone ? !held : held?.metadata.resourceVersion === dev.metadata.resourceVersion) return;
      await new Promise((r) => setTimeout(r, 1));
    }
    if (devices) throw new Error(`the Device informer did not catch up with ${dev.metadata.name}`);
  };
  return { app, registry, store, a, b, get, post, devicesSee };
}

/** Every format a machine can read with its token: the path under the server, and a string only A's answer holds. */
const formats: Array<{ name: string; path: (token: string) => string; own: (m: Machine) => string }> = [
  { name: 'Equinix /metadata', path: (t) => `/metadata/${t}/metadata`, own: (m) => m.dev.metadata.uid },
  { name: 'Equinix /userdata', path: (t) => `/metadata/${t}/userdata`, own: (m) => `marker-${m.dev.metadata.name.slice(4)}` },
  { name: 'NoCloud meta-data', path: (t) => `/metadata/nocloud/${t}/meta-data`, own: (m) => m.dev.metadata.uid },
  { name: 'NoCloud user-data', path: (t) => `/metadata/nocloud/${t}/user-data`, own: (m) => `marker-${m.dev.metadata.name.slice(4)}` },
  { name: 'NoCloud vendor-data', path: (t) => `/metadata/nocloud/${t}/vendor-data`, own: (m) => m.token },
  { name: 'NoCloud network-config', path: (t) => `/metadata/nocloud/${t}/network-config`, own: (m) => m.macs[0]! },
  { name: 'EC2 instance-id', path: (t) => `/metadata/${t}/latest/meta-data/instance-id`, own: (m) => m.dev.metadata.uid },
  { name: 'EC2 public-ipv4 (a dated version)', path: (t) => `/metadata/${t}/2009-04-04/meta-data/public-ipv4`, own: (m) => m.markers[6]! },
  { name: 'EC2 openssh-key', path: (t) => `/metadata/${t}/latest/meta-data/public-keys/0/openssh-key`, own: (m) => m.key },
  { name: 'EC2 user-data', path: (t) => `/metadata/${t}/latest/user-data`, own: (m) => `marker-${m.dev.metadata.name.slice(4)}` },
];

// Both ways a request by address finds its device: the Device informer's index (as the server has it) and a list.
for (const deviceInformer of [true, false])
describe(`the metadata service (${deviceInformer ? "devices by address from the Device informer's index" : 'devices by address from a list'})`, () => {
  let r: Rig;
  before(async () => {
    r = await rig({ deviceInformer });
  });
  after(async () => {
    await r.app.close();
    r.registry.close();
    await r.store.close();
  });

  test('isolation: each token reads only its own device, on every format; a forged token or none reads nothing', async () => {
    const [bodyA] = r.a.token.split('.');
    const [, sigB] = r.b.token.split('.');
    for (const f of formats) {
      for (const [me, other] of [[r.a, r.b], [r.b, r.a]] as const) {
        const res = await r.get(f.path(me.token));
        assert.equal(res.status, 200, `${f.name}: ${res.text}`);
        assert.ok(res.text.includes(f.own(me)), `${f.name}: ${me.dev.metadata.name} reads its own (${f.own(me)}): ${res.text}`);
        for (const m of other.markers) assert.ok(!res.text.includes(m), `${f.name}: ${me.dev.metadata.name}'s answer holds ${other.dev.metadata.name}'s ${m}`);
      }
      for (const [what, token, code] of [
        ["A's claims with B's signature", `${bodyA}.${sigB}`, [403]],
        ['a made-up token', 'not-a-token', [403]],
        // `/metadata//metadata`: a token that is not valid, or no route at all
        ['an empty token', '', [403, 404]],
      ] as const) {
        const res = await r.get(f.path(token));
        assert.ok((code as readonly number[]).includes(res.status), `${f.name} with ${what}: ${res.status} ${res.text}`);
        for (const m of [...r.a.markers, ...r.b.markers]) assert.ok(!res.text.includes(m), `${f.name} with ${what} leaks ${m}`);
      }
    }
  });

  test('isolation by address: /metadata and /userdata answer the machine at the caller\'s address, and nobody else', async () => {
    const cases: Array<{ name: string; peer: string; code: number; is?: Machine; message?: RegExp }> = [
      { name: 'the address A netbooted from', peer: '10.0.0.5', code: 200, is: r.a },
      { name: 'the same as IPv4-mapped IPv6', peer: '::ffff:10.0.0.5', code: 200, is: r.a },
      { name: "B's private address", peer: '10.2.6.3', code: 200, is: r.b },
      { name: 'an address no machine has', peer: '10.9.9.9', code: 404, message: /no device is known at 10\.9\.9\.9/ },
      { name: 'loopback (no machine netbooted from it here)', peer: '127.0.0.1', code: 404, message: /no device is known/ },
      { name: "A's public address (not a provisioning network address)", peer: '147.75.85.3', code: 404, message: /no device is known/ },
    ];
    for (const c of cases) {
      for (const path of ['/metadata', '/userdata']) {
        const res = await r.get(path, c.peer);
        assert.equal(res.status, c.code, `${c.name} ${path}: ${res.text}`);
        // A refusal names the caller's own address, nothing else.
        const others = (c.is ? (c.is === r.a ? r.b : r.a).markers : [...r.a.markers, ...r.b.markers]).filter((m) => m !== c.peer);
        for (const m of others) assert.ok(!res.text.includes(m), `${c.name} ${path} leaks ${m}`);
        if (c.message) assert.match(JSON.parse(res.text).errors[0], c.message);
        if (c.is && path === '/metadata') assert.equal(JSON.parse(res.text).id, c.is.dev.metadata.uid);
        if (c.is && path === '/userdata') assert.match(res.text, new RegExp(`marker-${c.is.dev.metadata.name.slice(4)}`));
      }
    }
  });

  test('an address that names two devices names neither; a contested boot counts for nobody', async () => {
    const kinds = kindsFrom(r.registry);
    // A third device whose private address is the one B netbooted from.
    let c = await r.registry.create(kinds.device, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Device', metadata: { name: 'dev-c', namespace: 'tenant-a' }, spec: { metro: 'da', plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04' } });
    c = await r.registry.updateStatus(kinds.device, { ...c, status: { state: 'active', ipAddresses: [ip('10.0.0.6', '10.0.0.6', 31, '10.0.0.7', 4, false)] } });
    await r.devicesSee(c);
    const two = await r.get('/metadata', '10.0.0.6');
    assert.equal(two.status, 409, two.text);
    assert.match(JSON.parse(two.text).errors[0], /2 devices are known at 10\.0\.0\.6/);
    for (const m of r.b.markers) assert.ok(!two.text.includes(m));
    const del = await r.registry.deleteWithResult(kinds.device, 'tenant-a', 'dev-c');
    await r.devicesSee(del.object, del.gone);
    // Another host asked for A's power-on: the boot is revoked, and its address no longer names A.
    const boots = new BootRecords(r.store);
    const out = await boots.begin(r.a.hw.metadata.name, { hardwareUid: r.a.hw.metadata.uid, powerOn: `${r.a.hw.metadata.uid}/0/1/0`, workflow: { namespace: 'tenant-a', name: 'wf' }, peer: '10.0.0.66', now: 1_800_000_001 });
    assert.equal(out.kind, 'contested');
    for (const peer of ['10.0.0.5', '10.0.0.66']) assert.equal((await r.get('/metadata', peer)).status, 404, peer);
  });

  test('Equinix /metadata: the fields scripts read, with token-path URLs', async () => {
    const res = await r.get(`/metadata/${r.a.token}/metadata`);
    assert.equal(res.status, 200);
    assert.match(res.type, /^application\/json/);
    const md = JSON.parse(res.text);
    const base = metadataBaseUrl(PLAIN, TokenSigner.forTest(), r.a.dev).replace(/[^/]+$/, r.a.token);
    assert.equal(md.id, r.a.dev.metadata.uid);
    assert.equal(md.hostname, 'host-a');
    assert.match(md.iqn, new RegExp(`^iqn\\.\\d{4}-\\d{2}\\.dev\\.metalplane:device\\.${r.a.dev.metadata.uid.slice(0, 8)}$`));
    assert.deepEqual(md.operating_system, { slug: 'ubuntu_24_04', distro: 'ubuntu', version: '24.04', license_activation: { state: 'unlicensed' }, image_tag: null });
    assert.equal(md.plan, 'c3.small.x86');
    assert.equal(md.class, 'c3.small.x86');
    assert.equal(md.facility, 'da11');
    assert.equal(md.metro, 'da');
    assert.deepEqual(md.tags, ['tag-a']);
    assert.deepEqual(md.ssh_keys, [r.a.key]);
    assert.deepEqual(md.customdata, { owner: 'a' });
    assert.deepEqual(md.volumes, []);
    assert.equal(md.network_type, 'layer3');
    assert.deepEqual(md.network.bonding, { mode: 4, link_aggregation: 'bonded', mac: r.a.macs[0] });
    assert.deepEqual(md.network.interfaces, [{ name: 'eth0', mac: r.a.macs[0], bond: 'bond0' }, { name: 'eth1', mac: r.a.macs[1], bond: 'bond0' }]);
    assert.deepEqual(
      md.network.addresses.map((x: Record<string, unknown>) => [x.address, x.address_family, x.public, x.management, x.cidr, x.gateway, x.netmask]),
      [
        ['147.75.85.3', 4, true, true, 31, '147.75.85.2', '255.255.255.254'],
        ['10.2.5.3', 4, false, true, 31, '10.2.5.2', '255.255.255.254'],
        ['2604:1380:5::3', 6, true, true, 127, '2604:1380:5::2', undefined],
      ],
    );
    assert.equal(md.api_url, base);
    assert.equal(md.phone_home_url, `${base}/phone-home`);
    assert.equal(md.user_state_url, `${base}/events`);
    // B's eth1 is out of the bond: hybrid, and the interface carries no bond.
    const mb = JSON.parse((await r.get(`/metadata/${r.b.token}/metadata`)).text);
    assert.equal(mb.network_type, 'hybrid');
    assert.equal(mb.network.bonding.link_aggregation, 'mixed');
    assert.deepEqual(mb.network.interfaces[1], { name: 'eth1', mac: r.b.macs[1] });
  });

  test('NoCloud network-config: version 2, NICs by MAC, the bond with its addresses and routes', async () => {
    const cases: Array<{ name: string; m: () => Machine; bondMembers: string[] }> = [
      { name: 'layer 3, both NICs bonded', m: () => r.a, bondMembers: ['eth0', 'eth1'] },
      { name: 'hybrid: eth1 out of the bond', m: () => r.b, bondMembers: ['eth0'] },
    ];
    for (const c of cases) {
      const m = c.m();
      const n = m === r.a ? 5 : 6;
      const res = await r.get(`/metadata/nocloud/${m.token}/network-config`);
      assert.equal(res.status, 200, res.text);
      const cfg = parseYaml(res.text);
      assert.equal(cfg.version, 2, c.name);
      assert.deepEqual(cfg.ethernets, { eth0: { match: { macaddress: m.macs[0] }, 'set-name': 'eth0' }, eth1: { match: { macaddress: m.macs[1] }, 'set-name': 'eth1' } }, c.name);
      assert.deepEqual(cfg.bonds.bond0.interfaces, c.bondMembers, c.name);
      assert.equal(cfg.bonds.bond0.macaddress, m.macs[0]);
      assert.equal(cfg.bonds.bond0.parameters.mode, '802.3ad');
      assert.deepEqual(cfg.bonds.bond0.addresses, [`147.75.8${n}.3/31`, `10.2.${n}.3/31`, `2604:1380:${n}::3/127`], c.name);
      assert.deepEqual(cfg.bonds.bond0.routes, [
        { to: '0.0.0.0/0', via: `147.75.8${n}.2` },
        { to: '10.0.0.0/8', via: `10.2.${n}.2` },
        { to: '::/0', via: `2604:1380:${n}::2` },
      ], c.name);
    }
  });

  test('the EC2 tree: listings with sub-directories, public-keys as 0=<name>, 404 for what is not there', async () => {
    const base = `/metadata/${r.a.token}/latest/meta-data`;
    const cases: Array<{ path: string; code: number; body?: string | RegExp }> = [
      { path: `${base}/`, code: 200, body: /^ami-id\nhostname\ninstance-id\ninstance-type\nlocal-hostname\npublic-hostname\nlocal-ipv4\npublic-ipv4\nipv6\nmac\nplacement\/\npublic-keys\/\nnetwork\/$/ },
      { path: base, code: 200, body: /^ami-id\n/ },
      { path: `${base}/local-ipv4`, code: 200, body: '10.2.5.3' },
      { path: `${base}/public-ipv4`, code: 200, body: '147.75.85.3' },
      { path: `${base}/hostname`, code: 200, body: 'host-a' },
      { path: `${base}/placement/`, code: 200, body: 'availability-zone\nregion' },
      { path: `${base}/placement/region`, code: 200, body: 'da' },
      { path: `${base}/public-keys/`, code: 200, body: '0=a@laptop' },
      { path: `${base}/public-keys/0/`, code: 200, body: 'openssh-key' },
      { path: `${base}/network/interfaces/macs/${r.a.macs[0]}/public-ipv4s`, code: 200, body: '147.75.85.3' },
      { path: `${base}/nothing-here`, code: 404 },
      { path: `${base}/hostname/deeper`, code: 404 },
      { path: `${base}/constructor`, code: 404 },
      { path: `/metadata/${r.a.token}/1999-01-01/meta-data/instance-id`, code: 404, body: /the versions are latest/ },
    ];
    for (const c of cases) {
      const res = await r.get(c.path);
      assert.equal(res.status, c.code, `${c.path}: ${res.text}`);
      if (typeof c.body === 'string') assert.equal(res.text, c.body, c.path);
      else if (c.body) assert.match(res.text, c.body, c.path);
    }
  });

  test('user state: a valid post is an Event on the device; bad bodies are 4xx naming the problem; bad tokens 403', async () => {
    const url = `/metadata/${r.a.token}/events`;
    const ok = await r.post(url, JSON.stringify({ state: 'succeeded', code: 1001, message: 'app installed' }));
    assert.equal(ok.status, 202, ok.text);
    const events = (await r.registry.list(r.registry.kind('', 'Event'), { namespace: 'tenant-a' })).items as Array<StoredObject & Record<string, any>>;
    const ev = events.find((e) => e.reason === 'UserStateSucceeded');
    assert.ok(ev, JSON.stringify(events));
    assert.equal(ev.involvedObject.name, 'dev-a');
    assert.equal(ev.involvedObject.uid, r.a.dev.metadata.uid);
    assert.equal(ev.type, 'Normal');
    assert.equal(ev.message, 'the machine reports user state succeeded (code 1001): app installed');
    const failed = await r.post(url, JSON.stringify({ state: 'failed', message: 'disk full' }));
    assert.equal(failed.status, 202);
    const warn = (await r.registry.list(r.registry.kind('', 'Event'), { namespace: 'tenant-a' })).items.find((e) => (e as Record<string, any>).reason === 'UserStateFailed') as Record<string, any> | undefined;
    assert.equal(warn?.type, 'Warning');
    assert.equal((await r.registry.list(r.registry.kind('', 'Event'), { namespace: 'tenant-b' })).items.length, 0, "nothing lands on B's project");

    const bad: Array<{ name: string; body: string; code: number; message: RegExp }> = [
      { name: 'empty', body: '', code: 400, message: /empty/ },
      { name: 'not JSON', body: 'state=running', code: 400, message: /not JSON/ },
      { name: 'an array', body: '[]', code: 400, message: /JSON object/ },
      { name: 'no state', body: '{"code":1}', code: 422, message: /state: null is not a state; it is one of running, succeeded, failed/ },
      { name: 'an unknown state', body: '{"state":"done"}', code: 422, message: /"done" is not a state/ },
      { name: 'a fractional code', body: '{"state":"running","code":1.5}', code: 422, message: /code: must be a non-negative integer/ },
      { name: 'a string code', body: '{"state":"running","code":"1"}', code: 422, message: /code/ },
      { name: 'a message not a string', body: '{"state":"running","message":5}', code: 422, message: /message: must be a string/ },
      { name: 'a long message', body: JSON.stringify({ state: 'running', message: 'x'.repeat(1025) }), code: 422, message: /at most 1024/ },
      { name: 'an unknown field', body: '{"state":"running","extra":1}', code: 422, message: /unknown field "extra"/ },
      { name: 'a body over the limit', body: JSON.stringify({ state: 'running', message: 'x'.repeat(5000) }), code: 413, message: /./ },
    ];
    for (const c of bad) {
      const res = await r.post(url, c.body);
      assert.equal(res.status, c.code, `${c.name}: ${res.text}`);
      const body = JSON.parse(res.text);
      assert.match(body.errors?.[0] ?? body.message, c.message, c.name);
    }
    for (const token of ['not-a-token', `${r.a.token.split('.')[0]}.${r.b.token.split('.')[1]}`]) {
      const res = await r.post(`/metadata/${token}/events`, '{"state":"running"}');
      assert.equal(res.status, 403, res.text);
    }
  });

  test('user state posts are bounded per device: a burst, then 429 with Retry-After', async () => {
    let t = 0;
    const limiter = new UserStateLimiter(() => t, 3, 10_000);
    assert.deepEqual([1, 2, 3].map(() => limiter.take('d').ok), [true, true, true]);
    const over = limiter.take('d');
    assert.deepEqual(over, { ok: false, retryAfterSeconds: 10 });
    assert.equal(limiter.take('other').ok, true, 'another device has its own bucket');
    t = 10_000;
    assert.equal(limiter.take('d').ok, true, 'one post back per interval');
    assert.equal(limiter.take('d').ok, false);
    // Through the service: the default burst, then 429.
    const url = `/metadata/${r.b.token}/events`;
    const codes: number[] = [];
    for (let i = 0; i < 32; i++) codes.push((await r.post(url, '{"state":"running"}')).status);
    assert.deepEqual(codes, [...Array(30).fill(202), 429, 429]);
    const res = await r.post(url, '{"state":"running"}');
    assert.equal(res.headers['retry-after'], '10');
    assert.equal(parseUserState('{"state":"running","code":0}').ok, true);
  });

  test('phone home on the Equinix path answers like the NoCloud one', async () => {
    for (const path of [`/metadata/${r.a.token}/phone-home`, `/metadata/nocloud/${r.a.token}/phone-home`]) {
      assert.equal((await r.post(path, '')).status, 200, path);
      assert.equal((await r.post(path.replace(r.a.token, 'forged'), '')).status, 403, path);
    }
  });
});

describe('reserved addresses in the metadata', () => {
  for (const ipInformer of [true, false]) {
    test(`an address of a reservation assigned to the device is listed, no one else's (${ipInformer ? "the IPAddress informer's index, as the server" : 'a list of the project'})`, async () => {
      const r = await rig({ ipInformer });
      try {
        const claim = (name: string, address: string, dev: Machine, reservation?: string) => ({
          apiVersion: 'metalplane.dev/v1alpha1',
          kind: 'IPAddress',
          metadata: { name },
          spec: {
            pool: 'da-public',
            family: 4,
            public: true,
            network: address,
            prefix: 32,
            address,
            gateway: address,
            use: 'assignment',
            project: dev.dev.metadata.namespace,
            device: { namespace: dev.dev.metadata.namespace!, name: dev.dev.metadata.name, uid: dev.dev.metadata.uid },
            ...(reservation ? { reservation: { namespace: dev.dev.metadata.namespace!, name: reservation } } : {}),
          },
        });
        const ipKind = r.registry.kind('metalplane.dev', 'IPAddress');
        await r.registry.create(ipKind, claim('ipv4-198.51.100.7-7', '198.51.100.7', r.a, 'web'));
        await r.registry.create(ipKind, claim('ipv4-198.51.100.8-8', '198.51.100.8', r.a));
        await r.registry.create(ipKind, claim('ipv4-198.51.100.9-9', '198.51.100.9', r.b, 'web'));
        let addresses: string[] = [];
        for (let i = 0; i < 50 && !addresses.includes('198.51.100.7'); i++) {
          addresses = JSON.parse((await r.get(`/metadata/${r.a.token}/metadata`)).text).network.addresses.map((x: { address: string }) => x.address);
          await new Promise((res) => setTimeout(res, 10));
        }
        assert.deepEqual(addresses, ['147.75.85.3', '10.2.5.3', '2604:1380:5::3', '198.51.100.7']);
        const bAddresses = JSON.parse((await r.get(`/metadata/${r.b.token}/metadata`)).text).network.addresses.map((x: { address: string }) => x.address);
        assert.ok(bAddresses.includes('198.51.100.9') && !bAddresses.includes('198.51.100.7'), bAddresses.join(' '));
      } finally {
        await r.app.close();
        r.registry.close();
        await r.store.close();
      }
    });
  }
});

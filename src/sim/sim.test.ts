// Unit tests of the simulated datacenter. A tiny HTTP server stands in for metalplane's boot, agent and
// metadata endpoints (this tests the machine side of the protocol, not the server); the BMC side goes through
// the real RedfishEmulator and the real RedfishDriver. Speeds are 'max' or high, so nothing waits long.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import Fastify from 'fastify';
import { Registry } from '../apiserver/registry.js';
import { RedfishDriver } from '../drivers/bmc/redfish/client.js';
import { BmcError } from '../drivers/bmc/types.js';
import { allKinds, KindRegistry } from '../kinds/index.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { AgentAction } from './agent.js';
import { simDelay, type SimSpeed } from './clock.js';
import { SIM_NAMESPACE, SimDatacenter, simLayout, simMachineSpec } from './datacenter.js';
import { Chaos, FaultSet } from './faults.js';
import { registerSimRoutes } from './http.js';
import { parseIpxeScript, SimMachine, type SimMachineSpec } from './machine.js';
import { RedfishEmulator } from './redfish-emulator.js';

// ---- the stand-in server ------------------------------------------------------------------------------------

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type ActionInput = Omit<AgentAction, 'workflow' | 'namespace' | 'index' | 'params'> & { params?: Record<string, unknown> };

class StandIn {
  readonly seen: Seen[] = [];
  url = '';
  /** iPXE script per MAC; a MAC not listed gets 404 + an exiting script. */
  readonly scripts = new Map<string, string>();
  /** Forced status of /agent/v1/* answers (e.g. 403), when set. */
  agentStatus: number | undefined;
  /** Called when an action is handed out, before the answer is sent. */
  onHandOut: ((a: AgentAction) => void) | undefined;
  private readonly queue: AgentAction[] = [];
  private running: AgentAction | undefined;
  private index = 0;
  private readonly server: http.Server;

  constructor() {
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  agentScript(mac: string, token = 'tok-1', bootId = 'boot-1', hardware = 'hw-1'): void {
    this.scripts.set(
      mac,
      `#!ipxe\nkernel ${this.url}/boot/v1/assets/vmlinuz metalplane.url=${this.url} metalplane.hardware=${hardware} ` +
        `metalplane.boot=${bootId} metalplane.token=${token} console=ttyS0\ninitrd ${this.url}/boot/v1/assets/initramfs\nboot\n`,
    );
  }

  give(...actions: ActionInput[]): void {
    for (const a of actions) this.queue.push({ workflow: 'wf-1', namespace: 'proj', index: this.index++, params: {}, ...a });
  }

  requests(path: string): Seen[] {
    return this.seen.filter((s) => s.path === path || (path.endsWith('*') && s.path.startsWith(path.slice(0, -1))));
  }

  /** Reports carried by /agent/v1/next calls, in order. */
  reports(): Array<Record<string, unknown>> {
    return this.requests('/agent/v1/next')
      .map((s) => (JSON.parse(s.body) as { report?: Record<string, unknown> }).report)
      .filter((r): r is Record<string, unknown> => r !== undefined);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
    const u = new URL(req.url ?? '/', 'http://x');
    this.seen.push({ method: req.method ?? '', path: u.pathname, query: u.searchParams, headers: req.headers, body: Buffer.concat(chunks).toString() });
    const send = (status: number, body?: unknown, type = 'application/json'): void => {
      if (res.destroyed) return;
      const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, text === undefined ? {} : { 'content-type': type });
      res.end(text);
    };
    if (u.pathname === '/boot/v1/ipxe') {
      const script = this.scripts.get(u.searchParams.get('mac') ?? '');
      return script ? send(200, script, 'text/plain') : send(404, '#!ipxe\necho unknown MAC\nexit\n', 'text/plain');
    }
    if (u.pathname.startsWith('/agent/v1/')) {
      if (this.agentStatus !== undefined) return send(this.agentStatus, { errors: ['this boot is over'] });
      if (req.headers.authorization !== 'Bearer tok-1') return send(401, { errors: ['bad token'] });
      if (u.pathname === '/agent/v1/register') return send(200, { hardware: 'hw-1', pollTimeoutSeconds: 20 });
      if (u.pathname === '/agent/v1/progress') return send(204);
      // /next: as the protocol says, an action handed out stays running until its report arrives, and is
      // handed out again to an agent that polls without it (its answer was lost).
      const report = (JSON.parse(Buffer.concat(chunks).toString() || '{}') as { report?: { index?: number } }).report;
      if (report !== undefined && report.index === this.running?.index) this.running = undefined;
      const until = Date.now() + Math.min(Number(u.searchParams.get('wait') ?? 20) * 1000, 100);
      while (this.running === undefined && this.queue.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      const action = this.running ?? this.queue.shift();
      if (action === undefined) return send(204);
      this.running = action;
      this.onHandOut?.(action);
      return send(200, { action });
    }
    if (u.pathname.startsWith('/metadata/nocloud/')) {
      const file = u.pathname.split('/').pop();
      if (file === 'meta-data') return send(200, 'instance-id: i-123\nlocal-hostname: web-1\n', 'text/plain');
      if (file === 'user-data') return send(200, '#cloud-config\n{}\n', 'text/plain');
      if (file === 'vendor-data') return send(404, 'none', 'text/plain');
      if (file === 'phone-home' && req.method === 'POST') return send(200, { ok: true });
    }
    send(404, { errors: ['not found'] });
  }
}

// ---- helpers ---------------------------------------------------------------------------------------------------

let macSeq = 0x10;

function spec(id: string, disks = 2): SimMachineSpec {
  const n = macSeq++;
  return {
    id,
    username: 'admin',
    password: `pw-${id}`,
    manufacturer: 'Supermicro',
    model: 'SYS-TEST',
    serialNumber: `S${n}`,
    uuid: `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`,
    cpus: 8,
    memoryGiB: 32,
    nics: [
      { name: 'eth0', mac: `02:aa:00:00:00:${n.toString(16).padStart(2, '0')}` },
      { name: 'eth1', mac: `02:aa:01:00:00:${n.toString(16).padStart(2, '0')}` },
    ],
    disks: [
      { device: '/dev/sda', sizeGB: 480, type: 'SSD' as const },
      { device: '/dev/sdb', sizeGB: 960, type: 'SSD' as const },
    ].slice(0, disks),
  };
}

function machine(id: string, serverUrl: string, speed: SimSpeed = 'max'): SimMachine {
  return new SimMachine({ spec: spec(id), serverUrl, speed });
}

async function eventually(what: string, check: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function withStandIn(t: { after: (fn: () => Promise<void> | void) => void }): Promise<StandIn> {
  const s = await new StandIn().start();
  t.after(() => s.close());
  return s;
}

/** A RedfishEmulator serving these machines, and a driver client per machine. */
async function bmc(t: { after: (fn: () => Promise<void> | void) => void }, ...machines: SimMachine[]) {
  const emulator = new RedfishEmulator({ systems: new Map(machines.map((m) => [m.id, m])) });
  const { url } = await emulator.listen(0);
  t.after(() => emulator.close());
  const driver = new RedfishDriver({ timeoutMs: 1000 });
  return (m: SimMachine) => driver.connect({ driver: 'redfish', address: url, systemId: m.id }, { username: m.username, password: m.password });
}

// ---- the provisioning path ------------------------------------------------------------------------------------

test('a machine netboots, runs the agent actions it is handed, reboots to its disk and phones home', async (t) => {
  const s = await withStandIn(t);
  const m = machine('m-1', s.url);
  t.after(() => m.stop());
  s.agentScript(m.pxeMac);
  const seedfrom = `${s.url}/metadata/nocloud/inst-tok/`;
  s.give(
    { type: 'inventory' },
    { type: 'wipe-disks' },
    { type: 'stream-image', params: { url: 'http://images.example/ubuntu.img', sizeMB: 1500, os: 'ubuntu_24_04' } },
    { type: 'write-datasource', params: { seedfrom, instanceId: 'i-123' } },
    { type: 'reboot' },
  );
  m.setBoot('Pxe', 'Once');
  m.reset('On');
  await eventually('phone home', () => s.requests('/metadata/nocloud/inst-tok/phone-home').length > 0);

  // PXE with the netbooting NIC's MAC, then the agent authenticates with the token from the kernel line.
  const ipxe = s.requests('/boot/v1/ipxe');
  assert.equal(ipxe.length, 1);
  assert.equal(ipxe[0]!.query.get('mac'), m.pxeMac);
  const [register] = s.requests('/agent/v1/register');
  assert.equal(register!.headers.authorization, 'Bearer tok-1');
  const reg = JSON.parse(register!.body) as { bootId: string; version: string; inventory: { cpus: number; macs: string[]; disks: unknown[] } };
  assert.equal(reg.bootId, 'boot-1');
  assert.equal(reg.inventory.cpus, 8);
  assert.deepEqual(reg.inventory.macs, m.spec.nics.map((n) => n.mac));
  assert.deepEqual(reg.inventory.disks, [{ device: '/dev/sda', sizeGB: 480 }, { device: '/dev/sdb', sizeGB: 960 }]);
  for (const r of s.requests('/agent/v1/*')) assert.equal(r.headers.authorization, 'Bearer tok-1');

  // Every action reported, in order, each once; inventory carries the inventory.
  const reports = s.reports();
  assert.deepEqual(reports.map((r) => [r['index'], r['state']]), [[0, 'succeeded'], [1, 'succeeded'], [2, 'succeeded'], [3, 'succeeded'], [4, 'succeeded']]);
  assert.deepEqual((reports[0]!['result'] as { inventory: unknown }).inventory, reg.inventory);
  assert.equal(reports[0]!['workflow'], 'wf-1');
  assert.equal(reports[0]!['namespace'], 'proj');

  // The reboot report went out (wait=0) before the OS came up and asked for its datasource.
  const order = s.seen.map((r) => r.path);
  const rebootReport = s.seen.findIndex((r) => r.path === '/agent/v1/next' && r.body.includes('"index":4'));
  assert.equal(s.seen[rebootReport]!.query.get('wait'), '0');
  assert.ok(rebootReport < order.indexOf('/metadata/nocloud/inst-tok/meta-data'));
  assert.deepEqual(
    order.filter((p) => p.startsWith('/metadata/')),
    ['meta-data', 'user-data', 'vendor-data', 'phone-home'].map((f) => `/metadata/nocloud/inst-tok/${f}`),
  );
  const [phone] = s.requests('/metadata/nocloud/inst-tok/phone-home');
  assert.equal(phone!.method, 'POST');
  assert.equal(phone!.headers['content-type'], 'application/x-www-form-urlencoded');
  const form = new URLSearchParams(phone!.body);
  assert.equal(form.get('instance_id'), 'i-123');
  assert.equal(form.get('hostname'), 'web-1');

  await eventually('phonedHomeAt', () => m.snapshot().phonedHomeAt !== undefined);
  const snap = m.snapshot();
  assert.equal(snap.power, 'on');
  assert.equal(snap.phase, 'os');
  assert.equal(snap.bootedFrom, 'disk');
  assert.equal(snap.bootCount, 2);
  assert.equal(snap.installedImage, 'ubuntu_24_04');
  assert.equal(snap.datasource, seedfrom);
  assert.deepEqual(snap.bootOverride, { target: 'None', enabled: 'Disabled' }, 'a Once override is used up');
  assert.equal(snap.lastError, undefined);
  // No second PXE: the installed disk booted.
  assert.equal(s.requests('/boot/v1/ipxe').length, 1);
});

test('the machine\'s console shows its boot in order: power, POST, PXE, iPXE, agent actions, reboot, OS, cloud-init, phone-home', async (t) => {
  const s = await withStandIn(t);
  const m = machine('m-console', s.url);
  t.after(() => m.stop());
  s.agentScript(m.pxeMac);
  s.give(
    { type: 'wipe-disks' },
    { type: 'stream-image', params: { url: 'http://images.example/ubuntu.img', sizeMB: 1500, os: 'ubuntu_24_04' } },
    { type: 'write-datasource', params: { seedfrom: `${s.url}/metadata/nocloud/inst-tok/`, instanceId: 'i-9' } },
    { type: 'reboot' },
  );
  m.setBoot('Pxe', 'Once');
  m.reset('On');
  await eventually('phonedHomeAt', () => m.snapshot().phonedHomeAt !== undefined);
  const { lines, dropped, last } = m.readConsole();
  const text = lines.map((l) => l.text);
  // Each expected line, in this order (other lines may come between).
  const want = [
    /^--- power on: boot 1 ---$/,
    /^.* BIOS, serial /,
    /^POST: 1 CPU socket\(s\), 8 cores, .* \/dev\/sda 480 GB/,
    /^POST complete; boot device: network \(PXE on \S+ [0-9a-f:]{17}\)$/,
    /^PXE: DHCP on .*iPXE: chainloading http:\/\/127\.0\.0\.1:\d+\/boot\/v1\/ipxe\?mac=/,
    /^iPXE: kernel .*booting the metalplane agent/,
    /^metalplane-agent: registered as /,
    /^metalplane-agent: wipe-disks \(action 1 of workflow proj\/wf-1\): started$/,
    /^metalplane-agent: wipe-disks \(action 1 of workflow proj\/wf-1\): succeeded: disks=\/dev\/sda,\/dev\/sdb$/,
    /^metalplane-agent: stream-image .*: succeeded: os=ubuntu_24_04, sizeMB=1500, device=\/dev\/sda$/,
    /^metalplane-agent: write-datasource .*: succeeded/,
    /^metalplane-agent: reboot .*: rebooting now$/,
    /^--- reboot \(from the running system\): boot 2 ---$/,
    /^POST complete; boot device: \/dev\/sda$/,
    /^GRUB: booting ubuntu_24_04 from \/dev\/sda$/,
    /^cloud-init: datasource NoCloud, seedfrom /,
    /^cloud-init: read meta-data and user-data \(\d+ bytes/,
    /^cloud-init: phone_home: POST \S+phone-home: HTTP 200$/,
    /^cloud-init: finished; web-1 is up$/,
  ];
  let at = 0;
  for (const w of want) {
    const i = text.findIndex((l, j) => j >= at && w.test(l));
    assert.ok(i >= 0, `${w} after line ${at} in:\n${text.join('\n')}`);
    at = i + 1;
  }
  assert.equal(dropped, 0);
  assert.equal(last, lines.at(-1)!.seq);
  assert.ok(lines.every((l, i) => i === 0 || l.seq > lines[i - 1]!.seq), 'numbered in order');
  assert.ok(lines.every((l) => !Number.isNaN(Date.parse(l.time))), 'each line has a timestamp');
  assert.ok(!text.some((l) => l.includes('tok-1')), 'the agent token is not printed');
  // Asking for what came after the last line seen answers nothing new.
  assert.deepEqual(m.readConsole(last).lines, []);
});

test('stream-image posts progress at a finite speed and none at speed max', async (t) => {
  for (const [speed, wantProgress] of [[10, true], ['max', false]] as const) {
    const s = await withStandIn(t);
    const m = machine(`m-progress-${speed}`, s.url, speed === 10 ? 1000 : 'max');
    t.after(() => m.stop());
    s.agentScript(m.pxeMac);
    // 12 500 MB at 125 MB/s = 100 simulated s: 100 ms at speed 1000 → progress at most ~2/s real: 1 post.
    s.give({ type: 'stream-image', params: { url: 'http://images.example/big.img', sizeMB: 12_500, os: 'debian_12' } });
    m.reset('On');
    await eventually('stream report', () => s.reports().length === 1, 5000);
    const progress = s.requests('/agent/v1/progress').map((r) => JSON.parse(r.body) as { progress: number; index: number });
    if (wantProgress) {
      assert.ok(progress.length >= 1, 'at least one progress post');
      assert.ok(progress.length <= 2, `progress rate-limited, got ${progress.length}`);
      assert.equal(progress[0]!.progress, 10);
      assert.equal(progress[0]!.index, 0);
    } else {
      assert.equal(progress.length, 0);
    }
    assert.equal(m.snapshot().installedImage, 'debian_12');
  }
});

test('iPXE exit boots the disk or halts with no bootable device; chain idles as custom', async (t) => {
  const s = await withStandIn(t);
  const empty = machine('m-exit', s.url);
  const custom = machine('m-chain', s.url);
  t.after(() => {
    empty.stop();
    custom.stop();
  });
  // m-exit's MAC is unknown: 404 with a script that exits.
  s.scripts.set(custom.pxeMac, '#!ipxe\nchain --autofree https://boot.example/custom.ipxe\n');
  empty.reset('On');
  custom.reset('On');
  await eventually('halted', () => empty.snapshot().phase === 'halted');
  assert.match(empty.snapshot().lastError ?? '', /no bootable device/);
  await eventually('custom', () => custom.snapshot().phase === 'custom');
  assert.equal(custom.snapshot().chainUrl, 'https://boot.example/custom.ipxe');
});

test('parseIpxeScript reads agent, exit and chain scripts and refuses the rest', () => {
  const cases: Array<[string, string, string]> = [
    ['agent', '#!ipxe\nkernel http://s/vmlinuz metalplane.url=http://s metalplane.hardware=h metalplane.boot=b metalplane.token=t\nboot', 'agent'],
    ['exit', '#!ipxe\necho hi\nexit', 'exit'],
    ['chain', '#!ipxe\nchain http://x/y.ipxe', 'chain'],
    ['no shebang', 'kernel x\nboot', 'invalid'],
    ['kernel without token', '#!ipxe\nkernel http://s/vmlinuz metalplane.url=http://s metalplane.hardware=h metalplane.boot=b\nboot', 'invalid'],
  ];
  for (const [name, text, kind] of cases) assert.equal(parseIpxeScript(text).kind, kind, name);
  const agent = parseIpxeScript(cases[0]![1]);
  assert.ok(agent.kind === 'agent');
  assert.deepEqual(agent.agent, { url: 'http://s', hardware: 'h', bootId: 'b', token: 't' });
});

test('a machine whose server is down keeps retrying PXE', async (t) => {
  const m = new SimMachine({ spec: spec('m-retry'), serverUrl: 'http://127.0.0.1:1', speed: 'max' });
  t.after(() => m.stop());
  m.reset('On');
  await eventually('a failed PXE attempt', () => /ECONNREFUSED|fetch failed/.test(m.snapshot().lastError ?? ''));
  assert.equal(m.snapshot().phase, 'pxe');
  await sleep(200);
  assert.equal(m.snapshot().phase, 'pxe', 'still retrying');
  assert.equal(m.snapshot().bootCount, 1);
});

// ---- faults ------------------------------------------------------------------------------------------------------

test('disk-failure: wipe-disks fails with reason DiskFailure naming the disk and sector', async (t) => {
  const s = await withStandIn(t);
  const m = machine('m-disk', s.url);
  t.after(() => m.stop());
  s.agentScript(m.pxeMac);
  m.faults.add({ type: 'disk-failure' });
  s.give({ type: 'wipe-disks' });
  m.reset('On');
  await eventually('wipe report', () => s.reports().length === 1);
  const [r] = s.reports();
  assert.equal(r!['state'], 'failed');
  assert.equal(r!['reason'], 'DiskFailure');
  assert.match(String(r!['message']), /^wipe \/dev\/sda: I\/O error \(sector \d+\)$/);
});

test('an unknown action type is reported failed with UnsupportedAction, and the agent carries on', async (t) => {
  const s = await withStandIn(t);
  const m = machine('m-unsupported', s.url);
  t.after(() => m.stop());
  s.agentScript(m.pxeMac);
  s.give({ type: 'flash-firmware' }, { type: 'inventory' });
  m.reset('On');
  await eventually('two reports', () => s.reports().length === 2);
  const [bad, good] = s.reports();
  assert.equal(bad!['state'], 'failed');
  assert.equal(bad!['reason'], 'UnsupportedAction');
  assert.match(String(bad!['message']), /flash-firmware.*supported: inventory/);
  assert.equal(good!['state'], 'succeeded');
});

test('nic-down: nothing reaches the server, the BMC still answers; clearing it lets PXE through', async (t) => {
  const s = await withStandIn(t);
  const m = machine('m-nic', s.url);
  t.after(() => m.stop());
  const client = (await bmc(t, m))(m);
  m.faults.add({ type: 'nic-down' });
  await client.setPower('on');
  await sleep(150);
  assert.equal(s.seen.length, 0, 'no request left the machine');
  assert.equal(await client.powerState(), 'on');
  assert.equal(m.snapshot().phase, 'pxe');
  assert.match(m.snapshot().lastError ?? '', /network is down/);
  m.faults.clear('nic-down');
  await eventually('PXE after the NIC came back', () => s.requests('/boot/v1/ipxe').length > 0);
});

test('nic-down during a long poll cuts the request; the agent resumes with the report when it clears', async (t) => {
  const s = await withStandIn(t);
  const m = machine('m-nic-agent', s.url);
  t.after(() => m.stop());
  s.agentScript(m.pxeMac);
  s.give({ type: 'inventory' });
  s.onHandOut = () => m.faults.add({ type: 'nic-down' });
  m.reset('On');
  await eventually('action handed out', () => m.snapshot().faults.length === 1);
  await sleep(150);
  assert.equal(s.reports().length, 0, 'no report while the NIC is down');
  s.onHandOut = undefined;
  m.faults.clear('nic-down');
  await eventually('report after the NIC came back', () => s.reports().length === 1);
  assert.equal(s.reports()[0]!['state'], 'succeeded');
});

test('agent-hang: no report and no polls until cleared, then the agent continues', async (t) => {
  const s = await withStandIn(t);
  const m = machine('m-hang', s.url);
  t.after(() => m.stop());
  s.agentScript(m.pxeMac);
  s.give({ type: 'inventory' }, { type: 'wipe-disks' });
  let handedOut = 0;
  s.onHandOut = () => {
    if (handedOut++ === 0) m.faults.add({ type: 'agent-hang' });
  };
  m.reset('On');
  await eventually('hung', () => m.snapshot().agent?.state === 'hung');
  const before = s.seen.length;
  await sleep(200);
  assert.equal(s.seen.length, before, 'a hung agent sends nothing');
  assert.equal(s.reports().length, 0);
  m.faults.clear('agent-hang');
  await eventually('both reports', () => s.reports().length === 2);
  assert.deepEqual(s.reports().map((r) => r['state']), ['succeeded', 'succeeded']);
});

test('a fault with a duration clears itself', async () => {
  const faults = new FaultSet();
  const active = faults.add({ type: 'agent-hang', durationMs: 30 });
  assert.ok(active.until !== undefined);
  assert.equal(faults.has('agent-hang'), true);
  await faults.waitUntilCleared('agent-hang', AbortSignal.timeout(2000));
  assert.equal(faults.has('agent-hang'), false);
});

test('a stale boot (403) stops the agent for good', async (t) => {
  const s = await withStandIn(t);
  const m = machine('m-stale', s.url);
  t.after(() => m.stop());
  s.agentScript(m.pxeMac);
  s.agentStatus = 403;
  m.reset('On');
  await eventually('agent stopped', () => m.snapshot().agent?.state === 'stopped');
  const n = s.requests('/agent/v1/*').length;
  assert.equal(n, 1, 'one register, no retries');
  assert.match(m.snapshot().lastError ?? '', /agent stopped: .*403/);
  await sleep(100);
  assert.equal(s.requests('/agent/v1/*').length, n);
});

test('power off stops the agent; server errors are retried with backoff, not hammered', async (t) => {
  const s = await withStandIn(t);
  const m = machine('m-off', s.url);
  t.after(() => m.stop());
  s.agentScript(m.pxeMac);
  s.agentStatus = 503;
  m.reset('On');
  await eventually('first agent request', () => s.requests('/agent/v1/*').length > 0);
  await sleep(300);
  const tries = s.requests('/agent/v1/*').length;
  // At speed max the backoff floor is 50 ms real: ~6 tries in 300 ms, never hundreds.
  assert.ok(tries >= 2 && tries <= 10, `retried ${tries} times in 300 ms`);
  m.reset('ForceOff');
  assert.equal(m.snapshot().phase, 'off');
  const after = s.seen.length;
  await sleep(150);
  assert.equal(s.seen.length, after, 'nothing after power off');
});

test('power-stuck: the BMC accepts the reset but the power never changes', async (t) => {
  const s = await withStandIn(t);
  const m = machine('m-stuck', s.url);
  t.after(() => m.stop());
  const client = (await bmc(t, m))(m);
  m.faults.add({ type: 'power-stuck' });
  await client.setPower('on');
  assert.equal(await client.powerState(), 'off');
  assert.equal(m.snapshot().phase, 'off');
  m.faults.clear();
  await client.setPower('on');
  assert.equal(await client.powerState(), 'on');
});

test('bmc-unreachable: Redfish connections are dropped; clearing it restores the BMC', async (t) => {
  const m = machine('m-bmc', 'http://127.0.0.1:1');
  t.after(() => m.stop());
  const client = (await bmc(t, m))(m);
  m.faults.add({ type: 'bmc-unreachable' });
  await assert.rejects(client.powerState(), (err: unknown) => err instanceof BmcError && err.kind === 'unreachable');
  m.faults.clear('bmc-unreachable');
  assert.equal(await client.powerState(), 'off');
});

test('slow-boot multiplies firmware time: the slow machine is still in firmware after the normal one PXE-booted', async (t) => {
  const s = await withStandIn(t);
  // Speed 1000: 45 s of firmware = 45 ms; ×10 = 450 ms.
  const slow = machine('m-slow', s.url, 1000);
  const normal = machine('m-normal', s.url, 1000);
  t.after(() => {
    slow.stop();
    normal.stop();
  });
  slow.faults.add({ type: 'slow-boot', factor: 10 });
  assert.equal(slow.faults.bootFactor(), 10);
  slow.reset('On');
  normal.reset('On');
  await eventually('normal machine PXE', () => s.requests('/boot/v1/ipxe').some((r) => r.query.get('mac') === normal.pxeMac));
  assert.equal(slow.snapshot().phase, 'firmware');
  assert.ok(!s.requests('/boot/v1/ipxe').some((r) => r.query.get('mac') === slow.pxeMac));
  await eventually('slow machine PXE', () => s.requests('/boot/v1/ipxe').some((r) => r.query.get('mac') === slow.pxeMac), 3000);
});

test('simDelay scales real time by speed and rejects on abort', async () => {
  let t0 = Date.now();
  await simDelay(100, 5); // 50 ms
  assert.ok(Date.now() - t0 >= 45);
  t0 = Date.now();
  await simDelay('max', 3600);
  assert.ok(Date.now() - t0 < 40);
  const ac = new AbortController();
  const p = simDelay(1, 60, ac.signal);
  ac.abort();
  await assert.rejects(p, { name: 'AbortError' });
});

test('chaos injects seeded random faults into the targets and stops', () => {
  const targets = ['a', 'b', 'c'].map((id) => ({ id, faults: new FaultSet() }));
  const run = (): string[] => {
    for (const t of targets) t.faults.clear();
    const chaos = new Chaos(() => targets);
    chaos.start({ rate: 1, types: ['nic-down', 'agent-hang'], durationMs: 60_000, seed: 42 });
    for (let i = 0; i < 5; i++) chaos.tick();
    assert.equal(chaos.status().injected, 5);
    assert.equal(chaos.stop().running, false);
    return targets.flatMap((t) => t.faults.list().map((f) => `${t.id}:${f.type}`)).sort();
  };
  const first = run();
  assert.ok(first.length > 0);
  assert.ok(first.every((f) => /:(nic-down|agent-hang)$/.test(f)));
  assert.deepEqual(run(), first, 'the same seed picks the same faults');
  for (const t of targets) t.faults.dispose();
  assert.throws(() => new Chaos(() => targets).start({ rate: 1, types: ['meltdown' as 'nic-down'] }), /valid: bmc-unreachable/);
});

// ---- the datacenter -------------------------------------------------------------------------------------------

test('the layout is deterministic, prefix-stable and spread across metros, plans and racks', () => {
  const a = simLayout(48);
  assert.deepEqual(simLayout(48), a);
  assert.deepEqual(simLayout(1000).slice(0, 48), a, 'machine i is placed the same way whatever N is');
  const metros = new Map<string, Set<string>>();
  for (const p of a) metros.set(p.metro, (metros.get(p.metro) ?? new Set()).add(p.plan));
  assert.ok(metros.size >= 4, `metros: ${[...metros.keys()].join(', ')}`);
  for (const metro of ['da', 'ny', 'sv', 'am']) assert.ok((metros.get(metro)?.size ?? 0) >= 2, `${metro} has 2+ plans`);
  const count = (list: typeof a, f: (p: (typeof a)[number]) => boolean): number => list.filter(f).length;
  assert.ok(count(a, (p) => p.metro === 'da') > a.length / 3, 'most capacity in da');
  assert.ok(count(a, (p) => p.plan === 'c3.small.x86') > a.length / 2, 'most machines are c3.small.x86');

  const big = simLayout(1000);
  assert.equal(new Set(big.map((p) => p.name)).size, 1000, 'unique names');
  const macs = big.flatMap((p) => simMachineSpec(p).nics.map((n) => n.mac));
  assert.equal(new Set(macs).size, macs.length, 'unique MACs');
  assert.ok(macs.every((m) => /^02:00:0[0-3]:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/.test(m)));
  const perRack = new Map<string, number>();
  for (const p of big) perRack.set(`${p.facility}/${p.rack}`, (perRack.get(`${p.facility}/${p.rack}`) ?? 0) + 1);
  assert.ok(Math.max(...perRack.values()) <= 16, 'racks of at most 16');
  assert.ok(Math.abs(count(big, (p) => p.metro === 'da') / 1000 - count(a, (p) => p.metro === 'da') / 48) < 0.02, 'same proportions at 1000');
});

test('the datacenter enrolls Secrets and Hardware through the API (idempotently) and its BMCs answer', async (t) => {
  const store = openSqliteStore(':memory:');
  const registry = new Registry({ store, kinds: new KindRegistry(allKinds) });
  await registry.start();
  t.after(async () => {
    registry.close();
    await store.close();
  });
  const dc = new SimDatacenter({ machines: 6, speed: 'max', serverUrl: 'http://127.0.0.1:1', client: registry });
  const first = await dc.start();
  assert.deepEqual([first.hardwareCreated, first.secretsCreated, first.hardwareUpdated], [6, 6, 0]);
  const hwKind = registry.kind('metalplane.dev', 'Hardware');
  const hw = (await registry.list(hwKind)).items;
  assert.deepEqual(hw.map((h) => h.metadata.name).sort(), simLayout(6).map((p) => p.name).sort());
  const h0 = hw.find((h) => h.metadata.name === simLayout(1)[0]!.name)!;
  const hwSpec = h0['spec'] as { bmc: { address: string; systemId: string; credentialsSecret: { name: string; namespace: string } }; nics: Array<{ mac: string; pxe?: boolean }> };
  assert.equal(hwSpec.bmc.address, dc.bmcUrl);
  assert.equal(hwSpec.nics[0]!.pxe, true);

  // An operator's view: read the Secret, connect with the real driver, see the machine (powered off).
  const secret = await registry.get(registry.kind('', 'Secret'), SIM_NAMESPACE, hwSpec.bmc.credentialsSecret.name);
  const data = secret!['data'] as { username: string; password: string };
  const creds = { username: Buffer.from(data.username, 'base64').toString(), password: Buffer.from(data.password, 'base64').toString() };
  const client = new RedfishDriver({ timeoutMs: 1000 }).connect({ driver: 'redfish', address: hwSpec.bmc.address, systemId: hwSpec.bmc.systemId }, creds);
  const info = await client.system();
  assert.equal(info.powerState, 'off');
  assert.deepEqual(info.macAddresses, hwSpec.nics.map((n) => n.mac));
  await dc.stop();

  // A restart: same names, nothing created again, only the BMC address moves to the new emulator port.
  const again = new SimDatacenter({ machines: 6, speed: 'max', serverUrl: 'http://127.0.0.1:1', client: registry });
  const second = await again.start();
  t.after(() => again.stop());
  assert.deepEqual([second.hardwareCreated, second.secretsCreated, second.secretsUpdated], [0, 0, 0]);
  assert.equal(second.hardwareUpdated, 6);
  const moved = await registry.get(hwKind, undefined, h0.metadata.name);
  assert.equal((moved!['spec'] as { bmc: { address: string } }).bmc.address, again.bmcUrl);
  assert.equal(again.machine(h0.metadata.name)!.snapshot().power, 'off');
});

test('the sim API injects, lists and clears faults and answers errors as { errors }', async (t) => {
  const store = openSqliteStore(':memory:');
  const registry = new Registry({ store, kinds: new KindRegistry(allKinds) });
  await registry.start();
  const dc = new SimDatacenter({ machines: 3, speed: 'max', serverUrl: 'http://127.0.0.1:1', client: registry });
  await dc.start();
  const app = Fastify();
  // As the server does: bodies arrive undecoded.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  registerSimRoutes(app, dc);
  t.after(async () => {
    await app.close();
    await dc.stop();
    registry.close();
    await store.close();
  });
  const id = dc.machines()[1]!.id;
  const post = (url: string, body: unknown) => app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

  const cases: Array<{ name: string; res: () => ReturnType<typeof post>; status: number; error?: RegExp }> = [
    { name: 'inject', res: () => post(`/sim/v1/machines/${id}/faults`, { type: 'slow-boot', factor: 5, durationSeconds: 60 }), status: 201 },
    { name: 'unknown type', res: () => post(`/sim/v1/machines/${id}/faults`, { type: 'meltdown' }), status: 400, error: /valid: bmc-unreachable, power-stuck/ },
    { name: 'unknown machine', res: () => post('/sim/v1/machines/nope/faults', { type: 'nic-down' }), status: 404, error: /no simulated machine "nope"/ },
    { name: 'factor on the wrong type', res: () => post(`/sim/v1/machines/${id}/faults`, { type: 'nic-down', factor: 2 }), status: 400, error: /only to slow-boot/ },
    { name: 'unknown field', res: () => post(`/sim/v1/machines/${id}/faults`, { type: 'nic-down', until: 3 }), status: 400, error: /unknown field "until"/ },
    { name: 'bad chaos rate', res: () => post('/sim/v1/chaos', { rate: -1 }), status: 400, error: /rate must be a positive number/ },
    { name: 'unknown path', res: () => app.inject({ method: 'GET', url: '/sim/v1/racks' }), status: 404, error: /no GET \/sim\/v1\/racks/ },
    { name: 'console', res: () => app.inject({ method: 'GET', url: `/sim/v1/machines/${id}/console` }), status: 200 },
    { name: 'console after a line', res: () => app.inject({ method: 'GET', url: `/sim/v1/machines/${id}/console?after=3` }), status: 200 },
    { name: 'console, bad after', res: () => app.inject({ method: 'GET', url: `/sim/v1/machines/${id}/console?after=-1` }), status: 400, error: /after must be a line number/ },
    { name: 'console of an unknown machine', res: () => app.inject({ method: 'GET', url: '/sim/v1/machines/nope/console' }), status: 404, error: /no simulated machine "nope"/ },
  ];
  for (const c of cases) {
    const res = await c.res();
    assert.equal(res.statusCode, c.status, `${c.name}: ${res.body}`);
    if (c.error) {
      const body = res.json() as { errors: string[] };
      assert.match(body.errors[0] ?? '', c.error, c.name);
    }
  }
  assert.equal(dc.machine(id)!.faults.bootFactor(), 5);

  const list = (await app.inject({ method: 'GET', url: '/sim/v1/faults' })).json() as { faults: Array<{ machine: string; type: string }> };
  assert.deepEqual(list.faults.map((f) => [f.machine, f.type]), [[id, 'slow-boot']]);
  const machines = (await app.inject({ method: 'GET', url: '/sim/v1/machines' })).json() as { machines: Array<{ id: string; plan: string; faults: unknown[] }> };
  assert.equal(machines.machines.length, 3);
  assert.ok(machines.machines.every((m) => typeof m.plan === 'string'));

  const chaos = await post('/sim/v1/chaos', { rate: 2, types: ['nic-down'], durationSeconds: 5, seed: 7 });
  assert.equal(chaos.statusCode, 200);
  assert.equal((chaos.json() as { running: boolean }).running, true);
  assert.equal((await app.inject({ method: 'DELETE', url: '/sim/v1/chaos' })).statusCode, 200);
  assert.equal(dc.chaosStatus().running, false);

  const cleared = await app.inject({ method: 'DELETE', url: `/sim/v1/machines/${id}/faults?type=slow-boot` });
  assert.equal(cleared.statusCode, 200);
  assert.equal((cleared.json() as { cleared: number }).cleared, 1);
  assert.equal(dc.machine(id)!.faults.size, 0);
});

test('BMC passwords are random per datacenter, kept in the Secrets, and reused by a restart on the same store', async (t) => {
  const open = async () => {
    const store = openSqliteStore(':memory:');
    const registry = new Registry({ store, kinds: new KindRegistry(allKinds) });
    await registry.start();
    t.after(async () => {
      registry.close();
      await store.close();
    });
    return registry;
  };
  const passwordIn = async (registry: Registry, machine: string): Promise<string> => {
    const secret = await registry.get(registry.kind('', 'Secret'), SIM_NAMESPACE, `bmc-${machine}`);
    return Buffer.from((secret!['data'] as { password: string }).password, 'base64').toString();
  };
  const name = simLayout(1)[0]!.name;
  const legacy = createHash('sha256').update(`metalplane-sim-bmc/${name}`).digest('base64url').slice(0, 20);
  const a = await open();
  const b = await open();
  const dcA = new SimDatacenter({ machines: 2, speed: 'max', serverUrl: 'http://127.0.0.1:1', client: a });
  const dcB = new SimDatacenter({ machines: 2, speed: 'max', serverUrl: 'http://127.0.0.1:1', client: b });
  await dcA.start();
  await dcB.start();
  const pwA = await passwordIn(a, name);
  assert.equal(dcA.machine(name)!.password, pwA, 'the BMC and its Secret agree');
  assert.notEqual(pwA, await passwordIn(b, name), 'two datacenters do not share passwords');
  assert.notEqual(pwA, legacy, 'not derived from the name');
  assert.ok(pwA.length >= 20);
  await dcA.stop();
  await dcB.stop();

  // A restart on the same store: the BMCs take the stored passwords, nothing is rewritten, the driver logs in.
  const again = new SimDatacenter({ machines: 2, speed: 'max', serverUrl: 'http://127.0.0.1:1', client: a });
  const summary = await again.start();
  t.after(() => again.stop());
  assert.equal(summary.secretsUpdated, 0);
  assert.equal(again.machine(name)!.password, pwA);
  const bmc = new RedfishDriver({ timeoutMs: 1000 }).connect({ driver: 'redfish', address: again.bmcUrl, systemId: `/redfish/v1/Systems/${name}` }, { username: 'admin', password: pwA });
  assert.equal((await bmc.system()).powerState, 'off');
  const wrong = new RedfishDriver({ timeoutMs: 1000 }).connect({ driver: 'redfish', address: again.bmcUrl, systemId: `/redfish/v1/Systems/${name}` }, { username: 'admin', password: legacy });
  await assert.rejects(wrong.system());

  // A Secret still holding a name-derived password (from before) is re-issued, BMC and Secret together.
  await again.stop();
  await a.mergePatch(a.kind('', 'Secret'), SIM_NAMESPACE, `bmc-${name}`, { data: { password: Buffer.from(legacy).toString('base64') } });
  const upgraded = new SimDatacenter({ machines: 2, speed: 'max', serverUrl: 'http://127.0.0.1:1', client: a });
  const s3 = await upgraded.start();
  t.after(() => upgraded.stop());
  assert.equal(s3.secretsUpdated, 1);
  const fresh = await passwordIn(a, name);
  assert.notEqual(fresh, legacy);
  assert.equal(upgraded.machine(name)!.password, fresh);
});

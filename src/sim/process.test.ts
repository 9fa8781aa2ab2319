// The sim process's one port (process.ts) over the real registry: Redfish BMCs, the token-guarded operator API
// and the switch API that the server's HTTP switch driver (drivers/switch/http.ts) programs; enrollment is
// idempotent across a restart on the same port.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Registry } from '../apiserver/registry.js';
import { RedfishDriver } from '../drivers/bmc/redfish/client.js';
import { HttpSwitchDriver } from '../drivers/switch/http.js';
import { SwitchError, type MachineNetworkConfig } from '../drivers/switch/types.js';
import { allKinds, KindRegistry } from '../kinds/index.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { SIM_NAMESPACE } from './datacenter.js';
import { startSimProcess, type RunningSimProcess } from './process.js';

const TOKEN = 'sim-test-token-0123456789';

async function openRegistry(t: TestContext): Promise<Registry> {
  const store = openSqliteStore(':memory:');
  const registry = new Registry({ store, kinds: new KindRegistry(allKinds) });
  await registry.start();
  t.after(async () => {
    registry.close();
    await store.close();
  });
  return registry;
}

async function start(t: TestContext, registry: Registry, port = 0): Promise<RunningSimProcess> {
  const p = await startSimProcess({ machines: 3, speed: 'max', client: registry, machineServerUrl: 'http://127.0.0.1:1', token: TOKEN, port });
  t.after(() => p.close());
  return p;
}

function call(p: RunningSimProcess, method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<Response> {
  return fetch(`${p.url}${path}`, {
    method,
    headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
}

test('one port serves the BMCs of the enrolled Hardware, and the operator API only with the token', async (t) => {
  const registry = await openRegistry(t);
  const p = await start(t, registry);
  const hw = (await registry.list(registry.kind('metalplane.dev', 'Hardware'))).items;
  assert.equal(hw.length, 3);
  const spec = hw[0]!['spec'] as { bmc: { address: string; systemId: string; credentialsSecret: { name: string } } };
  assert.equal(spec.bmc.address, p.url, 'the BMC address is the sim process port');
  const secret = await registry.get(registry.kind('', 'Secret'), SIM_NAMESPACE, spec.bmc.credentialsSecret.name);
  const data = secret!['data'] as { username: string; password: string };
  const creds = { username: Buffer.from(data.username, 'base64').toString(), password: Buffer.from(data.password, 'base64').toString() };
  const bmc = new RedfishDriver({ timeoutMs: 2000 }).connect({ driver: 'redfish', address: spec.bmc.address, systemId: spec.bmc.systemId }, creds);
  assert.equal((await bmc.system()).powerState, 'off');

  const cases = [
    { name: 'no token', token: undefined, status: 401, error: /a bearer token is required/ },
    { name: 'wrong token', token: 'not-the-token', status: 401, error: /not the one this simulator was given/ },
    { name: 'the token', token: TOKEN, status: 200 },
  ];
  for (const c of cases) {
    const res = await call(p, 'GET', '/sim/v1/machines', { token: c.token });
    const body = (await res.json()) as { errors?: string[]; machines?: unknown[] };
    assert.equal(res.status, c.status, c.name);
    if (c.error) assert.match(body.errors?.join() ?? '', c.error, c.name);
    else assert.equal(body.machines?.length, 3, c.name);
  }
});

test('the HTTP switch driver programs the sim fabric; refusals come back as SwitchErrors', async (t) => {
  const registry = await openRegistry(t);
  const p = await start(t, registry);
  const m = p.sim.machines()[0]!;
  const config: MachineNetworkConfig = {
    machine: m.id,
    ports: m.spec.nics.map((n) => ({ nic: n.name, mac: n.mac, mode: 'layer2' as const, vlans: [{ vid: 1000, network: 'vn-uid-1' }], native: 1000 })),
    bgp: [{ family: 4, address: '147.75.0.3', remoteAs: 65000, defaultRoute: true }],
  };
  const driver = new HttpSwitchDriver({ url: new URL(p.url), token: TOKEN });
  t.after(() => driver.close());
  const refs = await driver.configureMachine(config);
  assert.deepEqual(refs.map((r) => r.nic), m.spec.nics.map((n) => n.name));
  const seen = p.sim.fabric.machine(m.id);
  assert.deepEqual(seen.ports.map((x) => [x.mode, x.native, x.vlans.map((v) => v.vid)]), m.spec.nics.map(() => ['layer2', 1000, [1000]]));
  assert.deepEqual(seen.bgpPeers.map((b) => b.address), ['147.75.0.3']);

  const refusals: Array<{ name: string; driver: HttpSwitchDriver; config: MachineNetworkConfig; kind: SwitchError['kind']; message: RegExp }> = [
    { name: 'a NIC without a port', driver, config: { ...config, ports: [{ ...config.ports[0]!, mac: '02:ff:ff:ff:ff:ff' }] }, kind: 'not-found', message: /learned MAC 02:ff:ff:ff:ff:ff/ },
    { name: 'a bad mode', driver, config: { ...config, ports: [{ ...config.ports[0]!, mode: 'bridged' as 'layer2' }] }, kind: 'rejected', message: /ports\[0\]\.mode must be "layer3" or "layer2"/ },
    { name: 'the wrong token', driver: new HttpSwitchDriver({ url: new URL(p.url), token: 'wrong' }), config, kind: 'unreachable', message: /HTTP 401.*--sim-token-file/ },
    { name: 'nobody listening', driver: new HttpSwitchDriver({ url: new URL('http://127.0.0.1:1'), token: TOKEN }), config, kind: 'unreachable', message: /ECONNREFUSED/ },
  ];
  for (const c of refusals) {
    await assert.rejects(c.driver.configureMachine(c.config), (e: unknown) => {
      assert.ok(e instanceof SwitchError, c.name);
      assert.equal(e.kind, c.kind, c.name);
      assert.equal(e.transient, c.kind === 'unreachable', c.name);
      assert.match(e.message, c.message, c.name);
      return true;
    });
  }
  const bodies: Array<{ name: string; body: unknown; error: RegExp }> = [
    { name: 'not an object', body: [1], error: /the request body must be a JSON object/ },
    { name: 'no ports', body: { bgp: [] }, error: /ports must be a list/ },
    { name: 'unknown field', body: { ports: [], vlan: 3 }, error: /unknown field "vlan"; known fields: ports, bgp/ },
    { name: 'bad vid', body: { ports: [{ nic: 'eth0', mac: m.pxeMac, mode: 'layer2', vlans: [{ vid: -1, network: 'x' }] }] }, error: /ports\[0\]\.vlans\[0\]\.vid must be a non-negative integer/ },
    { name: 'bad family', body: { ports: [], bgp: [{ family: 5, address: '1.2.3.4', remoteAs: 1, defaultRoute: false }] }, error: /bgp\[0\]\.family must be 4 or 6/ },
  ];
  for (const c of bodies) {
    const res = await call(p, 'PUT', `/switch/v1/machines/${m.id}`, { token: TOKEN, body: c.body });
    assert.equal(res.status, 400, c.name);
    assert.match(((await res.json()) as { errors: string[] }).errors.join(), c.error, c.name);
  }
});

test('a restarted sim on the same port finds its machines: nothing created or moved, the same BMC passwords', async (t) => {
  const registry = await openRegistry(t);
  const first = await start(t, registry);
  assert.equal(first.enrollment.hardwareCreated, 3);
  const port = Number(new URL(first.url).port);
  const passwords = first.sim.machines().map((m) => m.password);
  await first.close();
  const again = await start(t, registry, port);
  assert.deepEqual(
    [again.enrollment.hardwareCreated, again.enrollment.hardwareUpdated, again.enrollment.secretsCreated, again.enrollment.secretsUpdated],
    [0, 0, 0, 0],
  );
  assert.deepEqual(again.sim.machines().map((m) => m.password), passwords);
});

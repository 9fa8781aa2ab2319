// The Device lifecycle end to end, on the simulated datacenter, through the real surfaces: kubectl applies,
// waits and deletes; the sim's operator API injects faults; the controllers drive the machines over Redfish,
// PXE, the agent protocol and the metadata service. Speed `max`: no artificial hardware delay, so every wait
// here is control-plane time (plus the 15 s floor of provisioning timeouts in the fault cases).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { api, kubectl, kubectlOk, REPO, runMetalplane, startTestServer, waitFor, type TestServer } from './helpers/server.js';

const DEVICES = '/apis/metalplane.dev/v1alpha1/namespaces/default/devices';
const HARDWARE = '/apis/metalplane.dev/v1alpha1/hardware';

interface Obj {
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  spec: Record<string, any>;
  status?: Record<string, any>;
}

async function get(s: TestServer, path: string): Promise<Obj> {
  const r = await api(s, 'GET', path);
  assert.equal(r.status, 200, `GET ${path}: ${r.text}`);
  return r.body as Obj;
}

async function list(s: TestServer, path: string): Promise<Obj[]> {
  return ((await get(s, path)) as unknown as { items: Obj[] }).items;
}

function device(name: string, spec: Record<string, unknown>): Obj {
  return { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Device', metadata: { name }, spec: { plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04', ...spec } } as unknown as Obj;
}

async function create(s: TestServer, d: Obj): Promise<void> {
  const r = await api(s, 'POST', DEVICES, d);
  assert.equal(r.status, 201, `create ${d.metadata.name}: ${r.text}`);
}

/** Waits until the device is active or failed; returns it. */
async function settled(s: TestServer, name: string, timeoutMs = 30_000): Promise<Obj> {
  return waitFor(`device ${name} active or failed`, async () => {
    const d = await get(s, `${DEVICES}/${name}`);
    return d.status?.state === 'active' || d.status?.state === 'failed' ? d : undefined;
  }, timeoutMs, 100);
}

async function fault(s: TestServer, machine: string, type: string, durationSeconds?: number): Promise<void> {
  const r = await api(s, 'POST', `/sim/v1/machines/${machine}/faults`, { type, ...(durationSeconds ? { durationSeconds } : {}) });
  assert.equal(r.status, 201, `inject ${type} on ${machine}: ${r.text}`);
}

describe('devices on the simulated datacenter', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ args: ['--sim', '--sim-machines', '32', '--sim-speed', 'max'] });
    await waitFor('32 machines discovered', async () => {
      const hw = await list(s, HARDWARE);
      return hw.length === 32 && hw.every((h) => h.status?.state === 'available') ? true : undefined;
    }, 30_000);
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
  });

  test('kubectl apply, wait Ready: active on a bound machine with IPs; delete wipes it back to available', async () => {
    kubectlOk(s, ['apply', '-f', join(REPO, 'examples', 'ssh-key.yaml')]);
    kubectlOk(s, ['apply', '-f', join(REPO, 'examples', 'device.yaml')]);
    const w = kubectl(s, ['wait', 'device/web-1', '--for=condition=Ready', '--timeout=30s']);
    assert.equal(w.status, 0, w.stderr);
    const d = JSON.parse(kubectlOk(s, ['get', 'device', 'web-1', '-o', 'json'])) as Obj;
    assert.equal(d.status!.state, 'active');
    assert.equal(d.status!.provisioningPercentage, 100);
    const hwName = d.status!.hardware as string;
    assert.match(hwName, /^da/);
    const ips = d.status!.ipAddresses as Array<{ family: number; public: boolean; address: string; gateway: string; cidr: number }>;
    assert.deepEqual(ips.map((i) => `${i.family}/${i.public}`).sort(), ['4/false', '4/true', '6/true']);
    const pub = ips.find((i) => i.family === 4 && i.public)!;
    assert.equal(pub.cidr, 31);
    const hw = await get(s, `${HARDWARE}/${hwName}`);
    assert.equal(hw.status!.state, 'in-use');
    assert.equal(hw.status!.claim.name, 'web-1');
    // The table kubectl prints has the columns.
    const table = kubectlOk(s, ['get', 'devices']);
    assert.match(table.split('\n')[0]!, /^NAME\s+HOSTNAME\s+METRO\s+PLAN\s+STATE\s+IP\s+AGE/);
    assert.match(table, new RegExp(`web-1\\s+web-1\\s+da\\s+c3.small.x86\\s+active\\s+${pub.address.replace(/\./g, '\\.')}`));
    assert.match(kubectlOk(s, ['get', 'hardware', hwName]).split('\n')[0]!, /^NAME\s+FACILITY\s+RACK\s+PLAN\s+STATE\s+POWER\s+AGE/);
    // The machine really booted the OS, read its own metadata (with the project's key) and phoned home.
    const m = (await api(s, 'GET', `/sim/v1/machines/${hwName}`)).body as { phase: string; installedImage: string; phonedHomeAt?: string; datasource: string };
    assert.equal(m.phase, 'os');
    assert.equal(m.installedImage, 'ubuntu_24_04');
    assert.ok(m.phonedHomeAt);
    const meta = await fetch(`${m.datasource}meta-data`).then((r) => r.text());
    assert.match(meta, /local-hostname: web-1/);
    assert.match(meta, /ssh-ed25519 AAAA/);
    const userData = await fetch(`${m.datasource}user-data`).then((r) => r.text());
    assert.match(userData, /packages: \[nginx\]/);
    // Events tell the story.
    const events = kubectlOk(s, ['get', 'events', '--field-selector', 'involvedObject.name=web-1']);
    assert.match(events, /Scheduled/);
    assert.match(events, /Provisioned/);

    const del = kubectl(s, ['delete', 'device', 'web-1', '--timeout=30s']);
    assert.equal(del.status, 0, del.stderr);
    const back = await get(s, `${HARDWARE}/${hwName}`);
    assert.equal(back.status!.state, 'available');
    assert.equal(back.status!.claim, undefined);
    const claims = await list(s, '/apis/metalplane.dev/v1alpha1/ipaddresses');
    assert.ok(!claims.some((c) => c.spec.device?.name === 'web-1'), 'the device\'s addresses are released');
    assert.ok(!claims.some((c) => c.spec.address === pub.address));
    // The released range is free again for the scheduler's claim index too: the next device gets it.
    await create(s, device('reuse-1', { metro: 'da' }));
    const again = await settled(s, 'reuse-1');
    assert.equal(again.status!.state, 'active');
    const againPub = (again.status!.ipAddresses as typeof ips).find((i) => i.family === 4 && i.public)!;
    assert.equal(againPub.address, pub.address, 'the lowest free public address is the one web-1 gave back');
    const del2 = kubectl(s, ['delete', 'device', 'reuse-1', '--timeout=30s']);
    assert.equal(del2.status, 0, del2.stderr);
  });

  test('many more concurrent creates than machines: all accepted, no machine or IP given twice, the rest NoCapacity', async () => {
    const hw = (await list(s, HARDWARE)).filter((h) => h.spec.metro === 'da' && h.spec.plan === 'c3.small.x86');
    const N = 40;
    const results = await Promise.all(Array.from({ length: N }, (_, i) => api(s, 'POST', DEVICES, device(`burst-${i}`, { metro: 'da' }))));
    assert.deepEqual(results.map((r) => r.status), Array(N).fill(201), 'every create is accepted');
    const devices = await waitFor('every burst device placed or waiting', async () => {
      const ds = (await list(s, DEVICES)).filter((d) => d.metadata.name.startsWith('burst-'));
      const placed = ds.filter((d) => d.status?.state === 'active');
      const waiting = ds.filter((d) => d.status?.state === 'queued' && d.status.conditions?.some((c: any) => c.type === 'Scheduled' && c.reason === 'NoCapacity'));
      return placed.length === hw.length && waiting.length === N - hw.length ? ds : undefined;
    }, 30_000);
    const bound = devices.filter((d) => d.status!.hardware).map((d) => d.status!.hardware as string);
    assert.equal(new Set(bound).size, bound.length, 'no machine is bound twice');
    const addrs = devices.flatMap((d) => (d.status!.ipAddresses ?? []).map((i: { address: string }) => i.address));
    assert.equal(new Set(addrs).size, addrs.length, 'no address is given twice');
    const waiting = devices.find((d) => d.status!.state === 'queued')!;
    const cond = waiting.status!.conditions.find((c: any) => c.type === 'Scheduled');
    assert.match(cond.message, /no available c3.small.x86 machine in metro da/);
    // Freeing machines places waiting devices.
    const r = await api(s, 'DELETE', `${DEVICES}?labelSelector=`, undefined);
    assert.ok(r.status < 300, r.text);
    await waitFor('burst devices gone', async () => ((await list(s, DEVICES)).some((d) => d.metadata.name.startsWith('burst-')) ? undefined : true), 30_000);
  });

  test('a disk failure ends the device failed with DiskFailure and marks the machine', async () => {
    await fault(s, 'sv15-r01-s01', 'disk-failure');
    await create(s, device('disk-1', { metro: 'sv', hardwareReservation: 'sv15-r01-s01' }));
    const d = await settled(s, 'disk-1');
    assert.equal(d.status!.state, 'failed');
    assert.equal(d.status!.failure.reason, 'DiskFailure');
    assert.match(d.status!.failure.message, /wipe-disks: .*I\/O error/);
    const ready = d.status!.conditions.find((c: any) => c.type === 'Ready');
    assert.equal(ready.status, 'False');
    assert.equal((await get(s, `${HARDWARE}/sv15-r01-s01`)).status!.state, 'failed');
  });

  test('with remediation: reschedule, a disk failure moves the device to another machine, which makes it Ready', async () => {
    // Every ny c3.small machine is warm; the scheduler takes the first by name.
    await fault(s, 'ny5-r01-s01', 'disk-failure');
    await create(s, device('moved-1', { metro: 'ny', remediation: 'reschedule' }));
    const d = await settled(s, 'moved-1');
    assert.equal(d.status!.state, 'active', JSON.stringify(d.status));
    assert.notEqual(d.status!.hardware, 'ny5-r01-s01');
    assert.equal(d.status!.rescheduled, 1);
    assert.equal(d.status!.failure.reason, 'DiskFailure');
    assert.equal(d.status!.failure.hardware, 'ny5-r01-s01');
  });

  test('BMC faults: a short outage is retried and the device ends Ready; a lasting one ends failed with BMCUnreachable', async () => {
    await fault(s, 'am6-r01-s01', 'bmc-unreachable', 1);
    await fault(s, 'am6-r01-s03', 'bmc-unreachable');
    await create(s, device('bmc-short', { metro: 'am', hardwareReservation: 'am6-r01-s01' }));
    await create(s, device('bmc-down', { metro: 'am', hardwareReservation: 'am6-r01-s03' }));
    const short = await settled(s, 'bmc-short');
    assert.equal(short.status!.state, 'active', JSON.stringify(short.status?.failure));
    const down = await settled(s, 'bmc-down');
    assert.equal(down.status!.state, 'failed');
    assert.equal(down.status!.failure.reason, 'BMCUnreachable');
    assert.match(down.status!.failure.message, /set-boot-disk: redfish http:\/\/127\.0\.0\.1:\d+\/redfish\/v1\/Systems\/am6-r01-s03/);
  });

  test('agent hang and NIC down end failed with AgentTimeout saying what was waited for', async () => {
    await fault(s, 'ch3-r01-s01', 'agent-hang');
    await fault(s, 'fr2-r01-s01', 'nic-down');
    await create(s, device('hang-1', { metro: 'ch', hardwareReservation: 'ch3-r01-s01' }));
    await create(s, device('nic-1', { metro: 'fr', hardwareReservation: 'fr2-r01-s01' }));
    for (const name of ['hang-1', 'nic-1']) {
      const d = await settled(s, name);
      assert.equal(d.status!.state, 'failed', name);
      assert.equal(d.status!.failure.reason, 'AgentTimeout', name);
      assert.match(d.status!.failure.message, /the agent (took|did not ask for) \S+ .*within \d+ s/, name);
    }
  });

  test('power stuck: power_off is refused by reality and reported as a failed action', async () => {
    await create(s, device('power-1', { metro: 'da', plan: 'm3.small.x86' }));
    const d = await settled(s, 'power-1');
    assert.equal(d.status!.state, 'active');
    await fault(s, d.status!.hardware, 'power-stuck');
    kubectlOk(s, ['annotate', 'device', 'power-1', 'metalplane.dev/action=power_off/1']);
    const after = await waitFor('power_off settled', async () => {
      const x = await get(s, `${DEVICES}/power-1`);
      return x.status?.lastAction?.state === 'failed' || x.status?.lastAction?.state === 'succeeded' ? x : undefined;
    }, 30_000);
    assert.equal(after.status!.lastAction.state, 'failed');
    assert.match(after.status!.lastAction.message, /still on/);
    assert.equal(after.status!.state, 'active');
    // Without the fault, the same action works.
    await api(s, 'DELETE', `/sim/v1/machines/${d.status!.hardware}/faults`);
    kubectlOk(s, ['annotate', 'device', 'power-1', '--overwrite', 'metalplane.dev/action=power_off/2']);
    const off = await waitFor('powered off', async () => {
      const x = await get(s, `${DEVICES}/power-1`);
      return x.status?.state === 'inactive' ? x : undefined;
    }, 30_000);
    assert.equal(off.status!.lastAction.state, 'succeeded');
  });

  test('the machine and operator surfaces answer bad input with 4xx and a reason, never 5xx', async () => {
    const plain = s.plainUrl;
    const post = (path: string, body: string, headers: Record<string, string> = {}) =>
      fetch(plain + path, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } }).then(async (r) => ({ status: r.status, text: await r.text() }));
    // A valid token is one of a running agent (a free machine's iPXE gets none): read it off a warm machine's
    // console, as its kernel command line.
    const machines = ((await api(s, 'GET', '/sim/v1/machines')).body as { machines: Array<{ phase: string; agent?: { token?: string } }> }).machines;
    const token = machines.find((m) => m.phase === 'agent' && m.agent?.token)?.agent?.token;
    assert.ok(token, 'a machine of the warm pool runs its agent');
    const auth = { authorization: `Bearer ${token}` };
    const rows: Array<[string, Promise<{ status: number; text: string }>, number, RegExp]> = [
      ['sim API without a token', post('/sim/v1/chaos', '{}'), 401, /bearer token is required/],
      ['unknown fault type', post('/sim/v1/machines/da11-r01-s01/faults', '{"type":"meteor"}', { authorization: `Bearer ${s.token}` }), 400, /unknown fault type .*meteor.*; valid: bmc-unreachable/],
      ['agent without a token', post('/agent/v1/next', '{}'), 401, /agent token is required/],
      ['agent with a forged token', post('/agent/v1/next', '{}', { authorization: 'Bearer x.y' }), 401, /not valid/],
      ['agent body not JSON', post('/agent/v1/next?wait=0', 'not json', auth), 400, /must be a JSON object/],
      ['agent report without fields', post('/agent/v1/next?wait=0', '{"report":{"workflow":1}}', auth), 400, /report needs workflow/],
      ['agent wait not a number', post('/agent/v1/next?wait=abc', '{}', auth), 400, /wait must be a number/],
      ['agent registering another boot', post('/agent/v1/register', '{"bootId":"other"}', auth), 403, /the token is for boot/],
      ['iPXE for a bad MAC', fetch(`${plain}/boot/v1/ipxe?mac=zz`).then(async (r) => ({ status: r.status, text: await r.text() })), 400, /must be a MAC address/],
      ['metadata with a bad token', fetch(`${plain}/metadata/nocloud/abc/meta-data`).then(async (r) => ({ status: r.status, text: await r.text() })), 403, /not valid/],
    ];
    for (const [name, res, status, body] of rows) {
      const r = await res;
      assert.equal(r.status, status, `${name}: ${r.text}`);
      assert.match(r.text, body, name);
    }
  });

  test('reinstall and rescue through the action annotation; the chaos CLI injects, lists and clears faults', async () => {
    await create(s, device('act-1', { metro: 'da', plan: 'c3.medium.x86' }));
    const d = await settled(s, 'act-1');
    assert.equal(d.status!.state, 'active');
    const firstWorkflow = d.status!.workflow;
    kubectlOk(s, ['annotate', 'device', 'act-1', 'metalplane.dev/action=reinstall/1']);
    const re = await waitFor('reinstalled', async () => {
      const x = await get(s, `${DEVICES}/act-1`);
      return x.status?.lastAction?.request === 'reinstall/1' && x.status.lastAction.state === 'succeeded' && x.status.state === 'active' ? x : undefined;
    }, 30_000);
    assert.notEqual(re.status!.workflow, firstWorkflow);
    const wf = await get(s, `/apis/metalplane.dev/v1alpha1/namespaces/default/workflows/${re.status!.workflow}`);
    assert.equal(wf.spec.purpose, 'reinstall');
    assert.equal(wf.status!.actions[0].state, 'succeeded', 'the installed OS is not the agent: power on into PXE first');
    kubectlOk(s, ['annotate', 'device', 'act-1', '--overwrite', 'metalplane.dev/action=rescue/2']);
    const rescued = await waitFor('rescued', async () => {
      const x = await get(s, `${DEVICES}/act-1`);
      return x.status?.lastAction?.request === 'rescue/2' && x.status.lastAction.state !== 'running' ? x : undefined;
    }, 30_000);
    assert.equal(rescued.status!.lastAction.state, 'succeeded', JSON.stringify(rescued.status!.lastAction));
    const m = (await api(s, 'GET', `/sim/v1/machines/${rescued.status!.hardware}`)).body as { phase: string };
    assert.equal(m.phase, 'agent', 'the machine runs the in-memory environment');

    const cli = (args: string[]) => runMetalplane(['chaos', ...args, '--kubeconfig', s.kubeconfig]);
    const inject = await cli(['inject', 'fr2-r01-s02', 'slow-boot', '--factor', '5']);
    assert.equal(inject.status, 0, inject.stderr);
    const listed = await cli(['list', '-o', 'json']);
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(listed.stdout, /fr2-r01-s02/);
    assert.match(listed.stdout, /slow-boot/);
    const bad = await cli(['inject', 'fr2-r01-s02', 'meteor']);
    assert.equal(bad.status, 2, 'an unknown fault type is a usage error');
    const missing = await cli(['inject', 'no-such-machine', 'nic-down']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /no simulated machine "no-such-machine"/);
    const cleared = await cli(['clear', 'fr2-r01-s02']);
    assert.equal(cleared.status, 0, cleared.stderr);
    const after = (await api(s, 'GET', '/sim/v1/faults')).body as { faults: Array<{ machine: string }> };
    assert.ok(!after.faults.some((f) => f.machine === 'fr2-r01-s02'));
  });

  test('a machine taken into maintenance and released is rediscovered to available, without failing on its old agent', async () => {
    // The release power-cycles the machine into PXE; the old boot's agent, still in a long poll when the reset
    // came, must not count as alive afterwards (its registration would refuse the new boot's: AgentTimeout).
    const free = (await list(s, HARDWARE)).find((h) => h.status?.state === 'available');
    assert.ok(free, 'a free machine');
    const name = free.metadata.name;
    const patch = (maintenance: boolean) => kubectlOk(s, ['patch', 'hardware', name, '--type=merge', '-p', JSON.stringify({ spec: { maintenance } })]);
    patch(true);
    await waitFor(`${name} in maintenance`, async () => ((await get(s, `${HARDWARE}/${name}`)).status?.state === 'maintenance' ? true : undefined), 30_000, 100);
    patch(false);
    const states: string[] = [];
    const back = await waitFor(`${name} available again`, async () => {
      const h = await get(s, `${HARDWARE}/${name}`);
      const state = String(h.status?.state);
      if (states.at(-1) !== state) states.push(state);
      return state === 'available' || state === 'failed' ? h : undefined;
    }, 60_000, 100);
    assert.equal(back.status?.state, 'available', `states after the release: ${states.join(' → ')}; conditions: ${JSON.stringify(back.status?.conditions)}`);
  });

  test('bad device specs are refused with clear messages; unknown references wait with a reason', async () => {
    const noMetro = await api(s, 'POST', DEVICES, device('bad-1', {}));
    assert.equal(noMetro.status, 422);
    assert.match(noMetro.body.message, /either spec.metro or spec.facility is required/);
    await create(s, device('bad-plan', { metro: 'da', plan: 'c9.huge.x86' }));
    const d = await waitFor('InvalidPlan', async () => {
      const x = await get(s, `${DEVICES}/bad-plan`);
      return x.status?.conditions?.some((c: any) => c.reason === 'InvalidPlan') ? x : undefined;
    });
    assert.equal(d.status!.state, 'queued');
    assert.match(d.status!.conditions.find((c: any) => c.type === 'Scheduled').message, /"c9.huge.x86" is not a plan; known plans: .*c3.small.x86/);
  });
});

test('kill -9 mid-provisioning: after the restart the workflows finish and the devices become active', async () => {
  const args = ['--sim', '--sim-machines', '12', '--sim-speed', '20'];
  const first = await startTestServer({ args });
  try {
    await waitFor('machines discovered', async () => ((await list(first, HARDWARE)).every((h) => h.status?.state === 'available') ? true : undefined), 60_000);
    for (let i = 0; i < 3; i++) await create(first, device(`crash-${i}`, { metro: 'da' }));
    await waitFor('provisioning under way', async () => {
      const ds = await list(first, DEVICES);
      return ds.length === 3 && ds.every((d) => d.status?.state === 'provisioning' && (d.status.provisioningPercentage ?? 0) > 0) ? true : undefined;
    }, 30_000, 50);
    await first.kill();
    const second = await startTestServer({ dataDir: first.dataDir, args });
    try {
      for (let i = 0; i < 3; i++) {
        const d = await settled(second, `crash-${i}`, 90_000);
        assert.equal(d.status!.state, 'active', JSON.stringify(d.status?.failure));
      }
      const wfs = await list(second, '/apis/metalplane.dev/v1alpha1/namespaces/default/workflows');
      assert.ok(wfs.some((w) => (w.status?.restarts ?? 0) > 0), 'a workflow whose machine was lost started over');
    } finally {
      await second.stop();
    }
  } finally {
    first.cleanup();
  }
});

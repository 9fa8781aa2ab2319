// An attacker on the provisioning network, end to end (issue 14, finding 1): a second client, on another
// loopback address (127.0.0.2) than the simulated machines (127.0.0.1), tries what used to hijack provisioning —
// mint an agent token for a free machine by asking for its iPXE script, use a token read off a machine, forge
// reports and registrations, walk MACs for tenant names — while a device provisions. It gets no token (or a
// useless one), no action, no user data, and the device still reaches `active`. A second fetch of a boot that
// is under way revokes it. Plus: `spec.ipxeScriptUrl` admission, and a restart on the same data dir (the sim's
// BMCs keep the credentials their Secrets hold).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { api, startTestServer, waitFor, type TestServer } from './helpers/server.js';

const DEVICES = '/apis/metalplane.dev/v1alpha1/namespaces/default/devices';
const MACHINES = 8;
const MACS = Array.from({ length: MACHINES }, (_, i) => `02:00:00:00:00:${(i + 1).toString(16).padStart(2, '0')}`);
/** The only m3.small.x86 machine in da of an 8-machine sim: where the device lands. */
const TARGET = 'da11-r01-s02';
const SECRET = 'attack-secret-7f3a9c';

interface Answer {
  status: number;
  text: string;
}

/** A request from the attacker's address: loopback too, but not the machines' 127.0.0.1. */
function fromAttacker(s: TestServer, method: 'GET' | 'POST', path: string, body?: unknown, token?: string): Promise<Answer> {
  const u = new URL(s.plainUrl + path);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        method,
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        localAddress: '127.0.0.2',
        agent: false,
        headers: { ...(payload !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('attacker request timed out')));
    req.end(payload);
  });
}

async function machine(s: TestServer, id: string): Promise<{ phase: string; agent?: { token: string; bootId: string; state: string } }> {
  return (await api(s, 'GET', `/sim/v1/machines/${id}`)).body;
}

async function deviceOf(s: TestServer, name: string): Promise<any> {
  return (await api(s, 'GET', `${DEVICES}/${name}`)).body;
}

describe('an attacker on the provisioning network', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ args: ['--sim', '--sim-machines', String(MACHINES), '--sim-speed', '40'] });
    await waitFor('machines discovered', async () => {
      const hw = (await api(s, 'GET', '/apis/metalplane.dev/v1alpha1/hardware')).body.items as any[];
      return hw.length === MACHINES && hw.every((h) => h.status?.state === 'available') ? true : undefined;
    }, 60_000);
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
  });

  test('gets no token, no action and no user data, forges nothing, and the device still reaches active', async () => {
    // 1. Mint a token for a free machine, as used to work: every MAC answers 403 without a token.
    for (const mac of MACS) {
      const r = await fromAttacker(s, 'GET', `/boot/v1/ipxe?mac=${mac}`);
      assert.equal(r.status, 403, `${mac}: ${r.text}`);
      assert.doesNotMatch(r.text, /metalplane\.token=/, mac);
    }
    // 2. A token read off the target's console (or its wire) — the warm agent's own.
    const stolen = (await machine(s, TARGET)).agent;
    assert.ok(stolen?.token, 'the target machine runs its warm agent');
    const inventoryBefore = (await api(s, 'GET', `/apis/metalplane.dev/v1alpha1/hardware/${TARGET}`)).body.status.inventory;

    const created = await api(s, 'POST', DEVICES, {
      apiVersion: 'metalplane.dev/v1alpha1',
      kind: 'Device',
      metadata: { name: 'victim' },
      spec: { metro: 'da', plan: 'm3.small.x86', operatingSystem: 'ubuntu_24_04', userData: `#cloud-config\nwrite_files: [{path: /etc/secret, content: ${SECRET}}]\n` },
    });
    assert.equal(created.status, 201, created.text);

    // 3. While it provisions: poll for actions, forge failure reports and registrations, with every token at hand.
    const answers: Array<[string, Answer]> = [];
    const deadline = Date.now() + 60_000;
    for (let round = 0; round < 500 && Date.now() < deadline; round++) {
      const d = await deviceOf(s, 'victim');
      if (d.status?.state === 'active' || d.status?.state === 'failed') break;
      const wf = d.status?.workflow as string | undefined;
      const report = wf ? { bootId: stolen.bootId, report: { workflow: wf, namespace: 'default', index: 3, state: 'failed', reason: 'DiskFailure', message: 'forged' } } : { bootId: stolen.bootId };
      for (const [name, token] of [['stolen', stolen.token], ['forged', 'eyJraW5kIjoiYWdlbnQifQ.AAAA'], ['none', undefined]] as const) {
        answers.push([`next/${name}`, await fromAttacker(s, 'POST', '/agent/v1/next?wait=0', report, token)]);
        answers.push([`register/${name}`, await fromAttacker(s, 'POST', '/agent/v1/register', { bootId: stolen.bootId, inventory: { cpus: 1, macs: [], disks: [] } }, token)]);
      }
      answers.push(['ipxe', await fromAttacker(s, 'GET', `/boot/v1/ipxe?mac=${MACS[1]}`)]);
    }
    assert.ok(answers.length > 0, 'the attacker got to try while the device provisioned');
    for (const [what, a] of answers) {
      // The target's script may say "boot your disk" (200 exit) once its OS is installed; anything else is a 4xx.
      if (what !== 'ipxe' || a.status !== 200) assert.ok(a.status >= 400 && a.status < 500, `${what}: ${a.status} ${a.text}`);
      assert.doesNotMatch(a.text, /"action"|seedfrom|metadata\/nocloud|metalplane\.token=/, what);
      assert.doesNotMatch(a.text, new RegExp(SECRET), what);
      if (what.startsWith('next') || what.startsWith('register')) assert.match(a.text, /^\{"errors":\["/, what);
    }
    const stolenUse = answers.find(([w]) => w === 'next/stolen')![1];
    assert.equal(stolenUse.status, 403);
    assert.match(stolenUse.text, /started from 127\.0\.0\.1; this request comes from 127\.0\.0\.2/);

    // 4. The device is unharmed: active, on the target, whose inventory the forged registrations did not touch.
    const d = await waitFor('victim active', async () => {
      const x = await deviceOf(s, 'victim');
      return x.status?.state === 'active' || x.status?.state === 'failed' ? x : undefined;
    }, 60_000);
    assert.equal(d.status.state, 'active', JSON.stringify(d.status));
    assert.equal(d.status.hardware, TARGET);
    const hw = (await api(s, 'GET', `/apis/metalplane.dev/v1alpha1/hardware/${TARGET}`)).body;
    assert.deepEqual(hw.status.inventory, inventoryBefore);
    assert.equal(hw.status.state, 'in-use');

    // 5. A walk over MACs names no tenant or device.
    for (const mac of MACS) {
      const r = await fromAttacker(s, 'GET', `/boot/v1/ipxe?mac=${mac}`);
      assert.match(r.text, /^#!ipxe\n/, mac);
      assert.doesNotMatch(r.text, /victim|default\//, mac);
    }
  });

  test('a second fetch of a boot under way, from another address, gets no token and revokes the boot', async () => {
    // Hold the target's next agent before it registers, then power it into PXE again (reinstall).
    const inject = await api(s, 'POST', `/sim/v1/machines/${TARGET}/faults`, { type: 'agent-hang' });
    assert.equal(inject.status, 201, inject.text);
    const annotated = await api(s, 'PATCH', `${DEVICES}/victim`, { metadata: { annotations: { 'metalplane.dev/action': 'reinstall/1' } } }, { 'content-type': 'application/merge-patch+json' });
    assert.equal(annotated.status, 200, annotated.text);
    const booted = await waitFor('the target fetched its script and its agent hangs', async () => {
      const m = await machine(s, TARGET);
      return m.phase === 'agent' && m.agent?.state === 'hung' ? m : undefined;
    }, 60_000);
    const r = await fromAttacker(s, 'GET', `/boot/v1/ipxe?mac=${MACS[1]}`);
    assert.equal(r.status, 409, r.text);
    assert.doesNotMatch(r.text, /metalplane\.token=/);
    const d = await deviceOf(s, 'victim');
    const wf = (await api(s, 'GET', `/apis/metalplane.dev/v1alpha1/namespaces/default/workflows/${d.status.workflow}`)).body;
    assert.equal(wf.status.failure?.reason, 'BootContested', JSON.stringify(wf.status));
    assert.match(wf.status.failure.message, /fetched from 127\.0\.0\.1 and then from 127\.0\.0\.2/);
    // The machine's own token of that boot is refused now too.
    const own = await api(s, 'POST', '/agent/v1/next?wait=0', { bootId: booted.agent!.bootId }, { authorization: `Bearer ${booted.agent!.token}` });
    assert.equal(own.status, 403, own.text);
    assert.match(own.text, /revoked/);
    await api(s, 'DELETE', `/sim/v1/machines/${TARGET}/faults`);
  });

  test('spec.ipxeScriptUrl with a newline, a space or another scheme is refused at admission (422, field named)', async () => {
    const rows: Array<[string, string, RegExp]> = [
      ['newline', 'http://boot.example/x.ipxe\nshell', /whitespace or control/],
      ['space', 'http://boot.example/x y.ipxe', /whitespace or control/],
      ['scheme', 'tftp://boot.example/x.ipxe', /http:\/\/ or https:\/\//],
      ['length', `https://boot.example/${'a'.repeat(2100)}`, /at most 2048/],
    ];
    for (const [name, url, why] of rows) {
      const r = await api(s, 'POST', DEVICES, {
        apiVersion: 'metalplane.dev/v1alpha1',
        kind: 'Device',
        metadata: { name: `ipxe-${name}` },
        spec: { metro: 'da', plan: 'c3.small.x86', operatingSystem: 'custom_ipxe', ipxeScriptUrl: url },
      });
      assert.equal(r.status, 422, `${name}: ${r.text}`);
      assert.equal(r.body.kind, 'Status', name);
      const cause = (r.body.details?.causes ?? []).find((c: { field: string }) => c.field === 'spec.ipxeScriptUrl');
      assert.ok(cause, `${name}: ${r.text}`);
      assert.match(cause.message, why, name);
    }
  });
});

test('a restart on the same data dir: the sim BMCs keep their credentials and a new device provisions', async () => {
  const first = await startTestServer({ args: ['--sim', '--sim-machines', '2', '--sim-speed', 'max'] });
  const secretPath = '/api/v1/namespaces/metalplane-system/secrets/bmc-da11-r01-s01';
  let before: string;
  try {
    await waitFor('discovered', async () => {
      const hw = (await api(first, 'GET', '/apis/metalplane.dev/v1alpha1/hardware')).body.items as any[];
      return hw.length === 2 && hw.every((h) => h.status?.state === 'available') ? true : undefined;
    }, 30_000);
    before = (await api(first, 'GET', secretPath)).body.data.password;
  } finally {
    await first.stop();
  }
  const second = await startTestServer({ dataDir: first.dataDir, args: ['--sim', '--sim-machines', '2', '--sim-speed', 'max'] });
  try {
    assert.equal((await api(second, 'GET', secretPath)).body.data.password, before, 'the Secret was not re-issued');
    const r = await api(second, 'POST', DEVICES, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Device', metadata: { name: 'after-restart' }, spec: { metro: 'da', plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04' } });
    assert.equal(r.status, 201, r.text);
    const d = await waitFor('active after restart', async () => {
      const x = await deviceOf(second, 'after-restart');
      return x.status?.state === 'active' || x.status?.state === 'failed' ? x : undefined;
    }, 60_000);
    assert.equal(d.status.state, 'active', JSON.stringify(d.status));
  } finally {
    await second.stop();
    second.cleanup();
  }
});

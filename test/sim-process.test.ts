// `metalplane sim`, the simulated datacenter as its own process, end to end: its usage and connection errors
// (exit 2 for a usage mistake, 1 for an unreachable server, a refused token or an untrusted certificate), and
// a server told about it (--sim-url) that provisions on its machines, programs its switches, passes /sim/v1
// on; the sim restarts without enrolling anything again, and a restarted server finds its machines still there.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, runMetalplane, startTestServer, waitFor, type TestServer } from './helpers/server.js';
import { freePort, startTestSim, type TestSim } from './helpers/sim.js';

const HARDWARE = '/apis/metalplane.dev/v1alpha1/hardware';
const DEVICES = '/apis/metalplane.dev/v1alpha1/namespaces/default/devices';

interface Obj {
  metadata: { name: string };
  status?: Record<string, unknown>;
}

describe('metalplane sim', () => {
  let server: TestServer;
  let dir: string;
  let simUrl: string;
  const sims: TestSim[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'metalplane-sim-cli-'));
    simUrl = `http://127.0.0.1:${await freePort()}`;
    server = await startTestServer({ args: ['--sim-url', simUrl, '--time-scale', 'max'] });
  });
  after(async () => {
    await Promise.all(sims.map((s) => s.stop()));
    await server?.stop();
    server?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('usage and connection errors say what is wrong and exit non-zero', async () => {
    const badToken = join(dir, 'bad-token');
    writeFileSync(badToken, 'mpl_not_a_token\n');
    const token = join(server.dataDir, 'admin-token');
    const ca = join(server.dataDir, 'ca.crt');
    const cases: Array<{ name: string; args: string[]; status: number; out?: RegExp; err?: RegExp }> = [
      { name: '--help', args: ['sim', '--help'], status: 0, out: /--server <url>[\s\S]*--token-file[\s\S]*--ca-file[\s\S]*--kubeconfig[\s\S]*--machines[\s\S]*--speed[\s\S]*--listen[\s\S]*--sim-url/ },
      { name: 'no server', args: ['sim', '--token-file', token], status: 2, err: /no server: pass --server/ },
      { name: 'not a URL', args: ['sim', '--server', 'nowhere', '--token-file', token], status: 2, err: /"nowhere" is not a URL/ },
      { name: 'no token file', args: ['sim', '--server', server.url, '--token-file', join(dir, 'missing')], status: 2, err: /--token-file .*missing: ENOENT/ },
      { name: 'bad speed', args: ['sim', '--speed', 'fast'], status: 2, err: /"fast" is not a positive number or "max"/ },
      { name: 'bad listen', args: ['sim', '--listen', '127.0.0.1'], status: 2, err: /is not HOST:PORT/ },
      { name: 'unreachable server', args: ['sim', '--server', 'https://127.0.0.1:1', '--token-file', token, '--ca-file', ca], status: 1, err: /cannot enroll machines into https:\/\/127\.0\.0\.1:1: .*connection refused/ },
      { name: 'bad token', args: ['sim', '--server', server.url, '--token-file', badToken, '--ca-file', ca], status: 1, err: /the server refused the token \(HTTP 401/ },
      { name: 'untrusted certificate', args: ['sim', '--server', server.url, '--token-file', token], status: 1, err: /TLS certificate is not trusted .*--ca-file/ },
      { name: '--sim-token-file without --sim-url', args: ['up', '--sim-token-file', token], status: 2, err: /--sim-token-file goes with --sim-url/ },
    ];
    for (const c of cases) {
      const r = await runMetalplane(c.args);
      assert.equal(r.status, c.status, `${c.name}: exit ${r.status}\n${r.stderr}`);
      if (c.out) assert.match(r.stdout, c.out, c.name);
      if (c.err) assert.match(r.stderr, c.err, c.name);
    }
  });

  test('a server with --sim-url provisions on the sim process, programs its switches and passes /sim/v1 on; both restart', async () => {
    const simArgs = ['--kubeconfig', server.kubeconfig, '--listen', new URL(simUrl).host, '--machines', '3', '--speed', 'max', '--log-level', 'warn'];
    const sim = await startTestSim(simArgs);
    sims.push(sim);
    assert.match(sim.stdout(), /enrolled: +3 Hardware created, 0 updated; 3 BMC Secrets created/);
    const available = (s: TestServer) =>
      waitFor('3 machines available', async () => {
        const hw = ((await api(s, 'GET', HARDWARE)).body as { items: Obj[] }).items;
        return hw.length === 3 && hw.every((h) => h.status?.state === 'available') ? hw : undefined;
      }, 30_000);
    await available(server);

    const provision = async (s: TestServer, name: string): Promise<string> => {
      const r = await api(s, 'POST', DEVICES, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Device', metadata: { name }, spec: { plan: 'c3.small.x86', metro: 'da', operatingSystem: 'ubuntu_24_04' } });
      assert.equal(r.status, 201, r.text);
      const d = await waitFor(`${name} active`, async () => {
        const got = (await api(s, 'GET', `${DEVICES}/${name}`)).body as Obj;
        return got.status?.state === 'active' ? got : undefined;
      }, 60_000);
      return d.status!.hardware as string;
    };
    const first = await provision(server, 'sim-1');
    // The network controller told the sim's switches over HTTP; read back through the server's /sim/v1.
    const net = await api(server, 'GET', `/sim/v1/machines/${first}/network`);
    assert.equal(net.status, 200, net.text);
    assert.ok((net.body as { ports: Array<{ lag?: string }> }).ports.every((p) => p.lag === `${first}-bond0`), net.text);
    // The sim's own API wants its token; `metalplane chaos` reaches it directly or through the server.
    assert.equal((await fetch(`${sim.url}/sim/v1/machines`)).status, 401);
    const direct = await runMetalplane(['chaos', 'inject', first, 'nic-down', '--duration', '1h', '--server', sim.url, '--token-file', join(server.dataDir, 'admin-token')]);
    assert.equal(direct.status, 0, direct.stderr);
    const listed = await runMetalplane(['chaos', 'list', '-o', 'json', '--kubeconfig', server.kubeconfig]);
    assert.equal(listed.status, 0, listed.stderr);
    assert.deepEqual((JSON.parse(listed.stdout) as { machines: Array<{ id: string }> }).machines.map((m) => m.id), [first]);
    const cleared = await runMetalplane(['chaos', 'clear', first, '--kubeconfig', server.kubeconfig]);
    assert.equal(cleared.status, 0, cleared.stderr);

    // A restarted sim on the same port finds what it enrolled: nothing created or moved.
    assert.equal(await sim.stop(), 0, sim.stderr());
    const again = await startTestSim(simArgs);
    sims.push(again);
    assert.match(again.stdout(), /enrolled: +0 Hardware created, 0 updated; 0 BMC Secrets created, 0 updated/);

    // A restarted server (same data dir and port) finds the sim's machines, and they provision.
    await server.stop();
    server = await startTestServer({ dataDir: server.dataDir, port: server.port, args: ['--sim-url', simUrl, '--time-scale', 'max'] });
    const hw = ((await api(server, 'GET', HARDWARE)).body as { items: Obj[] }).items;
    assert.equal(hw.length, 3);
    const second = await provision(server, 'sim-2');
    assert.notEqual(second, first);
  });
});

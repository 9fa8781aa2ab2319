// Deleting a project (namespace) that holds an active Device, through kubectl, at the default sim speed: the
// machine is wiped and returned to the pool, the device's addresses, the project's blocks and its IP
// reservation are freed, and the namespace goes. (It used to stay Terminating for ever: the wipe could not be
// created in a namespace being terminated.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, kubectl, kubectlOk, startTestServer, waitFor, type TestServer } from './helpers/server.js';

const GROUP = '/apis/metalplane.dev/v1alpha1';

interface Obj {
  metadata: { name: string; namespace?: string; uid: string; labels?: Record<string, string> };
  spec: Record<string, any>;
  status?: Record<string, any>;
}

async function list(s: TestServer, path: string): Promise<Obj[]> {
  const r = await api(s, 'GET', path);
  assert.equal(r.status, 200, `GET ${path}: ${r.text}`);
  return (r.body as { items: Obj[] }).items;
}

const device = `
apiVersion: metalplane.dev/v1alpha1
kind: Device
metadata:
  name: web
  namespace: proj
spec:
  metro: da
  plan: c3.small.x86
  operatingSystem: ubuntu_24_04
---
apiVersion: metalplane.dev/v1alpha1
kind: IPReservation
metadata:
  name: elastic
  namespace: proj
spec:
  metro: da
  type: public_ipv4
  quantity: 2
`;

describe('deleting a namespace with an active device', () => {
  let s: TestServer;
  before(async () => {
    // The default --sim-speed: the couple of minutes the issue allows are real hardware time scaled as users see it.
    s = await startTestServer({ args: ['--sim', '--sim-machines', '4'] });
    await waitFor('machines discovered', async () => {
      const hw = await list(s, `${GROUP}/hardware`);
      return hw.length === 4 && hw.every((h) => h.status?.state === 'available') ? true : undefined;
    }, 120_000, 250);
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
  });

  test('kubectl delete namespace wipes the machine back to available, frees its addresses, and the namespace goes', async () => {
    kubectlOk(s, ['create', 'namespace', 'proj']);
    kubectlOk(s, ['apply', '-f', '-'], device);
    const w = kubectl(s, ['wait', '-n', 'proj', 'device/web', '--for=condition=Ready', '--timeout=120s'], undefined, 130_000);
    assert.equal(w.status, 0, w.stderr);
    const dev = JSON.parse(kubectlOk(s, ['get', '-n', 'proj', 'device', 'web', '-o', 'json'])) as Obj;
    assert.equal(dev.status!.state, 'active');
    const hwName = dev.status!.hardware as string;
    // Ready is the machine, Synced the last reconcile (crossplane's split), on the device and its machine.
    const cond = (o: Obj, type: string) => (o.status!.conditions as Array<{ type: string; status: string }>).find((c) => c.type === type)?.status;
    assert.deepEqual([cond(dev, 'Ready'), cond(dev, 'Synced')], ['True', 'True']);
    const inUse = JSON.parse(kubectlOk(s, ['get', 'hardware', hwName, '-o', 'json'])) as Obj;
    assert.equal(cond(inUse, 'Synced'), 'True');
    const addresses = (dev.status!.ipAddresses as Array<{ address: string }>).map((i) => i.address);
    const mine = (claims: Obj[]) => claims.filter((c) => c.spec.device?.uid === dev.metadata.uid || addresses.includes(c.spec.address));
    assert.equal(mine(await list(s, `${GROUP}/ipaddresses`)).length, addresses.length, 'the device holds one claim per address');
    const project = (claims: Obj[]) => claims.filter((c) => c.spec.project === 'proj').map((c) => `${c.spec.use} ${c.metadata.name}`);
    const held = await waitFor('the reservation allocated', async () => {
      const p = project(await list(s, `${GROUP}/ipaddresses`));
      return p.some((c) => c.startsWith('reservation')) ? p : undefined;
    });
    assert.ok(held.some((c) => c.startsWith('block')), `the project holds blocks: ${held.join(', ')}`);

    // kubectl waits until the namespace is gone (or its timeout passes).
    const del = kubectl(s, ['delete', 'namespace', 'proj', '--timeout=150s'], undefined, 160_000);
    assert.equal(del.status, 0, `${del.stdout}\n${del.stderr}\n${kubectl(s, ['get', 'namespace', 'proj', '-o', 'yaml']).stdout}`);
    const gone = kubectl(s, ['get', 'namespace', 'proj']);
    assert.notEqual(gone.status, 0);
    assert.match(gone.stderr, /NotFound|not found/);

    const hw = JSON.parse(kubectlOk(s, ['get', 'hardware', hwName, '-o', 'json'])) as Obj;
    assert.equal(hw.status!.state, 'available');
    assert.equal(hw.status!.claim, undefined);
    assert.equal(hw.status!.workflow, undefined);
    assert.deepEqual(mine(await list(s, `${GROUP}/ipaddresses`)), [], 'no address claim of the device is left');
    // The project's blocks and its reservation go too (the blocks once the namespace is gone).
    let left: string[] = [];
    await waitFor('the project\'s claims released', async () => ((left = project(await list(s, `${GROUP}/ipaddresses`))).length === 0 ? true : undefined), 30_000).catch((e: Error) => {
      throw new Error(`${e.message}; left: ${left.join(', ')}`);
    });
    // The wipe ran as the machine's own workflow (in metalplane-system) and was removed when it was done.
    const wipes = (await list(s, `${GROUP}/namespaces/metalplane-system/workflows`)).filter((w) => w.spec.purpose === 'deprovision');
    assert.deepEqual(wipes.map((x) => x.metadata.name), []);
  });
});

// The boot service and the agent API together, in process (Fastify inject, a real store and registry, a
// controllable clock): which iPXE fetches start a boot, and which agent requests a token of it is good for.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from '../apiserver/registry.js';
import { allKinds, KindRegistry } from '../kinds/index.js';
import type { KubeObject, StoredObject } from '../kinds/types.js';
import type { WorkflowSpec, WorkflowStatus } from '../kinds/workflow.js';
import { systemClock } from '../lib/clock.js';
import { silentLogger } from '../runtime/logger.js';
import { InformerFactory } from '../runtime/informer.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { kindsFrom } from '../controllers/provisioning-context.js';
import { completeAction, markRunning, startWorkflow } from '../controllers/workflow/state.js';
import { discoverActions, provisionActions } from '../controllers/workflow/templates.js';
import { AgentHub } from './agent-hub.js';
import { registerAgentApi } from './agent-api.js';
import { registerBootService } from './boot.js';
import { BootRecords } from './boots.js';
import { AgentTokenLifetimeSeconds, AgentTokenRenewAfterSeconds, TokenSigner } from './tokens.js';

const MAC = '02:00:00:00:00:01';
const MACHINE = '10.0.0.5';
const ATTACKER = '10.0.0.66';
const T0 = Date.parse('2026-11-25T00:00:00Z');

interface Rig {
  app: FastifyInstance;
  registry: Registry;
  hub: AgentHub;
  clock: { ms: number };
  hw: StoredObject;
  ipxe(peer: string): Promise<{ status: number; text: string; token?: string; bootId?: string }>;
  agent(path: string, token: string | undefined, peer: string, body?: unknown): Promise<{ status: number; body: any; headers: Record<string, unknown> }>;
  /** Makes `wf` the machine's current workflow, at `status`. */
  workflow(name: string, spec: WorkflowSpec, status: WorkflowStatus, claim?: boolean): Promise<StoredObject>;
  getWorkflow(name: string): Promise<StoredObject>;
}

async function rig(t: TestContext): Promise<Rig> {
  const store = openSqliteStore(':memory:');
  const registry = new Registry({ store, kinds: new KindRegistry(allKinds) });
  await registry.start();
  const kinds = kindsFrom(registry);
  const informers = new InformerFactory({ client: registry, clock: systemClock, logger: silentLogger });
  const hardware = informers.informerFor(kinds.hardware);
  const clock = { ms: T0 };
  const now = () => clock.ms;
  const hub = new AgentHub({ now });
  const signer = TokenSigner.forTest();
  const boots = new BootRecords(store);
  const app = Fastify();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  registerBootService(app, { client: registry, hardware, hardwareKind: kinds.hardware, workflowKind: kinds.workflow, deviceKind: kinds.device, signer, boots, hub, now, powerOnWaitMs: 0, urls: () => ({ plain: 'http://mp', tls: 'https://mp' }), caPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' });
  registerAgentApi(app, { client: registry, hardwareKind: kinds.hardware, workflowKind: kinds.workflow, deviceKind: kinds.device, hub, signer, boots, logger: silentLogger, now, plainUrl: () => 'http://mp', maxWaitSeconds: 0 });
  t.after(async () => {
    informers.stop();
    await app.close();
    registry.close();
    await store.close();
  });
  await registry.create(registry.kind('', 'Namespace'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'metalplane-system' } });
  await registry.create(registry.kind('', 'Namespace'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'tenant-a' } });
  const hwObj: KubeObject = {
    apiVersion: 'metalplane.dev/v1alpha1',
    kind: 'Hardware',
    metadata: { name: 'da11-r01-s01' },
    spec: { metro: 'da', facility: 'da11', plan: 'c3.small.x86', bmc: { driver: 'redfish', address: 'http://127.0.0.1:1', credentialsSecret: { name: 'bmc' } }, nics: [{ mac: MAC, pxe: true }], disks: [{ device: '/dev/sda', sizeGB: 480 }] },
  };
  let hw = await registry.create(kinds.hardware, hwObj);
  hw = await registry.updateStatus(kinds.hardware, { ...hw, status: { state: 'available' } });
  informers.start();
  await informers.waitForSync();

  const r: Rig = {
    app,
    registry,
    hub,
    clock,
    hw,
    async ipxe(peer) {
      const res = await app.inject({ method: 'GET', url: `/boot/v1/ipxe?mac=${MAC}`, remoteAddress: peer });
      return { status: res.statusCode, text: res.body, token: /metalplane\.token=(\S+)/.exec(res.body)?.[1], bootId: /metalplane\.boot=(\S+)/.exec(res.body)?.[1] };
    },
    async agent(path, token, peer, body = {}) {
      const res = await app.inject({ method: 'POST', url: path, remoteAddress: peer, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, payload: JSON.stringify(body) });
      let parsed: unknown;
      try {
        parsed = JSON.parse(res.body);
      } catch {
        parsed = undefined;
      }
      return { status: res.statusCode, body: parsed, headers: res.headers };
    },
    async workflow(name, spec, status, claim = false) {
      const wfKind = kinds.workflow;
      const ns = claim ? 'tenant-a' : 'metalplane-system';
      let wf = await registry.get(wfKind, ns, name);
      if (!wf) wf = await registry.create(wfKind, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Workflow', metadata: { name, namespace: ns }, spec: spec as unknown as Record<string, unknown> });
      wf = await registry.updateStatus(wfKind, { ...wf, status: status as unknown as Record<string, unknown> });
      const cur = (await registry.get(kinds.hardware, undefined, 'da11-r01-s01'))!;
      await registry.updateStatus(kinds.hardware, {
        ...cur,
        status: { ...(cur.status as object), state: claim ? 'provisioning' : 'discovering', workflow: { namespace: ns, name }, ...(claim ? { claim: { namespace: 'tenant-a', name: 'dev-a', uid: 'u-1' } } : {}) },
      });
      return wf;
    },
    async getWorkflow(name) {
      return (await registry.get(kinds.workflow, 'metalplane-system', name)) ?? (await registry.get(kinds.workflow, 'tenant-a', name))!;
    },
  };
  return r;
}

const at = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
const discover: WorkflowSpec = { hardware: 'da11-r01-s01', purpose: 'discover', actions: discoverActions() };

/** A discover workflow whose power-on into PXE succeeded: the machine is booting, its agent not registered. */
function powered(restarts = 0): WorkflowStatus {
  let st = startWorkflow(discover, at(T0), false);
  st = markRunning(st, 0, at(T0));
  st = completeAction(discover, st, 0, { ok: true }, at(T0));
  return restarts ? { ...st, restarts } : st;
}

test('a free machine gets no token: no boot is expected until metalplane powers it into PXE', async (t) => {
  const r = await rig(t);
  const res = await r.ipxe(ATTACKER);
  assert.equal(res.status, 403, res.text);
  assert.equal(res.token, undefined);
  assert.match(res.text, /no network boot of this machine is expected/);
  // Nor while the power-on is only pending (not sent yet), nor once the agent registered.
  await r.workflow('wf-1', discover, startWorkflow(discover, at(T0), false));
  assert.equal((await r.ipxe(ATTACKER)).status, 403);
});

test('one boot per power-on: a retry from the same address gets the same token; another address revokes it', async (t) => {
  const r = await rig(t);
  await r.workflow('wf-1', discover, powered());
  const first = await r.ipxe(MACHINE);
  assert.equal(first.status, 200, first.text);
  assert.ok(first.token && first.bootId);
  const retry = await r.ipxe(MACHINE);
  assert.equal(retry.status, 200);
  assert.equal(retry.token, first.token, 'a retried fetch of the same boot gets the same token');
  assert.equal(retry.bootId, first.bootId);

  assert.equal((await r.agent('/agent/v1/next?wait=0', first.token, MACHINE)).status, 204);

  // Another address asks for the same power-on: no token, the boot is revoked, the workflow fails saying why.
  const other = await r.ipxe(ATTACKER);
  assert.equal(other.status, 409, other.text);
  assert.equal(other.token, undefined);
  for (const path of ['/agent/v1/next?wait=0', '/agent/v1/register']) {
    const refused = await r.agent(path, first.token, MACHINE, { bootId: first.bootId });
    assert.equal(refused.status, 403, path);
    assert.match(refused.body.errors[0], /revoked/, path);
  }
  const wf = await r.getWorkflow('wf-1');
  assert.equal((wf.status as WorkflowStatus).failure?.reason, 'BootContested');
  assert.match((wf.status as WorkflowStatus).failure!.message, new RegExp(`${MACHINE}.*${ATTACKER}`));
});

test('once the agent of a power-on registered, that power-on starts no boot any more', async (t) => {
  const r = await rig(t);
  await r.workflow('wf-1', discover, powered());
  const boot = await r.ipxe(MACHINE);
  assert.equal((await r.agent('/agent/v1/register', boot.token, MACHINE, { bootId: boot.bootId })).status, 200);
  const wf = await r.getWorkflow('wf-1');
  assert.equal((wf.status as WorkflowStatus).actions![1]!.state, 'succeeded', 'register completed');
  for (const peer of [MACHINE, ATTACKER]) {
    const res = await r.ipxe(peer);
    assert.equal(res.status, 403, `${peer}: ${res.text}`);
    assert.equal(res.token, undefined);
  }
});

test('agent tokens: bound to the current boot, its address and a lifetime; renewed as they age', async (t) => {
  const r = await rig(t);
  await r.workflow('wf-1', discover, powered());
  const boot1 = await r.ipxe(MACHINE);
  assert.equal(boot1.status, 200, boot1.text);

  const rows: Array<[string, string | undefined, string, number, RegExp]> = [
    ['no token', undefined, MACHINE, 401, /agent token is required/],
    ['a forged token', 'abc.def', MACHINE, 401, /not valid/],
    ['the right token from another address', boot1.token, ATTACKER, 403, new RegExp(`started from ${MACHINE}; this request comes from ${ATTACKER}`)],
    ['the right token from the machine', boot1.token, MACHINE, 204, /^$/],
  ];
  for (const [name, token, peer, status, body] of rows) {
    const res = await r.agent('/agent/v1/next?wait=0', token, peer);
    assert.equal(res.status, status, `${name}: ${JSON.stringify(res.body)}`);
    assert.match(res.body?.errors?.[0] ?? '', body, name);
    if (status === 401) assert.match(String(res.headers['www-authenticate']), /^Bearer/, name);
  }

  // Renewal: past the renewal age an answer carries a fresh token of the same boot, which works after the first expired.
  r.clock.ms += (AgentTokenRenewAfterSeconds + 1) * 1000;
  const aged = await r.agent('/agent/v1/next?wait=0', boot1.token, MACHINE);
  assert.equal(aged.status, 204);
  const renewed = aged.headers['x-metalplane-token'] as string;
  assert.ok(renewed && renewed !== boot1.token);
  r.clock.ms = T0 + AgentTokenLifetimeSeconds * 1000;
  const expired = await r.agent('/agent/v1/next?wait=0', boot1.token, MACHINE);
  assert.equal(expired.status, 401);
  assert.match(expired.body.errors[0], /expired/);
  assert.equal((await r.agent('/agent/v1/next?wait=0', renewed, MACHINE)).status, 204, 'the renewed token outlives the first');

  // A new power-on (the workflow restarted) starts a new boot: the previous boot's tokens are refused.
  await r.workflow('wf-1', discover, powered(1));
  const boot2 = await r.ipxe(MACHINE);
  assert.equal(boot2.status, 200, boot2.text);
  assert.notEqual(boot2.bootId, boot1.bootId);
  const stale = await r.agent('/agent/v1/next?wait=0', renewed, MACHINE);
  assert.equal(stale.status, 403);
  assert.match(stale.body.errors[0], new RegExp(`the token is for boot ${boot1.bootId}, but the current boot of da11-r01-s01 is ${boot2.bootId}`));
  assert.equal((await r.agent('/agent/v1/next?wait=0', boot2.token, MACHINE)).status, 204);
});

test('register cannot replace the boot of a machine whose agent is alive', async (t) => {
  const r = await rig(t);
  await r.workflow('wf-1', discover, powered());
  const boot1 = await r.ipxe(MACHINE);
  assert.equal((await r.agent('/agent/v1/register', boot1.token, MACHINE, { bootId: boot1.bootId, inventory: { cpus: 8 } })).status, 200);
  // A repeat of the same boot's registration (a lost answer) is fine.
  assert.equal((await r.agent('/agent/v1/register', boot1.token, MACHINE, { bootId: boot1.bootId, inventory: { cpus: 8 } })).status, 200);
  // A second power-on's boot whose agent registers while the first one's still calls in (no power cycle really
  // happened): refused with 409, and the Hardware keeps the live agent's boot and inventory.
  await r.workflow('wf-1', discover, powered(1));
  const boot2 = await r.ipxe(MACHINE);
  r.hub.touch('da11-r01-s01', boot1.bootId!);
  const reg = await r.agent('/agent/v1/register', boot2.token, MACHINE, { bootId: boot2.bootId, inventory: { cpus: 1 } });
  assert.equal(reg.status, 409, JSON.stringify(reg.body));
  assert.match(reg.body.errors[0], new RegExp(`the agent of boot ${boot1.bootId} is alive`));
  const hw = await r.registry.get(r.registry.kind('metalplane.dev', 'Hardware'), undefined, 'da11-r01-s01');
  assert.deepEqual((hw!.status as { agent: { bootId: string }; inventory: { cpus: number } }).agent.bootId, boot1.bootId);
  assert.equal((hw!.status as { inventory: { cpus: number } }).inventory.cpus, 8);
});

test('the iPXE script of an in-use machine names no tenant or device', async (t) => {
  const r = await rig(t);
  const prov: WorkflowSpec = { hardware: 'da11-r01-s01', device: 'dev-a', purpose: 'provision', actions: provisionActions({ os: 'ubuntu_24_04', instanceId: 'u-1' }) };
  let st = startWorkflow(prov, at(T0), false);
  for (let i = 0; i < 8; i++) st = completeAction(prov, st, i, { ok: true }, at(T0));
  await r.workflow('dev-a-provision-1', prov, st, true);
  // Phone-home is current (the OS boots) and, once done, no workflow runs: both answers boot the disk.
  for (const status of [st, completeAction(prov, st, 8, { ok: true }, at(T0))]) {
    await r.workflow('dev-a-provision-1', prov, status, true);
    const res = await r.ipxe(ATTACKER);
    assert.equal(res.status, 200);
    assert.match(res.text, /^#!ipxe\n/);
    assert.match(res.text, /\nexit\n/);
    assert.doesNotMatch(res.text, /tenant-a|dev-a/);
  }
});

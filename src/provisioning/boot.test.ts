// The PXE decision and the machine tokens, as pure functions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StoredObject } from '../kinds/types.js';
import { deprovisionActions, discoverActions, provisionActions } from '../controllers/workflow/templates.js';
import { startWorkflow, completeAction, markRunning } from '../controllers/workflow/state.js';
import { decideBoot, expectedPowerOn } from './boot.js';
import { nextBoot } from './boots.js';
import { AgentTokenLifetimeSeconds, normalizePeer, TokenSigner } from './tokens.js';

const obj = (spec: unknown, status?: unknown): StoredObject =>
  ({ apiVersion: 'x', kind: 'X', metadata: { name: 'n', uid: 'u', resourceVersion: '1', creationTimestamp: 't' }, spec, status }) as StoredObject;
const T = '2026-11-25T00:00:00Z';

test('decideBoot', () => {
  const prov = { hardware: 'hw', device: 'd', purpose: 'provision' as const, actions: provisionActions({ os: 'ubuntu_24_04', instanceId: 'u' }) };
  let running = startWorkflow(prov, T, true);
  const wfAt = (st: typeof running) => obj(prov, st);
  const inUse = obj({}, { state: 'in-use', claim: { namespace: 'p', name: 'd', uid: 'u' } });
  const ubuntu = obj({ operatingSystem: 'ubuntu_24_04' });
  const ipxe = obj({ operatingSystem: 'custom_ipxe', ipxeScriptUrl: 'http://boot.example/x.ipxe', alwaysPxe: true });
  // Walk to the phone-home step: no agent actions remain.
  for (let i = 2; i < 8; i++) running = completeAction(prov, running, i, { ok: true }, T);
  const rows: Array<[string, ReturnType<typeof decideBoot>['boot'], StoredObject, StoredObject | undefined, StoredObject | undefined]> = [
    ['a new machine boots the agent', 'agent', obj({}, {}), undefined, undefined],
    ['an available machine boots the agent (warm pool)', 'agent', obj({}, { state: 'available' }), undefined, undefined],
    ['an in-use machine with no workflow boots its disk', 'disk', inUse, undefined, ubuntu],
    ['a workflow with agent actions left boots the agent', 'agent', inUse, wfAt(startWorkflow(prov, T, false)), ubuntu],
    ['after the reboot step the installed OS boots', 'disk', inUse, wfAt(running), ubuntu],
    ['custom_ipxe with alwaysPxe chains the user script', 'chain', inUse, undefined, ipxe],
    ['deprovisioning a custom_ipxe device boots the agent', 'agent', inUse, obj({ hardware: 'hw', purpose: 'deprovision', actions: deprovisionActions() }, startWorkflow({ hardware: 'hw', purpose: 'deprovision', actions: deprovisionActions() }, T, false)), ipxe],
  ];
  for (const [name, want, hw, wf, dev] of rows) assert.equal(decideBoot(hw, wf, dev).boot, want, name);
});

test('tokens: a signed token verifies to its claims; a changed one or another key does not', () => {
  const a = TokenSigner.forTest();
  const b = TokenSigner.forTest();
  const t = a.sign({ kind: 'agent', hardware: 'da11-r01-s01', bootId: 'abc', iat: 1, exp: 2 });
  assert.deepEqual(a.verify(t), { kind: 'agent', hardware: 'da11-r01-s01', bootId: 'abc', iat: 1, exp: 2 });
  assert.equal(b.verify(t), undefined);
  const [body, sig] = t.split('.');
  const forged = Buffer.from(JSON.stringify({ kind: 'agent', hardware: 'other', bootId: 'abc', iat: 1, exp: 2 })).toString('base64url');
  assert.equal(a.verify(`${forged}.${sig}`), undefined);
  assert.equal(a.verify(`${body}.`), undefined);
  assert.equal(a.verify('garbage'), undefined);
});

test('expectedPowerOn: a boot is expected only while a power-on into PXE that metalplane made awaits its agent', () => {
  const disc = { hardware: 'hw', purpose: 'discover' as const, actions: discoverActions() };
  const prov = { hardware: 'hw', device: 'd', purpose: 'provision' as const, actions: provisionActions({ os: 'ubuntu_24_04', instanceId: 'u' }) };
  const wf = (spec: typeof disc, st: ReturnType<typeof startWorkflow>) => ({ ...obj(spec, st), metadata: { ...obj(spec).metadata, uid: 'wf-uid' } }) as StoredObject;
  const pending = startWorkflow(disc, T, false);
  const running = markRunning(pending, 0, T);
  const powered = completeAction(disc, running, 0, { ok: true }, T);
  const registered = completeAction(disc, powered, 1, { ok: true }, T);
  const warm = startWorkflow(prov, T, true);
  const rows: Array<[string, StoredObject | undefined, string | undefined]> = [
    ['no workflow', undefined, undefined],
    ['power-on pending (not sent)', wf(disc, pending), undefined],
    ['power-on running (the BMC call is under way)', wf(disc, running), 'wf-uid/0/0/1'],
    ['powered, agent not registered yet: the same power-on', wf(disc, powered), 'wf-uid/0/0/1'],
    ['the agent registered', wf(disc, registered), undefined],
    ['a restarted workflow is a new power-on', wf(disc, { ...powered, restarts: 1 }), 'wf-uid/1/0/1'],
    ['warm pool: power-on skipped, the agent runs', wf(prov as unknown as typeof disc, warm), undefined],
  ];
  for (const [name, w, want] of rows) assert.equal(expectedPowerOn(w), want, name);
});

test('nextBoot: one boot per power-on, the same one for its address, revoked when another address asks', () => {
  const want = { hardwareUid: 'h1', powerOn: 'p1', workflow: { namespace: 'n', name: 'w' }, peer: '10.0.0.5', now: 100 };
  const first = nextBoot(undefined, want, () => 'b1');
  assert.equal(first.kind, 'new');
  const rec = first.record;
  assert.deepEqual(rec, { bootId: 'b1', hardwareUid: 'h1', powerOn: 'p1', workflow: { namespace: 'n', name: 'w' }, peer: '10.0.0.5', issuedAt: 100 });
  const rows: Array<[string, Parameters<typeof nextBoot>[0], Partial<typeof want>, string, string]> = [
    ['the same power-on from the same address', rec, { now: 200 }, 'again', 'b1'],
    ['the same power-on from another address', rec, { peer: '10.0.0.66' }, 'contested', 'b1'],
    ['a revoked boot stays revoked, even for its address', { ...rec, contested: { peer: '10.0.0.66', at: 150 } }, {}, 'contested', 'b1'],
    ['a new power-on', rec, { powerOn: 'p2' }, 'new', 'b2'],
    ['the machine enrolled again', rec, { hardwareUid: 'h2' }, 'new', 'b2'],
  ];
  for (const [name, existing, change, kind, bootId] of rows) {
    const out = nextBoot(existing, { ...want, ...change }, () => 'b2');
    assert.equal(out.kind, kind, name);
    assert.equal(out.record.bootId, bootId, name);
  }
  const contested = nextBoot(rec, { ...want, peer: '10.0.0.66' });
  assert.ok(contested.kind === 'contested' && contested.first && contested.record.contested?.peer === '10.0.0.66');
});

test('tokens: the agent token of a boot is the same for the same issue time, and expires a lifetime later', () => {
  const s = TokenSigner.forTest();
  assert.equal(s.agentToken('hw', 'b1', 100), s.agentToken('hw', 'b1', 100));
  assert.notEqual(s.agentToken('hw', 'b1', 100), s.agentToken('hw', 'b1', 101));
  assert.deepEqual(s.verify(s.agentToken('hw', 'b1', 100)), { kind: 'agent', hardware: 'hw', bootId: 'b1', iat: 100, exp: 100 + AgentTokenLifetimeSeconds });
  assert.equal(normalizePeer('::ffff:10.0.0.5'), '10.0.0.5');
  assert.equal(normalizePeer('::1'), '::1');
});

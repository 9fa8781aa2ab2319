// The PXE decision and the machine tokens, as pure functions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StoredObject } from '../kinds/types.js';
import { deprovisionActions, provisionActions } from '../controllers/workflow/templates.js';
import { startWorkflow, completeAction } from '../controllers/workflow/state.js';
import { decideBoot } from './boot.js';
import { TokenSigner } from './tokens.js';

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

// The Device lifecycle table: which events move which states where (and which are refused), and the
// conditions each state implies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceStates, type DeviceState, type DeviceStatus } from '../../kinds/device.js';
import { DeviceTransitions, deviceConditions, mustTransition, stateOf, transition, type DeviceEvent } from './lifecycle.js';

const transitions: Array<[string, DeviceState, DeviceEvent, DeviceState | undefined]> = [
  ['a placed device provisions', 'queued', 'Scheduled', 'provisioning'],
  ['a device moved during a reinstall keeps reinstalling', 'reinstalling', 'Scheduled', 'reinstalling'],
  ['an active device is not scheduled again', 'active', 'Scheduled', undefined],
  ['no machine: it stays queued', 'queued', 'Unschedulable', 'queued'],
  ['provisioning done', 'provisioning', 'Provisioned', 'active'],
  ['reinstall done', 'reinstalling', 'Provisioned', 'active'],
  ['an active device is not provisioned twice', 'active', 'Provisioned', undefined],
  ['a powered-off device stays off when its old workflow is seen succeeded', 'inactive', 'Provisioned', undefined],
  ['provisioning fails', 'provisioning', 'ProvisionFailed', 'failed'],
  ['a failure with remediation queues the device again', 'provisioning', 'Rescheduled', 'queued'],
  ['a failed device is not rescheduled', 'failed', 'Rescheduled', undefined],
  ['a workflow deleted by hand starts provisioning again', 'active', 'ProvisionRestarted', 'provisioning'],
  ['a failed device is not provisioned again by itself', 'failed', 'ProvisionRestarted', undefined],
  ['reinstall of an active device', 'active', 'ReinstallRequested', 'reinstalling'],
  ['reinstall of a failed device (the way out of failed)', 'failed', 'ReinstallRequested', 'reinstalling'],
  ['no reinstall while provisioning', 'provisioning', 'ReinstallRequested', undefined],
  ['rescue leaves the state as it is', 'active', 'RescueRequested', 'active'],
  ['no rescue of a failed device', 'failed', 'RescueRequested', undefined],
  ['reboot leaves the state as it is', 'inactive', 'RebootRequested', 'inactive'],
  ['power off', 'active', 'PowerOffRequested', 'powering_off'],
  ['power on', 'inactive', 'PowerOnRequested', 'powering_on'],
  ['no power action while provisioning', 'provisioning', 'PowerOffRequested', undefined],
  ['no power action while already powering', 'powering_off', 'PowerOnRequested', undefined],
  ['powered off', 'powering_off', 'PowerSettled', 'inactive'],
  ['powered on', 'powering_on', 'PowerSettled', 'active'],
  ['power off failed: still active', 'powering_off', 'PowerFailed', 'active'],
  ['power on failed: still off', 'powering_on', 'PowerFailed', 'inactive'],
  ['deletion wipes an active device', 'active', 'DeprovisionStarted', 'deprovisioning'],
  ['deletion wipes a failed device', 'failed', 'DeprovisionStarted', 'deprovisioning'],
  ['a wipe started again stays deprovisioning', 'deprovisioning', 'DeprovisionStarted', 'deprovisioning'],
  ['nothing but the wipe happens to a device being deleted', 'deprovisioning', 'PowerOnRequested', undefined],
];

for (const [name, from, event, to] of transitions) {
  test(`lifecycle: ${name} (${from} × ${event} → ${to ?? 'refused'})`, () => {
    assert.equal(transition(from, event), to);
  });
}

test('lifecycle: every row names only real states, and deletion can start from every state', () => {
  for (const [event, row] of Object.entries(DeviceTransitions)) {
    for (const [from, to] of Object.entries(row)) {
      assert.ok((DeviceStates as readonly string[]).includes(from), `${event}: ${from} is not a state`);
      assert.ok(to === 'same' || (DeviceStates as readonly string[]).includes(to), `${event}: ${to} is not a state`);
    }
  }
  for (const s of DeviceStates) assert.equal(transition(s, 'DeprovisionStarted'), 'deprovisioning', s);
});

test('lifecycle: a new device is queued; a refused transition the controller relies on throws', () => {
  assert.equal(stateOf(undefined), 'queued');
  assert.equal(stateOf({}), 'queued');
  assert.throws(() => mustTransition('active', 'Scheduled'), /Scheduled cannot happen in state active/);
});

const ctx = { operatingSystem: 'ubuntu_24_04', generation: 3 };
const placed: DeviceStatus = { hardware: 'hw-1', facility: 'da11' };
/** `Type=Status/Reason: message` per condition, in order. */
const show = (st: DeviceStatus, c: Parameters<typeof deviceConditions>[1] = ctx) =>
  deviceConditions(st, c).map((x) => `${x.type}=${x.status}/${x.reason}: ${x.message}`);

const conditions: Array<[string, DeviceStatus, Parameters<typeof deviceConditions>[1], string[]]> = [
  ['a new device waits for a machine', { state: 'queued' }, ctx, ['Ready=False/NotScheduled: the device is waiting for a machine']],
  [
    'a device that cannot be placed says why it is not scheduled',
    { state: 'queued' },
    { ...ctx, unscheduled: { reason: 'NoCapacity', message: 'no available machine' } },
    ['Scheduled=False/NoCapacity: no available machine', 'Ready=False/NotScheduled: the device is waiting for a machine'],
  ],
  [
    'a rescheduled device waits for another machine',
    { state: 'queued', rescheduled: 1 },
    { ...ctx, unscheduled: { reason: 'Rescheduling', message: 'DiskFailure on hardware hw-1: …' } },
    ['Scheduled=False/Rescheduling: DiskFailure on hardware hw-1: …', 'Ready=False/NotScheduled: the device is waiting for another machine'],
  ],
  [
    'provisioning',
    { ...placed, state: 'provisioning' },
    ctx,
    ['Scheduled=True/Scheduled: bound to hardware hw-1 in da11', 'Provisioned=False/Provisioning: installing ubuntu_24_04 on hw-1', 'Ready=False/Provisioning: the machine is being provisioned'],
  ],
  [
    'active',
    { ...placed, state: 'active' },
    ctx,
    ['Scheduled=True/Scheduled: bound to hardware hw-1 in da11', 'Provisioned=True/Provisioned: ubuntu_24_04 installed on hw-1', 'Ready=True/Active: the device is active'],
  ],
  [
    'powered off',
    { ...placed, state: 'inactive' },
    ctx,
    ['Scheduled=True/Scheduled: bound to hardware hw-1 in da11', 'Provisioned=True/Provisioned: ubuntu_24_04 installed on hw-1', 'Ready=False/PoweredOff: the device is powered off'],
  ],
  [
    'failed: the failure and its machine',
    { ...placed, state: 'failed', failure: { reason: 'DiskFailure', message: 'wipe-disks: I/O error', time: 'T', hardware: 'hw-1' } },
    ctx,
    ['Scheduled=True/Scheduled: bound to hardware hw-1 in da11', 'Provisioned=False/DiskFailure: wipe-disks: I/O error on hardware hw-1', 'Ready=False/DiskFailure: wipe-disks: I/O error on hardware hw-1'],
  ],
  [
    'being deleted',
    { ...placed, state: 'deprovisioning' },
    ctx,
    ['Scheduled=True/Scheduled: bound to hardware hw-1 in da11', 'Ready=False/Deprovisioning: the device is being deleted: wiping the machine'],
  ],
];

for (const [name, st, c, want] of conditions) {
  test(`conditions: ${name}`, () => {
    assert.deepEqual(show(st, c), want);
  });
}

test('conditions: every state has its Ready, and every condition carries the generation', () => {
  for (const state of DeviceStates) {
    const cs = deviceConditions({ ...placed, state }, ctx);
    assert.ok(cs.some((c) => c.type === 'Ready'), state);
    assert.ok(cs.every((c) => c.observedGeneration === 3), state);
  }
});

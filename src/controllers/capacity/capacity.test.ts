import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { FakeClock } from '../../lib/clock.js';
import { hardwareKind, type HardwareStatus } from '../../kinds/hardware.js';
import { planKind, type PlanStatus } from '../../kinds/plan.js';
import { toTable } from '../../apiserver/table.js';
import type { KubeObject } from '../../kinds/types.js';
import { InformerFactory } from '../../runtime/informer.js';
import { eventually, openRegistryHarness } from '../../testing/registry-harness.js';
import { capacityAt, capacityLevel, planCapacity, type HardwareLike } from './capacity.js';
import { createCapacityController } from './capacity-controller.js';
import { kindsFrom } from '../provisioning-context.js';
import { silentLogger } from '../../runtime/logger.js';

const hw = (metro: string, facility: string, plan: string, status?: HardwareLike['status'], maintenance?: boolean): HardwareLike => ({
  spec: { metro, facility, plan, ...(maintenance ? { maintenance } : {}) },
  status,
});
const free = { state: 'available' as const };
const claimed = { state: 'in-use' as const, claim: { namespace: 'p', name: 'd', uid: 'u' } };

test('capacityLevel: unavailable with none free, limited with few, normal otherwise', () => {
  const cases: Array<[available: number, total: number, want: string]> = [
    [0, 0, 'unavailable'],
    [0, 10, 'unavailable'],
    [1, 1, 'limited'],
    [2, 2, 'limited'],
    [3, 3, 'normal'],
    [3, 40, 'limited'], // under 20 % of the machines there
    [8, 40, 'normal'],
  ];
  for (const [a, t, want] of cases) assert.equal(capacityLevel(a, t), want, `${a} of ${t}`);
});

test('planCapacity counts per metro and facility from the Hardware of the plan only', () => {
  const machines = [
    hw('da', 'da11', 'c3', free),
    hw('da', 'da11', 'c3', free),
    hw('da', 'da11', 'c3', claimed),
    hw('da', 'da6', 'c3', { state: 'failed' }),
    hw('da', 'da6', 'c3', free, true), // in maintenance: not free
    hw('ny', 'ny5', 'c3', { state: 'discovering' }),
    hw('sv', 'sv15', 'm3', free), // another plan
    hw('am', 'am6', 'c3', { state: 'available', claim: { namespace: 'p', name: 'x', uid: 'v' } }), // claimed, not yet marked
  ];
  const got = planCapacity('c3', machines);
  assert.deepEqual(got.metros, ['am', 'da', 'ny']);
  const da = got.capacity.find((c) => c.metro === 'da')!;
  assert.deepEqual({ ...da, facilities: undefined }, { metro: 'da', total: 5, available: 2, inUse: 1, failed: 1, level: 'limited', facilities: undefined });
  assert.deepEqual(da.facilities.map((f) => [f.facility, f.total, f.available, f.level]), [
    ['da11', 3, 2, 'limited'],
    ['da6', 2, 0, 'unavailable'],
  ]);
  const status: PlanStatus = got;
  assert.equal(capacityAt(status, { metro: 'ny' }).level, 'unavailable');
  assert.equal(capacityAt(status, { metro: 'am' }).inUse, 1);
  assert.equal(capacityAt(status, { facility: 'da11' }).available, 2);
  assert.deepEqual(capacityAt(status, { metro: 'sv' }), { total: 0, available: 0, inUse: 0, failed: 0, level: 'unavailable' });
  assert.deepEqual(planCapacity('none', machines), { metros: [], capacity: [] });
});

function hardwareObject(name: string, metro: string, facility: string, plan: string): KubeObject {
  return {
    apiVersion: 'metalplane.dev/v1alpha1',
    kind: 'Hardware',
    metadata: { name },
    spec: {
      metro,
      facility,
      plan,
      bmc: { driver: 'redfish', address: 'http://127.0.0.1:1', credentialsSecret: { name: 'bmc' } },
      nics: [{ mac: `02:00:00:00:00:${name.slice(-2)}` }],
    },
  };
}

async function setup(t: TestContext) {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const { client } = await openRegistryHarness({ clock, test: t });
  const informers = new InformerFactory({ client, clock });
  const controller = createCapacityController({ client, kinds: kindsFrom(client), informers, clock, logger: silentLogger });
  t.after(async () => {
    await controller.stop();
    informers.stop();
  });
  informers.start();
  await controller.start();
  const status = async (plan: string) => ((await client.get(planKind, undefined, plan))?.status ?? {}) as PlanStatus;
  return { client, status };
}

test('the controller writes where machines of a plan are and follows Hardware changes; the METROS column shows it', async (t) => {
  const { client, status } = await setup(t);
  await client.create(planKind, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Plan', metadata: { name: 'c3.small.x86' }, spec: { specs: {}, availableIn: ['da', 'ny', 'sv', 'fr'] } });
  await eventually(async () => (await status('c3.small.x86')).metros !== undefined, { message: 'status written for a plan without machines' });
  assert.deepEqual((await status('c3.small.x86')).metros, [], 'offered in four metros, but no machine exists anywhere');

  await client.create(hardwareKind, hardwareObject('hw-01', 'da', 'da11', 'c3.small.x86'));
  const h2 = await client.create(hardwareKind, hardwareObject('hw-02', 'ny', 'ny5', 'c3.small.x86'));
  await eventually(async () => (await status('c3.small.x86')).metros?.length === 2);
  assert.equal(capacityAt(await status('c3.small.x86'), { metro: 'ny' }).level, 'unavailable', 'discovering is not free');

  await client.updateStatus(hardwareKind, { ...h2, status: { state: 'available' } satisfies HardwareStatus });
  await eventually(async () => capacityAt(await status('c3.small.x86'), { metro: 'ny' }).available === 1);
  assert.equal(capacityAt(await status('c3.small.x86'), { facility: 'ny5' }).level, 'limited');

  const plan = (await client.get(planKind, undefined, 'c3.small.x86'))!;
  const row = toTable(planKind, [plan], { now: Date.UTC(2026, 0, 1), includeObject: 'None' }).rows[0]!;
  const metrosColumn = planKind.printerColumns!.filter((c) => !c.priority).findIndex((c) => c.name === 'Metros');
  assert.equal(row.cells[metrosColumn + 1], 'da,ny', 'the machines, not the catalog offer (da, ny, sv, fr)');

  await client.delete(hardwareKind, undefined, 'hw-01');
  await eventually(async () => (await status('c3.small.x86')).metros?.join() === 'ny');
});

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { FakeClock } from '../lib/clock.js';
import { ApiError } from '../lib/errors.js';
import { EventRecorder } from './events.js';
import { memoryLogger } from './logger.js';
import { deviceKind as Device } from '../kinds/device.js';
import { hardwareKind as Hardware } from '../kinds/hardware.js';
import { eventKind as Event, namespaceKind as Namespace } from '../kinds/index.js';
import { openRegistryHarness } from '../testing/registry-harness.js';

async function setup(t: TestContext) {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const { client } = await openRegistryHarness({ clock, test: t });
  for (const name of ['ns', 'default']) await client.create(Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  const device = await client.create(Device, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Device', metadata: { name: 'd1', namespace: 'ns' }, spec: { metro: 'da', plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04' } });
  const hw = await client.create(Hardware, {
    apiVersion: 'metalplane.dev/v1alpha1',
    kind: 'Hardware',
    metadata: { name: 'hw1' },
    spec: {
      metro: 'da',
      facility: 'da11',
      plan: 'c3.small.x86',
      bmc: { driver: 'redfish', address: 'http://127.0.0.1:1', credentialsSecret: { name: 'hw1-bmc' } },
      nics: [{ mac: 'b4:96:91:0a:1b:2c' }],
    },
  });
  const log = memoryLogger();
  const rec = new EventRecorder({ client, component: 'metalplane-test', clock, logger: log, burst: 5 });
  return { clock, client, device, hw, rec, log };
}

test('an event carries the involved object and the source', async (t) => {
  const { client, device, rec } = await setup(t);
  await rec.record(device, 'Normal', 'Provisioning', 'workflow started');
  const [e] = await client.all(Event, 'ns');
  assert.ok(e);
  assert.match(e.metadata.name, /^d1\.[0-9a-f]+$/);
  assert.deepEqual(e.involvedObject, {
    apiVersion: 'metalplane.dev/v1alpha1',
    kind: 'Device',
    name: 'd1',
    namespace: 'ns',
    uid: device.metadata.uid,
    resourceVersion: device.metadata.resourceVersion,
  });
  assert.equal(e.type, 'Normal');
  assert.equal(e.reason, 'Provisioning');
  assert.equal(e.message, 'workflow started');
  assert.equal(e.count, 1);
  assert.equal(e.firstTimestamp, '2026-01-01T00:00:00Z');
  assert.equal(e.lastTimestamp, '2026-01-01T00:00:00Z');
  assert.deepEqual(e.source, { component: 'metalplane-test' });
  assert.equal(e.reportingComponent, 'metalplane-test');
});

test('repeats are aggregated into one Event with a count; a different message is a new Event', async (t) => {
  const { clock, client, device, rec } = await setup(t);
  await rec.record(device, 'Warning', 'BMCUnreachable', 'no answer from 10.0.0.5');
  clock.advance(30_000);
  await rec.record(device, 'Warning', 'BMCUnreachable', 'no answer from 10.0.0.5');
  clock.advance(30_000);
  void rec.record(device, 'Warning', 'BMCUnreachable', 'no answer from 10.0.0.5');
  void rec.record(device, 'Warning', 'BMCUnreachable', 'no answer from 10.0.0.6');
  await rec.flush();
  const events = (await client.all(Event, 'ns')).sort((a, b) => String(a.message).localeCompare(String(b.message)));
  assert.equal(events.length, 2);
  assert.equal(events[0]!.count, 3);
  assert.equal(events[0]!.firstTimestamp, '2026-01-01T00:00:00Z');
  assert.equal(events[0]!.lastTimestamp, '2026-01-01T00:01:00Z');
  assert.equal(events[1]!.count, 1);
});

test('events of cluster-scoped objects go to the default namespace', async (t) => {
  const { client, hw, rec } = await setup(t);
  await rec.record(hw, 'Normal', 'Registered', 'agent registered');
  const [e] = await client.all(Event, 'default');
  assert.ok(e);
  assert.equal((e.involvedObject as { namespace?: string }).namespace, undefined);
  assert.equal((e.involvedObject as { name: string }).name, 'hw1');
});

test('recording never throws: failures are logged; a flood per object is rate limited', async (t) => {
  const { client, device, rec, log } = await setup(t);
  client.failNext('create', new ApiError(503, 'ServiceUnavailable', 'store down'));
  await rec.record(device, 'Normal', 'A', 'x');
  assert.equal((await client.all(Event, 'ns')).length, 0);
  assert.ok(log.entries.some((e) => e.level === 'warn' && /could not record/.test(e.msg ?? '')));
  for (let i = 0; i < 10; i++) void rec.record(device, 'Normal', 'Loop', `message ${i}`);
  await rec.flush();
  // burst 5, one token already spent on the failed attempt
  assert.equal((await client.all(Event, 'ns')).length, 4);
});

// The hourly-usage ledger end to end: a device on the simulated datacenter opens a UsageRecord when it gets its
// machine, the record survives kill -9, its deletion closes the record at the moment deletion was asked for, and
// the Metal API bills it by the started hour at its plan's price — also after the device is gone. The project's
// events come from the Kubernetes Events about its objects.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, startTestServer, waitFor, type TestServer } from './helpers/server.js';
import { metal } from './helpers/metal.js';
import { billedHours } from '../src/kinds/usage-record.js';

const DEVICES = '/apis/metalplane.dev/v1alpha1/namespaces/default/devices';
const RECORDS = '/apis/metalplane.dev/v1alpha1/usagerecords';

interface Obj {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
  spec: Record<string, any>;
  status?: Record<string, any>;
}

async function get(s: TestServer, path: string): Promise<Obj | undefined> {
  const r = await api(s, 'GET', path);
  return r.status === 200 ? (r.body as Obj) : undefined;
}

test('billing counts every started hour, at least one', () => {
  const at = (hhmm: string) => Date.parse(`2026-12-01T${hhmm}:00Z`);
  const rows: [string, string, string, number][] = [
    ['10:20 → 12:05 (1 h 45 min)', '10:20', '12:05', 2],
    ['exactly one hour', '10:00', '11:00', 1],
    ['a minute', '10:00', '10:01', 1],
    ['no time at all', '10:00', '10:00', 1],
    ['three hours and a minute', '09:00', '12:01', 4],
  ];
  for (const [what, a, b, hours] of rows) assert.equal(billedHours(at(a), at(b)), hours, what);
  assert.equal(billedHours(at('10:00'), at('11:00') + 1000), 2, 'one hour and a second is two started hours');
});

test('usage: the record opens on scheduling, survives kill -9, closes at deletion; usages and events through the Metal API', async () => {
  const args = ['--sim', '--sim-machines', '4', '--sim-speed', 'max'];
  const first = await startTestServer({ args });
  let second: TestServer | undefined;
  try {
    const created = await api(first, 'POST', DEVICES, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Device', metadata: { name: 'billed' }, spec: { metro: 'da', plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04' } });
    assert.equal(created.status, 201, created.text);
    const uid = (created.body as Obj).metadata.uid;
    const record = await waitFor('the usage record', () => get(first, `${RECORDS}/${uid}`), 60_000);
    assert.equal(record.spec.device, 'billed');
    assert.equal(record.spec.plan, 'c3.small.x86');
    assert.ok(record.spec.pricePerHour > 0);
    assert.equal(record.spec.end, undefined, 'open while the device runs');
    await waitFor('device active', async () => ((await get(first, `${DEVICES}/billed`))?.status?.state === 'active' ? true : undefined), 60_000);

    // kill -9, then delete on the restarted server: the record is closed with the deletion's time.
    await first.kill();
    second = await startTestServer({ dataDir: first.dataDir, args });
    const s = second;
    assert.ok(await get(s, `${RECORDS}/${uid}`), 'the record survived kill -9');
    const del = await api(s, 'DELETE', `${DEVICES}/billed`);
    assert.ok(del.status === 200 || del.status === 202, del.text);
    const deleting = await get(s, `${DEVICES}/billed`);
    await waitFor('device gone', async () => ((await get(s, `${DEVICES}/billed`)) === undefined ? true : undefined), 90_000);
    const closed = (await get(s, `${RECORDS}/${uid}`))!;
    assert.ok(closed, 'the record outlives the device');
    assert.equal(closed.spec.end, deleting?.metadata.deletionTimestamp ?? closed.spec.end, 'closed at the moment deletion was asked for');
    assert.ok(Date.parse(closed.spec.end) >= Date.parse(closed.spec.start));

    // The Metal API bills it: one started hour at the plan's price, for the project and for the device by id.
    const projects = await metal(s, 'GET', '/projects?name=default');
    const project = projects.body.projects[0];
    const usages = await metal(s, 'GET', `/projects/${project.id}/usages`);
    assert.equal(usages.status, 200);
    const line = usages.body.usages.find((u: { name: string }) => u.name === 'billed');
    assert.ok(line, JSON.stringify(usages.body));
    assert.equal(line.quantity, '1');
    assert.equal(line.unit, 'hour');
    assert.equal(line.plan, 'c3.small.x86');
    assert.equal(Number(line.total), Number(line.price));
    const byDevice = await metal(s, 'GET', `/devices/${uid}/usages`);
    assert.equal(byDevice.status, 200);
    assert.equal(byDevice.body.usages[0].quantity, '1');
    const future = await metal(s, 'GET', `/projects/${project.id}/usages?created[after]=2099-01-01T00:00:00Z`);
    assert.deepEqual(future.body.usages, []);
    assert.equal((await metal(s, 'GET', `/projects/${project.id}/usages?created[after]=yesterday`)).status, 422);

    // Events: the device's Kubernetes Events, newest first, related to the device.
    const events = await metal(s, 'GET', `/projects/${project.id}/events?per_page=100`);
    assert.equal(events.status, 200);
    const about = events.body.events.filter((e: { relationships: { href: string }[] }) => e.relationships.some((r) => r.href === `/metal/v1/devices/${uid}`));
    assert.ok(about.length > 0, 'events about the device');
    const times = events.body.events.map((e: { created_at: string }) => e.created_at);
    assert.deepEqual(times, [...times].sort().reverse(), 'newest first');
    const one = await metal(s, 'GET', `/events/${about[0].id}`);
    assert.equal(one.body.id, about[0].id);

    // A project key of another project sees neither.
    const other = (await metal(s, 'POST', '/projects', { name: 'other' })).body.id;
    const key = (await metal(s, 'POST', `/projects/${other}/api-keys`, {})).body.token;
    assert.equal((await metal(s, 'GET', `/projects/${project.id}/usages`, undefined, { token: key })).status, 404);
    assert.equal((await metal(s, 'GET', `/devices/${uid}/usages`, undefined, { token: key })).status, 404);
    assert.equal((await metal(s, 'GET', `/events/${about[0].id}`, undefined, { token: key })).status, 404);
    assert.deepEqual((await metal(s, 'GET', '/events', undefined, { token: key })).body.events.filter((e: { id: string }) => e.id === about[0].id), []);
  } finally {
    await second?.stop();
    await first.stop();
    first.cleanup();
  }
});

// The cloudconfig controller on the real Registry: inputs that appear, become Ready and change; cycles; renders
// that go into an owned Secret; renders that fail. Nothing but the controller runs (no device controller): the
// test writes the Device statuses a device controller would.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import YAML from 'yaml';
import { FakeClock } from '../../lib/clock.js';
import { cloudConfigKind, type CloudConfigStatus } from '../../kinds/cloud-config.js';
import { configMapKind, eventKind, namespaceKind, secretKind } from '../../kinds/index.js';
import { deviceKind } from '../../kinds/device.js';
import type { KubeObject } from '../../kinds/types.js';
import { getCondition } from '../../runtime/conditions.js';
import { EventRecorder } from '../../runtime/events.js';
import { InformerFactory } from '../../runtime/informer.js';
import { silentLogger } from '../../runtime/logger.js';
import { eventually, openRegistryHarness } from '../../testing/registry-harness.js';
import { createCloudConfigController, userDataSecretName, UserDataSecretKey } from './cloudconfig-controller.js';
import { documentOf } from './render.js';

const ns = 'p';

async function setup(t: TestContext) {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const { client } = await openRegistryHarness({ clock, test: t });
  await client.create(namespaceKind, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  const informers = new InformerFactory({ client, clock });
  const recorder = new EventRecorder({ client, component: 'metalplane-controller-manager', clock });
  const controller = createCloudConfigController({ client, informers, clock, logger: silentLogger, recorder });
  informers.start();
  await controller.start();
  t.after(async () => {
    await controller.stop();
    informers.stop();
  });

  const status = async (name: string) => ((await client.get(cloudConfigKind, ns, name))?.status ?? {}) as CloudConfigStatus;
  const ready = async (name: string) => getCondition((await status(name)).conditions, 'Ready');
  const waitReady = (name: string, want: { status: string; reason: string; message?: string | RegExp }) =>
    eventually(
      async () => {
        const c = await ready(name);
        if (!c || c.status !== want.status || c.reason !== want.reason) return false;
        return want.message === undefined || (typeof want.message === 'string' ? c.message === want.message : want.message.test(c.message));
      },
      { clock, message: `${name}: Ready ${JSON.stringify(want)}` },
    );
  const applyCC = async (name: string, spec: Record<string, unknown>) => {
    const cur = await client.get(cloudConfigKind, ns, name);
    const obj: KubeObject = { apiVersion: 'metalplane.dev/v1alpha1', kind: 'CloudConfig', metadata: { name, namespace: ns }, spec };
    return cur ? client.update(cloudConfigKind, { ...cur, spec }) : client.create(cloudConfigKind, obj);
  };
  const device = (name: string) =>
    client.create(deviceKind, {
      apiVersion: 'metalplane.dev/v1alpha1',
      kind: 'Device',
      metadata: { name, namespace: ns },
      spec: { metro: 'da', plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04' },
    });
  const setDevice = async (name: string, isReady: boolean, ip?: string) => {
    const d = (await client.get(deviceKind, ns, name))!;
    await client.updateStatus(deviceKind, {
      ...d,
      status: {
        state: isReady ? 'active' : 'provisioning',
        ...(ip ? { ipAddresses: [{ address: ip, network: ip, cidr: 31, gateway: ip, family: 4, public: true }] } : {}),
        conditions: [{ type: 'Ready', status: isReady ? 'True' : 'False', reason: isReady ? 'Active' : 'Provisioning', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }],
      },
    });
  };
  const events = async (reason: string) =>
    (await client.all(eventKind, ns)).filter((e) => e.reason === reason).map((e) => `${(e.involvedObject as { name: string }).name}: ${String(e.message)}`);
  return { clock, client, status, ready, waitReady, applyCC, device, setDevice, events, recorder };
}

const appSpec = {
  values: [{ name: 'DB_IP', valueFrom: { fieldRef: { kind: 'Device', name: 'db-1', fieldPath: 'status.ipAddresses[0].address' } } }],
  parts: [
    { contentType: 'text/cloud-config', content: '#cloud-config\nwrite_files:\n- path: /etc/app/db.env\n  content: "DB_IP=$(DB_IP)\\n"\n' },
    { contentType: 'text/x-shellscript', content: '#!/bin/sh\necho "$(DB_IP)" > /run/db-ip\n' },
  ],
};

test('a Device input: waits for the Device, then for Ready, renders, and re-renders when the IP changes', async (t) => {
  const { status, waitReady, applyCC, device, setDevice, events, recorder } = await setup(t);
  await applyCC('app', appSpec);
  await waitReady('app', { status: 'False', reason: 'WaitingForInputs', message: 'waiting for DB_IP: Device db-1 does not exist' });

  await device('db-1');
  await waitReady('app', { status: 'False', reason: 'WaitingForInputs', message: 'waiting for DB_IP: Device db-1 is not Ready' });
  await setDevice('db-1', false, '147.75.0.10');
  await waitReady('app', { status: 'False', reason: 'WaitingForInputs', message: 'waiting for DB_IP: Device db-1 is not Ready' });

  await setDevice('db-1', true, '147.75.0.10');
  await waitReady('app', { status: 'True', reason: 'Rendered', message: /^rendered 2 parts as multipart\/mixed, \d+ bytes$/ });
  const first = await status('app');
  assert.equal(first.contentType, 'multipart/mixed');
  assert.equal(first.observedGeneration, 1);
  assert.match(first.hash!, /^sha256:[0-9a-f]{64}$/);
  assert.equal(first.size, Buffer.byteLength(first.userData!));
  assert.equal(first.userData!.split('147.75.0.10').length - 1, 2, 'the IP is in both parts');
  assert.equal(getCondition(first.conditions, 'Synced')?.status, 'True');

  await setDevice('db-1', true, '147.75.0.99');
  await eventually(async () => (await status('app')).hash !== first.hash);
  const second = await status('app');
  assert.ok(second.userData!.includes('147.75.0.99') && !second.userData!.includes('147.75.0.10'));
  await recorder.flush();
  assert.equal((await events('Rendered')).length, 2, 'one Rendered event per new render');

  // The Device goes away: the CloudConfig waits again and keeps its last render.
  await setDevice('db-1', false, '147.75.0.99');
  await waitReady('app', { status: 'False', reason: 'WaitingForInputs' });
  assert.equal((await status('app')).hash, second.hash);
});

test('secret, config map and CloudConfig inputs; a render with a Secret value goes into an owned Secret', async (t) => {
  const { client, status, waitReady, applyCC, events, recorder } = await setup(t);
  await applyCC('base', { parts: [{ contentType: 'text/x-shellscript', content: '#!/bin/sh\necho base\n' }] });
  await applyCC('app', {
    encoding: 'gzip+base64',
    values: [
      { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'creds', key: 'token' } } },
      { name: 'MOTD', valueFrom: { configMapKeyRef: { name: 'settings', key: 'motd' } } },
      { name: 'BASE', valueFrom: { cloudConfigRef: { name: 'base' } } },
    ],
    parts: [
      {
        contentType: 'text/cloud-config',
        content: '#cloud-config\nwrite_files:\n- path: /etc/motd\n  content: "$(MOTD)"\n- path: /etc/token\n- path: /etc/base.sh\n',
        patches: [
          { fromValue: 'TOKEN', toFieldPath: 'write_files[1].content' },
          { fromValue: 'BASE', toFieldPath: 'write_files[2].content' },
        ],
      },
    ],
  });
  await waitReady('app', { status: 'False', reason: 'WaitingForInputs', message: 'waiting for TOKEN: Secret creds does not exist; MOTD: ConfigMap settings does not exist' });
  await client.create(secretKind, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds', namespace: ns }, data: { other: Buffer.from('x').toString('base64') } });
  await client.create(configMapKind, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: ns }, data: { motd: 'hello' } });
  await waitReady('app', { status: 'False', reason: 'WaitingForInputs', message: 'waiting for TOKEN: Secret creds has no key token' });
  const creds = (await client.get(secretKind, ns, 'creds'))!;
  await client.update(secretKind, { ...creds, data: { token: Buffer.from('s3cret: "quoted"\nline2').toString('base64') } });
  await waitReady('app', { status: 'True', reason: 'Rendered' });

  const st = await status('app');
  assert.equal(st.userData, undefined, 'a Secret value never lands in status');
  assert.deepEqual(st.secretRef, { name: userDataSecretName('app'), key: UserDataSecretKey });
  assert.equal(st.encoding, 'gzip+base64');
  const secret = (await client.get(secretKind, ns, userDataSecretName('app')))!;
  const app = (await client.get(cloudConfigKind, ns, 'app'))!;
  assert.deepEqual(secret.metadata.ownerReferences?.map((r) => [r.kind, r.name, r.uid, r.controller]), [['CloudConfig', 'app', app.metadata.uid, true]]);
  const doc = documentOf(Buffer.from((secret.data as Record<string, string>)[UserDataSecretKey]!, 'base64'), 'gzip+base64');
  assert.ok(doc.startsWith('#cloud-config\n'));
  assert.deepEqual(YAML.parse(doc), {
    write_files: [
      { path: '/etc/motd', content: 'hello' },
      { path: '/etc/token', content: 's3cret: "quoted"\nline2' },
      { path: '/etc/base.sh', content: '#!/bin/sh\necho base\n' },
    ],
  });

  // A Secret of the render's name that someone else owns is not overwritten.
  await applyCC('other', { values: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'creds', key: 'token' } } }], parts: [{ contentType: 'text/x-shellscript', content: '#!/bin/sh\necho $(TOKEN)\n' }] });
  await client.create(secretKind, { apiVersion: 'v1', kind: 'Secret', metadata: { name: userDataSecretName('other'), namespace: ns }, data: {} });
  await waitReady('other', { status: 'False', reason: 'SecretConflict', message: /^Secret other-userdata exists and is not owned by this CloudConfig/ });
  await recorder.flush();
  assert.equal((await events('SecretConflict')).length, 1);
});

test('a cycle between CloudConfigs is reported on each member; one reading the cycle waits', async (t) => {
  const { waitReady, applyCC, events, recorder } = await setup(t);
  const reads = (name: string) => ({
    values: [{ name: 'X', valueFrom: { cloudConfigRef: { name } } }],
    parts: [{ contentType: 'text/cloud-config', content: '#cloud-config\nwrite_files:\n- path: /x\n', patches: [{ fromValue: 'X', toFieldPath: 'write_files[0].content' }] }],
  });
  await applyCC('a', reads('b'));
  await applyCC('b', reads('c'));
  await applyCC('c', reads('a'));
  await applyCC('d', reads('a'));
  await waitReady('a', { status: 'False', reason: 'ReferenceCycle', message: 'CloudConfigs read each other in a cycle: a → b → c → a; remove one of the references' });
  await waitReady('b', { status: 'False', reason: 'ReferenceCycle', message: /b → c → a → b/ });
  await waitReady('c', { status: 'False', reason: 'ReferenceCycle', message: /c → a → b → c/ });
  await waitReady('d', { status: 'False', reason: 'WaitingForInputs', message: 'waiting for X: CloudConfig a is not Ready (ReferenceCycle)' });
  await recorder.flush();
  assert.deepEqual((await events('ReferenceCycle')).map((e) => e.split(':')[0]).sort(), ['a', 'b', 'c']);

  // Breaking the cycle lets every member render, in dependency order.
  await applyCC('c', { parts: [{ contentType: 'text/x-shellscript', content: '#!/bin/sh\necho c\n' }] });
  for (const n of ['c', 'b', 'a', 'd']) await waitReady(n, { status: 'True', reason: 'Rendered' });
});

test('renders that fail say why: a value that breaks the YAML, a document too large', async (t) => {
  const { status, waitReady, applyCC, events, recorder } = await setup(t);
  await applyCC('yaml', {
    values: [{ name: 'V', value: 'a: b\n  c: [' }],
    parts: [{ contentType: 'text/cloud-config', content: '#cloud-config\nbootcmd:\n- $(V)\n' }],
  });
  await waitReady('yaml', { status: 'False', reason: 'RenderFailed', message: /^parts\[0\]: with its values in, the cloud-config is not valid YAML/ });
  await applyCC('big', { values: [{ name: 'V', value: 'x'.repeat(16000) }], parts: [{ contentType: 'text/x-shellscript', content: `#!/bin/sh\n# ${'$(V)'.repeat(5)}\n` }] });
  await waitReady('big', { status: 'False', reason: 'TooLarge', message: /^the rendered user data is 80\d\d\d bytes; a datasource carries at most 65536/ });
  assert.equal((await status('big')).hash, undefined, 'nothing was rendered');
  await recorder.flush();
  assert.equal((await events('RenderFailed')).length, 1);
  assert.equal((await events('TooLarge')).length, 1);

  // The same document gzipped fits, and (over 16 KiB before gzip, under it after) stays inline.
  await applyCC('big', { encoding: 'gzip+base64', values: [{ name: 'V', value: 'x'.repeat(16000) }], parts: [{ contentType: 'text/x-shellscript', content: `#!/bin/sh\n# ${'$(V)'.repeat(5)}\n` }] });
  await waitReady('big', { status: 'True', reason: 'Rendered' });
  const st = await status('big');
  assert.equal(st.observedGeneration, 2);
  assert.ok(st.userData && st.size! < 1024);
});

test('a large render goes into an owned Secret, and back into status when it shrinks', async (t) => {
  const { client, status, waitReady, applyCC } = await setup(t);
  const spec = (n: number, times: number) => ({ values: [{ name: 'V', value: 'y'.repeat(n) }], parts: [{ contentType: 'text/x-shellscript', content: `#!/bin/sh\n# ${'$(V)'.repeat(times)}\n` }] });
  await applyCC('large', spec(5_000, 4));
  await waitReady('large', { status: 'True', reason: 'Rendered' });
  assert.equal((await status('large')).secretRef?.name, 'large-userdata');
  assert.ok(await client.get(secretKind, ns, 'large-userdata'));
  await applyCC('large', spec(10, 1));
  await eventually(async () => (await status('large')).userData === '#!/bin/sh\n# yyyyyyyyyy\n');
  assert.equal((await status('large')).secretRef, undefined);
  await eventually(async () => (await client.get(secretKind, ns, 'large-userdata')) === undefined, { message: 'the owned Secret is removed' });
});

test('devices provisioned with an older render are listed as stale, not reinstalled', async (t) => {
  const { client, status, waitReady, applyCC, events, recorder } = await setup(t);
  const spec = (msg: string) => ({ parts: [{ contentType: 'text/x-shellscript', content: `#!/bin/sh\necho ${msg}\n` }] });
  await applyCC('app', spec('one'));
  await waitReady('app', { status: 'True', reason: 'Rendered' });
  const first = (await status('app')).hash!;
  for (const name of ['app-1', 'app-2']) {
    const d = await client.create(deviceKind, {
      apiVersion: 'metalplane.dev/v1alpha1',
      kind: 'Device',
      metadata: { name, namespace: ns },
      spec: { metro: 'da', plan: 'c3.small.x86', operatingSystem: 'ubuntu_24_04', cloudConfigRef: { name: 'app' } },
    });
    // What the device controller records when the machine's provisioning starts.
    await client.updateStatus(deviceKind, { ...d, status: { state: 'active', cloudConfig: { name: 'app', hash: first } } });
  }
  assert.equal((await status('app')).staleDevices, undefined);
  await applyCC('app', spec('two'));
  await eventually(async () => (await status('app')).staleDevices?.length === 2);
  assert.deepEqual((await status('app')).staleDevices, ['app-1', 'app-2']);
  const app2 = (await client.get(deviceKind, ns, 'app-2'))!;
  assert.equal((app2.status as { state: string }).state, 'active', 'the device is left as it is');
  // A reinstall records the current render: that device is no longer stale.
  await client.updateStatus(deviceKind, { ...app2, status: { ...(app2.status as object), cloudConfig: { name: 'app', hash: (await status('app')).hash } } });
  await eventually(async () => JSON.stringify((await status('app')).staleDevices) === '["app-1"]');
  await recorder.flush();
  assert.deepEqual(await events('StaleDevices'), [`app: devices app-1, app-2 run an older render; reinstall to apply ${(await status('app')).hash!.slice(0, 19)}…`]);
});

// CloudConfig end to end, through the real `metalplane up` and the real kubectl: the composition example's
// CloudConfig waits for db-1 and renders with its address; a table of bad CloudConfigs is refused with the
// path that is wrong; a table of bad references is accepted and waits with a clear reason; the server stays up.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { api, kubectl, kubectlOk, REPO, startTestServer, waitFor, type TestServer } from './helpers/server.js';
import { kubectlSkipReason } from './helpers/kubectl.js';

const skip = kubectlSkipReason();
const CC = '/apis/metalplane.dev/v1alpha1/namespaces/default/cloudconfigs';

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface CloudConfigObj {
  status?: { conditions?: Condition[]; userData?: string; hash?: string; contentType?: string };
}

interface DeviceObj {
  status?: { hardware?: string; workflow?: string; conditions?: Condition[]; ipAddresses?: Array<{ address: string }>; cloudConfig?: { name: string; hash?: string } };
}

const readyOf = (o: CloudConfigObj) => o.status?.conditions?.find((c) => c.type === 'Ready');

function cloudConfig(name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: 'metalplane.dev/v1alpha1', kind: 'CloudConfig', metadata: { name, namespace: 'default' }, spec });
}

describe('CloudConfig through kubectl', { skip }, () => {
  let s: TestServer;
  before(async () => {
    // Speed 20, not max: db-1 takes long enough to provision that app-1 is seen waiting for it.
    s = await startTestServer({ args: ['--sim', '--sim-machines', '4', '--sim-speed', '20'] });
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
  });

  const device = async (name: string): Promise<DeviceObj> => {
    const r = await api(s, 'GET', `/apis/metalplane.dev/v1alpha1/namespaces/default/devices/${name}`);
    assert.equal(r.status, 200, r.text);
    return r.body as DeviceObj;
  };
  const get = async (name: string): Promise<CloudConfigObj> => {
    const r = await api(s, 'GET', `${CC}/${name}`);
    assert.equal(r.status, 200, r.text);
    return r.body as CloudConfigObj;
  };

  test('the composition example in one apply: app waits for db-1, app-1 waits for app, then boots with db-1\'s address in every part', async () => {
    kubectlOk(s, ['apply', '-f', join(REPO, 'examples', 'cloud-config')]);
    // app-1 gets its machine and addresses at once; its provisioning waits, and its conditions say for what.
    const waiting = await waitFor('app-1 scheduled, waiting for its CloudConfig', async () => {
      const d = await device('app-1');
      const p = d.status?.conditions?.find((c) => c.type === 'Provisioned');
      return d.status?.hardware && p?.reason === 'WaitingForCloudConfig' ? p : undefined;
    });
    assert.equal(waiting.status, 'False');
    assert.match(waiting.message, /^provisioning waits for CloudConfig app is not Ready: waiting for DB_IP: Device db-1 is not Ready$/);
    assert.equal(readyOf(await get('app'))?.reason, 'WaitingForInputs');

    // Until app-1 is Ready, whenever app-1 has a provisioning workflow, db-1 is already Ready (read after it).
    let sawWorkflow = false;
    await waitFor('app-1 Ready', async () => {
      const app1 = await device('app-1');
      const db1 = await device('db-1');
      if (app1.status?.workflow) {
        sawWorkflow = true;
        assert.equal(db1.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True', 'app-1 started provisioning before db-1 was Ready');
      }
      return app1.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' ? true : undefined;
    }, 120_000, 50);
    assert.ok(sawWorkflow);

    const db = await device('db-1');
    const ip = db.status!.ipAddresses![0]!.address;
    const app = await get('app');
    assert.equal(readyOf(app)?.status, 'True');
    assert.equal(app.status?.contentType, 'multipart/mixed');
    const app1 = await device('app-1');
    assert.deepEqual(app1.status?.cloudConfig, { name: 'app', hash: app.status!.hash }, 'the render app-1 was provisioned with');
    // What app-1's machine reads from the metadata service: both parts carry db-1's address.
    const m = (await api(s, 'GET', `/sim/v1/machines/${app1.status!.hardware}`)).body as { datasource: string };
    const userData = await fetch(`${m.datasource}user-data`).then((r) => r.text());
    assert.equal(userData, app.status!.userData);
    const boundary = /boundary="([^"]+)"/.exec(userData)![1]!;
    const parts = userData.split(`--${boundary}`).slice(1, -1);
    assert.equal(parts.length, 2);
    assert.ok(parts[0]!.includes(`DB_IP=${ip}`) && parts[0]!.includes(`echo app starting against ${ip}`) && parts[0]!.includes(`content: ${ip}`), parts[0]);
    assert.ok(parts[1]!.includes(`echo "${ip}" > /run/db-ip`), parts[1]);
    assert.match(kubectlOk(s, ['get', 'cloudconfigs']), /app\s+True\s+Rendered\s+\d+/);
    assert.match(kubectlOk(s, ['get', 'events', '--field-selector', 'involvedObject.name=app']), /Rendered/);
  });

  const shell = { contentType: 'text/x-shellscript', content: '#!/bin/sh\ntrue\n' };
  const bad: Array<{ name: string; spec: Record<string, unknown>; error: RegExp }> = [
    { name: 'wrong-type', spec: { parts: [{ contentType: 'text/cloud-config', content: '#cloud-config\nwrite_files: 5\n' }] }, error: /spec\.parts\[0\]: write_files: 5 is not of type array/ },
    { name: 'broken-yaml', spec: { parts: [{ contentType: 'text/cloud-config', content: '#cloud-config\na: [1, 2\nb: c: d\n' }] }, error: /spec\.parts\[0\]: the cloud-config is not valid YAML: / },
    { name: 'no-shebang', spec: { parts: [{ contentType: 'text/x-shellscript', content: 'echo hi\n' }] }, error: /spec\.parts\[0\]: a text\/x-shellscript part must start with #!/ },
    {
      name: 'unknown-placeholder',
      spec: { parts: [{ contentType: 'text/x-shellscript', content: '#!/bin/sh\necho $(NOPE)\n' }] },
      error: /spec\.parts\[0\]\.content: Invalid value: "\$\(NOPE\)": is not a declared value \(declared: none\); write \$\$\(NOPE\) for a literal/,
    },
    { name: 'self-reference', spec: { values: [{ name: 'X', valueFrom: { cloudConfigRef: { name: 'self-reference' } } }], parts: [shell] }, error: /cannot include its own output/ },
    { name: 'no-parts', spec: { parts: [] }, error: /spec\.parts.*at least 1 items/ },
    { name: 'deep', spec: { parts: [{ contentType: 'text/cloud-config', content: `#cloud-config\na: ${'['.repeat(200)}${']'.repeat(200)}\n` }] }, error: /nests deeper than 64 levels/ },
  ];
  for (const b of bad) {
    test(`refused: ${b.name}`, () => {
      const r = kubectl(s, ['apply', '-f', '-'], cloudConfig(b.name, b.spec));
      assert.notEqual(r.status, 0, `accepted: ${r.stdout}`);
      assert.match(r.stderr, b.error);
      assert.match(r.stderr, /is invalid/);
    });
  }

  const refs: Array<{ name: string; spec: Record<string, unknown>; reason: string; message: string | RegExp }> = [
    {
      name: 'missing-device',
      spec: { values: [{ name: 'IP', valueFrom: { fieldRef: { kind: 'Device', name: 'nope', fieldPath: 'status.ipAddresses[0].address' } } }], parts: [shell] },
      reason: 'WaitingForInputs',
      message: 'waiting for IP: Device nope does not exist',
    },
    {
      name: 'missing-field',
      spec: { values: [{ name: 'H', valueFrom: { fieldRef: { kind: 'CloudConfig', name: 'app', fieldPath: 'status.nothing[0]' } } }], parts: [shell] },
      reason: 'WaitingForInputs',
      message: 'waiting for H: CloudConfig app has no status.nothing',
    },
    {
      name: 'missing-secret-and-key',
      spec: {
        values: [
          { name: 'A', valueFrom: { secretKeyRef: { name: 'nope', key: 'k' } } },
          { name: 'B', valueFrom: { configMapKeyRef: { name: 'kube-root-ca.crt', key: 'nope' } } },
        ],
        parts: [shell],
      },
      reason: 'WaitingForInputs',
      message: /^waiting for A: Secret nope does not exist; B: ConfigMap kube-root-ca\.crt (does not exist|has no key nope)$/,
    },
    {
      name: 'cycle-a',
      spec: { values: [{ name: 'X', valueFrom: { cloudConfigRef: { name: 'cycle-b' } } }], parts: [shell] },
      reason: 'ReferenceCycle',
      message: 'CloudConfigs read each other in a cycle: cycle-a → cycle-b → cycle-a; remove one of the references',
    },
    {
      name: 'cycle-b',
      spec: { values: [{ name: 'X', valueFrom: { cloudConfigRef: { name: 'cycle-a' } } }], parts: [shell] },
      reason: 'ReferenceCycle',
      message: 'CloudConfigs read each other in a cycle: cycle-b → cycle-a → cycle-b; remove one of the references',
    },
    {
      name: 'breaks-yaml',
      spec: { values: [{ name: 'V', value: 'a: b\n  c: [' }], parts: [{ contentType: 'text/cloud-config', content: '#cloud-config\nbootcmd:\n- $(V)\n' }] },
      reason: 'RenderFailed',
      message: /^parts\[0\]: with its values in, the cloud-config is not valid YAML/,
    },
    {
      name: 'too-large',
      spec: { values: [{ name: 'V', value: 'x'.repeat(16000) }], parts: [{ contentType: 'text/x-shellscript', content: `#!/bin/sh\n# ${'$(V)'.repeat(5)}\n` }] },
      reason: 'TooLarge',
      message: /^the rendered user data is \d+ bytes; a datasource carries at most 65536/,
    },
  ];
  test('accepted, and waiting or failing with a clear reason: bad references and bad renders', async () => {
    for (const r of refs) kubectlOk(s, ['apply', '-f', '-'], cloudConfig(r.name, r.spec));
    for (const r of refs) {
      const c = await waitFor(`${r.name}: Ready=False ${r.reason}`, async () => {
        const c = readyOf(await get(r.name));
        return c?.status === 'False' && c.reason === r.reason ? c : undefined;
      });
      if (typeof r.message === 'string') assert.equal(c.message, r.message, r.name);
      else assert.match(c.message, r.message, r.name);
    }
    const warnings = kubectlOk(s, ['get', 'events', '--field-selector', 'type=Warning', '-o', 'jsonpath={range .items[*]}{.involvedObject.name}:{.reason} {end}']);
    for (const want of ['cycle-a:ReferenceCycle', 'cycle-b:ReferenceCycle', 'breaks-yaml:RenderFailed', 'too-large:TooLarge']) assert.ok(warnings.includes(want), `${want} in ${warnings}`);
    // The server is up and answering after all of it.
    const health = await fetch(`${s.plainUrl}/healthz`);
    assert.equal(health.status, 200);
    assert.match(kubectlOk(s, ['get', 'cloudconfigs']), /cycle-a\s+False\s+ReferenceCycle/);
  });
});

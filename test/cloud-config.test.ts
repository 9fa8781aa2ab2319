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

const readyOf = (o: CloudConfigObj) => o.status?.conditions?.find((c) => c.type === 'Ready');

function cloudConfig(name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: 'metalplane.dev/v1alpha1', kind: 'CloudConfig', metadata: { name, namespace: 'default' }, spec });
}

describe('CloudConfig through kubectl', { skip }, () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ args: ['--sim', '--sim-machines', '4', '--sim-speed', 'max'] });
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
  });

  const get = async (name: string): Promise<CloudConfigObj> => {
    const r = await api(s, 'GET', `${CC}/${name}`);
    assert.equal(r.status, 200, r.text);
    return r.body as CloudConfigObj;
  };

  test('the composition example: app waits for db-1, then renders db-1\'s address into every part', async () => {
    kubectlOk(s, ['apply', '-f', join(REPO, 'examples', 'cloud-config', 'app.yaml')]);
    const waiting = await waitFor('app waiting', async () => {
      const c = readyOf(await get('app'));
      return c?.reason === 'WaitingForInputs' ? c : undefined;
    });
    assert.equal(waiting.message, 'waiting for DB_IP: Device db-1 does not exist');
    assert.match(kubectlOk(s, ['get', 'cloudconfig', 'app']), /app\s+False\s+WaitingForInputs/);

    kubectlOk(s, ['apply', '-f', join(REPO, 'examples', 'cloud-config', 'db-1.yaml')]);
    const w = kubectl(s, ['wait', 'cloudconfig/app', '--for=condition=Ready', '--timeout=60s']);
    assert.equal(w.status, 0, w.stderr);
    const db = JSON.parse(kubectlOk(s, ['get', 'device', 'db-1', '-o', 'json'])) as { status: { state: string; ipAddresses: Array<{ address: string }> } };
    assert.equal(db.status.state, 'active', 'app rendered only once db-1 was Ready');
    const ip = db.status.ipAddresses[0]!.address;
    const app = await get('app');
    assert.equal(app.status?.contentType, 'multipart/mixed');
    const doc = app.status!.userData!;
    assert.ok(doc.includes(`DB_IP=${ip}`), doc);
    assert.ok(doc.includes(`echo app starting against ${ip}`), doc);
    assert.ok(doc.includes(`echo "${ip}" > /run/db-ip`), doc);
    assert.match(kubectlOk(s, ['get', 'cloudconfigs']), /app\s+True\s+Rendered\s+\d+/);
    const events = kubectlOk(s, ['get', 'events', '--field-selector', 'involvedObject.name=app']);
    assert.match(events, /Rendered/);
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

// kubectl compatibility, part 1: discovery, reads and output formats, explain, events, quick checks.
// Drives the real kubectl against a real `metalplane up` (one server for the file).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { kubectl, kubectlOk, startTestServer, type TestServer } from './helpers/server.js';
import { createObject, kubectlFails, kubectlJson, kubectlSkipReason } from './helpers/kubectl.js';

const skip = kubectlSkipReason();

/** The header row of a kubectl table, split into column names. */
function header(out: string): string[] {
  return out.split('\n')[0]!.trim().split(/\s{2,}/);
}

/** The data row whose first cell is `name`, split into cells. */
function row(out: string, name: string): string[] | undefined {
  return out
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s{2,}/))
    .find((cells) => cells[0] === name);
}

describe('kubectl: discovery, reads, output formats, explain, events', { skip }, () => {
  let s: TestServer;
  before(async () => {
    // Two simulated machines, so that plans have machines somewhere: METROS shows where they are, and a plan
    // without any has an empty METROS cell, which the two-space cell splitting below cannot parse.
    s = await startTestServer({ args: ['--sim', '--sim-machines', '2', '--sim-speed', 'max'] });
    for (let i = 0; i < 300 && !kubectlOk(s, ['get', 'plan', 'c3.small.x86', '-o', 'jsonpath={.status.metros}']).includes('da'); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
  });

  test('kubectl version shows the server version', () => {
    const v = kubectlJson(s, ['version']);
    assert.match(v.clientVersion.gitVersion, /^v1\.32\./);
    assert.equal(v.serverVersion.major, '1');
    assert.equal(v.serverVersion.minor, '32');
    assert.match(v.serverVersion.gitVersion, /^v1\.32\.\d+-metalplane\./);
    assert.match(kubectlOk(s, ['version']), /Server Version: v1\.32\.\d+-metalplane/);
  });

  test('kubectl get --raw /readyz and /version', () => {
    assert.equal(kubectlOk(s, ['get', '--raw', '/readyz']).trim(), 'ok');
    assert.equal(JSON.parse(kubectlOk(s, ['get', '--raw', '/version'])).minor, '32');
  });

  test('kubectl get ns lists the system namespaces, Active', () => {
    const out = kubectlOk(s, ['get', 'ns']);
    assert.deepEqual(header(out), ['NAME', 'STATUS', 'AGE']);
    for (const ns of ['default', 'kube-system', 'metalplane-system']) {
      assert.equal(row(out, ns)?.[1], 'Active', `${ns} in:\n${out}`);
    }
  });

  test('kubectl api-resources lists the metalplane kinds with their short names', () => {
    const out = kubectlOk(s, ['api-resources']);
    const lines = out.split('\n').map((l) => l.trim().split(/\s+/));
    const find = (name: string) => lines.find((cells) => cells[0] === name);
    assert.deepEqual(find('plans'), ['plans', 'metalplane.dev/v1alpha1', 'false', 'Plan']);
    assert.deepEqual(find('metros'), ['metros', 'metalplane.dev/v1alpha1', 'false', 'Metro']);
    assert.deepEqual(find('operatingsystems'), ['operatingsystems', 'os', 'metalplane.dev/v1alpha1', 'false', 'OperatingSystem']);
    assert.deepEqual(find('configmaps'), ['configmaps', 'cm', 'v1', 'true', 'ConfigMap']);
    const names = kubectlOk(s, ['api-resources', '--api-group', 'metalplane.dev', '-o', 'name']).trim().split('\n');
    assert.deepEqual(names.sort(), ['apikeys', 'bgpconfigs', 'bgpsessions', 'cloudconfigs', 'devices', 'facilities', 'hardware', 'ipaddresses', 'ippools', 'ipreservations', 'metros', 'operatingsystems', 'organizations', 'plans', 'sshkeys', 'usagerecords', 'users', 'virtualnetworks', 'vlanassignmentbatches', 'workflows'].map((r) => `${r}.metalplane.dev`));
  });

  test('kubectl get plans: the declared printer columns, default and -o wide', () => {
    const out = kubectlOk(s, ['get', 'plans']);
    assert.deepEqual(header(out), ['NAME', 'CPU', 'MEMORY', 'DRIVES', 'PRICE/HR', 'METROS', 'AGE']);
    const small = row(out, 'c3.small.x86');
    assert.ok(small, out);
    assert.equal(small[1], '1x Intel Xeon E-2278G 8-Core @ 3.40GHz');
    assert.equal(small[2], '32GB');
    assert.equal(small[3], '2x 480GB SSD');
    assert.equal(small[4], '0.75');
    assert.ok(row(out, 'm3.large.x86'), out);

    // -o wide adds the priority-1 columns (CLASS, NICS), in the order the server declares them.
    const wide = kubectlOk(s, ['get', 'plans', '-o', 'wide']);
    const wideHeader = header(wide);
    assert.deepEqual([...wideHeader].sort(), ['AGE', 'CLASS', 'CPU', 'DRIVES', 'MEMORY', 'METROS', 'NAME', 'NICS', 'PRICE/HR']);
    assert.deepEqual(wideHeader.filter((h) => h !== 'CLASS' && h !== 'NICS'), header(out));
    assert.equal(row(wide, 'c3.small.x86')?.[wideHeader.indexOf('NICS')], '2x 10Gbps');
    assert.equal(row(wide, 'c3.small.x86')?.[wideHeader.indexOf('CLASS')], 'c3.small.x86');
  });

  test('kubectl get -o yaml, -o json, -o jsonpath, -o name', () => {
    const yaml = kubectlOk(s, ['get', 'plan', 'c3.small.x86', '-o', 'yaml']);
    assert.match(yaml, /^apiVersion: metalplane\.dev\/v1alpha1$/m);
    assert.match(yaml, /^kind: Plan$/m);
    assert.match(yaml, /^  name: c3\.small\.x86$/m);
    assert.match(yaml, /^    hour: 0\.75$/m);

    const obj = kubectlJson(s, ['get', 'plan', 'c3.small.x86']);
    assert.equal(obj.kind, 'Plan');
    assert.equal(obj.spec.pricing.hour, 0.75);
    assert.match(obj.metadata.resourceVersion, /^\d+$/);
    assert.match(obj.metadata.uid, /^[0-9a-f-]{36}$/);

    const list = kubectlJson(s, ['get', 'plans']);
    assert.equal(list.kind, 'List');
    assert.ok(list.items.length >= 5);

    assert.equal(kubectlOk(s, ['get', 'plan', 'c3.small.x86', '-o', 'jsonpath={.spec.specs.memory.total}']), '32GB');
    const names = kubectlOk(s, ['get', 'plans', '-o', 'jsonpath={range .items[*]}{.metadata.name}{"\\n"}{end}']).trim().split('\n');
    assert.ok(names.includes('c3.small.x86') && names.includes('m3.large.x86'), names.join(','));
    assert.equal(kubectlOk(s, ['get', 'plan', 'c3.small.x86', '-o', 'name']).trim(), 'plan.metalplane.dev/c3.small.x86');
    assert.equal(
      kubectlOk(s, ['get', 'plans', '-o', 'custom-columns=NAME:.metadata.name,HOUR:.spec.pricing.hour', '--no-headers']).split('\n').find((l) => l.startsWith('c3.small.x86'))?.split(/\s+/)[1],
      '0.75',
    );
  });

  test('kubectl get plans,metros; short names; fully qualified names; selectors', () => {
    const out = kubectlOk(s, ['get', 'plans,metros']);
    assert.match(out, /^plan\.metalplane\.dev\/c3\.small\.x86\s/m);
    assert.match(out, /^metro\.metalplane\.dev\/da\s+da\s+Dallas\s+US\s/m);

    const os = kubectlOk(s, ['get', 'os', '-o', 'name']).trim().split('\n');
    assert.ok(os.length > 0 && os.every((n) => n.startsWith('operatingsystem.metalplane.dev/')), os.join(','));
    assert.deepEqual(kubectlOk(s, ['get', 'os', '-o', 'name']), kubectlOk(s, ['get', 'operatingsystems.metalplane.dev', '-o', 'name']));
    assert.equal(kubectlOk(s, ['get', 'plans.v1alpha1.metalplane.dev', 'c3.small.x86', '-o', 'name']).trim(), 'plan.metalplane.dev/c3.small.x86');
    assert.equal(kubectlOk(s, ['get', 'metro', 'da', '-o', 'jsonpath={.spec.name}']), 'Dallas');

    const byField = kubectlOk(s, ['get', 'metros', '--field-selector', 'spec.code=da', '-o', 'name']).trim();
    assert.equal(byField, 'metro.metalplane.dev/da');
    const fac = kubectlOk(s, ['get', 'fac', '-o', 'name']).trim().split('\n');
    assert.ok(fac.includes('facility.metalplane.dev/da11'), fac.join(','));

    // Categories: `kubectl get catalog` expands to every kind declared in it.
    const catalog = new Set(kubectlOk(s, ['get', 'catalog', '-o', 'name']).trim().split('\n').map((n) => n.split('/')[0]));
    assert.deepEqual([...catalog].sort(), ['facility.metalplane.dev', 'metro.metalplane.dev', 'operatingsystem.metalplane.dev', 'plan.metalplane.dev']);
  });

  test('kubectl get with a label selector and pagination (--chunk-size)', () => {
    kubectlOk(s, ['create', 'namespace', 'reads']);
    for (let i = 0; i < 5; i++) kubectlOk(s, ['create', 'configmap', `c${i}`, '-n', 'reads', `--from-literal=i=${i}`]);
    kubectlOk(s, ['label', 'configmap', 'c1', 'c3', '-n', 'reads', 'pick=yes']);
    assert.deepEqual(kubectlOk(s, ['get', 'cm', '-n', 'reads', '-l', 'pick=yes', '-o', 'name']).trim().split('\n'), ['configmap/c1', 'configmap/c3']);
    const paged = kubectlOk(s, ['get', 'cm', '-n', 'reads', '--chunk-size=2', '-o', 'name']).trim().split('\n');
    assert.deepEqual(paged.filter((n) => /^configmap\/c\d$/.test(n)), ['configmap/c0', 'configmap/c1', 'configmap/c2', 'configmap/c3', 'configmap/c4']);
    const table = kubectlOk(s, ['get', 'cm', 'c2', '-n', 'reads']);
    assert.deepEqual(header(table), ['NAME', 'DATA', 'AGE']);
    assert.equal(row(table, 'c2')?.[1], '1');
  });

  test('kubectl explain describes metalplane kinds and ConfigMap from OpenAPI', () => {
    const spec = kubectlOk(s, ['explain', 'plan.spec']);
    assert.match(spec, /KIND:\s+Plan/);
    assert.match(spec, /GROUP:\s+metalplane\.dev/);
    assert.match(spec, /VERSION:\s+v1alpha1/);
    assert.match(spec, /FIELD:\s+spec/);
    assert.match(spec, /specs\s+<Object> -required-/);
    assert.match(spec, /pricing\s+<Object>/);
    assert.match(spec, /PlanSpec describes the hardware class/);

    const specs = kubectlOk(s, ['explain', 'plans.spec.specs']);
    assert.match(specs, /cpus\s+<\[\]Object>/);
    assert.match(specs, /memory\s+<Object>/);

    const hour = kubectlOk(s, ['explain', 'plan.spec.pricing.hour']);
    assert.match(hour, /hour\s+<number>/);
    assert.match(hour, /Price in USD per hour/);

    const cm = kubectlOk(s, ['explain', 'configmap']);
    assert.match(cm, /KIND:\s+ConfigMap/);
    assert.match(cm, /VERSION:\s+v1/);
    assert.match(cm, /data\s+<map\[string\]string>/);
    assert.match(cm, /metadata\s+<ObjectMeta>/);

    const rec = kubectlOk(s, ['explain', 'plan', '--recursive']);
    assert.match(rec, /cpus\s+<\[\]Object>/);
    assert.match(rec, /cores\s+<integer>/);

    const bad = kubectlFails(s, ['explain', 'plan.spec.nope']);
    assert.match(bad.stderr, /field "nope" does not exist/);
  });

  test('events: create, get, field selectors, describe shows them', () => {
    kubectlOk(s, ['create', 'namespace', 'ev']);
    kubectlOk(s, ['create', 'configmap', 'watched', '-n', 'ev', '--from-literal=a=b']);
    kubectlOk(s, ['create', 'configmap', 'other', '-n', 'ev', '--from-literal=a=b']);
    const uid = kubectlOk(s, ['get', 'cm', 'watched', '-n', 'ev', '-o', 'jsonpath={.metadata.uid}']);
    const otherUid = kubectlOk(s, ['get', 'cm', 'other', '-n', 'ev', '-o', 'jsonpath={.metadata.uid}']);
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const event = (name: string, target: string, targetUid: string, reason: string, message: string, type = 'Normal') => ({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace: 'ev' },
      involvedObject: { apiVersion: 'v1', kind: 'ConfigMap', name: target, namespace: 'ev', uid: targetUid },
      reason,
      message,
      type,
      source: { component: 'kubectl-test' },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    });
    assert.match(createObject(s, event('watched.1', 'watched', uid, 'Provisioned', 'the thing was provisioned')), /^event\/watched\.1 created/);
    createObject(s, event('watched.2', 'watched', uid, 'DiskFailed', 'disk sdb stopped answering', 'Warning'));
    createObject(s, event('other.1', 'other', otherUid, 'Unrelated', 'nothing to see'));

    const all = kubectlOk(s, ['get', 'events', '-n', 'ev']);
    assert.deepEqual(header(all), ['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE']);
    assert.match(all, /Normal\s+Provisioned\s+configmap\/watched\s+the thing was provisioned/);
    assert.match(all, /Warning\s+DiskFailed\s+configmap\/watched\s+disk sdb stopped answering/);
    assert.match(all, /Unrelated\s+configmap\/other/);

    const filtered = kubectlOk(s, ['get', 'events', '-n', 'ev', '--field-selector', 'involvedObject.name=watched', '-o', 'name']).trim().split('\n').sort();
    assert.deepEqual(filtered, ['event/watched.1', 'event/watched.2']);
    const warnings = kubectlOk(s, ['get', 'ev', '-n', 'ev', '--field-selector', 'type=Warning,involvedObject.kind=ConfigMap', '-o', 'name']).trim();
    assert.equal(warnings, 'event/watched.2');
    const across = kubectlOk(s, ['get', 'events', '-A', '--field-selector', 'reason=Unrelated', '-o', 'jsonpath={.items[*].metadata.name}']);
    assert.equal(across, 'other.1');

    const described = kubectlOk(s, ['describe', 'configmap', 'watched', '-n', 'ev']);
    assert.match(described, /^Name:\s+watched$/m);
    assert.match(described, /^Events:$/m);
    const events = described.slice(described.indexOf('Events:'));
    assert.match(events, /Normal\s+Provisioned\s+.*kubectl-test\s+the thing was provisioned/);
    assert.match(events, /Warning\s+DiskFailed\s+/);
    assert.doesNotMatch(events, /Unrelated/);
  });

  test('kubectl describe of a metalplane kind shows its fields and events', () => {
    const uid = kubectlOk(s, ['get', 'plan', 'c3.small.x86', '-o', 'jsonpath={.metadata.uid}']);
    createObject(s, {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: 'c3.small.x86.1', namespace: 'default' },
      involvedObject: { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Plan', name: 'c3.small.x86', uid },
      reason: 'CapacityLow',
      message: 'only 2 machines left in da',
      type: 'Warning',
      source: { component: 'kubectl-test' },
      count: 1,
    });
    const out = kubectlOk(s, ['describe', 'plan', 'c3.small.x86']);
    assert.match(out, /^Name:\s+c3\.small\.x86$/m);
    assert.match(out, /^API Version:\s+metalplane\.dev\/v1alpha1$/m);
    assert.match(out, /^Kind:\s+Plan$/m);
    assert.match(out, /Hour:\s+0\.75/);
    assert.match(out, /^Events:/m);
    assert.match(out.slice(out.indexOf('Events:')), /Warning\s+CapacityLow\s+.*only 2 machines left in da/);
  });

  test('NotFound: get and delete of a missing object exit 1', () => {
    const del = kubectl(s, ['delete', 'configmap', 'nope', '-n', 'default']);
    assert.equal(del.status, 1);
    assert.match(del.stderr, /Error from server \(NotFound\): configmaps "nope" not found/);
    const get = kubectl(s, ['get', 'plan', 'nope']);
    assert.equal(get.status, 1);
    assert.match(get.stderr, /Error from server \(NotFound\): plans\.metalplane\.dev "nope" not found/);
    const ns = kubectl(s, ['get', 'cm', 'x', '-n', 'no-such-ns']);
    assert.equal(ns.status, 1);
    assert.match(ns.stderr, /NotFound/);
    const kind = kubectl(s, ['get', 'gizmos']);
    assert.equal(kind.status, 1);
    assert.match(kind.stderr, /the server doesn't have a resource type "gizmos"/);
  });
});

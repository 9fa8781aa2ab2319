// The official JavaScript client, @kubernetes/client-node 1.x, against the real server with the kubeconfig
// `metalplane up` writes: HTTPS with the CA from certificate-authority-data (verification on), typed core APIs,
// merge patch, watch, an informer over a metalplane kind and the discovery-driven KubernetesObjectApi.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  Watch,
  makeInformer,
  setHeaderOptions,
  type KubernetesObject,
  type V1ConfigMap,
} from '@kubernetes/client-node';
import { startTestServer, waitFor, type TestServer } from './helpers/server.js';

let server: TestServer;
let kc: KubeConfig;

const GROUP = 'metalplane.dev';
const VERSION = 'v1alpha1';

interface Plan extends KubernetesObject {
  spec: { specs: { cpus?: { count: number; type: string }[]; memory?: { total: string } }; pricing?: { hour: number } };
}

function plan(name: string): Plan {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'Plan',
    metadata: { name, labels: { test: 'client-node' } },
    spec: { specs: { cpus: [{ count: 1, type: 'Test CPU' }], memory: { total: '8GB' } }, pricing: { hour: 0.1 } },
  };
}

before(async () => {
  server = await startTestServer();
  kc = new KubeConfig();
  kc.loadFromFile(server.kubeconfig);
});

after(async () => {
  await server?.stop();
  server?.cleanup();
});

test('the kubeconfig is HTTPS with the CA, and verification is on', () => {
  const cluster = kc.getCurrentCluster();
  assert.ok(cluster);
  assert.match(cluster.server, /^https:\/\//);
  assert.ok(cluster.caData, 'certificate-authority-data is set');
  assert.notEqual(cluster.skipTLSVerify, true);
});

test('CoreV1Api lists namespaces', async () => {
  const core = kc.makeApiClient(CoreV1Api);
  const list = await core.listNamespace();
  const names = list.items.map((n) => n.metadata?.name);
  for (const want of ['default', 'kube-system', 'metalplane-system']) assert.ok(names.includes(want), `${want} in ${names.join(', ')}`);
  assert.ok(list.metadata?.resourceVersion, 'the list has a resourceVersion');
});

test('a client without the CA cannot talk to the server', async () => {
  const bare = new KubeConfig();
  bare.loadFromOptions({
    clusters: [{ name: 'c', server: server.url, skipTLSVerify: false }],
    users: [{ name: 'u', token: server.token }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  await assert.rejects(bare.makeApiClient(CoreV1Api).listNamespace(), /self[- ]signed|unable to (get|verify)|certificate/i);
});

test('create and merge-patch a ConfigMap', async () => {
  const core = kc.makeApiClient(CoreV1Api);
  const created = await core.createNamespacedConfigMap({
    namespace: 'default',
    body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cn-patch', labels: { a: '1' } }, data: { one: '1', two: '2' } },
  });
  assert.equal(created.metadata?.name, 'cn-patch');
  assert.ok(created.metadata?.uid);
  assert.deepEqual(created.data, { one: '1', two: '2' });

  // Merge patch: null removes a key, others are set; labels merge.
  const patched = await core.patchNamespacedConfigMap(
    { name: 'cn-patch', namespace: 'default', body: { metadata: { labels: { b: '2' } }, data: { two: null, three: '3' } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  assert.deepEqual(patched.data, { one: '1', three: '3' });
  assert.deepEqual(patched.metadata?.labels, { a: '1', b: '2' });
  assert.notEqual(patched.metadata?.resourceVersion, created.metadata?.resourceVersion);

  // The JSON patch the 1.x API sends by default works too.
  const jsonPatched = await core.patchNamespacedConfigMap({ name: 'cn-patch', namespace: 'default', body: [{ op: 'replace', path: '/data/one', value: 'uno' }] });
  assert.equal(jsonPatched.data?.one, 'uno');

  const read = await core.readNamespacedConfigMap({ name: 'cn-patch', namespace: 'default' });
  assert.deepEqual(read.data, { one: 'uno', three: '3' });

  // Errors come back as ApiException carrying the Status.
  await assert.rejects(core.readNamespacedConfigMap({ name: 'no-such-cm', namespace: 'default' }), (e: unknown) => {
    const err = e as { code?: number; body?: string };
    assert.equal(err.code, 404);
    assert.match(String(err.body), /"reason":"NotFound"/);
    return true;
  });
});

test('Watch on configmaps receives ADDED', async () => {
  const core = kc.makeApiClient(CoreV1Api);
  const seen: { type: string; obj: V1ConfigMap }[] = [];
  let doneErr: unknown = 'not done';
  const watch = new Watch(kc);
  const list = await core.listNamespacedConfigMap({ namespace: 'default' });
  const controller = await watch.watch(
    '/api/v1/namespaces/default/configmaps',
    { resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true },
    (type, obj: V1ConfigMap) => seen.push({ type, obj }),
    (err) => (doneErr = err),
  );
  try {
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'cn-watched' }, data: { w: 'yes' } } });
    const ev = await waitFor('ADDED cn-watched', () => seen.find((e) => e.type === 'ADDED' && e.obj.metadata?.name === 'cn-watched'), 10_000, 25);
    assert.deepEqual(ev.obj.data, { w: 'yes' });
    await core.deleteNamespacedConfigMap({ name: 'cn-watched', namespace: 'default' });
    await waitFor('DELETED cn-watched', () => seen.find((e) => e.type === 'DELETED' && e.obj.metadata?.name === 'cn-watched'), 10_000, 25);
    assert.equal(doneErr, 'not done', `the watch ended early: ${String(doneErr)}`);
  } finally {
    controller.abort();
  }
});

test('an informer over plans syncs the seeded list and sees an added Plan', async () => {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const seeded = (await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'plans' })) as { items: Plan[] };
  assert.ok(seeded.items.length > 0, 'the catalog is seeded with plans');

  const informer = makeInformer<Plan>(kc, `/apis/${GROUP}/${VERSION}/plans`, () =>
    custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'plans' }),
  );
  const added: string[] = [];
  const errors: unknown[] = [];
  informer.on('add', (p) => added.push(p.metadata!.name!));
  informer.on('error', (e) => errors.push(e));
  await informer.start();
  try {
    const cached = informer.list().map((p) => p.metadata!.name!).sort();
    assert.deepEqual(cached, seeded.items.map((p) => p.metadata!.name!).sort(), 'the informer cache holds the seeded plans');
    assert.ok(cached.includes('c3.small.x86'));

    await custom.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'plans', body: plan('cn.informer.x86') });
    await waitFor('the informer to see cn.informer.x86', () => added.includes('cn.informer.x86') && informer.get('cn.informer.x86'), 10_000, 25);
    assert.equal(informer.get('cn.informer.x86')?.spec.specs.memory?.total, '8GB');
    assert.deepEqual(errors, []);
  } finally {
    await informer.stop();
  }
});

test('KubernetesObjectApi resolves a Plan through discovery: read, create, list', async () => {
  const objects = kc.makeApiClient(KubernetesObjectApi);
  const read = await objects.read<Plan>({ apiVersion: `${GROUP}/${VERSION}`, kind: 'Plan', metadata: { name: 'c3.small.x86' } });
  assert.equal(read.kind, 'Plan');
  assert.equal(read.metadata?.name, 'c3.small.x86');
  assert.ok(Array.isArray(read.spec.specs.cpus) && read.spec.specs.cpus.length > 0);

  const created = await objects.create<Plan>(plan('cn.objects.x86'));
  assert.equal(created.metadata?.name, 'cn.objects.x86');
  assert.ok(created.metadata?.uid);
  assert.equal(created.metadata?.generation, 1);

  const list = await objects.list<Plan>(`${GROUP}/${VERSION}`, 'Plan', undefined, undefined, undefined, undefined, undefined, 'test=client-node');
  assert.deepEqual(list.items.map((p) => p.metadata?.name).sort(), ['cn.informer.x86', 'cn.objects.x86']);

  // A ConfigMap through the same generic client (namespaced, core group).
  const cm = await objects.read<V1ConfigMap & KubernetesObject>({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cn-patch', namespace: 'default' } });
  assert.equal(cm.data?.three, '3');
});

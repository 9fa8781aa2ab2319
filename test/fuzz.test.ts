// Property-based fuzzing of the real server (fast-check): generated methods, paths (percent-encoding, `..`,
// long segments), query strings (selectors, limit, continue, resourceVersion, watch, timeoutSeconds, …), headers
// (content-type, accept, authorization) and bodies (JSON, YAML, every patch type, raw bytes) against the kube
// API and the machine-facing paths (/boot, /agent/v1, /metadata). Whatever arrives, the answer is never a 5xx
// and never a hang, the kube API answers errors as a Status, the server stays up and its memory bounded.
// Bounded in count (RUNS requests per surface) and time (TIME_LIMIT_MS per surface); FUZZ_SEED replays a run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import YAML from 'yaml';
import { api, startTestServer, type TestServer } from './helpers/server.js';

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 20_261_201;
const RUNS = process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : 400;
const TIME_LIMIT_MS = 25_000;
/** RSS growth allowed over the whole run (the heap grows with what V8 keeps; a leak per request would not fit). */
const RSS_BOUND_MB = 150;

let server: TestServer;
let baselineMB = 0;
/** A token the boot service minted for the enrolled machine (when the server gives one), for the agent API. */
let agentToken = 'no-token';
const MAC = 'b4:96:91:0a:1b:2c';

function rssMB(): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${server.proc.pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS in /proc/PID/status');
  return Number(m[1]) / 1024;
}

before(async () => {
  server = await startTestServer();
  const fixtures: [string, unknown][] = [
    ['/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg', labels: { app: 'x' } }, data: { a: '1' } }],
    ['/apis/metalplane.dev/v1alpha1/namespaces/default/workflows', { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Workflow', metadata: { name: 'wf' }, spec: { hardware: 'm1', purpose: 'discover', actions: [{ name: 'a', executor: 'bmc', type: 'power-on-pxe', timeoutSeconds: 60, params: { k: 'v' } }] } }],
    ['/apis/metalplane.dev/v1alpha1/hardware', { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Hardware', metadata: { name: 'm1' }, spec: { metro: 'da', facility: 'da11', plan: 'c3.small.x86', bmc: { driver: 'redfish', address: 'http://127.0.0.1:9', credentialsSecret: { name: 'm1-bmc' } }, nics: [{ name: 'eth0', mac: MAC }] } }],
  ];
  for (const [path, obj] of fixtures) {
    const r = await api(server, 'POST', path, obj);
    assert.ok(r.status === 201, `fixture ${path}: ${r.status} ${r.text.slice(0, 300)}`);
  }
  const ipxe = await fetch(`${server.plainUrl}/boot/v1/ipxe?mac=${MAC}`);
  agentToken = /metalplane\.token=(\S+)/.exec(await ipxe.text())?.[1] ?? agentToken;
  baselineMB = rssMB();
});

after(async () => {
  await server?.stop();
  server?.cleanup();
});

// ---------------------------------------------------------------------------------------------------------
// Generators.

const hostileSegment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('cfg', 'wf', 'm1', 'default') },
  fc.constantFrom('..', '.', '%2e%2e', '%2E%2E%2F', '%2F', '%00', '%ff', '%', '%zz', '~', '$', 'cfg', 'wf', 'm1', 'default', 'kube-system', ''),
  fc.string({ maxLength: 20 }).map(encodeURIComponent),
  fc.string({ unit: 'binary', maxLength: 12 }).map(encodeURIComponent),
  fc.integer({ min: 255, max: 9000 }).map((n) => 'a'.repeat(n)),
  fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,30}[a-z0-9])?$/),
);

/** The collections fuzzed, with the name of the fixture object in each (when there is one). */
const kubeCollections: [string, string][] = [
  ['/api/v1/namespaces/default/configmaps', 'cfg'],
  ['/api/v1/namespaces/default/secrets', 's'],
  ['/api/v1/namespaces/default/events', 'e'],
  ['/apis/metalplane.dev/v1alpha1/plans', 'p'],
  ['/apis/metalplane.dev/v1alpha1/hardware', 'm1'],
  ['/apis/metalplane.dev/v1alpha1/namespaces/default/workflows', 'wf'],
  ['/apis/metalplane.dev/v1alpha1/namespaces/default/devices', 'd'],
  ['/apis/metalplane.dev/v1alpha1/namespaces/nope/ipreservations', 'r'],
];

/** A collection, an object in it (mostly the fixture), or a subresource of that (mostly status). */
function kubePathFor(method: string): fc.Arbitrary<string> {
  const item = fc.tuple(
    fc.constantFrom(...kubeCollections),
    fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, hostileSegment),
    fc.oneof({ weight: 8, arbitrary: fc.constant('') }, { weight: 2, arbitrary: fc.constant('/status') }, fc.constantFrom('/finalize', '/scale', '/x', '/..')),
  ).map(([[collection, fixture], name, sub]) => `${collection}/${name ?? fixture}${sub}`);
  const collection = fc.constantFrom(...kubeCollections).map(([c]) => c);
  const anywhere = fc
    .tuple(fc.constantFrom('/api', '/apis', '/apis/metalplane.dev', '/apis/metalplane.dev/v1alpha1', '/openapi/v3/apis/metalplane.dev', '/openapi/v2', '/version'), fc.array(hostileSegment, { maxLength: 6 }))
    .map(([p, segs]) => [p, ...segs].join('/'));
  const [itemWeight, collectionWeight] = method === 'POST' ? [1, 8] : method === 'GET' ? [5, 5] : [8, 1];
  return fc.oneof({ weight: itemWeight, arbitrary: item }, { weight: collectionWeight, arbitrary: collection }, { weight: 1, arbitrary: anywhere });
}

const selector = fc.oneof(
  fc.constantFrom('app=x', 'app!=x', 'app in (x,y)', 'app notin (x)', '!app', 'app', 'metadata.name=cfg', 'metadata.namespace!=default', 'spec.hardware=m1', '==', 'a in (', ',,,', 'a=b,'.repeat(500)),
  fc.string({ maxLength: 40 }),
);
const intish = fc.oneof(fc.integer({ min: -5, max: 3 }).map(String), fc.constantFrom('1e3', '0x10', '99999999999999999999', '', 'abc', ' 1', '-0'));
// Query values: plausible, hostile or junk. A request carries a few of them (not all: one bad value would
// answer for the whole request and hide the others).
const queryValues: Record<string, fc.Arbitrary<string>> = {
  labelSelector: selector,
  fieldSelector: selector,
  limit: intish,
  continue: fc.oneof(fc.base64String({ maxLength: 60 }), fc.string({ maxLength: 30 }), fc.constant('eyJydiI6MSwic3RhcnQiOiJcdTAwMDAifQ')),
  resourceVersion: fc.oneof(intish, fc.constantFrom('0', '1', '999999999')),
  resourceVersionMatch: fc.constantFrom('Exact', 'NotOlderThan', 'Bogus', ''),
  // Watches are kept short: a valid one streams until its timeout or until the client lets go.
  watch: fc.constantFrom('true', 'false', '1', 'True', 'yes', ''),
  timeoutSeconds: fc.constantFrom('0', '1', '-1', 'x', '99999999999999999999'),
  allowWatchBookmarks: fc.constantFrom('true', 'nope'),
  sendInitialEvents: fc.constantFrom('true', 'false', 'x'),
  dryRun: fc.constantFrom('All', 'Nope', ''),
  fieldManager: fc.oneof(fc.constantFrom('fuzz', 'kubectl', ''), fc.string({ maxLength: 200 })),
  fieldValidation: fc.constantFrom('Strict', 'Warn', 'Ignore', 'Loose'),
  force: fc.constantFrom('true', 'false', 'x'),
  propagationPolicy: fc.constantFrom('Background', 'Foreground', 'Orphan', 'Never'),
  gracePeriodSeconds: intish,
  includeObject: fc.constantFrom('None', 'Object', 'Metadata', 'All'),
  mac: fc.oneof(fc.constant(MAC), fc.constant('B4:96:91:0A:1B:2C'), fc.string({ maxLength: 20 })),
  // The agent's long poll: at most a second here.
  wait: fc.constantFrom('0', '0', '1', '-1', 'abc', '0.5', '1e309'),
};

function queryOf(keys: string[], maxKeys = 4): fc.Arbitrary<string> {
  return fc
    .uniqueArray(fc.constantFrom(...keys), { maxLength: maxKeys })
    .chain((ks) => fc.tuple(...ks.map((k) => queryValues[k]!.map((v) => `${k}=${encodeURIComponent(v)}`))))
    .map((parts) => (parts.length ? `?${parts.join('&')}` : ''));
}

const kubeQuery = queryOf(Object.keys(queryValues).filter((k) => k !== 'mac' && k !== 'wait'));

const contentTypes = [
  'application/json',
  'application/yaml',
  'text/yaml',
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
  'application/apply-patch+cbor',
  'application/vnd.kubernetes.protobuf',
  'application/cbor',
  'text/plain',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  ';;;',
];
const accepts = ['application/json', 'application/yaml', 'application/json;as=Table;v=v1;g=meta.k8s.io', 'application/json;as=Table;v=v2;g=meta.k8s.io', '*/*', 'text/html', 'application/vnd.kubernetes.protobuf', 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList', ',,,', ''];

/** A manifest of one of the fixture kinds, then mutated: fields dropped, retyped or replaced by junk. */
/** A valid object for each fuzzed resource, the starting point of generated bodies. */
const MANIFESTS: Record<string, Record<string, unknown>> = {
  configmaps: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg' }, data: { a: '1' } },
  secrets: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, stringData: { password: 'x' } },
  events: { apiVersion: 'v1', kind: 'Event', metadata: { name: 'e' }, involvedObject: { kind: 'ConfigMap', name: 'cfg', namespace: 'default' }, reason: 'Fuzz' },
  plans: { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Plan', metadata: { name: 'p' }, spec: { specs: {} } },
  workflows: { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Workflow', metadata: { name: 'wf' }, spec: { hardware: 'm1', purpose: 'discover', actions: [{ name: 'a', executor: 'bmc', type: 'power-on-pxe', timeoutSeconds: 60, params: {} }] } },
  hardware: { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Hardware', metadata: { name: 'm2' }, spec: { metro: 'da', facility: 'da11', plan: 'c3.small.x86', bmc: { driver: 'redfish', address: 'http://127.0.0.1:9', credentialsSecret: { name: 'm2-bmc' } }, nics: [{ mac: 'b4:96:91:0a:1b:2d' }] } },
};

function decodeOr(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** The object for `path` (its resource's manifest, named as the path names it), then mutated: fields dropped, retyped or replaced. */
function manifestFor(path: string): fc.Arbitrary<Record<string, unknown>> {
  const resource = Object.keys(MANIFESTS).find((r) => path.includes(`/${r}`)) ?? 'configmaps';
  const name = new RegExp(`/${resource}/([^/]+)`).exec(path)?.[1];
  return fc
    .tuple(
      fc.array(fc.tuple(fc.constantFrom('metadata', 'spec', 'data', 'kind', 'apiVersion', 'status', 'metadata.name', 'metadata.labels', 'metadata.annotations', 'metadata.managedFields', 'metadata.resourceVersion', 'metadata.ownerReferences', 'metadata.finalizers', 'spec.actions'), fc.jsonValue({ maxDepth: 4 })), { maxLength: 2 }),
      fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/),
    )
    .map(([edits, fresh]) => {
      const obj = structuredClone(MANIFESTS[resource]!);
      (obj.metadata as Record<string, unknown>).name = name ? decodeOr(name) : `fuzz-${fresh}`;
      for (const [field, value] of edits) {
        const [a, b] = field.split('.');
        if (b === undefined) obj[a!] = value;
        else if (obj[a!] && typeof obj[a!] === 'object') (obj[a!] as Record<string, unknown>)[b] = value;
      }
      return obj;
    });
}
const manifest = manifestFor('/configmaps');

const jsonPatch = fc.array(
  fc.record({
    op: fc.constantFrom('add', 'remove', 'replace', 'move', 'copy', 'test', 'nope'),
    path: fc.oneof(fc.constantFrom('', '/', '/data/a', '/data/-', '/metadata/labels/x', '/spec/actions/0/params/k', '/spec/actions/-', '/metadata/name', '/~2', '/a~1b'), fc.string({ maxLength: 20 })),
    from: fc.constantFrom('/data', '/metadata', '/spec', '', '/nope'),
    value: fc.jsonValue({ maxDepth: 4 }),
  }, { requiredKeys: ['op'] }),
  { maxLength: 8 },
);

const yamlFragment = fc.constantFrom('- ', '? ', ': ', 'a', '"q"', "'s'", '[', ']', '{', '}', ', ', '\n', '  ', '#c', '|\n', '&x ', '*x', '!!binary ', '!!int ', '---\n', 'k: ', 'apiVersion: v1\n', 'kind: ConfigMap\n', 'metadata: {name: cfg}\n', '<<: *x\n', '%YAML 1.1\n');

const body = fc.oneof(
  { weight: 3, arbitrary: manifest.map((m) => JSON.stringify(m)) },
  { weight: 2, arbitrary: manifest.map((m) => YAML.stringify(m)) },
  { weight: 2, arbitrary: jsonPatch.map((p) => JSON.stringify(p)) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: fc.array(yamlFragment, { maxLength: 60 }).map((a) => a.join('')) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')) },
  { weight: 1, arbitrary: fc.constantFrom('', '{', 'null', '[]', '"x"', '{"apiVersion":', '\u0000', '['.repeat(2000), '{"a":'.repeat(600) + '1' + '}'.repeat(600)) },
);

interface FuzzRequest {
  method: string;
  path: string;
  query: string;
  contentType?: string;
  accept?: string;
  authorization?: string;
  body?: string;
}


const writeContentType = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('application/json', 'application/yaml') }, fc.constantFrom(...contentTypes));
const patchContentType = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/apply-patch+yaml') },
  fc.constantFrom(...contentTypes),
);
/** A body that fits its content type most of the time (so that it reaches the code behind the decoder). */
function bodyFor(contentType: string, path: string): fc.Arbitrary<string> {
  const m = manifestFor(path);
  const fitting =
    contentType === 'application/json-patch+json'
      ? jsonPatch.map((p) => JSON.stringify(p))
      : contentType.includes('yaml')
        ? fc.oneof(m.map((o) => YAML.stringify(o)), fc.array(yamlFragment, { maxLength: 60 }).map((a) => a.join('')))
        : m.map((o) => JSON.stringify(o));
  return fc.oneof({ weight: 4, arbitrary: fitting }, body);
}

const kubeRequest: fc.Arbitrary<FuzzRequest> = fc
  .oneof({ weight: 10, arbitrary: fc.constantFrom('GET', 'GET', 'POST', 'PUT', 'PATCH', 'PATCH', 'DELETE') }, fc.constantFrom('HEAD', 'OPTIONS'))
  .chain((method) => fc.record({
    method: fc.constant(method),
    path: kubePathFor(method),
    query: kubeQuery,
    accept: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('application/json', 'application/yaml', 'application/json;as=Table;v=v1;g=meta.k8s.io') }, fc.constantFrom(...accepts)),
    authorization: fc.oneof({ weight: 10, arbitrary: fc.constant('admin') }, fc.constantFrom('none', 'Bearer nope', 'Basic YTpi', 'Bearer ' + 'x'.repeat(5000))),
  }))
  .chain((r) =>
    (r.method === 'PATCH' ? patchContentType : writeContentType).chain((contentType) =>
      bodyFor(contentType, r.path).map((b): FuzzRequest => ({ ...r, contentType, body: r.method === 'GET' || r.method === 'HEAD' ? undefined : b })),
    ),
  );

const machinePath = fc.oneof(
  fc.constantFrom('/boot/v1/ipxe', '/boot/v1/ca.crt', '/agent/v1/register', '/agent/v1/next', '/agent/v1/progress', '/healthz', '/livez', '/readyz'),
  hostileSegment.map((s) => `/boot/v1/assets/${s}`),
  fc.tuple(hostileSegment, fc.constantFrom('meta-data', 'user-data', 'vendor-data', 'phone-home', '..', '')).map(([t, leaf]) => `/metadata/nocloud/${t}/${leaf}`),
  fc.array(hostileSegment, { maxLength: 4 }).map((segs) => `/${['agent', 'v1', ...segs].join('/')}`),
  fc.array(hostileSegment, { maxLength: 4 }).map((segs) => `/${['metadata', ...segs].join('/')}`),
);

const agentBody = fc.oneof(
  fc.record({ bootId: fc.oneof(fc.string(), fc.integer()), inventory: fc.jsonValue({ maxDepth: 3 }), action: fc.string(), state: fc.constantFrom('succeeded', 'failed', 'running', 'x'), message: fc.string(), progress: fc.oneof(fc.double(), fc.string()) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  body,
);

// ---------------------------------------------------------------------------------------------------------
// Sending and judging.

interface Outcome {
  status: number;
  contentType: string;
  text: string;
}

async function send(r: FuzzRequest): Promise<Outcome> {
  const headers: Record<string, string> = {};
  if (r.authorization === 'admin') headers.authorization = `Bearer ${server.token}`;
  else if (r.authorization === 'agent') headers.authorization = `Bearer ${agentToken}`;
  else if (r.authorization !== 'none') headers.authorization = r.authorization!;
  if (r.accept) headers.accept = r.accept;
  const hasBody = r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD';
  if (hasBody && r.contentType) headers['content-type'] = r.contentType;
  const controller = new AbortController();
  // A hang is a failure: every answer (or, for a watch, its headers) must come well within this.
  const timer = setTimeout(() => controller.abort(), 15_000);
  try {
    const res = await fetch(server.plainUrl + r.path + r.query, {
      method: r.method,
      headers,
      body: hasBody ? Buffer.from(r.body!, 'utf8') : undefined,
      signal: controller.signal,
    });
    const contentType = res.headers.get('content-type') ?? '';
    // A watch streams: its status and first bytes are the answer; let go of the rest.
    const streaming = /[?&]watch=(true|1|True)(&|$)/.test(r.query) && res.status === 200;
    let text = '';
    if (streaming) await res.body?.cancel();
    else text = await res.text();
    return { status: res.status, contentType, text };
  } finally {
    clearTimeout(timer);
  }
}

function describe(r: FuzzRequest, o?: Outcome): string {
  const shown = { ...r, path: r.path.length > 300 ? `${r.path.slice(0, 300)}…(${r.path.length})` : r.path, body: r.body && r.body.length > 500 ? `${r.body.slice(0, 500)}…(${r.body.length})` : r.body };
  return `${JSON.stringify(shown)}${o ? `\n→ ${o.status} ${o.contentType} ${o.text.slice(0, 500)}` : ''}`;
}

const statusCounts = new Map<number, number>();

async function judge(r: FuzzRequest, kube: boolean): Promise<void> {
  let o: Outcome;
  try {
    o = await send(r);
  } catch (e) {
    throw new Error(`no answer (${(e as Error).message}; server exit code ${server.proc.exitCode}) for ${describe(r)}\n${server.stderr().slice(-1500)}`);
  }
  statusCounts.set(o.status, (statusCounts.get(o.status) ?? 0) + 1);
  if (process.env.FUZZ_TRACE) console.log(`# ${r.method} ${r.path.slice(0, 80)}${r.query.slice(0, 60)} ${r.contentType ?? ''} → ${o.status} ${o.text.slice(0, 120).replace(/\s+/g, ' ')}`);
  // The one 5xx kube-apiserver gives by design: a list at a resourceVersion the server has not reached yet waits,
  // then answers 504 Timeout "Too large resource version" with retryAfterSeconds (client-go's reflectors retry).
  const tooLargeRv = o.status === 504 && /"reason":"Timeout"/.test(o.text) && /Too large resource version/.test(o.text);
  assert.ok(o.status < 500 || tooLargeRv, `a ${o.status} for ${describe(r, o)}`);
  // The kube API answers every error as a Status (a HEAD answer has no body to check).
  // 414 and 431 come from Node's HTTP parser (URL or headers over its limits), before any route.
  if (kube && o.status >= 400 && o.status !== 414 && o.status !== 431 && r.method !== 'HEAD' && (r.path.startsWith('/api') || r.path.startsWith('/openapi'))) {
    let status: { kind?: string; code?: number } | undefined;
    try {
      status = JSON.parse(o.text);
    } catch {
      status = undefined;
    }
    assert.equal(status?.kind, 'Status', `not a Status for ${describe(r, o)}`);
    assert.equal(status?.code, o.status, `the Status code differs from the HTTP status for ${describe(r, o)}`);
  }
}

async function assertAlive(): Promise<void> {
  assert.equal(server.proc.exitCode, null, `the server exited:\n${server.stderr().slice(-2000)}`);
  const ready = await fetch(server.plainUrl + '/readyz', { signal: AbortSignal.timeout(15_000) });
  assert.equal(ready.status, 200);
}

/**
 * Sends `RUNS` generated requests one after the other (or as many as fit in TIME_LIMIT_MS). The requests are drawn
 * with fc.sample from a fixed seed rather than run through fc.assert: shrinking would replay against a server
 * whose state the failing run changed, and the failure message shows the request as sent.
 */
async function fuzz(arb: fc.Arbitrary<FuzzRequest>, salt: number, kube: boolean): Promise<number> {
  const requests = fc.sample(arb, { seed: SEED + salt, numRuns: RUNS });
  const deadline = Date.now() + TIME_LIMIT_MS;
  let sent = 0;
  for (const r of requests) {
    if (Date.now() > deadline) break;
    await judge(r, kube);
    sent++;
  }
  return sent;
}

test(`fuzz: the kube API never answers 5xx, always with a Status (seed ${SEED})`, async () => {
  const sent = await fuzz(kubeRequest, 0, true);
  console.log(`# kube API: ${sent} requests`);
  assert.ok(sent >= RUNS / 4, `only ${sent} requests in ${TIME_LIMIT_MS} ms`);
  await assertAlive();
});

test(`fuzz: the machine-facing paths never answer 5xx (seed ${SEED})`, async () => {
  const machineQuery = queryOf(['mac', 'wait', 'labelSelector', 'limit'], 2);
  const machineRequest: fc.Arbitrary<FuzzRequest> = fc.oneof(
    // What machines send, with generated parameters, tokens and bodies.
    fc.record({ method: fc.constant('GET'), path: fc.constant('/boot/v1/ipxe'), query: queryOf(['mac', 'mac', 'wait'], 2), authorization: fc.constant('none') }),
    fc.record({
      method: fc.constant('POST'),
      path: fc.constantFrom('/agent/v1/register', '/agent/v1/next', '/agent/v1/progress'),
      // A long poll without `wait` holds for the server's maximum (legitimately): keep it at most a second.
      query: fc.oneof(fc.constant('?wait=0'), machineQuery).map((q) => (q.includes('wait=') ? q : `${q}${q ? '&' : '?'}wait=0`)),
      contentType: fc.constantFrom('application/json', 'application/json', 'text/plain', 'application/yaml'),
      authorization: fc.constantFrom('agent', 'agent', 'agent', 'none', 'admin', 'Bearer nope', 'Bearer ' + 'y'.repeat(3000)),
      body: agentBody,
    }),
    fc.record({
      method: fc.constantFrom('GET', 'POST'),
      path: fc.tuple(hostileSegment, fc.constantFrom('meta-data', 'user-data', 'vendor-data', 'phone-home', '..', '')).map(([t, leaf]) => `/metadata/nocloud/${t}/${leaf}`),
      query: machineQuery,
      contentType: fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain'),
      authorization: fc.constant('none'),
      body: agentBody,
    }),
    // Anything else under those prefixes.
    fc.record(
      {
        method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
        path: machinePath,
        query: machineQuery,
        contentType: fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/yaml', ''),
        accept: fc.constantFrom('application/json', '*/*', 'text/html', ''),
        authorization: fc.constantFrom('agent', 'none', 'admin', 'Bearer nope'),
        body: agentBody,
      },
      { requiredKeys: ['method', 'path', 'query', 'authorization'] },
    ),
  );
  const sent = await fuzz(machineRequest, 1, false);
  console.log(`# machine-facing paths: ${sent} requests`);
  assert.ok(sent >= RUNS / 4, `only ${sent} requests in ${TIME_LIMIT_MS} ms`);
  await assertAlive();
});

test('after the fuzzing: the server is alive, answers normally and its memory is bounded', async () => {
  await assertAlive();
  const got = await api(server, 'GET', '/api/v1/namespaces/default/configmaps');
  assert.equal(got.status, 200, got.text.slice(0, 300));
  const grownMB = rssMB() - baselineMB;
  const counts = [...statusCounts.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(' ');
  console.log(`# fuzz answers by status: ${counts}`);
  console.log(`# server RSS: ${baselineMB.toFixed(0)} MB before, ${grownMB >= 0 ? '+' : ''}${grownMB.toFixed(0)} MB after the fuzzing (bound ${RSS_BOUND_MB} MB)`);
  assert.ok(statusCounts.size > 3, 'the generators reach several kinds of answers');
  assert.ok(grownMB < RSS_BOUND_MB, `RSS grew by ${grownMB.toFixed(0)} MB`);
});

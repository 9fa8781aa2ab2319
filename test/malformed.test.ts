// Malformed and hostile requests against the real server: each one gets a 4xx `Status` whose code, reason and
// message say what was wrong — never a 5xx, never a hang — and the server keeps serving afterwards.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { api, startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;

before(async () => {
  server = await startTestServer();
  // Fixtures the patch cases work on.
  const cm = await api(server, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'target' }, data: { a: '1' } });
  assert.equal(cm.status, 201, cm.text);
});

after(async () => {
  await server?.stop();
  server?.cleanup();
});

const CM = '/api/v1/namespaces/default/configmaps';
const PLANS = '/apis/metalplane.dev/v1alpha1/plans';

function configMap(name: string, data: unknown = { k: 'v' }): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data };
}

interface Case {
  name: string;
  method: string;
  path: string;
  /** an object is sent as JSON; a string as is (with `contentType`) */
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
  /** undefined: the admin token; null: no Authorization header; a string: that header value */
  authorization?: string | null;
  code: number;
  reason: string;
  message: RegExp;
}

const cases: Case[] = [
  // ---- bodies that do not decode
  { name: 'broken JSON', method: 'POST', path: CM, body: '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": ', contentType: 'application/json', code: 400, reason: 'BadRequest', message: /invalid JSON/ },
  { name: 'broken YAML', method: 'POST', path: CM, body: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [broken\n', contentType: 'application/yaml', code: 400, reason: 'BadRequest', message: /invalid YAML/ },
  { name: 'YAML with two documents', method: 'POST', path: CM, body: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n', contentType: 'application/yaml', code: 400, reason: 'BadRequest', message: /exactly one YAML document, found 2/ },
  {
    name: 'YAML alias bomb',
    method: 'POST',
    path: CM,
    contentType: 'application/yaml',
    body: ['a: &a ["x","x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`)].join('\n') + '\n',
    code: 400,
    reason: 'BadRequest',
    message: /alias/i,
  },
  { name: 'a JSON array body', method: 'POST', path: CM, body: [configMap('in-an-array')], code: 400, reason: 'BadRequest', message: /must be a JSON object/ },
  { name: 'a JSON string body', method: 'POST', path: CM, body: '"just a string"', contentType: 'application/json', code: 400, reason: 'BadRequest', message: /must be a JSON object/ },
  { name: 'an empty body', method: 'POST', path: CM, body: '', contentType: 'application/json', code: 400, reason: 'BadRequest', message: /body is empty/ },
  { name: 'metadata that is not an object', method: 'POST', path: CM, body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: 'x' }, code: 400, reason: 'BadRequest', message: /metadata must be an object/ },
  { name: 'a truncated protobuf body', method: 'POST', path: CM, body: 'k8s\x00\x0a\x0f', contentType: 'application/vnd.kubernetes.protobuf', code: 400, reason: 'BadRequest', message: /invalid protobuf/ },
  { name: 'a CBOR body', method: 'POST', path: CM, body: '\xa1', contentType: 'application/cbor', code: 415, reason: 'UnsupportedMediaType', message: /application\/cbor.*not supported/ },
  {
    name: 'deeply nested JSON',
    method: 'POST',
    path: CM,
    body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"data":{"a":"b"},"extra":${'['.repeat(20_000)}${']'.repeat(20_000)}}`,
    contentType: 'application/json',
    code: 400,
    reason: 'BadRequest',
    message: /nested more than \d+ levels deep/,
  },
  {
    name: 'deeply nested YAML',
    method: 'POST',
    path: CM,
    body: `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep-yaml}\nextra: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`,
    contentType: 'application/yaml',
    code: 400,
    reason: 'BadRequest',
    message: /invalid YAML|nested more than/,
  },
  {
    name: 'deeply nested merge patch',
    method: 'PATCH',
    path: `${CM}/target`,
    body: `{"metadata":{"annotations":${'{"x":'.repeat(5000)}1${'}'.repeat(5000)}}}`,
    contentType: 'application/merge-patch+json',
    code: 400,
    reason: 'BadRequest',
    message: /nested more than \d+ levels deep/,
  },

  // ---- wrong types and bad names
  { name: 'ConfigMap data: 5', method: 'POST', path: CM, body: configMap('wrong-type', 5), code: 422, reason: 'Invalid', message: /data/ },
  {
    name: 'Plan spec.specs.cpus: "x"',
    method: 'POST',
    path: PLANS,
    body: { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Plan', metadata: { name: 'wrong-cpus' }, spec: { specs: { cpus: 'x' } } },
    code: 422,
    reason: 'Invalid',
    message: /spec\.specs\.cpus/,
  },
  { name: 'name Bad_Name', method: 'POST', path: CM, body: configMap('Bad_Name'), code: 422, reason: 'Invalid', message: /metadata\.name: Invalid value: "Bad_Name"/ },
  { name: 'name of 300 characters', method: 'POST', path: CM, body: configMap('a'.repeat(300)), code: 422, reason: 'Invalid', message: /metadata\.name.*no more than 253 characters/ },
  { name: 'Namespace name with a dot', method: 'POST', path: '/api/v1/namespaces', body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a.b' } }, code: 422, reason: 'Invalid', message: /metadata\.name.*RFC 1123 label/ },
  { name: 'metadata.generateName that is an object', method: 'POST', path: CM, body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { generateName: {} } }, code: 422, reason: 'Invalid', message: /metadata\.generateName.*must be of type string/ },
  { name: 'metadata.ownerReferences that is a string', method: 'POST', path: CM, body: { ...configMap('owners'), metadata: { name: 'owners', ownerReferences: 'x' } }, code: 422, reason: 'Invalid', message: /metadata\.ownerReferences.*must be of type array/ },
  { name: 'metadata.finalizers of numbers', method: 'POST', path: CM, body: { ...configMap('fins'), metadata: { name: 'fins', finalizers: [1, 2] } }, code: 422, reason: 'Invalid', message: /metadata\.finalizers\[0\].*must be of type string/ },
  { name: 'metadata.annotations with an object value', method: 'POST', path: CM, body: { ...configMap('annos'), metadata: { name: 'annos', annotations: { a: { b: 1 } } } }, code: 422, reason: 'Invalid', message: /metadata\.annotations\.a.*must be of type string/ },
  { name: 'unknown field with fieldValidation=Strict', method: 'POST', path: `${CM}?fieldValidation=Strict`, body: { ...configMap('strict'), bogus: 1 }, code: 400, reason: 'BadRequest', message: /unknown field "bogus"/ },
  { name: 'an unknown kind in the body', method: 'POST', path: CM, body: { apiVersion: 'v1', kind: 'Widget', metadata: { name: 'widget' } }, code: 400, reason: 'BadRequest', message: /kind in the data \(Widget\) does not match the expected kind \(ConfigMap\)/ },
  { name: 'an unknown apiVersion in the body', method: 'POST', path: PLANS, body: { apiVersion: 'metalplane.dev/v9', kind: 'Plan', metadata: { name: 'v9' }, spec: { specs: {} } }, code: 400, reason: 'BadRequest', message: /API version in the data \(metalplane\.dev\/v9\)/ },
  { name: 'namespace in body differs from the URL', method: 'POST', path: CM, body: { ...configMap('elsewhere'), metadata: { name: 'elsewhere', namespace: 'kube-system' } }, code: 400, reason: 'BadRequest', message: /does not match the namespace/ },

  // ---- size
  { name: 'a body over 3 MiB', method: 'POST', path: CM, body: configMap('huge', { big: 'x'.repeat(3 * 1024 * 1024 + 1024) }), code: 413, reason: 'RequestEntityTooLarge', message: /too large|3 MiB/i },

  // ---- selectors
  { name: 'bad label selector', method: 'GET', path: `${CM}?labelSelector=${encodeURIComponent('app in (a,')}`, code: 400, reason: 'BadRequest', message: /unable to parse requirement|expected/ },
  { name: 'bad label selector key', method: 'GET', path: `${CM}?labelSelector=${encodeURIComponent('Bad Key=x')}`, code: 400, reason: 'BadRequest', message: /found|expected|Invalid value/ },
  { name: 'field selector on an unknown field', method: 'GET', path: `${CM}?fieldSelector=${encodeURIComponent('spec.nope=x')}`, code: 400, reason: 'BadRequest', message: /field label not supported: spec\.nope/ },
  { name: 'field selector that does not parse', method: 'GET', path: `${CM}?fieldSelector=${encodeURIComponent('metadata.name')}`, code: 400, reason: 'BadRequest', message: /invalid selector|can't understand/ },

  // ---- patches
  { name: 'JSON patch with an unknown op', method: 'PATCH', path: `${CM}/target`, body: '[{"op":"frobnicate","path":"/data/a","value":"2"}]', contentType: 'application/json-patch+json', code: 400, reason: 'BadRequest', message: /"op" must be one of .*frobnicate/ },
  { name: 'JSON patch that is not an array', method: 'PATCH', path: `${CM}/target`, body: '{"op":"add"}', contentType: 'application/json-patch+json', code: 400, reason: 'BadRequest', message: /must be an array of operations/ },
  { name: 'JSON patch test failure', method: 'PATCH', path: `${CM}/target`, body: '[{"op":"test","path":"/data/a","value":"not-1"}]', contentType: 'application/json-patch+json', code: 422, reason: 'Invalid', message: /test \/data\/a.*not equal/ },
  { name: 'JSON patch removing a missing path', method: 'PATCH', path: `${CM}/target`, body: '[{"op":"remove","path":"/data/nope"}]', contentType: 'application/json-patch+json', code: 422, reason: 'Invalid', message: /\/data\/nope does not exist/ },
  { name: 'merge patch that is broken JSON', method: 'PATCH', path: `${CM}/target`, body: '{"data":', contentType: 'application/merge-patch+json', code: 400, reason: 'BadRequest', message: /invalid JSON/ },
  { name: 'patch with an unsupported content type', method: 'PATCH', path: `${CM}/target`, body: '{"data":{"a":"2"}}', contentType: 'text/plain', code: 415, reason: 'UnsupportedMediaType', message: /patch content type "text\/plain" is not supported/ },
  { name: 'merge patch changing the name', method: 'PATCH', path: `${CM}/target`, body: '{"metadata":{"name":"other"}}', contentType: 'application/merge-patch+json', code: 400, reason: 'BadRequest', message: /does not match the name/ },
  { name: 'merge patch making metadata a number', method: 'PATCH', path: `${CM}/target`, body: '{"metadata":5}', contentType: 'application/merge-patch+json', code: 400, reason: 'BadRequest', message: /metadata an object/ },
  { name: 'JSON patch replacing metadata with a number', method: 'PATCH', path: `${CM}/target`, body: '[{"op":"replace","path":"/metadata","value":5}]', contentType: 'application/json-patch+json', code: 400, reason: 'BadRequest', message: /metadata an object/ },
  { name: 'JSON patch replacing the whole object', method: 'PATCH', path: `${CM}/target`, body: '[{"op":"replace","path":"","value":5}]', contentType: 'application/json-patch+json', code: 400, reason: 'BadRequest', message: /must produce a JSON object/ },
  { name: 'JSON patch setting a bad resourceVersion', method: 'PATCH', path: `${CM}/target`, body: '[{"op":"replace","path":"/metadata/resourceVersion","value":"zz"}]', contentType: 'application/json-patch+json', code: 400, reason: 'BadRequest', message: /invalid resourceVersion "zz"/ },
  { name: 'strategic merge patch that is an array', method: 'PATCH', path: `${CM}/target`, body: '[1]', contentType: 'application/strategic-merge-patch+json', code: 400, reason: 'BadRequest', message: /must be a JSON object/ },
  { name: 'apply patch that is a list', method: 'PATCH', path: `${CM}/target?fieldManager=t`, body: '- a\n- b\n', contentType: 'application/apply-patch+yaml', code: 400, reason: 'BadRequest', message: /single object/ },
  { name: 'apply patch with metadata: 5', method: 'PATCH', path: `${CM}/target?fieldManager=t`, body: '{"apiVersion":"v1","kind":"ConfigMap","metadata":5}', contentType: 'application/apply-patch+yaml', code: 400, reason: 'BadRequest', message: /metadata must be an object/ },
  { name: 'apply patch of another kind', method: 'PATCH', path: `${CM}/target?fieldManager=t`, body: 'apiVersion: v1\nkind: Secret\nmetadata: {name: target}\n', contentType: 'application/apply-patch+yaml', code: 400, reason: 'BadRequest', message: /v1\/Secret does not match .*v1\/ConfigMap/ },
  { name: 'apply patch without fieldManager', method: 'PATCH', path: `${CM}/target`, body: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: target}\n', contentType: 'application/apply-patch+yaml', code: 400, reason: 'BadRequest', message: /fieldManager is required/ },
  { name: 'force on a merge patch', method: 'PATCH', path: `${CM}/target?force=true`, body: '{}', contentType: 'application/merge-patch+json', code: 400, reason: 'BadRequest', message: /force is only allowed for apply/ },
  { name: 'patch of a missing object', method: 'PATCH', path: `${CM}/missing`, body: '{}', contentType: 'application/merge-patch+json', code: 404, reason: 'NotFound', message: /configmaps "missing" not found/ },

  // ---- unknown things
  { name: 'unknown core resource', method: 'GET', path: '/api/v1/namespaces/default/widgets', code: 404, reason: 'NotFound', message: /widgets/ },
  { name: 'unknown resource in our group', method: 'GET', path: '/apis/metalplane.dev/v1alpha1/widgets', code: 404, reason: 'NotFound', message: /widgets/ },
  { name: 'unknown group', method: 'GET', path: '/apis/nope.example.com/v1/things', code: 404, reason: 'NotFound', message: /nope\.example\.com/ },
  { name: 'unknown group discovery', method: 'GET', path: '/apis/nope.example.com', code: 404, reason: 'NotFound', message: /nope\.example\.com/ },
  { name: 'unknown version', method: 'GET', path: '/apis/metalplane.dev/v9', code: 404, reason: 'NotFound', message: /metalplane\.dev\/v9/ },
  { name: 'unknown path', method: 'GET', path: '/apiz/v1', code: 404, reason: 'NotFound', message: /\/apiz\/v1/ },
  { name: 'cluster-scoped kind under a namespace', method: 'GET', path: '/apis/metalplane.dev/v1alpha1/namespaces/default/plans', code: 404, reason: 'NotFound', message: /plans/ },
  { name: 'missing object', method: 'GET', path: `${CM}/does-not-exist`, code: 404, reason: 'NotFound', message: /configmaps "does-not-exist" not found/ },
  { name: 'create in a missing namespace', method: 'POST', path: '/api/v1/namespaces/no-such-ns/configmaps', body: configMap('x'), code: 404, reason: 'NotFound', message: /no-such-ns/ },
  { name: 'unknown subresource', method: 'GET', path: `${CM}/target/scale`, code: 404, reason: 'NotFound', message: /scale/ },
  { name: 'a name longer than any valid one', method: 'GET', path: `${CM}/${'a'.repeat(300)}`, code: 404, reason: 'NotFound', message: /configmaps "a{300}" not found/ },
  { name: 'bad percent-encoding in the path', method: 'GET', path: `${CM}/%zz`, code: 400, reason: 'BadRequest', message: /%zz|percent|not a valid/i },

  // ---- query parameters
  { name: 'bad resourceVersion on list', method: 'GET', path: `${CM}?resourceVersion=abc`, code: 400, reason: 'BadRequest', message: /invalid resourceVersion "abc"/ },
  { name: 'bad resourceVersion on watch', method: 'GET', path: `${CM}?watch=true&resourceVersion=-5`, code: 400, reason: 'BadRequest', message: /invalid resourceVersion "-5"/ },
  { name: 'bad resourceVersion in an update body', method: 'PUT', path: `${CM}/target`, body: { ...configMap('target'), metadata: { name: 'target', resourceVersion: 'abc' } }, code: 400, reason: 'BadRequest', message: /resourceVersion "abc"/ },
  { name: 'bad resourceVersionMatch', method: 'GET', path: `${CM}?resourceVersion=1&resourceVersionMatch=Sometimes`, code: 400, reason: 'BadRequest', message: /resourceVersionMatch "Sometimes"/ },
  { name: 'bad continue token', method: 'GET', path: `${CM}?limit=1&continue=not-a-token`, code: 400, reason: 'BadRequest', message: /invalid continue token/ },
  { name: 'continue token of another list', method: 'GET', path: `${CM}?limit=1&continue=${Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: 1, start: '/registry/secrets/x' })).toString('base64url')}`, code: 400, reason: 'BadRequest', message: /invalid continue token/ },
  { name: 'limit beyond any integer', method: 'GET', path: `${CM}?limit=99999999999999999999999`, code: 400, reason: 'BadRequest', message: /limit.*too large/ },
  { name: 'negative limit', method: 'GET', path: `${CM}?limit=-1`, code: 400, reason: 'BadRequest', message: /limit/ },
  { name: 'bad timeoutSeconds on watch', method: 'GET', path: `${CM}?watch=true&timeoutSeconds=soon`, code: 400, reason: 'BadRequest', message: /timeoutSeconds.*"soon"/ },
  { name: 'bad watch value', method: 'GET', path: `${CM}?watch=maybe`, code: 400, reason: 'BadRequest', message: /watch: "maybe"/ },
  { name: 'bad dryRun value', method: 'POST', path: `${CM}?dryRun=Everything`, body: configMap('dry'), code: 400, reason: 'BadRequest', message: /dry run value: "Everything"/ },
  { name: 'bad fieldValidation value', method: 'POST', path: `${CM}?fieldValidation=Loose`, body: configMap('fv'), code: 400, reason: 'BadRequest', message: /fieldValidation value "Loose"/ },
  { name: 'bad propagationPolicy', method: 'DELETE', path: `${CM}/target?propagationPolicy=Sideways`, code: 422, reason: 'Invalid', message: /Unsupported value: "Sideways"/ },
  { name: 'DeleteOptions.dryRun that is not a list', method: 'DELETE', path: `${CM}/target`, body: { dryRun: 'All' }, code: 400, reason: 'BadRequest', message: /dryRun must be a list/ },
  { name: 'DeleteOptions.dryRun with a bad value', method: 'DELETE', path: `${CM}/target`, body: { dryRun: ['Some'] }, code: 400, reason: 'BadRequest', message: /dry run value: "Some"/ },
  { name: 'DeleteOptions.preconditions.uid that is a number', method: 'DELETE', path: `${CM}/target`, body: { preconditions: { uid: 5 } }, code: 400, reason: 'BadRequest', message: /preconditions/ },
  { name: 'DeleteOptions that is a list', method: 'DELETE', path: `${CM}/target`, body: [1], code: 400, reason: 'BadRequest', message: /DeleteOptions must be a JSON object/ },
  { name: 'unacceptable Accept header', method: 'GET', path: CM, headers: { accept: 'text/html' }, code: 406, reason: 'NotAcceptable', message: /text\/html/ },
  { name: 'method not allowed on a collection', method: 'PUT', path: CM, body: configMap('x'), code: 405, reason: 'MethodNotAllowed', message: /PUT is not allowed/ },

  // ---- authentication
  { name: 'missing bearer token', method: 'GET', path: CM, authorization: null, code: 401, reason: 'Unauthorized', message: /bearer token is required/ },
  { name: 'invalid bearer token', method: 'GET', path: CM, authorization: 'Bearer mpt_not-a-real-token', code: 401, reason: 'Unauthorized', message: /token is not valid/ },
  { name: 'basic auth instead of a bearer token', method: 'GET', path: CM, authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}`, code: 401, reason: 'Unauthorized', message: /only bearer tokens/ },
  { name: 'no token on discovery', method: 'GET', path: '/apis', authorization: null, code: 401, reason: 'Unauthorized', message: /bearer token/ },
];

for (const c of cases) {
  test(`${c.name} → ${c.code} ${c.reason}`, async () => {
    const headers: Record<string, string> = { ...c.headers };
    if (c.contentType) headers['content-type'] = c.contentType;
    else if (c.body !== undefined && typeof c.body !== 'string') headers['content-type'] = 'application/json';
    if (c.authorization === undefined) headers.authorization = `Bearer ${server.token}`;
    else if (c.authorization !== null) headers.authorization = c.authorization;
    const res = await fetch(server.plainUrl + c.path, {
      method: c.method,
      headers,
      // Bytes, not a string: fetch would add `text/plain` to a string body that has no Content-Type.
      body: c.body === undefined ? undefined : Buffer.from(typeof c.body === 'string' ? c.body : JSON.stringify(c.body)),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let body: { kind?: string; apiVersion?: string; status?: string; code?: number; reason?: string; message?: string };
    try {
      body = JSON.parse(text);
    } catch {
      assert.fail(`${res.status}: the body is not JSON: ${text.slice(0, 300)}`);
    }
    const summary = `${res.status} ${text.slice(0, 500)}`;
    assert.ok(res.status < 500, `a 5xx for a client mistake: ${summary}`);
    assert.equal(res.status, c.code, summary);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/, summary);
    assert.equal(body.kind, 'Status', summary);
    assert.equal(body.apiVersion, 'v1', summary);
    assert.equal(body.status, 'Failure', summary);
    assert.equal(body.code, c.code, summary);
    assert.equal(body.reason, c.reason, summary);
    assert.match(body.message ?? '', c.message, summary);
    if (c.code === 401) assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/, summary);
  });
}

test('a body over 3 MiB sent chunked (no Content-Length) → 413', async () => {
  const chunk = Buffer.alloc(256 * 1024, 'x');
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent === 0) controller.enqueue(Buffer.from('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"huge-chunked"},"data":{"big":"'));
      if (sent >= 4 * 1024 * 1024) {
        controller.enqueue(Buffer.from('"}}'));
        controller.close();
        return;
      }
      controller.enqueue(chunk);
      sent += chunk.length;
    },
  });
  // The server answers once it has read 3 MiB and closes the connection gracefully: the client finishes sending
  // and reads the answer, never a reset.
  const res = await fetch(server.plainUrl + CM, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
    body: stream,
    duplex: 'half',
    signal: AbortSignal.timeout(15_000),
  } as RequestInit & { duplex: 'half' });
  const body = (await res.json()) as { kind: string; code: number; reason: string };
  assert.equal(res.status, 413);
  assert.equal(body.kind, 'Status');
  assert.equal(body.reason, 'RequestEntityTooLarge');
  assert.equal((await api(server, 'GET', `${CM}/huge-chunked`)).status, 404);
});

// The answer comes after the first KiB; the rest of the 4 MiB is sent only once it has arrived, and later than
// Node would have destroyed the socket (a reset: EPIPE or ECONNRESET on the client's next write).
const refusedMidBody = [
  { why: 'its body is over 3 MiB', authorization: `Bearer TOKEN`, code: 413, reason: 'RequestEntityTooLarge' },
  { why: 'it has no token', authorization: undefined, code: 401, reason: 'Unauthorized' },
];
for (const c of refusedMidBody) {
  test(`a client refused because ${c.why} (${c.code}) finishes sending, reads the answer, and is not reset`, async () => {
    const { port, hostname } = new URL(server.plainUrl);
    const socket = connect({ port: Number(port), host: hostname, allowHalfOpen: true });
    await once(socket, 'connect');
    let text = '';
    let error: NodeJS.ErrnoException | undefined;
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('error', (e) => (error ??= e));
    const closed = once(socket, 'close');
    const total = 4 * 1024 * 1024;
    const auth = c.authorization ? `Authorization: ${c.authorization.replace('TOKEN', server.token)}\r\n` : '';
    socket.write(`POST ${CM} HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: ${total}\r\n\r\n` + 'x'.repeat(1024));
    const deadline = Date.now() + 10_000;
    while (!/\r\n\r\n\{.*\}$/s.test(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.match(text, new RegExp(`^HTTP/1\\.1 ${c.code} `));
    assert.match(text, /\r\nconnection: close\r\n/i);
    assert.match(text, new RegExp(`"reason":"${c.reason}"`));
    await new Promise((r) => setTimeout(r, 100));
    const chunk = Buffer.alloc(64 * 1024, 'x');
    for (let sent = 1024; sent < total && !socket.destroyed; sent += chunk.length) {
      if (!socket.write(chunk.subarray(0, Math.min(chunk.length, total - sent)))) await Promise.race([once(socket, 'drain').catch(() => undefined), closed]);
    }
    socket.end();
    await closed;
    assert.equal(error, undefined, `the client was reset while sending the rest of its body: ${error?.code}`);
  });
}

test('after all of that the server is ready and a normal create works', async () => {
  const ready = await fetch(server.plainUrl + '/readyz');
  assert.equal(ready.status, 200);
  const created = await api(server, 'POST', CM, configMap('after-malformed', { ok: 'yes' }));
  assert.equal(created.status, 201, created.text);
  const got = await api(server, 'GET', `${CM}/after-malformed`);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body.data, { ok: 'yes' });
  // None of the rejected creates left anything behind.
  const list = await api(server, 'GET', CM);
  const names = (list.body.items as { metadata: { name: string } }[]).map((i) => i.metadata.name).sort();
  assert.deepEqual(names.filter((n) => n !== 'kube-root-ca.crt'), ['after-malformed', 'target']);
  const target = await api(server, 'GET', `${CM}/target`);
  assert.deepEqual(target.body.data, { a: '1' }, 'failed patches must not change the object');
  assert.equal(server.proc.exitCode, null, 'the server is still running');
});

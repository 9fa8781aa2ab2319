import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configMapKind, eventKind, namespaceKind, operatingSystemKind, planKind, secretKind } from './index.js';
import type { KindDeclaration, KubeObject } from './types.js';
import { compileValidator, FREE_FORM_LIMITS, isQualifiedName, MAX_OBJECT_BYTES, MAX_OBJECT_DEPTH, strictDecodingMessage, type FieldValidation } from './validation.js';
import { workflowKind } from './workflow.js';

function plan(spec: Record<string, unknown>, metadata: Record<string, unknown> = { name: 'c3.small.x86' }): KubeObject {
  return { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Plan', metadata, spec: { specs: {}, ...spec } };
}
/** `{x: {x: … 'leaf'}}`, `levels` objects deep. */
function nested(levels: number): unknown {
  let v: unknown = 'leaf';
  for (let i = 0; i < levels; i++) v = { x: v };
  return v;
}
function workflow(params: unknown, metadata: Record<string, unknown> = { name: 'wf', namespace: 'default' }): KubeObject {
  return {
    apiVersion: 'metalplane.dev/v1alpha1',
    kind: 'Workflow',
    metadata,
    spec: { hardware: 'm1', purpose: 'discover', actions: [{ name: 'a', executor: 'bmc', type: 'power-on-pxe', timeoutSeconds: 60, params }] },
  };
}
function cm(extra: Record<string, unknown>, metadata: Record<string, unknown> = { name: 'cfg', namespace: 'default' }): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata, ...extra };
}

interface Case {
  name: string;
  kind: KindDeclaration;
  obj: unknown;
  mode?: FieldValidation;
  old?: KubeObject;
  /** Expected causes as `field: message-prefix` (prefix match keeps rows short). */
  causes?: string[];
  unknownFields?: string[];
  warnings?: string[];
}

const subdomainMsg = 'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric';

const cases: Case[] = [
  { name: 'valid plan', kind: planKind, obj: plan({ pricing: { hour: 1 } }), causes: [] },
  {
    name: 'Strict: unknown fields reported by path, never as causes',
    kind: planKind,
    obj: plan({ foo: 1, specs: { cpus: [{ count: 1, type: 'x', bar: true }] } }),
    unknownFields: ['spec.specs.cpus[0].bar', 'spec.foo'],
    causes: [],
  },
  {
    name: 'Warn: unknown fields become warnings',
    kind: planKind,
    mode: 'Warn',
    obj: plan({ foo: 1 }),
    warnings: ['unknown field "spec.foo"'],
    unknownFields: [],
  },
  { name: 'Ignore: unknown fields dropped silently', kind: planKind, mode: 'Ignore', obj: plan({ foo: 1 }), warnings: [], unknownFields: [] },
  { name: 'unknown metadata field', kind: planKind, obj: plan({}, { name: 'x', colour: 'red' }), unknownFields: ['metadata.colour'] },
  {
    name: 'wrong type names the path',
    kind: planKind,
    obj: plan({ specs: { cpus: [{ count: 'two', type: 'x' }] } }),
    causes: ['spec.specs.cpus[0].count: Invalid value: "string": spec.specs.cpus[0].count in body must be of type integer: "string"'],
  },
  { name: 'required field', kind: planKind, obj: { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Plan', metadata: { name: 'x' }, spec: {} }, causes: ['spec.specs: Required value'] },
  {
    name: 'enum',
    kind: planKind,
    obj: plan({ specs: { drives: [{ count: 1, size: '1TB', type: 'TAPE' }] } }),
    causes: ['spec.specs.drives[0].type: Unsupported value: "TAPE": supported values: "HDD", "SSD", "NVME"'],
  },
  { name: 'minimum', kind: planKind, obj: plan({ pricing: { hour: -1 } }), causes: ['spec.pricing.hour: Invalid value: -1: spec.pricing.hour in body should be greater than or equal to 0'] },
  { name: 'bad name (subdomain)', kind: planKind, obj: plan({}, { name: 'Bad_Name' }), causes: [`metadata.name: ${subdomainMsg}`] },
  {
    name: 'namespace names are DNS labels (no dots)',
    kind: namespaceKind,
    obj: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a.b' } },
    causes: ['metadata.name: Invalid value: "a.b": a lowercase RFC 1123 label must consist of'],
  },
  { name: 'name too long', kind: namespaceKind, obj: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a'.repeat(64) } }, causes: ['metadata.name: Invalid value: "aaaa'] },
  { name: 'name or generateName required', kind: planKind, obj: plan({}, {}), causes: ['metadata.name: Required value: name or generateName is required'] },
  { name: 'generateName alone is fine', kind: planKind, obj: plan({}, { generateName: 'c3-' }), causes: [] },
  { name: 'namespaced kinds need a namespace', kind: configMapKind, obj: cm({}, { name: 'cfg' }), causes: ['metadata.namespace: Required value'] },
  { name: 'cluster kinds refuse one', kind: planKind, obj: plan({}, { name: 'x', namespace: 'default' }), causes: ['metadata.namespace: Forbidden: not allowed on this type'] },
  {
    name: 'label key and value rules',
    kind: planKind,
    obj: plan({}, { name: 'x', labels: { 'bad key': 'ok', 'example.com/ok': 'bad value', 'a/b/c': 'x' } }),
    causes: [
      'metadata.labels: Invalid value: "bad key": name part must consist of alphanumeric characters',
      'metadata.labels: Invalid value: "bad value": a valid label must be an empty string or consist of',
      'metadata.labels: Invalid value: "a/b/c": a qualified name must consist of',
    ],
  },
  { name: 'label value too long', kind: planKind, obj: plan({}, { name: 'x', labels: { a: 'v'.repeat(64) } }), causes: ['metadata.labels: Invalid value: "vvvv'] },
  {
    name: 'annotations total size',
    kind: planKind,
    obj: plan({}, { name: 'x', annotations: { big: 'x'.repeat(256 * 1024) } }),
    causes: ['metadata.annotations: Too long: may not be more than 262144 bytes'],
  },
  {
    name: 'finalizers must be qualified',
    kind: planKind,
    obj: plan({}, { name: 'x', finalizers: ['metalplane.dev/cleanup', 'mine'] }),
    causes: ['metadata.finalizers[1]: Invalid value: "mine": name is neither a standard finalizer name nor is it fully qualified'],
  },
  { name: 'status is validated too', kind: planKind, obj: { ...plan({}), status: { capacity: [{ metro: 'da', available: 'lots' }] } }, causes: ['status.capacity[0].available: Invalid value: "string"'] },
  { name: 'config keys', kind: configMapKind, obj: cm({ data: { 'bad key': 'x' } }), causes: ['data[bad key]: Invalid value: "bad key": a valid config key must consist of'] },
  { name: 'data/binaryData overlap', kind: configMapKind, obj: cm({ data: { a: 'x' }, binaryData: { a: 'eA==' } }), causes: ['binaryData[a]: Invalid value: "a": duplicate of key present in data'] },
  { name: 'binaryData must be base64', kind: configMapKind, obj: cm({ binaryData: { a: 'not base64!' } }), causes: ['binaryData.a: Invalid value: "not base64!": binaryData.a in body must be of type byte'] },
  {
    name: 'immutable configmap data cannot change',
    kind: configMapKind,
    obj: cm({ immutable: true, data: { a: '2' } }),
    old: cm({ immutable: true, data: { a: '1' } }),
    causes: ['data: Forbidden: field is immutable when `immutable` is set'],
  },
  {
    name: 'secret type is immutable',
    kind: secretKind,
    obj: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'd' }, type: 'kubernetes.io/ssh-auth', data: { 'ssh-privatekey': 'eA==' } },
    old: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'd' }, type: 'Opaque' },
    causes: ['type: Invalid value: "kubernetes.io/ssh-auth": field is immutable'],
  },
  {
    name: 'well-known secret types need their keys',
    kind: secretKind,
    obj: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'd' }, type: 'kubernetes.io/tls', data: { 'tls.crt': 'eA==' } },
    causes: ['data[tls.key]: Required value'],
  },
  {
    name: 'operating systems need an image unless custom iPXE',
    kind: operatingSystemKind,
    obj: {
      apiVersion: 'metalplane.dev/v1alpha1',
      kind: 'OperatingSystem',
      metadata: { name: 'alpine-3' },
      spec: { slug: 'alpine_3', name: 'Alpine', distro: 'alpine', version: '3', provisionableOn: ['*'], workflow: 'alpine-install' },
    },
    causes: ['spec.image: Required value: an image is required unless customIpxe is true'],
  },
  // ---- bounds on what is stored (the result of every write, patches included)
  { name: 'free-form params at the depth bound', kind: workflowKind, obj: workflow(nested(FREE_FORM_LIMITS.maxDepth)), causes: [] },
  {
    name: 'free-form params past the depth bound',
    kind: workflowKind,
    obj: workflow(nested(FREE_FORM_LIMITS.maxDepth + 1)),
    causes: [`spec.actions[0].params: Invalid value: a free-form field is nested more than ${FREE_FORM_LIMITS.maxDepth} levels deep`],
  },
  {
    name: 'free-form params with too many entries',
    kind: workflowKind,
    obj: workflow({ list: Array.from({ length: FREE_FORM_LIMITS.maxEntries }, (_, i) => i) }),
    causes: [`spec.actions[0].params: Invalid value: a free-form field holds more than ${FREE_FORM_LIMITS.maxEntries} keys and items`],
  },
  {
    name: 'free-form params with a huge string',
    kind: workflowKind,
    obj: workflow({ s: 'x'.repeat(FREE_FORM_LIMITS.maxStringLength + 1) }),
    causes: [`spec.actions[0].params: Invalid value: a free-form field holds a string of ${FREE_FORM_LIMITS.maxStringLength + 1} characters`],
  },
  {
    name: 'managedFields fieldsV1 is as deep as the object: only the whole-object bounds apply',
    kind: workflowKind,
    obj: workflow({}, { name: 'wf', namespace: 'default', managedFields: [{ manager: 'm', operation: 'Update', apiVersion: 'metalplane.dev/v1alpha1', fieldsType: 'FieldsV1', fieldsV1: nested(FREE_FORM_LIMITS.maxDepth + 10) }] }),
    causes: [],
  },
  {
    name: 'an object nested past the object bound, even in a field the schema prunes',
    kind: configMapKind,
    obj: cm({ extra: nested(MAX_OBJECT_DEPTH) }),
    causes: [`extra.x.x.x.x.x…(${MAX_OBJECT_DEPTH - 12} more)…x.x.x.x.x.x: Invalid value: nested more than ${MAX_OBJECT_DEPTH} levels deep`],
  },
  {
    name: 'an object far deeper than the stack would allow is refused, not walked',
    kind: configMapKind,
    obj: cm({ extra: nested(50_000) }),
    causes: [`extra.x.x.x.x.x…`],
  },
  {
    name: 'an object over the size bound',
    kind: configMapKind,
    obj: cm({ data: { big: 'x'.repeat(MAX_OBJECT_BYTES) } }),
    causes: [`undefined: Too long: the object is more than ${MAX_OBJECT_BYTES} bytes as JSON`],
  },
  { name: 'not an object', kind: planKind, obj: 'hello', causes: ['<root>: Invalid value: "string"'] },
  {
    name: 'events need involvedObject',
    kind: eventKind,
    obj: { apiVersion: 'v1', kind: 'Event', metadata: { name: 'e', namespace: 'd' }, reason: 'x' },
    causes: ['involvedObject: Required value'],
  },
];

for (const c of cases) {
  test(`validate: ${c.name}`, () => {
    const r = compileValidator(c.kind)(c.obj, { fieldValidation: c.mode ?? 'Strict', old: c.old });
    const got = r.causes.map((x) => `${x.field}: ${x.message}`);
    if (c.causes) {
      assert.equal(got.length, c.causes.length, `causes: ${JSON.stringify(got, null, 1)}`);
      c.causes.forEach((want, i) => assert.ok(got[i]!.startsWith(want), `cause ${i}:\n got  ${got[i]}\n want ${want}…`));
    }
    if (c.unknownFields) assert.deepEqual(r.unknownFields, c.unknownFields);
    if (c.warnings) assert.deepEqual(r.warnings, c.warnings);
  });
}

test('unknown fields are pruned in every mode, and the input is not mutated', () => {
  const input = plan({ foo: 1 });
  for (const mode of ['Strict', 'Warn', 'Ignore'] as const) {
    const r = compileValidator(planKind)(input, { fieldValidation: mode });
    assert.equal((r.pruned.spec as Record<string, unknown>).foo, undefined, mode);
  }
  assert.equal((input.spec as Record<string, unknown>).foo, 1);
});

test('schema defaults are filled and Secret stringData becomes base64 data', () => {
  const r = compileValidator(secretKind)({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 's', namespace: 'd' },
    data: { keep: 'eA==', over: 'eA==' },
    stringData: { password: 'hunter2', over: 'new' },
  });
  assert.deepEqual(r.causes, []);
  assert.equal(r.pruned.type, 'Opaque');
  assert.equal(r.pruned.stringData, undefined);
  assert.deepEqual(r.pruned.data, { keep: 'eA==', over: Buffer.from('new').toString('base64'), password: Buffer.from('hunter2').toString('base64') });
  assert.equal((compileValidator(planKind)(plan({})).pruned.spec as Record<string, unknown>).line, 'baremetal');
});

test('validators are cached per kind', () => {
  assert.equal(compileValidator(planKind), compileValidator(planKind));
});

test('strict decoding message is kube\'s', () => {
  assert.equal(strictDecodingMessage(['spec.foo', 'spec.bar']), 'strict decoding error: unknown field "spec.foo", unknown field "spec.bar"');
});

test('qualified names', () => {
  const cases: [string, number][] = [
    ['app', 0],
    ['app.kubernetes.io/name', 0],
    ['-app', 1],
    ['/app', 1],
    ['Example.com/app', 1],
    ['a'.repeat(64), 1],
  ];
  for (const [name, errs] of cases) assert.equal(isQualifiedName(name).length, errs, name);
});

test('metadata of the wrong shape gives a type error, not a crash', () => {
  const r = compileValidator(planKind)(plan({}, { name: 'x', labels: 'app=web', finalizers: 'x' }));
  assert.deepEqual(
    r.causes.map((c) => c.field),
    ['metadata.labels', 'metadata.finalizers'],
  );
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isApiError } from '../lib/errors.js';
import { decodeProtobufObject } from './protobuf.js';

/** Bytes from kubectl's `-v=8` hex dump. */
function hex(dump: string): Uint8Array {
  return Uint8Array.from(dump.trim().split(/\s+/).map((b) => parseInt(b, 16)));
}

// Tiny protobuf encoder for hand-made messages: [fieldNumber, value] pairs; strings/bytes/nested are
// length-delimited, numbers and booleans varints.
type PB = [number, string | number | boolean | Uint8Array | PB][];
function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}
function encode(fields: PB): Uint8Array {
  const out: number[] = [];
  for (const [num, value] of fields) {
    if (typeof value === 'number' || typeof value === 'boolean') {
      out.push(...varint(BigInt(num << 3)), ...varint(BigInt(Number(value))));
      continue;
    }
    const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value instanceof Uint8Array ? value : encode(value);
    out.push(...varint(BigInt((num << 3) | 2)), ...varint(BigInt(bytes.length)), ...bytes);
  }
  return Uint8Array.from(out);
}
function envelope(apiVersion: string, kind: string, raw: PB): Uint8Array {
  return Uint8Array.from([0x6b, 0x38, 0x73, 0x00, ...encode([[1, [[1, apiVersion], [2, kind]]], [2, encode(raw)]])]);
}

test('golden bodies sent by kubectl 1.32 create configmap / secret / namespace', () => {
  const cases: [string, string, unknown][] = [
    [
      'create configmap golden --from-literal=color=blue --from-file=blob (bytes "bin\\0\\xff")',
      `6b 38 73 00 0a 0f 0a 02 76 31 12 09 43 6f 6e 66 69 67 4d 61 70 12 3d 0a 1d 0a 06 67 6f 6c 64 65
       6e 12 00 1a 07 64 65 66 61 75 6c 74 22 00 2a 00 32 00 38 00 42 00 12 0d 0a 05 63 6f 6c 6f 72 12
       04 62 6c 75 65 1a 0d 0a 04 62 6c 6f 62 12 05 62 69 6e 00 ff 1a 00 22 00`,
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'golden', namespace: 'default' }, data: { color: 'blue' }, binaryData: { blob: 'YmluAP8=' } },
    ],
    [
      'create secret generic golden --from-literal=pw=s3cret --type=example.com/t',
      `6b 38 73 00 0a 0c 0a 02 76 31 12 06 53 65 63 72 65 74 12 3c 0a 1d 0a 06 67 6f 6c 64 65 6e 12 00
       1a 07 64 65 66 61 75 6c 74 22 00 2a 00 32 00 38 00 42 00 12 0c 0a 02 70 77 12 06 73 33 63 72 65
       74 1a 0d 65 78 61 6d 70 6c 65 2e 63 6f 6d 2f 74 1a 00 22 00`,
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'golden', namespace: 'default' }, data: { pw: 'czNjcmV0' }, type: 'example.com/t' },
    ],
    [
      'create namespace golden (empty spec and status are dropped, as JSON would omit them)',
      `6b 38 73 00 0a 0f 0a 02 76 31 12 09 4e 61 6d 65 73 70 61 63 65 12 1e 0a 16 0a 06 67 6f 6c 64 65
       6e 12 00 1a 00 22 00 2a 00 32 00 38 00 42 00 12 00 1a 02 0a 00 1a 00 22 00`,
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'golden' } },
    ],
  ];
  for (const [name, dump, want] of cases) assert.deepEqual(decodeProtobufObject(hex(dump)), want, name);
});

test('metadata: maps, owner references, finalizers, times, managed fields; pointer fields keep zero values', () => {
  const body = envelope('v1', 'ConfigMap', [
    [
      1,
      [
        [1, 'cm'],
        [3, 'ns'],
        [7, 3],
        [8, [[1, 1736510400]]],
        [11, [[1, 'app'], [2, 'web']]],
        [11, [[1, 'tier'], [2, '']]],
        [12, [[1, 'note'], [2, 'hi']]],
        [13, [[5, 'v1'], [1, 'ConfigMap'], [3, 'owner'], [4, 'u-1'], [6, false], [7, true]]],
        [14, 'example.com/a'],
        [14, 'example.com/b'],
        [17, [[1, 'kubectl'], [2, 'Apply'], [3, 'v1'], [4, [[1, 1736510400]]], [6, 'FieldsV1'], [7, [[1, '{"f:data":{"f:a":{}}}']]]]],
        [10, 0],
      ],
    ],
    [4, false],
    [2, [[1, 'a'], [2, '1']]],
  ]);
  assert.deepEqual(decodeProtobufObject(body), {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: 'cm',
      namespace: 'ns',
      generation: 3,
      creationTimestamp: '2025-01-10T12:00:00Z',
      labels: { app: 'web', tier: '' },
      annotations: { note: 'hi' },
      ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: 'u-1', controller: false, blockOwnerDeletion: true }],
      finalizers: ['example.com/a', 'example.com/b'],
      managedFields: [{ manager: 'kubectl', operation: 'Apply', apiVersion: 'v1', time: '2025-01-10T12:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:data': { 'f:a': {} } } }],
      deletionGracePeriodSeconds: 0,
    },
    immutable: false,
    data: { a: '1' },
  });
});

test('Event: micro times, counts, nested references', () => {
  const body = envelope('v1', 'Event', [
    [1, [[1, 'e1'], [3, 'default']]],
    [2, [[1, 'Plan'], [3, 'c3.small.x86'], [5, 'metalplane.dev/v1alpha1']]],
    [3, 'Tested'],
    [8, 2],
    [9, 'Normal'],
    [10, [[1, 1736510400], [2, 123_456_789]]],
    [11, [[1, 5]]],
  ]);
  assert.deepEqual(decodeProtobufObject(body), {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: 'e1', namespace: 'default' },
    involvedObject: { kind: 'Plan', name: 'c3.small.x86', apiVersion: 'metalplane.dev/v1alpha1' },
    reason: 'Tested',
    count: 2,
    type: 'Normal',
    eventTime: '2025-01-10T12:00:00.123456Z',
    series: { count: 5 },
  });
});

test('DeleteOptions from typed clients decode without apiVersion/kind', () => {
  const body = envelope('meta.k8s.io/v1', 'DeleteOptions', [[1, 0], [2, [[1, 'u-1']]], [4, 'Foreground'], [5, 'All']]);
  assert.deepEqual(decodeProtobufObject(body), { gracePeriodSeconds: 0, preconditions: { uid: 'u-1' }, propagationPolicy: 'Foreground', dryRun: ['All'] });
});

test('malformed or unsupported bodies are client errors', () => {
  const cases: [string, Uint8Array, number][] = [
    ['no magic', new TextEncoder().encode('{"kind":"ConfigMap"}'), 400],
    ['truncated', envelope('v1', 'ConfigMap', [[1, [[1, 'cm']]]]).subarray(0, 20), 400],
    ['unknown kind', envelope('apps/v1', 'Deployment', [[1, [[1, 'd']]]]), 415],
    ['gzip content encoding', Uint8Array.from([0x6b, 0x38, 0x73, 0x00, ...encode([[1, [[1, 'v1'], [2, 'ConfigMap']]], [3, 'gzip']])]), 415],
    ['invalid UTF-8 in a string', envelope('v1', 'ConfigMap', [[1, [[1, Uint8Array.from([0xff, 0xfe])]]]]), 400],
    ['wrong wire type', envelope('v1', 'ConfigMap', [[1, 5]]), 400],
  ];
  for (const [name, body, code] of cases) {
    assert.throws(() => decodeProtobufObject(body), (e: unknown) => isApiError(e) && e.code === code, name);
  }
});

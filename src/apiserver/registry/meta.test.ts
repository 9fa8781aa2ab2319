// jsonWithRevision must give exactly what JSON.stringify gives for the created object, or nothing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '../../kinds/types.js';
import { ObjectCodec } from './codec.js';
import type { Clock } from '../../lib/clock.js';
import { jsonWithRevision, nowIso, withRevision } from './meta.js';

const codec = new ObjectCodec();

describe('jsonWithRevision', () => {
  const spliced: Array<{ name: string; obj: KubeObject }> = [
    { name: 'a ConfigMap', obj: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'default', labels: { x: 'y' } }, data: { k: 'v' } } },
    { name: 'nothing after metadata', obj: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n' } } },
    { name: 'empty metadata', obj: { apiVersion: 'v1', kind: 'ConfigMap', metadata: {} } },
    {
      name: 'braces, brackets, quotes and escapes inside metadata strings',
      obj: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'b', annotations: { a: '}{]["\\', b: '\\"}', c: '"metadata":{' } }, data: { '}': '{' } },
    },
    {
      name: 'nested objects and lists in metadata (managedFields, ownerReferences)',
      obj: {
        apiVersion: 'metalplane.dev/v1alpha1',
        kind: 'Device',
        metadata: {
          name: 'd',
          ownerReferences: [{ apiVersion: 'v1', kind: 'X', name: 'o', uid: 'u' }],
          managedFields: [{ manager: 'm', operation: 'Update', apiVersion: 'v1', time: '2026-01-01T00:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { '.': {}, 'f:a': {} } } }],
        },
        spec: { a: [1, { b: null }], c: 'ü ☃ 😀 \u2028' },
        status: { phase: 'x' },
      },
    },
    { name: 'undefined members are skipped by both', obj: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'u', labels: undefined }, data: undefined } as unknown as KubeObject },
  ];
  for (const { name, obj } of spliced) {
    it(`equals JSON.stringify of the created object: ${name}`, () => {
      const stored = codec.encode(obj);
      const json = jsonWithRevision(obj, stored, 12345);
      assert.equal(json, JSON.stringify(withRevision(structuredClone(obj), 12345)));
    });
  }

  const refused: Array<{ name: string; obj: KubeObject }> = [
    { name: 'kind before apiVersion', obj: { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'a' } } },
    { name: 'data before metadata', obj: { apiVersion: 'v1', kind: 'ConfigMap', data: { k: 'v' }, metadata: { name: 'a' } } },
    { name: 'metadata that already has a resourceVersion', obj: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { resourceVersion: '3', name: 'a' } } },
  ];
  for (const { name, obj } of refused) {
    it(`gives nothing (the caller stringifies) when the splice would differ: ${name}`, () => {
      assert.equal(jsonWithRevision(obj, codec.encode(obj), 7), undefined);
    });
  }
});

describe('nowIso', () => {
  // What it wrote before it remembered the last second's text.
  const formatted = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const times = [0, 999, 1000, 1_764_600_000_000, 1_764_600_000_999, 1_764_600_001_000, 1_764_600_000_500, -1, -1500, 253_402_300_799_999];
  for (const ms of times) {
    it(`writes ${ms} ms as ${formatted(ms)}, in any order of calls`, () => {
      const clock = { now: () => ms } as unknown as Clock;
      assert.equal(nowIso(clock), formatted(ms));
      assert.equal(nowIso(clock), formatted(ms));
    });
  }
});

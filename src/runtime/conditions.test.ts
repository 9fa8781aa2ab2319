import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Condition } from '../kinds/types.js';
import { deepFreeze } from './cache.js';
import { available, formatTime, getCondition, isFalse, isTrue, reconcileError, removeCondition, setCondition, setConditions } from './conditions.js';

const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);
const T1 = T0 + 60_000;

const ready: Condition = {
  type: 'Ready',
  status: 'True',
  reason: 'Available',
  message: '',
  observedGeneration: 3,
  lastTransitionTime: formatTime(T0),
};

test('setCondition: table of transitions', () => {
  const cases: Array<{
    name: string;
    input: Parameters<typeof setCondition>[1];
    changed: boolean;
    lastTransitionTime: string;
  }> = [
    { name: 'identical: not rewritten', input: { type: 'Ready', status: 'True', reason: 'Available', message: '', observedGeneration: 3 }, changed: false, lastTransitionTime: formatTime(T0) },
    { name: 'absent message equals empty', input: { type: 'Ready', status: 'True', reason: 'Available', observedGeneration: 3 }, changed: false, lastTransitionTime: formatTime(T0) },
    { name: 'new generation, same status: keeps the transition time', input: { type: 'Ready', status: 'True', reason: 'Available', observedGeneration: 4 }, changed: true, lastTransitionTime: formatTime(T0) },
    { name: 'new reason, same status: keeps the transition time', input: { type: 'Ready', status: 'True', reason: 'StillFine', observedGeneration: 3 }, changed: true, lastTransitionTime: formatTime(T0) },
    { name: 'status flips: new transition time', input: { type: 'Ready', status: 'False', reason: 'Unavailable', message: 'BMC unreachable', observedGeneration: 3 }, changed: true, lastTransitionTime: formatTime(T1) },
  ];
  for (const c of cases) {
    const input = deepFreeze([structuredClone(ready)]);
    const r = setCondition(input, c.input, T1);
    assert.equal(r.changed, c.changed, c.name);
    assert.equal(r.conditions.length, 1, c.name);
    assert.equal(r.conditions[0]!.lastTransitionTime, c.lastTransitionTime, c.name);
    if (!c.changed) assert.strictEqual(r.conditions[0], input[0], `${c.name}: the very same object`);
    else assert.equal(r.conditions[0]!.reason, c.input.reason, c.name);
  }
});

test('setCondition appends a new type with the current time, leaving others alone', () => {
  const r = setCondition([ready], reconcileError(new Error('boom'), 3), T1);
  assert.equal(r.changed, true);
  assert.deepEqual(r.conditions.map((c) => c.type), ['Ready', 'Synced']);
  assert.equal(getCondition(r.conditions, 'Synced')!.message, 'boom');
  assert.equal(getCondition(r.conditions, 'Synced')!.lastTransitionTime, '2026-01-01T00:01:00Z');
  assert.ok(isTrue(r.conditions, 'Ready'));
  assert.ok(isFalse(r.conditions, 'Synced'));
  assert.ok(!isTrue(r.conditions, 'Missing') && !isFalse(r.conditions, 'Missing'));
});

test('setConditions reports a change only if one condition changed', () => {
  assert.equal(setConditions([ready], [available(3)], T1).changed, false);
  assert.equal(setConditions([ready], [available(3), reconcileError('x')], T1).changed, true);
  assert.equal(removeCondition([ready], 'Synced').changed, false);
  assert.deepEqual(removeCondition([ready], 'Ready'), { conditions: [], changed: true });
});

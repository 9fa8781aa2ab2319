// The BMC step decision, table-driven: call only what was not called, observe what may have been.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextBmcStep, type BmcStep, type BmcStepInput, type Observation } from './bmc-step.js';

const on: Observation = { powerState: 'on', bootOverride: { device: 'none', once: false } };
const off: Observation = { powerState: 'off', bootOverride: { device: 'none', once: false } };
const diskSet: Observation = { powerState: 'on', bootOverride: { device: 'disk', once: false } };
const diskOnce: Observation = { powerState: 'on', bootOverride: { device: 'disk', once: true } };
const running = { name: 'a', state: 'running' as const, attempts: 1 };
const NOW = 1_000_000;
const stored = (attempt: string | undefined, notBefore: number) => ({
  failures: 1,
  notBefore: new Date(notBefore).toISOString(),
  reason: 'BMCUnreachable',
  message: 'connect ECONNREFUSED',
  ...(attempt ? { attempt } : {}),
});

const rows: Array<{ name: string; input: Partial<BmcStepInput>; want: BmcStep }> = [
  { name: 'pending: call (nothing was called yet)', input: { state: { name: 'a', state: 'pending', attempts: 0 }, attempt: '0/0' }, want: { do: 'call', fresh: false } },
  { name: 'running, not ours: look first', input: {}, want: { do: 'observe' } },
  { name: 'running, ours sent: look first', input: { known: { attempt: '0/1', phase: 'sent' } }, want: { do: 'observe' } },
  { name: 'running, not ours, machine on: done without a second reset', input: { observed: on }, want: { do: 'complete', message: 'powered on into PXE' } },
  { name: 'running, not ours, machine off: a new attempt on a fresh clock', input: { observed: off }, want: { do: 'call', fresh: true } },
  { name: 'running, ours sent, machine still off: wait for it', input: { known: { attempt: '0/1', phase: 'sent' }, observed: off }, want: { do: 'wait' } },
  { name: 'running, a record of an older attempt does not count', input: { known: { attempt: '0/0', phase: 'sent' }, observed: off }, want: { do: 'call', fresh: true } },
  { name: 'running, a record of the run before a restart does not count', input: { attempt: '1/1', known: { attempt: '0/1', phase: 'sent' }, observed: off }, want: { do: 'call', fresh: true } },
  { name: 'running, ours failed, backoff not over', input: { known: { attempt: '0/1', phase: 'failed', retryAt: NOW + 500 } }, want: { do: 'backoff', ms: 500 } },
  { name: 'running, ours failed, backoff over: retry (the failed call may not have reached the BMC)', input: { known: { attempt: '0/1', phase: 'failed', retryAt: NOW } }, want: { do: 'call', fresh: false } },
  // The stored record (ActionStatus.retry) holds for any replica, with no memory of its own.
  { name: 'running, a stored failure of this attempt, backoff not over: wait (a new leader too)', input: { state: { ...running, retry: stored('0/1', NOW + 700) } }, want: { do: 'backoff', ms: 700 } },
  { name: 'running, a stored failure of this attempt, backoff over: retry without looking', input: { state: { ...running, retry: stored('0/1', NOW) } }, want: { do: 'call', fresh: false } },
  { name: 'running, a stored failure of reading the BMC, backoff over: look', input: { state: { ...running, retry: stored(undefined, NOW) } }, want: { do: 'observe' } },
  { name: 'running, a stored failure of an earlier attempt: look', input: { state: { ...running, attempts: 2, retry: stored('0/1', NOW - 1) }, attempt: '0/2' }, want: { do: 'observe' } },
  { name: 'running, a stored backoff outlasts our own record', input: { state: { ...running, retry: stored('0/1', NOW + 900) }, known: { attempt: '0/1', phase: 'failed', retryAt: NOW } }, want: { do: 'backoff', ms: 900 } },
  { name: 'set-boot-disk running, disk set: done', input: { type: 'set-boot-disk', observed: diskSet }, want: { do: 'complete', message: 'next boots from disk' } },
  { name: 'set-boot-disk running, disk only once: set it again', input: { type: 'set-boot-disk', observed: diskOnce }, want: { do: 'call', fresh: true } },
  { name: 'power-off running, machine off: done', input: { type: 'power-off', observed: off }, want: { do: 'complete' } },
  { name: 'power-off running, machine on: call', input: { type: 'power-off', observed: on }, want: { do: 'call', fresh: true } },
];

test('nextBmcStep', async (t) => {
  for (const row of rows) {
    await t.test(row.name, () => {
      const input: BmcStepInput = { type: 'power-on-pxe', state: running, attempt: '0/1', now: NOW, ...row.input };
      const got = nextBmcStep(input);
      assert.deepEqual(JSON.parse(JSON.stringify(got)), row.want);
    });
  }
});

// The workflow state machine: warm-pool skipping, advancing, failing, hand-out, restarts, timeouts, progress.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { WorkflowSpec, WorkflowStatus } from '../../kinds/workflow.js';
import { completeAction, currentAction, isFinished, markAttempt, percentage, restartWorkflow, startWorkflow, takeAgentAction, timeLeft, abandon } from './state.js';
import { deprovisionActions, provisionActions } from './templates.js';

const T0 = '2026-11-25T00:00:00Z';
const T1 = '2026-11-25T00:00:10Z';
const provision: WorkflowSpec = { hardware: 'hw-1', device: 'd', purpose: 'provision', actions: provisionActions({ os: 'ubuntu_24_04', instanceId: 'uid' }) };
const names = (s: WorkflowStatus) => s.actions!.map((a) => `${a.name}:${a.state}`);

test('a cold machine starts at power-on; a warm one skips power-on and register', () => {
  const cold = startWorkflow(provision, T0, false);
  assert.equal(cold.state, 'running');
  assert.equal(currentAction(provision, cold)!.action.name, 'power-on-pxe');
  const warm = startWorkflow(provision, T0, true);
  assert.equal(currentAction(provision, warm)!.action.name, 'inventory');
  assert.deepEqual(names(warm).slice(0, 3), ['power-on-pxe:skipped', 'register:skipped', 'inventory:pending']);
  assert.equal(warm.actions![2]!.startedAt, T0);
});

test('completing each action in turn ends the workflow succeeded at 100%', () => {
  let s = startWorkflow(provision, T0, true);
  const seen: string[] = [];
  while (!isFinished(s)) {
    const cur = currentAction(provision, s)!;
    seen.push(cur.action.name);
    assert.ok(percentage(provision, s) < 100);
    s = completeAction(provision, s, cur.index, { ok: true }, T1);
  }
  assert.deepEqual(seen, ['inventory', 'wipe-disks', 'stream-image', 'write-datasource', 'set-boot-disk', 'reboot', 'phone-home']);
  assert.equal(s.state, 'succeeded');
  assert.equal(s.finishedAt, T1);
  assert.equal(percentage(provision, s), 100);
});

test('a failure ends the workflow with the action, reason and message; later actions stay pending', () => {
  const s0 = startWorkflow(provision, T0, true);
  const cur = currentAction(provision, s0)!;
  const s1 = completeAction(provision, s0, cur.index, { ok: true }, T0);
  const s2 = completeAction(provision, s1, cur.index + 1, { ok: false, reason: 'DiskFailure', message: 'wipe /dev/sda: I/O error' }, T1);
  assert.equal(s2.state, 'failed');
  assert.deepEqual(s2.failure, { action: 'wipe-disks', reason: 'DiskFailure', message: 'wipe /dev/sda: I/O error' });
  assert.equal(s2.actions![3]!.state, 'failed');
  assert.equal(s2.actions![4]!.state, 'pending');
  assert.equal(currentAction(provision, s2), undefined, 'a finished workflow has no current action');
});

test('the input status is never changed (cached objects are frozen)', () => {
  const s0 = Object.freeze(startWorkflow(provision, T0, true)) as WorkflowStatus;
  for (const a of s0.actions!) Object.freeze(a);
  Object.freeze(s0.actions);
  const cur = currentAction(provision, s0)!;
  assert.doesNotThrow(() => completeAction(provision, s0, cur.index, { ok: true }, T1));
  assert.doesNotThrow(() => takeAgentAction(provision, s0, T1));
});

test('takeAgentAction hands out pending agent actions only, once', () => {
  const warm = startWorkflow(provision, T0, true);
  const taken = takeAgentAction(provision, warm, T1)!;
  assert.equal(taken.actions![2]!.state, 'running');
  assert.equal(taken.actions![2]!.attempts, 1);
  assert.equal(takeAgentAction(provision, taken, T1), undefined, 'already running: nothing new');
  const cold = startWorkflow(provision, T0, false);
  assert.equal(takeAgentAction(provision, cold, T1), undefined, 'power-on is the controller\'s');
  const atRegister = completeAction(provision, cold, 0, { ok: true }, T0);
  assert.equal(currentAction(provision, atRegister)!.action.type, 'register');
  assert.equal(takeAgentAction(provision, atRegister, T1), undefined, 'register is caused by the agent, not run by it');
});

test('restartWorkflow starts over cold, counts restarts and keeps the first start time', () => {
  const s = completeAction(provision, startWorkflow(provision, T0, true), 2, { ok: true }, T0);
  const r = restartWorkflow(provision, s, T1, 'the agent stopped calling in');
  assert.equal(r.restarts, 1);
  assert.equal(r.startedAt, T0);
  assert.equal(currentAction(provision, r)!.action.name, 'power-on-pxe');
  assert.match(r.actions![0]!.message!, /restarted: the agent stopped calling in/);
  assert.equal(restartWorkflow(provision, r, T1, 'again').restarts, 2);
});

test('timeLeft counts from when the current action started, with the timeout given', () => {
  const s = startWorkflow(provision, T0, true);
  const t0 = Date.parse(T0);
  assert.equal(timeLeft(provision, s, t0 + 1000, (sec) => sec * 10), 120 * 10 - 1000);
  assert.ok(timeLeft(provision, s, t0 + 5000, () => 1000)! < 0);
});

test("a BMC action's clock starts at its first attempt; an agent action's when it becomes current", () => {
  const cold = startWorkflow(provision, T0, false); // power-on-pxe (bmc, 300 s) current since T0
  const atSetBootDisk = [0, 1, 2, 3, 4, 5].reduce((s, i) => completeAction(provision, s, i, { ok: true }, T0), cold);
  const t1 = Date.parse(T1);
  const left = (s: WorkflowStatus) => timeLeft(provision, s, t1 + 1000, (sec) => sec * 10);
  const rows: Array<{ name: string; status: WorkflowStatus; want: number }> = [
    { name: 'BMC action not attempted: all of its timeout', status: cold, want: 3000 },
    { name: 'set-boot-disk not attempted: all of its timeout', status: atSetBootDisk, want: 1200 },
    { name: 'BMC action attempted at T1: counts from the marker', status: markAttempt(cold, 0, T1, 'powering on', false), want: 3000 - 1000 },
    { name: 'a retry keeps the first attempt\'s clock', status: markAttempt(markAttempt(cold, 0, T0, 'powering on', false), 0, T1, 'powering on', false), want: 3000 - 11_000 },
    { name: 'a fresh attempt starts it again', status: markAttempt(markAttempt(cold, 0, T0, 'powering on', false), 0, T1, 'powering on', true), want: 3000 - 1000 },
    { name: 'agent action pending since T0: counts from T0 (the agent pulls)', status: startWorkflow(provision, T0, true), want: 1200 - 11_000 },
  ];
  for (const row of rows) assert.equal(left(row.status), row.want, row.name);
});

test('abandon ends a workflow that was replaced, naming the current action', () => {
  const spec: WorkflowSpec = { hardware: 'hw', purpose: 'deprovision', actions: deprovisionActions() };
  const s = abandon(startWorkflow(spec, T0, false), spec, 'Superseded', 'moved on', T1);
  assert.equal(s.state, 'failed');
  assert.deepEqual(s.failure, { action: 'power-on-pxe', reason: 'Superseded', message: 'moved on' });
});

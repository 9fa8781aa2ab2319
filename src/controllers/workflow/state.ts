// The workflow state machine as pure functions over (spec, status) → new status. The workflow controller
// (BMC actions, timeouts) and the agent API (agent reports) both move workflows forward through these, so
// the rules live in one place. Statuses from the cache are frozen: every function returns a new one.
import type { ActionStatus, WorkflowSpec, WorkflowStatus } from '../../kinds/workflow.js';
import { actionWeight } from './templates.js';

export type Outcome = { ok: true; message?: string } | { ok: false; reason: string; message: string };

function copy(status: WorkflowStatus): WorkflowStatus {
  return { ...status, actions: (status.actions ?? []).map((a) => ({ ...a })) };
}

export function isFinished(status: WorkflowStatus | undefined): boolean {
  return status?.state === 'succeeded' || status?.state === 'failed';
}

/** Starts a workflow: every action pending, then moves to the first one not skipped (warm pool). */
export function startWorkflow(spec: WorkflowSpec, now: string, warm: boolean): WorkflowStatus {
  const status: WorkflowStatus = {
    state: 'running',
    startedAt: now,
    current: 0,
    actions: spec.actions.map((a) => ({ name: a.name, state: 'pending' as const })),
  };
  return enter(spec, status, 0, now, warm);
}

/** Starts over from the first action (the machine was lost: its agent vanished mid-workflow). */
export function restartWorkflow(spec: WorkflowSpec, status: WorkflowStatus, now: string, why: string): WorkflowStatus {
  const s = startWorkflow(spec, now, false);
  s.startedAt = status.startedAt ?? now;
  s.restarts = (status.restarts ?? 0) + 1;
  s.actions![0] = { ...s.actions![0]!, message: `restarted: ${why}` };
  if (status.conditions) s.conditions = status.conditions;
  return s;
}

/** Makes action `i` (or the first after it that is skipped for a warm machine) current, or ends the workflow. */
function enter(spec: WorkflowSpec, status: WorkflowStatus, i: number, now: string, warm: boolean): WorkflowStatus {
  const actions = status.actions!;
  while (i < spec.actions.length && warm && spec.actions[i]!.skipIfWarm) {
    actions[i] = { ...actions[i]!, state: 'skipped', finishedAt: now, message: 'the agent was already running (warm pool)' };
    i++;
  }
  if (i >= spec.actions.length) {
    status.state = 'succeeded';
    status.finishedAt = now;
    status.current = spec.actions.length - 1;
    return status;
  }
  status.current = i;
  actions[i] = { ...actions[i]!, state: 'pending', startedAt: now, attempts: actions[i]!.attempts ?? 0 };
  return status;
}

/** The current action, if the workflow runs. */
export function currentAction(spec: WorkflowSpec, status: WorkflowStatus | undefined): { index: number; action: WorkflowSpec['actions'][number]; state: ActionStatus } | undefined {
  if (!status || status.state !== 'running' || status.current === undefined) return undefined;
  const action = spec.actions[status.current];
  const state = status.actions?.[status.current];
  return action && state ? { index: status.current, action, state } : undefined;
}

/** The agent took action `i` (or the controller started a BMC call): running, one more attempt. */
export function markRunning(status: WorkflowStatus, i: number, now: string): WorkflowStatus {
  const s = copy(status);
  const a = s.actions![i]!;
  s.actions![i] = { ...a, state: 'running', attempts: (a.attempts ?? 0) + 1, startedAt: a.startedAt ?? now };
  return s;
}

/**
 * The marker written before a BMC call of action `i`: running, one more attempt, saying what is being done.
 * The first attempt starts the action's clock (its timeout, and the time after which an agent registration
 * counts as this boot's): until the controller calls, the BMC has nothing to do, so the time the action
 * waited to be taken up is the controller's, not the machine's. `fresh` starts it again: the earlier attempt
 * left no trace on the machine. A retry after a BMC error keeps it: the retries share the action's timeout.
 */
export function markAttempt(status: WorkflowStatus, i: number, now: string, message: string, fresh: boolean): WorkflowStatus {
  const first = status.actions![i]!.state !== 'running';
  const s = markRunning(status, i, now);
  s.actions![i] = { ...s.actions![i]!, message, ...(fresh || first ? { startedAt: now } : {}) };
  return s;
}

/**
 * The current action as the agent takes it: an agent action (other than `register`, which the agent does not
 * run but causes) that is pending becomes running. Undefined when there is nothing new to hand out.
 */
export function takeAgentAction(spec: WorkflowSpec, status: WorkflowStatus | undefined, now: string): WorkflowStatus | undefined {
  const cur = currentAction(spec, status);
  if (!cur || cur.action.executor !== 'agent' || cur.action.type === 'register' || cur.state.state !== 'pending') return undefined;
  return markRunning(status!, cur.index, now);
}

/** Records the outcome of action `i`; success moves on to the next action (skipping for warm machines). */
export function completeAction(spec: WorkflowSpec, status: WorkflowStatus, i: number, outcome: Outcome, now: string, warm = false): WorkflowStatus {
  const s = copy(status);
  const a = s.actions![i]!;
  if (!outcome.ok) {
    s.actions![i] = { ...a, state: 'failed', finishedAt: now, message: `${outcome.reason}: ${outcome.message}` };
    s.state = 'failed';
    s.finishedAt = now;
    s.failure = { action: a.name, reason: outcome.reason, message: outcome.message };
    return s;
  }
  s.actions![i] = { ...a, state: 'succeeded', finishedAt: now, progress: undefined, ...(outcome.message ? { message: outcome.message } : {}) };
  if (s.actions![i]!.progress === undefined) delete s.actions![i]!.progress;
  // Done: no try is pending any more (a failed action keeps its record: it says how often it was tried).
  delete s.actions![i]!.retry;
  return enter(spec, s, i + 1, now, warm);
}

export type RetryRecord = NonNullable<ActionStatus['retry']>;

/** Records a transient failure of action `i` and when it may be tried again (see ActionStatus.retry). */
export function recordRetry(status: WorkflowStatus, i: number, retry: RetryRecord): WorkflowStatus {
  const s = copy(status);
  s.actions![i] = { ...s.actions![i]!, retry };
  return s;
}

export function setProgress(status: WorkflowStatus, i: number, progress: number, message?: string): WorkflowStatus {
  const s = copy(status);
  s.actions![i] = { ...s.actions![i]!, progress: Math.max(0, Math.min(100, Math.round(progress))), ...(message ? { message } : {}) };
  return s;
}

/** Ends a running workflow that is no longer the machine's (a newer one replaced it, or its device went away). */
export function abandon(status: WorkflowStatus | undefined, spec: WorkflowSpec, reason: string, message: string, now: string): WorkflowStatus {
  const s: WorkflowStatus = status ? copy(status) : { actions: spec.actions.map((a) => ({ name: a.name, state: 'pending' as const })) };
  s.state = 'failed';
  s.finishedAt = now;
  s.failure = { action: spec.actions[s.current ?? 0]?.name ?? '', reason, message };
  return s;
}

/**
 * Milliseconds left before the current action times out (≤ 0: timed out). A BMC action not attempted yet has
 * all of it: its clock starts at its first marker (markAttempt), because a timeout is what the machine took,
 * and a BMC that was never asked has taken nothing; the wait before is the controller's own queue. An agent
 * action counts from when it became current (the agent pulls it: an agent that does not ask is the machine's
 * delay), and phone-home from the reboot that made it current.
 */
export function timeLeft(spec: WorkflowSpec, status: WorkflowStatus, nowMs: number, timeoutMs: (s: number) => number): number | undefined {
  const cur = currentAction(spec, status);
  if (!cur) return undefined;
  const timeout = timeoutMs(cur.action.timeoutSeconds);
  if (cur.action.executor === 'bmc' && cur.state.state !== 'running') return timeout;
  if (!cur.state.startedAt) return undefined;
  return Date.parse(cur.state.startedAt) + timeout - nowMs;
}

/** 0–100: the weighted share of actions done (skipped ones count as done), plus the current one's progress. */
export function percentage(spec: WorkflowSpec, status: WorkflowStatus | undefined): number {
  if (!status?.actions) return 0;
  let total = 0;
  let doneWeight = 0;
  spec.actions.forEach((a, i) => {
    const w = actionWeight[a.type] ?? 5;
    total += w;
    const st = status.actions![i];
    if (st?.state === 'succeeded' || st?.state === 'skipped') doneWeight += w;
    else if (st?.progress) doneWeight += (w * st.progress) / 100;
  });
  if (status.state === 'succeeded') return 100;
  return total ? Math.min(99, Math.floor((doneWeight * 100) / total)) : 0;
}

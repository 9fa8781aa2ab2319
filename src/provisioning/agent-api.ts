// The agent protocol, `/agent/v1` (docs/provisioning-protocol.md): the agent on a netbooted machine registers,
// then long-polls for its next action, reporting the outcome of the last one in the same call. Reports are
// written to the Workflow before they are acknowledged, so a crash loses none. A caller is the agent of a boot
// only while that boot is its machine's current one (boots.ts), its token has not expired, and it calls from the
// address that started the boot; its token is renewed in the answers as it ages (`x-metalplane-token`).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HardwareSpec, HardwareStatus } from '../kinds/hardware.js';
import type { KindDeclaration, StoredObject } from '../kinds/types.js';
import type { WorkflowSpec, WorkflowStatus } from '../kinds/workflow.js';
import type { ObjectClient } from '../runtime/client.js';
import { formatTime } from '../runtime/conditions.js';
import type { Logger } from '../runtime/logger.js';
import { completeAction, currentAction, setProgress, takeAgentAction, type Outcome } from '../controllers/workflow/state.js';
import { updateWorkflowStatus } from '../controllers/workflow/write.js';
import { updateStatus } from '../runtime/update-status.js';
import { isApiError } from '../lib/errors.js';
import type { AgentHub } from './agent-hub.js';
import type { BootRecords } from './boots.js';
import { seedUrl } from './metadata.js';
import { AgentTokenRenewAfterSeconds, normalizePeer, RenewedTokenHeader, type TokenSigner } from './tokens.js';

export interface AgentApiDeps {
  client: ObjectClient;
  hardwareKind: KindDeclaration;
  workflowKind: KindDeclaration;
  deviceKind: KindDeclaration;
  hub: AgentHub;
  signer: TokenSigner;
  boots: BootRecords;
  logger: Logger;
  now?: () => number;
  /** The plain-HTTP URL machines reach us at now (for the cloud-init seed URL). */
  plainUrl: () => string;
  /** Longest long poll, seconds (default 20). */
  maxWaitSeconds?: number;
}

interface Caller {
  hardware: string;
  bootId: string;
  /** The uid of the Hardware the boot was started on. */
  hardwareUid: string;
}

const HeartbeatWriteMs = 60_000;

class AgentError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

interface Report {
  workflow: string;
  namespace: string;
  index: number;
  state: 'succeeded' | 'failed';
  reason?: string;
  message?: string;
  result?: Record<string, unknown>;
}

function parseBody(req: FastifyRequest): Record<string, unknown> {
  const raw = req.body;
  if (raw === undefined || raw === null || (Buffer.isBuffer(raw) && raw.length === 0)) return {};
  try {
    const v: unknown = JSON.parse(Buffer.isBuffer(raw) ? raw.toString('utf8') : String(raw));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new AgentError(400, `the body must be a JSON object: ${(e as Error).message}`);
  }
}

function parseReport(v: unknown): Report | undefined {
  if (v === undefined || v === null) return undefined;
  const r = v as Record<string, unknown>;
  if (typeof r.workflow !== 'string' || typeof r.namespace !== 'string' || !Number.isInteger(r.index)) {
    throw new AgentError(400, 'report needs workflow (string), namespace (string) and index (integer)');
  }
  if (r.state !== 'succeeded' && r.state !== 'failed') throw new AgentError(400, 'report.state must be "succeeded" or "failed"');
  if (r.result !== undefined && (typeof r.result !== 'object' || r.result === null)) throw new AgentError(400, 'report.result must be an object');
  return {
    workflow: r.workflow,
    namespace: r.namespace,
    index: r.index as number,
    state: r.state,
    reason: typeof r.reason === 'string' ? r.reason : undefined,
    message: typeof r.message === 'string' ? r.message : undefined,
    result: r.result as Record<string, unknown> | undefined,
  };
}

export function registerAgentApi(app: FastifyInstance, deps: AgentApiDeps): void {
  const now = deps.now ?? Date.now;
  const maxWait = deps.maxWaitSeconds ?? 20;

  /**
   * Who calls: the agent of the boot its token names, if that boot is the machine's current one and the
   * request comes from the address that started it. A token older than the renewal age is renewed in the answer.
   */
  const caller = async (req: FastifyRequest, reply: FastifyReply): Promise<Caller> => {
    const h = req.headers.authorization;
    const m = h ? /^Bearer\s+(\S+)$/i.exec(h) : null;
    if (!m) throw new AgentError(401, 'an agent token is required: Authorization: Bearer <metalplane.token from the kernel command line>');
    const claims = deps.signer.verify(m[1]!);
    if (!claims || claims.kind !== 'agent' || typeof claims.exp !== 'number' || typeof claims.iat !== 'number') throw new AgentError(401, 'the agent token is not valid');
    const nowS = Math.floor(now() / 1000);
    if (nowS >= claims.exp) {
      throw new AgentError(401, `the agent token of boot ${claims.bootId} expired at ${formatTime(claims.exp * 1000)}: an agent renews its token by calling in (${RenewedTokenHeader}); this machine must netboot again`);
    }
    const boot = await deps.boots.get(claims.hardware);
    if (!boot || boot.bootId !== claims.bootId) {
      throw staleBoot(claims.hardware, claims.bootId, boot?.bootId);
    }
    if (boot.contested) {
      throw new AgentError(403, `boot ${boot.bootId} of ${claims.hardware} was revoked: its iPXE script was fetched from ${boot.peer} and from ${boot.contested.peer}`);
    }
    const peer = normalizePeer(req.raw.socket.remoteAddress);
    if (peer !== boot.peer) {
      throw new AgentError(403, `boot ${boot.bootId} of ${claims.hardware} was started from ${boot.peer}; this request comes from ${peer}: a token is good only from the address that fetched its iPXE script`);
    }
    if (nowS - claims.iat >= AgentTokenRenewAfterSeconds) void reply.header(RenewedTokenHeader, deps.signer.agentToken(claims.hardware, claims.bootId, nowS));
    return { hardware: claims.hardware, bootId: claims.bootId, hardwareUid: boot.hardwareUid };
  };

  const fail = (reply: FastifyReply, e: unknown): FastifyReply => {
    if (e instanceof AgentError) {
      if (e.status === 401) void reply.header('www-authenticate', 'Bearer realm="metalplane-agent"');
      return reply.code(e.status).send({ errors: [e.message] });
    }
    if (isApiError(e) && e.code < 500) return reply.code(e.code).send({ errors: [e.message] });
    deps.logger.error({ err: e }, 'agent api failed');
    return reply.code(500).send({ errors: ['internal error'] });
  };

  const hardwareOf = async (c: Caller): Promise<StoredObject> => {
    const hw = await deps.client.get(deps.hardwareKind, undefined, c.hardware);
    if (!hw || hw.metadata.uid !== c.hardwareUid) throw new AgentError(403, `hardware ${c.hardware} is not enrolled any more (or was enrolled again since this boot)`);
    return hw;
  };

  /** The machine's current workflow, when it is running. */
  const workflowOf = async (hw: StoredObject): Promise<StoredObject | undefined> => {
    const ref = (hw.status as HardwareStatus | undefined)?.workflow;
    if (!ref) return undefined;
    return deps.client.get(deps.workflowKind, ref.namespace, ref.name);
  };

  app.post('/agent/v1/register', async (req, reply) => {
    try {
      const c = await caller(req, reply);
      const body = parseBody(req);
      if (body.bootId !== undefined && body.bootId !== c.bootId) throw new AgentError(403, `the token is for boot ${c.bootId}, not ${String(body.bootId)}`);
      // The agent of another boot that still calls in owns the machine: a registration does not take it over.
      const registered = ((await hardwareOf(c)).status as HardwareStatus | undefined)?.agent?.bootId;
      if (registered && registered !== c.bootId && deps.hub.isAlive(c.hardware, registered)) {
        throw new AgentError(409, `the agent of boot ${registered} is alive on ${c.hardware}: a registration for boot ${c.bootId} cannot replace it`);
      }
      const inv = (body.inventory ?? {}) as Record<string, unknown>;
      const at = formatTime(now());
      const inventory: NonNullable<HardwareStatus['inventory']> = {
        ...(typeof inv.cpus === 'number' ? { cpus: inv.cpus } : {}),
        ...(typeof inv.memoryGiB === 'number' ? { memoryGiB: inv.memoryGiB } : {}),
        ...(Array.isArray(inv.macs) ? { macs: inv.macs.filter((m): m is string => typeof m === 'string') } : {}),
        ...(Array.isArray(inv.disks) ? { disks: (inv.disks as Array<{ device: string; sizeGB: number }>).filter((d) => typeof d?.device === 'string' && typeof d.sizeGB === 'number').map((d) => ({ device: d.device, sizeGB: d.sizeGB })) } : {}),
      };
      const agent = { bootId: c.bootId, registeredAt: at, lastHeartbeat: at, ...(typeof body.version === 'string' ? { version: body.version } : {}) };
      const hw = await updateStatus(deps.client, deps.hardwareKind, undefined, c.hardware, 'metalplane-agent-api', (h): HardwareStatus => {
        if (h.metadata.uid !== c.hardwareUid) throw new AgentError(403, `hardware ${c.hardware} was enrolled again since boot ${c.bootId}`);
        return { ...((h.status ?? {}) as HardwareStatus), agent, inventory };
      });
      if (!hw) throw new AgentError(403, `hardware ${c.hardware} is not enrolled any more`);
      deps.hub.touch(c.hardware, c.bootId);
      // A workflow waiting for this agent to come up moves on.
      const wf = await workflowOf(hw);
      if (wf) {
        await updateWorkflowStatus(deps.client, deps.workflowKind, wf.metadata.namespace!, wf.metadata.name, (spec, status) => {
          const cur = currentAction(spec, status);
          if (!cur || cur.action.type !== 'register') return undefined;
          return completeAction(spec, status!, cur.index, { ok: true, message: `agent of boot ${c.bootId} registered` }, at, true);
        });
      }
      return reply.send({ hardware: c.hardware, pollTimeoutSeconds: maxWait });
    } catch (e) {
      return fail(reply, e);
    }
  });

  app.post('/agent/v1/next', async (req, reply) => {
    try {
      const c = await caller(req, reply);
      const body = parseBody(req);
      const q = req.query as Record<string, string | undefined>;
      const wait = q.wait === undefined ? maxWait : Number(q.wait);
      if (!Number.isFinite(wait) || wait < 0) throw new AgentError(400, `wait must be a number of seconds ≥ 0, not ${JSON.stringify(q.wait)}`);
      const report = parseReport(body.report);
      deps.hub.touch(c.hardware, c.bootId);
      await recordHeartbeat(c);
      if (report) await applyReport(c, report);
      const deadline = now() + Math.min(wait, maxWait) * 1000;
      const aborted = new AbortController();
      req.raw.once('close', () => aborted.abort());
      for (;;) {
        const action = await takeNextAction(c);
        if (action) return reply.send({ action });
        const left = deadline - now();
        if (left <= 0 || aborted.signal.aborted) return reply.code(204).send();
        await deps.hub.wait(c.hardware, left, aborted.signal, req);
        deps.hub.touch(c.hardware, c.bootId);
      }
    } catch (e) {
      return fail(reply, e);
    }
  });

  app.post('/agent/v1/progress', async (req, reply) => {
    try {
      const c = await caller(req, reply);
      const body = parseBody(req);
      const { workflow, namespace, index, progress, message } = body as { workflow?: unknown; namespace?: unknown; index?: unknown; progress?: unknown; message?: unknown };
      if (typeof workflow !== 'string' || typeof namespace !== 'string' || !Number.isInteger(index) || typeof progress !== 'number') {
        throw new AgentError(400, 'progress needs workflow, namespace, index (integer) and progress (number 0-100)');
      }
      deps.hub.touch(c.hardware, c.bootId);
      await updateWorkflowStatus(deps.client, deps.workflowKind, namespace, workflow, (spec, status) => {
        if (spec.hardware !== c.hardware) throw new AgentError(403, `workflow ${namespace}/${workflow} is not for hardware ${c.hardware}`);
        const cur = currentAction(spec, status);
        if (!cur || cur.index !== index || cur.state.state !== 'running') return undefined;
        return setProgress(status!, cur.index, progress, typeof message === 'string' ? message : undefined);
      });
      return reply.code(204).send();
    } catch (e) {
      return fail(reply, e);
    }
  });

  /**
   * Hardware status.agent.lastHeartbeat, written at most once a minute per machine: liveness itself is kept in
   * memory (the hub), the store only needs to show operators that the agent is calling in.
   */
  async function recordHeartbeat(c: Caller): Promise<void> {
    const agent = ((await hardwareOf(c)).status as HardwareStatus | undefined)?.agent;
    if (!agent || agent.bootId !== c.bootId) return;
    const last = agent.lastHeartbeat ? Date.parse(agent.lastHeartbeat) : 0;
    if (now() - last < HeartbeatWriteMs) return;
    const at = formatTime(now());
    await updateStatus(deps.client, deps.hardwareKind, undefined, c.hardware, 'metalplane-agent-api', (h): HardwareStatus | undefined => {
      const st = (h.status ?? {}) as HardwareStatus;
      if (st.agent?.bootId !== c.bootId) return undefined;
      return { ...st, agent: { ...st.agent, lastHeartbeat: at } };
    });
  }

  async function applyReport(c: Caller, r: Report): Promise<void> {
    const at = formatTime(now());
    const hw = await hardwareOf(c);
    const hwSpec = hw.spec as HardwareSpec;
    // Only the machine's current workflow takes reports: one it moved on from is not this agent's to change.
    const ref = (hw.status as HardwareStatus | undefined)?.workflow;
    if (ref?.namespace !== r.namespace || ref?.name !== r.workflow) return;
    let rebooted = false;
    await updateWorkflowStatus(deps.client, deps.workflowKind, r.namespace, r.workflow, (spec, status) => {
      if (spec.hardware !== c.hardware) throw new AgentError(403, `workflow ${r.namespace}/${r.workflow} is not for hardware ${c.hardware}`);
      const cur = currentAction(spec, status);
      // A report for an action that is not current any more (a repeat after a lost answer, or a workflow that
      // was replaced or timed out) changes nothing.
      if (!cur || cur.index !== r.index || cur.action.executor !== 'agent') return undefined;
      let outcome: Outcome = r.state === 'succeeded'
        ? { ok: true, ...(r.message ? { message: r.message } : {}) }
        : { ok: false, reason: r.reason ?? 'ActionFailed', message: r.message ?? `${cur.action.name} failed` };
      if (outcome.ok && cur.action.type === 'inventory') outcome = checkInventory(r.result, hwSpec);
      rebooted = outcome.ok && cur.action.type === 'reboot';
      const next = completeAction(spec, status!, cur.index, outcome, at, true);
      // The agent asks for its next action in this same call: take it in this same write. (Not after a
      // reboot: the agent is going away.)
      return (rebooted ? undefined : takeAgentAction(spec, next, at)) ?? next;
    });
    // After a reboot the machine runs its installed OS: this agent is gone, the machine is no longer warm.
    if (rebooted) deps.hub.forget(c.hardware);
  }

  /**
   * An action's parameters as the agent gets them. The cloud-init seed URL is made at hand-out, from the
   * address we are reachable at now and the device's instance token, so a workflow outlives a change of
   * address (a restart on another port) instead of pointing the OS at a dead one.
   */
  async function paramsFor(wf: StoredObject, action: WorkflowSpec['actions'][number]): Promise<Record<string, unknown>> {
    const params = { ...(action.params ?? {}) };
    const deviceName = (wf.spec as WorkflowSpec).device;
    if (action.type === 'write-datasource' && deviceName) {
      const device = await deps.client.get(deps.deviceKind, wf.metadata.namespace, deviceName);
      if (device) params.seedfrom = seedUrl(deps.plainUrl(), deps.signer, device);
    }
    return params;
  }

  /** The agent action the machine should run now (marked running), if any. */
  async function takeNextAction(c: Caller): Promise<Record<string, unknown> | undefined> {
    // A long poll can outlive its boot: the machine was reset (and netbooted again) while the old agent's
    // request waited. Its boot may no longer take work, or the new boot's agent would wait for a report that
    // the dead one owes.
    const boot = await deps.boots.get(c.hardware);
    if (!boot || boot.bootId !== c.bootId) {
      throw staleBoot(c.hardware, c.bootId, boot?.bootId);
    }
    const hw = await hardwareOf(c);
    const wf = await workflowOf(hw);
    if (!wf) return undefined;
    const spec = wf.spec as WorkflowSpec;
    const cur = currentAction(spec, wf.status as WorkflowStatus | undefined);
    if (!cur || cur.action.executor !== 'agent' || cur.action.type === 'register') return undefined;
    let handed = cur;
    if (cur.state.state === 'pending') {
      const at = formatTime(now());
      const stored = await updateWorkflowStatus(deps.client, deps.workflowKind, wf.metadata.namespace!, wf.metadata.name, (s, st) => {
        const again = currentAction(s, st);
        return again?.index === cur.index ? takeAgentAction(s, st, at) : undefined;
      });
      if (!stored) return undefined;
      handed = currentAction(stored.spec as WorkflowSpec, stored.status as WorkflowStatus)!;
    }
    return {
      workflow: wf.metadata.name,
      namespace: wf.metadata.namespace,
      index: handed.index,
      name: handed.action.name,
      type: handed.action.type,
      params: await paramsFor(wf, handed.action),
      timeoutSeconds: handed.action.timeoutSeconds,
    };
  }
}

/** A call of a boot that is no longer the machine's current one (it netbooted again since). */
function staleBoot(hardware: string, bootId: string, current: string | undefined): AgentError {
  return new AgentError(403, `the token is for boot ${bootId}, but the current boot of ${hardware} is ${current ?? 'none'}: the machine was netbooted again since`);
}

/** What the agent found must match what the Hardware says: every listed NIC present, at least as many disks. */
function checkInventory(result: Record<string, unknown> | undefined, spec: HardwareSpec): Outcome {
  const inv = (result?.inventory ?? {}) as { macs?: unknown; disks?: unknown };
  const disks = Array.isArray(inv.disks) ? inv.disks : [];
  const macs = new Set(Array.isArray(inv.macs) ? inv.macs.map((m) => String(m).toLowerCase()) : []);
  const missing = spec.nics.map((n) => n.mac).filter((m) => !macs.has(m));
  if (missing.length) return { ok: false, reason: 'InventoryMismatch', message: `the agent does not see NIC(s) ${missing.join(', ')} listed in the Hardware` };
  const want = spec.disks?.length ?? 1;
  if (disks.length < want) return { ok: false, reason: 'InventoryMismatch', message: `the agent found ${disks.length} disk(s); the Hardware lists ${want}` };
  return { ok: true, message: `${macs.size} NIC(s) and ${disks.length} disk(s) found, as listed` };
}
